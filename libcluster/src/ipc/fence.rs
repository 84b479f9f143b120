//! fenced's local API: what `fence_tool`, `fence_node`, `fence_ack_manual`, `fence_manual` and
//! `rgmanagerd` ask of fenced over `<runtime dir>/fenced.sock`, and the events it publishes.
//!
//! The question other daemons ask before they touch a dead node's resources is
//! [`FenceRequest::IsFenced`]: "has node N, in the incarnation I saw it last, been fenced (or
//! manually acknowledged) since it left?". The answer is [`FenceState`]; a client that must
//! wait subscribes to events and asks again on every [`FenceEvent::Fenced`].
//!
//! Append variants at the end only: postcard encodes the variant index.

use super::{Access, ApiRequest};
use serde::{Deserialize, Serialize};

/// The daemon name used for the socket path: `<runtime dir>/fenced.sock`.
pub const DAEMON: &str = "fenced";

/// The one fence domain, and the name of the cmand group that carries it.
pub const DOMAIN_GROUP: &str = "fenced:default";

/// A request to fenced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceRequest {
    /// `fence_tool join`: join the fence domain.
    Join,
    /// `fence_tool leave`: leave the fence domain cleanly (members will not fence us).
    Leave,
    /// `fence_tool ls`: the domain summary.
    DomainInfo,
    /// `fence_tool ls -n`, and NODE_INFO: every configured node (`None`) or one node by id
    /// (`Some(0)` = this node).
    Nodes {
        /// Which node; `None` for all.
        node: Option<u32>,
    },
    /// `fence_tool dump`: the daemon's recent log lines.
    Dump,
    /// `fence_node` fenced a node itself: record it so the domain does not fence it again for
    /// the same failure (C3's EXTERNAL).
    External {
        /// Node name (cluster.conf spelling) or decimal id.
        node: String,
        /// The method that succeeded, if known.
        method: Option<String>,
        /// The device that succeeded last, if known.
        device: Option<String>,
    },
    /// `fence_ack_manual NODE`: the administrator confirms the node is off; its pending
    /// fencing completes with [`FenceHow::Override`].
    Acknowledge {
        /// Node name or decimal id.
        node: String,
    },
    /// Has this node been fenced since it left in `incarnation` (the cmand incarnation the
    /// asker last saw it with)?
    IsFenced {
        /// Node id.
        node: u32,
        /// Its incarnation when it was last a member, as cmand reported it.
        incarnation: u64,
    },
}

impl ApiRequest for FenceRequest {
    fn access(&self) -> Access {
        match self {
            FenceRequest::DomainInfo
            | FenceRequest::Nodes { .. }
            | FenceRequest::Dump
            | FenceRequest::IsFenced { .. } => Access::Read,
            FenceRequest::Join
            | FenceRequest::Leave
            | FenceRequest::External { .. }
            | FenceRequest::Acknowledge { .. } => Access::Write,
        }
    }
}

/// fenced's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceResponse {
    /// Carried out (join and leave: accepted; they complete asynchronously).
    Done,
    /// The domain summary.
    Domain(FenceDomainInfo),
    /// Node rows, sorted by node id.
    Nodes(Vec<FenceNodeInfo>),
    /// Log lines, oldest first, each `<unix seconds> <message>`.
    Dump(Vec<String>),
    /// The answer to [`FenceRequest::IsFenced`].
    Fenced(FenceState),
}

/// What fenced is waiting for (`fence_tool ls` "wait state").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitState {
    /// Nothing.
    None,
    /// The cluster is inquorate: no fencing until it is quorate again.
    Quorum,
    /// Waiting for the other members' start messages of the current change.
    Messages,
    /// Victims are being fenced (or waiting for their delay).
    Fencing,
}

impl WaitState {
    /// The word `fence_tool ls` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitState::None => "none",
            WaitState::Quorum => "quorum",
            WaitState::Messages => "messages",
            WaitState::Fencing => "fencing",
        }
    }
}

/// The fence domain as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceDomainInfo {
    /// Whether this node is a member of the domain.
    pub joined: bool,
    /// Member node ids, sorted.
    pub members: Vec<u32>,
    /// Victims waiting to be fenced, sorted.
    pub victims: Vec<u32>,
    /// The victim being fenced now (0 = none).
    pub current_victim: u32,
    /// The member that fences for the domain (0 = none yet).
    pub master: u32,
    /// What the domain waits for.
    pub wait_state: WaitState,
}

/// How a victim's fencing completed (`fence_tool ls -n` "how").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceHow {
    /// A fence method succeeded.
    Agent,
    /// The victim came back as a new incarnation before it was fenced (it restarted).
    Member,
    /// An administrator acknowledged it (`fence_ack_manual`).
    Override,
    /// `fence_node` fenced it outside the domain.
    External,
}

impl FenceHow {
    /// The word `fence_tool ls -n` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            FenceHow::Agent => "agent",
            FenceHow::Member => "member",
            FenceHow::Override => "override",
            FenceHow::External => "external",
        }
    }
}

/// One completed fencing of a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRecord {
    /// The victim's node id.
    pub node: u32,
    /// The victim's incarnation when it failed (0 if it never was a member we saw).
    pub incarnation: u64,
    /// The member that fenced it (or recorded the acknowledgement).
    pub master: u32,
    /// How.
    pub how: FenceHow,
    /// The method that succeeded (`how == Agent` or `External`).
    pub method: Option<String>,
    /// The last device of that method.
    pub device: Option<String>,
    /// The master's wall-clock time of completion, seconds since the epoch.
    pub time_unix_s: i64,
}

/// One node as fenced sees it (`fence_tool ls -n`, C3 NODE_INFO).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceNodeInfo {
    /// Node id.
    pub node: u32,
    /// Its cluster.conf name.
    pub name: String,
    /// Member of the fence domain now.
    pub member: bool,
    /// Waiting to be fenced.
    pub victim: bool,
    /// The last completed fencing, if any.
    pub last: Option<FenceRecord>,
}

/// The answer to [`FenceRequest::IsFenced`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceState {
    /// Fenced (or acknowledged, or restarted as a new incarnation) since it left in the
    /// asked incarnation: its resources may be recovered.
    Fenced(FenceRecord),
    /// A victim, not fenced yet: wait.
    Pending,
    /// fenced does not know the node failed in that incarnation (it may still be a member, or
    /// the failure has not reached the domain yet): wait, and do not recover.
    Unknown,
}

/// What fenced publishes to subscribers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceEvent {
    /// A node became a victim.
    Victim {
        /// Node id.
        node: u32,
        /// Its incarnation when it failed.
        incarnation: u64,
    },
    /// A victim was fenced (every member publishes this when the result reaches it).
    Fenced(FenceRecord),
    /// The domain's membership changed.
    Domain(FenceDomainInfo),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::Frame;

    #[test]
    fn queries_are_open_and_changes_need_privilege() {
        assert_eq!(FenceRequest::DomainInfo.access(), Access::Read);
        assert_eq!(FenceRequest::Nodes { node: None }.access(), Access::Read);
        assert_eq!(FenceRequest::Dump.access(), Access::Read);
        let is_fenced = FenceRequest::IsFenced {
            node: 2,
            incarnation: 7,
        };
        assert_eq!(is_fenced.access(), Access::Read);
        for w in [
            FenceRequest::Join,
            FenceRequest::Leave,
            FenceRequest::External {
                node: "n2".into(),
                method: None,
                device: None,
            },
            FenceRequest::Acknowledge { node: "n2".into() },
        ] {
            assert_eq!(w.access(), Access::Write, "{w:?}");
        }
    }

    #[test]
    fn events_roundtrip_through_frames() {
        let f: Frame<FenceRequest, FenceResponse, FenceEvent> = Frame::Event {
            seq: 3,
            body: FenceEvent::Fenced(FenceRecord {
                node: 2,
                incarnation: 99,
                master: 1,
                how: FenceHow::Agent,
                method: Some("1".into()),
                device: Some("apc".into()),
                time_unix_s: 1_700_000_000,
            }),
        };
        let bytes = f.encode().unwrap();
        let mut d = crate::ipc::FrameDecoder::default();
        d.push(&bytes);
        let back = d
            .next_frame::<FenceRequest, FenceResponse, FenceEvent>()
            .unwrap()
            .unwrap();
        assert_eq!(back, f);
    }
}
