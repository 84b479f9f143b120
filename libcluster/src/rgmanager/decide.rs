//! One decision round: automatic starts, recovery policy, failback.

use super::catalog::ServiceIndex;
use super::domain::{best_target, exclusive_allows, score, Score, TargetQuery};
use super::engine::{Action, Engine, Episode, Op, Phase, StartCause, StopCause};
use super::recovery::{recovery_step, RecoveryStep};
use super::state::ServiceState;
use crate::{Millis, NodeId};
use std::collections::BTreeSet;
use tracing::{info, warn};

impl Engine {
    /// Evaluates every service whose situation changed. Nothing happens without quorum.
    pub(super) fn decide(&mut self, now: Millis, out: &mut Vec<Action>) {
        if !self.quorate {
            return;
        }
        if self.failback_due {
            self.failback_due = false;
            self.failback(now, out);
        }
        if !self.failback_later.is_empty() {
            // Services that were busy when a node joined (a recovery start racing a fast
            // reboot of the preferred node): judged once their operation ended.
            let ended: Vec<ServiceIndex> = self
                .failback_later
                .iter()
                .copied()
                .filter(|s| self.work[s.0 as usize].pending.is_none())
                .collect();
            let mut moves = Vec::new();
            for s in ended {
                self.failback_later.remove(&s);
                moves.extend(self.failback_move(s));
            }
            self.carry_out_failback(now, moves, out);
        }
        // Each evaluation changes a record at most once and wakes only dependants, so this
        // ends; the budget guards against a bug turning it into a livelock.
        let mut budget = 4 * self.cat.len() + 64;
        while let Some(s) = self.dirty.pop_first() {
            self.evaluate(now, s, out);
            budget -= 1;
            if budget == 0 {
                warn!("decision round cut short; the rest waits for the next input");
                break;
            }
        }
    }

    fn evaluate(&mut self, now: Millis, s: ServiceIndex, out: &mut Vec<Action>) {
        let i = s.0 as usize;
        if self.work[i].pending.is_some() || self.intents[i].frozen {
            return; // in flight, or frozen: no start, stop or failover (§1.3)
        }
        let enabled = self.intents[i].enabled;
        let state = self.records[i].state;
        if self.copy_elsewhere(s)
            && matches!(
                state,
                ServiceState::Recovering | ServiceState::Stopped | ServiceState::Uninitialized
            )
        {
            return; // R1: a second copy is being stopped; evaluated again when it ends
        }
        match state {
            ServiceState::Recovering => {
                if enabled {
                    self.recover(now, s, out);
                } else {
                    self.settle(now, s, None, ServiceState::Disabled, out);
                }
            }
            ServiceState::Started => {
                let Some(owner) = self.records[i].owner else {
                    return;
                };
                if !enabled {
                    self.stop(now, s, owner, StopCause::Disable, out);
                } else if self.leaving.contains(&owner) {
                    self.evacuate(now, s, owner, out);
                } else if !self.dependency_met(s) {
                    info!(service = %self.cat.service(s).name, "stopping service: dependency missing");
                    self.stop(now, s, owner, StopCause::DependencyMissing, out);
                }
            }
            ServiceState::Stopped | ServiceState::Uninitialized => {
                if !self.work[i].holds.is_empty() {
                    return; // F1: its last owner is not fenced yet
                }
                if !enabled {
                    self.update(s, out, |r| r.state = ServiceState::Disabled);
                    return;
                }
                if self.work[i].parked || !self.dependency_met(s) {
                    return;
                }
                if let Some(node) = self.auto_target(s) {
                    self.start(now, s, node, StartCause::Auto, out);
                }
            }
            _ => {}
        }
    }

    /// The owner's rgmanagerd is shutting down (it hands its services over, as DESIGN.md
    /// asks): a VM migrates live to the best other node that may run it, anything else is
    /// relocated (stopped, then started there); with nowhere to go it is stopped.
    fn evacuate(&mut self, now: Millis, s: ServiceIndex, owner: NodeId, out: &mut Vec<Action>) {
        let target = if self.cat.service(s).migratory {
            let dv = self.view(s);
            let q = TargetQuery {
                dom: dv.as_ref(),
                exclusive: self.cat.service(s).exclusive,
                running: None,
                exclude: Some(owner),
                min: Score::Good,
            };
            best_target(&q, self.startable_members(), |n| self.load(n))
        } else {
            None
        };
        info!(service = %self.cat.service(s).name, from = %owner, to = ?target, "handing over a service of a member that shuts down");
        match target {
            Some(t) => self.migrate(now, s, owner, t, out),
            None => self.stop(now, s, owner, StopCause::Relocate { to: None }, out),
        }
    }

    /// `consider_start` (§2.5): the least loaded node scoring BEST that the exclusive rule
    /// allows.
    fn auto_target(&self, s: ServiceIndex) -> Option<NodeId> {
        if let Some(n) = self.work[s.0 as usize].stuck {
            return self.startable(n).then_some(n);
        }
        let dv = self.view(s);
        let q = TargetQuery {
            dom: dv.as_ref(),
            exclusive: self.cat.service(s).exclusive,
            running: None,
            exclude: None,
            min: Score::Best,
        };
        best_target(&q, self.startable_members(), |n| self.load(n))
    }

    /// A start target for a user request: the preferred node if legal, else the best other
    /// node scoring at least GOOD (§2.11).
    pub(super) fn user_target(
        &self,
        s: ServiceIndex,
        preferred: Option<NodeId>,
        exclude: Option<NodeId>,
    ) -> Option<NodeId> {
        if let Some(n) = self.work[s.0 as usize].stuck {
            // A failed stop left resources there: start it nowhere else.
            return self.startable(n).then_some(n);
        }
        if let Some(t) = preferred {
            if Some(t) != exclude && self.legal(s, t) {
                return Some(t);
            }
        }
        let dv = self.view(s);
        let q = TargetQuery {
            dom: dv.as_ref(),
            exclusive: self.cat.service(s).exclusive,
            running: None,
            exclude,
            min: Score::Good,
        };
        best_target(&q, self.startable_members(), |n| self.load(n))
    }

    /// The recovery policy for a `recovering` service (§3.3).
    fn recover(&mut self, now: Millis, s: ServiceIndex, out: &mut Vec<Action>) {
        let i = s.0 as usize;
        let origin = self.records[i].last_owner;
        let mut ep = match self.work[i].episode.take() {
            Some(ep) => ep,
            None => match origin {
                Some(o) => Episode {
                    origin: o,
                    tried: BTreeSet::new(),
                    phase: Phase::Fresh,
                },
                None => {
                    self.settle(now, s, None, ServiceState::Stopped, out);
                    return;
                }
            },
        };
        match ep.phase {
            Phase::Fresh => {
                let policy = self.cat.service(s).recovery;
                match recovery_step(policy, &mut self.counters[i], now) {
                    RecoveryStep::RestartInPlace if self.startable(ep.origin) => {
                        ep.phase = Phase::Restarting;
                        let origin = ep.origin;
                        self.work[i].episode = Some(ep);
                        self.start(now, s, origin, StartCause::Recovery, out);
                    }
                    RecoveryStep::RestartInPlace | RecoveryStep::Relocate => {
                        ep.phase = Phase::Relocating;
                        self.relocate_step(now, s, ep, out);
                    }
                    RecoveryStep::Disable => {
                        self.intents[i].enabled = false;
                        self.settle(now, s, None, ServiceState::Disabled, out);
                    }
                }
            }
            Phase::Restarting => {
                // The local restart failed: relocate (§3.3).
                ep.tried.insert(ep.origin);
                ep.phase = Phase::Relocating;
                self.relocate_step(now, s, ep, out);
            }
            Phase::Relocating => self.relocate_step(now, s, ep, out),
            Phase::LastResort => {
                self.settle(now, s, None, ServiceState::Stopped, out);
                self.work[i].parked = true;
            }
        }
    }

    /// `handle_relocate_req` with `RG_START_RECOVER`: try the best untried other node.
    fn relocate_step(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        mut ep: Episode,
        out: &mut Vec<Action>,
    ) {
        let i = s.0 as usize;
        let candidates: Vec<NodeId> = self
            .members
            .iter()
            .copied()
            .filter(|n| *n != ep.origin && !ep.tried.contains(n))
            .collect();
        if candidates.is_empty() {
            // Every candidate tried (or none): stopped until the next node event.
            self.settle(now, s, None, ServiceState::Stopped, out);
            self.work[i].parked = true;
            return;
        }
        let dv = self.view(s);
        let q = TargetQuery {
            dom: dv.as_ref(),
            exclusive: self.cat.service(s).exclusive,
            running: None,
            exclude: Some(ep.origin),
            min: Score::Good,
        };
        let target = best_target(&q, candidates.iter().copied(), |n| self.load(n));
        match target {
            Some(t) => {
                ep.tried.insert(t);
                self.work[i].episode = Some(ep);
                self.start(now, s, t, StartCause::Recovery, out);
            }
            None if self.startable(ep.origin) && !ep.tried.contains(&ep.origin) => {
                warn!(service = %self.cat.service(s).name, "#70: failed to relocate; restarting locally");
                ep.phase = Phase::LastResort;
                let origin = ep.origin;
                self.work[i].episode = Some(ep);
                self.start(now, s, origin, StartCause::Recovery, out);
            }
            None => {
                self.settle(now, s, None, ServiceState::Stopped, out);
                self.work[i].parked = true;
            }
        }
    }

    /// `consider_relocate` after a node joined (§2.7): every started service that some
    /// online node scores higher than its owner moves there, live if it can. A service
    /// with an operation in flight is judged when the operation ends.
    fn failback(&mut self, now: Millis, out: &mut Vec<Action>) {
        // A service occupies two nodes while it migrates or while a duplicate stops.
        let placed: BTreeSet<ServiceIndex> = self
            .placed
            .values()
            .flat_map(|slot| slot.services.iter().copied())
            .collect();
        let mut moves = Vec::new();
        for s in placed {
            if self.work[s.0 as usize].pending.is_some() {
                self.failback_later.insert(s);
            } else {
                moves.extend(self.failback_move(s));
            }
        }
        self.carry_out_failback(now, moves, out);
    }

    /// Where started service `s` should move because some online node scores higher than
    /// its owner, if anywhere.
    fn failback_move(&self, s: ServiceIndex) -> Option<(ServiceIndex, NodeId, NodeId)> {
        let i = s.0 as usize;
        let r = &self.records[i];
        let node = r.owner?;
        if r.state != ServiceState::Started
            || self.work[i].pending.is_some()
            || self.intents[i].frozen
            || !self.intents[i].enabled
        {
            return None;
        }
        let dv = self.view(s)?; // no domain: every node scores BEST
        let min = match score(Some(&dv), node, true, Some(node)) {
            Score::Best => return None,
            Score::Better => Score::Best,
            Score::Good => Score::Better,
            Score::Illegal => Score::Good,
        };
        let q = TargetQuery {
            dom: Some(&dv),
            exclusive: self.cat.service(s).exclusive,
            running: Some(node),
            exclude: Some(node),
            min,
        };
        best_target(&q, self.startable_members(), |n| self.load(n)).map(|t| (s, node, t))
    }

    fn carry_out_failback(
        &mut self,
        now: Millis,
        moves: Vec<(ServiceIndex, NodeId, NodeId)>,
        out: &mut Vec<Action>,
    ) {
        for (s, from, to) in moves {
            if !exclusive_allows(self.cat.service(s).exclusive, self.load(to)) {
                continue; // an earlier move of this round took the node
            }
            info!(service = %self.cat.service(s).name, from = %from, to = %to, "moving service to better node");
            if self.cat.service(s).migratory {
                self.migrate(now, s, from, to, out);
            } else {
                self.stop(now, s, from, StopCause::Failback { to }, out);
            }
        }
    }

    pub(super) fn migrate(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        from: NodeId,
        to: NodeId,
        out: &mut Vec<Action>,
    ) {
        self.occupy(s, to);
        self.work[s.0 as usize].pending = Some(Op::Migrate { from, to });
        self.update(s, out, |r| {
            r.state = ServiceState::Migrating;
            r.transition = Some(now);
        });
        out.push(Action::Migrate {
            service: s,
            from,
            to,
        });
    }
}
