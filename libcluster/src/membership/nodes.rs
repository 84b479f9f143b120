//! Incarnations, expulsion, leave and kill.
//!
//! A node removed by a quorate view keeps being ignored at that incarnation (expelled,
//! cman's "disallowed") and, while our view is quorate, is told to exit with
//! Kill(Rejoin); in two_node mode only the lower id kills the higher (spec §1.5). A
//! restarted node shows a higher incarnation and joins normally.

use super::api::{Action, RequestError, ShutdownReason};
use super::msg::{KillReason, Msg};
use super::{Excluded, Leaving, Membership, Why};
use crate::NodeId;

impl Membership {
    /// Whether messages from `id` at incarnation `inc` are ignored.
    pub(super) fn is_excluded(&self, id: NodeId, inc: u64) -> bool {
        self.excluded.get(&id).is_some_and(|e| inc <= e.incarnation)
    }

    /// Whether (`id`, `inc`) is a member of the installed view.
    pub(super) fn is_member(&self, id: NodeId, inc: u64) -> bool {
        self.views
            .installed
            .as_ref()
            .is_some_and(|i| i.members.contains(&(id, inc)))
    }

    /// A message from an excluded incarnation: nothing changes, but an expelled node
    /// is told to exit while we are quorate.
    pub(super) fn on_excluded(&mut self, from: NodeId, inc: u64, out: &mut Vec<Action>) {
        let Some(e) = self.excluded.get(&from) else {
            return;
        };
        let reason = match e.why {
            Why::Expelled => KillReason::Rejoin,
            Why::Killed => KillReason::CmanTool,
            Why::Left { .. } => return,
        };
        if reason == KillReason::Rejoin && (!self.quorate() || (self.two_node && from < self.me)) {
            return;
        }
        let (now, period) = (self.now, self.timing.heartbeat_ms);
        let quorate = self.quorate();
        let peer = self.conn.peers.get_mut(&from);
        let due = peer
            .as_ref()
            .is_none_or(|p| p.last_kill.is_none_or(|t| now.since(t) >= period));
        if !due {
            return;
        }
        if let Some(p) = peer {
            p.last_kill = Some(now);
        }
        self.counters.kills_sent += 1;
        tracing::info!(node = %self.me, target = %from, incarnation = inc, ?reason, "killing node");
        out.push(Action::Send {
            to: from,
            msg: Msg::Kill {
                reason,
                target_incarnation: inc,
                quorate,
            },
        });
    }

    /// A Kill addressed to us: exit if it names this incarnation (and, for a rejoin, if the
    /// sender's view is quorate).
    pub(super) fn on_kill(
        &mut self,
        from: NodeId,
        reason: KillReason,
        target: u64,
        quorate: bool,
        out: &mut Vec<Action>,
    ) {
        if target != self.inc || (reason == KillReason::Rejoin && !quorate) {
            return;
        }
        tracing::info!(node = %self.me, by = %from, ?reason, "killed by another node");
        self.shutdown(ShutdownReason::Killed { by: from, reason }, out);
    }

    pub(super) fn shutdown(&mut self, reason: ShutdownReason, out: &mut Vec<Action>) {
        self.dead = true;
        out.push(Action::Shutdown { reason });
    }

    /// Leave from a peer: drop it at once (no token wait); remember `remove` for the commit.
    pub(super) fn on_leave(&mut self, from: NodeId, inc: u64, remove: bool) {
        self.excluded.insert(
            from,
            Excluded {
                incarnation: inc,
                why: Why::Left { remove },
            },
        );
        self.views.urgent = true;
        self.graph_changed();
    }

    /// `cman_tool leave [remove]`.
    pub(super) fn request_leave(&mut self, remove: bool, out: &mut Vec<Action>) {
        if self.views.installed.is_none() {
            self.shutdown(ShutdownReason::Left, out);
            return;
        }
        self.leaving = Some(Leaving {
            remove,
            until: self.now.plus(2 * self.timing.heartbeat_ms),
            last_sent: None,
        });
    }

    /// Sends Leave to the view a few times, then asks the shell to exit.
    pub(super) fn drive_leave(&mut self, out: &mut Vec<Action>) {
        let now = self.now;
        let resend = self.timing.resend_ms;
        let Some(l) = &mut self.leaving else { return };
        if now >= l.until {
            self.shutdown(ShutdownReason::Left, out);
            return;
        }
        if l.last_sent.is_some_and(|t| now.since(t) < resend) {
            return;
        }
        l.last_sent = Some(now);
        let remove = l.remove;
        for &(id, _) in self.views.installed.iter().flat_map(|i| &i.members) {
            if id != self.me {
                out.push(Action::Send {
                    to: id,
                    msg: Msg::Leave { remove },
                });
            }
        }
    }

    /// `cman_tool kill -n NODE`: the target must be a member or expelled.
    pub(super) fn request_kill(
        &mut self,
        node: NodeId,
        out: &mut Vec<Action>,
    ) -> Result<(), RequestError> {
        let member = self
            .views
            .installed
            .as_ref()
            .and_then(|i| i.members.iter().find(|m| m.0 == node).copied());
        let target = match (member, self.excluded.get(&node)) {
            _ if node == self.me => None,
            (Some((_, inc)), _) => Some(inc),
            (None, Some(e)) if matches!(e.why, Why::Expelled) => Some(e.incarnation),
            _ => None,
        };
        let Some(inc) = target else {
            return Err(RequestError::UnknownNode { node });
        };
        self.excluded.insert(
            node,
            Excluded {
                incarnation: inc,
                why: Why::Killed,
            },
        );
        self.views.urgent = true;
        self.graph_changed();
        self.counters.kills_sent += 1;
        out.push(Action::Send {
            to: node,
            msg: Msg::Kill {
                reason: KillReason::CmanTool,
                target_incarnation: inc,
                quorate: self.quorate(),
            },
        });
        Ok(())
    }
}
