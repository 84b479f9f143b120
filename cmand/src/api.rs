//! The local API: `CmanRequest`s from cman_tool, ccs_tool, qdiskd, fenced and rgmanagerd,
//! mapped onto the core's `ClientRequest`s, and the status and node snapshots.
//!
//! | request | what happens | response |
//! |---|---|---|
//! | `Status`, `Nodes` | answered from `core.status()` and the shell's names, addresses, join times | `Status`, `Nodes` |
//! | `Leave{remove, force}` | refused (`IN_USE`) while live local clients hold groups, unless `force`; else `Leave{remove}`, exit when done | `Done` |
//! | `Kill{node}` | name (case-insensitive) or decimal id; unknown: `NO_SUCH_NODE` | `Done` |
//! | `SetExpected{votes}` | `SetExpected`, applied in order by every member | `Done` |
//! | `QdiskUpdate{..}` | `QdiskUpdate` | `Done` |
//! | `GroupJoin/Leave/Send` | the same core request; the joining process is remembered | `Done` |
//! | `ConfigUpdate{text}`, `ReloadConfig` | see `reconfig` | `ConfigVersion(v)` |

use crate::shell::{pid_alive, AfterOk, ReplyTx, Shell};
use clusterio::Incoming;
use cmand::codes;
use libcluster::ipc::cman::{
    CmanNode, CmanRequest, CmanResponse, CmanStatus, MembershipState, NodeState,
};
use libcluster::ipc::ErrorReply;
use libcluster::membership::{self, ClientRequest, RequestError};
use libcluster::quorum;
use libcluster::NodeId;

/// The error reply for a request the core refused.
pub fn refusal(e: &RequestError) -> ErrorReply {
    let code = match e {
        RequestError::Busy => codes::IN_USE,
        RequestError::NotMember => codes::NOT_MEMBER,
        RequestError::Leaving => codes::LEAVING,
        RequestError::OldConfig { .. } => codes::CONFIG_NOT_NEWER,
        RequestError::NotJoined { .. }
        | RequestError::AlreadyJoined { .. }
        | RequestError::TooManyGroups => codes::GROUP,
        RequestError::Invalid(_)
        | RequestError::UnknownNode { .. }
        | RequestError::Expected(_)
        | RequestError::ExpelledPresent => codes::INVALID,
    };
    ErrorReply::new(code, e.to_string())
}

impl Shell {
    /// Handles one permitted request from the IPC server.
    pub(crate) fn on_ipc(&mut self, inc: Incoming<CmanRequest, CmanResponse>) {
        let Incoming {
            peer,
            request,
            reply,
        } = inc;
        let done = CmanResponse::Done;
        match request {
            CmanRequest::Status => answer(reply, Ok(CmanResponse::Status(Box::new(self.status())))),
            CmanRequest::Nodes => answer(reply, Ok(CmanResponse::Nodes(self.nodes_list()))),
            CmanRequest::Leave { remove, force } => {
                self.drop_dead_group_owners();
                if !force && !self.group_owners.is_empty() {
                    let held: Vec<String> = self
                        .group_owners
                        .iter()
                        .map(|(g, pid)| format!("{g} (pid {pid})"))
                        .collect();
                    let msg = format!(
                        "local clients hold groups: {}; stop them first or use force",
                        held.join(", ")
                    );
                    return answer(reply, Err(ErrorReply::new(codes::IN_USE, msg)));
                }
                tracing::info!(remove, force, pid = peer.pid, "leave requested");
                let request = ClientRequest::Leave { remove };
                self.submit(request, Some(reply), done, AfterOk::Leaving, "leave");
            }
            CmanRequest::Kill { node } => match self.node_by_name_or_id(&node) {
                Some(id) => {
                    tracing::info!(view = %self.view_str(), target = %self.name_of(id), pid = peer.pid, "killing node on request");
                    let request = ClientRequest::KillNode(id);
                    self.submit(request, Some(reply), done, AfterOk::Nothing, "kill");
                }
                None => answer(
                    reply,
                    Err(ErrorReply::new(
                        codes::NO_SUCH_NODE,
                        format!("no node called {node} in the configuration"),
                    )),
                ),
            },
            CmanRequest::SetExpected { votes } => {
                let request = ClientRequest::SetExpected(votes);
                self.submit(request, Some(reply), done, AfterOk::Nothing, "expected");
            }
            CmanRequest::QdiskUpdate { name, votes, alive } => {
                let was_member = self.core.status().qdisk.is_some_and(|q| q.member);
                if peer.pid != 0 {
                    self.qdisk_pid = Some(peer.pid);
                }
                let request = ClientRequest::QdiskUpdate { name, votes, alive };
                self.submit(request, Some(reply), done, AfterOk::Nothing, "qdisk");
                let member = self.core.status().qdisk.is_some_and(|q| q.member);
                if member && !was_member {
                    self.qdisk_joined = Some(crate::shell::unix_now_s());
                } else if !member {
                    self.qdisk_joined = None;
                }
            }
            CmanRequest::GroupJoin { group } => {
                // A client that died holding the group: leave for it first (FIFO per node, so
                // the leave is ordered before the join).
                if self
                    .group_owners
                    .get(&group)
                    .is_some_and(|p| !pid_alive(*p))
                {
                    self.drop_dead_group_owners();
                }
                let then = AfterOk::Joined {
                    group: group.clone(),
                    pid: peer.pid,
                };
                self.submit(
                    ClientRequest::GroupJoin { group },
                    Some(reply),
                    done,
                    then,
                    "join",
                );
            }
            CmanRequest::GroupLeave { group } => {
                let then = AfterOk::LeftGroup {
                    group: group.clone(),
                };
                let request = ClientRequest::GroupLeave { group };
                self.submit(request, Some(reply), done, then, "group leave");
            }
            CmanRequest::GroupSend { group, payload } => {
                let request = ClientRequest::GroupSend { group, payload };
                self.submit(request, Some(reply), done, AfterOk::Nothing, "send");
            }
            CmanRequest::ConfigUpdate { text } => self.update_config(text, reply),
            CmanRequest::ReloadConfig => self.reload_config(reply),
        }
    }

    /// A configured node by name (case-insensitive) or decimal id.
    pub(crate) fn node_by_name_or_id(&self, node: &str) -> Option<NodeId> {
        let by_name = self
            .nodes
            .iter()
            .find(|(_, n)| n.name.eq_ignore_ascii_case(node))
            .map(|(id, _)| *id);
        by_name.or_else(|| {
            let id = NodeId(node.trim().parse::<u32>().ok()?);
            self.nodes.contains_key(&id).then_some(id)
        })
    }

    /// The `cman_tool status` snapshot.
    pub(crate) fn status(&self) -> CmanStatus {
        let s = self.core.status();
        let me = self.sender.me;
        let state = if s.leaving {
            MembershipState::Leaving
        } else if self.core.is_shut_down() {
            MembershipState::NotInCluster
        } else if s.members.iter().any(|(id, _)| *id == me) {
            MembershipState::ClusterMember
        } else {
            MembershipState::Joining
        };
        let expected = s.quorum.map_or(s.expected_votes, |q| q.expected_votes);
        let quorum_needed = s.quorum.map_or_else(
            || {
                if s.two_node {
                    1
                } else {
                    quorum::majority(expected)
                }
            },
            |q| q.quorum,
        );
        let disallowed = s
            .nodes
            .iter()
            .filter(|n| n.state == membership::NodeState::Expelled && self.is_disallowed(n.id))
            .map(|n| self.name_of(n.id))
            .collect();
        let mut counters = self.counters.clone();
        let c = s.counters;
        for (name, v) in [
            ("views_installed", c.views_installed),
            ("proposals", c.proposals),
            ("proposals_failed", c.proposals_failed),
            ("delivered", c.delivered),
            ("core_dropped", c.dropped),
            ("kills_sent", c.kills_sent),
        ] {
            counters.insert(name.to_string(), v);
        }
        let my_votes = s.nodes.iter().find(|n| n.id == me).map_or(0, |n| n.votes);
        CmanStatus {
            config_version: s.config_version,
            cluster_name: self.conf.name.clone(),
            cluster_id: self.sender.cluster_id,
            state,
            generation: s.view.map_or(0, |v| v.epoch),
            coordinator: s.view.map(|v| v.coordinator.0),
            members: s.members.iter().map(|(id, _)| id.0).collect(),
            expected_votes: expected,
            qdisk_votes: s.qdisk.as_ref().filter(|q| q.member).map(|q| q.votes),
            total_votes: s.quorum.map_or(0, |q| q.total_votes),
            node_votes: my_votes,
            quorum: quorum_needed,
            quorate: s.quorum.is_some_and(|q| q.quorate),
            active_subsystems: self.active_subsystems(),
            two_node: s.two_node,
            disallowed,
            node_name: self.me_name.clone(),
            node_id: me.0,
            incarnation: self.sender.incarnation,
            // Heartbeats are unicast to each node: no multicast address is in use.
            multicast_addresses: Vec::new(),
            node_addresses: self.addresses_of(me),
            uptime_s: self.started.elapsed().as_secs(),
            counters,
        }
    }

    fn addresses_of(&self, id: NodeId) -> Vec<String> {
        self.nodes
            .get(&id)
            .and_then(|n| n.addr)
            .map(|a| vec![a.ip().to_string()])
            .unwrap_or_default()
    }

    /// The `cman_tool nodes` rows: the quorum device first (id 0) when registered, then
    /// every configured node by id.
    pub(crate) fn nodes_list(&self) -> Vec<CmanNode> {
        let s = self.core.status();
        let expected = s.quorum.map_or(s.expected_votes, |q| q.expected_votes);
        let mut rows = Vec::with_capacity(s.nodes.len() + 1);
        if let Some(q) = &s.qdisk {
            rows.push(CmanNode {
                id: 0,
                name: q.name.clone(),
                state: if q.member {
                    NodeState::Member
                } else {
                    NodeState::Dead
                },
                incarnation: 0,
                joined_unix_s: self.qdisk_joined.filter(|_| q.member),
                votes: q.votes,
                expected_votes: expected,
                addresses: Vec::new(),
            });
        }
        for n in &s.nodes {
            let state = match n.state {
                _ if n.id == self.sender.me && s.leaving => NodeState::Leaving,
                membership::NodeState::Member => NodeState::Member,
                membership::NodeState::Joining => NodeState::Joining,
                membership::NodeState::Dead | membership::NodeState::Killed => NodeState::Dead,
                membership::NodeState::Expelled if self.is_disallowed(n.id) => {
                    NodeState::Disallowed
                }
                membership::NodeState::Expelled => NodeState::Dead,
                membership::NodeState::Left => NodeState::Leaving,
            };
            let joined = if state == NodeState::Member {
                self.joined_at.get(&n.id).copied()
            } else {
                None
            };
            rows.push(CmanNode {
                id: n.id.0,
                name: self.name_of(n.id),
                state,
                incarnation: n.incarnation,
                joined_unix_s: joined,
                votes: n.votes,
                expected_votes: expected,
                addresses: self.addresses_of(n.id),
            });
        }
        rows
    }
}

/// Sends an immediate answer. A client that went away meanwhile is not an error.
pub(crate) fn answer(reply: ReplyTx, result: Result<CmanResponse, ErrorReply>) {
    let _client_gone = reply.send(result);
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcluster::membership::MsgError;
    use libcluster::quorum::ExpectedError;

    #[test]
    fn core_refusals_map_to_cmand_codes_with_the_core_message() {
        let cases = [
            (RequestError::Busy, codes::IN_USE),
            (RequestError::NotMember, codes::NOT_MEMBER),
            (RequestError::Leaving, codes::LEAVING),
            (
                RequestError::OldConfig {
                    version: 1,
                    current: 2,
                },
                codes::CONFIG_NOT_NEWER,
            ),
            (RequestError::NotJoined { group: "g".into() }, codes::GROUP),
            (RequestError::Invalid(MsgError::EmptyGroup), codes::INVALID),
            (
                RequestError::UnknownNode { node: NodeId(4) },
                codes::INVALID,
            ),
            (RequestError::ExpelledPresent, codes::INVALID),
            (
                RequestError::Expected(ExpectedError::OutOfRange {
                    requested: 1,
                    quorum: 1,
                    total_votes: 3,
                }),
                codes::INVALID,
            ),
        ];
        for (e, code) in cases {
            let r = refusal(&e);
            assert_eq!(r.code, code, "{e:?}");
            assert_eq!(r.message, e.to_string());
        }
    }
}
