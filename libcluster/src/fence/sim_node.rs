//! Adapter that runs cmand's [`Membership`] core and fenced's [`Domain`] together under
//! [`crate::sim`], with a simulated power switch.
//!
//! Membership's views, quorum, group views and deliveries of the domain group become domain
//! inputs; the domain's sends, joins, leaves and kills become membership requests, exactly
//! as the two shells connect them over IPC. A [`Action::Fence`] starts a simulated agent:
//! after a random duration, if this node is still running, it either fails or powers the
//! victim off through [`Ctx::schedule_fault`] (a crash, then a reboot as a new incarnation
//! some time later) and reports success one millisecond later, so the power-off has taken
//! effect before anyone hears of the result. A membership shutdown (killed, left) exits the
//! node, and a supervisor restarts it.

use super::api::{Action, AttemptOutcome, Input, NodeEntry};
use super::{Domain, FenceSettings};
use crate::ipc::fence::{FenceRecord, DOMAIN_GROUP};
use crate::membership::{self, ClientRequest, Frame, Membership};
use crate::sim::{self, Ctx, Fault};
use crate::{Millis, NodeId};
use rand::Rng;

/// The simulated power switch and agents.
#[derive(Clone, Debug, PartialEq)]
pub struct SwitchConfig {
    /// Shortest agent run (ms).
    pub agent_min_ms: u64,
    /// Longest agent run (ms).
    pub agent_max_ms: u64,
    /// Probability that an attempt fails (the device does not answer).
    pub failure_probability: f64,
    /// A powered-off node boots again this long after, at the earliest (ms).
    pub reboot_min_ms: u64,
    /// ... and at the latest (ms).
    pub reboot_max_ms: u64,
    /// A broken device that reports success without cutting the power (for tests that
    /// check the invariants catch it).
    pub lies: bool,
}

impl Default for SwitchConfig {
    fn default() -> SwitchConfig {
        SwitchConfig {
            agent_min_ms: 50,
            agent_max_ms: 1500,
            failure_probability: 0.2,
            reboot_min_ms: 1000,
            reboot_max_ms: 4000,
            lies: false,
        }
    }
}

/// What a scenario injects into a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceSimInput {
    /// A request to cmand (`cman_tool leave`, ...).
    Cluster(ClientRequest),
    /// A request to fenced (`fence_tool join/leave`, `fence_ack_manual`, `fence_node`).
    Fence(Input),
    /// fenced dies and restarts at once (cmand lives): its group membership is dropped
    /// without an announcement and a fresh core joins again.
    RestartFenced,
}

/// What the invariants read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceSimEvent {
    /// A membership action (views, quorum, group views, shutdown; not sends or deliveries).
    Membership(membership::Action),
    /// A domain action (not sends).
    Domain(Action),
    /// The domain issued an attempt; `quorate` is the membership core's quorum at that moment.
    FenceIssued {
        /// Victim.
        victim: NodeId,
        /// Its incarnation as the domain holds it.
        incarnation: u64,
        /// Attempt.
        attempt: u64,
        /// Whether this node's cmand was quorate.
        quorate: bool,
    },
    /// The switch turned the victim off.
    PowerOff {
        /// Victim.
        victim: NodeId,
    },
    /// fenced restarted on this node (a new domain core, same cmand incarnation).
    FencedRestarted,
    /// This node took over the victim's resource after a fencing result.
    Recover {
        /// Whose resource.
        node: NodeId,
        /// The incarnation the record covers.
        incarnation: u64,
    },
}

#[derive(Clone, Debug)]
struct Agent {
    victim: NodeId,
    attempt: u64,
    at: Millis,
    success: bool,
    /// The power is off; report at `at`.
    reported: bool,
}

/// One simulated node: cmand's core, fenced's core, and the agents it runs.
#[derive(Debug)]
pub struct FenceSimNode {
    core: Membership,
    domain: Domain,
    nodes: Vec<NodeEntry>,
    settings: FenceSettings,
    switch: SwitchConfig,
    agents: Vec<Agent>,
    next_request: u64,
    exited: bool,
    /// After a fenced restart: the old instance's group membership is still being left;
    /// group views until that leave belong to the old instance.
    old_instance_leaving: bool,
    out_m: Vec<membership::Action>,
    out_d: Vec<Action>,
}

impl FenceSimNode {
    /// A node whose fenced joins the domain when it starts.
    pub fn new(
        core: Membership,
        nodes: Vec<NodeEntry>,
        settings: FenceSettings,
        switch: SwitchConfig,
    ) -> FenceSimNode {
        let domain = Domain::new(core.me(), nodes.clone(), settings.clone());
        FenceSimNode {
            core,
            domain,
            nodes,
            settings,
            switch,
            agents: Vec::new(),
            next_request: 0,
            exited: false,
            old_instance_leaving: false,
            out_m: Vec::new(),
            out_d: Vec::new(),
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

    fn unix_s(now: Millis) -> i64 {
        1_700_000_000 + i64::try_from(now.0 / 1000).unwrap_or(0)
    }

    fn quorate(&self) -> bool {
        self.core.quorum().is_some_and(|q| q.quorate)
    }

    fn request(&mut self, ctx: &mut Ctx<'_, Self>, request: ClientRequest) {
        self.next_request += 1;
        let input = membership::Input::Request {
            id: self.next_request,
            request,
        };
        self.core.handle(ctx.now, ctx.rng, input, &mut self.out_m);
    }

    fn fence(&mut self, ctx: &mut Ctx<'_, Self>, input: Input) {
        self.domain
            .handle(ctx.now, Self::unix_s(ctx.now), input, &mut self.out_d);
    }

    /// Moves actions between the two cores until both are quiet.
    fn pump(&mut self, ctx: &mut Ctx<'_, Self>) {
        let incarnation = self.core.incarnation();
        while !self.exited && (!self.out_m.is_empty() || !self.out_d.is_empty()) {
            for a in std::mem::take(&mut self.out_m) {
                match a {
                    membership::Action::Send { to, msg } => {
                        ctx.send(to, Frame { incarnation, msg })
                    }
                    membership::Action::ViewInstalled { view, members } => {
                        ctx.emit(FenceSimEvent::Membership(
                            membership::Action::ViewInstalled {
                                view,
                                members: members.clone(),
                            },
                        ));
                        let generation = view.epoch;
                        self.fence(
                            ctx,
                            Input::ClusterView {
                                generation,
                                members,
                            },
                        );
                    }
                    membership::Action::QuorumChanged(q) => {
                        ctx.emit(FenceSimEvent::Membership(a.clone()));
                        self.fence(ctx, Input::Quorum { quorate: q.quorate });
                    }
                    membership::Action::GroupView {
                        ref group,
                        view,
                        ref members,
                        ref joined,
                        ref left,
                        ..
                    } if group == DOMAIN_GROUP => {
                        if self.old_instance_leaving {
                            self.old_instance_leaving = !left.contains(&ctx.me);
                            continue;
                        }
                        let input = Input::GroupView {
                            generation: view.epoch,
                            members: members.clone(),
                            joined: joined.clone(),
                            left: left.clone(),
                        };
                        ctx.emit(FenceSimEvent::Membership(a.clone()));
                        self.fence(ctx, input);
                    }
                    membership::Action::Deliver {
                        group,
                        from,
                        payload,
                        ..
                    } if group == DOMAIN_GROUP => self.fence(ctx, Input::Deliver { from, payload }),
                    membership::Action::Shutdown { .. } => {
                        ctx.emit(FenceSimEvent::Membership(a));
                        // The daemon exits; a supervisor starts the node again.
                        let back = ctx.now.plus(ctx.rng.random_range(200..1000));
                        ctx.schedule_fault(ctx.now, Fault::Crash(ctx.me));
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
        }
    }

    fn domain_action(&mut self, ctx: &mut Ctx<'_, Self>, a: Action) {
        match a {
            Action::Send(payload) => {
                let group = DOMAIN_GROUP.to_string();
                self.request(ctx, ClientRequest::GroupSend { group, payload });
            }
            Action::JoinGroup => {
                let group = DOMAIN_GROUP.to_string();
                self.request(ctx, ClientRequest::GroupJoin { group });
            }
            Action::LeaveGroup => {
                let group = DOMAIN_GROUP.to_string();
                self.request(ctx, ClientRequest::GroupLeave { group });
            }
            Action::KillNode { node } => {
                ctx.emit(FenceSimEvent::Domain(a));
                self.request(ctx, ClientRequest::KillNode(node));
            }
            Action::Fence {
                victim, attempt, ..
            } => {
                let incarnation = self
                    .domain
                    .victims()
                    .into_iter()
                    .find(|v| v.0 == victim)
                    .map_or(0, |v| v.1);
                ctx.emit(FenceSimEvent::FenceIssued {
                    victim,
                    incarnation,
                    attempt,
                    quorate: self.quorate(),
                });
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
            Action::CancelFence { victim, attempt } => {
                self.agents
                    .retain(|g| !(g.victim == victim && g.attempt == attempt && !g.reported));
            }
            Action::Fenced(ref record) => {
                ctx.emit(FenceSimEvent::Domain(a.clone()));
                self.maybe_recover(ctx, record);
            }
            other => ctx.emit(FenceSimEvent::Domain(other)),
        }
    }

    /// The resource model: the lowest quorate domain member takes over the victim's resource.
    fn maybe_recover(&mut self, ctx: &mut Ctx<'_, Self>, record: &FenceRecord) {
        let lowest = self.domain.domain_info().members.first().copied();
        if self.quorate() && lowest == Some(ctx.me.0) {
            ctx.emit(FenceSimEvent::Recover {
                node: NodeId(record.node),
                incarnation: record.incarnation,
            });
        }
    }

    fn run_agents(&mut self, ctx: &mut Ctx<'_, Self>) {
        let now = ctx.now;
        let due: Vec<usize> = (0..self.agents.len())
            .filter(|&i| self.agents[i].at <= now)
            .collect();
        for i in due.into_iter().rev() {
            let mut g = self.agents.remove(i);
            if g.success && !g.reported && !self.switch.lies {
                ctx.emit(FenceSimEvent::PowerOff { victim: g.victim });
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
            let outcome = AttemptOutcome {
                success: g.success,
                method: g.success.then(|| "power".to_string()),
                device: g.success.then(|| "switch".to_string()),
            };
            let input = Input::FenceDone {
                victim: g.victim,
                attempt: g.attempt,
                outcome,
            };
            self.fence(ctx, input);
        }
    }
}

impl sim::Process for FenceSimNode {
    type Msg = Frame;
    type Input = FenceSimInput;
    type Event = FenceSimEvent;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.core
            .handle(ctx.now, ctx.rng, membership::Input::Tick, &mut self.out_m);
        self.fence(ctx, Input::Join);
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

    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, input: FenceSimInput) {
        if self.exited {
            return;
        }
        match input {
            FenceSimInput::Cluster(r) => self.request(ctx, r),
            FenceSimInput::Fence(i) => self.fence(ctx, i),
            FenceSimInput::RestartFenced => {
                ctx.emit(FenceSimEvent::FencedRestarted);
                let group = DOMAIN_GROUP.to_string();
                self.request(ctx, ClientRequest::GroupLeave { group });
                let id = self.next_request;
                self.old_instance_leaving = self.out_m.iter().any(|a| {
                    matches!(a, membership::Action::Reply { id: i, result: Ok(()) } if *i == id)
                });
                self.agents.clear();
                self.out_d.clear();
                self.domain =
                    Domain::new(self.core.me(), self.nodes.clone(), self.settings.clone());
                if let Some((view, members)) = self.core.view() {
                    let input = Input::ClusterView {
                        generation: view.epoch,
                        members: members.to_vec(),
                    };
                    self.fence(ctx, input);
                }
                let quorate = self.quorate();
                self.fence(ctx, Input::Quorum { quorate });
                self.fence(ctx, Input::Join);
            }
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
            self.fence(ctx, Input::Tick);
        }
        self.run_agents(ctx);
        self.pump(ctx);
    }

    fn next_deadline(&self) -> Option<Millis> {
        if self.exited {
            return None;
        }
        let m = self.core.next_deadline();
        let m = (m != Millis(u64::MAX)).then_some(m);
        [m, self.domain.next_deadline()]
            .into_iter()
            .chain(self.agents.iter().map(|g| Some(g.at)))
            .flatten()
            .min()
    }
}
