//! Carrying out what the membership core asks: sends, view and quorum changes (logs,
//! events, history), group views and deliveries, replies to the requests it was given,
//! cluster.conf updates and the shutdown.

use crate::shell::{unix_now_s, AfterOk, Exit, Shell, LEAVE_GRACE};
use libcluster::history::Event;
use libcluster::ipc::cman::CmanEvent;
use libcluster::membership::{Action, RequestError, ShutdownReason, ViewId};
use libcluster::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, info, warn};

impl Shell {
    /// Carries out one action of the core.
    pub(crate) fn execute(&mut self, action: Action) {
        match action {
            Action::Send { to, msg } => self.send(to, &msg),
            Action::ViewInstalled { view, members } => self.on_view(view, members),
            Action::QuorumChanged(s) => {
                let view = self.view_str();
                if s.quorate && !self.quorate {
                    info!(view = %view, quorum = s.quorum, total_votes = s.total_votes,
                          "quorum regained, resuming activity");
                } else if !s.quorate && self.quorate {
                    warn!(view = %view, quorum = s.quorum, total_votes = s.total_votes,
                          "quorum lost, blocking activity");
                }
                self.quorate = s.quorate;
                self.publish(CmanEvent::Quorum {
                    quorate: s.quorate,
                    quorum: s.quorum,
                    total_votes: s.total_votes,
                });
                self.record(Event::Quorum {
                    quorate: s.quorate,
                    quorum: s.quorum,
                    total_votes: s.total_votes,
                });
            }
            Action::GroupView {
                group,
                view,
                seq,
                members,
                joined,
                left,
            } => {
                let ids = |v: Vec<NodeId>| v.into_iter().map(|n| n.0).collect::<Vec<u32>>();
                debug!(view = %view, group = %group, members = ?members, "group view");
                self.publish(CmanEvent::GroupView {
                    group,
                    generation: view.epoch,
                    members: ids(members),
                    joined: ids(joined),
                    left: ids(left),
                    coordinator: view.coordinator.0,
                    coordinator_incarnation: view.incarnation,
                    seq,
                });
            }
            Action::Deliver {
                group,
                view,
                seq,
                from,
                payload,
            } => {
                self.record(Event::Deliver {
                    group: group.clone(),
                    generation: view.epoch,
                    coordinator: view.coordinator.0,
                    seq,
                    from: from.0,
                    crc: crc32fast::hash(&payload),
                });
                self.publish(CmanEvent::Deliver {
                    group,
                    generation: view.epoch,
                    seq,
                    from: from.0,
                    payload,
                });
            }
            Action::Reply { id, result } => self.on_reply(id, result),
            Action::ConfigUpdate { version, text } => self.apply_config(version, text),
            Action::Shutdown { reason } => {
                self.exit = Some(match reason {
                    ShutdownReason::Left => Exit::Left,
                    ShutdownReason::Killed { by, reason } => Exit::Killed { by, reason },
                });
            }
        }
    }

    fn on_reply(&mut self, id: u64, result: Result<(), RequestError>) {
        let Some(p) = self.pending.remove(&id) else {
            warn!(id, "reply to an unknown request");
            return;
        };
        match result {
            Ok(()) => {
                match p.then {
                    AfterOk::Nothing => {}
                    AfterOk::Joined { group, pid } => {
                        if pid != 0 {
                            self.group_owners.insert(group, pid);
                        }
                    }
                    AfterOk::LeftGroup { group } => {
                        self.group_owners.remove(&group);
                    }
                    AfterOk::Leaving => {
                        let grace = LEAVE_GRACE.max(Duration::from_millis(
                            2 * self.core.timing().heartbeat_ms + 500,
                        ));
                        self.grace = Some(Instant::now() + grace);
                    }
                }
                if let Some(tx) = p.reply {
                    let _gone = tx.send(Ok(p.ok));
                }
            }
            Err(e) => {
                if p.reply.is_none() {
                    warn!(request = p.what, error = %e, "request refused by the membership core");
                }
                if let Some(tx) = p.reply {
                    let _gone = tx.send(Err(crate::api::refusal(&e)));
                }
            }
        }
    }

    fn on_view(&mut self, view: ViewId, members: Vec<(NodeId, u64)>) {
        let now = unix_now_s();
        let old: BTreeMap<NodeId, u64> = self.view_members.iter().copied().collect();
        let new: BTreeMap<NodeId, u64> = members.iter().copied().collect();
        self.view = Some(view);
        for (id, inc) in &new {
            if old.get(id) != Some(inc) {
                self.joined_at.insert(*id, now);
                if *id != self.sender.me {
                    info!(view = %view, peer = %self.name_of(*id), incarnation = inc, "node joined");
                }
            }
        }
        for id in old.keys().filter(|id| !new.contains_key(id)) {
            self.joined_at.remove(id);
            info!(view = %view, peer = %self.name_of(*id), "node left");
        }
        let names: Vec<String> = members.iter().map(|(id, _)| self.name_of(*id)).collect();
        info!(view = %view, members = %names.join(" "), "view installed");
        let members_raw: Vec<(u32, u64)> = members.iter().map(|(id, inc)| (id.0, *inc)).collect();
        self.publish(CmanEvent::View {
            generation: view.epoch,
            coordinator: view.coordinator.0,
            members: members_raw.clone(),
        });
        self.record(Event::View {
            generation: view.epoch,
            coordinator: view.coordinator.0,
            members: members_raw,
        });
        self.view_members = members;
    }
}
