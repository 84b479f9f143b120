//! The fencing checks over a merged history (fenced's records beside cmand's and the lab's).
//!
//! | id | check | what is asserted |
//! |---|---|---|
//! | F1 | [`fenced_means_dead`] | once fenced reports a victim fenced by an agent (or `fence_node`), the victim's cmand incarnation writes nothing more: the power really went |
//! | F2 | [`fencing_needs_quorum`] | a master starts fencing only while its cmand is quorate |
//! | F3 | [`fenced_once`] | every failure a quorate survivor saw (an incarnation dropped from its view without a clean leave) is fenced exactly once by an agent, or completes otherwise (the victim came back as a new incarnation, an administrator acknowledged it, or a fenced that joined after the failure completed it as a start-up victim) — never twice |
//!
//! F1 is the lab's form of "recovery never precedes fencing": before rgmanagerd exists, the
//! recovery that must wait is the survivors' belief that the victim is gone. F1 says the
//! belief is never ahead of the fact. Acknowledged victims (`override`) are the
//! administrator's word and are not judged; `member` victims restarted on their own.

use crate::checker::Violation;
use libcluster::history::{Event, Record};
use std::collections::{BTreeMap, BTreeSet};

/// (node, cmand incarnation).
type Who = (u32, u64);

fn is_cmand(r: &Record) -> bool {
    r.daemon == "cmand"
}

/// F1: after a `fenced` record with how `agent` or `external` for (V, I), no cmand record of
/// (V, I). Returns how many fencings it judged.
pub fn fenced_means_dead(h: &[Record]) -> Result<usize, Violation> {
    let mut fenced: BTreeMap<Who, &Record> = BTreeMap::new();
    for r in h {
        match &r.event {
            Event::Fenced {
                victim,
                victim_incarnation,
                how,
                ..
            } if how == "agent" || how == "external" => {
                fenced.entry((*victim, *victim_incarnation)).or_insert(r);
            }
            _ if is_cmand(r) => {
                if let Some(f) = fenced.get(&(r.node, r.incarnation)) {
                    return Err(Violation {
                        invariant: "F1",
                        message: format!(
                            "node {} (incarnation {}) was reported fenced but still ran",
                            r.node, r.incarnation
                        ),
                        records: vec![(*f).clone(), r.clone()],
                    });
                }
            }
            _ => {}
        }
    }
    Ok(fenced.len())
}

/// Each node's cmand quorum state through the history: the latest quorum record of its
/// current incarnation; nothing after a start, kill or power cut.
#[derive(Default)]
struct QuorumTrack {
    quorate: BTreeMap<u32, (u64, bool)>,
}

impl QuorumTrack {
    fn observe(&mut self, r: &Record) {
        match &r.event {
            Event::Fault {
                target: Some(n),
                what,
            } if matches!(what.as_str(), "kill" | "power-off" | "stop") => {
                self.quorate.remove(n);
            }
            Event::Start if is_cmand(r) => {
                self.quorate.insert(r.node, (r.incarnation, false));
            }
            Event::Quorum { quorate, .. } if is_cmand(r) => {
                self.quorate.insert(r.node, (r.incarnation, *quorate));
            }
            _ => {}
        }
    }

    fn is_quorate(&self, node: u32) -> bool {
        self.quorate.get(&node).is_some_and(|(_, q)| *q)
    }
}

/// F2: every `fence_start` is written by a node whose cmand is quorate at that moment.
/// Returns how many starts it judged.
pub fn fencing_needs_quorum(h: &[Record]) -> Result<usize, Violation> {
    let mut track = QuorumTrack::default();
    let mut last_quorum: BTreeMap<u32, &Record> = BTreeMap::new();
    let mut starts = 0;
    for r in h {
        track.observe(r);
        if is_cmand(r) && matches!(r.event, Event::Quorum { .. }) {
            last_quorum.insert(r.node, r);
        }
        if let Event::FenceStart { victim, .. } = &r.event {
            starts += 1;
            if !track.is_quorate(r.node) {
                let mut records: Vec<Record> = last_quorum
                    .get(&r.node)
                    .map(|q| (*q).clone())
                    .into_iter()
                    .collect();
                records.push(r.clone());
                return Err(Violation {
                    invariant: "F2",
                    message: format!(
                        "node {} started fencing node {victim} while not quorate",
                        r.node
                    ),
                    records,
                });
            }
        }
    }
    Ok(starts)
}

/// A survivor's view transition is complete: if it is quorate now, whoever left its view
/// failed.
fn settle<'a>(
    pending: &mut BTreeMap<Who, (&'a Record, BTreeSet<Who>)>,
    track: &QuorumTrack,
    me: Who,
    failures: &mut BTreeMap<Who, Vec<&'a Record>>,
) {
    if let Some((v, gone)) = pending.remove(&me) {
        if track.is_quorate(me.0) {
            for who in gone {
                failures.entry(who).or_default().push(v);
            }
        }
    }
}

/// F3: every failure seen by a quorate survivor is completed exactly once (an agent's
/// fencing at most once; some completion by the end of the history). Returns how many
/// failures it judged.
pub fn fenced_once(h: &[Record]) -> Result<usize, Violation> {
    let mut track = QuorumTrack::default();
    // Survivor → the members of its previous view.
    let mut prev: BTreeMap<Who, BTreeSet<Who>> = BTreeMap::new();
    // Failure → the view records of the survivors that saw it.
    let mut failures: BTreeMap<Who, Vec<&Record>> = BTreeMap::new();
    let mut clean: BTreeSet<Who> = BTreeSet::new();
    let mut completions: BTreeMap<Who, Vec<&Record>> = BTreeMap::new();
    // A view record waits for its paired quorum record (the same transition) before the
    // survivor's quorum is judged.
    let mut pending: BTreeMap<Who, (&Record, BTreeSet<Who>)> = BTreeMap::new();
    for r in h {
        track.observe(r);
        let me = (r.node, r.incarnation);
        if is_cmand(r) {
            if let Event::Shutdown { reason } = &r.event {
                if reason.starts_with("left the cluster") {
                    clean.insert(me);
                }
            }
        }
        match &r.event {
            Event::View { members, .. } if is_cmand(r) => {
                let now: BTreeSet<Who> = members.iter().copied().collect();
                let gone: BTreeSet<Who> = prev
                    .get(&me)
                    .map(|p| p.difference(&now).copied().collect())
                    .unwrap_or_default();
                prev.insert(me, now);
                // No quorum record followed the previous view: its quorum did not change.
                settle(&mut pending, &track, me, &mut failures);
                if !gone.is_empty() {
                    pending.insert(me, (r, gone));
                }
            }
            Event::Quorum { .. } if is_cmand(r) => {
                settle(&mut pending, &track, me, &mut failures);
            }
            Event::Deliver { .. } => {}
            Event::Fenced {
                victim,
                victim_incarnation,
                ..
            } => {
                completions
                    .entry((*victim, *victim_incarnation))
                    .or_default()
                    .push(r);
            }
            _ if is_cmand(r) => {
                settle(&mut pending, &track, me, &mut failures);
            }
            _ => {}
        }
    }
    let open: Vec<Who> = pending.keys().copied().collect();
    for me in open {
        settle(&mut pending, &track, me, &mut failures);
    }
    // A survivor that was itself fenced later lost a race (two_node) or sat in a partition
    // that the quorate side cut off: what it saw is not a failure anyone had to fence.
    let lost: BTreeSet<Who> = completions
        .iter()
        .filter(|(_, rs)| {
            rs.iter()
                .any(|r| matches!(&r.event, Event::Fenced { how, .. } if how == "agent"))
        })
        .map(|(who, _)| *who)
        .collect();
    failures.retain(|who, seen| {
        seen.retain(|v| !lost.contains(&(v.node, v.incarnation)));
        !seen.is_empty() && !clean.contains(who)
    });
    for (who, shown) in &failures {
        // A fenced that joined after the failure knows the node only as a start-up victim
        // (incarnation 0): that completion covers every failure of the node before it.
        let first_seen = shown.iter().map(|r| r.t_ns).min().unwrap_or(0);
        let startup_done = completions
            .get(&(who.0, 0))
            .is_some_and(|rs| rs.iter().any(|r| r.t_ns > first_seen));
        if startup_done {
            continue;
        }
        let done = completions.get(who).map(Vec::as_slice).unwrap_or_default();
        let by_agent: Vec<&&Record> = done
            .iter()
            .filter(|r| matches!(&r.event, Event::Fenced { how, .. } if how == "agent"))
            .collect();
        if by_agent.len() > 1 {
            return Err(Violation {
                invariant: "F3",
                message: format!(
                    "node {} (incarnation {}) was fenced {} times for one failure",
                    who.0,
                    who.1,
                    by_agent.len()
                ),
                records: by_agent.iter().map(|r| (**r).clone()).collect(),
            });
        }
        if done.is_empty() {
            return Err(Violation {
                invariant: "F3",
                message: format!(
                    "node {} (incarnation {}) failed and was never fenced",
                    who.0, who.1
                ),
                records: shown.iter().map(|r| (*r).clone()).collect(),
            });
        }
    }
    Ok(failures.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: u64, node: u32, inc: u64, daemon: &str, event: Event) -> Record {
        Record {
            t_ns: t,
            node,
            incarnation: inc,
            daemon: daemon.into(),
            event,
        }
    }

    fn view(t: u64, node: u32, inc: u64, gen: u64, members: &[(u32, u64)]) -> Record {
        rec(
            t,
            node,
            inc,
            "cmand",
            Event::View {
                generation: gen,
                coordinator: members[0].0,
                members: members.to_vec(),
            },
        )
    }

    fn quorum(t: u64, node: u32, inc: u64, quorate: bool) -> Record {
        rec(
            t,
            node,
            inc,
            "cmand",
            Event::Quorum {
                quorate,
                quorum: 2,
                total_votes: 2,
            },
        )
    }

    fn fenced(t: u64, by: u32, victim: u32, inc: u64, how: &str) -> Record {
        rec(
            t,
            by,
            500,
            "fenced",
            Event::Fenced {
                victim,
                victim_incarnation: inc,
                how: how.into(),
                method: Some("1".into()),
                device: Some("lab-apc".into()),
            },
        )
    }

    fn fence_start(t: u64, by: u32, victim: u32, inc: u64) -> Record {
        rec(
            t,
            by,
            500,
            "fenced",
            Event::FenceStart {
                victim,
                victim_incarnation: inc,
            },
        )
    }

    /// Three nodes; node 3 (incarnation 30) drops out of node 1's and 2's views.
    fn failure() -> Vec<Record> {
        let all = [(1, 10), (2, 20), (3, 30)];
        let two = [(1, 10), (2, 20)];
        vec![
            view(1, 1, 10, 1, &all),
            quorum(2, 1, 10, true),
            view(3, 2, 20, 1, &all),
            quorum(4, 2, 20, true),
            view(5, 3, 30, 1, &all),
            quorum(6, 3, 30, true),
            view(10, 1, 10, 2, &two),
            view(11, 2, 20, 2, &two),
        ]
    }

    #[test]
    fn a_failure_fenced_once_passes_all_three() {
        let mut h = failure();
        h.push(fence_start(12, 1, 3, 30));
        h.push(fenced(20, 1, 3, 30, "agent"));
        assert_eq!(fenced_means_dead(&h).unwrap(), 1);
        assert_eq!(fencing_needs_quorum(&h).unwrap(), 1);
        assert_eq!(fenced_once(&h).unwrap(), 1);
    }

    #[test]
    fn a_victim_that_runs_after_being_reported_fenced_violates_f1() {
        let mut h = failure();
        h.push(fenced(20, 1, 3, 30, "agent"));
        h.push(quorum(21, 3, 30, false));
        let v = fenced_means_dead(&h).unwrap_err();
        assert_eq!(v.invariant, "F1");
        // An acknowledged victim is the administrator's word: not judged.
        let mut h = failure();
        h.push(fenced(20, 1, 3, 30, "override"));
        h.push(quorum(21, 3, 30, false));
        assert!(fenced_means_dead(&h).is_ok());
    }

    #[test]
    fn fencing_from_an_inquorate_node_violates_f2() {
        let mut h = failure();
        h.push(quorum(12, 3, 30, false));
        h.push(fence_start(13, 3, 1, 10));
        assert_eq!(fencing_needs_quorum(&h).unwrap_err().invariant, "F2");
        // A node with no quorum record yet (just started) is not quorate either.
        let h = vec![
            rec(1, 2, 21, "cmand", Event::Start),
            fence_start(2, 2, 1, 10),
        ];
        assert_eq!(fencing_needs_quorum(&h).unwrap_err().invariant, "F2");
    }

    #[test]
    fn a_failure_never_fenced_or_fenced_twice_violates_f3() {
        let h = failure();
        let v = fenced_once(&h).unwrap_err();
        assert!(v.message.contains("never fenced"), "{v}");
        let mut h = failure();
        h.push(fenced(20, 1, 3, 30, "agent"));
        h.push(fenced(25, 2, 3, 30, "agent"));
        let v = fenced_once(&h).unwrap_err();
        assert!(v.message.contains("2 times"), "{v}");
        // Completion by restart (member) counts.
        let mut h = failure();
        h.push(fenced(20, 1, 3, 30, "member"));
        assert_eq!(fenced_once(&h).unwrap(), 1);
    }

    #[test]
    fn a_start_up_victim_completion_covers_an_earlier_failure_of_that_node() {
        let mut h = failure();
        h.push(fenced(30, 2, 3, 0, "member"));
        assert_eq!(fenced_once(&h).unwrap(), 1);
        // ...but not one that happened after it.
        let mut h = vec![fenced(0, 2, 3, 0, "member")];
        h.extend(failure());
        assert!(fenced_once(&h).is_err());
    }

    #[test]
    fn the_loser_of_a_two_node_fence_race_saw_no_failure() {
        let both = [(1, 10), (2, 20)];
        let h = vec![
            view(1, 1, 10, 1, &both),
            quorum(2, 1, 10, true),
            view(3, 2, 20, 1, &both),
            quorum(4, 2, 20, true),
            view(10, 1, 10, 2, &[(1, 10)]),
            view(11, 2, 20, 2, &[(2, 20)]),
            fence_start(12, 1, 2, 20),
            fence_start(12, 2, 1, 10),
            fenced(20, 1, 2, 20, "agent"),
        ];
        assert_eq!(fenced_once(&h).unwrap(), 1);
    }

    #[test]
    fn a_clean_leave_or_a_loss_seen_only_inquorate_is_no_failure() {
        let mut h = failure();
        h.insert(
            6,
            rec(
                7,
                3,
                30,
                "cmand",
                Event::Shutdown {
                    reason: "left the cluster".into(),
                },
            ),
        );
        assert_eq!(fenced_once(&h).unwrap(), 0);
        // Node 1 loses node 2 and quorum with it (3 nodes, 2 needed): nothing to fence.
        let all = [(1, 10), (2, 20)];
        let h = vec![
            view(1, 1, 10, 1, &all),
            quorum(2, 1, 10, true),
            view(3, 1, 10, 2, &[(1, 10)]),
            quorum(4, 1, 10, false),
        ];
        assert_eq!(fenced_once(&h).unwrap(), 0);
    }
}
