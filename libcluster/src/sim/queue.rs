//! The event queue: pending deliveries, inputs and faults, ordered by (time, sequence number).

use super::fault::Fault;
use super::process::Process;
use crate::{Millis, NodeId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// What waits in the event queue.
pub(crate) enum Pending<P: Process> {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: P::Msg,
    },
    Input {
        to: NodeId,
        input: P::Input,
    },
    Fault(Fault),
}

/// A queue entry, ordered by (time, sequence number) so equal times keep insertion order.
struct Queued<P: Process> {
    at: Millis,
    seq: u64,
    what: Pending<P>,
}

impl<P: Process> PartialEq for Queued<P> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<P: Process> Eq for Queued<P> {}

impl<P: Process> PartialOrd for Queued<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<P: Process> Ord for Queued<P> {
    /// Reversed, so `BinaryHeap` (a max-heap) pops the earliest entry.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A min-queue of pending items; items due at the same time leave in insertion order.
pub(crate) struct EventQueue<P: Process> {
    heap: BinaryHeap<Queued<P>>,
    seq: u64,
}

impl<P: Process> EventQueue<P> {
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub(crate) fn push(&mut self, at: Millis, what: Pending<P>) {
        self.seq += 1;
        self.heap.push(Queued {
            at,
            seq: self.seq,
            what,
        });
    }

    /// When the earliest item is due.
    pub(crate) fn next_at(&self) -> Option<Millis> {
        self.heap.peek().map(|q| q.at)
    }

    pub(crate) fn pop(&mut self) -> Option<Pending<P>> {
        self.heap.pop().map(|q| q.what)
    }
}
