//! What membership cores say to each other. The shell puts a [`Msg`] in a wire frame whose
//! header carries the sender's node id and incarnation, so no message repeats them.

use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest group payload a client may send (bytes).
pub const MAX_PAYLOAD: usize = 16 * 1024;
/// Largest cluster.conf text the core will distribute (bytes).
pub const MAX_CONFIG_TEXT: usize = 32 * 1024;
/// Largest group name (bytes).
pub const MAX_GROUP_NAME: usize = 64;
/// Most groups one node may be joined to at once.
pub const MAX_GROUPS_PER_NODE: usize = 32;
/// Bytes of not-yet-stable ordered entries a sequencer keeps at most (plus one entry when
/// its window is empty). This bounds every Accept tail and every Commit flush, so both stay
/// well inside the shell's 64 KiB datagram limit.
pub const WINDOW_BYTES: usize = 40 * 1024;
/// Most nodes a cluster may have (bounds list lengths in received messages).
pub const MAX_NODES: usize = 256;

/// Identifies one installed view. Ordered by epoch first; the coordinator's id and
/// incarnation make it unique: a coordinator proposes each of its ViewIds once, and a
/// restarted coordinator (new incarnation) cannot reuse one of its former life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ViewId {
    /// Grows with every proposal; "Cluster Generation" in `cman_tool status`.
    pub epoch: u64,
    /// The node that proposed the view and sequences its group messages.
    pub coordinator: NodeId,
    /// The coordinator's incarnation when it proposed.
    pub incarnation: u64,
}

impl Default for ViewId {
    fn default() -> ViewId {
        ViewId {
            epoch: 0,
            coordinator: NodeId(0),
            incarnation: 0,
        }
    }
}

impl fmt::Display for ViewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}.{}",
            self.epoch, self.coordinator, self.incarnation
        )
    }
}

/// A node's expected votes with the generation of the last reconfiguration that set it.
/// Merging takes the maximum by (generation, votes): the highest value wins among equal
/// generations (cman's `max(own, peer's)`), and an ordered reconfiguration (`cman_tool
/// expected`, `leave remove`) beats older values even when it lowered them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExpectedVotes {
    /// Number of reconfigurations applied.
    pub generation: u64,
    /// The expected votes.
    pub votes: u32,
}

/// A node's "heard set" as its origin last sent it: which nodes (at which incarnation) it
/// heard within the token timeout. Rows are relayed, so every node of a connected set
/// computes the same connectivity graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The node whose row this is.
    pub node: NodeId,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its heartbeat sequence number when it made the row (newer wins).
    pub seq: u64,
    /// Nodes it heard, sorted by id.
    pub heard: Vec<(NodeId, u64)>,
}

/// Sent to every configured node every heartbeat interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Sender's heartbeat counter (per incarnation).
    pub seq: u64,
    /// Sender's installed view.
    pub view: Option<ViewId>,
    /// Highest contiguous ordered sequence number delivered in `view`.
    pub ack: u64,
    /// When the sender sequences `view`: the highest sequence number it assigned.
    pub high: u64,
    /// When the sender sequences `view`: the highest sequence number all members delivered.
    pub stable: u64,
    /// Sender's expected votes.
    pub expected: ExpectedVotes,
    /// Version of the cluster.conf the sender holds.
    pub config_version: u64,
    /// The sender's own row first, then the freshest rows it holds of other nodes.
    pub rows: Vec<Row>,
}

/// What an ordered entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// The origin joins a group.
    Join {
        /// Group name.
        group: String,
    },
    /// The origin leaves a group.
    Leave {
        /// Group name.
        group: String,
    },
    /// A group message.
    Message {
        /// Group name.
        group: String,
        /// Opaque payload, at most [`MAX_PAYLOAD`] bytes.
        payload: Vec<u8>,
    },
    /// `cman_tool expected -e N`: every member sets its expected votes to N.
    Expected {
        /// New expected votes.
        votes: u32,
    },
    /// `ccs_tool update`: a new cluster.conf.
    Config {
        /// Its config_version.
        version: u64,
        /// The file's text.
        text: String,
    },
}

impl Body {
    /// Approximate bytes this body occupies, for the sequencer's window.
    pub fn size(&self) -> usize {
        32 + match self {
            Body::Join { group } | Body::Leave { group } => group.len(),
            Body::Message { group, payload } => group.len() + payload.len(),
            Body::Expected { .. } => 4,
            Body::Config { text, .. } => 8 + text.len(),
        }
    }
}

/// One client submission, as the sequencer orders it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Node that submitted it.
    pub origin: NodeId,
    /// Its incarnation.
    pub origin_inc: u64,
    /// The origin's submission counter (per incarnation; FIFO per origin).
    pub local_id: u64,
    /// What it carries.
    pub body: Body,
}

/// The coordinator asks the listed nodes to form `view`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Propose {
    /// The proposed view.
    pub view: ViewId,
    /// Proposed members with incarnations, sorted by id.
    pub members: Vec<(NodeId, u64)>,
}

/// A member's promise for a proposal, with the state the coordinator needs for the flush.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    /// The proposal accepted.
    pub view: ViewId,
    /// The member's installed view (None for a node that never installed one).
    pub old_view: Option<ViewId>,
    /// Members of `old_view`.
    pub old_members: Vec<(NodeId, u64)>,
    /// Highest contiguous sequence number delivered in `old_view`.
    pub delivered: u64,
    /// Highest sequence number the member knows every member of `old_view` delivered.
    pub stable: u64,
    /// Ordered entries of `old_view` the member holds above `stable` (delivered or not).
    pub tail: Vec<(u64, Entry)>,
    /// Groups the member is joined to (as of `delivered`).
    pub groups: Vec<String>,
    /// The member's expected votes.
    pub expected: ExpectedVotes,
    /// Nodes the member saw leave with `remove`.
    pub removed: Vec<(NodeId, u64)>,
    /// Nodes the member holds as expelled.
    pub expelled: Vec<(NodeId, u64)>,
    /// The member's cluster.conf version.
    pub config_version: u64,
}

/// Why a member refused a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NackReason {
    /// It promised a view at least as high.
    Promised,
    /// It does not see the proposer as the lowest node id of its own connected set.
    NotCoordinator,
    /// It is not in the list, or with another incarnation.
    NotListed,
}

/// The old view's messages every member coming from it must deliver before installing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flush {
    /// The old view.
    pub old_view: ViewId,
    /// Every sequence number to have delivered (ascending); gaps nobody holds are skipped.
    pub seqs: Vec<u64>,
    /// The entries of `seqs` this member did not report holding.
    pub entries: Vec<(u64, Entry)>,
}

/// The coordinator's decision, tailored per member (its flush part differs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The view to install.
    pub view: ViewId,
    /// Its members with incarnations, sorted by id.
    pub members: Vec<(NodeId, u64)>,
    /// Expected votes every member takes.
    pub expected: ExpectedVotes,
    /// Whether this install may lower the quorum (a `leave remove` completed).
    pub allow_decrease: bool,
    /// Nodes every member holds as expelled from now on.
    pub expelled: Vec<(NodeId, u64)>,
    /// Group membership in the new view, sorted by name.
    pub groups: Vec<(String, Vec<NodeId>)>,
    /// What this member delivers from its old view first.
    pub flush: Option<Flush>,
}

/// Why a node is told to exit (cman's kill reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KillReason {
    /// `cman_tool kill`.
    CmanTool,
    /// It came back without a restart after being removed by a quorate view.
    Rejoin,
}

/// Everything membership cores send each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Liveness, heard sets, acks.
    Heartbeat(Heartbeat),
    /// Phase 1 of a view change.
    Propose(Propose),
    /// A member's promise.
    Accept(Accept),
    /// A member's refusal.
    Nack {
        /// The refused proposal.
        view: ViewId,
        /// The highest view the member promised.
        promised: ViewId,
        /// Why.
        reason: NackReason,
    },
    /// Phase 2: install.
    Commit(Commit),
    /// A member installed `view`.
    CommitAck {
        /// The installed view.
        view: ViewId,
    },
    /// A client submission on its way to the sequencer.
    Data {
        /// The view it is sent in.
        view: ViewId,
        /// The origin's lowest unsequenced local id when sending.
        low: u64,
        /// The submission.
        entry: Entry,
    },
    /// A sequenced entry.
    Ordered {
        /// Its view.
        view: ViewId,
        /// Its position in the view's total order (from 1).
        seq: u64,
        /// The sequencer's stable point when sending.
        stable: u64,
        /// The entry.
        entry: Entry,
    },
    /// A member asks the sequencer to resend `from..=to`.
    Retransmit {
        /// The view.
        view: ViewId,
        /// First missing sequence number.
        from: u64,
        /// Last wanted sequence number.
        to: u64,
    },
    /// The sender leaves the cluster (`cman_tool leave [remove]`).
    Leave {
        /// Whether the survivors lower expected votes.
        remove: bool,
    },
    /// The receiver must exit.
    Kill {
        /// Why.
        reason: KillReason,
        /// The incarnation being killed (a restarted node ignores an old kill).
        target_incarnation: u64,
        /// Whether the sender's view was quorate.
        quorate: bool,
    },
    /// State transfer: a member lagging in config version gets the newest text.
    ConfigPush {
        /// Its config_version.
        version: u64,
        /// The text.
        text: String,
    },
}

impl Msg {
    /// Short kind name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Heartbeat(_) => "heartbeat",
            Msg::Propose(_) => "propose",
            Msg::Accept(_) => "accept",
            Msg::Nack { .. } => "nack",
            Msg::Commit(_) => "commit",
            Msg::CommitAck { .. } => "commit-ack",
            Msg::Data { .. } => "data",
            Msg::Ordered { .. } => "ordered",
            Msg::Retransmit { .. } => "retransmit",
            Msg::Leave { .. } => "leave",
            Msg::Kill { .. } => "kill",
            Msg::ConfigPush { .. } => "config-push",
        }
    }

    /// Checks the bounds a well-behaved peer respects. A message failing this is dropped
    /// whole; nothing in it changes state.
    pub fn validate(&self) -> Result<(), MsgError> {
        match self {
            Msg::Heartbeat(hb) => {
                bound("rows", hb.rows.len(), MAX_NODES)?;
                for row in &hb.rows {
                    bound("heard", row.heard.len(), MAX_NODES)?;
                }
                Ok(())
            }
            Msg::Propose(p) => bound("members", p.members.len(), MAX_NODES),
            Msg::Accept(a) => {
                bound("old members", a.old_members.len(), MAX_NODES)?;
                bound("removed", a.removed.len(), MAX_NODES)?;
                bound("expelled", a.expelled.len(), MAX_NODES)?;
                bound("groups", a.groups.len(), MAX_GROUPS_PER_NODE)?;
                for g in &a.groups {
                    check_group(g)?;
                }
                for (_, e) in &a.tail {
                    check_body(&e.body)?;
                }
                bound("tail", a.tail.len(), WINDOW_BYTES)
            }
            Msg::Commit(c) => {
                bound("members", c.members.len(), MAX_NODES)?;
                bound("expelled", c.expelled.len(), MAX_NODES)?;
                for (g, m) in &c.groups {
                    check_group(g)?;
                    bound("group members", m.len(), MAX_NODES)?;
                }
                if let Some(f) = &c.flush {
                    bound("flush", f.seqs.len(), WINDOW_BYTES)?;
                    for (_, e) in &f.entries {
                        check_body(&e.body)?;
                    }
                }
                Ok(())
            }
            Msg::Data { entry, .. } | Msg::Ordered { entry, .. } => check_body(&entry.body),
            Msg::ConfigPush { text, .. } => bound("config text", text.len(), MAX_CONFIG_TEXT),
            Msg::Nack { .. }
            | Msg::CommitAck { .. }
            | Msg::Retransmit { .. }
            | Msg::Leave { .. }
            | Msg::Kill { .. } => Ok(()),
        }
    }
}

/// A received message broke a bound. It was dropped; no state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MsgError {
    /// A list or byte string is longer than allowed.
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A group name is empty.
    EmptyGroup,
}

impl fmt::Display for MsgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MsgError::TooLong { field, len, max } => {
                write!(
                    f,
                    "{field} has {len} items or bytes, more than the {max} allowed"
                )
            }
            MsgError::EmptyGroup => write!(f, "empty group name"),
        }
    }
}

impl std::error::Error for MsgError {}

fn bound(field: &'static str, len: usize, max: usize) -> Result<(), MsgError> {
    if len > max {
        return Err(MsgError::TooLong { field, len, max });
    }
    Ok(())
}

pub(super) fn check_group(group: &str) -> Result<(), MsgError> {
    if group.is_empty() {
        return Err(MsgError::EmptyGroup);
    }
    bound("group name", group.len(), MAX_GROUP_NAME)
}

pub(super) fn check_body(body: &Body) -> Result<(), MsgError> {
    match body {
        Body::Join { group } | Body::Leave { group } => check_group(group),
        Body::Message { group, payload } => {
            check_group(group)?;
            bound("payload", payload.len(), MAX_PAYLOAD)
        }
        Body::Expected { .. } => Ok(()),
        Body::Config { text, .. } => bound("config text", text.len(), MAX_CONFIG_TEXT),
    }
}
