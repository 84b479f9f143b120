//! What the shell gives the membership core and what it gets back.

use super::msg::{KillReason, Msg, ViewId};
use crate::quorum::{ExpectedError, QuorumState};
use crate::NodeId;
use std::fmt;

/// Default `<totem token>` of our cmand (ms): a dead node leaves the view in about a second.
pub const DEFAULT_TOKEN_MS: u64 = 1000;
/// Default `<cman max_queued>`: outstanding group messages per node.
pub const DEFAULT_MAX_QUEUED: usize = 128;

/// One configured node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeConf {
    /// `<clusternode nodeid>`.
    pub id: NodeId,
    /// `<clusternode votes>` (0..=255).
    pub votes: u32,
}

/// Everything the core needs from cluster.conf and the daemon's start; the shell builds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipConfig {
    /// This node.
    pub me: NodeId,
    /// This daemon start's incarnation; must grow with every restart of the node.
    pub incarnation: u64,
    /// Every configured node, this one included.
    pub nodes: Vec<NodeConf>,
    /// Initial expected votes (`<cman expected_votes>` or the sum of node votes).
    pub expected_votes: u32,
    /// `<cman two_node="1">`.
    pub two_node: bool,
    /// `<totem token>` (ms): a peer not heard for this long is suspected.
    pub token_ms: u64,
    /// `<cman quorum_dev_poll>` (ms): the quorum device is dead without an update this long.
    pub quorum_dev_poll_ms: u64,
    /// `<cman max_queued>`: unsent group submissions per node before "busy".
    pub max_queued: usize,
    /// config_version of the cluster.conf the daemon started with.
    pub config_version: u64,
    /// Its text (sent to members that lag behind).
    pub config_text: String,
}

impl MembershipConfig {
    /// A configuration with the defaults: expected votes = sum of votes, token 1000 ms,
    /// quorum_dev_poll = token, max_queued 128, config version 0.
    pub fn new(me: NodeId, incarnation: u64, nodes: Vec<NodeConf>) -> MembershipConfig {
        let expected_votes = nodes.iter().map(|n| n.votes).fold(0, u32::saturating_add);
        MembershipConfig {
            me,
            incarnation,
            nodes,
            expected_votes,
            two_node: false,
            token_ms: DEFAULT_TOKEN_MS,
            quorum_dev_poll_ms: DEFAULT_TOKEN_MS,
            max_queued: DEFAULT_MAX_QUEUED,
            config_version: 0,
            config_text: String::new(),
        }
    }
}

/// The protocol's timers, all derived from the token timeout (docs/membership.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A peer not heard for this long is suspected (ms).
    pub token_ms: u64,
    /// Heartbeat period: token/5, at least 20 ms; each beat comes up to 1/5 of it early.
    pub heartbeat_ms: u64,
    /// How long the coordinator's connected set must be unchanged before it proposes.
    pub settle_ms: u64,
    /// Nothing is proposed this long after start, so a booting node hears its peers first.
    pub startup_ms: u64,
    /// The coordinator drops members that did not accept within this.
    pub accept_timeout_ms: u64,
    /// A member that accepted gives up waiting for the commit after this.
    pub commit_wait_ms: u64,
    /// Period of resends: proposals, commits, retransmit requests, unsequenced data.
    pub resend_ms: u64,
    /// A row not refreshed for this long is forgotten (= token: a dead node's row goes
    /// when its peers stop hearing it, so its stale edges cannot split the survivors).
    pub row_expiry_ms: u64,
}

impl Timing {
    /// The timers for a token timeout of `token_ms`.
    pub fn from_token(token_ms: u64) -> Timing {
        let heartbeat_ms = (token_ms / 5).max(20);
        Timing {
            token_ms,
            heartbeat_ms,
            settle_ms: heartbeat_ms / 2,
            startup_ms: 2 * heartbeat_ms,
            accept_timeout_ms: 2 * heartbeat_ms,
            commit_wait_ms: 4 * heartbeat_ms,
            resend_ms: (heartbeat_ms / 2).max(10),
            row_expiry_ms: token_ms,
        }
    }

    /// Upper bound (without message loss) from a node's crash until every survivor
    /// installed a view without it, given a one-way network delay bound `delay_ms`:
    /// detection (token) + settle + propose/accept/commit (3 delays) + the earliest-beat
    /// jitter, plus one failed round (accept timeout + backoff) of slack.
    pub fn crash_bound_ms(&self, delay_ms: u64) -> u64 {
        self.token_ms
            + self.settle_ms
            + 3 * delay_ms
            + self.heartbeat_ms
            + self.accept_timeout_ms
            + self.heartbeat_ms
    }
}

/// Why the shell configured the core wrongly. Nothing was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipError {
    /// `me` is not among the configured nodes.
    NotConfigured {
        /// This node's id.
        me: NodeId,
    },
    /// Node id 0 is the quorum device's.
    ReservedNodeId,
    /// A node id appears twice.
    DuplicateNode {
        /// The id.
        node: NodeId,
    },
    /// A node has more than 255 votes.
    TooManyVotes {
        /// The node.
        node: NodeId,
        /// Its votes.
        votes: u32,
    },
    /// More nodes than the protocol's bound.
    TooManyNodes {
        /// How many were given.
        count: usize,
    },
    /// two_node needs exactly two nodes of one vote each.
    TwoNode {
        /// How many nodes were given.
        nodes: usize,
    },
    /// The token timeout is below 100 ms.
    TokenTooShort {
        /// The value given.
        token_ms: u64,
    },
    /// max_queued is zero.
    NoQueue,
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipError::NotConfigured { me } => {
                write!(f, "node {me} is not among the configured nodes")
            }
            MembershipError::ReservedNodeId => {
                write!(f, "node id 0 is reserved for the quorum device")
            }
            MembershipError::DuplicateNode { node } => write!(f, "node id {node} appears twice"),
            MembershipError::TooManyVotes { node, votes } => {
                write!(f, "node {node} has {votes} votes, more than 255")
            }
            MembershipError::TooManyNodes { count } => {
                write!(
                    f,
                    "{count} nodes configured, more than {}",
                    super::msg::MAX_NODES
                )
            }
            MembershipError::TwoNode { nodes } => write!(
                f,
                "two_node is set but there are {nodes} nodes, not 2 nodes of 1 vote each"
            ),
            MembershipError::TokenTooShort { token_ms } => {
                write!(f, "token timeout {token_ms} ms is below the 100 ms minimum")
            }
            MembershipError::NoQueue => write!(f, "max_queued must be at least 1"),
        }
    }
}

impl std::error::Error for MembershipError {}

/// A local client's request (cman_tool, qdiskd, fenced, rgmanagerd through the shell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRequest {
    /// `cman_tool leave [remove]`: leave the cluster; the core then asks to shut down.
    Leave {
        /// Survivors lower expected votes to their node count.
        remove: bool,
    },
    /// `cman_tool kill -n NODE`.
    KillNode(NodeId),
    /// `cman_tool expected -e N`.
    SetExpected(u32),
    /// qdiskd's periodic report (register/poll/update in one).
    QdiskUpdate {
        /// Device name (as `cman_tool nodes` shows it).
        name: String,
        /// Its votes.
        votes: u32,
        /// Whether qdiskd considers this node's device membership alive (poll(1) vs poll(0)).
        alive: bool,
    },
    /// Join a group.
    GroupJoin {
        /// Group name.
        group: String,
    },
    /// Leave a group.
    GroupLeave {
        /// Group name.
        group: String,
    },
    /// Send to a group in total order.
    GroupSend {
        /// Group name.
        group: String,
        /// At most [`super::MAX_PAYLOAD`] bytes.
        payload: Vec<u8>,
    },
    /// `ccs_tool update`: distribute a validated cluster.conf in order.
    ConfigUpdate {
        /// Its config_version.
        version: u64,
        /// Its text.
        text: String,
    },
}

/// One event for the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A timer fired (the shell calls this at or after [`super::Membership::next_deadline`]).
    Tick,
    /// An authenticated message; `from` and `incarnation` come from the frame header.
    Message {
        /// Sender node.
        from: NodeId,
        /// Sender incarnation.
        incarnation: u64,
        /// The message.
        msg: Msg,
    },
    /// A local client's request; the answer is an [`Action::Reply`] with the same id.
    Request {
        /// Chosen by the shell to route the reply.
        id: u64,
        /// The request.
        request: ClientRequest,
    },
}

/// Why a request was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Too many outstanding group messages (`max_queued`); retry later.
    Busy,
    /// Payload, name or text too large or empty.
    Invalid(super::msg::MsgError),
    /// Not joined to the group.
    NotJoined {
        /// The group.
        group: String,
    },
    /// Already joined (or joining) the group.
    AlreadyJoined {
        /// The group.
        group: String,
    },
    /// Too many groups joined.
    TooManyGroups,
    /// The node is neither a member nor expelled (cman: EINVAL).
    UnknownNode {
        /// The node.
        node: NodeId,
    },
    /// No view is installed yet (cman: "Node is not yet a cluster member").
    NotMember,
    /// The expected votes value was refused.
    Expected(ExpectedError),
    /// An expelled node is present (cman refuses `expected` while disallowed nodes exist).
    ExpelledPresent,
    /// The config version is not newer than the one held.
    OldConfig {
        /// Offered.
        version: u64,
        /// Held.
        current: u64,
    },
    /// The node is leaving.
    Leaving,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Busy => write!(f, "busy: too many outstanding messages"),
            RequestError::Invalid(e) => write!(f, "invalid request: {e}"),
            RequestError::NotJoined { group } => write!(f, "not joined to group {group}"),
            RequestError::AlreadyJoined { group } => write!(f, "already joined to group {group}"),
            RequestError::TooManyGroups => write!(f, "too many groups joined"),
            RequestError::UnknownNode { node } => {
                write!(f, "node {node} is neither a member nor disallowed")
            }
            RequestError::NotMember => write!(f, "node is not yet a cluster member"),
            RequestError::Expected(e) => write!(f, "can't set expected votes: {e}"),
            RequestError::ExpelledPresent => {
                write!(
                    f,
                    "can't set expected votes while disallowed nodes are present"
                )
            }
            RequestError::OldConfig { version, current } => write!(
                f,
                "config version {version} is not newer than the current {current}"
            ),
            RequestError::Leaving => write!(f, "node is leaving the cluster"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Invalid(e) => Some(e),
            RequestError::Expected(e) => Some(e),
            _ => None,
        }
    }
}

/// Why the core asks the daemon to exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// `cman_tool leave` finished.
    Left,
    /// Another node killed us.
    Killed {
        /// The killer.
        by: NodeId,
        /// Why.
        reason: KillReason,
    },
}

/// What the core asks of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `msg` to `to` (unicast; the shell may batch).
    Send {
        /// Destination.
        to: NodeId,
        /// Message.
        msg: Msg,
    },
    /// A new view is installed (after the old view's flush was delivered).
    ViewInstalled {
        /// Its id.
        view: ViewId,
        /// Members with incarnations, sorted by id.
        members: Vec<(NodeId, u64)>,
    },
    /// The quorum state changed.
    QuorumChanged(QuorumState),
    /// Membership of a group this node is (or was, until now) in changed.
    GroupView {
        /// Group.
        group: String,
        /// View in which it happened.
        view: ViewId,
        /// Sequence number of the join/leave that caused it (0 for a view change).
        seq: u64,
        /// Members now, sorted.
        members: Vec<NodeId>,
        /// Nodes that joined.
        joined: Vec<NodeId>,
        /// Nodes that left.
        left: Vec<NodeId>,
    },
    /// A group message, delivered in the view's total order.
    Deliver {
        /// Group.
        group: String,
        /// View it was ordered in.
        view: ViewId,
        /// Its sequence number there.
        seq: u64,
        /// Sender.
        from: NodeId,
        /// Payload.
        payload: Vec<u8>,
    },
    /// Answer to a request.
    Reply {
        /// The request id.
        id: u64,
        /// Accepted, or why not.
        result: Result<(), RequestError>,
    },
    /// A newer cluster.conf arrived; the shell validates and writes it.
    ConfigUpdate {
        /// config_version.
        version: u64,
        /// Text.
        text: String,
    },
    /// The daemon must exit; the core processes nothing more.
    Shutdown {
        /// Why.
        reason: ShutdownReason,
    },
}

/// How this node sees another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// In the installed view.
    Member,
    /// Heard but not (yet) in the view.
    Joining,
    /// Not heard and not a member.
    Dead,
    /// Came back with the incarnation a quorate view removed (cman's "disallowed").
    Expelled,
    /// Left with `cman_tool leave`.
    Left,
    /// Killed with `cman_tool kill`.
    Killed,
}

/// One row of the node list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Node.
    pub id: NodeId,
    /// Configured votes.
    pub votes: u32,
    /// Last known incarnation (0 if never heard).
    pub incarnation: u64,
    /// State.
    pub state: NodeState,
}

/// Counters for `cman_tool status` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Views installed.
    pub views_installed: u64,
    /// Proposals started as coordinator.
    pub proposals: u64,
    /// Proposals abandoned (timeout or nack).
    pub proposals_failed: u64,
    /// Ordered entries delivered.
    pub delivered: u64,
    /// Messages dropped as malformed, stale or from unknown nodes.
    pub dropped: u64,
    /// Kill messages sent.
    pub kills_sent: u64,
}

/// The quorum device as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QdiskStatus {
    /// Registered name.
    pub name: String,
    /// Votes.
    pub votes: u32,
    /// Whether it currently counts.
    pub member: bool,
}

/// A snapshot for `cman_tool status` / `nodes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub me: NodeId,
    /// Its incarnation.
    pub incarnation: u64,
    /// Installed view.
    pub view: Option<ViewId>,
    /// Its members.
    pub members: Vec<(NodeId, u64)>,
    /// Quorum state (None before the first view).
    pub quorum: Option<crate::quorum::QuorumState>,
    /// This node's expected votes.
    pub expected_votes: u32,
    /// two_node mode.
    pub two_node: bool,
    /// The quorum device, if registered.
    pub qdisk: Option<QdiskStatus>,
    /// Held cluster.conf version.
    pub config_version: u64,
    /// Whether a `leave` is in progress.
    pub leaving: bool,
    /// Every configured node, sorted by id.
    pub nodes: Vec<NodeStatus>,
    /// Counters.
    pub counters: Counters,
}
