//! A toy protocol that proves the simulator: max-value gossip.
//!
//! ```text
//!   start: value := random, introduce it ──► every round (interval ± jitter):
//!                                            send value to `fanout` random peers
//!   gossip(v) from a peer: v > value ? adopt v
//!   propose(v) (input):    introduce v; v > value ? adopt v
//! ```
//!
//! Properties: a node's value never decreases within an incarnation, every value held was
//! introduced by someone (nothing invented), and once faults stop all running nodes agree on
//! a value at least as large as anything they introduced themselves.
//!
//! It is written the way real cores are: [`Gossip`] is a sans-IO core with its own API
//! (explicit `now`, `&mut impl Rng`, actions pushed into a caller's `Vec`), and [`GossipNode`]
//! is the thin adapter that lets the simulator drive it. [`Flaw`] plants a realistic bug so
//! tests can show the invariants catch it.

use super::error::SimError;
use super::fault::{random_schedule, FaultMenu};
use super::process::{Ctx, Process};
use super::runner::{Sim, SimConfig};
use super::seeds::rng_for;
use super::view::{NodeStatus, SimView};
use crate::{Millis, NodeId};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// A deliberately planted bug.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flaw {
    /// The correct protocol.
    #[default]
    None,
    /// The node recomputes its value as the max of its own proposals and the *latest* value
    /// each peer reported, instead of keeping what it learned. Correct while messages arrive in
    /// order and nobody restarts; a reordered or duplicated stale message, or a peer that
    /// restarts with a small value, makes the value go down.
    RecomputeFromLatest,
}

/// Timing and shape of the gossip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GossipConfig {
    /// Milliseconds between rounds.
    pub interval_ms: u64,
    /// Up to this many milliseconds are added to each interval at random.
    pub jitter_ms: u64,
    /// Peers contacted per round.
    pub fanout: usize,
    /// A planted bug, or none.
    pub flaw: Flaw,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            interval_ms: 100,
            jitter_ms: 25,
            fanout: 2,
            flaw: Flaw::None,
        }
    }
}

impl GossipConfig {
    /// The default timings with `flaw` planted.
    pub fn with_flaw(flaw: Flaw) -> Self {
        GossipConfig {
            flaw,
            ..GossipConfig::default()
        }
    }
}

/// Every fault, with heavy duplication and wide latency ranges, so stale messages arrive
/// late: the conditions that expose [`Flaw::RecomputeFromLatest`] (in about one schedule in ten).
pub fn stale_message_menu() -> FaultMenu {
    FaultMenu {
        max_duplication: 0.5,
        max_delay_ms: 300,
        max_faults: 20,
        ..FaultMenu::all(2)
    }
}

/// What the gossip core asks of its shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send our value to a peer.
    Send {
        /// The peer.
        to: NodeId,
        /// Our value.
        value: u64,
    },
    /// A new value entered the system here.
    Introduced(u64),
    /// Our value changed.
    Adopted {
        /// The previous value.
        from: u64,
        /// The new value.
        to: u64,
    },
}

/// The gossip core: no I/O, no clock, no global randomness.
#[derive(Clone, Debug)]
pub struct Gossip {
    me: NodeId,
    peers: Vec<NodeId>,
    config: GossipConfig,
    value: u64,
    /// Largest value introduced here (start value and proposals).
    own: u64,
    next_round: Millis,
    /// Latest value reported by each peer (used only by [`Flaw::RecomputeFromLatest`]).
    latest: BTreeMap<NodeId, u64>,
}

impl Gossip {
    /// A core for node `me` gossiping with `nodes` (which may include `me`).
    pub fn new(me: NodeId, nodes: &[NodeId], config: GossipConfig) -> Self {
        Gossip {
            me,
            peers: nodes.iter().copied().filter(|&n| n != me).collect(),
            config,
            value: 0,
            own: 0,
            next_round: Millis(0),
            latest: BTreeMap::new(),
        }
    }

    /// Starts: draws and introduces a random value, schedules the first round.
    pub fn start<R: Rng + ?Sized>(&mut self, now: Millis, rng: &mut R, out: &mut Vec<Action>) {
        let v = rng.random_range(0..1000);
        self.introduce(v, out);
        self.schedule(now, rng);
    }

    /// An administrator proposes `value`.
    pub fn propose(&mut self, value: u64, out: &mut Vec<Action>) {
        self.introduce(value, out);
    }

    /// A peer's gossip arrived.
    pub fn on_gossip(&mut self, from: NodeId, value: u64, out: &mut Vec<Action>) {
        match self.config.flaw {
            Flaw::None => self.adopt(self.value.max(value), out),
            Flaw::RecomputeFromLatest => {
                self.latest.insert(from, value);
                let best = self.latest.values().copied().fold(self.own, u64::max);
                self.adopt(best, out);
            }
        }
    }

    /// Runs a gossip round if one is due.
    pub fn on_tick<R: Rng + ?Sized>(&mut self, now: Millis, rng: &mut R, out: &mut Vec<Action>) {
        if now < self.next_round {
            return;
        }
        let mut candidates = self.peers.clone();
        for _ in 0..self.config.fanout.min(candidates.len()) {
            let to = candidates.swap_remove(rng.random_range(0..candidates.len()));
            out.push(Action::Send {
                to,
                value: self.value,
            });
        }
        self.schedule(now, rng);
    }

    /// When the next round is due.
    pub fn next_deadline(&self) -> Millis {
        self.next_round
    }

    /// The value held now.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// The largest value introduced at this node.
    pub fn own(&self) -> u64 {
        self.own
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    fn introduce(&mut self, v: u64, out: &mut Vec<Action>) {
        out.push(Action::Introduced(v));
        self.own = self.own.max(v);
        self.adopt(self.value.max(v), out);
    }

    fn adopt(&mut self, v: u64, out: &mut Vec<Action>) {
        if v != self.value {
            out.push(Action::Adopted {
                from: self.value,
                to: v,
            });
            self.value = v;
        }
    }

    fn schedule<R: Rng + ?Sized>(&mut self, now: Millis, rng: &mut R) {
        let jitter = rng.random_range(0..=self.config.jitter_ms);
        self.next_round = now.plus(self.config.interval_ms.max(1) + jitter);
    }
}

/// A gossip message on the (simulated) wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GossipMsg {
    /// The sender's value.
    pub value: u64,
}

/// An input a scenario injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GossipInput {
    /// Introduce this value at the node.
    Propose(u64),
}

/// What the history records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GossipEvent {
    /// A value entered the system at this node.
    Introduced(u64),
    /// The node's value changed.
    Adopted {
        /// Previous value.
        from: u64,
        /// New value.
        to: u64,
    },
}

/// The adapter: runs a [`Gossip`] core under the simulator.
#[derive(Clone, Debug)]
pub struct GossipNode {
    /// The core.
    pub core: Gossip,
    out: Vec<Action>,
}

impl GossipNode {
    /// Wraps a core.
    pub fn new(core: Gossip) -> Self {
        GossipNode {
            core,
            out: Vec::new(),
        }
    }

    /// Carries out the core's actions: sends go to the network, the rest to the history.
    fn flush(&mut self, ctx: &mut Ctx<'_, Self>) {
        for action in self.out.drain(..) {
            match action {
                Action::Send { to, value } => ctx.send(to, GossipMsg { value }),
                Action::Introduced(v) => ctx.emit(GossipEvent::Introduced(v)),
                Action::Adopted { from, to } => ctx.emit(GossipEvent::Adopted { from, to }),
            }
        }
    }
}

impl Process for GossipNode {
    type Msg = GossipMsg;
    type Input = GossipInput;
    type Event = GossipEvent;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.core.start(ctx.now, ctx.rng, &mut self.out);
        self.flush(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: GossipMsg) {
        self.core.on_gossip(from, msg.value, &mut self.out);
        self.flush(ctx);
    }

    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, input: GossipInput) {
        let GossipInput::Propose(v) = input;
        self.core.propose(v, &mut self.out);
        self.flush(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.core.on_tick(ctx.now, ctx.rng, &mut self.out);
        self.flush(ctx);
    }

    fn next_deadline(&self) -> Option<Millis> {
        Some(self.core.next_deadline())
    }
}

/// Invariant: every value a node holds was introduced somewhere (nothing is invented).
pub fn no_invented_values() -> impl FnMut(&SimView<GossipNode>) -> Result<(), String> {
    let mut introduced = BTreeSet::new();
    move |view| {
        for e in view.new_events() {
            if let GossipEvent::Introduced(v) = e.event {
                introduced.insert(v);
            }
        }
        for (id, node) in view.up() {
            let v = node.core.value();
            if !introduced.contains(&v) {
                return Err(format!("node {id} holds {v}, which nobody introduced"));
            }
        }
        Ok(())
    }
}

/// Invariant: within one incarnation, a node's value never decreases (paused nodes included).
pub fn values_never_decrease() -> impl FnMut(&SimView<GossipNode>) -> Result<(), String> {
    let mut last: BTreeMap<NodeId, (u64, u64)> = BTreeMap::new();
    move |view| {
        for n in view.nodes() {
            let Some(node) = n.core else { continue };
            let v = node.core.value();
            if let Some(&(inc, before)) = last.get(&n.id) {
                if inc == n.incarnation && v < before {
                    return Err(format!(
                        "node {} (incarnation {inc}) went from {before} down to {v}",
                        n.id
                    ));
                }
            }
            last.insert(n.id, (n.incarnation, v));
        }
        Ok(())
    }
}

/// Liveness predicate: every node is up, and all hold one value that is at least what each
/// introduced itself.
pub fn converged(view: &SimView<GossipNode>) -> bool {
    let mut values = BTreeSet::new();
    for n in view.nodes() {
        match n.core {
            Some(node) if n.status == NodeStatus::Up && node.core.value() >= node.core.own() => {
                values.insert(node.core.value());
            }
            _ => return false,
        }
    }
    values.len() <= 1
}

/// The standard toy scenario: five nodes booting within 200 ms, a random fault schedule from
/// `menu` over a 5 s safety phase, six proposals at random nodes and times, both invariants
/// checked after every step, then all nodes must converge within 5 s of the heal.
/// Returns the trace hash of the run.
pub fn scenario(seed: u64, config: GossipConfig, menu: &FaultMenu) -> Result<u64, SimError> {
    let mut sim_config = SimConfig::new(seed, 5);
    sim_config.start_spread_ms = 200;
    let nodes = sim_config.nodes.clone();
    let peers = nodes.clone();
    let mut sim = Sim::new(sim_config, move |id, _incarnation| {
        GossipNode::new(Gossip::new(id, &peers, config))
    });
    sim.add_invariant("no_invented_values", no_invented_values())
        .add_invariant("values_never_decrease", values_never_decrease());

    let mut rng = rng_for(seed, "toy-scenario");
    let schedule = random_schedule(&mut rng, &nodes, Millis(5_000), menu);
    sim.schedule_all(&schedule);
    for _ in 0..20 {
        let at = Millis(rng.random_range(0..schedule.heal_at.0.max(1)));
        let to = nodes[rng.random_range(0..nodes.len())];
        sim.input(
            at,
            to,
            GossipInput::Propose(at.0 + rng.random_range(0..1000)),
        );
    }
    sim.run_to(schedule.heal_at)?;
    sim.run_until(
        "all nodes up and agreeing on the largest value",
        schedule.heal_at.plus(5_000),
        converged,
    )?;
    Ok(sim.trace_hash())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Outbox, SimRng};
    use rand::SeedableRng;

    #[test]
    fn adapter_turns_actions_into_sends_and_events() {
        let nodes = [NodeId(1), NodeId(2), NodeId(3)];
        let mut node = GossipNode::new(Gossip::new(NodeId(1), &nodes, GossipConfig::default()));
        let mut rng = SimRng::seed_from_u64(0);
        let mut outbox = Outbox::default();
        let mut ctx = Ctx::new(Millis(0), NodeId(1), 1, &mut rng, &nodes, &mut outbox);
        node.on_start(&mut ctx);
        node.on_message(&mut ctx, NodeId(2), GossipMsg { value: 5000 });
        let deadline = node.next_deadline().unwrap();
        let mut ctx = Ctx::new(deadline, NodeId(1), 1, &mut rng, &nodes, &mut outbox);
        node.on_timer(&mut ctx);
        assert!(matches!(outbox.events[0], GossipEvent::Introduced(_)));
        assert_eq!(
            outbox.events.last(),
            Some(&GossipEvent::Adopted {
                from: node.core.own(),
                to: 5000
            })
        );
        assert_eq!(outbox.sends.len(), 2);
        assert!(outbox
            .sends
            .iter()
            .all(|(to, m)| *to != NodeId(1) && m.value == 5000));
    }

    #[test]
    fn correct_core_keeps_the_max_even_from_stale_gossip() {
        let mut g = Gossip::new(NodeId(1), &[NodeId(2)], GossipConfig::default());
        let mut out = Vec::new();
        g.propose(10, &mut out);
        g.on_gossip(NodeId(2), 50, &mut out);
        g.on_gossip(NodeId(2), 20, &mut out);
        assert_eq!(g.value(), 50);
    }

    #[test]
    fn flawed_core_goes_down_on_stale_gossip() {
        let config = GossipConfig::with_flaw(Flaw::RecomputeFromLatest);
        let mut g = Gossip::new(NodeId(1), &[NodeId(2)], config);
        let mut out = Vec::new();
        g.propose(10, &mut out);
        g.on_gossip(NodeId(2), 50, &mut out);
        g.on_gossip(NodeId(2), 20, &mut out);
        assert_eq!(g.value(), 20);
    }
}
