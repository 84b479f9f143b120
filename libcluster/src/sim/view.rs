//! [`SimView`]: the whole simulated world as invariants and liveness predicates see it.

use super::fault::Fault;
use super::network::{DropReason, Network};
use super::process::{Emitted, Process, SimRng};
use crate::{Millis, NodeId};

/// Whether a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeStatus {
    /// Running: receives messages, inputs and timers.
    Up,
    /// Stopped (SIGSTOP): keeps its state, buffers a bounded number of messages, runs nothing.
    Paused,
    /// Not running: crashed, or not started yet. No core, no state.
    Down,
}

/// Counters over the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Steps taken (deliveries, inputs, timers, faults).
    pub steps: u64,
    /// Messages handed to the network (loopback included).
    pub sent: u64,
    /// Messages a running node received (duplicates count twice).
    pub delivered: u64,
    /// Extra copies the network made.
    pub duplicated: u64,
    /// Dropped by a partition or cut.
    pub dropped_partition: u64,
    /// Dropped by random loss.
    pub dropped_loss: u64,
    /// Arrived at a down node.
    pub dropped_down: u64,
    /// Arrived at a paused node whose buffer was full.
    pub dropped_pause_overflow: u64,
    /// Timer calls.
    pub timers: u64,
    /// Inputs handed to a running node.
    pub inputs: u64,
    /// Inputs that arrived at a down node and were discarded.
    pub inputs_dropped: u64,
}

impl Stats {
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::Partition => &mut self.dropped_partition,
            DropReason::Loss => &mut self.dropped_loss,
            DropReason::Down => &mut self.dropped_down,
            DropReason::PauseOverflow => &mut self.dropped_pause_overflow,
        };
        *counter += 1;
    }
}

/// One node as an invariant sees it.
#[derive(Debug)]
pub struct NodeInfo<'a, P> {
    /// The node.
    pub id: NodeId,
    /// Up, paused or down.
    pub status: NodeStatus,
    /// Its current (or, when down, last) incarnation; 0 before its first start.
    pub incarnation: u64,
    /// Its core, when up or paused.
    pub core: Option<&'a P>,
}

/// Something a paused node's process will find when it wakes.
pub(crate) enum Held<P: Process> {
    Msg { from: NodeId, msg: P::Msg },
    Input(P::Input),
}

/// One node's slot in the simulator.
pub(crate) struct Slot<P: Process> {
    pub(crate) id: NodeId,
    pub(crate) status: NodeStatus,
    pub(crate) incarnation: u64,
    pub(crate) core: Option<P>,
    pub(crate) rng: SimRng,
    /// The core's last answer to `next_deadline`.
    pub(crate) deadline: Option<Millis>,
    /// What arrived while paused, in arrival order.
    pub(crate) held: Vec<Held<P>>,
    /// How many of `held` are messages (the bounded socket buffer).
    pub(crate) held_msgs: usize,
}

/// The simulated world: nodes, network, history. Invariants and predicates get `&SimView`.
pub struct SimView<P: Process> {
    pub(crate) seed: u64,
    pub(crate) now: Millis,
    pub(crate) ids: Vec<NodeId>,
    pub(crate) nodes: Vec<Slot<P>>,
    pub(crate) network: Network,
    pub(crate) history: Vec<Emitted<P::Event>>,
    /// Index in `history` of the first event of the step being checked.
    pub(crate) step_start: usize,
    pub(crate) faults: Vec<(Millis, Fault)>,
    pub(crate) stats: Stats,
}

impl<P: Process> SimView<P> {
    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current simulated time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Every node id, sorted.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// Every node, in id order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeInfo<'_, P>> + '_ {
        self.nodes.iter().map(|s| NodeInfo {
            id: s.id,
            status: s.status,
            incarnation: s.incarnation,
            core: s.core.as_ref(),
        })
    }

    /// The running nodes' cores, in id order.
    pub fn up(&self) -> impl Iterator<Item = (NodeId, &P)> + '_ {
        self.nodes
            .iter()
            .filter(|s| s.status == NodeStatus::Up)
            .filter_map(|s| s.core.as_ref().map(|c| (s.id, c)))
    }

    /// One node, or `None` for an unknown id.
    pub fn node(&self, id: NodeId) -> Option<NodeInfo<'_, P>> {
        let s = self.slot(id)?;
        Some(NodeInfo {
            id: s.id,
            status: s.status,
            incarnation: s.incarnation,
            core: s.core.as_ref(),
        })
    }

    /// A node's status, or `None` for an unknown id.
    pub fn status(&self, id: NodeId) -> Option<NodeStatus> {
        self.slot(id).map(|s| s.status)
    }

    /// A node's core when it is up or paused.
    pub fn core(&self, id: NodeId) -> Option<&P> {
        self.slot(id)?.core.as_ref()
    }

    /// Everything emitted so far, in order.
    pub fn history(&self) -> &[Emitted<P::Event>] {
        &self.history
    }

    /// What the step just taken emitted: lets an invariant check only what is new.
    pub fn new_events(&self) -> &[Emitted<P::Event>] {
        &self.history[self.step_start.min(self.history.len())..]
    }

    /// Every fault applied so far (scheduled or immediate), with its time.
    pub fn fault_log(&self) -> &[(Millis, Fault)] {
        &self.faults
    }

    /// The network as it is now.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Counters over the run so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn index(&self, id: NodeId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    fn slot(&self, id: NodeId) -> Option<&Slot<P>> {
        self.index(id).map(|i| &self.nodes[i])
    }
}
