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

mod local;
pub mod msg;
mod reconfig;
mod restore;

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

    /// Whether this node is locked (`clusvcadm -l`).
    pub fn locked(&self) -> bool {
        self.local.locked
    }

    /// Whether rgmanagerd shuts down here.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// VMs found running here when rgmanagerd started: they are this node's again (reported,
    /// checked, stopped when told) instead of being started a second time. Call before
    /// [`Coordinator::start`].
    pub fn adopt_running(&mut self, now: Millis, services: &[ServiceIndex]) {
        for &s in services {
            if self.cat.contains(s) {
                info!(service = %self.cat.service(s).name, "running here: adopted");
                self.local.adopt(now, s);
            }
        }
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

    fn frozen(&self, s: ServiceIndex) -> bool {
        self.synced && self.intents.get(s.0 as usize).is_some_and(|i| i.frozen)
    }

    fn on_shutdown(&mut self, now: Millis, hand_off: bool, out: &mut Vec<Action>) {
        if self.exited {
            return;
        }
        self.shutting_down = true;
        self.local.leaving = true;
        if hand_off && self.quorate && self.synced && self.coordinator.is_some() {
            if !self.announced {
                info!("shutting down: handing the services of this node over");
                self.announced = true;
                self.msgs.push(Msg::Leaving {
                    running: self.local.running(),
                });
            }
            return;
        }
        warn!("shutting down: stopping the services of this node (frozen ones stay)");
        let intents = self.intents.clone();
        let synced = self.synced;
        let frozen =
            move |s: ServiceIndex| synced && intents.get(s.0 as usize).is_some_and(|i| i.frozen);
        self.local.stop_all_but(now, frozen, out, &mut self.msgs);
    }

    fn check_exit(&mut self, out: &mut Vec<Action>) {
        if !self.shutting_down || self.exited {
            return;
        }
        let idle = {
            let frozen = |s: ServiceIndex| self.frozen(s);
            self.local.idle_but(frozen)
        };
        if idle {
            info!("nothing left to hand over or stop here; leaving the group");
            self.exited = true;
            out.push(Action::Exit);
        }
    }

    fn flush(&mut self, out: &mut Vec<Action>) {
        for m in self.msgs.drain(..) {
            out.push(Action::Send(m.encode(self.catalog_id)));
        }
    }

    fn on_quorum(&mut self, now: Millis, quorate: bool, out: &mut Vec<Action>) {
        if quorate == self.quorate {
            return;
        }
        self.quorate = quorate;
        if !quorate {
            warn!("#1: Quorum Dissolved; stopping every local service");
            self.local.stop_all(now, out, &mut self.msgs);
            self.ready = false;
            self.pause_engine(now);
            if self.engine.is_some() {
                // Every member stops its VMs on its own now: no operation in flight ends the
                // way the engine expects, so it is rebuilt from the reports, carrying none.
                self.rebuild = true;
                self.reliable.clear();
            }
        } else {
            info!("Quorum Regained");
            self.maybe_ready(now, out);
        }
    }

    fn on_group_view(
        &mut self,
        now: Millis,
        gv: GroupViewId,
        members: Vec<NodeId>,
        out: &mut Vec<Action>,
    ) {
        let members: BTreeSet<NodeId> = members.into_iter().collect();
        if !members.contains(&self.cfg.me) {
            return; // a view of the group without us: we left
        }
        let gone: Vec<NodeId> = self.members.difference(&members).copied().collect();
        // A leave ordered within a cmand view (seq > 0; not a view change): everything the
        // node sent before it is delivered to every member, so it decided nothing unseen.
        let orderly = gv.seq > 0;
        for &n in &gone {
            // What it held as it left: what it ran, and what it was receiving (a migration
            // that completed before it heard so: seed 108362).
            let said = self.latest.contains_key(&n);
            let mut ran = self.latest.remove(&n).unwrap_or_default();
            for s in self
                .unresolved
                .remove(&n)
                .into_iter()
                .chain(self.migrating.remove(&n))
                .flatten()
            {
                if !ran.contains(&s) {
                    ran.push(s);
                }
            }
            self.locked_nodes.remove(&n);
            self.left_since_decided.insert(n);
            self.local.peer_left(n, out, &mut self.msgs);
            if orderly {
                self.deciders.remove(&n);
            }
            // It announced its shutdown (and started nothing since) and runs nothing: a
            // clean leave, nothing to wait for.
            let clean = self.leaving_nodes.remove(&n) && said && ran.is_empty();
            if clean {
                info!(node = %n, "member left cleanly after handing its services over");
            }
            if self.synced && !clean {
                let incarnation = self.incarnations.get(&n).copied().unwrap_or(0);
                let p = self.pending.entry(n).or_insert(PendingFence {
                    incarnation,
                    cold: false,
                    running: Vec::new(),
                });
                for s in ran {
                    if !p.running.contains(&s) {
                        p.running.push(s);
                    }
                }
            }
        }
        if self.coordinator.is_some_and(|c| !members.contains(&c)) {
            self.change_coordinator(None, out);
        }
        if self.gv == Some(gv) {
            // The round of this view began with the cmand view (see `Input::ClusterView`):
            // keep its reports, drop those of members that left.
            self.reports.retain(|n, _| members.contains(n));
            self.members = members;
            if !self.finalized && self.members.iter().all(|n| self.reports.contains_key(n)) {
                self.finalize(now, out);
            }
            return;
        }
        if self.gv.is_some() && !self.finalized {
            // The round ends unfinalized here; a member that saw every report of it chose
            // a coordinator that may have decided (seed 5120: a partition cut the round).
            self.deciders.extend(self.members.iter().copied());
        }
        self.members = members;
        if let Some(old) = self.gv.replace(gv) {
            self.lineage = extend_lineage(self.lineage, old);
        }
        self.reports.clear();
        self.finalized = false;
        self.ready = false;
        // Decisions wait for this round's reports (and, after a merge, the rebuilt engine).
        self.pause_engine(now);
        self.local.round_started();
        self.report();
        let _ = now;
    }

    /// The round of the current group view starts over (same view, new reports).
    pub(super) fn restart_round(&mut self, now: Millis) {
        self.reports.clear();
        self.finalized = false;
        self.ready = false;
        self.pause_engine(now);
        self.report();
    }

    /// This node's report for the current round.
    fn report(&mut self) {
        let Some(gv) = self.gv else {
            return;
        };
        self.msgs.push(Msg::Report {
            gv,
            lineage: self.lineage,
            incarnation: self.cfg.incarnation,
            locked: self.local.locked,
            leaving: self.announced,
            synced: self.synced,
            generation: self.generation,
            running: self.local.running(),
            incoming: self.local.incoming(),
            migrating: self.local.migrating(),
        });
    }

    /// The engine decides nothing (no starts, no failback) until the coordinator is ready
    /// again; operations in flight still end and stops still happen.
    fn pause_engine(&mut self, now: Millis) {
        if let Some(e) = self.engine.as_mut() {
            if e.quorate() {
                let members = e.members().clone();
                let mut scratch = Vec::new();
                e.handle(
                    now,
                    engine::Input::View {
                        members,
                        quorate: false,
                    },
                    &mut scratch,
                );
            }
        }
    }

    fn change_coordinator(&mut self, to: Option<NodeId>, out: &mut Vec<Action>) {
        if self.coordinator == to {
            return;
        }
        info!(from = ?self.coordinator, to = ?to, "coordinator changed");
        self.coordinator = to;
        if to != Some(self.cfg.me) {
            self.engine = None;
            self.rebuild = false;
            self.ready = false;
            self.fenced_sent.clear();
        }
        for id in std::mem::take(&mut self.requests) {
            out.push(Action::Reply {
                id,
                code: RG_EAGAIN,
            });
        }
    }

    fn is_coordinator(&self, n: NodeId) -> bool {
        self.coordinator == Some(n)
    }

    fn on_msg(&mut self, now: Millis, from: NodeId, m: Msg, out: &mut Vec<Action>) {
        let member = self.members.contains(&from);
        match m {
            Msg::Report {
                gv,
                lineage,
                incarnation,
                locked,
                leaving,
                synced,
                generation,
                running,
                incoming,
                migrating,
            } => {
                if !member {
                    return;
                }
                if self.foreign.remove(&from).is_some() && from != self.cfg.me {
                    // It runs our configuration now; what we reported meanwhile did not reach
                    // it.
                    self.report();
                }
                self.latest.insert(from, running);
                self.unresolved.insert(from, incoming);
                self.migrating.insert(from, migrating);
                self.note_lock(now, from, locked, out);
                if leaving {
                    self.note_leaving(now, from, out);
                }
                if Some(gv) != self.gv {
                    self.feed_report(now, from, out);
                    return;
                }
                self.learn_incarnation(from, incarnation);
                // It is alive and says what it runs: nothing of an earlier life waits.
                if self.pending.remove(&from).is_some() {
                    debug!(node = %from, "a departed node reported again");
                }
                self.reports.insert(
                    from,
                    RoundReport {
                        synced,
                        generation,
                        lineage,
                    },
                );
                if !self.finalized && self.members.iter().all(|n| self.reports.contains_key(n)) {
                    self.finalize(now, out);
                }
            }
            Msg::Done {
                service,
                result,
                running,
            } => {
                if !member || !self.cat.contains(service) {
                    return;
                }
                self.latest.insert(from, running);
                if let Some(&(src, to)) = self.migrations.get(&service) {
                    if src == from {
                        self.migrations.remove(&service);
                        // It arrived at the target: the target runs it now, as far as anyone
                        // knows until the target's own next message (which may never come:
                        // seed 108362), or until a target that left already is fenced
                        // (seed 2347).
                        if result == engine::OpResult::Migrated {
                            if let Some(p) = self.pending.get_mut(&to) {
                                if !p.running.contains(&service) {
                                    p.running.push(service);
                                }
                            } else if let Some(r) = self.latest.get_mut(&to) {
                                if !r.contains(&service) {
                                    r.push(service);
                                }
                            }
                        }
                    }
                }
                if let Some(m) = self.migrating.get_mut(&from) {
                    m.retain(|x| *x != service);
                }
                self.local
                    .peer_done(now, from, service, result, out, &mut self.msgs);
                self.feed(
                    now,
                    engine::Input::Done {
                        service,
                        node: from,
                        result,
                    },
                    out,
                );
                self.feed_report(now, from, out);
                self.maybe_ready(now, out);
            }
            Msg::StatusFailed { service, running } => {
                if !member || !self.cat.contains(service) {
                    return;
                }
                self.latest.insert(from, running);
                self.feed(
                    now,
                    engine::Input::StatusFailed {
                        service,
                        node: from,
                    },
                    out,
                );
                self.feed_report(now, from, out);
            }
            Msg::Running {
                running,
                incoming,
                migrating,
            } => {
                if !member {
                    return;
                }
                self.latest.insert(from, running);
                self.unresolved.insert(from, incoming);
                self.migrating.insert(from, migrating);
                self.feed_report(now, from, out);
                self.maybe_ready(now, out);
            }
            Msg::PrepareFailed {
                service,
                from: source,
                running,
            } => {
                if !member || !self.cat.contains(service) {
                    return;
                }
                self.latest.insert(from, running);
                if self.migrations.get(&service) == Some(&(source, from)) {
                    self.migrations.remove(&service);
                }
                if source == self.cfg.me {
                    self.local.prepare_failed(service, &mut self.msgs);
                }
                if let Some(m) = self.migrating.get_mut(&from) {
                    m.retain(|x| *x != service);
                }
                self.feed(
                    now,
                    engine::Input::Done {
                        service,
                        node: source,
                        result: engine::OpResult::MigrateFailed { on_source: true },
                    },
                    out,
                );
                self.feed_report(now, from, out);
            }
            Msg::Leaving { running } => {
                if member {
                    self.latest.insert(from, running);
                    self.note_leaving(now, from, out);
                    self.feed_report(now, from, out);
                }
            }
            Msg::Lock { locked } => {
                if member {
                    self.note_lock(now, from, locked, out);
                }
            }
            Msg::Ready {
                service,
                from: source,
                uri,
            } => {
                if !member || !self.cat.contains(service) {
                    return;
                }
                // The migration is under way from now on, whoever reported what before.
                let m = self.migrating.entry(from).or_default();
                if !m.contains(&service) {
                    m.push(service);
                }
                if from == self.cfg.me {
                    self.local.ready_delivered(service);
                } else if source == self.cfg.me {
                    self.local.ready(service, from, uri, out, &mut self.msgs);
                }
            }
            Msg::Decisions {
                generation,
                records,
                commands,
            } => {
                if !self.is_coordinator(from) {
                    debug!(node = %from, "decisions from a former coordinator ignored");
                    return;
                }
                self.generation = self.generation.max(generation);
                self.apply_decisions(now, records, commands, out);
            }
            Msg::Fenced { node, incarnation } => {
                if !self.is_coordinator(from) {
                    return;
                }
                self.fenced_sent.remove(&(node, incarnation));
                if self
                    .pending
                    .get(&node)
                    .is_some_and(|p| p.incarnation <= incarnation)
                {
                    self.pending.remove(&node);
                }
                self.feed(now, engine::Input::Fenced { node }, out);
                self.maybe_ready(now, out);
            }
            Msg::Table(part) => {
                if from == self.cfg.me || Some(part.gv) != self.gv || !member {
                    return;
                }
                if !self.is_coordinator(from) {
                    return;
                }
                if let Some(t) = self.assemble(from, part) {
                    self.adopt_table(t, from);
                    self.maybe_ready(now, out);
                }
            }
            Msg::Request {
                origin,
                id,
                service,
                request,
            } => self.on_request(now, origin, id, service, request, out),
            Msg::Reply { origin, id, code } => {
                if origin == self.cfg.me && self.requests.remove(&id) {
                    out.push(Action::Reply { id, code });
                }
            }
        }
    }

    fn note_leaving(&mut self, now: Millis, node: NodeId, out: &mut Vec<Action>) {
        if self.leaving_nodes.insert(node) {
            info!(node = %node, "member shuts down; its services are handed over");
        }
        self.feed(now, engine::Input::Leaving { node }, out);
    }

    fn note_lock(&mut self, now: Millis, node: NodeId, locked: bool, out: &mut Vec<Action>) {
        let changed = if locked {
            self.locked_nodes.insert(node)
        } else {
            self.locked_nodes.remove(&node)
        };
        if changed {
            self.feed(now, engine::Input::Locked { node, locked }, out);
        }
    }

    fn apply_decisions(
        &mut self,
        now: Millis,
        records: Vec<RecordUpdate>,
        commands: Vec<Command>,
        out: &mut Vec<Action>,
    ) {
        let running = self.local.running();
        for u in records {
            let i = u.service.0 as usize;
            if i >= self.records.len() {
                continue;
            }
            // The table says it runs here but it does not: as a failed status check.
            if u.record.state == ServiceState::Started
                && u.record.owner == Some(self.cfg.me)
                && !running.contains(&u.service)
            {
                warn!(service = %u.service, "the table says this node runs it; it does not");
                self.msgs.push(Msg::StatusFailed {
                    service: u.service,
                    running: running.clone(),
                });
            }
            self.records[i] = u.record;
            self.intents[i] = u.intent;
        }
        for c in commands {
            if !self.cat.contains(c.service()) {
                continue;
            }
            match c {
                Command::Prepare {
                    service, from, to, ..
                } => {
                    self.migrations.insert(service, (from, to));
                    if from == self.cfg.me {
                        let member = self.members.contains(&to);
                        self.local.expect_ready(service, to, member, &mut self.msgs);
                    }
                }
                Command::Start { service, .. } | Command::Stop { service, .. } => {
                    self.migrations.remove(&service);
                }
            }
            let mine = match c {
                Command::Start { node, .. } | Command::Stop { node, .. } => node == self.cfg.me,
                Command::Prepare { to, .. } => to == self.cfg.me,
            };
            if mine {
                let q = self.quorate;
                self.local.command(now, c, q, out, &mut self.msgs);
            }
        }
    }

    /// Every member's report of this group view is in: the same point on every member.
    fn finalize(&mut self, now: Millis, out: &mut Vec<Action>) {
        self.finalized = true;
        let migrating = &self.migrating;
        self.local.round_complete(
            |n, s| migrating.get(&n).is_some_and(|m| m.contains(&s)),
            out,
            &mut self.msgs,
        );
        // The newest table wins: a node that started cold on its own (never quorate) must
        // not replace what the others decided meanwhile.
        let newest = self
            .reports
            .values()
            .filter(|r| r.synced)
            .map(|r| r.generation)
            .max();
        let synced: BTreeSet<NodeId> = self
            .reports
            .iter()
            .filter(|(_, r)| r.synced && Some(r.generation) == newest)
            .map(|(n, _)| *n)
            .collect();
        let coordinator = match synced.first() {
            Some(&c) => c,
            None => {
                self.cold_start();
                self.members.first().copied().unwrap_or(self.cfg.me)
            }
        };
        if self.synced && self.deciders.iter().any(|c| !self.members.contains(c)) {
            // A node that was (or may have been) coordinator died: commands it delivered to
            // itself (or to other nodes that died with it) may never reach us, so any dead
            // node may run anything. Decide nothing until every dead node is fenced.
            for p in self.pending.values_mut() {
                p.cold = true;
            }
        }
        self.deciders = BTreeSet::from([coordinator]);
        self.change_coordinator(Some(coordinator), out);
        if coordinator == self.cfg.me {
            // Members that join may come from a partition that decided (or just changed
            // records) on its own: rebuild from what everyone reports, and send the table
            // to all so that the replicas agree again. A member that comes from another
            // group view than ours did not deliver what we sent at the end of ours (nor we
            // what it sent): it may have missed commands, we may have missed its results
            // (virtual synchrony only binds members that move between views together). A
            // node paused through its own expulsion comes back into the same membership.
            // A fresh joiner (no earlier view) missed nothing: the engine learns from its
            // report what it runs, as from any member's.
            let mine = self.lineage;
            let together: BTreeSet<NodeId> = self
                .reports
                .iter()
                .filter(|(_, r)| r.lineage != 0 && r.lineage == mine)
                .map(|(n, _)| *n)
                .collect();
            // Reliable since the engine was last built: through every round until then.
            self.reliable = if self.rebuild {
                &self.reliable & &together
            } else {
                together
            };
            let merge = self
                .reports
                .values()
                .any(|r| r.lineage != 0 && r.lineage != mine);
            if self.engine.is_none() || merge {
                info!(gv = ?self.gv, merge, "the engine is rebuilt from the table and the members' reports once migrations under way end");
                self.rebuild = true;
            }
            if merge
                || self
                    .reports
                    .values()
                    .any(|r| !r.synced || Some(r.generation) != newest)
            {
                let parts = self.table().split();
                self.msgs.extend(parts.into_iter().map(Msg::Table));
            }
            self.ask_all(out);
        }
        // Every member finalizes here, at the same point of the order: lineages restart.
        self.lineage = 0;
        self.maybe_ready(now, out);
    }

    /// Nobody holds the table: start from the configuration, and wait for every
    /// configured node that is not a member to be fenced (or to join).
    fn cold_start(&mut self) {
        info!("no member holds the service table; starting from the configuration");
        self.generation = 0;
        self.records = vec![ServiceRecord::new(); self.cat.len()];
        self.intents = self
            .cat
            .indexes()
            .map(|s| Intent::initial(self.cat.service(s).autostart))
            .collect();
        self.migrations.clear();
        self.pending.clear();
        for &n in &self.cfg.nodes {
            if !self.members.contains(&n) {
                let incarnation = self.incarnations.get(&n).copied().unwrap_or(0);
                self.pending.insert(
                    n,
                    PendingFence {
                        incarnation,
                        cold: true,
                        running: Vec::new(),
                    },
                );
            }
        }
        self.synced = true;
    }

    /// Collects the parts of a table from `from`; the whole table once the last arrived.
    fn assemble(&mut self, from: NodeId, part: Table) -> Option<Table> {
        if part.first == 0 {
            self.table_parts = Some((from, part));
        } else {
            let follows = match &mut self.table_parts {
                Some((f, acc)) if *f == from => acc.join(part),
                _ => false,
            };
            if !follows {
                warn!(node = %from, "a part of the service table out of order ignored");
                self.table_parts = None;
                return None;
            }
        }
        if self.table_parts.as_ref().is_some_and(|(_, t)| t.complete()) {
            self.table_parts.take().map(|(_, t)| t)
        } else {
            None
        }
    }

    fn adopt_table(&mut self, t: Table, from: NodeId) {
        if t.records.len() != self.records.len() {
            warn!(node = %from, "table of another configuration ignored");
            return;
        }
        for (i, (r, intent)) in t.records.into_iter().enumerate() {
            self.records[i] = r;
            self.intents[i] = intent;
        }
        self.pending = t
            .pending
            .into_iter()
            .filter(|(n, _)| !self.members.contains(n))
            .collect();
        self.migrations = t
            .migrations
            .into_iter()
            .map(|(s, a, b)| (s, (a, b)))
            .collect();
        self.synced = true;
        self.generation = t.generation;
        self.deciders.insert(from);
        info!(node = %from, "service table received");
    }

    /// The table as decided so far: the engine's records (they include decisions not yet
    /// delivered back), the replica's fencing and migrations.
    fn table(&self) -> Table {
        let records = self
            .cat
            .indexes()
            .map(|s| match &self.engine {
                Some(e) => (e.record(s).clone(), *e.intent(s)),
                None => (
                    self.records[s.0 as usize].clone(),
                    self.intents[s.0 as usize],
                ),
            })
            .collect();
        Table {
            generation: self.generation,
            total: u32::try_from(self.cat.len()).unwrap_or(u32::MAX),
            first: 0,
            gv: self.gv.unwrap_or(GroupViewId {
                view: ViewId {
                    epoch: 0,
                    coordinator: self.cfg.me,
                    incarnation: 0,
                },
                seq: 0,
            }),
            records,
            pending: self.pending.iter().map(|(n, p)| (*n, p.clone())).collect(),
            migrations: self
                .migrations
                .iter()
                .map(|(s, (a, b))| (*s, *a, *b))
                .collect(),
        }
    }

    fn maybe_ready(&mut self, now: Millis, out: &mut Vec<Action>) {
        if self.ready
            || (self.engine.is_none() && !self.rebuild)
            || !self.quorate
            || !self.finalized
            || self.pending.values().any(|p| p.cold)
            || self.unresolved.values().any(|v| !v.is_empty())
        {
            return;
        }
        // A rebuilt engine knows no operation in flight but those it carries over: let
        // migrations between live members end first (their messages say where the VM is).
        if self.rebuild && self.migrating.values().any(|v| !v.is_empty()) {
            return;
        }
        let republish = std::mem::take(&mut self.rebuild);
        if republish {
            info!(gv = ?self.gv, reliable = ?self.reliable, "building the engine from the table and the members' latest reports");
            self.engine = Some(self.build_engine(now));
        }
        self.ready = true;
        self.generation += 1;
        info!(
            members = self.members.len(),
            generation = self.generation,
            "coordinator deciding"
        );
        // Every owner checks a restored table against what it runs; every member learns
        // the new generation.
        let records = match &self.engine {
            Some(e) if republish => self
                .cat
                .indexes()
                .map(|s| RecordUpdate {
                    service: s,
                    record: e.record(s).clone(),
                    intent: *e.intent(s),
                })
                .collect(),
            _ => Vec::new(),
        };
        self.msgs
            .extend(Msg::decisions(self.generation, records, Vec::new()));
        let members = self.members.clone();
        // A member that restarted since the engine last saw it (no view of the engine went
        // without it: seed 24328) lost whatever ran there: the engine sees it leave first.
        // So does one whose rgmanagerd left the group and came back meanwhile (seed 104783):
        // commands the engine sent to its former life went nowhere.
        let left = std::mem::take(&mut self.left_since_decided);
        let restarted: BTreeSet<NodeId> = members
            .iter()
            .copied()
            .filter(|n| {
                left.contains(n)
                    || self
                        .engine_incarnations
                        .get(n)
                        .is_some_and(|i| Some(i) != self.incarnations.get(n))
            })
            .collect();
        if !restarted.is_empty() {
            info!(nodes = ?restarted, "members restarted since the last decisions");
            let without = &members - &restarted;
            self.feed(
                now,
                engine::Input::View {
                    members: without,
                    quorate: false,
                },
                out,
            );
        }
        self.feed(
            now,
            engine::Input::View {
                members: members.clone(),
                quorate: true,
            },
            out,
        );
        self.engine_incarnations = members
            .iter()
            .map(|n| (*n, self.incarnations.get(n).copied().unwrap_or(0)))
            .collect();
        // What every member said of itself, for an engine that may be new.
        for node in self.locked_nodes.clone() {
            self.feed(now, engine::Input::Locked { node, locked: true }, out);
        }
        for node in self.leaving_nodes.clone() {
            self.feed(now, engine::Input::Leaving { node }, out);
        }
        for n in members {
            self.feed_report(now, n, out);
        }
        self.ask_all(out);
    }

    fn feed_report(&mut self, now: Millis, node: NodeId, out: &mut Vec<Action>) {
        if !self.ready {
            return;
        }
        let running = self.latest.get(&node).cloned().unwrap_or_default();
        self.feed(now, engine::Input::Report { node, running }, out);
    }

    /// Feeds the engine (when this node is the coordinator) and publishes its decisions.
    fn feed(&mut self, now: Millis, input: engine::Input, out: &mut Vec<Action>) {
        let Some(e) = self.engine.as_mut() else {
            return;
        };
        let mut acts = Vec::new();
        e.handle(now, input, &mut acts);
        self.publish(acts, out);
    }

    fn publish(&mut self, acts: Vec<engine::Action>, out: &mut Vec<Action>) {
        let Some(e) = self.engine.as_ref() else {
            return;
        };
        let mut records = Vec::new();
        let mut commands = Vec::new();
        let mut ask = Vec::new();
        for a in acts {
            match a {
                engine::Action::Record { service, record } => records.push(RecordUpdate {
                    service,
                    record,
                    intent: *e.intent(service),
                }),
                engine::Action::Start { service, node, .. } => {
                    commands.push(Command::Start { service, node })
                }
                engine::Action::Stop { service, node, .. } => {
                    commands.push(Command::Stop { service, node })
                }
                engine::Action::Migrate { service, from, to } => {
                    commands.push(Command::Prepare { service, from, to })
                }
                engine::Action::AwaitFencing { node, .. } => ask.push(node),
            }
        }
        if !records.is_empty() || !commands.is_empty() {
            self.msgs
                .extend(Msg::decisions(self.generation, records, commands));
        }
        for n in ask {
            self.ask(n, out);
        }
    }

    fn ask(&self, node: NodeId, out: &mut Vec<Action>) {
        let incarnation = match self.pending.get(&node) {
            Some(p) => p.incarnation,
            None => self.incarnations.get(&node).copied().unwrap_or(0),
        };
        out.push(Action::IsFenced { node, incarnation });
    }

    fn ask_all(&mut self, out: &mut Vec<Action>) {
        if self.coordinator != Some(self.cfg.me) || !self.finalized {
            return;
        }
        let nodes: Vec<NodeId> = self.pending.keys().copied().collect();
        for n in nodes {
            self.ask(n, out);
        }
    }

    fn on_fence_answer(
        &mut self,
        now: Millis,
        node: NodeId,
        incarnation: u64,
        fenced: bool,
        out: &mut Vec<Action>,
    ) {
        if !fenced || self.coordinator != Some(self.cfg.me) || self.members.contains(&node) {
            return;
        }
        match self.pending.get(&node) {
            Some(p) if p.incarnation <= incarnation => {
                if self.fenced_sent.insert((node, incarnation)) {
                    self.msgs.push(Msg::Fenced { node, incarnation });
                }
            }
            Some(_) => {}
            // Already cleared in the table: the engine may still wait (a restored hold).
            None => self.feed(now, engine::Input::Fenced { node }, out),
        }
    }

    fn on_admin(
        &mut self,
        id: u64,
        service: ServiceIndex,
        request: Request,
        out: &mut Vec<Action>,
    ) {
        if !self.cat.contains(service) {
            out.push(Action::Reply {
                id,
                code: RG_ENOSERVICE,
            });
            return;
        }
        if !self.quorate {
            out.push(Action::Reply {
                id,
                code: RG_EQUORUM,
            });
            return;
        }
        if !self.synced || self.coordinator.is_none() || !self.requests.insert(id) {
            out.push(Action::Reply {
                id,
                code: RG_EAGAIN,
            });
            return;
        }
        self.msgs.push(Msg::Request {
            origin: self.cfg.me,
            id,
            service,
            request: request.into(),
        });
    }

    fn on_request(
        &mut self,
        now: Millis,
        origin: NodeId,
        id: u64,
        service: ServiceIndex,
        request: AdminRequest,
        out: &mut Vec<Action>,
    ) {
        if self.coordinator.is_none() && origin == self.cfg.me && self.requests.remove(&id) {
            out.push(Action::Reply {
                id,
                code: RG_EAGAIN,
            });
            return;
        }
        if self.coordinator != Some(self.cfg.me) {
            return;
        }
        let code = match (self.ready, self.engine.as_mut()) {
            (true, Some(e)) => {
                let mut acts = Vec::new();
                let r = e.request(now, service, request.into(), &mut acts);
                self.publish(acts, out);
                match r {
                    Ok(()) => 0,
                    Err(err) => {
                        debug!(error = %err, "request refused");
                        err.code()
                    }
                }
            }
            _ => RG_EAGAIN,
        };
        self.msgs.push(Msg::Reply { origin, id, code });
    }
}
