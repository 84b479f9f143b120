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
use std::collections::BTreeMap;
use std::fmt;

/// The version byte every payload starts with.
pub const PROTOCOL_VERSION: u8 = 2;

/// What one message may carry: cmand's group payload limit less room for the message's own
/// fields. The table and large decision rounds are split to fit.
pub const CHUNK_BYTES: usize = crate::membership::MAX_PAYLOAD - 1024;

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFence {
    /// The cmand incarnation that left (0: not known yet; learned as soon as cmand sees
    /// the node, and only then can fenced confirm it).
    pub incarnation: u64,
    /// Recorded at a cold start (no member held the table): nothing is decided until it
    /// is fenced or reports.
    pub cold: bool,
    /// What it said it ran, last: those services may still run there (restored on it by a
    /// new engine, held for its fencing) even if no decision ever placed them there.
    pub running: Vec<ServiceIndex>,
}

/// The replicated table, or one part of it: the coordinator sends it to members that lack
/// it, in as many consecutive parts as it needs ([`Table::split`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// The group view it answers; ignored in any other.
    pub gv: GroupViewId,
    /// Its generation.
    pub generation: u64,
    /// How many services the whole table has.
    pub total: u32,
    /// The index of this part's first record.
    pub first: u32,
    /// Records and intents of services `first..first + records.len()`.
    pub records: Vec<(ServiceRecord, Intent)>,
    /// Dead nodes waiting for fencing (first part only).
    pub pending: Vec<(NodeId, PendingFence)>,
    /// Migrations under way: service, source, target (first part only).
    pub migrations: Vec<(ServiceIndex, NodeId, NodeId)>,
}

impl Table {
    /// The table in parts of at most [`CHUNK_BYTES`] each, in order.
    pub fn split(self) -> Vec<Table> {
        let mut parts = Vec::new();
        let mut part = Table {
            records: Vec::new(),
            ..self.clone()
        };
        let mut size = body::encode(&part).len();
        for (i, r) in self.records.into_iter().enumerate() {
            let n = body::encode(&r).len();
            if size + n > CHUNK_BYTES && !part.records.is_empty() {
                let next = Table {
                    first: u32::try_from(i).unwrap_or(u32::MAX),
                    records: Vec::new(),
                    pending: Vec::new(),
                    migrations: Vec::new(),
                    ..part.clone()
                };
                parts.push(std::mem::replace(&mut part, next));
                size = body::encode(&part).len();
            }
            part.records.push(r);
            size += n;
        }
        parts.push(part);
        parts
    }

    /// Appends the next part (`false` if it does not follow this one: another view,
    /// generation, or a gap).
    pub fn join(&mut self, next: Table) -> bool {
        let follows = next.gv == self.gv
            && next.generation == self.generation
            && next.total == self.total
            && usize::try_from(next.first).is_ok_and(|f| f == self.records.len());
        if follows {
            self.records.extend(next.records);
        }
        follows
    }

    /// Whether every part arrived.
    pub fn complete(&self) -> bool {
        usize::try_from(self.total).is_ok_and(|t| self.records.len() >= t)
    }
}

impl Msg {
    /// A decision round in as many [`Msg::Decisions`] as it needs (at least one): the
    /// record changes and commands of one service always travel in the same message, in
    /// their order, so every member sees both or neither.
    pub fn decisions(
        generation: u64,
        records: Vec<RecordUpdate>,
        commands: Vec<Command>,
    ) -> Vec<Msg> {
        let mut by_service: BTreeMap<ServiceIndex, (Vec<RecordUpdate>, Vec<Command>, usize)> =
            BTreeMap::new();
        for r in records {
            let e = by_service.entry(r.service).or_default();
            e.2 += body::encode(&r).len();
            e.0.push(r);
        }
        for c in commands {
            let e = by_service.entry(c.service()).or_default();
            e.2 += body::encode(&c).len();
            e.1.push(c);
        }
        let base = Msg::Decisions {
            generation,
            records: Vec::new(),
            commands: Vec::new(),
        }
        .encode(0)
        .len();
        let mut out = Vec::new();
        let (mut records, mut commands, mut size) = (Vec::new(), Vec::new(), base);
        for (_, (rs, cs, n)) in by_service {
            if size + n > CHUNK_BYTES && !(records.is_empty() && commands.is_empty()) {
                out.push(Msg::Decisions {
                    generation,
                    records: std::mem::take(&mut records),
                    commands: std::mem::take(&mut commands),
                });
                size = base;
            }
            records.extend(rs);
            commands.extend(cs);
            size += n;
        }
        out.push(Msg::Decisions {
            generation,
            records,
            commands,
        });
        out
    }
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
        /// The sender is locked (`clusvcadm -l`): nothing starts there.
        locked: bool,
        /// The sender's rgmanagerd shuts down and hands its services over.
        leaving: bool,
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
    /// The sender's rgmanagerd shuts down: hand its services over. From now on it starts
    /// nothing, so once it runs nothing (frozen services aside) its leave is clean.
    Leaving {
        /// What the sender runs now.
        running: Vec<ServiceIndex>,
    },
    /// The sender was locked or unlocked (`clusvcadm -l` / `-u`).
    Lock {
        /// Locked now.
        locked: bool,
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
    /// The group payload: the version byte, the sender's catalog fingerprint (eight bytes,
    /// little-endian: service indexes mean nothing under another configuration), the body.
    pub fn encode(&self, catalog: u64) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        out.extend(catalog.to_le_bytes());
        out.extend(body::encode(self));
        out
    }

    /// Decodes a group payload from `from`: the sender's catalog fingerprint and the message.
    pub fn decode(from: NodeId, payload: &[u8]) -> Result<(u64, Msg), CoordError> {
        let (&version, rest) = payload.split_first().ok_or(CoordError::Empty { from })?;
        if version != PROTOCOL_VERSION {
            return Err(CoordError::Version {
                from,
                found: version,
            });
        }
        let (id, rest) = rest.split_first_chunk::<8>().ok_or(CoordError::Decode {
            from,
            reason: "no catalog fingerprint".into(),
        })?;
        let m = body::decode(rest).map_err(|e| CoordError::Decode {
            from,
            reason: e.to_string(),
        })?;
        Ok((u64::from_le_bytes(*id), m))
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
                locked: true,
                leaving: false,
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
            Msg::Leaving {
                running: vec![ServiceIndex(4)],
            },
            Msg::Lock { locked: true },
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
                total: 1,
                first: 0,
                records: vec![(ServiceRecord::new(), Intent::initial(false))],
                pending: vec![(
                    NodeId(4),
                    PendingFence {
                        incarnation: 2,
                        cold: false,
                        running: vec![ServiceIndex(1)],
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
            assert_eq!(Msg::decode(NodeId(1), &m.encode(0xabc)), Ok((0xabc, m)));
        }
    }

    #[test]
    fn empty_and_foreign_versions_are_rejected_with_the_sender() {
        assert_eq!(
            Msg::decode(NodeId(5), &[]),
            Err(CoordError::Empty { from: NodeId(5) })
        );
        let mut p = samples()[0].encode(1);
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

    fn big_table(services: u32) -> Table {
        let mut rec = ServiceRecord::new();
        rec.owner = Some(NodeId(7));
        rec.transition = Some(crate::Millis(1_234_567_890));
        Table {
            gv: gv(),
            generation: 9,
            total: services,
            first: 0,
            records: (0..services)
                .map(|_| (rec.clone(), Intent::initial(true)))
                .collect(),
            pending: vec![(
                NodeId(4),
                PendingFence {
                    incarnation: 2,
                    cold: false,
                    running: vec![],
                },
            )],
            migrations: vec![(ServiceIndex(3), NodeId(1), NodeId(2))],
        }
    }

    #[test]
    fn a_large_table_travels_in_parts_that_fit_and_join_back() {
        let whole = big_table(10_000);
        let parts = whole.clone().split();
        assert!(parts.len() > 5, "{} parts", parts.len());
        for p in &parts {
            let len = Msg::Table(p.clone()).encode(u64::MAX).len();
            assert!(len <= crate::membership::MAX_PAYLOAD, "{len} bytes");
        }
        assert!(parts[1..].iter().all(|p| p.pending.is_empty()));
        let mut it = parts.into_iter();
        let mut acc = it.next().expect("a first part");
        for p in it {
            assert!(!acc.complete());
            assert!(acc.join(p));
        }
        assert!(acc.complete());
        assert_eq!(acc, whole);
        assert_eq!(
            big_table(3).split(),
            vec![big_table(3)],
            "a small table is one part"
        );
    }

    #[test]
    fn a_part_that_does_not_follow_is_refused() {
        let parts = big_table(5_000).split();
        let mut acc = parts[0].clone();
        assert!(!acc.join(parts[2].clone()), "a gap");
        let mut other = parts[1].clone();
        other.generation += 1;
        assert!(!acc.join(other), "another generation");
        assert!(acc.join(parts[1].clone()));
    }

    #[test]
    fn a_large_decision_round_is_split_by_service() {
        let records: Vec<RecordUpdate> = (0..10_000)
            .map(|i| RecordUpdate {
                service: ServiceIndex(i),
                record: ServiceRecord::new(),
                intent: Intent::initial(true),
            })
            .collect();
        let commands: Vec<Command> = (0..10_000)
            .map(|i| Command::Start {
                service: ServiceIndex(i),
                node: NodeId(1 + i % 32),
            })
            .collect();
        let msgs = Msg::decisions(5, records, commands);
        assert!(msgs.len() > 5, "{} messages", msgs.len());
        let (mut nr, mut nc) = (0, 0);
        for m in &msgs {
            assert!(m.encode(u64::MAX).len() <= crate::membership::MAX_PAYLOAD);
            let Msg::Decisions {
                generation,
                records,
                commands,
            } = m
            else {
                panic!("not decisions: {m:?}");
            };
            assert_eq!(*generation, 5);
            // A service's record and its command travel together.
            let rs: Vec<ServiceIndex> = records.iter().map(|r| r.service).collect();
            let cs: Vec<ServiceIndex> = commands.iter().map(|c| c.service()).collect();
            assert_eq!(rs, cs);
            nr += records.len();
            nc += commands.len();
        }
        assert_eq!((nr, nc), (10_000, 10_000));
        assert_eq!(
            Msg::decisions(5, vec![], vec![]).len(),
            1,
            "a bare generation bump"
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Msg::decode(NodeId(1), &bytes);
        }

        #[test]
        fn truncated_messages_are_errors(cut in 0usize..64) {
            for m in samples() {
                let p = m.encode(42);
                if cut < p.len() {
                    prop_assert!(Msg::decode(NodeId(1), &p[..cut]).is_err());
                }
            }
        }
    }
}
