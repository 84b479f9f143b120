//! cmand's local API: what `cman_tool`, `ccs_tool`, `qdiskd`, `fenced` and `rgmanagerd` ask
//! of cmand over `<runtime dir>/cmand.sock`, and the events it publishes.
//!
//! These types are the stable contract between cmand and its clients; they are not the
//! membership core's internal types (the daemon maps between the two), so the core can
//! change without breaking clients. Append variants at the end only: postcard encodes the
//! variant index.

use super::{Access, ApiRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The daemon name used for the socket path: `<runtime dir>/cmand.sock`.
pub const DAEMON: &str = "cmand";

/// cmand's error code for "in use / queue full" (`IN_USE`): a `GroupSend` refused because
/// `<cman max_queued>` messages of this node are still waiting to be ordered. Retry later.
pub const ERR_IN_USE: super::ErrorCode = super::ErrorCode(1002);

/// The protocol version `cman_tool version` reports (the original's R6 value is 6.2.0).
pub const CMAN_PROTOCOL_VERSION: &str = "6.2.0";

/// A request to cmand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmanRequest {
    /// `cman_tool status`: the status snapshot.
    Status,
    /// `cman_tool nodes`: every configured node plus the quorum device.
    Nodes,
    /// `cman_tool leave [remove] [force]`.
    Leave {
        /// Survivors lower expected votes to their node count.
        remove: bool,
        /// Leave even if local clients (groups joined) would object.
        force: bool,
    },
    /// `cman_tool kill -n NODE`: by node name or decimal id.
    Kill {
        /// Node name or id.
        node: String,
    },
    /// `cman_tool expected -e N`.
    SetExpected {
        /// New expected votes.
        votes: u32,
    },
    /// `cman_tool version -r`: re-read this node's cluster.conf and distribute it when its
    /// config_version is newer than the running one.
    ReloadConfig,
    /// `ccs_tool update FILE`: distribute this text (validated again by the daemon); its
    /// config_version must be greater than the running one.
    ConfigUpdate {
        /// The whole cluster.conf.
        text: String,
    },
    /// qdiskd's periodic report: register, poll and vote changes in one.
    QdiskUpdate {
        /// Device name as `cman_tool nodes` shows it.
        name: String,
        /// Its votes.
        votes: u32,
        /// Whether qdiskd holds this node's quorum device membership alive.
        alive: bool,
    },
    /// Join an ordered messaging group (one local client per group).
    GroupJoin {
        /// Group name.
        group: String,
    },
    /// Leave a group.
    GroupLeave {
        /// Group name.
        group: String,
    },
    /// Send to a group; delivered to every member in one total order.
    GroupSend {
        /// Group name.
        group: String,
        /// Payload.
        payload: Vec<u8>,
    },
}

impl ApiRequest for CmanRequest {
    fn access(&self) -> Access {
        match self {
            CmanRequest::Status | CmanRequest::Nodes => Access::Read,
            // Group messaging drives fencing and placement: only trusted daemons may use it.
            _ => Access::Write,
        }
    }
}

/// cmand's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmanResponse {
    /// The request was carried out (or accepted for ordered delivery).
    Done,
    /// The status snapshot.
    Status(Box<CmanStatus>),
    /// The node list, sorted by id, the quorum device (id 0) first when registered.
    Nodes(Vec<CmanNode>),
    /// The new config version a reload or update distributes.
    ConfigVersion(u64),
}

/// Membership state words of `cman_tool status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipState {
    /// Started, no view installed yet.
    Joining,
    /// In an installed view.
    ClusterMember,
    /// Not in any view (killed, expelled).
    NotInCluster,
    /// `cman_tool leave` in progress.
    Leaving,
}

impl MembershipState {
    /// The word `cman_tool status` prints.
    pub fn word(self) -> &'static str {
        match self {
            MembershipState::Joining => "Joining",
            MembershipState::ClusterMember => "Cluster-Member",
            MembershipState::NotInCluster => "Not-in-Cluster",
            MembershipState::Leaving => "Leaving",
        }
    }
}

/// Everything `cman_tool status` shows, and a little more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmanStatus {
    /// `<cluster config_version>` running.
    pub config_version: u64,
    /// `<cluster name>`.
    pub cluster_name: String,
    /// 16-bit cluster id.
    pub cluster_id: u16,
    /// Membership state.
    pub state: MembershipState,
    /// Epoch of the installed view ("Cluster Generation"), 0 before the first.
    pub generation: u64,
    /// Coordinator of the installed view.
    pub coordinator: Option<u32>,
    /// Member node ids of the installed view.
    pub members: Vec<u32>,
    /// Highest expected votes among members.
    pub expected_votes: u32,
    /// Quorum device votes when it is a member.
    pub qdisk_votes: Option<u32>,
    /// Votes present.
    pub total_votes: u32,
    /// This node's votes.
    pub node_votes: u32,
    /// Votes needed.
    pub quorum: u32,
    /// Whether the view is quorate.
    pub quorate: bool,
    /// Local client connections.
    pub active_subsystems: u32,
    /// two_node mode.
    pub two_node: bool,
    /// Nodes that came back with the incarnation a quorate view removed (cman's disallowed).
    pub disallowed: Vec<String>,
    /// This node's name.
    pub node_name: String,
    /// This node's id.
    pub node_id: u32,
    /// This daemon start's incarnation.
    pub incarnation: u64,
    /// Addresses this node sends heartbeats to (multicast, when used).
    pub multicast_addresses: Vec<String>,
    /// Addresses this node is bound to.
    pub node_addresses: Vec<String>,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// Counters: dropped frames by reason (`drop_<wire reason>`), views installed, ...
    pub counters: BTreeMap<String, u64>,
}

/// Node states of `cman_tool nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    /// In the installed view.
    Member,
    /// Heard but not yet in the view.
    Joining,
    /// Not a member.
    Dead,
    /// Left with `cman_tool leave`.
    Leaving,
    /// Came back with an incarnation a quorate view removed.
    Disallowed,
}

impl NodeState {
    /// The status letter of the table: `M`, `X`, `d`, `?`.
    pub fn letter(self) -> char {
        match self {
            NodeState::Member => 'M',
            NodeState::Dead | NodeState::Leaving => 'X',
            NodeState::Disallowed => 'd',
            NodeState::Joining => '?',
        }
    }

    /// The state word of `-F state`.
    pub fn word(self) -> &'static str {
        match self {
            NodeState::Member => "Member",
            NodeState::Joining => "Joining",
            NodeState::Dead => "Dead",
            NodeState::Leaving => "Leaving",
            NodeState::Disallowed => "Disallowed",
        }
    }
}

/// One row of `cman_tool nodes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmanNode {
    /// Node id (0 = quorum device).
    pub id: u32,
    /// Configured name (the device name for id 0).
    pub name: String,
    /// State.
    pub state: NodeState,
    /// Last known incarnation ("Inc"); 0 if never heard.
    pub incarnation: u64,
    /// Wall-clock time it joined the current view (seconds since the epoch), if a member.
    pub joined_unix_s: Option<i64>,
    /// Votes.
    pub votes: u32,
    /// Expected votes it holds.
    pub expected_votes: u32,
    /// Its addresses.
    pub addresses: Vec<String>,
}

/// What cmand publishes to subscribers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmanEvent {
    /// A view was installed.
    View {
        /// Its epoch.
        generation: u64,
        /// Its coordinator.
        coordinator: u32,
        /// Members with incarnations.
        members: Vec<(u32, u64)>,
    },
    /// The quorum state changed.
    Quorum {
        /// Whether quorate now.
        quorate: bool,
        /// Votes needed.
        quorum: u32,
        /// Votes present.
        total_votes: u32,
    },
    /// A group's membership changed (after the flush of the previous view).
    GroupView {
        /// Group.
        group: String,
        /// View epoch it happened in.
        generation: u64,
        /// Members now.
        members: Vec<u32>,
        /// Nodes that joined.
        joined: Vec<u32>,
        /// Nodes that left.
        left: Vec<u32>,
        /// The view's coordinator (with `generation` and the next field, the view's identity).
        coordinator: u32,
        /// The coordinator's incarnation.
        coordinator_incarnation: u64,
        /// The position of this change in the view's total order (the same on every member).
        seq: u64,
    },
    /// A group message, in the group's total order.
    Deliver {
        /// Group.
        group: String,
        /// View epoch it was ordered in.
        generation: u64,
        /// Sequence number in that view.
        seq: u64,
        /// Sender node id.
        from: u32,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A new cluster.conf was written to this node's config path.
    ConfigChanged {
        /// Its config_version.
        version: u64,
    },
    /// cmand is about to exit (left, killed, expelled).
    Shutdown {
        /// Why, in words.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::Frame;

    #[test]
    fn only_status_and_nodes_are_open_to_every_user() {
        assert_eq!(CmanRequest::Status.access(), Access::Read);
        assert_eq!(CmanRequest::Nodes.access(), Access::Read);
        let writes = [
            CmanRequest::Leave {
                remove: false,
                force: false,
            },
            CmanRequest::Kill { node: "n2".into() },
            CmanRequest::SetExpected { votes: 1 },
            CmanRequest::ReloadConfig,
            CmanRequest::ConfigUpdate {
                text: String::new(),
            },
            CmanRequest::QdiskUpdate {
                name: "q".into(),
                votes: 1,
                alive: true,
            },
            CmanRequest::GroupJoin {
                group: "fence".into(),
            },
            CmanRequest::GroupLeave {
                group: "fence".into(),
            },
            CmanRequest::GroupSend {
                group: "fence".into(),
                payload: vec![1],
            },
        ];
        for w in writes {
            assert_eq!(w.access(), Access::Write, "{w:?}");
        }
    }

    #[test]
    fn requests_roundtrip_through_frames() {
        let f: Frame<CmanRequest, CmanResponse, CmanEvent> = Frame::Request {
            id: 7,
            body: CmanRequest::Kill {
                node: "station201".into(),
            },
        };
        let bytes = f.encode().unwrap();
        let mut d = crate::ipc::FrameDecoder::default();
        d.push(&bytes);
        let back = d
            .next_frame::<CmanRequest, CmanResponse, CmanEvent>()
            .unwrap()
            .unwrap();
        assert_eq!(back, f);
    }
}
