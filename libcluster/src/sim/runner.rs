//! [`Sim`]: the event loop, node lifecycle, invariant checks and the trace hash.

use super::error::SimError;
use super::fault::{Fault, Schedule};
use super::network::{DropReason, NetConfig, Network, Route};
use super::process::{Ctx, Emitted, Outbox, Process, SimRng};
use super::queue::{EventQueue, Pending};
use super::seeds::{boot_rng, network_rng, node_rng};
use super::trace::Fnv;
use super::view::{Held, NodeStatus, SimView, Slot, Stats};
use crate::{Millis, NodeId};
use rand::Rng;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use tracing::{debug, info_span};

/// How a simulation is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The seed every random decision derives from.
    pub seed: u64,
    /// The cluster's nodes (sorted and deduplicated by the simulator).
    pub nodes: Vec<NodeId>,
    /// The network at the start, and after every [`Fault::HealAll`].
    pub net: NetConfig,
    /// Nodes boot at random times in `0..=start_spread_ms` (0: all at time 0, in id order).
    pub start_spread_ms: u64,
    /// Steps allowed at one simulated instant before the run is declared stalled.
    pub max_steps_per_instant: u64,
}

impl SimConfig {
    /// Nodes `1..=node_count` on a LAN (1-5 ms, no loss), all booting at time 0.
    pub fn new(seed: u64, node_count: u32) -> Self {
        SimConfig {
            seed,
            nodes: (1..=node_count).map(NodeId).collect(),
            net: NetConfig::default(),
            start_spread_ms: 0,
            max_steps_per_instant: 100_000,
        }
    }
}

/// An invariant: `Ok` or a sentence saying what is wrong. May keep state between calls.
type Invariant<P> = Box<dyn FnMut(&SimView<P>) -> Result<(), String>>;

/// The next thing to run.
enum Source {
    Queue,
    Timer(usize),
}

/// Which `Process` method a node step calls.
pub(super) enum Call<P: Process> {
    Start,
    Message(NodeId, P::Msg),
    Input(P::Input),
    Timer,
}

/// A deterministic simulation of many nodes running `P`.
///
/// Everything random (boot times, network fate, each node's RNG) derives from the seed, and
/// events run in (time, sequence) order, so a seed always produces the same run and the same
/// [`Sim::trace_hash`].
pub struct Sim<P: Process> {
    pub(super) view: SimView<P>,
    queue: EventQueue<P>,
    net_rng: SimRng,
    pub(super) factory: Box<dyn FnMut(NodeId, u64) -> P>,
    invariants: Vec<(String, Invariant<P>)>,
    outbox: Outbox<P::Msg, P::Event>,
    pub(super) hash: Fnv,
    instant_steps: u64,
    max_steps_per_instant: u64,
    failed: Option<SimError>,
}

impl<P: Process> Sim<P> {
    /// A simulation of `config.nodes`, each built by `factory(id, incarnation)` when it (re)starts.
    /// Every node is down until its boot time, when a [`Fault::Restart`] starts it with
    /// incarnation 1.
    pub fn new(config: SimConfig, factory: impl FnMut(NodeId, u64) -> P + 'static) -> Self {
        let ids: Vec<NodeId> = config
            .nodes
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let seed = config.seed;
        let nodes = ids
            .iter()
            .map(|&id| Slot {
                id,
                status: NodeStatus::Down,
                incarnation: 0,
                core: None,
                rng: node_rng(seed, id, 0),
                deadline: None,
                held: Vec::new(),
                held_msgs: 0,
            })
            .collect();
        let mut sim = Sim {
            view: SimView {
                seed,
                now: Millis(0),
                ids: ids.clone(),
                nodes,
                network: Network::new(config.net),
                history: Vec::new(),
                step_start: 0,
                faults: Vec::new(),
                stats: Stats::default(),
            },
            queue: EventQueue::new(),
            net_rng: network_rng(seed),
            factory: Box::new(factory),
            invariants: Vec::new(),
            outbox: Outbox::default(),
            hash: Fnv::new(),
            instant_steps: 0,
            max_steps_per_instant: config.max_steps_per_instant.max(1),
            failed: None,
        };
        let mut boot = boot_rng(seed);
        for id in ids {
            let at = boot.random_range(0..=config.start_spread_ms);
            sim.schedule(Millis(at), Fault::Restart(id));
        }
        sim
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.view.seed
    }

    /// The current simulated time.
    pub fn now(&self) -> Millis {
        self.view.now
    }

    /// The world as invariants see it.
    pub fn view(&self) -> &SimView<P> {
        &self.view
    }

    /// A hash of everything that happened so far: every send with its fate, delivery, input,
    /// timer, fault and emitted event, with times. Equal for equal seeds (and equal code).
    pub fn trace_hash(&self) -> u64 {
        self.hash.finish()
    }

    /// Adds an invariant checked after every step from now on. `check` returns `Err(what is
    /// wrong)`; it may keep state between calls (use [`SimView::new_events`] to stay incremental).
    pub fn add_invariant(
        &mut self,
        name: &str,
        check: impl FnMut(&SimView<P>) -> Result<(), String> + 'static,
    ) -> &mut Self {
        self.invariants.push((name.to_string(), Box::new(check)));
        self
    }

    /// Queues `fault` at `at` (a time already past means now).
    pub fn schedule(&mut self, at: Millis, fault: Fault) -> &mut Self {
        self.push(at, Pending::Fault(fault));
        self
    }

    /// Queues every fault of `schedule`.
    pub fn schedule_all(&mut self, schedule: &Schedule) -> &mut Self {
        for (at, fault) in &schedule.faults {
            self.schedule(*at, fault.clone());
        }
        self
    }

    /// Queues `input` for node `to` at `at`. A down node loses it; a paused node gets it on resume.
    pub fn input(&mut self, at: Millis, to: NodeId, input: P::Input) -> &mut Self {
        self.push(at, Pending::Input { to, input });
        self
    }

    /// Applies `fault` now, after anything already due at this instant.
    pub fn apply(&mut self, fault: Fault) -> Result<(), SimError> {
        let now = self.view.now;
        self.schedule(now, fault);
        self.run_to(now)
    }

    /// Runs every step due up to `now + ms`, then sets the clock to `now + ms`.
    pub fn run_for(&mut self, ms: u64) -> Result<(), SimError> {
        self.run_to(self.view.now.plus(ms))
    }

    /// Runs every step due up to `until`, then sets the clock to `until` (if later than now).
    pub fn run_to(&mut self, until: Millis) -> Result<(), SimError> {
        while self.step_until(until)? {}
        self.set_clock(until);
        Ok(())
    }

    /// Runs until `pred` holds (checked before the first step and after each), returning the
    /// time it first held, or [`SimError::Timeout`] naming `what` once `deadline` has passed.
    pub fn run_until(
        &mut self,
        what: &str,
        deadline: Millis,
        mut pred: impl FnMut(&SimView<P>) -> bool,
    ) -> Result<Millis, SimError> {
        loop {
            if pred(&self.view) {
                return Ok(self.view.now);
            }
            if !self.step_until(deadline)? {
                self.set_clock(deadline);
                return Err(SimError::Timeout {
                    seed: self.view.seed,
                    what: what.to_string(),
                    deadline,
                });
            }
        }
    }

    /// Takes one step: the earliest queued event or due timer. `Ok(false)` when nothing is left.
    pub fn step(&mut self) -> Result<bool, SimError> {
        self.step_until(Millis(u64::MAX))
    }

    /// Takes one step if one is due at or before `limit`.
    fn step_until(&mut self, limit: Millis) -> Result<bool, SimError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let now = self.view.now;
        let queued = self.queue.next_at().map(|at| at.max(now));
        let (at, source) = match (queued, self.next_timer()) {
            (None, None) => return Ok(false),
            // At equal times queued events (deliveries, faults) go before timers.
            (Some(q), Some((t, i))) if t < q => (t, Source::Timer(i)),
            (Some(q), _) => (q, Source::Queue),
            (None, Some((t, i))) => (t, Source::Timer(i)),
        };
        if at > limit {
            return Ok(false);
        }
        self.advance(at)?;
        self.view.step_start = self.view.history.len();
        self.view.stats.steps += 1;
        match source {
            Source::Timer(i) => {
                let _ = write!(self.hash, "t{} {};", at.0, self.view.nodes[i].id);
                self.view.stats.timers += 1;
                self.call(i, Call::Timer);
            }
            Source::Queue => {
                if let Some(what) = self.queue.pop() {
                    self.run_pending(what);
                }
            }
        }
        self.check_invariants()?;
        Ok(true)
    }

    /// The earliest due timer of a running node: (when, slot index). Lower ids win ties.
    fn next_timer(&self) -> Option<(Millis, usize)> {
        let now = self.view.now;
        let mut best: Option<(Millis, usize)> = None;
        for (i, slot) in self.view.nodes.iter().enumerate() {
            if slot.status != NodeStatus::Up {
                continue;
            }
            if let Some(d) = slot.deadline {
                let t = d.max(now);
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, i));
                }
            }
        }
        best
    }

    fn advance(&mut self, at: Millis) -> Result<(), SimError> {
        if at > self.view.now {
            self.view.now = at;
            self.instant_steps = 0;
        }
        self.instant_steps += 1;
        if self.instant_steps > self.max_steps_per_instant {
            return self.fail(SimError::Stalled {
                seed: self.view.seed,
                at: self.view.now,
                steps: self.instant_steps - 1,
            });
        }
        Ok(())
    }

    fn set_clock(&mut self, t: Millis) {
        if t > self.view.now {
            self.view.now = t;
            self.instant_steps = 0;
        }
    }

    fn fail(&mut self, error: SimError) -> Result<(), SimError> {
        self.failed = Some(error.clone());
        Err(error)
    }

    fn check_invariants(&mut self) -> Result<(), SimError> {
        let view = &self.view;
        let broken = self
            .invariants
            .iter_mut()
            .find_map(|(name, check)| check(view).err().map(|msg| (name.clone(), msg)));
        match broken {
            None => Ok(()),
            Some((name, message)) => self.fail(SimError::Invariant {
                seed: self.view.seed,
                name,
                at: self.view.now,
                step: self.view.stats.steps,
                message,
            }),
        }
    }

    pub(super) fn push(&mut self, at: Millis, what: Pending<P>) {
        self.queue.push(at, what);
    }

    fn run_pending(&mut self, what: Pending<P>) {
        let now = self.view.now;
        match what {
            Pending::Deliver { from, to, msg } => {
                let _ = write!(self.hash, "d{} {from}>{to};", now.0);
                let pause_buffer = self.view.network.config().pause_buffer;
                let Some(i) = self.view.index(to) else {
                    self.dropped(to, DropReason::Down);
                    return;
                };
                let slot = &mut self.view.nodes[i];
                match slot.status {
                    NodeStatus::Down => self.dropped(to, DropReason::Down),
                    NodeStatus::Paused if slot.held_msgs >= pause_buffer => {
                        self.dropped(to, DropReason::PauseOverflow)
                    }
                    NodeStatus::Paused => {
                        slot.held_msgs += 1;
                        slot.held.push(Held::Msg { from, msg });
                    }
                    NodeStatus::Up => {
                        self.view.stats.delivered += 1;
                        self.call(i, Call::Message(from, msg));
                    }
                }
            }
            Pending::Input { to, input } => {
                let _ = write!(self.hash, "i{} {to} {input:?};", now.0);
                let Some(i) = self.view.index(to) else {
                    self.view.stats.inputs_dropped += 1;
                    return;
                };
                let slot = &mut self.view.nodes[i];
                match slot.status {
                    NodeStatus::Down => {
                        debug!(t = %now, node = to.0, ?input, "input lost: node down");
                        self.view.stats.inputs_dropped += 1;
                    }
                    NodeStatus::Paused => slot.held.push(Held::Input(input)),
                    NodeStatus::Up => {
                        self.view.stats.inputs += 1;
                        self.call(i, Call::Input(input));
                    }
                }
            }
            Pending::Fault(fault) => self.apply_fault(fault),
        }
    }

    fn dropped(&mut self, to: NodeId, reason: DropReason) {
        let now = self.view.now;
        let _ = write!(self.hash, "x{} {to} {reason:?};", now.0);
        debug!(t = %now, node = to.0, ?reason, "message dropped on arrival");
        self.view.stats.count_drop(reason);
    }

    /// Calls into node `i`, then records its events and hands its sends to the network.
    pub(super) fn call(&mut self, i: usize, call: Call<P>) {
        let now = self.view.now;
        let mut outbox = std::mem::take(&mut self.outbox);
        let view = &mut self.view;
        let slot = &mut view.nodes[i];
        let (id, incarnation) = (slot.id, slot.incarnation);
        let Some(core) = slot.core.as_mut() else {
            self.outbox = outbox;
            return;
        };
        let span = info_span!("node", id = id.0, inc = incarnation, t = %now);
        let _entered = span.enter();
        {
            let mut ctx = Ctx::new(now, id, incarnation, &mut slot.rng, &view.ids, &mut outbox);
            match call {
                Call::Start => core.on_start(&mut ctx),
                Call::Message(from, msg) => core.on_message(&mut ctx, from, msg),
                Call::Input(input) => core.on_input(&mut ctx, input),
                Call::Timer => core.on_timer(&mut ctx),
            }
        }
        slot.deadline = core.next_deadline();
        for event in outbox.events.drain(..) {
            let _ = write!(self.hash, "e{} {id} {event:?};", now.0);
            debug!(?event, "event");
            view.history.push(Emitted {
                at: now,
                node: id,
                incarnation,
                event,
            });
        }
        for (to, msg) in outbox.sends.drain(..) {
            self.send(id, to, msg);
        }
        for (at, fault) in outbox.faults.drain(..) {
            let at = at.max(now);
            let _ = write!(self.hash, "r{} {id} {}:{fault:?};", now.0, at.0);
            debug!(at = %at, ?fault, "fault requested by node");
            self.push(at, Pending::Fault(fault));
        }
        self.outbox = outbox;
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: P::Msg) {
        let now = self.view.now;
        self.view.stats.sent += 1;
        let route = self.view.network.route(&mut self.net_rng, from, to, now);
        let _ = write!(self.hash, "s{} {from}>{to} {msg:?} {route:?};", now.0);
        match route {
            Route::Drop(reason) => {
                debug!(to = to.0, ?reason, "message dropped");
                self.view.stats.count_drop(reason);
            }
            Route::Deliver { at, duplicate_at } => {
                if let Some(dup) = duplicate_at {
                    self.view.stats.duplicated += 1;
                    let msg = msg.clone();
                    self.push(dup, Pending::Deliver { from, to, msg });
                }
                self.push(at, Pending::Deliver { from, to, msg });
            }
        }
    }
}
