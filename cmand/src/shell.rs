//! The loop: one task owns the membership core and turns the world into its inputs.
//!
//! ```text
//!   UDP recv ──open/check──▶ Input::Message ─┐
//!   core deadline ─────────▶ Input::Tick ────┤                 ┌─▶ Send: seal, unicast
//!   IPC Incoming ──map─────▶ Input::Request ─┼─▶ core.handle ──┼─▶ ViewInstalled, QuorumChanged,
//!   SIGTERM/SIGINT ────────▶ Leave request ──┘                 │   GroupView, Deliver: events,
//!   housekeeping (1 s): re-resolve names, dead group clients   │   history, logs
//!                                                              ├─▶ Reply: answer the client
//!                                                              ├─▶ ConfigUpdate: validate, write
//!                                                              └─▶ Shutdown: exit 0 / 1
//! ```
//!
//! The shell holds no protocol state: only what the core does not know (names, addresses,
//! wall-clock join times, which local process holds which group, counters of dropped
//! frames) and the replies it still owes.

use crate::frames::{self, Sender};
use crate::io::history::History;
use crate::io::hosts::Resolver;
use crate::setup::Setup;
use clusterio::{EventPublisher, Incoming};
use libcluster::config::ClusterConf;
use libcluster::history::Event;
use libcluster::ipc::cman::{CmanEvent, CmanRequest, CmanResponse};
use libcluster::ipc::ErrorReply;
use libcluster::membership::{Action, ClientRequest, Input, KillReason, Membership, ViewId};
use libcluster::wire::ClusterKey;
use libcluster::{Millis, NodeId};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

/// A request's answer channel.
pub type ReplyTx = oneshot::Sender<Result<CmanResponse, ErrorReply>>;

/// Datagram buffer: a little more than the largest frame (65,507 bytes).
const RECV_BUF: usize = 64 * 1024;
/// How long a leave may take before the daemon exits anyway.
pub const LEAVE_GRACE: Duration = Duration::from_secs(2);
/// Period of the housekeeping tick.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// Unresolved node names are tried again this often.
pub(crate) const RERESOLVE_EVERY: u32 = 5;

/// How the daemon ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Left the cluster cleanly (`cman_tool leave`, SIGTERM).
    Left,
    /// A leave did not finish within the grace period, or a second signal came.
    LeaveCutShort,
    /// Another node killed this one.
    Killed {
        /// The killer.
        by: NodeId,
        /// Why.
        reason: KillReason,
    },
}

impl Exit {
    /// The process exit status: 1 when killed (systemd's Restart=on-failure restarts it with
    /// a new incarnation), else 0.
    pub fn status(self) -> u8 {
        match self {
            Exit::Killed { .. } => 1,
            Exit::Left | Exit::LeaveCutShort => 0,
        }
    }

    /// In words, as logs, the Shutdown event and the history say it.
    pub fn reason(self) -> String {
        match self {
            Exit::Left => "left the cluster".into(),
            Exit::LeaveCutShort => "left the cluster (leave cut short)".into(),
            Exit::Killed { by, reason } => format!(
                "cman killed by node {by} because {}",
                match reason {
                    KillReason::CmanTool => "we were killed by cman_tool or other application",
                    KillReason::Rejoin => "we rejoined the cluster without a full restart",
                }
            ),
        }
    }
}

/// A configured node as the shell knows it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// `<clusternode name>`.
    pub name: String,
    /// Its address and port, once resolved.
    pub addr: Option<SocketAddr>,
}

/// What to do once the core accepted a request.
#[derive(Clone, Debug)]
pub enum AfterOk {
    /// Nothing more.
    Nothing,
    /// Record `pid` as the local holder of `group`.
    Joined {
        /// The group.
        group: String,
        /// The client process.
        pid: u32,
    },
    /// Forget the holder of `group`.
    LeftGroup {
        /// The group.
        group: String,
    },
    /// A leave was accepted: start the grace timer.
    Leaving,
}

/// A request handed to the core whose reply is still owed.
#[derive(Debug)]
pub struct Pending {
    /// The client's channel; `None` for the shell's own requests.
    pub reply: Option<ReplyTx>,
    /// The response on success.
    pub ok: CmanResponse,
    /// Bookkeeping on success.
    pub then: AfterOk,
    /// What it was, for logs.
    pub what: &'static str,
}

/// Which loop event woke the task.
enum Wake {
    Datagram(std::io::Result<(usize, SocketAddr)>),
    Request(Incoming<CmanRequest, CmanResponse>),
    Timer,
    Signal(&'static str),
    Grace,
    Housekeeping,
    Resolved(BTreeMap<String, IpAddr>),
}

/// The daemon's state around the core. See the module documentation.
pub struct Shell {
    pub(crate) core: Membership,
    pub(crate) rng: Xoshiro256PlusPlus,
    pub(crate) sock: UdpSocket,
    pub(crate) send_sock: std::net::UdpSocket,
    pub(crate) key: ClusterKey,
    pub(crate) sender: Sender,
    pub(crate) me_name: String,
    pub(crate) port: u16,
    pub(crate) nodes: BTreeMap<NodeId, NodeInfo>,
    pub(crate) resolver: Resolver,
    pub(crate) resolving: bool,
    pub(crate) resolve_ticks: u32,
    pub(crate) resolved_tx: mpsc::Sender<BTreeMap<String, IpAddr>>,
    pub(crate) resolved_rx: Option<mpsc::Receiver<BTreeMap<String, IpAddr>>>,
    pub(crate) epoch: Instant,
    pub(crate) started: std::time::Instant,
    pub(crate) counters: BTreeMap<String, u64>,
    pub(crate) last_drop_log: Option<Instant>,
    pub(crate) drops_unlogged: u64,
    pub(crate) events: EventPublisher<CmanEvent>,
    pub(crate) history: Option<History>,
    pub(crate) queue: VecDeque<Input>,
    pub(crate) pumping: bool,
    pub(crate) out: Vec<Action>,
    pub(crate) pending: BTreeMap<u64, Pending>,
    pub(crate) next_id: u64,
    pub(crate) view: Option<ViewId>,
    pub(crate) view_members: Vec<(NodeId, u64)>,
    pub(crate) joined_at: BTreeMap<NodeId, i64>,
    /// Last authenticated frame from each node: its incarnation and when.
    pub(crate) last_heard: BTreeMap<NodeId, (u64, Instant)>,
    pub(crate) quorate: bool,
    pub(crate) qdisk_joined: Option<i64>,
    pub(crate) qdisk_pid: Option<u32>,
    pub(crate) group_owners: BTreeMap<String, u32>,
    /// The configuration in force (updated by distributed updates).
    pub(crate) conf: ClusterConf,
    /// The configuration the daemon started with: what needs a restart is compared to it.
    pub(crate) boot_conf: ClusterConf,
    pub(crate) config_path: PathBuf,
    pub(crate) admin_gid: watch::Sender<Option<u32>>,
    pub(crate) grace: Option<Instant>,
    pub(crate) exit: Option<Exit>,
}

impl Shell {
    /// Wraps a prepared core and its socket.
    pub fn new(
        setup: Setup,
        sock: crate::io::udp::MembershipSocket,
        events: EventPublisher<CmanEvent>,
        history: Option<History>,
        admin_gid: watch::Sender<Option<u32>>,
        seed: u64,
    ) -> Shell {
        let port = setup.conf.cman.port;
        let nodes = setup
            .names
            .iter()
            .map(|(id, name)| {
                let addr = setup.addrs.get(id).map(|ip| SocketAddr::new(*ip, port));
                (
                    *id,
                    NodeInfo {
                        name: name.clone(),
                        addr,
                    },
                )
            })
            .collect();
        let mut counters = BTreeMap::new();
        for name in frames::drop_counter_names() {
            counters.insert(format!("drop_{name}"), 0);
        }
        for name in [
            "rx_frames",
            "rx_errors",
            "tx_frames",
            "tx_errors",
            "tx_unresolved",
            "tx_too_large",
        ] {
            counters.insert(name.to_string(), 0);
        }
        let (resolved_tx, resolved_rx) = mpsc::channel(1);
        Shell {
            sender: Sender {
                cluster_id: setup.conf.cluster_id(),
                me: setup.me,
                incarnation: setup.incarnation,
            },
            core: setup.core,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            sock: sock.recv,
            send_sock: sock.send,
            key: setup.key,
            me_name: setup.name,
            port,
            nodes,
            resolver: setup.resolver,
            resolving: false,
            resolve_ticks: 0,
            resolved_tx,
            resolved_rx: Some(resolved_rx),
            epoch: Instant::now(),
            started: std::time::Instant::now(),
            counters,
            last_drop_log: None,
            drops_unlogged: 0,
            events,
            history,
            queue: VecDeque::new(),
            pumping: false,
            out: Vec::new(),
            pending: BTreeMap::new(),
            next_id: 1,
            view: None,
            view_members: Vec::new(),
            joined_at: BTreeMap::new(),
            last_heard: BTreeMap::new(),
            quorate: false,
            qdisk_joined: None,
            qdisk_pid: None,
            group_owners: BTreeMap::new(),
            boot_conf: setup.conf.clone(),
            conf: setup.conf,
            config_path: setup.config_path,
            admin_gid,
            grace: None,
            exit: None,
        }
    }

    /// Runs until the core shuts down, a leave's grace period ends, or a second signal.
    pub async fn run(
        &mut self,
        mut requests: mpsc::Receiver<Incoming<CmanRequest, CmanResponse>>,
    ) -> Result<Exit, crate::error::DaemonError> {
        use crate::error::DaemonError;
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?;
        let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?;
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut resolved_rx = self
            .resolved_rx
            .take()
            .unwrap_or_else(|| mpsc::channel(1).1);
        let mut buf = vec![0u8; RECV_BUF];
        self.record(Event::Start);
        self.input(Input::Tick);
        loop {
            if let Some(exit) = self.exit.take() {
                return Ok(exit);
            }
            let wake = self.instant_of(self.core.next_deadline());
            let grace = self.grace;
            let woke = tokio::select! {
                r = self.sock.recv_from(&mut buf) => Wake::Datagram(r),
                Some(inc) = requests.recv() => Wake::Request(inc),
                () = sleep_until(wake) => Wake::Timer,
                Some(()) = term.recv() => Wake::Signal("SIGTERM"),
                Some(()) = int.recv() => Wake::Signal("SIGINT"),
                () = sleep_until(grace.unwrap_or(wake)), if grace.is_some() => Wake::Grace,
                _ = housekeeping.tick() => Wake::Housekeeping,
                Some(found) = resolved_rx.recv() => Wake::Resolved(found),
            };
            match woke {
                Wake::Datagram(Ok((n, from))) => {
                    self.on_datagram(buf.get(..n).unwrap_or_default(), from);
                }
                Wake::Datagram(Err(e)) => {
                    self.bump("rx_errors");
                    debug!(error = %e, "receive failed");
                }
                Wake::Request(inc) => self.on_ipc(inc),
                Wake::Timer => self.input(Input::Tick),
                Wake::Signal(name) => self.on_signal(name),
                Wake::Grace => {
                    warn!(
                        grace_ms = LEAVE_GRACE.as_millis() as u64,
                        "leave not finished within the grace period; exiting"
                    );
                    self.exit = Some(Exit::LeaveCutShort);
                }
                Wake::Housekeeping => self.housekeeping(),
                Wake::Resolved(found) => self.on_resolved(found),
            }
        }
    }

    /// After the loop: tell subscribers and the history why the daemon exits.
    pub fn finish(&mut self, exit: Exit) {
        let reason = exit.reason();
        match exit {
            Exit::Killed { .. } => error!(view = %self.view_str(), "{reason}"),
            _ => info!(view = %self.view_str(), "{reason}"),
        }
        self.publish(CmanEvent::Shutdown {
            reason: reason.clone(),
        });
        self.record(Event::Shutdown { reason });
        // Requests still waiting for the core will not be answered by it any more.
        for (_, p) in std::mem::take(&mut self.pending) {
            if let Some(tx) = p.reply {
                let _gone = tx.send(Err(ErrorReply::new(
                    cmand::codes::LEAVING,
                    "cmand is shutting down",
                )));
            }
        }
    }

    fn on_signal(&mut self, name: &'static str) {
        if self.grace.is_some() || self.core.is_shut_down() {
            info!(
                signal = name,
                "second signal; exiting without waiting for the leave"
            );
            self.exit = Some(Exit::LeaveCutShort);
            return;
        }
        info!(signal = name, "leaving the cluster");
        self.submit(
            ClientRequest::Leave { remove: false },
            None,
            CmanResponse::Done,
            AfterOk::Leaving,
            "leave on signal",
        );
    }

    /// Milliseconds since the loop's epoch: the core's clock.
    fn now(&self) -> Millis {
        Millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant_of(&self, at: Millis) -> Instant {
        self.epoch
            .checked_add(Duration::from_millis(at.0))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400))
    }

    /// Feeds one input to the core and carries out what it asks, including the inputs
    /// those actions queue (the shell's own requests).
    pub(crate) fn input(&mut self, input: Input) {
        self.queue.push_back(input);
        if self.pumping {
            return;
        }
        self.pumping = true;
        while let Some(input) = self.queue.pop_front() {
            let now = self.now();
            let mut out = std::mem::take(&mut self.out);
            self.core.handle(now, &mut self.rng, input, &mut out);
            for action in out.drain(..) {
                self.execute(action);
            }
            self.out = out;
        }
        self.pumping = false;
    }

    /// Hands a request to the core; the reply comes back through [`Action::Reply`].
    pub(crate) fn submit(
        &mut self,
        request: ClientRequest,
        reply: Option<ReplyTx>,
        ok: CmanResponse,
        then: AfterOk,
        what: &'static str,
    ) {
        if self.core.is_shut_down() || self.exit.is_some() {
            if let Some(tx) = reply {
                let _gone = tx.send(Err(ErrorReply::new(
                    cmand::codes::LEAVING,
                    "cmand is shutting down",
                )));
            }
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            id,
            Pending {
                reply,
                ok,
                then,
                what,
            },
        );
        self.input(Input::Request { id, request });
    }

    pub(crate) fn bump(&mut self, counter: &str) {
        match self.counters.get_mut(counter) {
            Some(c) => *c += 1,
            None => {
                self.counters.insert(counter.to_string(), 1);
            }
        }
    }

    pub(crate) fn name_of(&self, id: NodeId) -> String {
        self.nodes
            .get(&id)
            .map_or_else(|| format!("node{id}"), |n| n.name.clone())
    }

    pub(crate) fn view_str(&self) -> String {
        self.view
            .map_or_else(|| "none".to_string(), |v| v.to_string())
    }

    pub(crate) fn publish(&mut self, event: CmanEvent) {
        if let Err(e) = self.events.publish(&event) {
            error!(error = %e, "cannot encode an event");
        }
    }

    pub(crate) fn record(&mut self, event: Event) {
        if let Some(h) = &mut self.history {
            h.record(event);
        }
    }

    fn housekeeping(&mut self) {
        self.drop_dead_group_owners();
        self.reresolve();
    }

    /// Local clients that exited without leaving their groups: leave for them, so the node
    /// does not stay in (say) the fence domain with nobody behind it, and a restarted
    /// client can join again.
    pub(crate) fn drop_dead_group_owners(&mut self) {
        let dead: Vec<(String, u32)> = self
            .group_owners
            .iter()
            .filter(|(_, pid)| !pid_alive(**pid))
            .map(|(g, p)| (g.clone(), *p))
            .collect();
        for (group, pid) in dead {
            warn!(group = %group, pid, "local client exited without leaving its group; leaving for it");
            self.group_owners.remove(&group);
            self.submit(
                ClientRequest::GroupLeave {
                    group: group.clone(),
                },
                None,
                CmanResponse::Done,
                AfterOk::LeftGroup { group },
                "group leave for an exited client",
            );
        }
        if self.qdisk_pid.is_some_and(|p| !pid_alive(p)) {
            self.qdisk_pid = None;
        }
    }

    /// Distinct live local processes holding a group or reporting the quorum device.
    pub(crate) fn active_subsystems(&self) -> u32 {
        let pids: BTreeSet<u32> = self
            .group_owners
            .values()
            .copied()
            .chain(self.qdisk_pid)
            .filter(|p| pid_alive(*p))
            .collect();
        u32::try_from(pids.len()).unwrap_or(u32::MAX)
    }
}

/// Whether process `pid` exists and has not exited (a recycled pid reads as alive: the check
/// errs on the side of keeping a group). A zombie has exited: its parent just has not
/// reaped it yet (a supervisor that never waits, like a test harness), so it holds nothing.
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// Wall-clock seconds since the epoch.
pub(crate) fn unix_now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_kill_exits_with_failure_and_its_reason_reads_like_cman() {
        assert_eq!(Exit::Left.status(), 0);
        assert_eq!(Exit::LeaveCutShort.status(), 0);
        let k = Exit::Killed {
            by: NodeId(2),
            reason: KillReason::CmanTool,
        };
        assert_eq!(k.status(), 1);
        assert_eq!(
            k.reason(),
            "cman killed by node 2 because we were killed by cman_tool or other application"
        );
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
    }

    #[test]
    fn an_exited_child_not_yet_reaped_is_not_alive() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pid_alive(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "a zombie reads as alive"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "still a zombie"
        );
        child.wait().expect("reap");
    }
}
