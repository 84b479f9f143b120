//! View agreement: propose, accept/nack, commit, install.
//!
//! The coordinator (lowest id of its connected set) proposes `(max epoch seen + 1, me,
//! my incarnation)` with the set's members once the set differs from the installed view
//! and was stable for `settle_ms`. A member accepts when it is listed with its
//! incarnation, has promised nothing at least as high, and sees the proposer as the lowest
//! id of its own connected set; accepting freezes its group messaging and reports the
//! flush state. With every accept in, the coordinator sends each member a Commit tailored
//! with the old-view entries it lacks; members deliver the flush, then install.

use super::api::Action;
use super::msg::{Accept, Commit, Msg, NackReason, Propose, ViewId};
use super::{Excluded, Membership, Why};
use crate::{Millis, NodeId};
use rand::RngCore;
use std::collections::BTreeMap;

/// The installed view.
#[derive(Clone, Debug)]
pub(super) struct Installed {
    pub view: ViewId,
    pub members: Vec<(NodeId, u64)>,
    pub at: Millis,
}

/// This node's latest accepted proposal.
#[derive(Clone, Debug)]
pub(super) struct Promise {
    pub view: ViewId,
    pub at: Millis,
    /// Still waiting for the commit: group messaging is frozen.
    pub waiting: bool,
    /// Gave up waiting; a late commit of this view is ignored.
    pub abandoned: bool,
    pub accept: Accept,
}

#[derive(Clone, Debug)]
pub(super) struct Proposal {
    pub view: ViewId,
    pub members: Vec<(NodeId, u64)>,
    pub accepts: BTreeMap<NodeId, Accept>,
    pub started: Millis,
    pub last_sent: Millis,
}

#[derive(Clone, Debug)]
pub(super) struct Commits {
    pub pending: BTreeMap<NodeId, Commit>,
    pub last_sent: Millis,
    pub until: Millis,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Views {
    pub installed: Option<Installed>,
    pub max_epoch: u64,
    pub promise: Option<Promise>,
    pub proposal: Option<Proposal>,
    pub commits: Option<Commits>,
    /// The set the coordinator wants to propose and since when it is unchanged.
    pub want: Option<(Vec<(NodeId, u64)>, Millis)>,
    pub backoff_until: Millis,
    /// Members left out of proposals after failing to accept: until when, failures.
    pub suppressed: BTreeMap<NodeId, (Millis, u32)>,
    /// A leave or kill: propose without waiting for the settle time.
    pub urgent: bool,
}

impl Membership {
    /// Whether group messaging is frozen by an accepted, uncommitted proposal.
    pub(super) fn frozen(&self) -> bool {
        self.views.promise.as_ref().is_some_and(|p| p.waiting)
    }

    fn floor(&self) -> Option<ViewId> {
        let promised = self.views.promise.as_ref().map(|p| p.view);
        let installed = self.views.installed.as_ref().map(|i| i.view);
        promised.max(installed)
    }

    /// Timer-driven part of view agreement.
    pub(super) fn drive_views(&mut self, rng: &mut dyn RngCore, out: &mut Vec<Action>) {
        let now = self.now;
        let t = self.timing;
        if let Some(p) = &mut self.views.promise {
            if p.waiting && now.since(p.at) >= t.commit_wait_ms {
                p.waiting = false;
                p.abandoned = true;
            }
        }
        self.resend_commits(out);
        let started = self.started.unwrap_or(now);
        if self.leaving.is_some() || now.since(started) < t.startup_ms {
            return;
        }
        let clique = self.clique();
        let suppressed = &self.views.suppressed;
        let k: Vec<(NodeId, u64)> = clique
            .into_iter()
            .filter(|(id, _)| {
                *id == self.me || suppressed.get(id).is_none_or(|(until, _)| now >= *until)
            })
            .collect();
        if k.first().map(|m| m.0) != Some(self.me) {
            self.views.want = None;
            if self.views.proposal.is_some() {
                self.abandon_proposal();
            }
            return;
        }
        if let Some(prop) = &self.views.proposal {
            if prop.members != k {
                self.abandon_proposal();
            } else if now.since(prop.started) >= t.accept_timeout_ms {
                let missing: Vec<NodeId> = prop
                    .members
                    .iter()
                    .map(|m| m.0)
                    .filter(|id| !prop.accepts.contains_key(id))
                    .collect();
                for id in missing {
                    let failures = self.views.suppressed.get(&id).map_or(0, |s| s.1) + 1;
                    // Doubling per failure, capped at one token: a live node is retried soon.
                    let until = now.plus((t.accept_timeout_ms << failures.min(4)).min(t.token_ms));
                    self.views.suppressed.insert(id, (until, failures));
                }
                self.abandon_proposal();
                self.views.urgent = true;
                return; // re-proposed on the next poll, without them
            } else {
                if now.since(prop.last_sent) >= t.resend_ms {
                    self.send_proposal(out);
                }
                return;
            }
        }
        if self.frozen() {
            return; // someone else's proposal holds us; wait for it or its timeout
        }
        if !self.view_needs_change(&k) {
            self.views.want = None;
            return;
        }
        if now < self.views.backoff_until {
            return;
        }
        match &self.views.want {
            Some((w, since)) if *w == k => {
                if self.views.urgent || now.since(*since) >= t.settle_ms {
                    self.propose(k, rng, out);
                }
            }
            _ => {
                self.views.want = Some((k.clone(), now));
                if self.views.urgent {
                    self.propose(k, rng, out);
                }
            }
        }
    }

    fn view_needs_change(&self, k: &[(NodeId, u64)]) -> bool {
        let Some(inst) = &self.views.installed else {
            return true;
        };
        if inst.members != k {
            return true;
        }
        // A member whose heartbeats, well after the install, still show another view
        // missed the commit (or abandoned it): propose again.
        let settled = inst.at.plus(self.timing.commit_wait_ms);
        inst.members.iter().any(|(id, _)| {
            *id != self.me
                && self.conn.peers.get(id).is_some_and(|p| {
                    p.view != Some(inst.view) && p.hb_at >= settled && p.hb_seq > 0
                })
        })
    }

    fn propose(
        &mut self,
        members: Vec<(NodeId, u64)>,
        _rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        let epoch = self.views.max_epoch.saturating_add(1);
        self.views.max_epoch = epoch;
        let view = ViewId {
            epoch,
            coordinator: self.me,
            incarnation: self.inc,
        };
        self.counters.proposals += 1;
        let accept = self.make_accept(view);
        self.views.promise = Some(Promise {
            view,
            at: self.now,
            waiting: true,
            abandoned: false,
            accept: accept.clone(),
        });
        self.views.proposal = Some(Proposal {
            view,
            members,
            accepts: BTreeMap::from([(self.me, accept)]),
            started: self.now,
            last_sent: self.now,
        });
        self.views.want = None;
        self.views.urgent = false;
        self.send_proposal(out);
        self.try_commit(out);
    }

    fn send_proposal(&mut self, out: &mut Vec<Action>) {
        let now = self.now;
        let Some(prop) = &mut self.views.proposal else {
            return;
        };
        prop.last_sent = now;
        for &(id, _) in &prop.members {
            if !prop.accepts.contains_key(&id) {
                out.push(Action::Send {
                    to: id,
                    msg: Msg::Propose(Propose {
                        view: prop.view,
                        members: prop.members.clone(),
                    }),
                });
            }
        }
    }

    fn abandon_proposal(&mut self) {
        if let Some(prop) = self.views.proposal.take() {
            self.counters.proposals_failed += 1;
            if let Some(p) = &mut self.views.promise {
                if p.view == prop.view && p.waiting {
                    p.waiting = false;
                    p.abandoned = true;
                }
            }
        }
    }

    fn make_accept(&self, view: ViewId) -> Accept {
        let (old_view, old_members) = match &self.views.installed {
            Some(i) => (Some(i.view), i.members.clone()),
            None => (None, Vec::new()),
        };
        let pick = |f: fn(&Why) -> bool| -> Vec<(NodeId, u64)> {
            self.excluded
                .iter()
                .filter(|(_, e)| f(&e.why))
                .map(|(id, e)| (*id, e.incarnation))
                .collect()
        };
        Accept {
            view,
            old_view,
            old_members,
            delivered: self.gm.delivered,
            stable: self.gm.stable,
            tail: self
                .gm
                .held
                .range(self.gm.stable.saturating_add(1)..)
                .map(|(s, e)| (*s, e.clone()))
                .collect(),
            groups: self.my_groups(),
            expected: self.quorum.expected,
            removed: pick(|w| matches!(w, Why::Left { remove: true })),
            expelled: pick(|w| matches!(w, Why::Expelled)),
            config_version: self.config_version,
        }
    }

    pub(super) fn on_propose(&mut self, from: NodeId, inc: u64, p: Propose, out: &mut Vec<Action>) {
        self.views.max_epoch = self.views.max_epoch.max(p.view.epoch);
        if p.view.coordinator != from || p.view.incarnation != inc || self.leaving.is_some() {
            self.counters.dropped += 1;
            return;
        }
        let nack = |promised: Option<ViewId>, reason| Action::Send {
            to: from,
            msg: Msg::Nack {
                view: p.view,
                promised: promised.unwrap_or_default(),
                reason,
            },
        };
        if let Some(pr) = &self.views.promise {
            if pr.view == p.view {
                if pr.abandoned {
                    out.push(nack(Some(pr.view), NackReason::Promised));
                } else {
                    out.push(Action::Send {
                        to: from,
                        msg: Msg::Accept(pr.accept.clone()),
                    });
                }
                return;
            }
        }
        let floor = self.floor();
        if Some(p.view) <= floor {
            out.push(nack(floor, NackReason::Promised));
            return;
        }
        if !p.members.contains(&(self.me, self.inc)) {
            out.push(nack(floor, NackReason::NotListed));
            return;
        }
        if self.clique().first() != Some(&(from, inc)) {
            out.push(nack(floor, NackReason::NotCoordinator));
            return;
        }
        self.abandon_proposal();
        let accept = self.make_accept(p.view);
        self.views.promise = Some(Promise {
            view: p.view,
            at: self.now,
            waiting: true,
            abandoned: false,
            accept: accept.clone(),
        });
        out.push(Action::Send {
            to: from,
            msg: Msg::Accept(accept),
        });
    }

    pub(super) fn on_accept(&mut self, from: NodeId, inc: u64, a: Accept, out: &mut Vec<Action>) {
        let Some(prop) = &mut self.views.proposal else {
            return;
        };
        if prop.view != a.view || !prop.members.contains(&(from, inc)) {
            return;
        }
        prop.accepts.insert(from, a);
        self.try_commit(out);
    }

    pub(super) fn on_nack(&mut self, view: ViewId, promised: ViewId, rng: &mut dyn RngCore) {
        self.views.max_epoch = self.views.max_epoch.max(promised.epoch);
        if self.views.proposal.as_ref().is_some_and(|p| p.view == view) {
            self.abandon_proposal();
            let hb = self.timing.heartbeat_ms;
            let delay = hb / 2 + rng.next_u64() % (hb / 2 + 1);
            self.views.backoff_until = self.now.plus(delay);
        }
    }

    fn try_commit(&mut self, out: &mut Vec<Action>) {
        let ready = self
            .views
            .proposal
            .as_ref()
            .is_some_and(|p| p.members.iter().all(|(id, _)| p.accepts.contains_key(id)));
        if !ready {
            return;
        }
        let Some(prop) = self.views.proposal.take() else {
            return;
        };
        let mut commits = self.build_commits(&prop);
        let mine = commits.remove(&self.me);
        for (to, c) in &commits {
            out.push(Action::Send {
                to: *to,
                msg: Msg::Commit(c.clone()),
            });
        }
        self.views.commits = Some(Commits {
            pending: commits,
            last_sent: self.now,
            until: self.now.plus(self.timing.commit_wait_ms),
        });
        if let Some(c) = mine {
            self.install(c, out);
        }
    }

    fn resend_commits(&mut self, out: &mut Vec<Action>) {
        let now = self.now;
        let Some(c) = &mut self.views.commits else {
            return;
        };
        if now >= c.until || c.pending.is_empty() {
            self.views.commits = None;
            return;
        }
        if now.since(c.last_sent) >= self.timing.resend_ms {
            c.last_sent = now;
            for (to, commit) in &c.pending {
                out.push(Action::Send {
                    to: *to,
                    msg: Msg::Commit(commit.clone()),
                });
            }
        }
    }

    pub(super) fn on_commit_ack(&mut self, from: NodeId, view: ViewId) {
        if let Some(c) = &mut self.views.commits {
            if c.pending.get(&from).is_some_and(|x| x.view == view) {
                c.pending.remove(&from);
            }
        }
    }

    pub(super) fn on_commit(&mut self, from: NodeId, c: Commit, out: &mut Vec<Action>) {
        if c.view.coordinator != from {
            self.counters.dropped += 1;
            return;
        }
        let ack = Action::Send {
            to: from,
            msg: Msg::CommitAck { view: c.view },
        };
        if self
            .views
            .installed
            .as_ref()
            .is_some_and(|i| i.view == c.view)
        {
            out.push(ack);
            return;
        }
        let ours = self
            .views
            .promise
            .as_ref()
            .is_some_and(|p| p.view == c.view && p.waiting && !p.abandoned);
        if ours && c.members.contains(&(self.me, self.inc)) {
            self.install(c, out);
            out.push(ack);
        }
    }

    /// Delivers the flush, installs the view, applies its decisions.
    fn install(&mut self, c: Commit, out: &mut Vec<Action>) {
        if let Some(f) = c.flush {
            if self.views.installed.as_ref().map(|i| i.view) == Some(f.old_view) {
                self.gm_flush(f, out);
            }
        }
        if let Some(p) = &mut self.views.promise {
            p.waiting = false;
        }
        self.views.installed = Some(Installed {
            view: c.view,
            members: c.members.clone(),
            at: self.now,
        });
        self.views.want = None;
        for &(id, inc) in &c.expelled {
            if id != self.me && !self.is_excluded(id, inc) {
                self.excluded.insert(
                    id,
                    Excluded {
                        incarnation: inc,
                        why: Why::Expelled,
                    },
                );
                self.graph_changed();
            }
        }
        for (id, _) in &c.members {
            if let Some(s) = self.views.suppressed.get_mut(id) {
                s.1 = 0;
            }
        }
        self.counters.views_installed += 1;
        tracing::debug!(node = %self.me, view = %c.view, members = c.members.len(), "view installed");
        out.push(Action::ViewInstalled {
            view: c.view,
            members: c.members.clone(),
        });
        self.quorum.expected = c.expected;
        self.gm_install(c.view, &c.members, c.groups, out);
        self.recompute_quorum(c.allow_decrease, out);
    }

    /// Earliest time view agreement has timer work.
    pub(super) fn views_deadline(&self) -> Millis {
        let t = self.timing;
        let mut d = Millis(u64::MAX);
        let started = self.started.unwrap_or(self.now);
        if self.now.since(started) < t.startup_ms {
            d = d.min(started.plus(t.startup_ms));
        }
        if let Some(p) = &self.views.promise {
            if p.waiting {
                d = d.min(p.at.plus(t.commit_wait_ms));
            }
        }
        if let Some(p) = &self.views.proposal {
            d = d.min(p.started.plus(t.accept_timeout_ms));
            d = d.min(p.last_sent.plus(t.resend_ms));
        }
        if let Some(c) = &self.views.commits {
            d = d.min(c.last_sent.plus(t.resend_ms)).min(c.until);
        }
        if let Some((_, since)) = &self.views.want {
            if !self.frozen() {
                d = d.min(since.plus(t.settle_ms).max(self.views.backoff_until));
            }
        }
        if let Some(i) = &self.views.installed {
            let settled = i.at.plus(t.commit_wait_ms);
            if settled > self.now {
                d = d.min(settled);
            }
        }
        for (until, _) in self.views.suppressed.values() {
            if *until > self.now {
                d = d.min(*until);
            }
        }
        d
    }
}
