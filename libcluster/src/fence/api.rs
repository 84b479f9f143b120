//! What the fenced shell gives the domain core and what it gets back.

use crate::config::ClusterConf;
use crate::ipc::fence::{FenceDomainInfo, FenceRecord};
use crate::NodeId;

/// Default first back-off after a failed attempt (ms).
pub const DEFAULT_RETRY_INITIAL_MS: u64 = 1000;
/// Default longest back-off between attempts (ms).
pub const DEFAULT_RETRY_MAX_MS: u64 = 30_000;
/// Identical failure logs after this many failed attempts of one victim are suppressed.
pub const LOGGED_FAILURES: u32 = 3;
/// While suppressed, one `still retrying` line every this many attempts (as C3).
pub const STILL_RETRYING_EVERY: u32 = 600;

/// fenced's timing and start-up settings (`<fence_daemon>` plus our retry back-off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceSettings {
    /// `post_join_delay` in ms; `None` (−1) waits until the victims rejoin.
    pub post_join_delay_ms: Option<u64>,
    /// `post_fail_delay` in ms; `None` (−1) waits until the victims rejoin.
    pub post_fail_delay_ms: Option<u64>,
    /// `clean_start`: no start-up fencing at all.
    pub clean_start: bool,
    /// C3's `-s`: start-up fencing skips nodes without a `<method>`.
    pub skip_undefined: bool,
    /// `override_time` in ms (at least 3 s). Kept for `fence_tool` and the shell: our
    /// acknowledgements arrive at any time, so the core does not wait on it.
    pub override_time_ms: u64,
    /// First back-off after a failed attempt.
    pub retry_initial_ms: u64,
    /// The back-off doubles after every failure up to this.
    pub retry_max_ms: u64,
}

impl Default for FenceSettings {
    fn default() -> FenceSettings {
        FenceSettings {
            post_join_delay_ms: Some(6000),
            post_fail_delay_ms: Some(0),
            clean_start: false,
            skip_undefined: false,
            override_time_ms: 3000,
            retry_initial_ms: DEFAULT_RETRY_INITIAL_MS,
            retry_max_ms: DEFAULT_RETRY_MAX_MS,
        }
    }
}

impl FenceSettings {
    /// The back-off after the `failures`-th consecutive failure (1-based): initial, doubling,
    /// capped at the maximum.
    pub fn backoff_ms(&self, failures: u32) -> u64 {
        let shift = failures.saturating_sub(1).min(32);
        self.retry_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.retry_max_ms.max(self.retry_initial_ms))
    }
}

/// One configured node as the domain needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// `<clusternode nodeid>`.
    pub id: NodeId,
    /// `<clusternode name>`, used in log lines and [`Action::Fence`].
    pub name: String,
    /// Whether the node has at least one `<method>`.
    pub has_methods: bool,
}

/// The result of running every method once for one attempt (libfence style).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// Some method succeeded.
    pub success: bool,
    /// The method that succeeded (its name).
    pub method: Option<String>,
    /// The last device of that method.
    pub device: Option<String>,
}

/// One event for the domain core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// `fence_tool join`.
    Join,
    /// `fence_tool leave`: announced to the domain, then the group is left.
    Leave,
    /// cmand installed a view. Must come before the group views of the same cmand view.
    ClusterView {
        /// cmand's view epoch.
        generation: u64,
        /// Members with their cmand incarnations.
        members: Vec<(NodeId, u64)>,
    },
    /// cmand's quorum changed.
    Quorum {
        /// Whether the cluster is quorate.
        quorate: bool,
    },
    /// The membership of [`crate::ipc::fence::DOMAIN_GROUP`] changed.
    GroupView {
        /// cmand's view epoch it happened in.
        generation: u64,
        /// Members now.
        members: Vec<NodeId>,
        /// Nodes that joined.
        joined: Vec<NodeId>,
        /// Nodes that left.
        left: Vec<NodeId>,
    },
    /// A message of the domain group, in the group's total order.
    Deliver {
        /// Sender.
        from: NodeId,
        /// Payload as sent by some member's [`Action::Send`].
        payload: Vec<u8>,
    },
    /// The agents of attempt `attempt` (from [`Action::Fence`]) finished.
    FenceDone {
        /// The victim.
        victim: NodeId,
        /// The attempt number the core gave.
        attempt: u64,
        /// What happened.
        outcome: AttemptOutcome,
    },
    /// `fence_ack_manual NODE` on this node.
    Acknowledge {
        /// The node.
        node: NodeId,
    },
    /// `fence_node` fenced a node from this node.
    External {
        /// The node.
        node: NodeId,
        /// The method that succeeded.
        method: Option<String>,
        /// Its last device.
        device: Option<String>,
    },
    /// cluster.conf changed.
    Reconfigure {
        /// The configured nodes.
        nodes: Vec<NodeEntry>,
        /// The settings.
        settings: FenceSettings,
    },
    /// A timer fired (call at or after [`super::Domain::next_deadline`]).
    Tick,
}

/// What the domain core asks of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send to the domain group (cmand GroupSend to `fenced:default`).
    Send(Vec<u8>),
    /// Join the domain group.
    JoinGroup,
    /// Leave the domain group.
    LeaveGroup,
    /// Run the victim's methods once, then report [`Input::FenceDone`] with `attempt`.
    Fence {
        /// The victim.
        victim: NodeId,
        /// Its cluster.conf name.
        name: String,
        /// Attempt number, unique per core.
        attempt: u64,
    },
    /// An attempt is no longer wanted (acknowledged or completed elsewhere); its result
    /// will be ignored. The shell may stop the agents.
    CancelFence {
        /// The victim.
        victim: NodeId,
        /// The attempt.
        attempt: u64,
    },
    /// Ask cmand to kill this node (its fenced died while its cmand lives).
    KillNode {
        /// The node.
        node: NodeId,
    },
    /// A node became a victim (publish [`crate::ipc::fence::FenceEvent::Victim`]).
    Victim {
        /// The node.
        node: NodeId,
        /// Its cmand incarnation when it failed (0 = start-up victim).
        incarnation: u64,
    },
    /// A fencing result reached this member (publish it; waiters ask again).
    Fenced(FenceRecord),
    /// The domain summary changed.
    DomainChanged(FenceDomainInfo),
    /// A log line in the original's words.
    Log(String),
    /// This node is now a domain member.
    Joined,
    /// This node is no longer a domain member.
    Left,
}

/// Nodes and settings from a parsed cluster.conf.
pub fn settings_from_config(conf: &ClusterConf) -> (Vec<NodeEntry>, FenceSettings) {
    let fd = &conf.fence_daemon;
    let delay = |s: i32| u64::try_from(s).ok().map(|s| s.saturating_mul(1000));
    let settings = FenceSettings {
        post_join_delay_ms: delay(fd.post_join_delay),
        post_fail_delay_ms: delay(fd.post_fail_delay),
        clean_start: fd.clean_start,
        override_time_ms: u64::from(fd.override_time.max(3)) * 1000,
        ..FenceSettings::default()
    };
    let nodes = conf
        .clusternodes
        .iter()
        .map(|n| NodeEntry {
            id: n.nodeid,
            name: n.name.clone(),
            has_methods: !n.fence.is_empty(),
        })
        .collect();
    (nodes, settings)
}
