//! Unit tests: a few cores wired by hand (messages delivered after a fixed delay).

use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

const DELAY: u64 = 2;

struct Lab {
    cores: BTreeMap<NodeId, Membership>,
    now: Millis,
    /// (deliver at, order, from, incarnation, to, msg)
    queue: Vec<(Millis, u64, NodeId, u64, NodeId, Msg)>,
    order: u64,
    events: Vec<(Millis, NodeId, Action)>,
    rng: Xoshiro256PlusPlus,
    /// One-way cuts: (from, to) dropped.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// One-way cuts of one message kind: (from, to, kind) dropped.
    cut_kind: BTreeSet<(NodeId, NodeId, &'static str)>,
    next_id: u64,
}

fn conf(me: u32, inc: u64, n: u32) -> MembershipConfig {
    let nodes = (1..=n)
        .map(|i| NodeConf {
            id: NodeId(i),
            votes: 1,
        })
        .collect();
    MembershipConfig::new(NodeId(me), inc, nodes)
}

impl Lab {
    fn new(n: u32) -> Lab {
        Lab::with(n, |c| c)
    }

    fn with(n: u32, f: impl Fn(MembershipConfig) -> MembershipConfig) -> Lab {
        let cores = (1..=n)
            .map(|i| {
                (
                    NodeId(i),
                    Membership::new(f(conf(i, 1, n))).expect("config"),
                )
            })
            .collect();
        Lab {
            cores,
            now: Millis(0),
            queue: Vec::new(),
            order: 0,
            events: Vec::new(),
            rng: Xoshiro256PlusPlus::seed_from_u64(7),
            cut: BTreeSet::new(),
            cut_kind: BTreeSet::new(),
            next_id: 0,
        }
    }

    fn input(&mut self, node: u32, input: Input) {
        let id = NodeId(node);
        let Some(core) = self.cores.get_mut(&id) else {
            return;
        };
        let mut out = Vec::new();
        core.handle(self.now, &mut self.rng, input, &mut out);
        let inc = core.incarnation();
        for a in out {
            match a {
                Action::Send { to, msg } => {
                    if !self.cut.contains(&(id, to))
                        && !self.cut_kind.contains(&(id, to, msg.kind()))
                    {
                        self.order += 1;
                        self.queue
                            .push((self.now.plus(DELAY), self.order, id, inc, to, msg));
                    }
                }
                other => self.events.push((self.now, id, other)),
            }
        }
    }

    fn request(&mut self, node: u32, request: ClientRequest) {
        self.next_id += 1;
        let id = self.next_id;
        self.input(node, Input::Request { id, request });
    }

    fn run_until(&mut self, until: Millis) {
        loop {
            let next_msg = self.queue.iter().map(|q| (q.0, q.1)).min();
            let next_timer = self
                .cores
                .iter()
                .map(|(id, c)| (c.next_deadline(), *id))
                .min();
            let t_msg = next_msg.map_or(Millis(u64::MAX), |m| m.0);
            let t_timer = next_timer.map_or(Millis(u64::MAX), |t| t.0);
            let t = t_msg.min(t_timer);
            if t > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(t);
            if t_msg <= t_timer {
                let key = next_msg.expect("message");
                let i = self
                    .queue
                    .iter()
                    .position(|q| (q.0, q.1) == key)
                    .expect("queued");
                let (_, _, from, inc, to, msg) = self.queue.remove(i);
                self.input(
                    to.0,
                    Input::Message {
                        from,
                        incarnation: inc,
                        msg,
                    },
                );
            } else if let Some((_, id)) = next_timer {
                self.input(id.0, Input::Tick);
            }
            self.reap();
        }
    }

    /// Removes cores that shut down.
    fn reap(&mut self) {
        self.cores.retain(|_, c| !c.is_shut_down());
    }

    fn crash(&mut self, node: u32) {
        self.cores.remove(&NodeId(node));
        self.queue.retain(|q| q.4 != NodeId(node));
    }

    fn restart(&mut self, node: u32, inc: u64, n: u32) {
        let core = Membership::new(conf(node, inc, n)).expect("config");
        self.cores.insert(NodeId(node), core);
    }

    fn view_of(&self, node: u32) -> Option<(ViewId, Vec<u32>)> {
        self.cores.get(&NodeId(node)).and_then(|c| {
            c.view()
                .map(|(v, m)| (v, m.iter().map(|x| x.0 .0).collect()))
        })
    }

    fn members(&self, node: u32) -> Vec<u32> {
        self.view_of(node).map(|v| v.1).unwrap_or_default()
    }

    fn quorate(&self, node: u32) -> bool {
        self.cores
            .get(&NodeId(node))
            .and_then(|c| c.quorum())
            .is_some_and(|q| q.quorate)
    }

    fn partition(&mut self, a: &[u32], b: &[u32]) {
        for &x in a {
            for &y in b {
                self.cut.insert((NodeId(x), NodeId(y)));
                self.cut.insert((NodeId(y), NodeId(x)));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn installs_after(&self, node: u32, t: Millis) -> usize {
        self.events
            .iter()
            .filter(|(at, n, a)| {
                *at >= t && *n == NodeId(node) && matches!(a, Action::ViewInstalled { .. })
            })
            .count()
    }

    fn delivered(&self, node: u32, view: Option<ViewId>) -> Vec<(u64, Vec<u8>)> {
        self.events
            .iter()
            .filter_map(|(_, n, a)| match a {
                Action::Deliver {
                    view: v,
                    seq,
                    payload,
                    ..
                } if *n == NodeId(node) && view.is_none_or(|w| w == *v) => {
                    Some((*seq, payload.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

/// Checks M1 over everything installed so far.
fn assert_views_agree(lab: &Lab) {
    let mut seen: BTreeMap<ViewId, Vec<(NodeId, u64)>> = BTreeMap::new();
    for (_, _, a) in &lab.events {
        if let Action::ViewInstalled { view, members } = a {
            let prev = seen.entry(*view).or_insert_with(|| members.clone());
            assert_eq!(prev, members, "view {view} installed with two member lists");
        }
    }
}

#[test]
fn three_nodes_form_one_quorate_view() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    let v1 = lab.view_of(1).expect("node 1 has a view");
    assert_eq!(v1.1, vec![1, 2, 3]);
    assert_eq!(lab.view_of(2), Some(v1.clone()));
    assert_eq!(lab.view_of(3), Some(v1.clone()));
    assert_eq!(v1.0.coordinator, NodeId(1));
    assert!(lab.quorate(1) && lab.quorate(2) && lab.quorate(3));
    assert_views_agree(&lab);
    // And it stays put.
    lab.run_until(Millis(6000));
    assert_eq!(lab.installs_after(1, Millis(2000)), 0);
}

#[test]
fn a_crashed_node_leaves_every_view_within_the_bound() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(3000));
    let crash_at = Millis(3000);
    lab.crash(1); // the coordinator
    let timing = lab.cores[&NodeId(2)].timing();
    let bound = crash_at.plus(timing.crash_bound_ms(DELAY));
    let mut gone_at = None;
    while lab.now < Millis(10_000) {
        let t = lab.now.plus(10);
        lab.run_until(t);
        if gone_at.is_none() && lab.members(2) == vec![2, 3] && lab.members(3) == vec![2, 3] {
            gone_at = Some(lab.now);
        }
    }
    let gone_at = gone_at.expect("survivors dropped node 1");
    assert!(gone_at <= bound, "node 1 left at {gone_at}, bound {bound}");
    assert!(gone_at >= crash_at.plus(timing.token_ms - timing.heartbeat_ms));
    assert!(lab.quorate(2), "2 of 3 votes stay quorate");
    assert_views_agree(&lab);
    // A crashed node that stays silent is dead, not "disallowed": that word is for a node
    // that is back with the incarnation the quorate view removed.
    let st = lab.cores[&NodeId(2)].status();
    let n1 = st.nodes.iter().find(|n| n.id == NodeId(1)).unwrap();
    assert_eq!(n1.state, NodeState::Dead);
}

#[test]
fn a_one_way_link_ends_in_a_stable_view_without_the_pair() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    // 2 no longer hears 1; 1 still hears 2.
    lab.cut.insert((NodeId(1), NodeId(2)));
    lab.run_until(Millis(6000));
    let (m1, m2, m3) = (lab.members(1), lab.members(2), lab.members(3));
    assert!(
        !(m1.contains(&1) && m1.contains(&2)),
        "1 and 2 together: {m1:?}"
    );
    assert!(
        !(m2.contains(&1) && m2.contains(&2)),
        "1 and 2 together: {m2:?}"
    );
    // Node 3 hears both and sides with one of them, consistently.
    assert!(m3 == m1 || m3 == m2, "3 {m3:?} 1 {m1:?} 2 {m2:?}");
    // Not flapping.
    let t = lab.now;
    lab.run_until(Millis(12_000));
    for n in 1..=3 {
        assert_eq!(lab.installs_after(n, t), 0, "node {n} kept changing views");
    }
    assert_views_agree(&lab);
}

#[test]
fn leave_removes_the_node_without_a_timeout_and_keeps_expected_votes() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    lab.request(3, ClientRequest::Leave { remove: false });
    let t = lab.now;
    lab.run_until(t.plus(100));
    assert_eq!(lab.members(1), vec![1, 2]);
    assert_eq!(lab.members(2), vec![1, 2]);
    lab.run_until(t.plus(500));
    assert!(!lab.cores.contains_key(&NodeId(3)), "node 3 shut down");
    let q = lab.cores[&NodeId(1)].quorum().expect("quorum");
    assert_eq!((q.expected_votes, q.quorum, q.quorate), (3, 2, true));
}

#[test]
fn leave_remove_lowers_expected_votes_to_the_node_count() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    lab.request(3, ClientRequest::Leave { remove: true });
    lab.run_until(Millis(2500));
    for n in [1, 2] {
        let q = lab.cores[&NodeId(n)].quorum().expect("quorum");
        assert_eq!(
            (q.expected_votes, q.quorum, q.quorate),
            (2, 2, true),
            "node {n}"
        );
    }
    // Then node 2 crashing leaves node 1 inquorate (1 vote < quorum 2): quorum never
    // decreases on a death.
    lab.crash(2);
    lab.run_until(Millis(5000));
    assert_eq!(lab.members(1), vec![1]);
    assert!(!lab.quorate(1));
}

#[test]
fn a_cut_off_node_is_not_merged_back_and_is_killed_by_the_quorate_side() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    lab.partition(&[3], &[1, 2]);
    lab.run_until(Millis(5000));
    assert_eq!(lab.members(1), vec![1, 2]);
    assert_eq!(lab.members(3), vec![3]);
    assert!(lab.quorate(1) && !lab.quorate(3));
    assert_eq!(lab.cores[&NodeId(1)].expelled(), vec![(NodeId(3), 1)]);
    lab.heal();
    lab.run_until(Millis(7000));
    // Never merged: no view of 1 or 2 ever held (3, incarnation 1) after the split.
    for (_, n, a) in &lab.events {
        if let Action::ViewInstalled { members, .. } = a {
            if *n != NodeId(3) && members.contains(&(NodeId(3), 1)) {
                assert!(members.len() == 3, "merged back: {members:?}");
            }
        }
    }
    let killed = lab.events.iter().any(|(_, n, a)| {
        *n == NodeId(3)
            && matches!(
                a,
                Action::Shutdown {
                    reason: ShutdownReason::Killed {
                        reason: KillReason::Rejoin,
                        ..
                    }
                }
            )
    });
    assert!(killed, "node 3 was told to exit");
    assert!(!lab.cores.contains_key(&NodeId(3)));
    // Restarted with a new incarnation, it joins normally.
    lab.restart(3, 2, 3);
    lab.run_until(Millis(10_000));
    assert_eq!(lab.members(1), vec![1, 2, 3]);
    assert_eq!(lab.members(3), vec![1, 2, 3]);
    assert!(lab.cores[&NodeId(1)].expelled().is_empty());
    assert_views_agree(&lab);
}

#[test]
fn inquorate_splits_merge_back_without_kills() {
    let mut lab = Lab::new(4);
    lab.run_until(Millis(2000));
    lab.partition(&[1, 2], &[3, 4]);
    lab.run_until(Millis(5000));
    assert_eq!(lab.members(1), vec![1, 2]);
    assert_eq!(lab.members(3), vec![3, 4]);
    assert!(!lab.quorate(1) && !lab.quorate(3));
    lab.heal();
    lab.run_until(Millis(8000));
    for n in 1..=4 {
        assert_eq!(lab.members(n), vec![1, 2, 3, 4], "node {n}");
        assert!(lab.quorate(n));
    }
}

#[test]
fn two_node_split_lower_id_kills_the_higher() {
    let mut lab = Lab::with(2, |mut c| {
        c.two_node = true;
        c.expected_votes = 1;
        c
    });
    lab.run_until(Millis(2000));
    lab.partition(&[1], &[2]);
    lab.run_until(Millis(4000));
    assert!(
        lab.quorate(1) && lab.quorate(2),
        "both halves quorate in two_node"
    );
    lab.heal();
    lab.run_until(Millis(6000));
    assert!(lab.cores.contains_key(&NodeId(1)));
    assert!(
        !lab.cores.contains_key(&NodeId(2)),
        "node 2 killed by node 1"
    );
}

#[test]
fn a_two_node_member_that_never_saw_its_peer_waits_for_it_before_quorum() {
    let mut lab = Lab::with(2, |mut c| {
        c.two_node = true;
        c.expected_votes = 1;
        c
    });
    lab.partition(&[1], &[2]);
    lab.run_until(Millis(3000));
    assert!(
        !lab.quorate(1) && !lab.quorate(2),
        "a lone two_node member that never saw its peer is not quorate"
    );
    lab.heal();
    lab.run_until(Millis(5000));
    assert!(lab.quorate(1) && lab.quorate(2));
    lab.partition(&[1], &[2]);
    lab.run_until(Millis(7000));
    assert!(
        lab.quorate(1) || lab.quorate(2),
        "after seeing each other, a split leaves two_node halves quorate"
    );
}

#[test]
fn kill_node_request_makes_the_target_exit() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    lab.request(1, ClientRequest::KillNode(NodeId(3)));
    lab.run_until(Millis(2500));
    assert!(!lab.cores.contains_key(&NodeId(3)));
    assert_eq!(lab.members(1), vec![1, 2]);
}

fn join_all(lab: &mut Lab, n: u32, group: &str) {
    for i in 1..=n {
        lab.request(
            i,
            ClientRequest::GroupJoin {
                group: group.into(),
            },
        );
    }
}

#[test]
fn group_messages_are_delivered_in_one_order_to_every_member() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    join_all(&mut lab, 3, "g");
    lab.run_until(Millis(2100));
    for n in 1..=3 {
        assert_eq!(
            lab.cores[&NodeId(n)].group_members("g"),
            vec![NodeId(1), NodeId(2), NodeId(3)]
        );
    }
    for round in 0..5u8 {
        for n in 1..=3u32 {
            lab.request(
                n,
                ClientRequest::GroupSend {
                    group: "g".into(),
                    payload: vec![n as u8, round],
                },
            );
        }
    }
    lab.run_until(Millis(2500));
    let d1 = lab.delivered(1, None);
    assert_eq!(d1.len(), 15);
    assert_eq!(lab.delivered(2, None), d1);
    assert_eq!(lab.delivered(3, None), d1);
    // FIFO per sender.
    for n in 1..=3u8 {
        let rounds: Vec<u8> = d1.iter().filter(|d| d.1[0] == n).map(|d| d.1[1]).collect();
        assert_eq!(rounds, vec![0, 1, 2, 3, 4]);
    }
}

#[test]
fn sending_without_joining_is_refused_and_a_full_queue_is_busy() {
    let mut lab = Lab::with(2, |mut c| {
        c.max_queued = 2;
        c
    });
    lab.request(
        1,
        ClientRequest::GroupSend {
            group: "g".into(),
            payload: vec![1],
        },
    );
    lab.request(1, ClientRequest::GroupJoin { group: "g".into() });
    lab.request(
        1,
        ClientRequest::GroupSend {
            group: "g".into(),
            payload: vec![1],
        },
    );
    lab.request(
        1,
        ClientRequest::GroupSend {
            group: "g".into(),
            payload: vec![2],
        },
    );
    let replies: Vec<Result<(), RequestError>> = lab
        .events
        .iter()
        .filter_map(|(_, _, a)| match a {
            Action::Reply { result, .. } => Some(result.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        replies,
        vec![
            Err(RequestError::NotJoined { group: "g".into() }),
            Ok(()),
            Ok(()),
            Err(RequestError::Busy)
        ]
    );
}

#[test]
fn members_moving_together_deliver_the_same_set_before_the_new_view() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    join_all(&mut lab, 3, "g");
    lab.run_until(Millis(2100));
    let (old_view, _) = lab.view_of(2).expect("view");
    // The sequencer's copies to node 3 are lost from now on; node 2 gets them.
    lab.cut_kind.insert((NodeId(1), NodeId(3), "ordered"));
    lab.request(
        2,
        ClientRequest::GroupSend {
            group: "g".into(),
            payload: b"a".to_vec(),
        },
    );
    lab.request(
        2,
        ClientRequest::GroupSend {
            group: "g".into(),
            payload: b"b".to_vec(),
        },
    );
    lab.run_until(Millis(2110));
    assert_eq!(lab.delivered(2, Some(old_view)).len(), 2);
    assert!(lab.delivered(3, Some(old_view)).is_empty());
    lab.crash(1);
    lab.run_until(Millis(5000));
    assert_eq!(lab.members(2), vec![2, 3]);
    assert_eq!(lab.members(3), vec![2, 3]);
    let d2 = lab.delivered(2, Some(old_view));
    assert_eq!(
        lab.delivered(3, Some(old_view)),
        d2,
        "flush gave 3 what 2 delivered"
    );
    // Node 3 delivered them before installing the new view.
    let pos = |pred: &dyn Fn(&Action) -> bool| {
        lab.events
            .iter()
            .position(|(_, n, a)| *n == NodeId(3) && pred(a))
    };
    let last_deliver = pos(&|a| matches!(a, Action::Deliver { payload, .. } if payload == b"b"))
        .expect("delivered");
    let install = lab
        .events
        .iter()
        .rposition(|(_, n, a)| *n == NodeId(3) && matches!(a, Action::ViewInstalled { .. }))
        .expect("installed");
    assert!(last_deliver < install);
    // The group view in the new view no longer holds node 1.
    assert_eq!(
        lab.cores[&NodeId(3)].group_members("g"),
        vec![NodeId(2), NodeId(3)]
    );
}

#[test]
fn unsequenced_messages_are_resent_in_the_new_view() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    join_all(&mut lab, 3, "g");
    lab.run_until(Millis(2100));
    // Node 2's data never reaches the sequencer; then the sequencer dies.
    lab.cut_kind.insert((NodeId(2), NodeId(1), "data"));
    lab.request(
        2,
        ClientRequest::GroupSend {
            group: "g".into(),
            payload: b"late".to_vec(),
        },
    );
    lab.run_until(Millis(2150));
    lab.crash(1);
    lab.cut_kind.clear();
    lab.run_until(Millis(5000));
    let (new_view, _) = lab.view_of(3).expect("view");
    assert_eq!(lab.delivered(3, Some(new_view)).len(), 1);
    assert_eq!(
        lab.delivered(2, Some(new_view)),
        lab.delivered(3, Some(new_view))
    );
}

#[test]
fn expected_votes_request_is_checked_and_applied_everywhere() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    lab.request(1, ClientRequest::SetExpected(1));
    lab.request(1, ClientRequest::SetExpected(10));
    let refused = lab.events.iter().any(|(_, _, a)| {
        matches!(
            a,
            Action::Reply {
                result: Err(RequestError::Expected(_)),
                ..
            }
        )
    });
    assert!(refused, "quorum 6 is above the 3 votes present");
    lab.request(1, ClientRequest::SetExpected(5));
    lab.run_until(Millis(2300));
    for n in 1..=3 {
        let q = lab.cores[&NodeId(n)].quorum().expect("quorum");
        assert_eq!(
            (q.expected_votes, q.quorum, q.quorate),
            (5, 3, true),
            "node {n}"
        );
    }
}

#[test]
fn quorum_device_votes_count_while_polled_and_expire() {
    let mut lab = Lab::with(3, |mut c| {
        c.expected_votes = 5; // 3 nodes + qdisk 2
        c
    });
    lab.run_until(Millis(2000));
    lab.crash(2);
    lab.crash(3);
    lab.run_until(Millis(4000));
    assert!(!lab.quorate(1));
    lab.request(
        1,
        ClientRequest::QdiskUpdate {
            name: "qd".into(),
            votes: 2,
            alive: true,
        },
    );
    assert!(
        lab.quorate(1),
        "1 node vote + 2 device votes reach quorum 3 of 5"
    );
    let q = lab.cores[&NodeId(1)].quorum().expect("quorum");
    assert_eq!(q.total_votes, 3);
    // No update within quorum_dev_poll (= token): the device is dead again.
    lab.run_until(Millis(5500));
    let q = lab.cores[&NodeId(1)].quorum().expect("quorum");
    assert_eq!(q.total_votes, 1);
}

#[test]
fn config_updates_reach_every_member_and_lagging_joiners() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(2000));
    lab.crash(3);
    lab.run_until(Millis(4000));
    lab.request(
        1,
        ClientRequest::ConfigUpdate {
            version: 4,
            text: "<cluster config_version=\"4\"/>".into(),
        },
    );
    lab.run_until(Millis(4200));
    let updates = |lab: &Lab, n: u32| {
        lab.events
            .iter()
            .filter(|(_, id, a)| {
                *id == NodeId(n) && matches!(a, Action::ConfigUpdate { version: 4, .. })
            })
            .count()
    };
    assert_eq!(updates(&lab, 1), 1);
    assert_eq!(updates(&lab, 2), 1);
    lab.restart(3, 2, 3);
    lab.run_until(Millis(7000));
    assert_eq!(lab.members(3), vec![1, 2, 3]);
    assert_eq!(updates(&lab, 3), 1, "state transfer to the joiner");
}

#[test]
fn the_sequencer_skips_ids_its_origin_no_longer_holds() {
    // Simulator seed 47290: a member came back from a view nobody else shared. That view's
    // flush delivered its own local id 27 (it held the ordered copy) but not 26 (nobody
    // did), so 26 is resubmitted and ordered here, then 28 follows with low = 28. Waiting
    // for 27, which its origin no longer has, stalled every later message of that member.
    let mut lab = Lab::new(2);
    lab.request(1, ClientRequest::GroupJoin { group: "g".into() });
    lab.request(2, ClientRequest::GroupJoin { group: "g".into() });
    lab.run_until(Millis(2000));
    let view = lab.view_of(1).expect("a view").0;
    assert_eq!(lab.members(1), vec![1, 2]);
    let data = |local_id: u64, low: u64, byte: u8| Input::Message {
        from: NodeId(2),
        incarnation: 1,
        msg: Msg::Data {
            view,
            low,
            entry: Entry {
                origin: NodeId(2),
                origin_inc: 1,
                local_id,
                body: Body::Message {
                    group: "g".into(),
                    payload: vec![byte],
                },
            },
        },
    };
    lab.input(1, data(126, 126, 26));
    lab.input(1, data(128, 128, 28));
    lab.run_until(Millis(2500));
    let got: Vec<Vec<u8>> = lab
        .delivered(1, Some(view))
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert!(got.ends_with(&[vec![26], vec![28]]), "{got:?}");
}

#[test]
fn malformed_and_unknown_messages_change_nothing() {
    let mut lab = Lab::new(2);
    lab.run_until(Millis(2000));
    let before = lab.view_of(1);
    lab.input(
        1,
        Input::Message {
            from: NodeId(9),
            incarnation: 1,
            msg: Msg::Leave { remove: true },
        },
    );
    let huge = Msg::Data {
        view: before.as_ref().expect("view").0,
        low: 1,
        entry: Entry {
            origin: NodeId(2),
            origin_inc: 1,
            local_id: 1,
            body: Body::Message {
                group: "g".into(),
                payload: vec![0; MAX_PAYLOAD + 1],
            },
        },
    };
    lab.input(
        1,
        Input::Message {
            from: NodeId(2),
            incarnation: 1,
            msg: huge,
        },
    );
    lab.input(
        1,
        Input::Message {
            from: NodeId(2),
            incarnation: 0,
            msg: Msg::Leave { remove: true },
        },
    );
    lab.run_until(Millis(3000));
    assert_eq!(lab.view_of(1), before);
    assert_eq!(lab.cores[&NodeId(1)].status().counters.dropped, 3);
}

#[test]
fn config_validation_rejects_bad_setups() {
    let mut c = conf(1, 1, 3);
    c.two_node = true;
    assert!(matches!(
        Membership::new(c),
        Err(MembershipError::TwoNode { nodes: 3 })
    ));
    assert!(matches!(
        Membership::new(conf(4, 1, 3)),
        Err(MembershipError::NotConfigured { .. })
    ));
    let mut c = conf(1, 1, 2);
    c.token_ms = 10;
    assert!(matches!(
        Membership::new(c),
        Err(MembershipError::TokenTooShort { .. })
    ));
}

fn graph_strategy() -> impl Strategy<Value = (u32, Graph)> {
    (2u32..9).prop_flat_map(|n| {
        let pairs = proptest::collection::vec(any::<bool>(), (n * n) as usize);
        (Just(n), pairs).prop_map(|(n, bits)| {
            let mut g = BTreeMap::new();
            for a in 1..=n {
                let heard = (1..=n)
                    .filter(|&b| b != a && bits[((a - 1) * n + (b - 1)) as usize])
                    .map(|b| (NodeId(b), 1))
                    .collect();
                g.insert(NodeId(a), (1, heard));
            }
            (n, g)
        })
    })
}

proptest! {
    #[test]
    fn connected_sets_are_cliques_that_every_member_agrees_on((n, g) in graph_strategy()) {
        for me in 1..=n {
            let set = connected_set(NodeId(me), &g);
            prop_assert!(set.contains(&(NodeId(me), 1)));
            for &(a, _) in &set {
                for &(b, _) in &set {
                    if a != b {
                        prop_assert!(g[&a].1.contains(&(b, 1)) && g[&b].1.contains(&(a, 1)));
                    }
                }
                prop_assert_eq!(&connected_set(a, &g), &set);
            }
        }
    }

    #[test]
    fn any_message_bytes_never_panic_the_core(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut lab = Lab::new(2);
        lab.run_until(Millis(1000));
        if let Ok(msg) = postcard::from_bytes::<Msg>(&bytes) {
            lab.input(1, Input::Message { from: NodeId(2), incarnation: 1, msg });
            lab.run_until(Millis(2000));
        }
    }
}

fn view_strategy() -> impl Strategy<Value = ViewId> {
    (0u64..6, 0u32..5, 0u64..3).prop_map(|(epoch, c, incarnation)| ViewId {
        epoch,
        coordinator: NodeId(c),
        incarnation,
    })
}

fn members_strategy() -> impl Strategy<Value = Vec<(NodeId, u64)>> {
    proptest::collection::vec((0u32..5, 0u64..3).prop_map(|(n, i)| (NodeId(n), i)), 0..5)
}

fn entry_strategy() -> impl Strategy<Value = Entry> {
    (0u32..5, 0u64..3, 0u64..4, 0u8..3).prop_map(|(o, i, l, k)| Entry {
        origin: NodeId(o),
        origin_inc: i,
        local_id: l,
        body: match k {
            0 => Body::Join { group: "g".into() },
            1 => Body::Message {
                group: "g".into(),
                payload: vec![k],
            },
            _ => Body::Expected { votes: l as u32 },
        },
    })
}

fn msg_strategy() -> impl Strategy<Value = Msg> {
    prop_oneof![
        (view_strategy(), members_strategy())
            .prop_map(|(view, members)| Msg::Propose(Propose { view, members })),
        (
            view_strategy(),
            members_strategy(),
            0u64..5,
            proptest::collection::vec((0u64..6, entry_strategy()), 0..3)
        )
            .prop_map(|(view, members, seq, tail)| Msg::Commit(Commit {
                view,
                members: members.clone(),
                expected: ExpectedVotes {
                    generation: seq,
                    votes: seq as u32
                },
                allow_decrease: seq % 2 == 0,
                expelled: members,
                groups: vec![("g".into(), vec![NodeId(1)])],
                flush: Some(Flush {
                    old_view: view,
                    seqs: tail.iter().map(|t| t.0).collect(),
                    entries: tail
                }),
            })),
        (view_strategy(), view_strategy()).prop_map(|(view, promised)| Msg::Nack {
            view,
            promised,
            reason: NackReason::Promised
        }),
        (view_strategy(), 0u64..6, 0u64..6, entry_strategy()).prop_map(
            |(view, seq, stable, entry)| Msg::Ordered {
                view,
                seq,
                stable,
                entry
            }
        ),
        (view_strategy(), 0u64..4, entry_strategy()).prop_map(|(view, low, entry)| Msg::Data {
            view,
            low,
            entry
        }),
        (view_strategy(), 0u64..6, 0u64..6).prop_map(|(view, from, to)| Msg::Retransmit {
            view,
            from,
            to
        }),
        view_strategy().prop_map(|view| Msg::CommitAck { view }),
        any::<bool>().prop_map(|remove| Msg::Leave { remove }),
        (0u64..3, any::<bool>()).prop_map(|(t, quorate)| Msg::Kill {
            reason: KillReason::Rejoin,
            target_incarnation: t,
            quorate
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_protocol_messages_never_panic_or_stall_a_core(
        msgs in proptest::collection::vec((1u32..4, 0u64..3, msg_strategy()), 1..20)
    ) {
        let mut lab = Lab::new(3);
        lab.run_until(Millis(1500));
        for (i, (from, inc, msg)) in msgs.into_iter().enumerate() {
            let to = 1 + (i as u32 % 3);
            if from != to {
                lab.input(to, Input::Message { from: NodeId(from), incarnation: inc, msg });
            }
        }
        lab.run_until(Millis(3000));
        for core in lab.cores.values() {
            prop_assert!(core.next_deadline() > lab.now || core.is_shut_down());
        }
    }
}

#[test]
fn extreme_numbers_in_messages_do_not_overflow() {
    let mut lab = Lab::new(3);
    lab.run_until(Millis(1500));
    let (view, _) = lab.view_of(1).expect("view");
    let max_view = ViewId {
        epoch: u64::MAX,
        coordinator: NodeId(2),
        incarnation: 1,
    };
    let entry = Entry {
        origin: NodeId(2),
        origin_inc: 1,
        local_id: u64::MAX,
        body: Body::Expected { votes: u32::MAX },
    };
    let msgs = vec![
        Msg::Data {
            view,
            low: u64::MAX,
            entry: entry.clone(),
        },
        Msg::Ordered {
            view,
            seq: u64::MAX,
            stable: u64::MAX,
            entry: entry.clone(),
        },
        Msg::Retransmit {
            view,
            from: u64::MAX,
            to: u64::MAX,
        },
        Msg::Propose(Propose {
            view: max_view,
            members: vec![(NodeId(1), 1), (NodeId(2), 1)],
        }),
        Msg::Commit(Commit {
            view: max_view,
            members: vec![(NodeId(1), 1), (NodeId(2), 1)],
            expected: ExpectedVotes {
                generation: u64::MAX,
                votes: u32::MAX,
            },
            allow_decrease: true,
            expelled: vec![(NodeId(3), u64::MAX)],
            groups: Vec::new(),
            flush: Some(Flush {
                old_view: view,
                seqs: vec![u64::MAX],
                entries: vec![(u64::MAX, entry)],
            }),
        }),
    ];
    for msg in msgs {
        lab.input(
            1,
            Input::Message {
                from: NodeId(2),
                incarnation: 1,
                msg,
            },
        );
    }
    lab.run_until(Millis(4000));
    assert!(lab.cores.contains_key(&NodeId(1)));
}

/// Found by the lab: n2 restarted (a newer incarnation) while the view was {1, 3}; n1
/// heard it before n3 did, so the graph had edges 1–2 and 1–3 but not 2–3. The cut must
/// keep the established member 3 and let the newcomer wait, not drop 3 (which the quorate
/// view {1, 2} would then expel and kill).
#[test]
fn a_rejoining_node_waits_instead_of_displacing_an_established_member() {
    let n = NodeId;
    let mut g: Graph = Graph::new();
    g.insert(n(1), (100, vec![(n(2), 900), (n(3), 300)]));
    g.insert(n(2), (900, vec![(n(1), 100)]));
    g.insert(n(3), (300, vec![(n(1), 100)]));
    assert_eq!(connected_set(n(1), &g), vec![(n(1), 100), (n(3), 300)]);
    assert_eq!(connected_set(n(3), &g), vec![(n(1), 100), (n(3), 300)]);
    // Once everyone hears everyone, all three are in.
    g.insert(n(2), (900, vec![(n(1), 100), (n(3), 300)]));
    g.insert(n(3), (300, vec![(n(1), 100), (n(2), 900)]));
    g.get_mut(&n(1)).unwrap().1.sort();
    assert_eq!(connected_set(n(1), &g).len(), 3);
}
