//! A new coordinator builds its engine from the replicated table and the members' latest
//! messages, once migrations under way have ended.
//!
//! A coordinator rebuilding its own engine (after a merge) starts from its engine's
//! records, which include decisions not yet delivered back, and carries over every
//! operation in flight among *reliable* members (those that came into the round from the
//! group view it came from: their results arrive), with its recovery episode and holds,
//! and every restart counter. Other operations in flight are not replicated, so every
//! other record is brought to a settled state:
//!
//! | the service is ... | restored as |
//! |---|---|
//! | reported by a live member | `started` there (a second reporter gets a duplicate stop) |
//! | possibly on a dead, unfenced node (owner, migration target, or last owner of a service stopped because that node died) | `started` on that node, which is then lost: `stopped` + wait for its fencing (F1), and for every other such node's |
//! | owned by a live member that does not report it (yet) | `started` there: a command may be on its way; the owner checks the republished table |
//! | owned by a dead, fenced node | `stopped` (or `disabled`), last owner kept |
//! | anything else | as replicated |
//!
//! The dead nodes enter the engine as members of a first, inquorate view (nothing is
//! decided), and leave it in the quorate view fed when the coordinator becomes ready.

use super::super::catalog::ServiceIndex;
use super::super::engine::{self, Engine};
use super::super::state::{ServiceRecord, ServiceState};
use super::Coordinator;
use crate::{Millis, NodeId};
use std::collections::BTreeSet;

impl Coordinator {
    pub(super) fn build_engine(&self, now: Millis) -> Engine {
        let mut e = Engine::new(self.cat.clone());
        let mut ghosts = BTreeSet::new();
        let mut also = Vec::new();
        let mut carried = Vec::new();
        for s in self.cat.indexes() {
            let i = s.0 as usize;
            if self
                .engine
                .as_ref()
                .is_some_and(|old| old.in_flight_among(s, &self.reliable))
            {
                carried.push(s);
                continue;
            }
            // A rebuilding coordinator knows what it decided, delivered or not.
            let (rec, intent) = match &self.engine {
                Some(old) => (old.record(s).clone(), *old.intent(s)),
                None => (self.records[i].clone(), self.intents[i]),
            };
            let restored = match self.reporter(s) {
                Some(n) => started_on(&rec, n),
                None => match self.ghost_locations(s, &rec).split_first() {
                    Some((&g, others)) => {
                        // Restored on one dead node; held for the others' fencing too (a
                        // migration between two nodes that both died: seed 14415).
                        ghosts.insert(g);
                        also.extend(others.iter().map(|&o| (s, o)));
                        started_on(&rec, g)
                    }
                    // An operation may be on its way to a live owner whose report predates
                    // it: assume it runs there; the owner's next message or its check of
                    // the published table says otherwise.
                    None if rec.state.occupies_owner()
                        && rec.owner.is_some_and(|o| self.members.contains(&o)) =>
                    {
                        started_on(&rec, rec.owner.unwrap_or(self.cfg.me))
                    }
                    None if rec.state.occupies_owner() => {
                        let mut r = rec.clone();
                        r.state = if intent.enabled {
                            ServiceState::Stopped
                        } else {
                            ServiceState::Disabled
                        };
                        if r.owner.is_some() {
                            r.last_owner = r.owner;
                        }
                        r.owner = None;
                        r
                    }
                    None => rec,
                },
            };
            e.restore(s, restored, intent);
        }
        let mut members = self.members.clone();
        members.extend(ghosts);
        let mut scratch = Vec::new();
        e.handle(
            now,
            engine::Input::View {
                members,
                quorate: false,
            },
            &mut scratch,
        );
        for (s, node) in also {
            e.hold_for_fencing(s, node);
        }
        if let Some(old) = &self.engine {
            for s in carried {
                e.carry(old, s);
            }
            e.carry_counters(old);
        }
        e
    }

    /// The first live member whose latest message says it runs `s`.
    fn reporter(&self, s: ServiceIndex) -> Option<NodeId> {
        self.members
            .iter()
            .copied()
            .find(|n| self.latest.get(n).is_some_and(|r| r.contains(&s)))
    }

    /// The dead, unfenced nodes `s` may still run on.
    fn ghost_locations(&self, s: ServiceIndex, rec: &ServiceRecord) -> Vec<NodeId> {
        let dead = |n: &NodeId| self.pending.contains_key(n) && !self.members.contains(n);
        let mut possible: Vec<NodeId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.running.contains(&s))
            .map(|(n, _)| *n)
            .collect();
        if rec.state.occupies_owner() {
            possible.extend(rec.owner);
        }
        if let Some(&(_, to)) = self.migrations.get(&s) {
            possible.push(to);
        }
        if matches!(
            rec.state,
            ServiceState::Stopped | ServiceState::Recovering | ServiceState::Uninitialized
        ) {
            possible.extend(rec.last_owner);
        }
        possible.retain(dead);
        possible.dedup();
        possible
    }
}

fn started_on(rec: &ServiceRecord, n: NodeId) -> ServiceRecord {
    let mut r = rec.clone();
    if r.owner.is_some() && r.owner != Some(n) {
        r.last_owner = r.owner;
    }
    r.state = ServiceState::Started;
    r.owner = Some(n);
    r
}
