//! Checkers over merged histories: every node's `history/*.jsonl`, plus the lab's own fault
//! records, sorted by CLOCK_MONOTONIC time into one true order.
//!
//! | check | invariant (DESIGN.md §5) |
//! |---|---|
//! | [`agreement`] | M1: records of one view (epoch, coordinator, coordinator incarnation) name one member list |
//! | [`quorum`] | Q1: never two live nodes, in disjoint views, both quorate (unless two_node) |
//! | [`group_order`] | M3: within a view, one order of deliveries per group; nodes that moved together from a view to the next delivered the same set in it |
//!
//! A node's state ends when the lab kills or powers it off, and a restart starts a new
//! incarnation whose records are judged on their own. Later issues add F1 (fencing before
//! recovery) and R1/R2 (one host per VM, recovery) over the same merged history.

use libcluster::history::{Event, Record};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Reads and merges every `*.jsonl` file of a history directory, sorted by time.
pub fn load(dir: &Path) -> Result<Vec<Record>, String> {
    let mut all = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            // A node killed mid-write can leave a torn last line; anything else is an error.
            match Record::from_line(line) {
                Ok(r) => all.push(r),
                Err(e) if i + 1 == text.lines().count() => {
                    eprintln!("{}: ignoring torn last line: {e}", path.display())
                }
                Err(e) => return Err(format!("{}:{}: {e}", path.display(), i + 1)),
            }
        }
    }
    all.sort_by_key(|r| (r.t_ns, r.node, r.incarnation));
    Ok(all)
}

/// A view's identity: epoch, coordinator, and the coordinator's incarnation.
pub type ViewKey = (u64, u32, u64);

fn view_key(generation: u64, coordinator: u32, members: &[(u32, u64)]) -> ViewKey {
    let inc = members
        .iter()
        .find(|(id, _)| *id == coordinator)
        .map_or(0, |(_, inc)| *inc);
    (generation, coordinator, inc)
}

/// A violation, with the records that show it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What went wrong, in a sentence.
    pub message: String,
    /// The records involved.
    pub records: Vec<Record>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} violated: {}", self.invariant, self.message)?;
        for r in &self.records {
            writeln!(f, "    {}", r.to_line())?;
        }
        Ok(())
    }
}

/// M1: all records of one view carry the same member list.
pub fn agreement(h: &[Record]) -> Result<(), Violation> {
    let mut seen: BTreeMap<ViewKey, &Record> = BTreeMap::new();
    for r in h {
        if let Event::View {
            generation,
            coordinator,
            members,
        } = &r.event
        {
            let key = view_key(*generation, *coordinator, members);
            match seen.get(&key) {
                Some(first) => {
                    if let Event::View { members: m0, .. } = &first.event {
                        if m0 != members {
                            return Err(Violation {
                                invariant: "M1",
                                message: format!("view {key:?} has two member lists"),
                                records: vec![(*first).clone(), r.clone()],
                            });
                        }
                    }
                }
                None => {
                    seen.insert(key, r);
                }
            }
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
struct NodeNow {
    incarnation: u64,
    members: BTreeSet<u32>,
    quorate: bool,
    last: Record,
}

/// Q1: at no instant are two live nodes in disjoint views both quorate, unless `two_node`.
pub fn quorum(h: &[Record], two_node: bool) -> Result<(), Violation> {
    if two_node {
        return Ok(());
    }
    let mut now: BTreeMap<u32, NodeNow> = BTreeMap::new();
    for r in h {
        match &r.event {
            Event::Fault {
                target: Some(n),
                what,
            } if matches!(what.as_str(), "kill" | "power-off" | "stop") => {
                now.remove(n);
            }
            Event::Start => {
                now.remove(&r.node);
            }
            Event::View { members, .. } => {
                let e = now.entry(r.node).or_insert(NodeNow {
                    incarnation: r.incarnation,
                    members: BTreeSet::new(),
                    quorate: false,
                    last: r.clone(),
                });
                e.incarnation = r.incarnation;
                e.members = members.iter().map(|(id, _)| *id).collect();
                e.last = r.clone();
            }
            Event::Quorum { quorate, .. } => {
                if let Some(e) = now
                    .get_mut(&r.node)
                    .filter(|e| e.incarnation == r.incarnation)
                {
                    e.quorate = *quorate;
                    e.last = r.clone();
                }
            }
            _ => continue,
        }
        let quorate: Vec<&NodeNow> = now.values().filter(|n| n.quorate).collect();
        for (i, a) in quorate.iter().enumerate() {
            for b in &quorate[i + 1..] {
                if a.members.is_disjoint(&b.members) {
                    return Err(Violation {
                        invariant: "Q1",
                        message: format!(
                            "disjoint views {:?} and {:?} both quorate",
                            a.members, b.members
                        ),
                        records: vec![a.last.clone(), b.last.clone()],
                    });
                }
            }
        }
    }
    Ok(())
}

/// M3: one delivery order per view and group; nodes that went from view V to the same next
/// view delivered the same set in V. Returns the number of deliveries checked.
pub fn group_order(h: &[Record]) -> Result<usize, Violation> {
    // (view, group, seq) -> (from, crc, first record)
    let mut order: BTreeMap<(ViewKey, String, u64), (u32, u32, &Record)> = BTreeMap::new();
    // (node, incarnation) -> view -> delivered seqs; and the sequence of views it installed.
    let mut delivered: BTreeMap<(u32, u64), BTreeMap<ViewKey, BTreeSet<u64>>> = BTreeMap::new();
    let mut last_seq: BTreeMap<(u32, u64, ViewKey), u64> = BTreeMap::new();
    let mut views: BTreeMap<(u32, u64), Vec<ViewKey>> = BTreeMap::new();
    let mut count = 0;
    for r in h {
        match &r.event {
            Event::View {
                generation,
                coordinator,
                members,
            } => {
                views
                    .entry((r.node, r.incarnation))
                    .or_default()
                    .push(view_key(*generation, *coordinator, members));
            }
            Event::Deliver {
                group,
                generation,
                coordinator,
                seq,
                from,
                crc,
            } => {
                count += 1;
                // The view a delivery belongs to is the one with this epoch and coordinator
                // that the node installed (the coordinator's incarnation comes from there).
                let key = views
                    .get(&(r.node, r.incarnation))
                    .and_then(|v| {
                        v.iter()
                            .rev()
                            .find(|k| k.0 == *generation && k.1 == *coordinator)
                            .copied()
                    })
                    .unwrap_or((*generation, *coordinator, 0));
                if let Some(prev) = last_seq.insert((r.node, r.incarnation, key), *seq) {
                    if prev >= *seq {
                        return Err(Violation {
                            invariant: "M3",
                            message: format!(
                                "node {} delivered seq {seq} after {prev} in view {key:?}",
                                r.node
                            ),
                            records: vec![r.clone()],
                        });
                    }
                }
                match order.get(&(key, group.clone(), *seq)) {
                    Some((f, c, first)) if (*f, *c) != (*from, *crc) => {
                        return Err(Violation {
                            invariant: "M3",
                            message: format!("two different messages at seq {seq} of group {group} in view {key:?}"),
                            records: vec![(*first).clone(), r.clone()],
                        });
                    }
                    Some(_) => {}
                    None => {
                        order.insert((key, group.clone(), *seq), (*from, *crc, r));
                    }
                }
                delivered
                    .entry((r.node, r.incarnation))
                    .or_default()
                    .entry(key)
                    .or_default()
                    .insert(*seq);
            }
            _ => {}
        }
    }
    // Virtual synchrony: group the (node, view) pairs by (view, next view).
    type Movers = Vec<((u32, u64), BTreeSet<u64>)>;
    let mut moved: BTreeMap<(ViewKey, ViewKey), Movers> = BTreeMap::new();
    for (who, vs) in &views {
        for w in vs.windows(2) {
            let set = delivered
                .get(who)
                .and_then(|d| d.get(&w[0]))
                .cloned()
                .unwrap_or_default();
            moved.entry((w[0], w[1])).or_default().push((*who, set));
        }
    }
    for ((from, to), nodes) in moved {
        if let Some(((n0, _), s0)) = nodes.first() {
            for ((n, _), s) in &nodes[1..] {
                if s != s0 {
                    return Err(Violation {
                        invariant: "M3",
                        message: format!(
                            "nodes {n0} and {n} moved from view {from:?} to {to:?} but delivered different sets there ({} vs {} messages)",
                            s0.len(),
                            s.len()
                        ),
                        records: vec![],
                    });
                }
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: u64, node: u32, event: Event) -> Record {
        Record {
            t_ns: t,
            node,
            incarnation: 1,
            daemon: "cmand".into(),
            event,
        }
    }
    fn view(g: u64, c: u32, m: &[u32]) -> Event {
        Event::View {
            generation: g,
            coordinator: c,
            members: m.iter().map(|i| (*i, 1)).collect(),
        }
    }
    fn q(quorate: bool) -> Event {
        Event::Quorum {
            quorate,
            quorum: 2,
            total_votes: 2,
        }
    }
    fn del(g: u64, c: u32, seq: u64, from: u32, crc: u32) -> Event {
        Event::Deliver {
            group: "g".into(),
            generation: g,
            coordinator: c,
            seq,
            from,
            crc,
        }
    }

    #[test]
    fn two_member_lists_for_one_view_break_agreement() {
        let h = vec![
            rec(1, 1, view(2, 1, &[1, 2])),
            rec(2, 2, view(2, 1, &[1, 2])),
        ];
        assert!(agreement(&h).is_ok());
        let bad = vec![
            rec(1, 1, view(2, 1, &[1, 2])),
            rec(2, 2, view(2, 1, &[1, 2, 3])),
        ];
        assert_eq!(agreement(&bad).unwrap_err().invariant, "M1");
    }

    #[test]
    fn disjoint_quorate_views_break_q1_unless_two_node_or_killed() {
        let h = vec![
            rec(1, 1, view(2, 1, &[1])),
            rec(2, 1, q(true)),
            rec(3, 2, view(2, 2, &[2])),
            rec(4, 2, q(true)),
        ];
        assert_eq!(quorum(&h, false).unwrap_err().invariant, "Q1");
        assert!(quorum(&h, true).is_ok());
        let mut killed = h.clone();
        killed.insert(
            2,
            Record {
                t_ns: 2,
                node: 0,
                incarnation: 0,
                daemon: "lab".into(),
                event: Event::Fault {
                    target: Some(1),
                    what: "kill".into(),
                },
            },
        );
        assert!(quorum(&killed, false).is_ok());
    }

    #[test]
    fn different_messages_at_one_seq_or_unequal_sets_break_m3() {
        let ok = vec![
            rec(1, 1, view(2, 1, &[1, 2])),
            rec(1, 2, view(2, 1, &[1, 2])),
            rec(2, 1, del(2, 1, 1, 1, 7)),
            rec(3, 2, del(2, 1, 1, 1, 7)),
            rec(4, 1, view(3, 1, &[1, 2])),
            rec(4, 2, view(3, 1, &[1, 2])),
        ];
        assert_eq!(group_order(&ok).unwrap(), 2);
        let mut swapped = ok.clone();
        swapped[3] = rec(3, 2, del(2, 1, 1, 2, 9));
        assert_eq!(group_order(&swapped).unwrap_err().invariant, "M3");
        let mut lost = ok.clone();
        lost.remove(3);
        assert_eq!(group_order(&lost).unwrap_err().invariant, "M3");
    }
}
