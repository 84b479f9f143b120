//! The engine's input handlers: views, fencing, reports, operation results, status failures.

use super::catalog::ServiceIndex;
use super::domain::{exclusive_allows, score, Score};
use super::engine::{Action, Engine, Episode, Hold, Op, OpResult, Phase, StartCause, StopCause};
use super::state::ServiceState;
use crate::{Millis, NodeId};
use std::collections::BTreeSet;
use tracing::{debug, error, info, warn};

impl Engine {
    pub(super) fn on_view(
        &mut self,
        now: Millis,
        members: BTreeSet<NodeId>,
        quorate: bool,
        out: &mut Vec<Action>,
    ) {
        let old = std::mem::replace(&mut self.members, members);
        self.quorate = quorate;
        let gone: Vec<NodeId> = old.difference(&self.members).copied().collect();
        let joined: Vec<NodeId> = self.members.difference(&old).copied().collect();
        for n in &joined {
            self.fenced.remove(n);
        }
        for n in &gone {
            self.leaving.remove(n);
            self.locked.remove(n);
        }
        let members = &self.members;
        self.tops = self
            .cat
            .domains()
            .iter()
            .map(|d| d.view(members).top)
            .collect();
        for &d in &gone {
            self.node_lost(now, d, out);
        }
        if !joined.is_empty() {
            self.failback_due = true;
        }
        if !gone.is_empty() || !joined.is_empty() {
            // §2.5/§2.6: every stopped service is reconsidered at a node event.
            for (i, r) in self.records.iter().enumerate() {
                if matches!(r.state, ServiceState::Stopped | ServiceState::Uninitialized) {
                    self.work[i].parked = false;
                    self.dirty.insert(ServiceIndex(i as u32));
                }
            }
        }
    }

    /// §2.6 and F1: everything occupying the dead node stops being owned by it and waits
    /// for its fencing.
    fn node_lost(&mut self, now: Millis, d: NodeId, out: &mut Vec<Action>) {
        // A possible migration target left: wait for its fencing instead of its report.
        if let Some(set) = self.holds.remove(&Hold::Report(d)) {
            for s in set {
                self.work[s.0 as usize]
                    .holds
                    .retain(|h| *h != Hold::Report(d));
                if !self.fenced.contains(&d) {
                    self.add_hold(s, Hold::Fence(d));
                }
            }
        }
        let here: Vec<ServiceIndex> = self.on_node(d).collect();
        let mut waiting = 0;
        for s in here {
            self.vacate(s, d);
            if self.duplicates.remove(&(s, d)) {
                // The second copy may still run on the dead node: no new start of the
                // service until that node is fenced (the owner's copy runs on).
                if !self.fenced.contains(&d) {
                    self.add_hold(s, Hold::Fence(d));
                    waiting += 1;
                }
                continue;
            }
            if self.work[s.0 as usize].stuck == Some(d) {
                // It may still hold resources on the dead node: fence before any start.
                self.work[s.0 as usize].stuck = None;
                if !self.fenced.contains(&d) {
                    self.add_hold(s, Hold::Fence(d));
                    waiting += 1;
                }
            }
            match self.work[s.0 as usize].pending {
                Some(Op::Migrate { from, to }) if to == d && from != d => continue,
                Some(Op::Migrate { from, to }) if from == d => {
                    // It may already run on the target: hear the target before anything.
                    self.vacate(s, to);
                    if self.members.contains(&to) {
                        self.add_hold(s, Hold::Report(to));
                    } else if !self.fenced.contains(&to) {
                        self.add_hold(s, Hold::Fence(to));
                    }
                }
                _ => {}
            }
            if self.records[s.0 as usize].owner != Some(d) {
                continue; // an operation elsewhere (e.g. a migration from a live node)
            }
            if !self.fenced.contains(&d) {
                self.add_hold(s, Hold::Fence(d));
                waiting += 1;
            }
            self.settle(now, s, Some(d), ServiceState::Stopped, out);
        }
        if waiting > 0 {
            info!(node = %d, services = waiting, "waiting for node to be fenced");
            out.push(Action::AwaitFencing {
                node: d,
                services: waiting,
            });
        }
    }

    pub(super) fn on_fenced(&mut self, node: NodeId) {
        if self.members.contains(&node) {
            // Not gone in our view yet: the shell asks again on AwaitFencing.
            debug!(node = %node, "fencing result for a member ignored");
            return;
        }
        self.fenced.insert(node);
        self.release(Hold::Fence(node));
    }

    pub(super) fn on_report(
        &mut self,
        now: Millis,
        node: NodeId,
        running: Vec<ServiceIndex>,
        out: &mut Vec<Action>,
    ) {
        if !self.members.contains(&node) {
            return;
        }
        // A member that comes back says itself what it runs (it restarted: cmand never
        // merges a cut-off node back without a restart), so its holds are over.
        self.release(Hold::Report(node));
        self.release(Hold::Fence(node));
        let running: BTreeSet<ServiceIndex> = running
            .into_iter()
            .filter(|&s| self.cat.contains(s))
            .collect();
        for &s in &running {
            let i = s.0 as usize;
            let owner = self.records[i].owner;
            let migrating_here =
                matches!(self.work[i].pending, Some(Op::Migrate { to, .. }) if to == node);
            match owner {
                Some(o) if o == node => {}
                _ if migrating_here => {}
                Some(o) => {
                    if self.duplicates.insert((s, node)) {
                        error!(service = %self.cat.service(s).name, owner = %o, node = %node,
                            "service reported running on a second node; stopping that copy");
                        self.occupy(s, node);
                        out.push(Action::Stop {
                            service: s,
                            node,
                            cause: StopCause::Duplicate,
                        });
                    }
                }
                None => {
                    self.clear_holds(s);
                    self.work[i].episode = None;
                    self.work[i].parked = false;
                    self.occupy(s, node);
                    self.update(s, out, |r| {
                        r.state = ServiceState::Started;
                        r.owner = Some(node);
                        r.transition = Some(now);
                    });
                    self.dirty.insert(s);
                }
            }
        }
        let vanished: Vec<ServiceIndex> = self
            .on_node(node)
            .filter(|s| {
                let i = s.0 as usize;
                let r = &self.records[i];
                r.owner == Some(node)
                    && r.state == ServiceState::Started
                    && self.work[i].pending.is_none()
                    && !self.intents[i].frozen
                    && !running.contains(s)
            })
            .collect();
        for s in vanished {
            // The owner does not run it: a failed status check (§3.2).
            self.fail_and_stop(now, s, node, out);
        }
    }

    fn fail_and_stop(&mut self, now: Millis, s: ServiceIndex, node: NodeId, out: &mut Vec<Action>) {
        let w = &mut self.work[s.0 as usize];
        if w.episode.is_none() {
            w.episode = Some(Episode {
                origin: node,
                tried: BTreeSet::new(),
                phase: Phase::Fresh,
            });
        }
        self.stop(now, s, node, StopCause::Recovery, out);
    }

    pub(super) fn on_status_failed(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        node: NodeId,
        out: &mut Vec<Action>,
    ) {
        if !self.cat.contains(s) {
            return;
        }
        let i = s.0 as usize;
        let r = &self.records[i];
        if r.owner == Some(node)
            && r.state == ServiceState::Started
            && self.work[i].pending.is_none()
            && !self.intents[i].frozen
        {
            self.fail_and_stop(now, s, node, out);
        }
    }

    pub(super) fn on_done(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        node: NodeId,
        result: OpResult,
        out: &mut Vec<Action>,
    ) {
        if !self.cat.contains(s) {
            return;
        }
        if self.duplicates.contains(&(s, node)) {
            match result {
                OpResult::Stopped => {
                    self.duplicates.remove(&(s, node));
                    if self.records[s.0 as usize].owner != Some(node) {
                        self.vacate(s, node);
                    }
                    self.dirty.insert(s);
                }
                OpResult::StopFailed => {
                    error!(service = %self.cat.service(s).name, node = %node,
                        "second copy failed to stop; intervention required");
                }
                _ => {}
            }
            return;
        }
        let i = s.0 as usize;
        match (self.work[i].pending, result) {
            (Some(Op::Start { node: n, .. }), OpResult::Started) if n == node => {
                self.work[i].pending = None;
                self.work[i].stuck = None;
                self.work[i].episode = None;
                self.update(s, out, |r| {
                    r.state = ServiceState::Started;
                    r.transition = Some(now);
                });
            }
            (Some(Op::Start { node: n, .. }), OpResult::StartFailed) if n == node => {
                self.fail_and_stop(now, s, node, out);
            }
            (Some(Op::Stop { node: n, cause }), OpResult::Stopped) if n == node => {
                if self.work[i].stuck == Some(node) {
                    self.work[i].stuck = None;
                }
                self.after_stop(now, s, node, cause, out);
            }
            (Some(Op::Stop { node: n, cause }), OpResult::StopFailed) if n == node => {
                self.work[i].stuck = Some(node);
                if cause == StopCause::Disable {
                    warn!(service = %self.cat.service(s).name, "disabled; some resources may still be allocated");
                    self.settle(now, s, Some(node), ServiceState::Disabled, out);
                } else {
                    warn!(service = %self.cat.service(s).name, "#12: failed to stop; intervention required");
                    self.settle(now, s, Some(node), ServiceState::Failed, out);
                }
            }
            (Some(Op::Migrate { from, to }), OpResult::Migrated) if from == node => {
                self.vacate(s, from);
                self.work[i].pending = None;
                if self.members.contains(&to) {
                    self.update(s, out, |r| {
                        r.state = ServiceState::Started;
                        r.owner = Some(to);
                        r.last_owner = Some(from);
                        r.transition = Some(now);
                    });
                } else {
                    // Migrated onto a node that has died since: recover it after fencing.
                    self.vacate(s, to);
                    if !self.fenced.contains(&to) {
                        self.add_hold(s, Hold::Fence(to));
                        out.push(Action::AwaitFencing {
                            node: to,
                            services: 1,
                        });
                    }
                    self.update(s, out, |r| r.owner = Some(to));
                    self.settle(now, s, Some(to), ServiceState::Stopped, out);
                }
            }
            (Some(Op::Migrate { from, to }), OpResult::MigrateFailed { on_source })
                if from == node =>
            {
                self.vacate(s, to);
                self.work[i].pending = None;
                if on_source {
                    self.update(s, out, |r| {
                        r.state = ServiceState::Started;
                        r.owner = Some(from);
                    });
                } else {
                    self.settle(now, s, Some(from), ServiceState::Failed, out);
                }
            }
            (pending, result) => {
                debug!(service = %s, node = %node, ?pending, ?result, "stale operation result ignored");
            }
        }
    }

    fn after_stop(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        node: NodeId,
        cause: StopCause,
        out: &mut Vec<Action>,
    ) {
        let i = s.0 as usize;
        match cause {
            StopCause::Recovery => {
                let episode = self.work[i].episode.take().unwrap_or(Episode {
                    origin: node,
                    tried: BTreeSet::new(),
                    phase: Phase::Fresh,
                });
                self.settle(now, s, Some(node), ServiceState::Recovering, out);
                self.work[i].episode = Some(episode);
            }
            StopCause::User => {
                self.settle(now, s, Some(node), ServiceState::Stopped, out);
                self.work[i].parked = true; // restarted at the next node event (§2.11)
            }
            StopCause::Disable => self.settle(now, s, Some(node), ServiceState::Disabled, out),
            StopCause::DependencyMissing | StopCause::Duplicate => {
                self.settle(now, s, Some(node), ServiceState::Stopped, out)
            }
            StopCause::Restart | StopCause::Relocate { .. } | StopCause::Failback { .. }
                if !self.may_start(s) =>
            {
                // Not deciding now (a round of reports is under way) or a second copy is
                // being stopped: stopped, and the next decision round places it.
                self.settle(now, s, Some(node), ServiceState::Stopped, out);
            }
            StopCause::Restart => {
                self.settle(now, s, Some(node), ServiceState::Stopped, out);
                if self.startable(node) {
                    self.start(now, s, node, StartCause::User, out);
                }
            }
            StopCause::Relocate { to } => {
                self.settle(now, s, Some(node), ServiceState::Stopped, out);
                match self.user_target(s, to, Some(node)) {
                    Some(t) => self.start(now, s, t, StartCause::User, out),
                    // Nowhere else: back on the original owner (RG_ERELO).
                    None if self.startable(node) => self.start(now, s, node, StartCause::User, out),
                    None => {}
                }
            }
            StopCause::Failback { to } => {
                self.settle(now, s, Some(node), ServiceState::Stopped, out);
                if self.legal(s, to) {
                    self.start(now, s, to, StartCause::Failback, out);
                }
            }
        }
    }

    /// Whether a start of `s` may be decided now: the engine decides (quorate) and no second
    /// copy is being stopped.
    pub(super) fn may_start(&self, s: ServiceIndex) -> bool {
        self.quorate && !self.copy_elsewhere(s)
    }

    /// Whether `node` is online, allowed by the domain and by the exclusive rule for `s`.
    pub(super) fn legal(&self, s: ServiceIndex, node: NodeId) -> bool {
        let online = self.startable(node);
        let dv = self.view(s);
        score(dv.as_ref(), node, online, None) >= Score::Good
            && exclusive_allows(self.cat.service(s).exclusive, self.load(node))
    }
}
