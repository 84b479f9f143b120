//! The messages rgmanagerd nodes exchange through the cmand group `rgmanager`.
//!
//! One byte of protocol version, then the postcard body (`wire::body`). Decoding never
//! panics: a short, foreign or corrupt payload is a [`CoordError`] and changes nothing.

use super::super::catalog::ServiceIndex;
use super::super::engine::OpResult;
use super::super::request::Request;
use super::super::state::{Intent, ServiceRecord};
use crate::membership::ViewId;
use crate::wire::body;
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The version byte every payload starts with.
pub const PROTOCOL_VERSION: u8 = 2;

/// One group view of the `rgmanager` group: the cmand view it happened in and the
/// sequence number of the join/leave that caused it (0 for a view change). Every member
/// sees the same ids in the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupViewId {
    /// The cmand view.
    pub view: ViewId,
    /// The group event's sequence number in that view.
    pub seq: u64,
}

/// A command from the coordinator to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Start the service on `node`.
    Start {
        /// The service.
        service: ServiceIndex,
        /// Where.
        node: NodeId,
    },
    /// Stop the service on `node`.
    Stop {
        /// The service.
        service: ServiceIndex,
        /// Where.
        node: NodeId,
    },
    /// First step of a live migration: `to` prepares an incoming VM, then announces
    /// [`Msg::Ready`]; `from` migrates on seeing it.
    Prepare {
        /// The service.
        service: ServiceIndex,
        /// The source (owner).
        from: NodeId,
        /// The target.
        to: NodeId,
    },
}

impl Command {
    /// The service the command is about.
    pub fn service(&self) -> ServiceIndex {
        match *self {
            Command::Start { service, .. }
            | Command::Stop { service, .. }
            | Command::Prepare { service, .. } => service,
        }
    }
}

/// A changed replicated record with its intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordUpdate {
    /// The service.
    pub service: ServiceIndex,
    /// Its record.
    pub record: ServiceRecord,
    /// Its administrator intent.
    pub intent: Intent,
}

/// A node that left the group and is not yet known to be fenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFence {
    /// The cmand incarnation that left (0: unknown, any earlier life).
    pub incarnation: u64,
    /// Recorded at a cold start (no member held the table): nothing is decided until it
    /// is fenced or reports.
    pub cold: bool,
}

/// The whole replicated table, sent by the coordinator to members that joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// The group view it answers; ignored in any other.
    pub gv: GroupViewId,
    /// Its generation.
    pub generation: u64,
    /// Every service's record and intent, by index.
    pub records: Vec<(ServiceRecord, Intent)>,
    /// Dead nodes waiting for fencing.
    pub pending: Vec<(NodeId, PendingFence)>,
    /// Migrations under way: service, source, target.
    pub migrations: Vec<(ServiceIndex, NodeId, NodeId)>,
}

/// A `clusvcadm` request as it travels (mirror of [`Request`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// `-e [-m node]`.
    Enable(Option<NodeId>),
    /// `-d`.
    Disable,
    /// `-s`.
    Stop,
    /// `-r [-m node]`.
    Relocate(Option<NodeId>),
    /// `-M -m node`.
    Migrate(NodeId),
    /// `-R`.
    Restart,
    /// `-Z`.
    Freeze,
    /// `-U`.
    Unfreeze,
}

impl From<Request> for AdminRequest {
    fn from(r: Request) -> AdminRequest {
        match r {
            Request::Enable { target } => AdminRequest::Enable(target),
            Request::Disable => AdminRequest::Disable,
            Request::Stop => AdminRequest::Stop,
            Request::Relocate { target } => AdminRequest::Relocate(target),
            Request::Migrate { target } => AdminRequest::Migrate(target),
            Request::Restart => AdminRequest::Restart,
            Request::Freeze => AdminRequest::Freeze,
            Request::Unfreeze => AdminRequest::Unfreeze,
        }
    }
}

impl From<AdminRequest> for Request {
    fn from(r: AdminRequest) -> Request {
        match r {
            AdminRequest::Enable(target) => Request::Enable { target },
            AdminRequest::Disable => Request::Disable,
            AdminRequest::Stop => Request::Stop,
            AdminRequest::Relocate(target) => Request::Relocate { target },
            AdminRequest::Migrate(target) => Request::Migrate { target },
            AdminRequest::Restart => Request::Restart,
            AdminRequest::Freeze => Request::Freeze,
            AdminRequest::Unfreeze => Request::Unfreeze,
        }
    }
}

/// One message of the `rgmanager` group. Every message a member sends about itself
/// carries `running`: every service it runs or may run (in-flight starts and outgoing
/// migrations, unfinished stops, failed starts not yet stopped), so the latest message of
/// a node always says what it holds. A prepared incoming migration is not running; one
/// whose source left is listed apart (`incoming`) until the node knows whether it arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Sent by every member on each group view (and on regaining quorum).
    Report {
        /// The group view it answers.
        gv: GroupViewId,
        /// The group views the sender went through since the last round it finalized
        /// (hashed; 0: none, it just joined). Members with the same lineage moved between
        /// every view together and delivered the same messages; any other member may have
        /// missed commands or results.
        lineage: u64,
        /// The sender's cmand incarnation.
        incarnation: u64,
        /// Whether the sender holds the replicated table.
        synced: bool,
        /// The generation of its table (grows each time a coordinator starts deciding).
        generation: u64,
        /// What it runs.
        running: Vec<ServiceIndex>,
        /// Incoming migrations whose source left, not yet known to have arrived.
        incoming: Vec<ServiceIndex>,
        /// Migrations under way here (outgoing, or incoming from a live source).
        migrating: Vec<ServiceIndex>,
    },
    /// A local operation finished.
    Done {
        /// The service.
        service: ServiceIndex,
        /// How it went.
        result: OpResult,
        /// What the sender runs now.
        running: Vec<ServiceIndex>,
    },
    /// A status check of a started service failed.
    StatusFailed {
        /// The service.
        service: ServiceIndex,
        /// What the sender runs now.
        running: Vec<ServiceIndex>,
    },
    /// The sender's running set changed outside an operation (an incoming VM aborted).
    Running {
        /// What the sender runs now.
        running: Vec<ServiceIndex>,
        /// Incoming migrations whose source left, not yet known to have arrived.
        incoming: Vec<ServiceIndex>,
        /// Migrations under way here (outgoing, or incoming from a live source).
        migrating: Vec<ServiceIndex>,
    },
    /// The migration target is ready: the source migrates to `uri`.
    Ready {
        /// The service.
        service: ServiceIndex,
        /// The source.
        from: NodeId,
        /// Where the source sends the VM.
        uri: String,
    },
    /// The migration target could not prepare; the VM stays on the source.
    PrepareFailed {
        /// The service.
        service: ServiceIndex,
        /// The source.
        from: NodeId,
        /// What the sender runs now.
        running: Vec<ServiceIndex>,
    },
    /// The coordinator's decisions: record changes (the `RG_EVENT`s) and commands, in one
    /// message so that every member sees both or neither.
    Decisions {
        /// The generation of the coordinator's table.
        generation: u64,
        /// Changed records.
        records: Vec<RecordUpdate>,
        /// Commands.
        commands: Vec<Command>,
    },
    /// fenced confirmed that `node` in `incarnation` is fenced.
    Fenced {
        /// The node.
        node: NodeId,
        /// The incarnation that left.
        incarnation: u64,
    },
    /// The table, for members that joined.
    Table(Table),
    /// A `clusvcadm` request from `origin`.
    Request {
        /// The node whose local client asked.
        origin: NodeId,
        /// The origin's request id.
        id: u64,
        /// The service.
        service: ServiceIndex,
        /// What.
        request: AdminRequest,
    },
    /// The coordinator's answer: 0 or an `RG_E*` code.
    Reply {
        /// The origin of the request.
        origin: NodeId,
        /// Its id.
        id: u64,
        /// 0 = success, else the `RG_E*` code.
        code: i32,
    },
}

/// Why a group payload was rejected. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordError {
    /// The payload was empty.
    Empty {
        /// Sender.
        from: NodeId,
    },
    /// Another protocol version.
    Version {
        /// Sender.
        from: NodeId,
        /// The version byte found.
        found: u8,
    },
    /// The body did not decode.
    Decode {
        /// Sender.
        from: NodeId,
        /// The decoder's complaint.
        reason: String,
    },
}

impl fmt::Display for CoordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoordError::Empty { from } => write!(f, "empty rgmanager message from node {from}"),
            CoordError::Version { from, found } => write!(
                f,
                "rgmanager message from node {from} has version {found}, this node speaks {PROTOCOL_VERSION}"
            ),
            CoordError::Decode { from, reason } => {
                write!(f, "undecodable rgmanager message from node {from}: {reason}")
            }
        }
    }
}

impl std::error::Error for CoordError {}

impl Msg {
    /// The group payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        out.extend(body::encode(self));
        out
    }

    /// Decodes a group payload from `from`.
    pub fn decode(from: NodeId, payload: &[u8]) -> Result<Msg, CoordError> {
        let (&version, rest) = payload.split_first().ok_or(CoordError::Empty { from })?;
        if version != PROTOCOL_VERSION {
            return Err(CoordError::Version {
                from,
                found: version,
            });
        }
        body::decode(rest).map_err(|e| CoordError::Decode {
            from,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gv() -> GroupViewId {
        GroupViewId {
            view: ViewId {
                epoch: 3,
                coordinator: NodeId(1),
                incarnation: 2,
            },
            seq: 4,
        }
    }

    fn samples() -> Vec<Msg> {
        vec![
            Msg::Report {
                gv: gv(),
                lineage: 0x1234_5678_9abc_def1,
                incarnation: 7,
                synced: true,
                generation: 3,
                running: vec![ServiceIndex(0), ServiceIndex(3)],
                incoming: vec![ServiceIndex(1)],
                migrating: vec![ServiceIndex(2)],
            },
            Msg::Done {
                service: ServiceIndex(1),
                result: OpResult::MigrateFailed { on_source: true },
                running: vec![],
            },
            Msg::Ready {
                service: ServiceIndex(2),
                from: NodeId(3),
                uri: "tcp:10.0.0.2:49152".into(),
            },
            Msg::Decisions {
                generation: 2,
                records: vec![RecordUpdate {
                    service: ServiceIndex(0),
                    record: ServiceRecord::new(),
                    intent: Intent::initial(true),
                }],
                commands: vec![Command::Prepare {
                    service: ServiceIndex(0),
                    from: NodeId(1),
                    to: NodeId(2),
                }],
            },
            Msg::Table(Table {
                gv: gv(),
                generation: 2,
                records: vec![(ServiceRecord::new(), Intent::initial(false))],
                pending: vec![(
                    NodeId(4),
                    PendingFence {
                        incarnation: 2,
                        cold: false,
                    },
                )],
                migrations: vec![(ServiceIndex(0), NodeId(1), NodeId(2))],
            }),
            Msg::Request {
                origin: NodeId(2),
                id: 9,
                service: ServiceIndex(1),
                request: AdminRequest::Migrate(NodeId(3)),
            },
            Msg::Reply {
                origin: NodeId(2),
                id: 9,
                code: -6,
            },
        ]
    }

    #[test]
    fn every_message_kind_roundtrips() {
        for m in samples() {
            assert_eq!(Msg::decode(NodeId(1), &m.encode()), Ok(m));
        }
    }

    #[test]
    fn empty_and_foreign_versions_are_rejected_with_the_sender() {
        assert_eq!(
            Msg::decode(NodeId(5), &[]),
            Err(CoordError::Empty { from: NodeId(5) })
        );
        let mut p = samples()[0].encode();
        p[0] = 9;
        assert_eq!(
            Msg::decode(NodeId(5), &p),
            Err(CoordError::Version {
                from: NodeId(5),
                found: 9
            })
        );
    }

    #[test]
    fn requests_survive_the_wire_mirror() {
        for r in [
            Request::Enable { target: None },
            Request::Enable {
                target: Some(NodeId(2)),
            },
            Request::Disable,
            Request::Stop,
            Request::Relocate { target: None },
            Request::Migrate { target: NodeId(3) },
            Request::Restart,
            Request::Freeze,
            Request::Unfreeze,
        ] {
            assert_eq!(Request::from(AdminRequest::from(r)), r);
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Msg::decode(NodeId(1), &bytes);
        }

        #[test]
        fn truncated_messages_are_errors(cut in 0usize..64) {
            for m in samples() {
                let p = m.encode();
                if cut < p.len() {
                    prop_assert!(Msg::decode(NodeId(1), &p[..cut]).is_err());
                }
            }
        }
    }
}
