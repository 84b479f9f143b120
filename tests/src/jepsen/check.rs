//! The runner's checks over a merged history and the workload's log.
//!
//! | id | check | what is asserted |
//! |---|---|---|
//! | M1 | [`crate::checker::agreement`] | one member list per view |
//! | Q1 | [`quorum`] | never two live nodes in disjoint quorate views (unless two_node); a view and the quorum change it causes are one transition |
//! | M3 | [`group_order`] | per view and group one delivery order (one message per seq, seqs rising on each node); nodes that moved together from view V to the same next view delivered the same set in V, counted from the latest group-join point among them |
//! | N1 | [`no_loss`] | a message acked (GroupSend Done) by an incarnation that survived to the final view was delivered to that incarnation itself |
//! | N2 | [`integrity`] | every delivery is of a message a client sent, from its sender, and no incarnation delivers a message twice |
//!
//! What virtual synchrony lets us assert, and no more: an acked message is only queued
//! at its sender; if the sender dies before the sequencer orders it, nobody ever delivers
//! it, and that is correct. So loss is judged per view (M3: whatever one mover delivered,
//! every mover delivered) and at the sender (N1: a sender that lived to the end delivered
//! everything it acked, because its unsequenced entries are resent in every view). A node
//! that joins the group in the middle of a view delivers only what is ordered after its
//! join; history records no join seq, so the join point is its first delivery in that view
//! (the client log says which view that is; without it, the first view the node delivered
//! anything in), and each pair of movers is compared above the later of their two join
//! points. A joiner that delivered nothing in its join view is left out of that view's
//! comparison.

use crate::checker::{ViewKey, Violation};
use crate::workload::{message_crc, Outcome, WorkloadLog, GROUP};
use libcluster::history::{Event, Record};
use std::collections::{BTreeMap, BTreeSet};

fn view_key(generation: u64, coordinator: u32, members: &[(u32, u64)]) -> ViewKey {
    let inc = members
        .iter()
        .find(|(id, _)| *id == coordinator)
        .map_or(0, |(_, inc)| *inc);
    (generation, coordinator, inc)
}

/// (node, incarnation).
type Who = (u32, u64);

/// Join points the client log knows: (node, incarnation) → view epoch of the join.
pub fn join_generations(log: Option<&WorkloadLog>) -> BTreeMap<Who, u64> {
    let mut out = BTreeMap::new();
    for c in log.map(|l| l.clients.as_slice()).unwrap_or_default() {
        for j in &c.joins {
            out.entry((c.nodeid, j.incarnation)).or_insert(j.generation);
        }
    }
    out
}

#[derive(Default)]
struct NodeDeliveries<'a> {
    views: Vec<ViewKey>,
    /// (view, group) → seq → record.
    sets: BTreeMap<(ViewKey, String), BTreeMap<u64, &'a Record>>,
}

/// M3 with group-join points (see the module doc). `joins` gives the epoch in which each
/// (node, incarnation) joined group [`GROUP`]; for other groups, or when unknown, a node's
/// join view is the first view it delivered anything of the group in. Returns the number
/// of deliveries checked.
pub fn group_order(h: &[Record], joins: &BTreeMap<Who, u64>) -> Result<usize, Violation> {
    let mut order: BTreeMap<(ViewKey, &str, u64), &Record> = BTreeMap::new();
    let mut nodes: BTreeMap<Who, NodeDeliveries> = BTreeMap::new();
    let mut count = 0;
    for r in h {
        let who = (r.node, r.incarnation);
        match &r.event {
            Event::View {
                generation,
                coordinator,
                members,
            } => nodes.entry(who).or_default().views.push(view_key(
                *generation,
                *coordinator,
                members,
            )),
            Event::Deliver {
                group,
                generation,
                coordinator,
                seq,
                from,
                crc,
            } => {
                count += 1;
                let n = nodes.entry(who).or_default();
                let key = n
                    .views
                    .iter()
                    .rev()
                    .find(|k| k.0 == *generation && k.1 == *coordinator)
                    .copied()
                    .unwrap_or((*generation, *coordinator, 0));
                let set = n.sets.entry((key, group.clone())).or_default();
                if let Some((&prev, _)) = set.last_key_value() {
                    if prev >= *seq {
                        return Err(Violation {
                            invariant: "M3",
                            message: format!(
                                "node {} delivered seq {seq} after {prev} in view {key:?}",
                                r.node
                            ),
                            records: vec![set[&prev].clone(), r.clone()],
                        });
                    }
                }
                set.insert(*seq, r);
                match order.get(&(key, group.as_str(), *seq)) {
                    Some(first) => {
                        if let Event::Deliver {
                            from: f0, crc: c0, ..
                        } = &first.event
                        {
                            if (f0, c0) != (from, crc) {
                                return Err(Violation {
                                    invariant: "M3",
                                    message: format!(
                                        "two different messages at seq {seq} of group {group} in view {key:?}"
                                    ),
                                    records: vec![(*first).clone(), r.clone()],
                                });
                            }
                        }
                    }
                    None => {
                        order.insert((key, group.as_str(), *seq), r);
                    }
                }
            }
            _ => {}
        }
    }
    compare_movers(&nodes, joins)?;
    Ok(count)
}

/// The set comparison of M3: movers V → V' delivered the same seqs of each group in V,
/// above the latest join point among them.
fn compare_movers(
    nodes: &BTreeMap<Who, NodeDeliveries>,
    joins: &BTreeMap<Who, u64>,
) -> Result<(), Violation> {
    let groups: BTreeSet<&str> = nodes
        .values()
        .flat_map(|n| n.sets.keys().map(|(_, g)| g.as_str()))
        .collect();
    // (V, V', group) → [(who, floor or None = joined without deliveries, seqs)]
    type Mover<'a> = (Who, Option<u64>, Option<&'a BTreeMap<u64, &'a Record>>);
    let mut moved: BTreeMap<(ViewKey, ViewKey, &str), Vec<Mover>> = BTreeMap::new();
    for (who, n) in nodes {
        for group in &groups {
            let join_view = join_view(who, n, group, joins);
            for (i, w) in n.views.windows(2).enumerate() {
                let set = n.sets.get(&(w[0], group.to_string()));
                let floor = match join_view {
                    Some(j) if j == i => set.and_then(|s| s.keys().next().copied()),
                    Some(j) if j > i => continue, // not in the group yet
                    None => continue,             // never in the group
                    _ => Some(0),
                };
                moved
                    .entry((w[0], w[1], group))
                    .or_default()
                    .push((*who, floor, set));
            }
        }
    }
    for ((from, to, group), movers) in moved {
        let compared: Vec<&Mover> = movers.iter().filter(|m| m.1.is_some()).collect();
        for (i, a) in compared.iter().enumerate() {
            for b in &compared[i + 1..] {
                // Each pair from the later of their two join points.
                let floor = a.1.max(b.1).unwrap_or(0);
                let above = |m: &Mover| -> BTreeSet<u64> {
                    m.2.map(|s| s.range(floor..).map(|(k, _)| *k).collect())
                        .unwrap_or_default()
                };
                let (sa, sb) = (above(a), above(b));
                if sa == sb {
                    continue;
                }
                let seq = *sa.symmetric_difference(&sb).next().unwrap_or(&0);
                let holder = [a, b]
                    .into_iter()
                    .find_map(|x| x.2.and_then(|set| set.get(&seq)))
                    .map(|r| vec![(*r).clone()])
                    .unwrap_or_default();
                return Err(Violation {
                    invariant: "M3",
                    message: format!(
                        "nodes {} and {} moved from view {from:?} to {to:?} but delivered different sets of group {group} there ({} vs {} messages from seq {floor}); seq {seq} is in one only",
                        a.0 .0,
                        b.0 .0,
                        sa.len(),
                        sb.len()
                    ),
                    records: holder,
                });
            }
        }
    }
    Ok(())
}

/// Index in `n.views` of the view the node joined `group` in, if it ever did.
fn join_view(
    who: &Who,
    n: &NodeDeliveries,
    group: &str,
    joins: &BTreeMap<Who, u64>,
) -> Option<usize> {
    let first_delivery = n
        .views
        .iter()
        .position(|v| n.sets.contains_key(&(*v, group.to_string())));
    let logged = (group == GROUP)
        .then(|| joins.get(who))
        .flatten()
        .and_then(|g| n.views.iter().position(|v| v.0 == *g));
    logged.or(first_delivery)
}

/// Q1: at no instant are two live nodes in disjoint views both quorate, unless `two_node`.
///
/// cmand installs a view and changes quorum in one step but writes two records (`view`,
/// then `quorum`, maybe with deliveries of the new view between them). Judged one record
/// at a time, a node leaving a quorate view for a minority one would look quorate in the
/// minority view for those microseconds. So a view record and the first quorum record of
/// the same incarnation after it, with nothing but deliveries between them, are applied
/// together. A node's state ends at a `kill`, `power-off` or `stop` fault and at its next
/// `start` record; a paused node keeps its state (it may wake up believing it).
pub fn quorum(h: &[Record], two_node: bool) -> Result<(), Violation> {
    if two_node {
        return Ok(());
    }
    // View record index → index of the quorum record of the same transition.
    let mut open: BTreeMap<Who, usize> = BTreeMap::new();
    let mut paired: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, r) in h.iter().enumerate() {
        let who = (r.node, r.incarnation);
        match &r.event {
            Event::View { .. } => {
                open.insert(who, i);
            }
            Event::Quorum { .. } => {
                if let Some(v) = open.remove(&who) {
                    paired.insert(v, i);
                }
            }
            Event::Deliver { .. } => {}
            _ => {
                open.remove(&who);
            }
        }
    }
    let consumed: BTreeSet<usize> = paired.values().copied().collect();
    struct Now<'a> {
        members: BTreeSet<u32>,
        quorate: bool,
        last: Vec<&'a Record>,
    }
    let mut now: BTreeMap<u32, Now> = BTreeMap::new();
    for (i, r) in h.iter().enumerate() {
        match &r.event {
            Event::Fault {
                target: Some(n),
                what,
            } if matches!(what.as_str(), "kill" | "power-off" | "stop") => {
                now.remove(n);
                continue;
            }
            Event::Start => {
                now.remove(&r.node);
                continue;
            }
            Event::View { members, .. } => {
                let e = now.entry(r.node).or_insert(Now {
                    members: BTreeSet::new(),
                    quorate: false,
                    last: vec![],
                });
                e.members = members.iter().map(|(id, _)| *id).collect();
                e.last = vec![r];
                if let Some(&j) = paired.get(&i) {
                    if let Event::Quorum { quorate, .. } = &h[j].event {
                        e.quorate = *quorate;
                        e.last.push(&h[j]);
                    }
                }
            }
            Event::Quorum { quorate, .. } if !consumed.contains(&i) => {
                if let Some(e) = now.get_mut(&r.node) {
                    e.quorate = *quorate;
                    e.last = vec![r];
                }
            }
            _ => continue,
        }
        let quorate: Vec<(&u32, &Now)> = now.iter().filter(|(_, n)| n.quorate).collect();
        for (k, (a, na)) in quorate.iter().enumerate() {
            for (b, nb) in &quorate[k + 1..] {
                if na.members.is_disjoint(&nb.members) {
                    return Err(Violation {
                        invariant: "Q1",
                        message: format!(
                            "nodes {a} and {b} quorate at once in disjoint views {:?} and {:?}",
                            na.members, nb.members
                        ),
                        records: na
                            .last
                            .iter()
                            .chain(&nb.last)
                            .map(|r| (*r).clone())
                            .collect(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// N1: every message acked by an incarnation in `log.final_incarnations` was delivered to
/// that incarnation. Returns how many acked messages that covers.
pub fn no_loss(h: &[Record], log: &WorkloadLog) -> Result<usize, Violation> {
    let mut delivered: BTreeSet<(u32, u64, u32)> = BTreeSet::new();
    let mut last: BTreeMap<Who, &Record> = BTreeMap::new();
    for r in h {
        if let Event::Deliver { group, crc, .. } = &r.event {
            if group == GROUP {
                delivered.insert((r.node, r.incarnation, *crc));
            }
        }
        if r.daemon != "lab" {
            last.insert((r.node, r.incarnation), r);
        }
    }
    let mut checked = 0;
    for op in log.ops() {
        if op.outcome != Outcome::Acked
            || log.final_incarnations.get(&op.node) != Some(&op.incarnation)
        {
            continue;
        }
        checked += 1;
        if !delivered.contains(&(op.node, op.incarnation, message_crc(op.id))) {
            return Err(Violation {
                invariant: "N1",
                message: format!(
                    "message {} (crc {:08x}) acked by node {} incarnation {}, which lived to the end, was never delivered to it",
                    op.id,
                    message_crc(op.id),
                    op.node,
                    op.incarnation
                ),
                records: last
                    .get(&(op.node, op.incarnation))
                    .map(|r| vec![(*r).clone()])
                    .unwrap_or_default(),
            });
        }
    }
    Ok(checked)
}

/// N2: every delivery of [`GROUP`] is of a message some client sent, from that client's
/// node, and no incarnation delivers one message twice. Returns the number of distinct
/// messages delivered.
pub fn integrity(h: &[Record], log: &WorkloadLog) -> Result<usize, Violation> {
    let sent: BTreeMap<u32, (u32, u32)> = log
        .ops()
        .map(|op| (message_crc(op.id), (op.id, op.node)))
        .collect();
    let mut seen: BTreeMap<(u32, u64, u32), &Record> = BTreeMap::new();
    let mut messages = BTreeSet::new();
    for r in h {
        let Event::Deliver {
            group, from, crc, ..
        } = &r.event
        else {
            continue;
        };
        if group != GROUP {
            continue;
        }
        let Some((id, sender)) = sent.get(crc) else {
            return Err(Violation {
                invariant: "N2",
                message: format!("node {} delivered a message no client sent", r.node),
                records: vec![r.clone()],
            });
        };
        if sender != from {
            return Err(Violation {
                invariant: "N2",
                message: format!(
                    "message {id} was sent by node {sender} but delivered as from node {from}"
                ),
                records: vec![r.clone()],
            });
        }
        if let Some(first) = seen.insert((r.node, r.incarnation, *crc), r) {
            return Err(Violation {
                invariant: "N2",
                message: format!("node {} delivered message {id} twice", r.node),
                records: vec![first.clone(), r.clone()],
            });
        }
        messages.insert(*crc);
    }
    Ok(messages.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{ClientLog, Join, Op};

    fn rec(t: u64, node: u32, inc: u64, event: Event) -> Record {
        Record {
            t_ns: t,
            node,
            incarnation: inc,
            daemon: "cmand".into(),
            event,
        }
    }
    fn view(node: u32, inc: u64, g: u64, m: &[u32]) -> Record {
        let members = m
            .iter()
            .map(|i| (*i, if *i == node { inc } else { 1 }))
            .collect();
        rec(
            g * 100,
            node,
            inc,
            Event::View {
                generation: g,
                coordinator: m[0],
                members,
            },
        )
    }
    fn del(node: u32, inc: u64, g: u64, c: u32, seq: u64, id: u32, from: u32) -> Record {
        rec(
            g * 100 + seq,
            node,
            inc,
            Event::Deliver {
                group: GROUP.into(),
                generation: g,
                coordinator: c,
                seq,
                from,
                crc: message_crc(id),
            },
        )
    }
    fn log(ops: &[(u32, u32, u64, Outcome)], finals: &[(u32, u64)]) -> WorkloadLog {
        WorkloadLog {
            group: GROUP.into(),
            clients: vec![ClientLog {
                ops: ops
                    .iter()
                    .map(|(id, node, inc, outcome)| Op {
                        id: *id,
                        node: *node,
                        incarnation: *inc,
                        outcome: *outcome,
                    })
                    .collect(),
                ..ClientLog::default()
            }],
            final_incarnations: finals.iter().copied().collect(),
        }
    }

    /// Nodes 1 and 2 in view 2, node 3 joins the group in view 2 at seq 3; all move to 3.
    fn joined_mid_view() -> Vec<Record> {
        let mut h = vec![view(1, 1, 1, &[1, 2]), view(2, 1, 1, &[1, 2])];
        h.push(view(1, 1, 2, &[1, 2, 3]));
        h.push(view(2, 1, 2, &[1, 2, 3]));
        h.push(view(3, 1, 2, &[1, 2, 3]));
        for seq in 1..=4 {
            h.push(del(1, 1, 2, 1, seq, seq as u32, 1));
            h.push(del(2, 1, 2, 1, seq, seq as u32, 1));
            if seq >= 3 {
                h.push(del(3, 1, 2, 1, seq, seq as u32, 1));
            }
        }
        for n in 1..=3 {
            h.push(rec(1000, n, 1, view(n, 1, 3, &[1, 2, 3]).event));
        }
        h.sort_by_key(|r| (r.t_ns, r.node));
        h
    }

    fn joins() -> BTreeMap<Who, u64> {
        BTreeMap::from([((1, 1), 1), ((2, 1), 1), ((3, 1), 2)])
    }

    #[test]
    fn a_mid_view_joiner_is_compared_above_its_join_point_only() {
        let h = joined_mid_view();
        assert_eq!(group_order(&h, &joins()).unwrap(), 10);
        // Without the join point known, the first delivery view stands in for it.
        assert!(group_order(&h, &BTreeMap::new()).is_ok());
    }

    #[test]
    fn a_mover_missing_a_message_above_the_join_point_breaks_m3() {
        let mut h = joined_mid_view();
        // Node 2 loses seq 4 (ordered after node 3's join).
        h.retain(|r| !(r.node == 2 && matches!(r.event, Event::Deliver { seq: 4, .. })));
        let err = group_order(&h, &joins()).unwrap_err();
        assert_eq!(err.invariant, "M3");
        assert!(err.message.contains("seq 4"), "{err}");
    }

    #[test]
    fn a_member_from_the_start_missing_an_early_message_breaks_m3() {
        let mut h = joined_mid_view();
        h.retain(|r| !(r.node == 2 && matches!(r.event, Event::Deliver { seq: 1, .. })));
        let err = group_order(&h, &joins()).unwrap_err();
        assert!(err.message.contains("nodes 1 and 2"), "{err}");
    }

    #[test]
    fn two_messages_at_one_seq_or_a_falling_seq_break_m3() {
        let mut h = joined_mid_view();
        let i = h
            .iter()
            .position(|r| r.node == 2 && matches!(r.event, Event::Deliver { seq: 2, .. }))
            .unwrap();
        h[i] = del(2, 1, 2, 1, 2, 99, 1);
        assert!(group_order(&h, &BTreeMap::new())
            .unwrap_err()
            .message
            .contains("two different messages"));
        let mut h = joined_mid_view();
        h.push(del(1, 1, 2, 1, 2, 2, 1));
        assert!(group_order(&h, &BTreeMap::new())
            .unwrap_err()
            .message
            .contains("after"));
    }

    fn quorum_rec(t: u64, node: u32, quorate: bool) -> Record {
        rec(
            t,
            node,
            1,
            Event::Quorum {
                quorate,
                quorum: 2,
                total_votes: 1,
            },
        )
    }

    /// n1, n2, n3 quorate in {1,2,3}; n1 is cut off and installs {1}, losing quorum in the
    /// same step (a delivery of n1 between its two records), while n2 and n3 go on in {2,3}.
    fn isolated_node() -> Vec<Record> {
        let mut h = Vec::new();
        for n in 1..=3u32 {
            h.push(rec(u64::from(n), n, 1, view(n, 1, 1, &[1, 2, 3]).event));
            h.push(quorum_rec(10 + u64::from(n), n, true));
        }
        h.push(rec(20, 2, 1, view(2, 1, 2, &[2, 3]).event));
        h.push(rec(21, 3, 1, view(3, 1, 2, &[2, 3]).event));
        h.push(rec(30, 1, 1, view(1, 1, 2, &[1]).event));
        h.push(del(1, 1, 2, 1, 1, 5, 1));
        h.push(quorum_rec(32, 1, false));
        h.sort_by_key(|r| r.t_ns);
        h
    }

    #[test]
    fn a_view_and_its_quorum_change_are_one_transition_for_q1() {
        let h = isolated_node();
        assert!(quorum(&h, false).is_ok());
    }

    #[test]
    fn a_minority_that_stays_quorate_breaks_q1_unless_two_node_or_killed() {
        let mut h = isolated_node();
        h.retain(|r| !matches!(r.event, Event::Quorum { quorate: false, .. }));
        let err = quorum(&h, false).unwrap_err();
        assert_eq!(err.invariant, "Q1");
        assert!(err.message.contains("{1}"), "{err}");
        assert!(quorum(&h, true).is_ok());
        let kill = Record {
            t_ns: 25,
            node: 0,
            incarnation: 0,
            daemon: "lab".into(),
            event: Event::Fault {
                target: Some(1),
                what: "kill".into(),
            },
        };
        let mut killed = h.clone();
        killed.push(kill);
        killed.sort_by_key(|r| r.t_ns);
        // The kill ends n1's quorate state; what it writes later starts from nothing.
        assert!(quorum(&killed, false).is_ok());
    }

    #[test]
    fn an_acked_message_of_a_survivor_must_come_back_to_it() {
        let h = vec![view(1, 7, 2, &[1]), del(1, 7, 2, 1, 1, 10, 1)];
        let ok = log(&[(10, 1, 7, Outcome::Acked)], &[(1, 7)]);
        assert_eq!(no_loss(&h, &ok).unwrap(), 1);
        let lost = log(
            &[(10, 1, 7, Outcome::Acked), (11, 1, 7, Outcome::Acked)],
            &[(1, 7)],
        );
        assert_eq!(no_loss(&h, &lost).unwrap_err().invariant, "N1");
        // Not a survivor (restarted later), or never acked: nothing is asserted.
        let died = log(&[(11, 1, 7, Outcome::Acked)], &[(1, 8)]);
        assert_eq!(no_loss(&h, &died).unwrap(), 0);
        let unknown = log(&[(11, 1, 7, Outcome::Unknown)], &[(1, 7)]);
        assert_eq!(no_loss(&h, &unknown).unwrap(), 0);
    }

    #[test]
    fn deliveries_must_be_sent_messages_from_their_sender_once() {
        let sent = log(&[(10, 1, 7, Outcome::Acked)], &[]);
        let h = vec![view(2, 1, 2, &[1, 2]), del(2, 1, 2, 1, 1, 10, 1)];
        assert_eq!(integrity(&h, &sent).unwrap(), 1);
        let invented = vec![del(2, 1, 2, 1, 1, 11, 1)];
        assert_eq!(integrity(&invented, &sent).unwrap_err().invariant, "N2");
        let wrong_from = vec![del(2, 1, 2, 1, 1, 10, 2)];
        assert!(integrity(&wrong_from, &sent)
            .unwrap_err()
            .message
            .contains("sent by node 1"));
        let twice = vec![del(2, 1, 2, 1, 1, 10, 1), del(2, 1, 3, 1, 1, 10, 1)];
        assert!(integrity(&twice, &sent)
            .unwrap_err()
            .message
            .contains("twice"));
    }

    #[test]
    fn join_generations_come_from_the_client_logs() {
        let mut l = log(&[], &[]);
        l.clients[0].nodeid = 3;
        l.clients[0].joins = vec![
            Join {
                incarnation: 5,
                generation: 9,
            },
            Join {
                incarnation: 5,
                generation: 12,
            },
        ];
        assert_eq!(join_generations(Some(&l)), BTreeMap::from([((3, 5), 9)]));
        assert!(join_generations(None).is_empty());
    }
}
