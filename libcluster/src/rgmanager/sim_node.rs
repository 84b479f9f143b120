//! Adapter that runs cmand's [`Membership`], fenced's [`Domain`] and rgmanagerd's
//! [`Coordinator`] together under [`crate::sim`], with a simulated power switch and a
//! simulated hypervisor.
//!
//! The cores are wired as the three shells connect them over IPC: views, quorum, group
//! views and deliveries go from membership to the fence domain and the coordinator; their
//! sends and joins become membership requests; `IsFenced` is answered from the local
//! domain (`Domain::is_fenced`), and every fenced event makes the coordinator ask again.
//!
//! The hypervisor is one world-level truth table ([`Hypervisor`], shared by all nodes):
//! which node (and incarnation) runs which VM, and prepared incoming migrations. A start
//! or stop takes a random time, then changes the truth and answers the coordinator; a
//! migration moves the VM at its end if the target still waits for it, else it stays on
//! the source. A crash or power cut kills the node's VMs (the truth entries of a dead
//! incarnation are void, and a reboot clears them). A status check reads the truth.

use super::catalog::ServiceIndex;
use super::coord::{self, CoordConfig, Coordinator, VmResult, GROUP};
use super::Catalog;
use crate::fence::{self, Domain, FenceSettings, NodeEntry, SwitchConfig};
use crate::ipc::fence::{FenceState, DOMAIN_GROUP};
use crate::membership::{self, ClientRequest, Frame, Membership};
use crate::sim::{self, Ctx, Fault};
use crate::{Millis, NodeId};
use rand::Rng;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// How long a graceful rgmanagerd stop may hand services over before it stops them itself.
const RG_PATIENCE_MS: u64 = 20_000;

/// The simulated hypervisors of the whole cluster: the truth the invariants read.
#[derive(Clone, Debug, Default)]
pub struct Hypervisor {
    /// Where each VM runs: node and the node's incarnation.
    pub running: BTreeMap<ServiceIndex, BTreeMap<NodeId, u64>>,
    /// Prepared incoming migrations: (service, target) → target incarnation.
    pub incoming: BTreeMap<(ServiceIndex, NodeId), u64>,
}

impl Hypervisor {
    /// Whether `node` in `incarnation` runs `s`.
    pub fn runs(&self, s: ServiceIndex, node: NodeId, incarnation: u64) -> bool {
        self.running
            .get(&s)
            .is_some_and(|m| m.get(&node) == Some(&incarnation))
    }

    /// A node booted: whatever its earlier lives ran is gone.
    pub fn boot(&mut self, node: NodeId) {
        for m in self.running.values_mut() {
            m.remove(&node);
        }
        self.incoming.retain(|(_, n), _| *n != node);
    }
}

/// The shared truth table.
pub type SharedHypervisor = Rc<RefCell<Hypervisor>>;

/// Timing and failure rates of the simulated hypervisor.
#[derive(Clone, Debug, PartialEq)]
pub struct HvConfig {
    /// Shortest operation (ms).
    pub op_min_ms: u64,
    /// Longest operation (ms).
    pub op_max_ms: u64,
    /// Probability that a start fails.
    pub start_failure: f64,
}

impl Default for HvConfig {
    fn default() -> HvConfig {
        HvConfig {
            op_min_ms: 50,
            op_max_ms: 500,
            start_failure: 0.05,
        }
    }
}

/// What a scenario injects into a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RgSimInput {
    /// A `clusvcadm` request on this node.
    Admin {
        /// Id.
        id: u64,
        /// Service.
        service: ServiceIndex,
        /// Request.
        request: super::Request,
    },
    /// The VM dies on its own (if it runs here).
    KillVm(ServiceIndex),
    /// rgmanagerd stops: gracefully (SIGTERM: it hands its services over, then leaves the
    /// group) or killed (the VMs it ran keep running; cmand drops it from the group).
    StopRg {
        /// SIGTERM rather than SIGKILL.
        graceful: bool,
    },
    /// rgmanagerd starts again (if stopped): it adopts what runs here and joins.
    StartRg,
    /// `clusvcadm -l` (`true`) or `-u` (`false`) on this node.
    Lock(bool),
}

/// What the invariants read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RgSimEvent {
    /// The VM became active here (start or arrival of a migration).
    VmUp {
        /// The service.
        service: ServiceIndex,
    },
    /// The VM stopped here (a stop, or it died on its own).
    VmDown {
        /// The service.
        service: ServiceIndex,
    },
    /// A live migration from here ended.
    Migration {
        /// The service.
        service: ServiceIndex,
        /// The target.
        to: NodeId,
        /// Whether the VM moved.
        moved: bool,
    },
    /// A fence record was published here (for `node` up to `incarnation`).
    Fenced {
        /// The fenced node.
        node: NodeId,
        /// Its incarnation.
        incarnation: u64,
    },
    /// The switch powered `victim` off.
    PowerOff {
        /// The victim.
        victim: NodeId,
    },
    /// A `clusvcadm` answer.
    Reply {
        /// Request id.
        id: u64,
        /// Code.
        code: i32,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Start(ServiceIndex),
    Stop(ServiceIndex),
    Migrate { service: ServiceIndex, to: NodeId },
    Prepare(ServiceIndex),
}

#[derive(Clone, Debug)]
struct Agent {
    victim: NodeId,
    attempt: u64,
    at: Millis,
    success: bool,
    reported: bool,
}

/// One simulated node: cmand, fenced and rgmanagerd cores, its agents and VM operations.
#[derive(Debug)]
pub struct RgSimNode {
    core: Membership,
    domain: Domain,
    coord: Option<Coordinator>,
    /// What a fresh rgmanagerd of this node is made from.
    rg_template: (CoordConfig, Catalog),
    /// A graceful stop that still runs at this time is forced (the shell's patience).
    rg_patience: Option<Millis>,
    hv: SharedHypervisor,
    hv_cfg: HvConfig,
    switch: SwitchConfig,
    agents: Vec<Agent>,
    ops: Vec<(Millis, Op)>,
    next_request: u64,
    exited: bool,
    out_m: Vec<membership::Action>,
    out_d: Vec<fence::Action>,
    out_c: Vec<coord::Action>,
}

impl RgSimNode {
    /// A node; the hypervisor forgets what earlier lives of this node ran.
    pub fn new(
        core: Membership,
        nodes: Vec<NodeEntry>,
        settings: FenceSettings,
        switch: SwitchConfig,
        coord: Coordinator,
        hv: SharedHypervisor,
        hv_cfg: HvConfig,
    ) -> RgSimNode {
        hv.borrow_mut().boot(core.me());
        let domain = Domain::new(core.me(), nodes, settings);
        let rg_template = (coord.config().clone(), coord.catalog().clone());
        RgSimNode {
            core,
            domain,
            coord: Some(coord),
            rg_template,
            rg_patience: None,
            hv,
            hv_cfg,
            switch,
            agents: Vec::new(),
            ops: Vec::new(),
            next_request: 0,
            exited: false,
            out_m: Vec::new(),
            out_d: Vec::new(),
            out_c: Vec::new(),
        }
    }

    /// cmand's core.
    pub fn membership(&self) -> &Membership {
        &self.core
    }

    /// fenced's core.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// rgmanagerd's core, while rgmanagerd runs.
    pub fn coordinator(&self) -> Option<&Coordinator> {
        self.coord.as_ref()
    }

    fn unix_s(now: Millis) -> i64 {
        1_700_000_000 + i64::try_from(now.0 / 1000).unwrap_or(0)
    }

    fn request(&mut self, ctx: &mut Ctx<'_, Self>, request: ClientRequest) {
        self.next_request += 1;
        let input = membership::Input::Request {
            id: self.next_request,
            request,
        };
        self.core.handle(ctx.now, ctx.rng, input, &mut self.out_m);
    }

    fn fence(&mut self, now: Millis, input: fence::Input) {
        self.domain
            .handle(now, Self::unix_s(now), input, &mut self.out_d);
    }

    fn rg(&mut self, now: Millis, input: coord::Input) {
        if let Some(c) = self.coord.as_mut() {
            c.handle(now, input, &mut self.out_c);
        }
    }

    /// rgmanagerd goes away: cmand drops it from the group; VM operations it started go on
    /// at the hypervisor, their results reach nobody.
    fn rg_gone(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.coord.take().is_some() {
            self.rg_patience = None;
            self.out_c.clear();
            // Its operations end as it dies: a VM it was starting is up or not, one it was
            // stopping down or not (a live migration goes on: QEMU carries it).
            for (at, op) in std::mem::take(&mut self.ops) {
                match op {
                    Op::Start(s) if ctx.rng.random_bool(0.5) => self.vm_up(ctx, s),
                    Op::Stop(s) if ctx.rng.random_bool(0.5) => self.vm_down(ctx, s),
                    m @ Op::Migrate { .. } => self.ops.push((at, m)),
                    _ => {}
                }
            }
            let group = GROUP.to_string();
            self.request(ctx, ClientRequest::GroupLeave { group });
        }
    }

    /// The VM runs here now (this incarnation).
    fn vm_up(&self, ctx: &mut Ctx<'_, Self>, s: ServiceIndex) {
        let inc = self.core.incarnation();
        let mut hv = self.hv.borrow_mut();
        hv.running.entry(s).or_default().insert(ctx.me, inc);
        ctx.emit(RgSimEvent::VmUp { service: s });
    }

    /// The VM stops here (and can no longer arrive here).
    fn vm_down(&self, ctx: &mut Ctx<'_, Self>, s: ServiceIndex) {
        let mut hv = self.hv.borrow_mut();
        if let Some(m) = hv.running.get_mut(&s) {
            m.remove(&ctx.me);
        }
        hv.incoming.remove(&(s, ctx.me));
        ctx.emit(RgSimEvent::VmDown { service: s });
    }

    /// Every configured node's latest incarnation as cmand knows it (`cman_tool nodes`).
    fn known_incarnations(&self) -> Vec<(NodeId, u64)> {
        self.core
            .status()
            .nodes
            .iter()
            .filter(|n| n.incarnation > 0)
            .map(|n| (n.id, n.incarnation))
            .collect()
    }

    /// rgmanagerd starts: what the hypervisor runs here is adopted, then it joins with the
    /// current view and quorum, as the daemon's shell does.
    fn rg_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.coord.is_some() {
            return;
        }
        let (mut cfg, cat) = self.rg_template.clone();
        cfg.incarnation = self.core.incarnation();
        let mut c = Coordinator::new(cfg, cat);
        let here: Vec<ServiceIndex> = self.truth_here(ctx.me).into_iter().collect();
        c.adopt_running(ctx.now, &here);
        c.handle(
            ctx.now,
            coord::Input::Incarnations {
                nodes: self.known_incarnations(),
            },
            &mut self.out_c,
        );
        if let Some((view, members)) = self.core.view() {
            let members = members.to_vec();
            c.handle(
                ctx.now,
                coord::Input::ViewInstalled { view, members },
                &mut self.out_c,
            );
        }
        if let Some(q) = self.core.quorum() {
            c.handle(
                ctx.now,
                coord::Input::Quorum { quorate: q.quorate },
                &mut self.out_c,
            );
        }
        c.start(&mut self.out_c);
        self.coord = Some(c);
    }

    fn quiet(&self) -> bool {
        self.out_m.is_empty() && self.out_d.is_empty() && self.out_c.is_empty()
    }

    /// Moves actions between the cores until all are quiet.
    fn pump(&mut self, ctx: &mut Ctx<'_, Self>) {
        let incarnation = self.core.incarnation();
        let now = ctx.now;
        while !self.exited && !self.quiet() {
            for a in std::mem::take(&mut self.out_m) {
                match a {
                    membership::Action::Send { to, msg } => {
                        ctx.send(to, Frame { incarnation, msg })
                    }
                    membership::Action::ViewInstalled { view, members } => {
                        let nodes = self.known_incarnations();
                        self.rg(now, coord::Input::Incarnations { nodes });
                        self.rg(
                            now,
                            coord::Input::ViewInstalled {
                                view,
                                members: members.clone(),
                            },
                        );
                        self.fence(
                            now,
                            fence::Input::ClusterView {
                                generation: view.epoch,
                                members,
                            },
                        );
                    }
                    membership::Action::QuorumChanged(q) => {
                        self.fence(now, fence::Input::Quorum { quorate: q.quorate });
                        self.rg(now, coord::Input::Quorum { quorate: q.quorate });
                    }
                    membership::Action::GroupView {
                        group,
                        view,
                        seq,
                        members,
                        joined,
                        left,
                    } => {
                        if group == DOMAIN_GROUP {
                            let input = fence::Input::GroupView {
                                generation: view.epoch,
                                members,
                                joined,
                                left,
                            };
                            self.fence(now, input);
                        } else if group == GROUP {
                            self.rg(now, coord::Input::GroupView { view, seq, members });
                        }
                    }
                    membership::Action::Deliver {
                        group,
                        from,
                        payload,
                        ..
                    } => {
                        if group == DOMAIN_GROUP {
                            self.fence(now, fence::Input::Deliver { from, payload });
                        } else if group == GROUP {
                            self.rg(now, coord::Input::Deliver { from, payload });
                        }
                    }
                    membership::Action::Shutdown { .. } => {
                        let back = now.plus(ctx.rng.random_range(200..1000));
                        ctx.schedule_fault(now, Fault::Crash(ctx.me));
                        ctx.schedule_fault(back, Fault::Restart(ctx.me));
                        self.exited = true;
                        return;
                    }
                    _ => {}
                }
            }
            for a in std::mem::take(&mut self.out_d) {
                self.domain_action(ctx, a);
            }
            for a in std::mem::take(&mut self.out_c) {
                self.coord_action(ctx, a);
            }
        }
    }

    fn domain_action(&mut self, ctx: &mut Ctx<'_, Self>, a: fence::Action) {
        match a {
            fence::Action::Send(payload) => {
                let group = DOMAIN_GROUP.to_string();
                self.request(ctx, ClientRequest::GroupSend { group, payload });
            }
            fence::Action::JoinGroup => {
                let group = DOMAIN_GROUP.to_string();
                self.request(ctx, ClientRequest::GroupJoin { group });
            }
            fence::Action::LeaveGroup => {
                let group = DOMAIN_GROUP.to_string();
                self.request(ctx, ClientRequest::GroupLeave { group });
            }
            fence::Action::KillNode { node } => self.request(ctx, ClientRequest::KillNode(node)),
            fence::Action::Fence {
                victim, attempt, ..
            } => {
                let s = &self.switch;
                let at = ctx.now.plus(
                    ctx.rng
                        .random_range(s.agent_min_ms..=s.agent_max_ms.max(s.agent_min_ms)),
                );
                let success = !ctx.rng.random_bool(s.failure_probability.clamp(0.0, 1.0));
                self.agents.push(Agent {
                    victim,
                    attempt,
                    at,
                    success,
                    reported: false,
                });
            }
            fence::Action::CancelFence { victim, attempt } => {
                self.agents
                    .retain(|g| !(g.victim == victim && g.attempt == attempt && !g.reported));
            }
            fence::Action::Fenced(record) => {
                ctx.emit(RgSimEvent::Fenced {
                    node: NodeId(record.node),
                    incarnation: record.incarnation,
                });
                self.rg(ctx.now, coord::Input::FenceEvent);
            }
            fence::Action::DomainChanged(_) => self.rg(ctx.now, coord::Input::FenceEvent),
            _ => {}
        }
    }

    fn op_time(&self, ctx: &mut Ctx<'_, Self>) -> Millis {
        let c = &self.hv_cfg;
        ctx.now.plus(
            ctx.rng
                .random_range(c.op_min_ms..=c.op_max_ms.max(c.op_min_ms)),
        )
    }

    fn coord_action(&mut self, ctx: &mut Ctx<'_, Self>, a: coord::Action) {
        let now = ctx.now;
        match a {
            coord::Action::JoinGroup => {
                let group = GROUP.to_string();
                self.request(ctx, ClientRequest::GroupJoin { group });
            }
            coord::Action::Send(payload) => {
                let group = GROUP.to_string();
                self.request(ctx, ClientRequest::GroupSend { group, payload });
            }
            coord::Action::StartVm { service } => {
                let at = self.op_time(ctx);
                self.ops.push((at, Op::Start(service)));
            }
            coord::Action::StopVm { service } => {
                let at = self.op_time(ctx);
                self.ops.push((at, Op::Stop(service)));
            }
            coord::Action::PrepareIncoming { service, .. } => {
                let at = ctx.now.plus(ctx.rng.random_range(10..100));
                self.ops.push((at, Op::Prepare(service)));
            }
            coord::Action::AbortIncoming { service } => {
                self.ops
                    .retain(|(_, o)| !matches!(o, Op::Prepare(s) if *s == service));
                self.hv.borrow_mut().incoming.remove(&(service, ctx.me));
            }
            coord::Action::MigrateOut { service, to, .. } => {
                let at = self.op_time(ctx);
                self.ops.push((at, Op::Migrate { service, to }));
            }
            coord::Action::CheckStatus { service } => {
                let inc = self.core.incarnation();
                let running = self.hv.borrow().runs(service, ctx.me, inc);
                self.rg(now, coord::Input::Status { service, running });
            }
            coord::Action::IsFenced { node, incarnation } => {
                let fenced = matches!(
                    self.domain.is_fenced(node, incarnation),
                    FenceState::Fenced(_)
                );
                self.rg(
                    now,
                    coord::Input::FenceAnswer {
                        node,
                        incarnation,
                        fenced,
                    },
                );
            }
            coord::Action::Reply { id, code } => ctx.emit(RgSimEvent::Reply { id, code }),
            coord::Action::Exit => self.rg_gone(ctx),
        }
    }

    fn run_ops(&mut self, ctx: &mut Ctx<'_, Self>) {
        let now = ctx.now;
        let me = ctx.me;
        let inc = self.core.incarnation();
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ops)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.ops = rest;
        for (_, op) in due {
            let (service, result) = match op {
                Op::Start(s) => {
                    if ctx
                        .rng
                        .random_bool(self.hv_cfg.start_failure.clamp(0.0, 1.0))
                    {
                        (s, VmResult::StartFailed)
                    } else {
                        self.vm_up(ctx, s);
                        (s, VmResult::Started)
                    }
                }
                Op::Stop(s) => {
                    self.vm_down(ctx, s);
                    (s, VmResult::Stopped)
                }
                Op::Prepare(s) => {
                    self.hv.borrow_mut().incoming.insert((s, me), inc);
                    (
                        s,
                        VmResult::Prepared {
                            uri: format!("tcp:node{me}:{}", 49152 + s.0),
                        },
                    )
                }
                Op::Migrate { service: s, to } => {
                    let mut hv = self.hv.borrow_mut();
                    let here = hv.runs(s, me, inc);
                    let r = match hv.incoming.remove(&(s, to)) {
                        Some(to_inc) if here => {
                            let m = hv.running.entry(s).or_default();
                            m.remove(&me);
                            m.insert(to, to_inc);
                            VmResult::Migrated
                        }
                        _ => VmResult::MigrateFailed { on_source: here },
                    };
                    drop(hv);
                    let moved = r == VmResult::Migrated;
                    ctx.emit(RgSimEvent::Migration {
                        service: s,
                        to,
                        moved,
                    });
                    (s, r)
                }
            };
            self.rg(now, coord::Input::VmDone { service, result });
        }
    }

    fn run_agents(&mut self, ctx: &mut Ctx<'_, Self>) {
        let now = ctx.now;
        let due: Vec<usize> = (0..self.agents.len())
            .filter(|&i| self.agents[i].at <= now)
            .collect();
        for i in due.into_iter().rev() {
            let mut g = self.agents.remove(i);
            if g.success && !g.reported {
                ctx.emit(RgSimEvent::PowerOff { victim: g.victim });
                let s = &self.switch;
                let back = now.plus(
                    ctx.rng
                        .random_range(s.reboot_min_ms..=s.reboot_max_ms.max(s.reboot_min_ms)),
                );
                ctx.schedule_fault(now, Fault::Crash(g.victim));
                ctx.schedule_fault(back, Fault::Restart(g.victim));
                g.reported = true;
                g.at = now.plus(1);
                self.agents.push(g);
                continue;
            }
            let outcome = fence::AttemptOutcome {
                success: g.success,
                method: g.success.then(|| "power".to_string()),
                device: g.success.then(|| "switch".to_string()),
            };
            self.fence(
                now,
                fence::Input::FenceDone {
                    victim: g.victim,
                    attempt: g.attempt,
                    outcome,
                },
            );
        }
    }

    /// The services this node's coordinator knows run here, per the truth.
    pub fn truth_here(&self, me: NodeId) -> BTreeSet<ServiceIndex> {
        let inc = self.core.incarnation();
        let hv = self.hv.borrow();
        hv.running
            .iter()
            .filter(|(_, m)| m.get(&me) == Some(&inc))
            .map(|(s, _)| *s)
            .collect()
    }
}

impl sim::Process for RgSimNode {
    type Msg = Frame;
    type Input = RgSimInput;
    type Event = RgSimEvent;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.core
            .handle(ctx.now, ctx.rng, membership::Input::Tick, &mut self.out_m);
        self.fence(ctx.now, fence::Input::Join);
        if let Some(c) = self.coord.as_mut() {
            c.start(&mut self.out_c);
        }
        self.pump(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, frame: Frame) {
        if self.exited {
            return;
        }
        let input = membership::Input::Message {
            from,
            incarnation: frame.incarnation,
            msg: frame.msg,
        };
        self.core.handle(ctx.now, ctx.rng, input, &mut self.out_m);
        self.pump(ctx);
    }

    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, input: RgSimInput) {
        if self.exited {
            return;
        }
        match input {
            RgSimInput::Admin {
                id,
                service,
                request,
            } => self.rg(
                ctx.now,
                coord::Input::Admin {
                    id,
                    service,
                    request,
                },
            ),
            RgSimInput::KillVm(s) => {
                let inc = self.core.incarnation();
                if self.hv.borrow().runs(s, ctx.me, inc) {
                    if let Some(m) = self.hv.borrow_mut().running.get_mut(&s) {
                        m.remove(&ctx.me);
                    }
                    ctx.emit(RgSimEvent::VmDown { service: s });
                }
            }
            RgSimInput::StopRg { graceful: false } => self.rg_gone(ctx),
            RgSimInput::StopRg { graceful: true } => {
                if self.coord.is_some() && self.rg_patience.is_none() {
                    self.rg_patience = Some(ctx.now.plus(RG_PATIENCE_MS));
                    self.rg(ctx.now, coord::Input::Shutdown { hand_off: true });
                }
            }
            RgSimInput::StartRg => self.rg_start(ctx),
            RgSimInput::Lock(locked) => self.rg(ctx.now, coord::Input::Lock { locked }),
        }
        self.pump(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.exited {
            return;
        }
        let now = ctx.now;
        if self.core.next_deadline() <= now {
            self.core
                .handle(now, ctx.rng, membership::Input::Tick, &mut self.out_m);
        }
        if self.domain.next_deadline().is_some_and(|d| d <= now) {
            self.fence(now, fence::Input::Tick);
        }
        if self
            .coord
            .as_ref()
            .and_then(Coordinator::next_deadline)
            .is_some_and(|d| d <= now)
        {
            self.rg(now, coord::Input::Tick);
        }
        if self.rg_patience.is_some_and(|d| d <= now) {
            self.rg_patience = None;
            self.rg(now, coord::Input::Shutdown { hand_off: false });
        }
        self.run_agents(ctx);
        self.run_ops(ctx);
        self.pump(ctx);
    }

    fn next_deadline(&self) -> Option<Millis> {
        if self.exited {
            return None;
        }
        let m = self.core.next_deadline();
        let m = (m != Millis(u64::MAX)).then_some(m);
        let c = self.coord.as_ref().and_then(Coordinator::next_deadline);
        [m, self.domain.next_deadline(), c, self.rg_patience]
            .into_iter()
            .chain(self.agents.iter().map(|g| Some(g.at)))
            .chain(self.ops.iter().map(|o| Some(o.0)))
            .flatten()
            .min()
    }
}
