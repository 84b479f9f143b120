//! The master's side: the post_join/post_fail delay loop, attempts, back-off, results.

use super::api::{Action, AttemptOutcome, FenceSettings, LOGGED_FAILURES, STILL_RETRYING_EVERY};
use super::domain::Domain;
use super::msg::DomainMsg;
use crate::ipc::fence::{FenceHow, FenceRecord};
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// After a cmand view, the master waits this long (ms) before it starts an attempt, so the
/// quorum event that follows the view is seen first.
pub const VIEW_SETTLE_MS: u64 = 100;

/// Which delay is running (its name appears in the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DelayKind {
    PostJoin,
    PostFail,
}

impl DelayKind {
    fn as_str(self) -> &'static str {
        match self {
            DelayKind::PostJoin => "post_join_delay",
            DelayKind::PostFail => "post_fail_delay",
        }
    }
}

/// C3's `delay_fencing` loop: wait `ms` since the victim count last went down.
#[derive(Clone, Copy, Debug)]
struct Delay {
    kind: DelayKind,
    /// `None`: wait until every victim rejoins.
    ms: Option<u64>,
    last_drop: Millis,
    count: usize,
}

/// What the master is doing about the victims (empty unless this node is master).
#[derive(Debug, Default)]
pub(super) struct MasterState {
    delay: Option<Delay>,
    /// The delay is over: victims are fenced one at a time, lowest id first.
    fencing: bool,
    /// The attempt whose agents run: (victim, attempt).
    running: Option<(NodeId, u64)>,
    retry_at: Option<Millis>,
    failures: BTreeMap<NodeId, u32>,
    /// Results we broadcast and wait to see delivered: (victim, incarnation).
    done_sent: BTreeSet<(NodeId, u64)>,
    next_attempt: u64,
}

impl MasterState {
    /// A group change: a new round (and delay) follows; a running attempt goes on.
    pub(super) fn reset_delay(&mut self) {
        self.delay = None;
        self.fencing = false;
        self.retry_at = None;
    }

    /// We left the domain: forget everything; returns the running attempt to cancel.
    pub(super) fn abandon(&mut self) -> Option<(NodeId, u64)> {
        let next_attempt = self.next_attempt;
        let running = self.running.take();
        *self = MasterState {
            next_attempt,
            ..MasterState::default()
        };
        running
    }

    /// The victim's fencing completed elsewhere: returns its running attempt to cancel.
    pub(super) fn cancel(&mut self, victim: NodeId) -> Option<(NodeId, u64)> {
        self.failures.remove(&victim);
        if self.running.is_some_and(|(v, _)| v == victim) {
            self.running.take()
        } else {
            None
        }
    }

    /// A round completed with us as master.
    pub(super) fn start_delay(
        &mut self,
        now: Millis,
        added: bool,
        victims: usize,
        settings: &FenceSettings,
    ) {
        let (kind, ms) = if added {
            (DelayKind::PostJoin, settings.post_join_delay_ms)
        } else {
            (DelayKind::PostFail, settings.post_fail_delay_ms)
        };
        self.fencing = false;
        self.delay = (victims > 0).then_some(Delay {
            kind,
            ms,
            last_drop: now,
            count: victims,
        });
    }

    /// The victim being fenced now.
    pub(super) fn current(&self) -> Option<NodeId> {
        self.running.map(|(v, _)| v)
    }

    pub(super) fn deadline(&self) -> Option<Millis> {
        match self.delay {
            Some(d) => d.ms.map(|ms| d.last_drop.plus(ms)),
            None if self.fencing && self.running.is_none() => self.retry_at,
            None => None,
        }
    }
}

impl Domain {
    /// The master's loop, run after every input: skip rules, delay, then one attempt at a time.
    pub(super) fn drive(&mut self, now: Millis, out: &mut Vec<Action>) {
        if self.master != Some(self.me) || self.round.is_some() || !self.joined() {
            return;
        }
        if !self.quorate {
            return; // an inquorate member keeps its state but decides nothing
        }
        let victims = self.victims.clone();
        let ms = &mut self.master_state;
        ms.done_sent.retain(|k| victims.get(&k.0) == Some(&k.1));
        // Skip rule: a victim that is a cmand member again with a newer incarnation restarted.
        // Evaluated before an attempt, not during one (as C3): a victim that comes back
        // because the running attempt's `reboot` powered it on again was fenced by that
        // attempt, and its result is the record.
        let running = self.master_state.current();
        for (&v, &inc) in &victims {
            let back =
                running != Some(v) && self.cluster.get(&v).is_some_and(|&now_inc| now_inc > inc);
            if back && self.master_state.done_sent.insert((v, inc)) {
                let record = FenceRecord {
                    node: v.0,
                    incarnation: inc,
                    master: self.me.0,
                    how: FenceHow::Member,
                    method: None,
                    device: None,
                    time_unix_s: self.unix_s,
                };
                self.send(DomainMsg::VictimDone(record), out);
            }
        }
        let pending: Vec<(NodeId, u64)> = victims
            .iter()
            .map(|(n, i)| (*n, *i))
            .filter(|k| !self.master_state.done_sent.contains(k))
            .collect();
        if let Some(mut d) = self.master_state.delay {
            if pending.is_empty() {
                self.master_state.delay = None;
                return;
            }
            if pending.len() < d.count {
                d.last_drop = now;
                d.count = pending.len();
                let join = self.settings.post_join_delay_ms;
                let longer = match (join, d.ms) {
                    (None, Some(_)) => true,
                    (Some(j), Some(f)) => j > f,
                    _ => false,
                };
                if d.kind == DelayKind::PostFail && longer {
                    d.kind = DelayKind::PostJoin;
                    d.ms = join;
                    out.push(Action::Log("delay of post_join_delay (modified)".into()));
                }
            }
            self.master_state.delay = Some(d);
            match d.ms {
                None => return,
                Some(ms) if now < d.last_drop.plus(ms) => return,
                Some(ms) => {
                    if ms > 0 {
                        for &(v, _) in &pending {
                            out.push(Action::Log(format!(
                                "{} not a cluster member after {} sec {}",
                                self.name(v),
                                ms / 1000,
                                d.kind.as_str()
                            )));
                        }
                    }
                    self.master_state.delay = None;
                    self.master_state.fencing = true;
                }
            }
        }
        let ms = &mut self.master_state;
        if !ms.fencing || ms.running.is_some() || ms.retry_at.is_some_and(|t| now < t) {
            return;
        }
        ms.retry_at = None;
        // cmand reports a view and then, separately, the quorum it leads to: give the quorum
        // event time to arrive before acting on a view that may have cost us quorum.
        let settled_at = self.view_at.plus(VIEW_SETTLE_MS);
        if now < settled_at {
            ms.retry_at = Some(settled_at);
            return;
        }
        let Some(&(victim, inc)) = pending.first() else {
            ms.fencing = false;
            return;
        };
        if inc > 0 && self.cluster.get(&victim) == Some(&inc) {
            return; // still in cmand's view: wait until cmand removes (kills) it
        }
        ms.next_attempt += 1;
        let attempt = ms.next_attempt;
        ms.running = Some((victim, attempt));
        let failures = ms.failures.get(&victim).copied().unwrap_or(0);
        let name = self.name(victim);
        if failures < LOGGED_FAILURES {
            out.push(Action::Log(format!("fencing node {name}")));
        }
        out.push(Action::Fence {
            victim,
            name,
            attempt,
        });
        self.domain_changed(out);
    }

    pub(super) fn on_fence_done(
        &mut self,
        now: Millis,
        victim: NodeId,
        attempt: u64,
        outcome: AttemptOutcome,
        out: &mut Vec<Action>,
    ) {
        let name = self.name(victim);
        if self.master_state.running != Some((victim, attempt)) {
            out.push(Action::Log(format!(
                "ignored the result of cancelled attempt {attempt} on {name}"
            )));
            return;
        }
        self.master_state.running = None;
        let Some(&inc) = self.victims.get(&victim) else {
            return;
        };
        if outcome.success {
            out.push(Action::Log(format!("fence {name} success")));
            self.master_state.failures.remove(&victim);
            self.master_state.done_sent.insert((victim, inc));
            let record = FenceRecord {
                node: victim.0,
                incarnation: inc,
                master: self.me.0,
                how: FenceHow::Agent,
                method: outcome.method,
                device: outcome.device,
                time_unix_s: self.unix_s,
            };
            self.send(DomainMsg::VictimDone(record), out);
        } else {
            let f = self.master_state.failures.entry(victim).or_insert(0);
            *f += 1;
            let f = *f;
            if f <= LOGGED_FAILURES {
                out.push(Action::Log(format!("fence {name} failed")));
            } else if f % STILL_RETRYING_EVERY == 0 {
                out.push(Action::Log(format!("fencing node {name} still retrying")));
            }
            self.master_state.retry_at = Some(now.plus(self.settings.backoff_ms(f)));
        }
        self.domain_changed(out);
    }
}
