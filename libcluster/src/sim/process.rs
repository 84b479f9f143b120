//! The contract between the simulator and a node: [`Process`] and its [`Ctx`].

use super::fault::Fault;
use crate::{Millis, NodeId};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::fmt::Debug;

/// The random number generator the simulator hands to every node step.
///
/// Portable and seedable, so a seed replays the same draws on every machine. Cores should
/// take `&mut impl rand::Rng` (or `&mut R` with `R: rand::Rng + ?Sized`); this type satisfies both.
pub type SimRng = Xoshiro256PlusPlus;

/// One node's protocol, as the simulator drives it.
///
/// A real core does not implement this directly: it keeps its own sans-IO API
/// (`handle(now, rng, input, &mut Vec<Action>)` plus `next_deadline()`) so the tokio shell can
/// drive it too, and a small adapter type implements `Process` by calling the core and turning
/// its actions into [`Ctx::send`] and [`Ctx::emit`]. See the module documentation of
/// [`crate::sim`] and the adapter in [`crate::sim::toy`].
///
/// Every method runs inside a `node` tracing span carrying the node id, incarnation and
/// simulated time.
pub trait Process {
    /// What travels between nodes (a decoded message, or the encoded frame bytes).
    type Msg: Clone + Debug;
    /// An external request a scenario injects: an administrator command, a client operation.
    type Input: Clone + Debug;
    /// An observable output recorded in the history: a view installed, a message delivered.
    type Event: Clone + Debug;

    /// Called once when the node (re)starts, right after the factory built it.
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>);

    /// A message from `from` arrived.
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Self::Msg);

    /// The scenario injected `input` into this node.
    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, input: Self::Input);

    /// Called when `ctx.now >= next_deadline()`. It must move the deadline forward (or clear it):
    /// a deadline that never passes `now` makes the simulation report a stall.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>);

    /// When [`Process::on_timer`] next has work to do, or `None` for no timer.
    /// Asked after every call into this node.
    fn next_deadline(&self) -> Option<Millis>;
}

/// What one call into a node produced: messages to send, events to record and faults the
/// node asked the world to inflict, in order.
#[derive(Debug)]
pub struct Outbox<M, E> {
    /// Messages to send, with their destination, in the order they were sent.
    pub sends: Vec<(NodeId, M)>,
    /// Events emitted, in order.
    pub events: Vec<E>,
    /// Faults requested through [`Ctx::schedule_fault`], with the time they take effect.
    pub faults: Vec<(Millis, Fault)>,
}

impl<M, E> Default for Outbox<M, E> {
    fn default() -> Self {
        Outbox {
            sends: Vec::new(),
            events: Vec::new(),
            faults: Vec::new(),
        }
    }
}

/// Everything one call into a [`Process`] may see and do.
///
/// `now`, `me`, `incarnation` and `rng` are fields, so an adapter can pass `ctx.rng` to its core
/// and still call [`Ctx::send`] afterwards.
pub struct Ctx<'a, P: Process + ?Sized> {
    /// The simulated time of this step.
    pub now: Millis,
    /// The node being called.
    pub me: NodeId,
    /// Which start of this node this is: 1 for the first start, +1 on every restart.
    pub incarnation: u64,
    /// This node's own random stream, derived from the simulation seed, node id and incarnation.
    pub rng: &'a mut SimRng,
    nodes: &'a [NodeId],
    outbox: &'a mut Outbox<P::Msg, P::Event>,
}

impl<'a, P: Process + ?Sized> Ctx<'a, P> {
    /// A context for one call. The simulator builds these; it is public so an adapter can be
    /// unit-tested without a simulation.
    pub fn new(
        now: Millis,
        me: NodeId,
        incarnation: u64,
        rng: &'a mut SimRng,
        nodes: &'a [NodeId],
        outbox: &'a mut Outbox<P::Msg, P::Event>,
    ) -> Self {
        Ctx {
            now,
            me,
            incarnation,
            rng,
            nodes,
            outbox,
        }
    }

    /// Every node of the simulated cluster, sorted, including this one.
    pub fn nodes(&self) -> &[NodeId] {
        self.nodes
    }

    /// Sends `msg` to `to` through the simulated network (a send to `me` is a loopback,
    /// delivered at once and never lost).
    pub fn send(&mut self, to: NodeId, msg: P::Msg) {
        self.outbox.sends.push((to, msg));
    }

    /// Sends a copy of `msg` to every other node of the cluster, in node id order.
    pub fn broadcast(&mut self, msg: P::Msg) {
        for &to in self.nodes.iter().filter(|&&n| n != self.me) {
            self.outbox.sends.push((to, msg.clone()));
        }
    }

    /// Records `event` in the history, stamped with the time, node and incarnation.
    pub fn emit(&mut self, event: P::Event) {
        self.outbox.events.push(event);
    }

    /// Asks the simulator to apply `fault` at `at` (a time already past means now, after the
    /// current step). This models effects a node has on the world outside the network: a
    /// fence agent powering another node off through a simulated switch, a supervisor
    /// restarting this node's daemon after it exits. The fault is queued when this call
    /// returns, so it runs after the events already due at `at` and is recorded in the
    /// fault log and the trace hash like a scheduled one.
    pub fn schedule_fault(&mut self, at: Millis, fault: Fault) {
        self.outbox.faults.push((at, fault));
    }
}

/// One event in the history: what a node emitted, when, and from which incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted<E> {
    /// The simulated time of the step that emitted it.
    pub at: Millis,
    /// The emitting node.
    pub node: NodeId,
    /// The emitting node's incarnation.
    pub incarnation: u64,
    /// The event itself.
    pub event: E,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{NodeStatus, Sim, SimConfig};

    /// Node 1 "powers off" node 2 at 100 ms and asks for its restart at 300 ms.
    struct Switcher;

    impl Process for Switcher {
        type Msg = ();
        type Input = ();
        type Event = u64;

        fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
            ctx.emit(ctx.incarnation);
        }
        fn on_message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: ()) {}
        fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, _: ()) {
            ctx.schedule_fault(ctx.now, Fault::Crash(NodeId(2)));
            ctx.schedule_fault(ctx.now.plus(200), Fault::Restart(NodeId(2)));
        }
        fn on_timer(&mut self, _: &mut Ctx<'_, Self>) {}
        fn next_deadline(&self) -> Option<Millis> {
            None
        }
    }

    #[test]
    fn a_fault_requested_by_a_node_takes_effect_at_its_time_and_replays() {
        let run = || {
            let mut sim = Sim::new(SimConfig::new(4, 2), |_, _| Switcher);
            sim.input(Millis(100), NodeId(1), ());
            sim.run_to(Millis(100)).unwrap();
            let down = sim.view().nodes().find(|n| n.id == NodeId(2)).unwrap();
            assert_eq!(down.status, NodeStatus::Down, "crashed in the same instant");
            sim.run_to(Millis(299)).unwrap();
            assert!(sim.view().core(NodeId(2)).is_none(), "not restarted early");
            sim.run_to(Millis(300)).unwrap();
            let up = sim.view().nodes().find(|n| n.id == NodeId(2)).unwrap();
            assert_eq!((up.status, up.incarnation), (NodeStatus::Up, 2));
            assert_eq!(
                sim.view().fault_log()[2..],
                [
                    (Millis(100), Fault::Crash(NodeId(2))),
                    (Millis(300), Fault::Restart(NodeId(2)))
                ]
            );
            sim.trace_hash()
        };
        assert_eq!(run(), run());
    }
}
