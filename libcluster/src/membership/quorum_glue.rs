//! Quorum glue: feeds the installed view, expected votes and the quorum device into
//! [`crate::quorum::compute`] with cman's `allow_decrease` rules (spec §1.1, §1.3, §1.4).

use super::api::{Action, RequestError};
use super::msg::{ExpectedVotes, Msg};
use super::Membership;
use crate::quorum::{self, MemberVotes, QuorumInput, QuorumState};
use crate::{Millis, NodeId};

/// The quorum device as registered by the local qdiskd.
#[derive(Clone, Debug)]
pub(super) struct Qdisk {
    pub name: String,
    pub votes: u32,
    pub member: bool,
    pub last_poll: Millis,
}

#[derive(Clone, Debug)]
pub(super) struct Glue {
    pub expected: ExpectedVotes,
    pub state: Option<QuorumState>,
    pub qdisk: Option<Qdisk>,
    /// two_node's wait-for-all: set once this incarnation installed a view holding both
    /// nodes (or an administrator set expected votes). Until then a lone two_node member
    /// is not quorate, so a node that boots cut off from its peer (after being fenced in a
    /// partition, say) cannot run services beside it or fence it at start-up.
    pub seen_all: bool,
}

impl Membership {
    /// Whether `id` is still heard at an incarnation no newer than `incarnation` (an
    /// expelled node that is back, not one that stayed dead).
    pub(super) fn still_heard(&self, id: NodeId, incarnation: u64) -> bool {
        self.conn.peers.get(&id).is_some_and(|p| {
            p.incarnation <= incarnation && self.now.since(p.last_heard) < self.timing.token_ms
        })
    }

    fn member_votes(&self, members: &[(NodeId, u64)], expected: u32) -> Vec<MemberVotes> {
        members
            .iter()
            .map(|&(node, _)| MemberVotes {
                node,
                votes: self.votes.get(&node).copied().unwrap_or(0),
                expected_votes: expected,
            })
            .collect()
    }

    fn qdisk_votes(&self) -> Option<u32> {
        self.quorum
            .qdisk
            .as_ref()
            .filter(|q| q.member)
            .map(|q| q.votes)
    }

    fn compute_for(
        &self,
        members: &[(NodeId, u64)],
        expected: u32,
        allow_decrease: bool,
    ) -> QuorumState {
        let mv = self.member_votes(members, expected);
        let mut s = quorum::compute(&QuorumInput {
            members: &mv,
            qdisk_votes: self.qdisk_votes(),
            two_node: self.two_node,
            previous_quorum: self.quorum.state.map_or(0, |s| s.quorum),
            allow_decrease,
        });
        if self.two_node && !self.quorum.seen_all && members.len() < 2 {
            s.quorate = false;
        }
        s
    }

    /// Whether a view of `members` would be quorate from this node's standpoint.
    pub(super) fn quorate_with(
        &self,
        members: &[(NodeId, u64)],
        expected: u32,
        allow_decrease: bool,
    ) -> bool {
        self.compute_for(members, expected, allow_decrease).quorate
    }

    /// Whether the installed view is quorate.
    pub(super) fn quorate(&self) -> bool {
        self.quorum.state.is_some_and(|s| s.quorate)
    }

    /// Recomputes the quorum of the installed view; emits QuorumChanged on change.
    pub(super) fn recompute_quorum(&mut self, allow_decrease: bool, out: &mut Vec<Action>) {
        let Some(inst) = &self.views.installed else {
            return;
        };
        let members = inst.members.clone();
        if members.len() >= 2 {
            self.quorum.seen_all = true;
        }
        let s = self.compute_for(&members, self.quorum.expected.votes, allow_decrease);
        if self.quorum.state != Some(s) {
            if self.quorum.state.is_some_and(|o| o.quorate) && !s.quorate {
                tracing::debug!(node = %self.me, quorum = s.quorum, total = s.total_votes, "quorum lost, blocking activity");
            } else if s.quorate && !self.quorum.state.is_some_and(|o| o.quorate) {
                tracing::debug!(node = %self.me, quorum = s.quorum, total = s.total_votes, "quorum regained, resuming activity");
            }
            self.quorum.state = Some(s);
            out.push(Action::QuorumChanged(s));
        }
    }

    /// `cman_tool expected -e N`: checked here, applied by every member in order.
    pub(super) fn check_set_expected(&self, votes: u32) -> Result<(), RequestError> {
        let Some(inst) = &self.views.installed else {
            return Err(RequestError::NotMember);
        };
        let present = self.excluded.iter().any(|(id, e)| {
            matches!(e.why, super::Why::Expelled) && self.still_heard(*id, e.incarnation)
        });
        if present {
            return Err(RequestError::ExpelledPresent);
        }
        let total = self
            .compute_for(&inst.members, self.quorum.expected.votes, true)
            .total_votes;
        quorum::check_expected(votes, total).map_err(RequestError::Expected)?;
        Ok(())
    }

    /// An ordered `Expected` entry: every member sets the value and recomputes with decrease.
    pub(super) fn apply_expected(&mut self, votes: u32, out: &mut Vec<Action>) {
        self.quorum.expected = ExpectedVotes {
            generation: self.quorum.expected.generation.saturating_add(1),
            votes,
        };
        // `cman_tool expected` is the administrator's word that the lone node may go on.
        self.quorum.seen_all = true;
        self.recompute_quorum(true, out);
    }

    /// qdiskd's report. Dead→member and member→dead never lower the quorum; a vote change of
    /// a member device may.
    pub(super) fn on_qdisk_update(
        &mut self,
        name: String,
        votes: u32,
        alive: bool,
        out: &mut Vec<Action>,
    ) {
        let now = self.now;
        let before = self.quorum.qdisk.clone();
        let was_member = before.as_ref().is_some_and(|q| q.member);
        let votes_changed = before.as_ref().is_some_and(|q| q.votes != votes);
        self.quorum.qdisk = Some(Qdisk {
            name,
            votes,
            member: alive,
            last_poll: now,
        });
        if was_member != alive {
            self.recompute_quorum(false, out);
        } else if alive && votes_changed {
            self.recompute_quorum(true, out);
        }
    }

    /// The device is dead without an update within quorum_dev_poll.
    pub(super) fn qdisk_expire(&mut self, out: &mut Vec<Action>) {
        let (now, poll) = (self.now, self.qdisk_poll_ms);
        let expired = self
            .quorum
            .qdisk
            .as_mut()
            .filter(|q| q.member && now.since(q.last_poll) >= poll)
            .map(|q| q.member = false)
            .is_some();
        if expired {
            tracing::info!(node = %self.me, "lost contact with quorum device");
            self.recompute_quorum(false, out);
        }
    }

    pub(super) fn quorum_deadline(&self) -> Millis {
        match &self.quorum.qdisk {
            Some(q) if q.member => q.last_poll.plus(self.qdisk_poll_ms),
            _ => Millis(u64::MAX),
        }
    }

    /// A newer cluster.conf (ordered entry or state transfer).
    pub(super) fn adopt_config(&mut self, version: u64, text: String, out: &mut Vec<Action>) {
        if version > self.config_version {
            self.config_version = version;
            self.config_text = text.clone();
            out.push(Action::ConfigUpdate { version, text });
        }
    }

    /// State transfer: the lowest-id member holding the newest config sends it to members
    /// whose heartbeats show an older version (at most once per two heartbeat periods each).
    pub(super) fn push_config(&mut self, out: &mut Vec<Action>) {
        let Some(inst) = &self.views.installed else {
            return;
        };
        let mine = self.config_version;
        let mut newest_holder = Some(self.me);
        for (id, _) in &inst.members {
            let v = if *id == self.me {
                mine
            } else {
                self.conn.peers.get(id).map_or(0, |p| p.config_version)
            };
            if v > mine || (v == mine && *id < self.me) {
                newest_holder = None;
            }
        }
        if newest_holder.is_none() || mine == 0 {
            return;
        }
        let (now, period) = (self.now, 2 * self.timing.heartbeat_ms);
        let ids: Vec<NodeId> = inst.members.iter().map(|m| m.0).collect();
        for id in ids {
            let Some(p) = self.conn.peers.get_mut(&id) else {
                continue;
            };
            if id == self.me || p.hb_seq == 0 || p.config_version >= mine {
                continue;
            }
            if p.last_push.is_some_and(|t| now.since(t) < period) {
                continue;
            }
            p.last_push = Some(now);
            out.push(Action::Send {
                to: id,
                msg: Msg::ConfigPush {
                    version: mine,
                    text: self.config_text.clone(),
                },
            });
        }
    }
}
