//! Start rounds: one per change of the domain group; every member's start carries its state,
//! and when all are in, the state is merged and the master chosen.

use super::api::Action;
use super::domain::{Domain, Round, ROUND_RESEND_MS, VICTIM_NUDGE_MS};
use super::msg::{ChangeId, DomainMsg};
use crate::{Millis, NodeId};
use std::collections::BTreeMap;

impl Domain {
    /// Sends our start again if the round has been open for [`ROUND_RESEND_MS`], or if we
    /// hold victims and [`VICTIM_NUDGE_MS`] passed since the last time.
    pub(super) fn resend_start(&mut self, now: Millis, out: &mut Vec<Action>) {
        let change = match self.round.as_mut() {
            Some(round) if now >= round.resend_at => {
                round.resend_at = now.plus(ROUND_RESEND_MS);
                out.push(Action::Log(
                    "start messages missing, sending ours again".into(),
                ));
                round.change.clone()
            }
            None if !self.victims.is_empty() && self.nudge_at.is_some_and(|t| now >= t) => {
                self.nudge_at = Some(now.plus(VICTIM_NUDGE_MS));
                let Some(change) = self.last_change.clone() else {
                    return;
                };
                change
            }
            _ => return,
        };
        let state = self.state_body();
        self.send(DomainMsg::Start { change, state }, out);
    }

    /// A new change: forget the master, send our start, wait for everyone's.
    pub(super) fn begin_round(&mut self, now: Millis, change: ChangeId, out: &mut Vec<Action>) {
        self.master = None;
        self.master_state.reset_delay();
        self.last_change = Some(change.clone());
        self.round = Some(Round {
            change: change.clone(),
            starts: BTreeMap::new(),
            resend_at: now.plus(ROUND_RESEND_MS),
        });
        let state = self.state_body();
        self.send(DomainMsg::Start { change, state }, out);
        self.domain_changed(out);
    }

    /// Every start of the current change is in: merge state, pick the master.
    pub(super) fn finish_round(&mut self, now: Millis, out: &mut Vec<Action>) {
        let Some(round) = self.round.take() else {
            return;
        };
        let any_complete = round.starts.values().any(|s| s.complete);
        if any_complete && !self.complete {
            // An existing member handled start-up fencing already.
            for id in std::mem::take(&mut self.initial) {
                if self.victims.get(&id) == Some(&0) {
                    self.victims.remove(&id);
                }
            }
        }
        for state in round
            .starts
            .values()
            .filter(|s| s.complete || !any_complete)
        {
            for r in &state.last {
                self.apply_record(r.clone(), out);
            }
            for &(n, inc) in &state.victims {
                self.add_victim(NodeId(n), inc, out);
            }
        }
        self.initial.clear();
        // A victim that is a domain member again in the same cmand incarnation was cut off
        // from an inquorate side (cmand merges those back): nothing acted on its failure,
        // so it is withdrawn, without a record (that incarnation is not fenced). So is a
        // start-up victim (incarnation 0) of another creator that is a member now.
        let back: Vec<NodeId> = self
            .victims
            .iter()
            .filter(|(n, inc)| {
                self.members.contains(n) && (**inc == 0 || self.cluster.get(n) == Some(inc))
            })
            .map(|(n, _)| *n)
            .collect();
        for n in back {
            self.victims.remove(&n);
            if let Some((victim, attempt)) = self.master_state.cancel(n) {
                out.push(Action::CancelFence { victim, attempt });
            }
            out.push(Action::Log(format!(
                "{} is a domain member again, failure withdrawn",
                self.name(n)
            )));
        }
        let master = round
            .starts
            .iter()
            .find(|(_, s)| s.complete)
            .or_else(|| round.starts.iter().next())
            .map(|(id, _)| *id);
        self.master = master;
        self.complete = true;
        self.nudge_at = Some(now.plus(VICTIM_NUDGE_MS));
        let added = std::mem::take(&mut self.added);
        if let Some(m) = master {
            if m == self.me {
                self.master_state
                    .start_delay(now, added, self.victims.len(), &self.settings);
            } else if !self.victims.is_empty() {
                out.push(Action::Log(format!("fencing deferred to {}", self.name(m))));
            }
        }
        self.domain_changed(out);
    }
}
