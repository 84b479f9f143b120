//! Unit tests of the domain core: a few `Domain`s on a hand-run, totally ordered group.

use super::*;
use crate::ipc::fence::{FenceHow, FenceState, WaitState};
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

fn entries(n: u32) -> Vec<NodeEntry> {
    (1..=n)
        .map(|i| NodeEntry {
            id: NodeId(i),
            name: format!("node{i}"),
            has_methods: true,
        })
        .collect()
}

fn quick() -> FenceSettings {
    FenceSettings {
        post_join_delay_ms: Some(0),
        post_fail_delay_ms: Some(0),
        clean_start: true,
        ..FenceSettings::default()
    }
}

/// A virtually synchronous group by hand: sends are queued and delivered to every member in
/// one order; joins and leaves are group views ordered with them.
struct Bus {
    doms: BTreeMap<NodeId, Domain>,
    group: BTreeSet<NodeId>,
    queue: VecDeque<Ev>,
    now: Millis,
    actions: Vec<(NodeId, Action)>,
    generation: u64,
}

enum Ev {
    Msg(NodeId, Vec<u8>),
    Join(NodeId),
    Leave(NodeId),
}

impl Bus {
    fn new(n: u32, settings: FenceSettings) -> Bus {
        let doms = (1..=n)
            .map(|i| {
                (
                    NodeId(i),
                    Domain::new(NodeId(i), entries(n), settings.clone()),
                )
            })
            .collect();
        Bus {
            doms,
            group: BTreeSet::new(),
            queue: VecDeque::new(),
            now: Millis(1000),
            actions: Vec::new(),
            generation: 1,
        }
    }

    fn input(&mut self, id: NodeId, input: Input) {
        let mut out = Vec::new();
        let now = self.now;
        self.doms
            .get_mut(&id)
            .expect("node")
            .handle(now, 1_700_000_000, input, &mut out);
        for a in out {
            match a {
                Action::Send(p) => self.queue.push_back(Ev::Msg(id, p)),
                Action::JoinGroup => self.queue.push_back(Ev::Join(id)),
                Action::LeaveGroup => self.queue.push_back(Ev::Leave(id)),
                other => self.actions.push((id, other)),
            }
        }
    }

    /// Delivers everything queued (and what that causes).
    fn flush(&mut self) {
        while let Some(ev) = self.queue.pop_front() {
            match ev {
                Ev::Msg(from, payload) => {
                    if !self.group.contains(&from) {
                        continue;
                    }
                    for m in self.group.clone() {
                        let payload = payload.clone();
                        self.input(m, Input::Deliver { from, payload });
                    }
                }
                Ev::Join(id) => self.change(&[id], &[]),
                Ev::Leave(id) => self.change(&[], &[id]),
            }
        }
    }

    /// A group view: `joined` join, `left` leave (failures and leaves alike).
    fn change(&mut self, joined: &[NodeId], left: &[NodeId]) {
        let old = self.group.clone();
        self.group.extend(joined);
        for l in left {
            self.group.remove(l);
        }
        let members: Vec<NodeId> = self.group.iter().copied().collect();
        for id in old.union(&self.group).copied().collect::<Vec<_>>() {
            if !self.doms.contains_key(&id) {
                continue;
            }
            let input = Input::GroupView {
                generation: self.generation,
                members: members.clone(),
                joined: joined.to_vec(),
                left: left.to_vec(),
            };
            self.input(id, input);
        }
    }

    /// cmand's view on every node in `to`, then (the settle time later) its quorum.
    fn cluster(&mut self, to: &[u32], members: &[(u32, u64)]) {
        self.cluster_no_quorum(to, members);
        self.now = self.now.plus(VIEW_SETTLE_MS);
        for &n in to {
            self.input(NodeId(n), Input::Quorum { quorate: true });
        }
    }

    fn join_all(&mut self, ids: &[u32]) {
        for &i in ids {
            self.input(NodeId(i), Input::Join);
            self.flush();
        }
    }

    fn d(&self, id: u32) -> &Domain {
        &self.doms[&NodeId(id)]
    }

    fn take(&mut self) -> Vec<(NodeId, Action)> {
        std::mem::take(&mut self.actions)
    }

    fn fences(actions: &[(NodeId, Action)]) -> Vec<(u32, u32, u64)> {
        actions
            .iter()
            .filter_map(|(by, a)| match a {
                Action::Fence {
                    victim, attempt, ..
                } => Some((by.0, victim.0, *attempt)),
                _ => None,
            })
            .collect()
    }

    fn logs(actions: &[(NodeId, Action)], node: u32) -> Vec<String> {
        actions
            .iter()
            .filter_map(|(by, a)| match a {
                Action::Log(l) if by.0 == node => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    fn fenced(actions: &[(NodeId, Action)]) -> Vec<(u32, u32, FenceHow)> {
        actions
            .iter()
            .filter_map(|(by, a)| match a {
                Action::Fenced(r) => Some((by.0, r.node, r.how)),
                _ => None,
            })
            .collect()
    }

    fn done(&mut self, by: u32, victim: u32, attempt: u64, success: bool) {
        let outcome = AttemptOutcome {
            success,
            method: success.then(|| "power".into()),
            device: success.then(|| "apc".into()),
        };
        let input = Input::FenceDone {
            victim: NodeId(victim),
            attempt,
            outcome,
        };
        self.input(NodeId(by), input);
        self.flush();
    }
}

/// Three nodes, all cmand members (incarnations 11, 12, 13), all in the domain.
fn three(settings: FenceSettings) -> Bus {
    let mut b = Bus::new(3, settings);
    b.cluster(&[1, 2, 3], &[(1, 11), (2, 12), (3, 13)]);
    b.join_all(&[1, 2, 3]);
    b.take();
    b
}

/// Node 3 fails: it leaves cmand's view, then the group.
fn fail_three(b: &mut Bus) {
    b.cluster(&[1, 2], &[(1, 11), (2, 12)]);
    b.change(&[], &[NodeId(3)]);
    b.flush();
}

#[test]
fn a_failed_member_is_a_victim_with_the_incarnation_of_its_last_cmand_view() {
    let mut b = three(quick());
    fail_three(&mut b);
    for n in [1, 2] {
        assert_eq!(b.d(n).victims(), vec![(NodeId(3), 13)], "node {n}");
    }
    let a = b.take();
    assert!(a.iter().any(|(_, x)| *x
        == Action::Victim {
            node: NodeId(3),
            incarnation: 13
        }));
    assert_eq!(Bus::fences(&a), vec![(1, 3, 1)], "only the master fences");
    assert!(Bus::logs(&a, 2).contains(&"fencing deferred to node1".to_string()));
    assert_eq!(b.d(1).domain_info().current_victim, 3);
}

#[test]
fn success_reaches_every_member_as_one_fenced_record_and_answers_is_fenced() {
    let mut b = three(quick());
    assert_eq!(b.d(2).is_fenced(NodeId(3), 13), FenceState::Unknown);
    fail_three(&mut b);
    assert_eq!(b.d(2).is_fenced(NodeId(3), 13), FenceState::Pending);
    b.take();
    b.done(1, 3, 1, true);
    let a = b.take();
    assert_eq!(
        Bus::fenced(&a),
        vec![(1, 3, FenceHow::Agent), (2, 3, FenceHow::Agent)]
    );
    for n in [1, 2] {
        let FenceState::Fenced(r) = b.d(n).is_fenced(NodeId(3), 13) else {
            panic!("node {n} does not say fenced");
        };
        assert_eq!(
            (r.incarnation, r.master, r.method.as_deref()),
            (13, 1, Some("power"))
        );
        assert!(b.d(n).victims().is_empty());
        assert_eq!(b.d(n).domain_info().wait_state, WaitState::None);
        // A newer incarnation is not covered by this record.
        assert_eq!(b.d(n).is_fenced(NodeId(3), 14), FenceState::Unknown);
    }
    assert!(Bus::logs(&a, 1).contains(&"fence node3 success".to_string()));
}

#[test]
fn a_result_for_a_stale_attempt_is_ignored() {
    let mut b = three(quick());
    fail_three(&mut b);
    b.take();
    b.done(1, 3, 99, true);
    let a = b.take();
    assert!(Bus::fenced(&a).is_empty());
    assert_eq!(b.d(1).victims(), vec![(NodeId(3), 13)]);
}

#[test]
fn no_attempt_is_issued_while_inquorate_and_the_wait_state_says_quorum() {
    let mut b = three(quick());
    for n in [1, 2] {
        b.input(NodeId(n), Input::Quorum { quorate: false });
    }
    b.cluster_no_quorum(&[1, 2], &[(1, 11), (2, 12)]);
    b.change(&[], &[NodeId(3)]);
    b.flush();
    let a = b.take();
    assert!(Bus::fences(&a).is_empty());
    assert_eq!(b.d(1).domain_info().wait_state, WaitState::Quorum);
    assert_eq!(
        b.d(1).next_deadline(),
        Some(b.now.plus(VICTIM_NUDGE_MS)),
        "no fencing timer, only the nudge"
    );
    b.now = b.now.plus(VIEW_SETTLE_MS);
    b.input(NodeId(1), Input::Quorum { quorate: true });
    assert_eq!(Bus::fences(&b.take()), vec![(1, 3, 1)]);
}

impl Bus {
    fn cluster_no_quorum(&mut self, to: &[u32], members: &[(u32, u64)]) {
        self.generation += 1;
        let members: Vec<(NodeId, u64)> = members.iter().map(|&(n, i)| (NodeId(n), i)).collect();
        for &n in to {
            let input = Input::ClusterView {
                generation: self.generation,
                members: members.clone(),
            };
            self.input(NodeId(n), input);
        }
    }
}

#[test]
fn no_attempt_starts_before_the_quorum_event_that_follows_a_view_had_time_to_arrive() {
    let mut b = three(quick());
    b.change(&[], &[NodeId(3)]); // fenced on 3 died: a victim, still in cmand's view
    b.flush();
    b.take();
    b.cluster_no_quorum(&[1, 2], &[(1, 11), (2, 12)]);
    assert!(
        Bus::fences(&b.take()).is_empty(),
        "not in the same instant as the view"
    );
    assert_eq!(b.d(1).next_deadline(), Some(b.now.plus(VIEW_SETTLE_MS)));
    b.input(NodeId(1), Input::Quorum { quorate: false });
    b.now = b.now.plus(VIEW_SETTLE_MS);
    b.input(NodeId(1), Input::Tick);
    assert!(
        Bus::fences(&b.take()).is_empty(),
        "quorum was lost with that view"
    );
    b.input(NodeId(1), Input::Quorum { quorate: true });
    assert_eq!(Bus::fences(&b.take()).len(), 1);
}

#[test]
fn failures_back_off_doubling_to_the_maximum_and_logs_stop_after_the_third() {
    let mut b = three(FenceSettings {
        retry_initial_ms: 1000,
        retry_max_ms: 4000,
        ..quick()
    });
    fail_three(&mut b);
    let mut attempt = Bus::fences(&b.take())[0].2;
    let mut waits = Vec::new();
    let mut failed_logs = 0;
    for _ in 0..6 {
        b.done(1, 3, attempt, false);
        failed_logs += Bus::logs(&b.take(), 1)
            .iter()
            .filter(|l| *l == "fence node3 failed")
            .count();
        let failed_at = b.now;
        loop {
            let d = b.d(1).next_deadline().expect("a retry is scheduled");
            b.now = d;
            b.input(NodeId(1), Input::Tick);
            b.flush();
            let a = b.take();
            failed_logs += Bus::logs(&a, 1)
                .iter()
                .filter(|l| *l == "fence node3 failed")
                .count();
            let next = Bus::fences(&a);
            if let Some(&(_, _, n)) = next.first() {
                assert!(n > attempt, "every attempt has a new number");
                attempt = n;
                waits.push(b.now.since(failed_at));
                break;
            }
        }
    }
    assert_eq!(waits, vec![1000, 2000, 4000, 4000, 4000, 4000]);
    assert_eq!(failed_logs, 3);
}

#[test]
fn an_acknowledgement_from_any_member_completes_with_override_and_cancels_the_attempt() {
    let mut b = three(quick());
    fail_three(&mut b);
    let attempt = Bus::fences(&b.take())[0].2;
    b.input(NodeId(2), Input::Acknowledge { node: NodeId(3) });
    b.flush();
    let a = b.take();
    assert!(a.contains(&(
        NodeId(1),
        Action::CancelFence {
            victim: NodeId(3),
            attempt
        }
    )));
    assert_eq!(
        Bus::fenced(&a),
        vec![(1, 3, FenceHow::Override), (2, 3, FenceHow::Override)]
    );
    assert!(Bus::logs(&a, 1)
        .contains(&"fence node3 overridden by administrator intervention".to_string()));
    // The agents' late success changes nothing.
    b.done(1, 3, attempt, true);
    assert!(Bus::fenced(&b.take()).is_empty());
}

#[test]
fn an_external_fencing_completes_the_victim_with_how_external() {
    let mut b = three(quick());
    fail_three(&mut b);
    b.take();
    let input = Input::External {
        node: NodeId(3),
        method: Some("1".into()),
        device: Some("apc".into()),
    };
    b.input(NodeId(2), input);
    b.flush();
    let a = b.take();
    assert_eq!(
        Bus::fenced(&a),
        vec![(1, 3, FenceHow::External), (2, 3, FenceHow::External)]
    );
    assert!(b.d(1).victims().is_empty());
}

#[test]
fn a_clean_leave_is_announced_and_makes_no_victim() {
    let mut b = three(quick());
    b.input(NodeId(3), Input::Leave);
    b.flush();
    let a = b.take();
    assert!(a.contains(&(NodeId(3), Action::Left)));
    assert!(b.d(1).victims().is_empty() && b.d(2).victims().is_empty());
    assert_eq!(b.d(1).domain_info().members, vec![1, 2]);
    assert!(!b.d(3).joined());
}

#[test]
fn leaving_the_group_unannounced_while_a_cmand_member_kills_and_then_fences_the_node() {
    let mut b = three(quick());
    b.change(&[], &[NodeId(3)]); // fenced on 3 died, cmand lives
    b.flush();
    let a = b.take();
    assert!(a.contains(&(NodeId(1), Action::KillNode { node: NodeId(3) })));
    assert_eq!(b.d(1).victims(), vec![(NodeId(3), 13)]);
    assert!(Bus::fences(&a).is_empty(), "wait until cmand removed it");
    b.cluster(&[1, 2], &[(1, 11), (2, 12)]);
    assert_eq!(Bus::fences(&b.take()), vec![(1, 3, 1)]);
}

#[test]
fn post_fail_delay_waits_then_logs_and_fences() {
    let mut b = three(FenceSettings {
        post_fail_delay_ms: Some(5000),
        ..quick()
    });
    fail_three(&mut b);
    assert!(Bus::fences(&b.take()).is_empty());
    assert_eq!(b.d(1).next_deadline(), Some(b.now.plus(5000)));
    assert_eq!(
        b.d(2).next_deadline(),
        Some(b.now.plus(VICTIM_NUDGE_MS)),
        "only the master runs the delay"
    );
    b.now = b.now.plus(5000);
    b.input(NodeId(1), Input::Tick);
    let a = b.take();
    assert!(Bus::logs(&a, 1)
        .contains(&"node3 not a cluster member after 5 sec post_fail_delay".to_string()));
    assert_eq!(Bus::fences(&a).len(), 1);
}

#[test]
fn a_victim_back_with_a_new_incarnation_during_the_delay_is_done_how_member() {
    let mut b = three(FenceSettings {
        post_fail_delay_ms: Some(5000),
        ..quick()
    });
    fail_three(&mut b);
    b.take();
    b.cluster(&[1, 2], &[(1, 11), (2, 12), (3, 20)]);
    b.flush();
    let a = b.take();
    assert_eq!(
        Bus::fenced(&a),
        vec![(1, 3, FenceHow::Member), (2, 3, FenceHow::Member)]
    );
    assert!(Bus::fences(&a).is_empty());
    assert!(matches!(
        b.d(2).is_fenced(NodeId(3), 13),
        FenceState::Fenced(_)
    ));
}

#[test]
fn a_victim_rebooted_by_the_running_attempt_is_done_by_that_attempt_how_agent() {
    let mut b = three(quick());
    fail_three(&mut b);
    let fences = Bus::fences(&b.take());
    assert_eq!(fences.len(), 1);
    let (_, _, attempt) = fences[0];
    // The agent's `reboot` powers the victim on again: it rejoins before the agent ends.
    b.cluster(&[1, 2], &[(1, 11), (2, 12), (3, 20)]);
    b.flush();
    let a = b.take();
    assert!(
        Bus::fenced(&a).is_empty(),
        "no completion while the attempt runs"
    );
    assert!(!a
        .iter()
        .any(|(_, x)| matches!(x, Action::CancelFence { .. })));
    b.done(1, 3, attempt, true);
    b.flush();
    assert_eq!(
        Bus::fenced(&b.take()),
        vec![(1, 3, FenceHow::Agent), (2, 3, FenceHow::Agent)]
    );
}

#[test]
fn is_fenced_answers_member_for_a_node_back_with_a_newer_incarnation() {
    let mut b = three(quick());
    b.cluster(&[1], &[(1, 11), (2, 12), (3, 21)]);
    let FenceState::Fenced(r) = b.d(1).is_fenced(NodeId(3), 13) else {
        panic!("not fenced");
    };
    assert_eq!(r.how, FenceHow::Member);
    assert_eq!(b.d(1).is_fenced(NodeId(3), 21), FenceState::Unknown);
}

#[test]
fn post_join_delay_applies_when_the_change_added_nodes() {
    let mut b = Bus::new(
        3,
        FenceSettings {
            post_join_delay_ms: Some(7000),
            post_fail_delay_ms: Some(0),
            clean_start: false,
            ..quick()
        },
    );
    b.cluster(&[1], &[(1, 11)]);
    b.join_all(&[1]);
    let a = b.take();
    assert_eq!(b.d(1).victims(), vec![(NodeId(2), 0), (NodeId(3), 0)]);
    assert!(Bus::fences(&a).is_empty());
    assert_eq!(b.d(1).next_deadline(), Some(b.now.plus(7000)));
    // Node 2 comes up in time: dropped (how = Member); the timer restarts for node 3.
    b.now = b.now.plus(3000);
    b.cluster(&[1], &[(1, 11), (2, 12)]);
    b.flush();
    assert_eq!(b.d(1).victims(), vec![(NodeId(3), 0)]);
    let view_at = b.now.0 - VIEW_SETTLE_MS;
    assert_eq!(b.d(1).next_deadline(), Some(Millis(view_at + 7000)));
    b.now = b.now.plus(7000);
    b.input(NodeId(1), Input::Tick);
    let a = b.take();
    assert!(Bus::logs(&a, 1)
        .contains(&"node3 not a cluster member after 7 sec post_join_delay".to_string()));
    assert_eq!(Bus::fences(&a), vec![(1, 3, 1)]);
}

#[test]
fn wait_forever_never_times_out() {
    let mut b = Bus::new(
        2,
        FenceSettings {
            post_join_delay_ms: None,
            clean_start: false,
            ..quick()
        },
    );
    b.cluster(&[1], &[(1, 11)]);
    b.join_all(&[1]);
    assert_eq!(b.d(1).victims(), vec![(NodeId(2), 0)]);
    assert_eq!(b.d(1).next_deadline(), Some(b.now.plus(VICTIM_NUDGE_MS)));
    b.now = b.now.plus(1_000_000);
    b.input(NodeId(1), Input::Tick);
    assert!(Bus::fences(&b.take()).is_empty());
}

#[test]
fn clean_start_means_no_start_up_victims() {
    let mut b = Bus::new(3, quick());
    b.cluster(&[1], &[(1, 11)]);
    b.join_all(&[1]);
    assert!(b.d(1).victims().is_empty());
}

#[test]
fn start_up_victims_are_dropped_when_an_existing_member_has_the_state() {
    let settings = FenceSettings {
        post_join_delay_ms: None,
        clean_start: false,
        ..quick()
    };
    let mut b = Bus::new(4, settings);
    b.cluster(&[1, 2, 3], &[(1, 11), (2, 12), (3, 13)]);
    b.join_all(&[1]);
    assert_eq!(
        b.d(1).victims(),
        vec![(NodeId(4), 0)],
        "2 and 3 are cmand members"
    );
    b.input(NodeId(1), Input::Acknowledge { node: NodeId(4) });
    b.flush();
    assert!(b.d(1).victims().is_empty(), "4 acknowledged");
    b.input(NodeId(2), Input::Join);
    b.flush();
    let a = b.take();
    assert!(
        a.contains(&(
            NodeId(2),
            Action::Victim {
                node: NodeId(4),
                incarnation: 0
            }
        )),
        "node 2 alone would start-up fence node 4"
    );
    assert!(b.d(2).victims().is_empty(), "node 1's state covers node 4");
    assert_eq!(b.d(2).master(), Some(NodeId(1)));
    assert!(
        b.d(2).nodes()[3].last.is_some(),
        "the record was transferred"
    );
}

#[test]
fn the_master_is_the_lowest_member_with_complete_state_not_the_lowest_id() {
    let mut b = Bus::new(3, quick());
    b.cluster(&[1, 2, 3], &[(1, 11), (2, 12), (3, 13)]);
    b.join_all(&[2, 3, 1]);
    for n in [1, 2, 3] {
        assert_eq!(b.d(n).master(), Some(NodeId(2)), "node {n}");
    }
    // The domain created by several nodes at once: nobody complete, lowest id.
    let mut b = Bus::new(3, quick());
    b.cluster(&[1, 2, 3], &[(1, 11), (2, 12), (3, 13)]);
    for n in [3, 2] {
        b.input(NodeId(n), Input::Join);
    }
    b.flush();
    assert_eq!(b.d(3).master(), Some(NodeId(2)));
}

#[test]
fn the_round_waits_for_every_start_of_the_current_change_only() {
    let mut b = three(quick());
    b.cluster(&[1, 2], &[(1, 11), (2, 12)]);
    b.change(&[], &[NodeId(3)]);
    // Before the starts are delivered, another change: the old starts no longer count.
    b.change(&[], &[]);
    assert_eq!(b.d(1).domain_info().wait_state, WaitState::Messages);
    assert!(Bus::fences(&b.take()).is_empty());
    b.flush();
    assert_eq!(b.d(1).master(), Some(NodeId(1)));
    assert_eq!(Bus::fences(&b.take()).len(), 1);
}

#[test]
fn a_member_holding_victims_resends_its_start_which_completed_members_ignore() {
    let mut b = three(FenceSettings {
        post_fail_delay_ms: None,
        ..quick()
    });
    fail_three(&mut b);
    b.take();
    b.now = b.now.plus(VICTIM_NUDGE_MS);
    b.input(NodeId(2), Input::Tick);
    assert_eq!(b.queue.len(), 1, "one start resent");
    b.flush();
    assert_eq!(
        b.d(1).domain_info().wait_state,
        WaitState::Fencing,
        "no new round"
    );
    assert_eq!(b.d(2).next_deadline(), Some(b.now.plus(VICTIM_NUDGE_MS)));
}

#[test]
fn a_start_for_a_newer_change_with_our_members_opens_that_round_everywhere() {
    let mut b = three(quick());
    // Node 3 alone saw a change (cut off, merged back in a newer cmand view).
    let change = ChangeId {
        generation: 99,
        members: vec![1, 2, 3],
    };
    let state = StateBody::default();
    b.queue.push_back(Ev::Msg(
        NodeId(3),
        DomainMsg::Start { change, state }.encode(),
    ));
    b.flush();
    for n in [1, 2] {
        assert_eq!(
            b.d(n).master(),
            Some(NodeId(1)),
            "node {n} completed the adopted round"
        );
    }
    assert!(b.take().iter().any(
        |(_, a)| matches!(a, Action::DomainChanged(i) if i.wait_state == WaitState::Messages)
    ));
}

#[test]
fn a_bad_payload_is_logged_and_ignored() {
    let mut b = three(quick());
    for payload in [vec![], vec![1, 0xff, 0xff], vec![7, 1, 2]] {
        b.input(
            NodeId(1),
            Input::Deliver {
                from: NodeId(2),
                payload,
            },
        );
    }
    let a = b.take();
    assert_eq!(
        Bus::logs(&a, 1)
            .iter()
            .filter(|l| l.starts_with("ignored:"))
            .count(),
        3
    );
    assert!(b.d(1).victims().is_empty());
}

#[test]
fn only_one_fenced_action_per_member_and_failure_even_if_the_result_arrives_twice() {
    let mut b = three(quick());
    fail_three(&mut b);
    b.take();
    b.done(1, 3, 1, true);
    b.input(
        NodeId(2),
        Input::External {
            node: NodeId(3),
            method: None,
            device: None,
        },
    );
    b.flush();
    let a = b.take();
    assert_eq!(Bus::fenced(&a).len(), 2, "{a:?}");
}

#[test]
fn backoff_doubles_from_the_initial_value_up_to_the_maximum() {
    let s = FenceSettings::default();
    let got: Vec<u64> = (1..=8).map(|f| s.backoff_ms(f)).collect();
    assert_eq!(
        got,
        vec![1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
    );
    assert_eq!(s.backoff_ms(u32::MAX), 30000);
}

#[test]
fn settings_come_from_fence_daemon_with_minus_one_as_forever() {
    let mut conf = crate::config::ClusterConf::default();
    conf.fence_daemon.post_join_delay = -1;
    conf.fence_daemon.post_fail_delay = 2;
    conf.fence_daemon.override_time = 1;
    conf.clusternodes.push(crate::config::ClusterNode {
        name: "a".into(),
        nodeid: NodeId(4),
        ..Default::default()
    });
    let (nodes, s) = Domain::settings_from_config(&conf);
    assert_eq!(s.post_join_delay_ms, None);
    assert_eq!(s.post_fail_delay_ms, Some(2000));
    assert_eq!(s.override_time_ms, 3000);
    assert_eq!(
        nodes,
        vec![NodeEntry {
            id: NodeId(4),
            name: "a".into(),
            has_methods: false
        }]
    );
}

#[test]
fn reconfigure_takes_new_names_and_delays_for_the_next_failure() {
    let mut b = three(quick());
    let mut nodes = entries(3);
    nodes[2].name = "renamed".into();
    let settings = FenceSettings {
        post_fail_delay_ms: Some(2000),
        ..quick()
    };
    for n in [1, 2] {
        let input = Input::Reconfigure {
            nodes: nodes.clone(),
            settings: settings.clone(),
        };
        b.input(NodeId(n), input);
    }
    fail_three(&mut b);
    assert!(
        Bus::fences(&b.take()).is_empty(),
        "the new post_fail_delay applies"
    );
    b.now = b.now.plus(2000);
    b.input(NodeId(1), Input::Tick);
    let a = b.take();
    assert!(a
        .iter()
        .any(|(_, x)| matches!(x, Action::Fence { name, .. } if name == "renamed")));
}
