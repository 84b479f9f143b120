//! Building the Commit: expected votes, expulsions, the flush of each old view and the
//! new group table, all computed by the coordinator from the accepts (docs/membership.md
//! §4, §5, §7).

use super::msg::{Body, Commit, Entry, ExpectedVotes, Flush, ViewId};
use super::view::Proposal;
use super::Membership;
use crate::NodeId;
use std::collections::{BTreeMap, BTreeSet};

impl Membership {
    /// Builds each member's Commit from the accepts (a pure function of the proposal).
    pub(super) fn build_commits(&self, prop: &Proposal) -> BTreeMap<NodeId, Commit> {
        let members = &prop.members;
        let accepts = &prop.accepts;
        let mut expected = accepts
            .values()
            .map(|a| a.expected)
            .max()
            .unwrap_or(self.quorum.expected);
        let remove_done = accepts.values().any(|a| {
            a.removed
                .iter()
                .any(|r| a.old_members.contains(r) && !members.contains(r))
        });
        if remove_done {
            expected = ExpectedVotes {
                generation: expected.generation.saturating_add(1),
                votes: crate::quorum::expected_after_remove(members.len()),
            };
        }
        // Expulsions: known ones, plus nodes of an old view left out, if the new view is quorate.
        let mut expelled: BTreeMap<NodeId, u64> = BTreeMap::new();
        let mut note = |id: NodeId, inc: u64| {
            let e = expelled.entry(id).or_insert(inc);
            *e = (*e).max(inc);
        };
        for a in accepts.values() {
            for &(id, inc) in &a.expelled {
                note(id, inc);
            }
        }
        if self.quorate_with(members, expected.votes, remove_done) {
            for a in accepts.values() {
                for &(id, inc) in &a.old_members {
                    let restarted = members.iter().any(|m| m.0 == id && m.1 > inc);
                    if !members.contains(&(id, inc)) && !restarted {
                        note(id, inc);
                    }
                }
            }
        }
        let expelled: Vec<(NodeId, u64)> = expelled
            .into_iter()
            .filter(|(id, inc)| !members.iter().any(|m| m.0 == *id && m.1 <= *inc))
            .collect();
        // Flush: per old view, the union of tails above the highest stable point reported.
        let mut unions: BTreeMap<ViewId, BTreeMap<u64, &Entry>> = BTreeMap::new();
        let mut stables: BTreeMap<ViewId, u64> = BTreeMap::new();
        for a in accepts.values() {
            if let Some(v) = a.old_view {
                let s = stables.entry(v).or_insert(0);
                *s = (*s).max(a.stable);
            }
        }
        for a in accepts.values() {
            if let Some(v) = a.old_view {
                let floor = stables.get(&v).copied().unwrap_or(0);
                let u = unions.entry(v).or_default();
                for (seq, e) in &a.tail {
                    if *seq > floor {
                        u.entry(*seq).or_insert(e);
                    }
                }
            }
        }
        // Groups each member holds after its flush.
        let mut groups: BTreeMap<String, BTreeSet<NodeId>> = BTreeMap::new();
        for &(id, inc) in members {
            let Some(a) = accepts.get(&id) else { continue };
            let mut mine: BTreeSet<String> = a.groups.iter().cloned().collect();
            if let Some(u) = a.old_view.and_then(|v| unions.get(&v)) {
                for (_, e) in u.range(a.delivered.saturating_add(1)..) {
                    if e.origin != id || e.origin_inc != inc {
                        continue;
                    }
                    match &e.body {
                        Body::Join { group } => {
                            mine.insert(group.clone());
                        }
                        Body::Leave { group } => {
                            mine.remove(group);
                        }
                        _ => {}
                    }
                }
            }
            for g in mine {
                groups.entry(g).or_default().insert(id);
            }
        }
        let groups: Vec<(String, Vec<NodeId>)> = groups
            .into_iter()
            .map(|(g, m)| (g, m.into_iter().collect()))
            .collect();
        let mut commits = BTreeMap::new();
        for &(id, _) in members {
            let Some(a) = accepts.get(&id) else { continue };
            let flush = a.old_view.map(|v| {
                let u = unions.get(&v);
                let held: BTreeSet<u64> = a.tail.iter().map(|(s, _)| *s).collect();
                Flush {
                    old_view: v,
                    seqs: u.map(|u| u.keys().copied().collect()).unwrap_or_default(),
                    entries: u
                        .map(|u| {
                            u.range(a.delivered.saturating_add(1)..)
                                .filter(|(s, _)| !held.contains(s))
                                .map(|(s, e)| (*s, (*e).clone()))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            });
            commits.insert(
                id,
                Commit {
                    view: prop.view,
                    members: members.clone(),
                    expected,
                    allow_decrease: remove_done,
                    expelled: expelled.clone(),
                    groups: groups.clone(),
                    flush,
                },
            );
        }
        commits
    }
}
