//! Faults taking effect: node crashes, restarts, pauses and resumes, and network changes.

use super::fault::Fault;
use super::process::Process;
use super::queue::Pending;
use super::runner::{Call, Sim};
use super::seeds::node_rng;
use super::view::{Held, NodeStatus, Slot};
use crate::NodeId;
use std::fmt::Write as _;
use tracing::info;

impl<P: Process> Sim<P> {
    pub(super) fn apply_fault(&mut self, fault: Fault) {
        let now = self.view.now;
        let _ = write!(self.hash, "f{} {fault:?};", now.0);
        info!(t = %now, ?fault, "fault");
        self.view.faults.push((now, fault.clone()));
        let net = &mut self.view.network;
        match fault {
            Fault::Crash(n) => {
                if let Some(slot) = self.slot_mut(n).filter(|s| s.status != NodeStatus::Down) {
                    slot.status = NodeStatus::Down;
                    slot.core = None;
                    slot.deadline = None;
                    slot.held.clear();
                    slot.held_msgs = 0;
                }
            }
            Fault::Restart(n) => self.restart(n),
            Fault::Pause(n) => {
                if let Some(slot) = self.slot_mut(n).filter(|s| s.status == NodeStatus::Up) {
                    slot.status = NodeStatus::Paused;
                }
            }
            Fault::Resume(n) => self.resume(n),
            Fault::Partition(groups) => net.partition(&groups),
            Fault::CutLink { from, to } => net.cut(from, to),
            Fault::HealLink { from, to } => net.heal_link(from, to),
            Fault::HealAll => net.heal_all(),
            Fault::SetLoss(p) => net.config_mut().link.loss = p,
            Fault::SetDuplication(p) => net.config_mut().link.duplication = p,
            Fault::SetDelay { min_ms, max_ms } => {
                let link = &mut net.config_mut().link;
                link.min_ms = min_ms;
                link.max_ms = max_ms;
            }
            Fault::SetLink { from, to, link } => {
                net.config_mut().links.insert((from, to), link);
            }
        }
    }

    fn slot_mut(&mut self, id: NodeId) -> Option<&mut Slot<P>> {
        let i = self.view.index(id)?;
        Some(&mut self.view.nodes[i])
    }

    fn restart(&mut self, id: NodeId) {
        let Some(i) = self.view.index(id) else {
            return;
        };
        let seed = self.view.seed;
        let slot = &mut self.view.nodes[i];
        if slot.status != NodeStatus::Down {
            return;
        }
        slot.incarnation += 1;
        slot.rng = node_rng(seed, id, slot.incarnation);
        slot.core = Some((self.factory)(id, slot.incarnation));
        slot.status = NodeStatus::Up;
        slot.deadline = None;
        self.call(i, Call::Start);
    }

    fn resume(&mut self, id: NodeId) {
        let now = self.view.now;
        let Some(slot) = self.slot_mut(id).filter(|s| s.status == NodeStatus::Paused) else {
            return;
        };
        slot.status = NodeStatus::Up;
        slot.held_msgs = 0;
        let held = std::mem::take(&mut slot.held);
        // The process reads its socket buffer late: everything arrives now, in arrival order.
        for h in held {
            let what = match h {
                Held::Msg { from, msg } => Pending::Deliver { from, to: id, msg },
                Held::Input(input) => Pending::Input { to: id, input },
            };
            self.push(now, what);
        }
    }
}
