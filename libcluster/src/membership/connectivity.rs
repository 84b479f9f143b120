//! Heartbeats, heard sets and the connectivity graph.
//!
//! Every node sends a [`Heartbeat`] to every configured node each heartbeat interval. It
//! carries the sender's row (the nodes it heard within the token) and relays the freshest
//! rows it holds of others, so every node of a connected set works from the same graph.
//! An edge a–b exists iff a's row lists b and b's row lists a (at their current
//! incarnations). [`connected_set`] then picks, deterministically, the fully connected set a
//! node belongs to; its lowest id is that set's coordinator.

use super::api::Action;
use super::msg::{Heartbeat, Msg, Row, ViewId};
use super::Membership;
use crate::{Millis, NodeId};
use rand::RngCore;
use std::collections::{BTreeMap, BTreeSet};

/// The connectivity graph: each node's incarnation and heard list (sorted by id).
pub type Graph = BTreeMap<NodeId, (u64, Vec<(NodeId, u64)>)>;

/// Nodes with incarnations, sorted by id.
type Members = Vec<(NodeId, u64)>;

/// What this node knows of a peer it has heard.
#[derive(Clone, Debug)]
pub(super) struct Peer {
    pub incarnation: u64,
    pub last_heard: Millis,
    pub hb_seq: u64,
    /// Installed view of its last heartbeat, and when that heartbeat arrived.
    pub view: Option<ViewId>,
    pub hb_at: Millis,
    pub ack: u64,
    pub high: u64,
    pub stable: u64,
    pub config_version: u64,
    pub expected_votes: u32,
    pub last_kill: Option<Millis>,
    pub last_push: Option<Millis>,
}

impl Peer {
    fn new(incarnation: u64, now: Millis) -> Peer {
        Peer {
            incarnation,
            last_heard: now,
            hb_seq: 0,
            view: None,
            hb_at: now,
            ack: 0,
            high: 0,
            stable: 0,
            config_version: 0,
            expected_votes: 0,
            last_kill: None,
            last_push: None,
        }
    }
}

/// Heartbeat and graph state.
#[derive(Clone, Debug, Default)]
pub(super) struct Conn {
    pub peers: BTreeMap<NodeId, Peer>,
    /// Freshest row of each other node, with the local time it last got newer.
    pub rows: BTreeMap<NodeId, (Row, Millis)>,
    pub seq: u64,
    pub next_beat: Millis,
    /// Cached result of [`connected_set`] and the heard set it was computed with.
    cache: Option<(Members, Members)>,
    dirty: bool,
}

/// The fully connected set containing `me`, sorted by id.
///
/// `graph` maps each node to its incarnation and its heard list (sorted). Nodes are
/// first restricted to `me`'s component of the mutual graph; the component is then cut
/// into cliques greedily: repeatedly drop the node with the fewest mutual edges within
/// the remaining set until the set is a clique (ties: the newest incarnation first, then
/// the highest id — incarnations grow with start time, so when a node restarts and some
/// members hear it before others, the newcomer waits, not an established member, which
/// a quorate view would otherwise expel and kill); if that clique does not
/// contain `me`, remove it from the component and repeat on the rest. Every node of the
/// result computes the same result from the same graph.
pub fn connected_set(me: NodeId, graph: &Graph) -> Vec<(NodeId, u64)> {
    let Some(&(my_inc, _)) = graph.get(&me) else {
        return Vec::new();
    };
    let mutual = |a: NodeId, b: NodeId| -> bool {
        match (graph.get(&a), graph.get(&b)) {
            (Some((ia, ha)), Some((ib, hb))) => {
                a != b && ha.binary_search(&(b, *ib)).is_ok() && hb.binary_search(&(a, *ia)).is_ok()
            }
            _ => false,
        }
    };
    let mut adj: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
    for (&a, (_, heard)) in graph {
        let set = heard
            .iter()
            .map(|&(b, _)| b)
            .filter(|&b| mutual(a, b))
            .collect();
        adj.insert(a, set);
    }
    // Component of `me`.
    let mut rest: BTreeSet<NodeId> = BTreeSet::from([me]);
    let mut todo = vec![me];
    while let Some(v) = todo.pop() {
        for &w in adj.get(&v).into_iter().flatten() {
            if rest.insert(w) {
                todo.push(w);
            }
        }
    }
    loop {
        let clique = greedy_clique(&adj, &rest, |v| graph.get(&v).map_or(0, |(inc, _)| *inc));
        if clique.contains(&me) || clique.is_empty() {
            let mut out: Vec<(NodeId, u64)> = clique
                .iter()
                .filter_map(|id| graph.get(id).map(|(inc, _)| (*id, *inc)))
                .collect();
            if out.is_empty() {
                out.push((me, my_inc));
            }
            return out;
        }
        for v in &clique {
            rest.remove(v);
        }
    }
}

fn greedy_clique(
    adj: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    set: &BTreeSet<NodeId>,
    incarnation: impl Fn(NodeId) -> u64,
) -> BTreeSet<NodeId> {
    let mut s = set.clone();
    loop {
        let n = s.len();
        // The node to drop: fewest edges, then newest incarnation, then highest id.
        let worst = s
            .iter()
            .map(|&v| {
                let deg = adj.get(&v).map_or(0, |a| a.intersection(&s).count());
                (
                    deg,
                    std::cmp::Reverse(incarnation(v)),
                    std::cmp::Reverse(v),
                    v,
                )
            })
            .min()
            .map(|(deg, _, _, v)| (deg, v));
        match worst {
            Some((deg, v)) if deg + 1 < n => {
                s.remove(&v);
            }
            _ => return s,
        }
    }
}

impl Membership {
    /// Nodes heard within the token (not excluded), with incarnations, sorted.
    pub(super) fn heard(&self) -> Vec<(NodeId, u64)> {
        let token = self.timing.token_ms;
        self.conn
            .peers
            .iter()
            .filter(|(id, p)| {
                self.now.since(p.last_heard) < token && !self.is_excluded(**id, p.incarnation)
            })
            .map(|(id, p)| (*id, p.incarnation))
            .collect()
    }

    /// Whether `id` is currently heard at incarnation `inc`.
    pub(super) fn hears(&self, id: NodeId, inc: u64) -> bool {
        self.conn.peers.get(&id).is_some_and(|p| {
            p.incarnation == inc
                && self.now.since(p.last_heard) < self.timing.token_ms
                && !self.is_excluded(id, inc)
        })
    }

    /// This node's fully connected set (cached until rows or the heard set change).
    pub(super) fn clique(&mut self) -> Vec<(NodeId, u64)> {
        let heard = self.heard();
        if !self.conn.dirty {
            if let Some((h, c)) = &self.conn.cache {
                if *h == heard {
                    return c.clone();
                }
            }
        }
        let mut graph = Graph::new();
        for (id, (row, _)) in &self.conn.rows {
            if !self.is_excluded(*id, row.incarnation) {
                graph.insert(*id, (row.incarnation, row.heard.clone()));
            }
        }
        graph.insert(self.me, (self.inc, heard.clone()));
        let c = connected_set(self.me, &graph);
        self.conn.cache = Some((heard, c.clone()));
        self.conn.dirty = false;
        c
    }

    pub(super) fn graph_changed(&mut self) {
        self.conn.dirty = true;
    }

    fn make_heartbeat(&mut self) -> Heartbeat {
        self.conn.seq += 1;
        let mut rows = Vec::with_capacity(self.conn.rows.len() + 1);
        rows.push(Row {
            node: self.me,
            incarnation: self.inc,
            seq: self.conn.seq,
            heard: self.heard(),
        });
        rows.extend(self.conn.rows.values().map(|(r, _)| r.clone()));
        let (ack, high, stable) = self.gm_heartbeat_fields();
        Heartbeat {
            seq: self.conn.seq,
            view: self.views.installed.as_ref().map(|i| i.view),
            ack,
            high,
            stable,
            expected: self.quorum.expected,
            config_version: self.config_version,
            rows,
        }
    }

    /// Sends a heartbeat to every configured node when one is due.
    pub(super) fn beat_if_due(&mut self, rng: &mut dyn RngCore, out: &mut Vec<Action>) {
        if self.now < self.conn.next_beat {
            return;
        }
        let hb = self.make_heartbeat();
        for &to in self.votes.keys() {
            if to != self.me {
                out.push(Action::Send {
                    to,
                    msg: Msg::Heartbeat(hb.clone()),
                });
            }
        }
        let period = self.timing.heartbeat_ms;
        let early = rng.next_u64() % (period / 5 + 1);
        self.conn.next_beat = self.now.plus(period - early);
    }

    /// Records that `from` (at `inc`) is alive; returns false for a stale incarnation.
    pub(super) fn touch_peer(&mut self, from: NodeId, inc: u64) -> bool {
        let now = self.now;
        match self.conn.peers.get_mut(&from) {
            Some(p) if inc < p.incarnation => return false,
            Some(p) if inc == p.incarnation => {
                let was_heard = now.since(p.last_heard) < self.timing.token_ms;
                p.last_heard = now;
                if !was_heard {
                    self.conn.dirty = true;
                }
            }
            _ => {
                // New node or a restarted one: forget what the old incarnation said.
                self.conn.peers.insert(from, Peer::new(inc, now));
                if self
                    .conn
                    .rows
                    .get(&from)
                    .is_some_and(|(r, _)| r.incarnation < inc)
                {
                    self.conn.rows.remove(&from);
                }
                self.conn.dirty = true;
            }
        }
        true
    }

    /// A heartbeat from `from` (already touched).
    pub(super) fn on_heartbeat(&mut self, from: NodeId, hb: Heartbeat, out: &mut Vec<Action>) {
        let now = self.now;
        let first_contact;
        {
            let Some(p) = self.conn.peers.get_mut(&from) else {
                return;
            };
            if hb.seq <= p.hb_seq {
                return; // duplicate or reordered
            }
            first_contact = p.hb_seq == 0;
            p.hb_seq = hb.seq;
            p.view = hb.view;
            p.hb_at = now;
            p.ack = hb.ack;
            p.high = hb.high;
            p.stable = hb.stable;
            p.config_version = hb.config_version;
            p.expected_votes = hb.expected.votes;
        }
        if let Some(v) = hb.view {
            self.views.max_epoch = self.views.max_epoch.max(v.epoch);
        }
        for row in hb.rows {
            self.merge_row(row);
        }
        self.gm_on_peer_progress(from);
        if first_contact {
            // Answer at once so the new edge forms without waiting a full period.
            let reply = self.make_heartbeat();
            out.push(Action::Send {
                to: from,
                msg: Msg::Heartbeat(reply),
            });
        }
    }

    fn merge_row(&mut self, mut row: Row) {
        if row.node == self.me
            || !self.votes.contains_key(&row.node)
            || self.is_excluded(row.node, row.incarnation)
        {
            return;
        }
        if let Some(p) = self.conn.peers.get(&row.node) {
            if row.incarnation < p.incarnation {
                return;
            }
        }
        let newer = self
            .conn
            .rows
            .get(&row.node)
            .is_none_or(|(old, _)| (row.incarnation, row.seq) > (old.incarnation, old.seq));
        if !newer {
            return;
        }
        row.heard.sort_unstable();
        row.heard.dedup();
        let changed =
            self.conn.rows.get(&row.node).is_none_or(|(old, _)| {
                old.incarnation != row.incarnation || old.heard != row.heard
            });
        self.conn.rows.insert(row.node, (row, self.now));
        if changed {
            self.conn.dirty = true;
        }
    }

    /// Forgets rows not refreshed within the row expiry.
    pub(super) fn expire_rows(&mut self) {
        let (now, expiry) = (self.now, self.timing.row_expiry_ms);
        let before = self.conn.rows.len();
        self.conn.rows.retain(|_, (_, at)| now.since(*at) < expiry);
        if self.conn.rows.len() != before {
            self.conn.dirty = true;
        }
    }

    /// Earliest time the heard set or the rows change by the clock alone.
    pub(super) fn conn_deadline(&self) -> Millis {
        let token = self.timing.token_ms;
        let mut d = self.conn.next_beat;
        for p in self.conn.peers.values() {
            let expiry = p.last_heard.plus(token);
            if expiry > self.now {
                d = d.min(expiry);
            }
        }
        for (_, at) in self.conn.rows.values() {
            d = d.min(at.plus(self.timing.row_expiry_ms));
        }
        d
    }
}
