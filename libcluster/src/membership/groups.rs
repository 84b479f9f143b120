//! Ordered group messaging (CPG-like) within a view, and the flush across views.
//!
//! The view's coordinator is the sequencer. A member's submissions go to it as `Data`
//! (FIFO per origin by `local_id`); it numbers them and sends `Ordered` to every member;
//! members deliver strictly in sequence order, ask for gaps with `Retransmit`, and ack the
//! highest contiguous delivered number in heartbeats. The sequencer keeps entries until
//! every member acked them (stable) and announces the stable point in every `Ordered` and
//! heartbeat. Its window (count `max_queued`, bytes [`WINDOW_BYTES`]) bounds what any
//! member holds unstable, hence the flush carried by Accept and Commit.

use super::api::{Action, ClientRequest, RequestError};
use super::msg::{check_body, Body, Entry, Flush, Msg, ViewId, MAX_GROUPS_PER_NODE, WINDOW_BYTES};
use super::Membership;
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// Most unsequenced submissions sent per poll (the rest follow on later polls).
const SEND_BURST: usize = 32;
/// Most entries resent for one retransmit request.
const RETRANSMIT_BURST: u64 = 32;

#[derive(Clone, Debug, Default)]
pub(super) struct Sequencer {
    pub next_seq: u64,
    pub log: BTreeMap<u64, Entry>,
    pub log_bytes: usize,
    /// Next local id expected from each origin (id, incarnation).
    pub next_local: BTreeMap<(NodeId, u64), u64>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Gm {
    /// Highest contiguous sequence number delivered in the installed view.
    pub delivered: u64,
    /// Highest sequence number every member delivered (as the sequencer announced).
    pub stable: u64,
    /// Highest sequence number known to exist.
    pub high: u64,
    /// Entries received above `stable`.
    pub held: BTreeMap<u64, Entry>,
    pub seqr: Option<Sequencer>,
    pub last_retransmit: Millis,
    /// This node's submissions not yet delivered back: local id → (body, last sent).
    pub pending: BTreeMap<u64, (Body, Option<Millis>)>,
    pub next_local: u64,
    /// Replicated group membership of the installed view.
    pub groups: BTreeMap<String, BTreeSet<NodeId>>,
}

impl Membership {
    pub(super) fn gm_heartbeat_fields(&self) -> (u64, u64, u64) {
        match &self.gm.seqr {
            Some(s) => (
                self.gm.delivered,
                s.next_seq.saturating_sub(1),
                self.gm.stable,
            ),
            None => (self.gm.delivered, 0, 0),
        }
    }

    /// Groups this node is joined to, sorted.
    pub(super) fn my_groups(&self) -> Vec<String> {
        self.gm
            .groups
            .iter()
            .filter(|(_, m)| m.contains(&self.me))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Joined, counting submitted joins and leaves not delivered yet.
    fn will_be_joined(&self, group: &str) -> bool {
        let mut joined = self
            .gm
            .groups
            .get(group)
            .is_some_and(|m| m.contains(&self.me));
        for (body, _) in self.gm.pending.values() {
            match body {
                Body::Join { group: g } if g == group => joined = true,
                Body::Leave { group: g } if g == group => joined = false,
                _ => {}
            }
        }
        joined
    }

    /// Validates and queues a group or ordered-reconfiguration request.
    pub(super) fn gm_request(&mut self, request: ClientRequest) -> Result<(), RequestError> {
        if self.gm.pending.len() >= self.max_queued {
            return Err(RequestError::Busy);
        }
        let body = match request {
            ClientRequest::GroupJoin { group } => {
                if self.will_be_joined(&group) {
                    return Err(RequestError::AlreadyJoined { group });
                }
                let joined = self
                    .gm
                    .groups
                    .keys()
                    .filter(|g| self.will_be_joined(g))
                    .count();
                if joined >= MAX_GROUPS_PER_NODE {
                    return Err(RequestError::TooManyGroups);
                }
                Body::Join { group }
            }
            ClientRequest::GroupLeave { group } => {
                if !self.will_be_joined(&group) {
                    return Err(RequestError::NotJoined { group });
                }
                Body::Leave { group }
            }
            ClientRequest::GroupSend { group, payload } => {
                if !self.will_be_joined(&group) {
                    return Err(RequestError::NotJoined { group });
                }
                Body::Message { group, payload }
            }
            ClientRequest::ConfigUpdate { version, text } => {
                if version <= self.config_version {
                    return Err(RequestError::OldConfig {
                        version,
                        current: self.config_version,
                    });
                }
                Body::Config { version, text }
            }
            ClientRequest::SetExpected(votes) => Body::Expected { votes },
            _ => return Ok(()),
        };
        check_body(&body).map_err(RequestError::Invalid)?;
        self.gm.next_local += 1;
        self.gm.pending.insert(self.gm.next_local, (body, None));
        Ok(())
    }

    fn coordinator(&self) -> Option<(ViewId, NodeId)> {
        self.views
            .installed
            .as_ref()
            .map(|i| (i.view, i.view.coordinator))
    }

    /// Sends (or, as sequencer, orders) pending submissions and asks for gaps.
    pub(super) fn gm_pump(&mut self, out: &mut Vec<Action>) {
        let Some((view, coord)) = self.coordinator() else {
            return;
        };
        if self.frozen() || self.leaving.is_some() {
            return;
        }
        let now = self.now;
        let resend = self.timing.resend_ms;
        if coord == self.me {
            let mine: Vec<(u64, Body)> = self
                .gm
                .pending
                .iter()
                .map(|(id, (b, _))| (*id, b.clone()))
                .collect();
            let low = mine.first().map_or(0, |m| m.0);
            for (local_id, body) in mine {
                let entry = Entry {
                    origin: self.me,
                    origin_inc: self.inc,
                    local_id,
                    body,
                };
                if !self.offer(low, entry, out) {
                    break;
                }
            }
        } else {
            let low = self.gm.pending.keys().next().copied().unwrap_or(0);
            let (me, inc) = (self.me, self.inc);
            let mut sent = 0;
            for (local_id, (body, last)) in self.gm.pending.iter_mut() {
                if sent >= SEND_BURST {
                    break;
                }
                if last.is_some_and(|t| now.since(t) < resend) {
                    continue;
                }
                *last = Some(now);
                sent += 1;
                out.push(Action::Send {
                    to: coord,
                    msg: Msg::Data {
                        view,
                        low,
                        entry: Entry {
                            origin: me,
                            origin_inc: inc,
                            local_id: *local_id,
                            body: body.clone(),
                        },
                    },
                });
            }
            if self.gm.high > self.gm.delivered && now.since(self.gm.last_retransmit) >= resend {
                self.gm.last_retransmit = now;
                out.push(Action::Send {
                    to: coord,
                    msg: Msg::Retransmit {
                        view,
                        from: self.gm.delivered.saturating_add(1),
                        to: self.gm.high,
                    },
                });
            }
        }
    }

    /// Sequencer: orders `entry` if it is the origin's next and the window has room.
    /// Returns false when the entry could not be ordered now.
    fn offer(&mut self, low: u64, entry: Entry, out: &mut Vec<Action>) -> bool {
        let (max_queued, stable) = (self.max_queued as u64, self.gm.stable);
        let Some(s) = &mut self.gm.seqr else {
            return false;
        };
        let key = (entry.origin, entry.origin_inc);
        // `low` is the lowest id the origin still has pending: anything below was delivered
        // to it already (an old view's flush can deliver its later message while an earlier
        // one, held by nobody, is resubmitted here), so the sequencer waits for none of them.
        let next = {
            let n = s.next_local.entry(key).or_insert(low);
            *n = (*n).max(low);
            *n
        };
        if entry.local_id != next {
            return entry.local_id < next; // a duplicate is done; a gap waits for a resend
        }
        let size = entry.body.size();
        let unstable = s.next_seq.saturating_sub(1).saturating_sub(stable);
        if unstable >= max_queued || (!s.log.is_empty() && s.log_bytes + size > WINDOW_BYTES) {
            return false;
        }
        let seq = s.next_seq;
        s.next_seq = s.next_seq.saturating_add(1);
        s.next_local.insert(key, next.saturating_add(1));
        s.log.insert(seq, entry.clone());
        s.log_bytes += size;
        let Some(inst) = &self.views.installed else {
            return false;
        };
        let view = inst.view;
        for &(to, _) in &inst.members {
            if to != self.me {
                out.push(Action::Send {
                    to,
                    msg: Msg::Ordered {
                        view,
                        seq,
                        stable,
                        entry: entry.clone(),
                    },
                });
            }
        }
        self.receive(seq, stable, entry, out);
        true
    }

    pub(super) fn on_data(
        &mut self,
        from: NodeId,
        inc: u64,
        view: ViewId,
        low: u64,
        entry: Entry,
        out: &mut Vec<Action>,
    ) {
        let ok = self.coordinator() == Some((view, self.me))
            && !self.frozen()
            && entry.origin == from
            && entry.origin_inc == inc
            && self.is_member(from, inc);
        if ok {
            self.offer(low, entry, out);
        }
    }

    pub(super) fn on_ordered(
        &mut self,
        from: NodeId,
        view: ViewId,
        seq: u64,
        stable: u64,
        entry: Entry,
        out: &mut Vec<Action>,
    ) {
        if self.coordinator() == Some((view, from)) && !self.frozen() && seq > 0 {
            self.receive(seq, stable, entry, out);
        }
    }

    pub(super) fn on_retransmit(
        &mut self,
        from: NodeId,
        view: ViewId,
        lo: u64,
        hi: u64,
        out: &mut Vec<Action>,
    ) {
        if self.coordinator() != Some((view, self.me)) {
            return;
        }
        let stable = self.gm.stable;
        let Some(s) = &self.gm.seqr else { return };
        let hi = hi.min(lo.saturating_add(RETRANSMIT_BURST - 1));
        for (seq, entry) in s.log.range(lo..=hi) {
            out.push(Action::Send {
                to: from,
                msg: Msg::Ordered {
                    view,
                    seq: *seq,
                    stable,
                    entry: entry.clone(),
                },
            });
        }
    }

    fn receive(&mut self, seq: u64, stable: u64, entry: Entry, out: &mut Vec<Action>) {
        self.gm.high = self.gm.high.max(seq);
        self.gm.stable = self.gm.stable.max(stable.min(self.gm.delivered));
        if seq > self.gm.delivered {
            self.gm.held.entry(seq).or_insert(entry);
        }
        let Some(view) = self.views.installed.as_ref().map(|i| i.view) else {
            return;
        };
        while let Some(next) = self.gm.delivered.checked_add(1) {
            let Some(e) = self.gm.held.get(&next).cloned() else {
                break;
            };
            self.gm.delivered = next;
            self.deliver(view, next, e, out);
        }
        self.gc_held();
    }

    fn gc_held(&mut self) {
        let keep_from = self.gm.stable.min(self.gm.delivered).saturating_add(1);
        self.gm.held = self.gm.held.split_off(&keep_from);
    }

    /// A member's heartbeat may advance the stable point (sequencer only).
    pub(super) fn gm_on_peer_progress(&mut self, from: NodeId) {
        let Some(inst) = &self.views.installed else {
            return;
        };
        // The sequencer's heartbeat says how far it ordered: a member that lost the last
        // entries of a burst learns of the gap here and asks for it, instead of waiting for
        // the next entry to be ordered.
        if from == inst.view.coordinator && from != self.me {
            if let Some(p) = self.conn.peers.get(&from) {
                if p.view == Some(inst.view) {
                    self.gm.high = self.gm.high.max(p.high);
                }
            }
        }
        if inst.view.coordinator != self.me || self.gm.seqr.is_none() {
            return;
        }
        let mut stable = self.gm.delivered;
        for &(id, _) in &inst.members {
            if id == self.me {
                continue;
            }
            let ack = match self.conn.peers.get(&id) {
                Some(p) if p.view == Some(inst.view) => p.ack,
                _ => 0,
            };
            stable = stable.min(ack);
        }
        if stable > self.gm.stable {
            self.gm.stable = stable;
            if let Some(s) = &mut self.gm.seqr {
                let rest = s.log.split_off(&stable.saturating_add(1));
                for e in s.log.values() {
                    s.log_bytes = s.log_bytes.saturating_sub(e.body.size());
                }
                s.log = rest;
            }
            self.gc_held();
        }
    }

    /// Applies one ordered entry.
    fn deliver(&mut self, view: ViewId, seq: u64, e: Entry, out: &mut Vec<Action>) {
        self.counters.delivered += 1;
        if e.origin == self.me && e.origin_inc == self.inc {
            self.gm.pending.remove(&e.local_id);
        }
        match e.body {
            Body::Join { group } => {
                let set = self.gm.groups.entry(group.clone()).or_default();
                if set.insert(e.origin) && set.contains(&self.me) {
                    let members = set.iter().copied().collect();
                    out.push(Action::GroupView {
                        group,
                        view,
                        seq,
                        members,
                        joined: vec![e.origin],
                        left: Vec::new(),
                    });
                }
            }
            Body::Leave { group } => {
                let Some(set) = self.gm.groups.get_mut(&group) else {
                    return;
                };
                if set.remove(&e.origin) && (e.origin == self.me || set.contains(&self.me)) {
                    let members = set.iter().copied().collect();
                    out.push(Action::GroupView {
                        group: group.clone(),
                        view,
                        seq,
                        members,
                        joined: Vec::new(),
                        left: vec![e.origin],
                    });
                }
                if set.is_empty() {
                    self.gm.groups.remove(&group);
                }
            }
            Body::Message { group, payload } => {
                if self
                    .gm
                    .groups
                    .get(&group)
                    .is_some_and(|m| m.contains(&self.me))
                {
                    out.push(Action::Deliver {
                        group,
                        view,
                        seq,
                        from: e.origin,
                        payload,
                    });
                }
            }
            Body::Expected { votes } => self.apply_expected(votes, out),
            Body::Config { version, text } => self.adopt_config(version, text, out),
        }
    }

    /// Delivers what the commit says the old view delivered, in order, before the install.
    pub(super) fn gm_flush(&mut self, f: Flush, out: &mut Vec<Action>) {
        let mut extra: BTreeMap<u64, Entry> = f.entries.into_iter().collect();
        for seq in f.seqs {
            if seq <= self.gm.delivered {
                continue;
            }
            let e = self.gm.held.remove(&seq).or_else(|| extra.remove(&seq));
            if let Some(e) = e {
                self.gm.delivered = seq;
                self.deliver(f.old_view, seq, e, out);
            }
        }
    }

    /// Starts the new view's messaging: group table, GroupView events, fresh sequence.
    pub(super) fn gm_install(
        &mut self,
        view: ViewId,
        members: &[(NodeId, u64)],
        groups: Vec<(String, Vec<NodeId>)>,
        out: &mut Vec<Action>,
    ) {
        let old = std::mem::take(&mut self.gm.groups);
        let new: BTreeMap<String, BTreeSet<NodeId>> = groups
            .into_iter()
            .map(|(g, m)| (g, m.into_iter().collect()))
            .collect();
        let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let empty = BTreeSet::new();
        for g in names {
            let (was, now) = (old.get(g).unwrap_or(&empty), new.get(g).unwrap_or(&empty));
            if was != now && (was.contains(&self.me) || now.contains(&self.me)) {
                out.push(Action::GroupView {
                    group: g.clone(),
                    view,
                    seq: 0,
                    members: now.iter().copied().collect(),
                    joined: now.difference(was).copied().collect(),
                    left: was.difference(now).copied().collect(),
                });
            }
        }
        self.gm.groups = new;
        self.gm.delivered = 0;
        self.gm.stable = 0;
        self.gm.high = 0;
        self.gm.held.clear();
        self.gm.seqr = (view.coordinator == self.me).then(|| Sequencer {
            next_seq: 1,
            ..Sequencer::default()
        });
        for (_, last) in self.gm.pending.values_mut() {
            *last = None;
        }
        let _ = members;
        self.gm_pump(out);
    }

    pub(super) fn gm_deadline(&self) -> Millis {
        let mut d = Millis(u64::MAX);
        let Some((_, coord)) = self.coordinator() else {
            return d;
        };
        if self.frozen() || coord == self.me {
            return d; // the sequencer orders its own on heartbeats; frozen waits for the view
        }
        let resend = self.timing.resend_ms;
        for (_, last) in self.gm.pending.values() {
            d = d.min(last.map_or(self.now, |t| t.plus(resend)));
        }
        if self.gm.high > self.gm.delivered {
            d = d.min(self.gm.last_retransmit.plus(resend));
        }
        d
    }
}
