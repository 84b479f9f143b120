//! rgmanagerd's distributed protocol: one coordinator runs the placement [`Engine`], every
//! member replicates its table and runs what it is told (docs/rgmanager-protocol.md).
//!
//! ```text
//!   group view ──▶ every member sends Report{gv, synced, running}
//!        │
//!        ▼ all reports of the view delivered (same point on every member)
//!   coordinator := lowest member holding the table (none holds it: cold start, lowest member)
//!        │  joiners lack the table ──▶ coordinator sends Table
//!        ▼
//!   coordinator, quorate, no cold fencing pending ──▶ READY: Engine View + every Report
//!        │  Decisions{records, commands} ──▶ members apply records, named node executes
//!        │  Done / StatusFailed / Ready / PrepareFailed ◀── members (each with `running`)
//!        │  AwaitFencing ──▶ IsFenced{node, incarnation} ──▶ fenced ──▶ Fenced message
//!        ▼
//!   quorum lost: every node stops its VMs and nothing is decided
//! ```
//!
//! What we copy from rgmanager (spec/rgmanager.md): the replicated record per service and
//! its `RG_EVENT` broadcast (§1.4), a dead node's services restarted only after fencing
//! (§3.6), emergency stop on quorum loss (§3.7), user requests answered with `RG_E*` codes
//! (§2.11) and migration failure outcomes (§4.4). What is ours: one decision maker chosen
//! from ordered group events instead of DLM locks, members reporting what they run (R1), and
//! a two-step live migration (target prepares, then the source sends).
//!
//! Every input arrives through [`Coordinator::handle`]; everything the shell must do comes
//! out as [`Action`]s. Group payloads are [`Msg`]s (postcard, versioned).

mod admin;
mod deciding;
mod local;
mod messages;
pub mod msg;
mod reconfig;
mod restore;
mod round;

#[cfg(test)]
mod tests;

pub use msg::{
    AdminRequest, Command, CoordError, GroupViewId, Msg, PendingFence, RecordUpdate, Table,
    PROTOCOL_VERSION,
};

use super::catalog::{Catalog, ServiceIndex};
use super::engine::{self, Engine};
use super::request::Request;
use super::state::{Intent, ServiceRecord, ServiceState};
use crate::membership::ViewId;
use crate::{Millis, NodeId};
use local::Local;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{debug, info, warn};

/// The cmand group every rgmanagerd joins.
pub const GROUP: &str = "rgmanager";

/// `RG_EAGAIN`: temporary failure, try again (the coordinator changed or is not ready).
pub const RG_EAGAIN: i32 = -6;
/// `RG_EQUORUM`: the operation requires quorum.
pub const RG_EQUORUM: i32 = -9;
/// `RG_ENOSERVICE`.
pub const RG_ENOSERVICE: i32 = -4;

/// Static settings of one node's coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordConfig {
    /// This node.
    pub me: NodeId,
    /// This node's cmand incarnation.
    pub incarnation: u64,
    /// Every configured node (cold start waits for the absent ones to be fenced).
    pub nodes: Vec<NodeId>,
    /// Status check interval of a started VM (ms).
    pub status_interval_ms: u64,
}

/// How a local hypervisor operation ended (the shell's answer to a VM action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmResult {
    /// [`Action::StartVm`] succeeded.
    Started,
    /// [`Action::StartVm`] failed.
    StartFailed,
    /// [`Action::StopVm`] succeeded.
    Stopped,
    /// [`Action::StopVm`] failed.
    StopFailed,
    /// [`Action::PrepareIncoming`] is listening at `uri`.
    Prepared {
        /// Where the source sends the VM.
        uri: String,
    },
    /// [`Action::PrepareIncoming`] failed.
    PrepareFailed,
    /// [`Action::MigrateOut`] finished: the VM runs on the target.
    Migrated,
    /// [`Action::MigrateOut`] failed; `on_source` as in spec §4.4.
    MigrateFailed {
        /// The VM still runs here.
        on_source: bool,
    },
}

/// One input from the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// cmand installed a view: members with incarnations (no report round; prefer
    /// [`Input::ViewInstalled`], which the shell should send instead).
    ClusterView {
        /// Members.
        members: Vec<(NodeId, u64)>,
    },
    /// cmand installed `view`: members with incarnations. A group member also starts a
    /// report round for the view, even when the group's membership did not change for it
    /// (nodes that merge back without a restart see no group event of their own).
    ViewInstalled {
        /// The view.
        view: ViewId,
        /// Members.
        members: Vec<(NodeId, u64)>,
    },
    /// The latest incarnation cmand knows of each configured node, members or not (from
    /// `cman_tool nodes`). A cold start waits for the fencing of absent nodes *in these
    /// incarnations*: an older fence record does not cover a node that has restarted since.
    Incarnations {
        /// Nodes with incarnations.
        nodes: Vec<(NodeId, u64)>,
    },
    /// cmand's quorum changed.
    Quorum {
        /// Quorate now.
        quorate: bool,
    },
    /// The `rgmanager` group's membership changed (cmand `GroupView`).
    GroupView {
        /// The cmand view of the event.
        view: ViewId,
        /// Its sequence number.
        seq: u64,
        /// Members now.
        members: Vec<NodeId>,
    },
    /// A message of the `rgmanager` group (cmand `Deliver`).
    Deliver {
        /// Sender.
        from: NodeId,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A VM operation this node ran finished.
    VmDone {
        /// The service.
        service: ServiceIndex,
        /// How.
        result: VmResult,
    },
    /// The answer to [`Action::CheckStatus`].
    Status {
        /// The service.
        service: ServiceIndex,
        /// Whether the VM runs here.
        running: bool,
    },
    /// fenced's answer to [`Action::IsFenced`].
    FenceAnswer {
        /// The node asked about.
        node: NodeId,
        /// The incarnation asked about.
        incarnation: u64,
        /// `FenceState::Fenced`.
        fenced: bool,
    },
    /// fenced published an event (a node fenced, the domain changed): ask again.
    FenceEvent,
    /// A local `clusvcadm` request; answered by [`Action::Reply`] with the same id.
    Admin {
        /// Chosen by the shell.
        id: u64,
        /// The service.
        service: ServiceIndex,
        /// What.
        request: Request,
    },
    /// A timer fired (at or after [`Coordinator::next_deadline`]).
    Tick,
    /// rgmanagerd stops (SIGTERM). With `hand_off`, and while the cluster is quorate with a
    /// coordinator, the services of this node are handed over (VMs migrate live) and
    /// [`Action::Exit`] follows once it runs nothing but frozen services; otherwise (or sent
    /// again without `hand_off`, when the shell's patience ends) they are stopped here.
    Shutdown {
        /// Hand the services over rather than stop them here.
        hand_off: bool,
    },
    /// cmand delivered a new cluster.conf (`ccs_tool update`): its `<rm>` compiled. Every
    /// member gets it at the same point of the order; services carry over by name.
    Reconfigure {
        /// The new catalog.
        catalog: Catalog,
    },
    /// `clusvcadm -l` (`true`) / `-u` (`false`) here: nothing starts on this node while locked.
    Lock {
        /// Locked.
        locked: bool,
    },
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Join the cmand group [`GROUP`] (once, at start).
    JoinGroup,
    /// Send a payload to the group.
    Send(Vec<u8>),
    /// Start the VM; answer [`Input::VmDone`].
    StartVm {
        /// The service.
        service: ServiceIndex,
    },
    /// Stop the VM; answer [`Input::VmDone`].
    StopVm {
        /// The service.
        service: ServiceIndex,
    },
    /// Prepare to receive the VM from `from`; answer [`VmResult::Prepared`] with a URI.
    PrepareIncoming {
        /// The service.
        service: ServiceIndex,
        /// The source.
        from: NodeId,
    },
    /// Drop a prepared incoming VM (no answer).
    AbortIncoming {
        /// The service.
        service: ServiceIndex,
    },
    /// Live-migrate the VM to `to` at `uri`; answer [`Input::VmDone`].
    MigrateOut {
        /// The service.
        service: ServiceIndex,
        /// The target.
        to: NodeId,
        /// Where.
        uri: String,
    },
    /// Check whether the VM runs here; answer [`Input::Status`].
    CheckStatus {
        /// The service.
        service: ServiceIndex,
    },
    /// Ask fenced `is_fenced(node, incarnation)`; answer [`Input::FenceAnswer`].
    IsFenced {
        /// The node.
        node: NodeId,
        /// The incarnation that left.
        incarnation: u64,
    },
    /// The shutdown is complete: leave the group and exit.
    Exit,
    /// Complete the local `clusvcadm` call `id`: 0 or an `RG_E*` code.
    Reply {
        /// The request id.
        id: u64,
        /// The code.
        code: i32,
    },
}

/// What a member's report of the current round says about its table and its past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RoundReport {
    synced: bool,
    generation: u64,
    /// The member's lineage (see [`Msg::Report`]).
    lineage: u64,
}

/// Extends a lineage by one group view (FNV-1a over the view's fields; never 0, which
/// means "no earlier view").
fn extend_lineage(lineage: u64, gv: GroupViewId) -> u64 {
    let mut h = lineage ^ 0xcbf2_9ce4_8422_2325;
    let words = [
        gv.view.epoch,
        u64::from(gv.view.coordinator.0),
        gv.view.incarnation,
        gv.seq,
    ];
    for byte in words.iter().flat_map(|w| w.to_le_bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}

/// One node's rgmanager protocol state: local executor, table replica and, on the
/// coordinator, the engine.
#[derive(Clone, Debug)]
pub struct Coordinator {
    cfg: CoordConfig,
    cat: Catalog,
    /// [`Catalog::fingerprint`]: every message carries it; others' are dropped.
    catalog_id: u64,
    /// Members last heard under another catalog (their fingerprint).
    foreign: BTreeMap<NodeId, u64>,
    quorate: bool,
    incarnations: BTreeMap<NodeId, u64>,
    // group
    gv: Option<GroupViewId>,
    members: BTreeSet<NodeId>,
    /// The group views this node went through since the last round it finalized, hashed
    /// (0: none yet). Members with equal lineages delivered the same messages since then.
    lineage: u64,
    /// This round's reports.
    reports: BTreeMap<NodeId, RoundReport>,
    finalized: bool,
    latest: BTreeMap<NodeId, Vec<ServiceIndex>>,
    /// Members' unresolved incoming migrations (source left).
    unresolved: BTreeMap<NodeId, Vec<ServiceIndex>>,
    /// Members' migrations under way.
    migrating: BTreeMap<NodeId, Vec<ServiceIndex>>,
    // replica
    synced: bool,
    generation: u64,
    records: Vec<ServiceRecord>,
    intents: Vec<Intent>,
    pending: BTreeMap<NodeId, PendingFence>,
    migrations: BTreeMap<ServiceIndex, (NodeId, NodeId)>,
    coordinator: Option<NodeId>,
    /// Nodes that may have decided since this node last finalized a round: the coordinator
    /// it chose then (or the sender of the table it adopted), and every member of a round
    /// it did not finalize (another member may have, and become coordinator there).
    deciders: BTreeSet<NodeId>,
    // coordinator only
    engine: Option<Engine>,
    /// The engine is to be (re)built from the table and the members' latest messages when
    /// the coordinator becomes ready, then republished.
    rebuild: bool,
    /// The incarnation of every member as of the engine's last quorate view.
    engine_incarnations: BTreeMap<NodeId, u64>,
    /// Members that left the group since the engine's last quorate view.
    left_since_decided: BTreeSet<NodeId>,
    /// Members that came into this round from the group view this node came from: they
    /// delivered what this node delivered there, so operations among them end normally.
    reliable: BTreeSet<NodeId>,
    ready: bool,
    fenced_sent: BTreeSet<(NodeId, u64)>,
    /// Members whose rgmanagerd shuts down (announced with `Leaving` or in their report).
    leaving_nodes: BTreeSet<NodeId>,
    /// Members locked by `clusvcadm -l`.
    locked_nodes: BTreeSet<NodeId>,
    /// This node's rgmanagerd shuts down.
    shutting_down: bool,
    /// ... and told the group so (it hands its services over).
    announced: bool,
    /// [`Action::Exit`] was given.
    exited: bool,
    /// The parts of a table received so far (sender, table).
    table_parts: Option<(NodeId, Table)>,
    // local
    local: Local,
    requests: BTreeSet<u64>,
    msgs: Vec<Msg>,
}

impl Coordinator {
    /// A node's protocol state for `catalog`; call [`Coordinator::start`] next.
    pub fn new(cfg: CoordConfig, catalog: Catalog) -> Coordinator {
        let records = vec![ServiceRecord::new(); catalog.len()];
        let intents = catalog
            .indexes()
            .map(|s| Intent::initial(catalog.service(s).autostart))
            .collect();
        let vms = catalog
            .indexes()
            .filter(|s| catalog.service(*s).migratory)
            .collect();
        let local = Local::new(cfg.me, cfg.status_interval_ms, vms);
        Coordinator {
            cfg,
            catalog_id: catalog.fingerprint(),
            foreign: BTreeMap::new(),
            cat: catalog,
            quorate: false,
            incarnations: BTreeMap::new(),
            gv: None,
            members: BTreeSet::new(),
            lineage: 0,
            reports: BTreeMap::new(),
            finalized: false,
            latest: BTreeMap::new(),
            unresolved: BTreeMap::new(),
            migrating: BTreeMap::new(),
            synced: false,
            generation: 0,
            records,
            intents,
            pending: BTreeMap::new(),
            migrations: BTreeMap::new(),
            coordinator: None,
            deciders: BTreeSet::new(),
            engine: None,
            rebuild: false,
            engine_incarnations: BTreeMap::new(),
            left_since_decided: BTreeSet::new(),
            reliable: BTreeSet::new(),
            ready: false,
            fenced_sent: BTreeSet::new(),
            leaving_nodes: BTreeSet::new(),
            locked_nodes: BTreeSet::new(),
            shutting_down: false,
            announced: false,
            exited: false,
            table_parts: None,
            local,
            requests: BTreeSet::new(),
            msgs: Vec::new(),
        }
    }

    /// Joins the group (the shell has stopped every configured VM first, §2.5).
    pub fn start(&mut self, out: &mut Vec<Action>) {
        out.push(Action::JoinGroup);
    }

    // ---- reads (clustat) ----

    /// The replicated record of `s` (as last published).
    pub fn record(&self, s: ServiceIndex) -> Option<&ServiceRecord> {
        self.records.get(s.0 as usize)
    }

    /// The replicated intent of `s`.
    pub fn intent(&self, s: ServiceIndex) -> Option<&Intent> {
        self.intents.get(s.0 as usize)
    }

    /// The current coordinator, if one is chosen for this group view.
    pub fn coordinator(&self) -> Option<NodeId> {
        self.coordinator
    }

    /// Whether this node is the coordinator and deciding.
    pub fn is_deciding(&self) -> bool {
        self.ready
    }

    /// Whether this node holds the replicated table.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The coordinator's engine (this node is the coordinator).
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// Services that may run on this node (in-flight operations included).
    pub fn local_running(&self) -> Vec<ServiceIndex> {
        self.local.running()
    }

    /// Dead nodes whose fencing is awaited.
    pub fn pending_fencing(&self) -> impl Iterator<Item = (NodeId, PendingFence)> + '_ {
        self.pending.iter().map(|(n, p)| (*n, p.clone()))
    }

    /// The static settings.
    pub fn config(&self) -> &CoordConfig {
        &self.cfg
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.cat
    }

    /// When [`Input::Tick`] is next due.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.local.next_deadline()
    }

    // ---- the one entry point ----

    /// Applies one input.
    pub fn handle(&mut self, now: Millis, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::ClusterView { members } => {
                for (n, inc) in members {
                    self.learn_incarnation(n, inc);
                }
            }
            Input::ViewInstalled { view, members } => {
                for (n, inc) in members {
                    self.learn_incarnation(n, inc);
                }
                if self.gv.is_some_and(|g| g.view != view) {
                    let gv = GroupViewId { view, seq: 0 };
                    let members = self.members.iter().copied().collect();
                    self.on_group_view(now, gv, members, out);
                }
            }
            Input::Incarnations { nodes } => {
                for (n, inc) in nodes {
                    self.learn_incarnation(n, inc);
                }
            }
            Input::Quorum { quorate } => self.on_quorum(now, quorate, out),
            Input::GroupView { view, seq, members } => {
                self.on_group_view(now, GroupViewId { view, seq }, members, out)
            }
            Input::Deliver { from, payload } => match Msg::decode(from, &payload) {
                Ok((id, m)) if id == self.catalog_id => self.on_msg(now, from, m, out),
                Ok((id, _)) => {
                    // Another <rm> configuration: its indexes name other services. A new round
                    // begins that cannot end before the sender matches (none of its reports
                    // arrive), so nothing is decided meanwhile.
                    if self.foreign.insert(from, id) != Some(id) {
                        warn!(node = %from, theirs = format!("{id:016x}"), ours = format!("{:016x}", self.catalog_id),
                            "member runs another <rm> configuration; nothing is decided until it matches (ccs_tool update)");
                        if self.members.contains(&from) {
                            self.restart_round(now);
                        }
                    }
                }
                Err(e) => warn!(error = %e, "dropped rgmanager message"),
            },
            Input::VmDone { service, result } => {
                let q = self.quorate;
                self.local
                    .vm_done(now, service, result, q, out, &mut self.msgs)
            }
            Input::Status { service, running } => {
                let q = self.quorate;
                self.local
                    .status(now, service, running, q, out, &mut self.msgs)
            }
            Input::FenceAnswer {
                node,
                incarnation,
                fenced,
            } => self.on_fence_answer(now, node, incarnation, fenced, out),
            Input::FenceEvent => self.ask_all(out),
            Input::Admin {
                id,
                service,
                request,
            } => self.on_admin(id, service, request, out),
            Input::Tick => self.local.tick(now, out),
            Input::Shutdown { hand_off } => self.on_shutdown(now, hand_off, out),
            Input::Reconfigure { catalog } => self.reconfigure(now, catalog, out),
            Input::Lock { locked } => {
                if self.local.locked != locked {
                    info!(
                        locked,
                        "local node {}",
                        if locked { "locked" } else { "unlocked" }
                    );
                    self.local.locked = locked;
                    self.msgs.push(Msg::Lock { locked });
                }
            }
        }
        self.flush(out);
        // Last, after the messages: the shell leaves the group once they are sent.
        self.check_exit(out);
    }

    /// `n` is (or was last seen) in incarnation `inc`. A fencing awaited for an unknown life
    /// of `n` (a cold start that never heard of it) is now awaited for this one: an older
    /// fence record, or this life being newer than "unknown", proves nothing about it
    /// (seed 451).
    fn learn_incarnation(&mut self, n: NodeId, inc: u64) {
        let known = self.incarnations.entry(n).or_insert(inc);
        *known = (*known).max(inc);
        if let Some(p) = self.pending.get_mut(&n) {
            if p.incarnation == 0 {
                p.incarnation = inc;
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<Action>) {
        for m in self.msgs.drain(..) {
            out.push(Action::Send(m.encode(self.catalog_id)));
        }
    }

    fn is_coordinator(&self, n: NodeId) -> bool {
        self.coordinator == Some(n)
    }
}
