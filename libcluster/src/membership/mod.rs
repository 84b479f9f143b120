//! Membership, quorum and ordered group messaging: cmand's protocol core (sans-IO).
//!
//! ```text
//!            heartbeats: rows relayed, heard sets, acks
//!  ┌──────────────┐ connected set ≠ view, stable settle_ms  ┌───────────────┐
//!  │  INSTALLED   │ ─────────────(coordinator)────────────▶ │  PROPOSING    │
//!  │  view V      │ ◀────── all accepted: Commit ────────── │  (epoch+1,me) │
//!  │ (or none yet)│ ◀── nack → backoff / accept timeout ─── └───────────────┘
//!  └──────────────┘        → drop silent members
//!     │   ▲   Propose from the lowest id of my connected set, higher than my promise
//!     ▼   │
//!  ┌──────────────┐  Commit(V') = promise: deliver flush of V, install V', resend unsequenced
//!  │   FROZEN     │  no commit within commit_wait: unfreeze, ignore that commit later
//!  │ (accepted P) │
//!  └──────────────┘
//!  any state ── Kill for this incarnation ──▶ SHUTDOWN      Leave request ──▶ LEAVING ──▶ SHUTDOWN
//! ```
//!
//! What we copy from cman (spec/cman-qdisk.md §1): votes and expected votes with
//! `max(own, peer's)`, the quorum rule and its `allow_decrease` cases
//! ([`crate::quorum::compute`]), two_node, the quorum device polled within
//! `quorum_dev_poll`, `leave remove` lowering expected votes to the node count, `kill`, and
//! the "disallowed" treatment of a node that comes back without restarting (here:
//! expelled, killed with reason Rejoin while quorate; in two_node only the lower id kills).
//! What is ours: the heartbeat/connected-set view protocol and CPG-like ordered groups with
//! virtual synchrony. docs/membership.md states every rule, the timings and the bounds.
//!
//! The core is a deterministic state machine: the shell calls [`Membership::handle`] with
//! the time, an RNG and one [`Input`], carries out the [`Action`]s, and calls again with
//! [`Input::Tick`] at [`Membership::next_deadline`].

mod api;
mod commit;
mod connectivity;
mod groups;
mod msg;
mod nodes;
mod quorum_glue;
mod sim_node;
mod view;

pub use api::{
    Action, ClientRequest, Counters, Input, MembershipConfig, MembershipError, NodeConf, NodeState,
    NodeStatus, QdiskStatus, RequestError, ShutdownReason, Status, Timing, DEFAULT_MAX_QUEUED,
    DEFAULT_TOKEN_MS,
};
pub use connectivity::{connected_set, Graph};
pub use msg::{
    Accept, Body, Commit, Entry, ExpectedVotes, Flush, Heartbeat, KillReason, Msg, MsgError,
    NackReason, Propose, Row, ViewId, MAX_CONFIG_TEXT, MAX_GROUPS_PER_NODE, MAX_GROUP_NAME,
    MAX_NODES, MAX_PAYLOAD, WINDOW_BYTES,
};
pub use sim_node::{Frame, MembershipNode};

use crate::quorum::QuorumState;
use crate::{Millis, NodeId};
use rand::RngCore;
use std::collections::{BTreeMap, BTreeSet};

/// Why a node is ignored at an incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Expelled,
    Left { remove: bool },
    Killed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Excluded {
    incarnation: u64,
    why: Why,
}

#[derive(Clone, Copy, Debug)]
struct Leaving {
    remove: bool,
    until: Millis,
    last_sent: Option<Millis>,
}

/// One node's membership core. See the module documentation.
#[derive(Clone, Debug)]
pub struct Membership {
    me: NodeId,
    inc: u64,
    timing: Timing,
    votes: BTreeMap<NodeId, u32>,
    two_node: bool,
    max_queued: usize,
    qdisk_poll_ms: u64,
    now: Millis,
    started: Option<Millis>,
    dead: bool,
    conn: connectivity::Conn,
    excluded: BTreeMap<NodeId, Excluded>,
    views: view::Views,
    gm: groups::Gm,
    quorum: quorum_glue::Glue,
    config_version: u64,
    config_text: String,
    leaving: Option<Leaving>,
    counters: Counters,
}

impl Membership {
    /// Builds a core from a validated configuration.
    pub fn new(cfg: MembershipConfig) -> Result<Membership, MembershipError> {
        if cfg.nodes.len() > MAX_NODES {
            return Err(MembershipError::TooManyNodes {
                count: cfg.nodes.len(),
            });
        }
        let mut votes = BTreeMap::new();
        for n in &cfg.nodes {
            if n.id.0 == 0 {
                return Err(MembershipError::ReservedNodeId);
            }
            if n.votes > crate::quorum::MAX_NODE_VOTES {
                return Err(MembershipError::TooManyVotes {
                    node: n.id,
                    votes: n.votes,
                });
            }
            if votes.insert(n.id, n.votes).is_some() {
                return Err(MembershipError::DuplicateNode { node: n.id });
            }
        }
        if !votes.contains_key(&cfg.me) {
            return Err(MembershipError::NotConfigured { me: cfg.me });
        }
        if cfg.two_node && (votes.len() != 2 || votes.values().any(|v| *v != 1)) {
            return Err(MembershipError::TwoNode { nodes: votes.len() });
        }
        if cfg.token_ms < 100 {
            return Err(MembershipError::TokenTooShort {
                token_ms: cfg.token_ms,
            });
        }
        if cfg.max_queued == 0 {
            return Err(MembershipError::NoQueue);
        }
        Ok(Membership {
            me: cfg.me,
            inc: cfg.incarnation,
            timing: Timing::from_token(cfg.token_ms),
            votes,
            two_node: cfg.two_node,
            max_queued: cfg.max_queued,
            qdisk_poll_ms: cfg.quorum_dev_poll_ms.max(1),
            now: Millis(0),
            started: None,
            dead: false,
            conn: connectivity::Conn::default(),
            excluded: BTreeMap::new(),
            views: view::Views::default(),
            gm: groups::Gm::default(),
            quorum: quorum_glue::Glue {
                expected: ExpectedVotes {
                    generation: 0,
                    votes: cfg.expected_votes,
                },
                seen_all: false,
                state: None,
                qdisk: None,
            },
            config_version: cfg.config_version,
            config_text: cfg.config_text,
            leaving: None,
            counters: Counters::default(),
        })
    }

    /// Processes one input at time `now`, pushing what must be done onto `out`.
    pub fn handle(
        &mut self,
        now: Millis,
        rng: &mut impl RngCore,
        input: Input,
        out: &mut Vec<Action>,
    ) {
        if self.dead {
            return;
        }
        let rng: &mut dyn RngCore = rng;
        self.now = self.now.max(now);
        self.started.get_or_insert(now);
        match input {
            Input::Tick => {}
            Input::Message {
                from,
                incarnation,
                msg,
            } => self.on_message(from, incarnation, msg, rng, out),
            Input::Request { id, request } => self.on_request(id, request, out),
        }
        if !self.dead {
            self.poll(rng, out);
        }
    }

    fn poll(&mut self, rng: &mut dyn RngCore, out: &mut Vec<Action>) {
        if self.leaving.is_some() {
            self.drive_leave(out);
            return;
        }
        self.expire_rows();
        self.qdisk_expire(out);
        self.drive_views(rng, out);
        // A failed proposal asks for an immediate retry without the silent members.
        if self.views.urgent && self.views.proposal.is_none() && !self.frozen() {
            self.drive_views(rng, out);
        }
        self.gm_pump(out);
        self.beat_if_due(rng, out);
        self.push_config(out);
    }

    fn on_message(
        &mut self,
        from: NodeId,
        inc: u64,
        msg: Msg,
        rng: &mut dyn RngCore,
        out: &mut Vec<Action>,
    ) {
        if from == self.me || !self.votes.contains_key(&from) || msg.validate().is_err() {
            self.counters.dropped += 1;
            return;
        }
        if let Msg::Kill {
            reason,
            target_incarnation,
            quorate,
        } = msg
        {
            self.on_kill(from, reason, target_incarnation, quorate, out);
            return;
        }
        if self.leaving.is_some() {
            return;
        }
        if self.is_excluded(from, inc) {
            self.on_excluded(from, inc, out);
            return;
        }
        if self
            .excluded
            .get(&from)
            .is_some_and(|e| inc > e.incarnation)
        {
            self.excluded.remove(&from); // restarted: a new incarnation joins normally
            self.graph_changed();
        }
        if !self.touch_peer(from, inc) {
            self.counters.dropped += 1;
            return;
        }
        match msg {
            Msg::Heartbeat(hb) => self.on_heartbeat(from, hb, out),
            Msg::Propose(p) => self.on_propose(from, inc, p, out),
            Msg::Accept(a) => self.on_accept(from, inc, a, out),
            Msg::Nack { view, promised, .. } => self.on_nack(view, promised, rng),
            Msg::Commit(c) => self.on_commit(from, c, out),
            Msg::CommitAck { view } => self.on_commit_ack(from, view),
            Msg::Data { view, low, entry } => self.on_data(from, inc, view, low, entry, out),
            Msg::Ordered {
                view,
                seq,
                stable,
                entry,
            } => self.on_ordered(from, view, seq, stable, entry, out),
            Msg::Retransmit { view, from: lo, to } => self.on_retransmit(from, view, lo, to, out),
            Msg::Leave { remove } => self.on_leave(from, inc, remove),
            Msg::ConfigPush { version, text } => self.adopt_config(version, text, out),
            Msg::Kill { .. } => {}
        }
    }

    fn on_request(&mut self, id: u64, request: ClientRequest, out: &mut Vec<Action>) {
        let result = if self.leaving.is_some() {
            Err(RequestError::Leaving)
        } else {
            match request {
                ClientRequest::Leave { remove } => {
                    out.push(Action::Reply { id, result: Ok(()) });
                    self.request_leave(remove, out);
                    return;
                }
                ClientRequest::KillNode(node) => self.request_kill(node, out),
                ClientRequest::QdiskUpdate { name, votes, alive } => {
                    self.on_qdisk_update(name, votes, alive, out);
                    Ok(())
                }
                ClientRequest::SetExpected(votes) => self
                    .check_set_expected(votes)
                    .and_then(|()| self.gm_request(ClientRequest::SetExpected(votes))),
                other => self.gm_request(other),
            }
        };
        out.push(Action::Reply { id, result });
    }

    /// When the core next has timer work; the shell sends [`Input::Tick`] then.
    pub fn next_deadline(&self) -> Millis {
        if self.dead {
            return Millis(u64::MAX);
        }
        if let Some(l) = &self.leaving {
            let next = l
                .last_sent
                .map_or(self.now, |t| t.plus(self.timing.resend_ms));
            return next.min(l.until);
        }
        let d = self
            .conn_deadline()
            .min(self.views_deadline())
            .min(self.gm_deadline())
            .min(self.quorum_deadline());
        // Everything due by `now` was done by the poll that ended the last `handle`; a
        // deadline still in the past waits on a condition, so poll again a little later.
        if d <= self.now {
            self.now.plus(self.timing.resend_ms)
        } else {
            d
        }
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.inc
    }

    /// The installed view and its members.
    pub fn view(&self) -> Option<(ViewId, &[(NodeId, u64)])> {
        self.views
            .installed
            .as_ref()
            .map(|i| (i.view, i.members.as_slice()))
    }

    /// The current quorum state (None before the first view).
    pub fn quorum(&self) -> Option<QuorumState> {
        self.quorum.state
    }

    /// Whether the core asked to shut down and ignores all input.
    pub fn is_shut_down(&self) -> bool {
        self.dead
    }

    /// Nodes this node holds as expelled, with the incarnation expelled.
    pub fn expelled(&self) -> Vec<(NodeId, u64)> {
        self.excluded
            .iter()
            .filter(|(_, e)| matches!(e.why, Why::Expelled))
            .map(|(id, e)| (*id, e.incarnation))
            .collect()
    }

    /// Whether a proposal, an uncommitted accept or an ongoing agreement is in progress.
    pub fn changing_view(&self) -> bool {
        self.views.proposal.is_some() || self.frozen()
    }

    /// Members of `group` in the installed view.
    pub fn group_members(&self, group: &str) -> Vec<NodeId> {
        self.gm
            .groups
            .get(group)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The protocol timers in force.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// A snapshot for `cman_tool status` and `cman_tool nodes`.
    pub fn status(&self) -> Status {
        let members: BTreeSet<NodeId> = self
            .view()
            .map(|(_, m)| m.iter().map(|x| x.0).collect())
            .unwrap_or_default();
        let nodes = self
            .votes
            .iter()
            .map(|(&id, &votes)| {
                let peer = self.conn.peers.get(&id);
                let incarnation = if id == self.me {
                    self.inc
                } else {
                    peer.map_or(0, |p| p.incarnation)
                };
                let state = match self.excluded.get(&id) {
                    Some(e) if e.incarnation >= incarnation => match e.why {
                        // cman's "disallowed" is a node that is back with the incarnation a
                        // quorate view removed; one that stays silent is simply dead.
                        Why::Expelled if self.still_heard(id, e.incarnation) => NodeState::Expelled,
                        Why::Expelled => NodeState::Dead,
                        Why::Left { .. } => NodeState::Left,
                        Why::Killed => NodeState::Killed,
                    },
                    _ if members.contains(&id) => NodeState::Member,
                    _ if id != self.me && self.hears(id, incarnation) => NodeState::Joining,
                    _ if id == self.me => NodeState::Joining,
                    _ => NodeState::Dead,
                };
                NodeStatus {
                    id,
                    votes,
                    incarnation,
                    state,
                }
            })
            .collect();
        Status {
            me: self.me,
            incarnation: self.inc,
            view: self.view().map(|v| v.0),
            members: self.view().map(|v| v.1.to_vec()).unwrap_or_default(),
            quorum: self.quorum.state,
            expected_votes: self.quorum.expected.votes,
            two_node: self.two_node,
            qdisk: self.quorum.qdisk.as_ref().map(|q| QdiskStatus {
                name: q.name.clone(),
                votes: q.votes,
                member: q.member,
            }),
            config_version: self.config_version,
            leaving: self.leaving.is_some(),
            nodes,
            counters: self.counters,
        }
    }
}

#[cfg(test)]
mod tests;
