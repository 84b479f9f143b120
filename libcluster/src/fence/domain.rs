//! [`Domain`]: membership of the fence domain, victims, start rounds, results, reads.

use super::api::{Action, FenceSettings, Input, NodeEntry};
use super::master::MasterState;
use super::msg::{ChangeId, DomainMsg, StateBody};
use crate::ipc::fence::{FenceHow, FenceRecord};
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// Where this node stands in the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Not a member.
    Out,
    /// Asked to join the group, waiting for the group view that adds us.
    Joining,
    /// A member.
    Member,
    /// Announced a clean leave; waiting for our own announcement, then the group view.
    Leaving,
}

/// The current change's start round.
#[derive(Clone, Debug)]
pub(super) struct Round {
    pub(super) change: ChangeId,
    pub(super) starts: BTreeMap<NodeId, StateBody>,
    /// When we send our start again if the round is still open.
    pub(super) resend_at: Millis,
}

/// A member whose round stays open this long sends its start again (ms). Duplicates are
/// harmless; the resend also makes a member that missed the end of cmand's ordered stream
/// notice the gap (a new ordered entry reveals it) and ask for a retransmission.
pub const ROUND_RESEND_MS: u64 = 3000;

/// A member that holds victims outside a round sends its start for the last change again
/// this often (ms): receivers that completed that change ignore it, and a member that lost
/// the tail of cmand's ordered stream (a result, an acknowledgement) notices the gap.
pub const VICTIM_NUDGE_MS: u64 = 10_000;

/// The fence domain's decision core (one per fenced). See the module documentation.
#[derive(Debug)]
pub struct Domain {
    pub(super) me: NodeId,
    pub(super) nodes: BTreeMap<NodeId, NodeEntry>,
    pub(super) settings: FenceSettings,
    /// cmand's current members and incarnations.
    pub(super) cluster: BTreeMap<NodeId, u64>,
    /// The newest incarnation each node had in any cmand view we saw.
    pub(super) known_inc: BTreeMap<NodeId, u64>,
    pub(super) quorate: bool,
    /// When the last cmand view arrived.
    pub(super) view_at: Millis,
    pub(super) phase: Phase,
    pub(super) members: BTreeSet<NodeId>,
    /// Replicated: pending victims and their incarnation.
    pub(super) victims: BTreeMap<NodeId, u64>,
    /// Replicated: the last fencing of each node.
    pub(super) last: BTreeMap<NodeId, FenceRecord>,
    /// Whether we completed a start round as a member (full state).
    pub(super) complete: bool,
    /// Our start-up victims (dropped if an existing member's state arrives).
    pub(super) initial: BTreeSet<NodeId>,
    /// Members that announced a clean leave.
    pub(super) leaving: BTreeSet<NodeId>,
    /// The start round in progress, `None` when every start of the last change is in.
    pub(super) round: Option<Round>,
    /// The last change we started a round for.
    pub(super) last_change: Option<ChangeId>,
    /// When a member holding victims outside a round sends its start again.
    pub(super) nudge_at: Option<Millis>,
    /// Whether some change since the last completed round added nodes.
    pub(super) added: bool,
    pub(super) master: Option<NodeId>,
    /// Newest incarnation per node for which we emitted [`Action::Fenced`].
    pub(super) announced: BTreeMap<NodeId, u64>,
    pub(super) master_state: MasterState,
    pub(super) unix_s: i64,
}

impl Domain {
    /// A core for node `me` that has not joined the domain yet.
    pub fn new(me: NodeId, nodes: Vec<NodeEntry>, settings: FenceSettings) -> Domain {
        Domain {
            me,
            nodes: nodes.into_iter().map(|n| (n.id, n)).collect(),
            settings,
            cluster: BTreeMap::new(),
            known_inc: BTreeMap::new(),
            quorate: false,
            view_at: Millis(0),
            phase: Phase::Out,
            members: BTreeSet::new(),
            victims: BTreeMap::new(),
            last: BTreeMap::new(),
            complete: false,
            initial: BTreeSet::new(),
            leaving: BTreeSet::new(),
            round: None,
            last_change: None,
            nudge_at: None,
            added: false,
            master: None,
            announced: BTreeMap::new(),
            master_state: MasterState::default(),
            unix_s: 0,
        }
    }

    /// Nodes and settings from cluster.conf (see [`super::settings_from_config`]).
    pub fn settings_from_config(
        conf: &crate::config::ClusterConf,
    ) -> (Vec<NodeEntry>, FenceSettings) {
        super::api::settings_from_config(conf)
    }

    /// Feeds one event; actions are appended to `out`. `unix_s` is the wall clock, used only
    /// to stamp records and log lines.
    pub fn handle(&mut self, now: Millis, unix_s: i64, input: Input, out: &mut Vec<Action>) {
        self.unix_s = unix_s;
        match input {
            Input::Join => {
                if self.phase == Phase::Out {
                    self.phase = Phase::Joining;
                    out.push(Action::JoinGroup);
                }
            }
            Input::Leave => match self.phase {
                Phase::Member => {
                    self.phase = Phase::Leaving;
                    self.send(DomainMsg::Leaving, out);
                }
                Phase::Joining => {
                    self.phase = Phase::Leaving;
                    out.push(Action::LeaveGroup);
                }
                Phase::Out | Phase::Leaving => {}
            },
            Input::ClusterView { members, .. } => {
                self.view_at = now;
                self.cluster = members.iter().copied().collect();
                for (id, inc) in members {
                    let k = self.known_inc.entry(id).or_insert(inc);
                    *k = (*k).max(inc);
                }
            }
            Input::Quorum { quorate } => {
                if quorate != self.quorate {
                    self.quorate = quorate;
                    self.domain_changed(out);
                }
            }
            Input::GroupView {
                generation,
                members,
                joined,
                left,
            } => self.on_group_view(now, generation, members, joined, left, out),
            Input::Deliver { from, payload } => match DomainMsg::decode(from, &payload) {
                Ok(msg) => self.on_msg(now, from, msg, out),
                Err(e) => out.push(Action::Log(format!("ignored: {e}"))),
            },
            Input::FenceDone {
                victim,
                attempt,
                outcome,
            } => self.on_fence_done(now, victim, attempt, outcome, out),
            Input::Acknowledge { node } => {
                if self.is_member() {
                    let time_unix_s = self.unix_s;
                    self.send(
                        DomainMsg::Ack {
                            node: node.0,
                            time_unix_s,
                        },
                        out,
                    );
                } else {
                    out.push(Action::Log(format!(
                        "acknowledgement of {} ignored: not a domain member",
                        self.name(node)
                    )));
                }
            }
            Input::External {
                node,
                method,
                device,
            } => {
                let incarnation = self
                    .victims
                    .get(&node)
                    .copied()
                    .or_else(|| self.known_inc.get(&node).copied())
                    .unwrap_or(0);
                let record = FenceRecord {
                    node: node.0,
                    incarnation,
                    master: self.me.0,
                    how: FenceHow::External,
                    method,
                    device,
                    time_unix_s: self.unix_s,
                };
                if self.is_member() {
                    self.send(DomainMsg::External(record), out);
                } else {
                    self.apply_record(record, out);
                }
            }
            Input::Reconfigure { nodes, settings } => {
                self.nodes = nodes.into_iter().map(|n| (n.id, n)).collect();
                self.settings = settings;
            }
            Input::Tick => self.resend_start(now, out),
        }
        self.drive(now, out);
    }

    pub(super) fn is_member(&self) -> bool {
        matches!(self.phase, Phase::Member | Phase::Leaving)
    }

    pub(super) fn send(&self, msg: DomainMsg, out: &mut Vec<Action>) {
        out.push(Action::Send(msg.encode()));
    }

    pub(super) fn name(&self, id: NodeId) -> String {
        self.nodes
            .get(&id)
            .map_or_else(|| id.to_string(), |n| n.name.clone())
    }

    fn on_group_view(
        &mut self,
        now: Millis,
        generation: u64,
        members: Vec<NodeId>,
        joined: Vec<NodeId>,
        left: Vec<NodeId>,
        out: &mut Vec<Action>,
    ) {
        let sorted = |v: &[NodeId]| -> Vec<u32> {
            let s: BTreeSet<u32> = v.iter().map(|n| n.0).collect();
            s.into_iter().collect()
        };
        let change = ChangeId {
            generation,
            members: sorted(&members),
        };
        match self.phase {
            Phase::Out => return,
            Phase::Joining => {
                if !joined.contains(&self.me) {
                    return;
                }
                self.phase = Phase::Member;
                self.members = members.iter().copied().collect();
                self.start_up_victims(out);
                out.push(Action::Log("joined the fence domain".into()));
                out.push(Action::Joined);
            }
            Phase::Member | Phase::Leaving => {
                if left.contains(&self.me) || !members.contains(&self.me) {
                    self.left_domain(out);
                    return;
                }
                for &l in &left {
                    self.member_left(l, out);
                }
                self.members = members.iter().copied().collect();
            }
        }
        self.added |= !joined.is_empty();
        self.begin_round(now, change, out);
    }

    /// Start-up fencing: configured nodes that are neither cmand nor domain members.
    fn start_up_victims(&mut self, out: &mut Vec<Action>) {
        if self.settings.clean_start {
            return;
        }
        let candidates: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.id != self.me && (n.has_methods || !self.settings.skip_undefined))
            .map(|n| n.id)
            .filter(|id| !self.cluster.contains_key(id) && !self.members.contains(id))
            .collect();
        for id in candidates {
            self.initial.insert(id);
            self.add_victim(id, 0, out);
        }
    }

    /// A member left the group: a clean leave, or a failure.
    fn member_left(&mut self, node: NodeId, out: &mut Vec<Action>) {
        let announced = self.leaving.remove(&node);
        match self.cluster.get(&node).copied() {
            Some(_) if announced => {
                out.push(Action::Log(format!(
                    "{} left the fence domain",
                    self.name(node)
                )));
            }
            Some(inc) => {
                // fenced died while its cmand lives (C3's PROCDOWN).
                out.push(Action::Log(format!(
                    "{} left the fence domain without leaving, killing it",
                    self.name(node)
                )));
                out.push(Action::KillNode { node });
                self.add_victim(node, inc, out);
            }
            None => {
                let inc = self.known_inc.get(&node).copied().unwrap_or(0);
                self.add_victim(node, inc, out);
            }
        }
    }

    /// We are out of the group (left cleanly, or cmand dropped us).
    fn left_domain(&mut self, out: &mut Vec<Action>) {
        self.phase = Phase::Out;
        self.members.clear();
        self.victims.clear();
        self.initial.clear();
        self.leaving.clear();
        self.round = None;
        self.last_change = None;
        self.master = None;
        self.complete = false;
        self.added = false;
        if let Some((victim, attempt)) = self.master_state.abandon() {
            out.push(Action::CancelFence { victim, attempt });
        }
        out.push(Action::Log("left the fence domain".into()));
        out.push(Action::Left);
        self.domain_changed(out);
    }

    pub(super) fn add_victim(&mut self, node: NodeId, inc: u64, out: &mut Vec<Action>) {
        if self.last.get(&node).is_some_and(|r| r.incarnation >= inc) {
            return;
        }
        if self.victims.get(&node).is_some_and(|&v| v >= inc) {
            return;
        }
        self.victims.insert(node, inc);
        out.push(Action::Log(format!(
            "node {} (incarnation {inc}) is a victim",
            self.name(node)
        )));
        out.push(Action::Victim {
            node,
            incarnation: inc,
        });
    }

    pub(super) fn state_body(&self) -> StateBody {
        StateBody {
            complete: self.complete,
            victims: self.victims.iter().map(|(n, i)| (n.0, *i)).collect(),
            last: self.last.values().cloned().collect(),
        }
    }

    fn on_msg(&mut self, now: Millis, from: NodeId, msg: DomainMsg, out: &mut Vec<Action>) {
        if !self.is_member() || !self.members.contains(&from) {
            return;
        }
        match msg {
            DomainMsg::Start { change, state } => {
                if self.last_change.as_ref() != Some(&change) {
                    // A member that went through a cmand view we did not see (it was cut
                    // off alone, inquorate, and merged back) saw a change we did not: with
                    // the same members and a newer generation, we join its round (every
                    // member decides this at the same point of the total order). Anything
                    // else is a start of an earlier change, delivered late.
                    let members: Vec<u32> = self.members.iter().map(|n| n.0).collect();
                    let newer = self
                        .last_change
                        .as_ref()
                        .is_none_or(|c| change.generation > c.generation);
                    if change.members != members || !newer {
                        return;
                    }
                    self.begin_round(now, change, out);
                }
                let Some(round) = self.round.as_mut() else {
                    return;
                };
                round.starts.insert(from, state);
                if self.members.iter().all(|m| round.starts.contains_key(m)) {
                    self.finish_round(now, out);
                }
            }
            DomainMsg::VictimDone(record) => {
                let name = self.name(NodeId(record.node));
                out.push(Action::Log(format!(
                    "fence {name} done by {}: {}",
                    self.name(NodeId(record.master)),
                    record.how.as_str()
                )));
                self.apply_record(record, out);
            }
            DomainMsg::Ack { node, time_unix_s } => {
                let node = NodeId(node);
                let Some(&inc) = self.victims.get(&node) else {
                    out.push(Action::Log(format!(
                        "acknowledgement of {} ignored: not a victim",
                        self.name(node)
                    )));
                    return;
                };
                out.push(Action::Log(format!(
                    "fence {} overridden by administrator intervention",
                    self.name(node)
                )));
                let record = FenceRecord {
                    node: node.0,
                    incarnation: inc,
                    master: from.0,
                    how: FenceHow::Override,
                    method: None,
                    device: None,
                    time_unix_s,
                };
                self.apply_record(record, out);
            }
            DomainMsg::External(record) => {
                out.push(Action::Log(format!(
                    "fence {} done externally by {}",
                    self.name(NodeId(record.node)),
                    self.name(from)
                )));
                self.apply_record(record, out);
            }
            DomainMsg::Leaving => {
                self.leaving.insert(from);
                if from == self.me && self.phase == Phase::Leaving {
                    out.push(Action::LeaveGroup);
                }
            }
        }
    }

    /// Records a completed fencing; drops the victim it covers; announces it once.
    pub(super) fn apply_record(&mut self, record: FenceRecord, out: &mut Vec<Action>) {
        let node = NodeId(record.node);
        let newer = self.last.get(&node).is_none_or(|old| {
            (record.incarnation, record.time_unix_s, record.master)
                > (old.incarnation, old.time_unix_s, old.master)
        });
        let covers_victim = self
            .victims
            .get(&node)
            .is_some_and(|&v| v <= record.incarnation);
        if covers_victim {
            self.victims.remove(&node);
            self.initial.remove(&node);
            if let Some((victim, attempt)) = self.master_state.cancel(node) {
                out.push(Action::CancelFence { victim, attempt });
            }
        }
        if newer {
            self.last.insert(node, record.clone());
        }
        let fresh = self
            .announced
            .get(&node)
            .is_none_or(|&a| a < record.incarnation);
        let external = record.how == FenceHow::External && newer;
        if fresh && (covers_victim || external) {
            self.announced.insert(node, record.incarnation);
            out.push(Action::Fenced(record));
            self.domain_changed(out);
        }
    }

    pub(super) fn domain_changed(&self, out: &mut Vec<Action>) {
        out.push(Action::DomainChanged(self.domain_info()));
    }
}
