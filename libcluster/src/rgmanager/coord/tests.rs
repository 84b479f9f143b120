//! Protocol rules on a tiny world: a perfect total-order group, instant VM operations
//! (unless held), fenced answered by the test.

use super::*;
use crate::rgmanager::catalog::ServiceDef;
use crate::rgmanager::state::ServiceState;
use std::collections::VecDeque;

fn n(i: u32) -> NodeId {
    NodeId(i)
}

fn vm(name: &str) -> ServiceDef {
    let mut d = ServiceDef::new(name);
    d.migratory = true;
    d
}

const S: ServiceIndex = ServiceIndex(0);

struct World {
    nodes: BTreeMap<NodeId, Coordinator>,
    group: Vec<NodeId>,
    epoch: u64,
    now: Millis,
    wire: VecDeque<(NodeId, Vec<u8>)>,
    /// Where each VM runs (the truth).
    truth: BTreeMap<ServiceIndex, BTreeSet<NodeId>>,
    asked: Vec<(NodeId, NodeId, u64)>,
    replies: Vec<(NodeId, u64, i32)>,
    /// Hold migrations (answer Prepared but do not finish MigrateOut).
    hold_migrations: bool,
    /// Leave PrepareIncoming unanswered.
    hold_prepares: bool,
    /// Every StartVm: (node, service).
    starts: Vec<(NodeId, ServiceIndex)>,
    held: Vec<(NodeId, ServiceIndex, NodeId)>,
}

impl World {
    fn new(count: u32, services: usize) -> World {
        let cat = Catalog::new(
            vec![],
            (0..services).map(|i| vm(&format!("vm:{i}"))).collect(),
        );
        let nodes = (1..=count)
            .map(|i| {
                let cfg = CoordConfig {
                    me: n(i),
                    incarnation: 1,
                    nodes: (1..=count).map(n).collect(),
                    status_interval_ms: 1000,
                };
                (n(i), Coordinator::new(cfg, cat.clone()))
            })
            .collect();
        World {
            nodes,
            group: Vec::new(),
            epoch: 0,
            now: Millis(0),
            wire: VecDeque::new(),
            truth: BTreeMap::new(),
            asked: Vec::new(),
            replies: Vec::new(),
            hold_migrations: false,
            hold_prepares: false,
            starts: Vec::new(),
            held: Vec::new(),
        }
    }

    fn input(&mut self, to: NodeId, input: Input) {
        let mut out = Vec::new();
        if let Some(c) = self.nodes.get_mut(&to) {
            c.handle(self.now, input, &mut out);
        }
        self.act(to, out);
    }

    fn act(&mut self, me: NodeId, out: Vec<Action>) {
        for a in out {
            match a {
                Action::Send(p) => {
                    assert!(
                        p.len() <= crate::membership::MAX_PAYLOAD,
                        "a {}-byte group message",
                        p.len()
                    );
                    self.wire.push_back((me, p))
                }
                Action::StartVm { service } => {
                    self.starts.push((me, service));
                    self.truth.entry(service).or_default().insert(me);
                    self.input(
                        me,
                        Input::VmDone {
                            service,
                            result: VmResult::Started,
                        },
                    );
                }
                Action::StopVm { service } => {
                    self.truth.entry(service).or_default().remove(&me);
                    self.input(
                        me,
                        Input::VmDone {
                            service,
                            result: VmResult::Stopped,
                        },
                    );
                }
                Action::PrepareIncoming { .. } if self.hold_prepares => {}
                Action::PrepareIncoming { service, .. } => self.input(
                    me,
                    Input::VmDone {
                        service,
                        result: VmResult::Prepared {
                            uri: format!("tcp:node{me}"),
                        },
                    },
                ),
                Action::MigrateOut { service, to, .. } => {
                    if self.hold_migrations {
                        self.held.push((me, service, to));
                    } else {
                        self.finish_migration(me, service, to, true);
                    }
                }
                Action::CheckStatus { service } => {
                    let running = self.truth.get(&service).is_some_and(|t| t.contains(&me));
                    self.input(me, Input::Status { service, running });
                }
                Action::IsFenced { node, incarnation } => self.asked.push((me, node, incarnation)),
                Action::Reply { id, code } => self.replies.push((me, id, code)),
                Action::AbortIncoming { .. } | Action::JoinGroup | Action::Exit => {}
            }
        }
    }

    fn finish_migration(&mut self, from: NodeId, service: ServiceIndex, to: NodeId, ok: bool) {
        let result = if ok {
            let t = self.truth.entry(service).or_default();
            t.remove(&from);
            t.insert(to);
            VmResult::Migrated
        } else {
            VmResult::MigrateFailed { on_source: true }
        };
        self.input(from, Input::VmDone { service, result });
    }

    fn set_group(&mut self, members: &[u32]) {
        self.epoch += 1;
        self.group = members.iter().map(|&i| n(i)).collect();
        let view = ViewId {
            epoch: self.epoch,
            coordinator: self.group[0],
            incarnation: 1,
        };
        let cluster: Vec<(NodeId, u64)> = self.group.iter().map(|&m| (m, 1)).collect();
        for m in self.group.clone() {
            self.input(
                m,
                Input::ViewInstalled {
                    view,
                    members: cluster.clone(),
                },
            );
            self.input(
                m,
                Input::GroupView {
                    view,
                    seq: 0,
                    members: self.group.clone(),
                },
            );
        }
        self.settle();
    }

    /// A group join or leave ordered within the current cmand view (seq > 0).
    fn group_event(&mut self, members: &[u32], seq: u64) {
        let before = self.group.clone();
        self.group = members.iter().map(|&i| n(i)).collect();
        let view = ViewId {
            epoch: self.epoch,
            coordinator: before[0],
            incarnation: 1,
        };
        let all: BTreeSet<NodeId> = before.iter().chain(self.group.iter()).copied().collect();
        for m in all {
            self.input(
                m,
                Input::GroupView {
                    view,
                    seq,
                    members: self.group.clone(),
                },
            );
        }
        self.settle();
    }

    fn quorum(&mut self, members: &[u32], quorate: bool) {
        for &m in members {
            self.input(n(m), Input::Quorum { quorate });
        }
        self.settle();
    }

    /// Delivers everything in one total order to the current group.
    fn settle(&mut self) {
        let mut budget = 10_000;
        while let Some((from, p)) = self.wire.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            if !self.group.contains(&from) {
                continue;
            }
            for m in self.group.clone() {
                self.input(
                    m,
                    Input::Deliver {
                        from,
                        payload: p.clone(),
                    },
                );
            }
        }
    }

    /// Delivers in one order among `members` only (a view the others are not in); messages
    /// of anyone else belong to another view and are dropped.
    fn settle_among(&mut self, members: &[u32]) {
        let members: Vec<NodeId> = members.iter().map(|&i| n(i)).collect();
        while let Some((from, p)) = self.wire.pop_front() {
            if !members.contains(&from) {
                continue;
            }
            for &m in &members {
                self.input(
                    m,
                    Input::Deliver {
                        from,
                        payload: p.clone(),
                    },
                );
            }
        }
    }

    /// Delivers every queued message, whoever sent it, to `members` only (the others lose
    /// them: a partition in the middle of the order).
    fn deliver_to(&mut self, members: &[u32]) {
        let mut budget = 10_000;
        while let Some((from, p)) = self.wire.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            for &m in members {
                self.input(
                    n(m),
                    Input::Deliver {
                        from,
                        payload: p.clone(),
                    },
                );
            }
        }
    }

    fn crash(&mut self, i: u32, survivors: &[u32]) {
        self.truth.values_mut().for_each(|t| {
            t.remove(&n(i));
        });
        self.wire.retain(|(f, _)| *f != n(i));
        self.set_group(survivors);
    }

    fn answer_fencing(&mut self, fenced: bool) {
        for (asker, node, incarnation) in std::mem::take(&mut self.asked) {
            self.input(
                asker,
                Input::FenceAnswer {
                    node,
                    incarnation,
                    fenced,
                },
            );
        }
        self.settle();
    }

    fn hosts(&self, s: ServiceIndex) -> Vec<NodeId> {
        self.truth
            .get(&s)
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default()
    }

    fn node(&self, i: u32) -> &Coordinator {
        &self.nodes[&n(i)]
    }
}

fn formed(count: u32, services: usize) -> World {
    let mut w = World::new(count, services);
    let all: Vec<u32> = (1..=count).collect();
    w.set_group(&all);
    w.quorum(&all, true);
    w
}

#[test]
fn the_lowest_member_coordinates_once_every_member_reported() {
    let mut w = World::new(3, 1);
    w.quorum(&[1, 2, 3], true);
    // Group views arrive, but no report is delivered yet: nobody decides.
    w.group = vec![n(1), n(2), n(3)];
    for m in [1, 2, 3] {
        w.input(
            n(m),
            Input::GroupView {
                view: ViewId {
                    epoch: 1,
                    coordinator: n(1),
                    incarnation: 1,
                },
                seq: 0,
                members: w.group.clone(),
            },
        );
    }
    assert!(w.nodes.values().all(|c| c.coordinator().is_none()));
    assert!(w.hosts(S).is_empty());
    w.settle();
    for m in [1, 2, 3] {
        assert_eq!(w.node(m).coordinator(), Some(n(1)));
        assert!(w.node(m).synced());
    }
    assert!(w.node(1).is_deciding());
    assert_eq!(w.hosts(S).len(), 1, "started exactly once");
    let owner = w.hosts(S)[0];
    for m in [1, 2, 3] {
        let r = w.node(m).record(S).expect("record");
        assert_eq!((r.state, r.owner), (ServiceState::Started, Some(owner)));
    }
}

#[test]
fn nothing_is_decided_without_quorum_and_quorum_loss_stops_local_vms() {
    let mut w = World::new(2, 2);
    w.set_group(&[1, 2]);
    assert!(w.truth.values().all(|t| t.is_empty()));
    w.quorum(&[1, 2], true);
    assert_eq!(w.truth.values().filter(|t| !t.is_empty()).count(), 2);
    w.quorum(&[1, 2], false);
    assert!(w.truth.values().all(|t| t.is_empty()), "{:?}", w.truth);
    assert!(!w.node(1).is_deciding());
}

#[test]
fn a_dead_owners_service_restarts_only_after_fenced_confirms() {
    let mut w = formed(3, 3);
    let on3: Vec<ServiceIndex> = (0..3)
        .map(ServiceIndex)
        .filter(|s| w.hosts(*s) == vec![n(3)])
        .collect();
    assert_eq!(on3.len(), 1, "one service per node");
    let s = on3[0];
    w.crash(3, &[1, 2]);
    assert!(w.hosts(s).is_empty());
    assert!(w.asked.iter().any(|a| *a == (n(1), n(3), 1)));
    w.answer_fencing(false);
    w.input(n(1), Input::FenceEvent);
    w.answer_fencing(false);
    assert!(w.hosts(s).is_empty(), "started before fencing");
    w.input(n(1), Input::FenceEvent);
    w.answer_fencing(true);
    assert_eq!(w.hosts(s).len(), 1);
    assert!(w.node(2).pending_fencing().next().is_none());
}

#[test]
fn a_new_coordinator_keeps_waiting_for_the_fencing_the_old_one_waited_for() {
    let mut w = formed(3, 3);
    let s = (0..3)
        .map(ServiceIndex)
        .find(|s| w.hosts(*s) == vec![n(3)])
        .expect("a service on node 3");
    w.crash(3, &[1, 2]);
    w.asked.clear();
    // The coordinator dies before fenced answers.
    w.crash(1, &[2]);
    w.quorum(&[2], true); // (two_node-like: node 2 keeps quorum)
    assert_eq!(w.node(2).coordinator(), Some(n(2)));
    assert!(w.hosts(s).is_empty(), "restored without the fence hold");
    assert!(w.asked.iter().any(|a| a.1 == n(3)));
    // The old coordinator died too: nothing is decided until both are fenced.
    w.answer_fencing(false);
    assert!(!w.node(2).is_deciding());
    w.input(n(2), Input::FenceEvent);
    w.answer_fencing(true);
    // Both fenced: the engine is built now, without holds, and node 3's VM restarts.
    assert!(w.node(2).is_deciding());
    assert_eq!(w.hosts(s), vec![n(2)]);
}

#[test]
fn a_joiner_receives_the_table_and_decisions_of_a_former_coordinator_are_ignored() {
    let mut w = World::new(3, 1);
    w.set_group(&[1, 2]);
    w.quorum(&[1, 2], true);
    // Cold start: node 3 never joined, so nothing starts until it is fenced.
    assert!(w.hosts(S).is_empty());
    assert!(w.asked.contains(&(n(1), n(3), 0)));
    w.answer_fencing(true);
    assert_eq!(w.hosts(S).len(), 1);
    let before = w.node(1).record(S).cloned();
    w.set_group(&[1, 2, 3]);
    assert!(w.node(3).synced());
    assert_eq!(w.node(3).record(S).cloned(), before);
    // A Decisions message from node 2 (not the coordinator) changes nothing.
    let forged = Msg::Decisions {
        generation: 99,
        records: vec![RecordUpdate {
            service: S,
            record: ServiceRecord::new(),
            intent: Intent::initial(false),
        }],
        commands: vec![Command::Stop {
            service: S,
            node: w.hosts(S)[0],
        }],
    };
    let id = w.node(2).catalog().fingerprint();
    w.wire.push_back((n(2), forged.encode(id)));
    w.settle();
    assert_eq!(w.node(3).record(S).cloned(), before);
    assert_eq!(w.hosts(S).len(), 1);
}

#[test]
fn admin_requests_travel_to_the_coordinator_and_back() {
    let mut w = formed(3, 1);
    w.input(
        n(3),
        Input::Admin {
            id: 7,
            service: S,
            request: Request::Disable,
        },
    );
    w.settle();
    assert_eq!(w.replies, vec![(n(3), 7, 0)]);
    assert!(w.hosts(S).is_empty());
    assert_eq!(
        w.node(2).record(S).map(|r| r.state),
        Some(ServiceState::Disabled)
    );
    // Unknown service, and no quorum, answer locally.
    w.input(
        n(3),
        Input::Admin {
            id: 8,
            service: ServiceIndex(9),
            request: Request::Stop,
        },
    );
    w.quorum(&[3], false);
    w.input(
        n(3),
        Input::Admin {
            id: 9,
            service: S,
            request: Request::Stop,
        },
    );
    assert_eq!(
        &w.replies[1..],
        &[(n(3), 8, RG_ENOSERVICE), (n(3), 9, RG_EQUORUM)]
    );
}

#[test]
fn a_coordinator_change_answers_pending_requests_with_eagain() {
    let mut w = formed(3, 1);
    w.input(
        n(3),
        Input::Admin {
            id: 1,
            service: S,
            request: Request::Disable,
        },
    );
    // The coordinator dies before the request is delivered.
    w.wire.clear();
    w.crash(1, &[2, 3]);
    assert_eq!(w.replies, vec![(n(3), 1, RG_EAGAIN)]);
}

#[test]
fn live_migration_prepares_the_target_before_the_source_sends() {
    let mut w = formed(2, 1);
    let src = w.hosts(S)[0];
    let dst = if src == n(1) { n(2) } else { n(1) };
    w.hold_migrations = true;
    w.input(
        n(1),
        Input::Admin {
            id: 1,
            service: S,
            request: Request::Migrate { target: dst },
        },
    );
    w.settle();
    assert_eq!(w.held, vec![(src, S, dst)], "source migrates after Ready");
    // An incoming VM is not running while its source lives and migrates it.
    assert!(!w.nodes[&dst].local_running().contains(&S));
    assert_eq!(
        w.node(1).record(S).map(|r| r.state),
        Some(ServiceState::Migrating)
    );
    w.finish_migration(src, S, dst, true);
    w.settle();
    assert_eq!(w.hosts(S), vec![dst]);
    let r = w.node(2).record(S).cloned().expect("record");
    assert_eq!((r.state, r.owner), (ServiceState::Started, Some(dst)));
    assert!(!w.nodes[&src].local_running().contains(&S));
}

#[test]
fn a_failed_migration_leaves_the_vm_on_the_source_and_the_target_aborts() {
    let mut w = formed(2, 1);
    let src = w.hosts(S)[0];
    let dst = if src == n(1) { n(2) } else { n(1) };
    w.hold_migrations = true;
    w.input(
        n(2),
        Input::Admin {
            id: 1,
            service: S,
            request: Request::Migrate { target: dst },
        },
    );
    w.settle();
    w.finish_migration(src, S, dst, false);
    w.settle();
    assert_eq!(w.hosts(S), vec![src]);
    assert!(
        !w.nodes[&dst].local_running().contains(&S),
        "incoming aborted"
    );
    let r = w.node(1).record(S).cloned().expect("record");
    assert_eq!((r.state, r.owner), (ServiceState::Started, Some(src)));
}

#[test]
fn a_vm_that_dies_on_its_own_is_recovered_by_the_status_check() {
    let mut w = formed(2, 1);
    let host = w.hosts(S)[0];
    w.truth.get_mut(&S).expect("vm").clear();
    w.now = Millis(5000);
    w.input(host, Input::Tick);
    w.settle();
    assert_eq!(w.hosts(S).len(), 1, "restarted");
}

#[test]
fn garbage_payloads_change_nothing() {
    let mut w = formed(2, 1);
    let before = w.node(2).record(S).cloned();
    for p in [
        vec![],
        vec![PROTOCOL_VERSION],
        vec![PROTOCOL_VERSION, 200, 1, 2],
    ] {
        w.wire.push_back((n(1), p));
    }
    w.settle();
    assert_eq!(w.node(2).record(S).cloned(), before);
}

#[test]
fn a_coordinator_paused_through_its_expulsion_rebuilds_when_the_other_side_returns() {
    // Seed 220 of the simulator: node 1 (coordinator) is paused, node 2 goes on alone in a
    // view of its own (inquorate: it stops its VMs). Node 1 resumes still believing in the
    // old view and orders a migration from node 2 that only node 1 delivers. When both
    // share a view again nothing in the group membership changed for node 1: only the
    // reports' previous views show that node 2 missed the command.
    let mut w = formed(2, 2);
    let on2 = (0..2)
        .map(ServiceIndex)
        .find(|s| w.hosts(*s) == vec![n(2)])
        .expect("a VM on node 2");
    let v2 = ViewId {
        epoch: w.epoch + 1,
        coordinator: n(2),
        incarnation: 1,
    };
    w.epoch += 1;
    for input in [
        Input::ViewInstalled {
            view: v2,
            members: vec![(n(2), 1)],
        },
        Input::GroupView {
            view: v2,
            seq: 0,
            members: vec![n(2)],
        },
        Input::Quorum { quorate: false },
    ] {
        w.input(n(2), input);
    }
    w.settle_among(&[2]);
    assert!(w.hosts(on2).is_empty(), "stopped by the quorum loss");
    w.input(
        n(1),
        Input::Admin {
            id: 1,
            service: on2,
            request: Request::Migrate { target: n(1) },
        },
    );
    w.settle_among(&[1]);
    assert_eq!(w.replies, vec![(n(1), 1, 0)], "accepted in the stale view");
    w.set_group(&[1, 2]);
    w.quorum(&[2], true);
    w.now = Millis(5000);
    for m in [1, 2] {
        w.input(n(m), Input::Tick);
    }
    w.settle();
    assert!(w.node(1).is_deciding());
    for s in (0..2).map(ServiceIndex) {
        assert_eq!(w.hosts(s).len(), 1, "{s} runs once: {:?}", w.truth);
        let owner = w.hosts(s)[0];
        for m in [1, 2] {
            let r = w.node(m).record(s).cloned().expect("record");
            assert_eq!((r.state, r.owner), (ServiceState::Started, Some(owner)));
        }
    }
}

#[test]
fn a_migration_whose_target_dies_before_it_is_ready_leaves_the_vm_on_the_source() {
    let mut w = formed(3, 1);
    let src = w.hosts(S)[0];
    let dst = if src == n(3) { n(2) } else { n(3) };
    w.hold_prepares = true;
    w.input(
        n(1),
        Input::Admin {
            id: 1,
            service: S,
            request: Request::Migrate { target: dst },
        },
    );
    w.settle();
    let survivors: Vec<u32> = [1, 2, 3].into_iter().filter(|&i| n(i) != dst).collect();
    w.crash(dst.0, &survivors);
    assert_eq!(w.hosts(S), vec![src]);
    let c = survivors[0];
    let r = w.node(c).record(S).cloned().expect("record");
    assert_eq!((r.state, r.owner), (ServiceState::Started, Some(src)));
    // Nothing is left in flight: the service takes requests again.
    let other = n(survivors
        .iter()
        .copied()
        .find(|&i| n(i) != src)
        .expect("a third node"));
    w.hold_prepares = false;
    w.input(
        n(c),
        Input::Admin {
            id: 2,
            service: S,
            request: Request::Migrate { target: other },
        },
    );
    w.settle();
    assert_eq!(w.hosts(S), vec![other]);
}

#[test]
fn a_node_that_did_not_finalize_a_round_waits_for_the_fencing_of_every_member_that_may_have_decided(
) {
    // Seed 5120 (two_node): both nodes report in view 1, but a partition lets only node 1
    // deliver both reports. Node 1 coordinates and starts VMs; node 2 never learns that.
    let mut w = World::new(2, 2);
    // Each started alone first (inquorate, two_node waiting for its peer): both hold the
    // table of a cold start.
    for m in [1, 2] {
        let alone = ViewId {
            epoch: u64::from(m) * 10,
            coordinator: n(m),
            incarnation: 1,
        };
        w.input(
            n(m),
            Input::ViewInstalled {
                view: alone,
                members: vec![(n(m), 1)],
            },
        );
        w.input(
            n(m),
            Input::GroupView {
                view: alone,
                seq: 0,
                members: vec![n(m)],
            },
        );
        w.settle_among(&[m]);
        assert!(w.node(m).synced());
    }
    w.group = vec![n(1), n(2)];
    let v1 = ViewId {
        epoch: 30,
        coordinator: n(1),
        incarnation: 1,
    };
    for m in [1, 2] {
        for input in [
            Input::ViewInstalled {
                view: v1,
                members: vec![(n(1), 1), (n(2), 1)],
            },
            Input::GroupView {
                view: v1,
                seq: 0,
                members: vec![n(1), n(2)],
            },
            Input::Quorum { quorate: true },
        ] {
            w.input(n(m), input);
        }
    }
    // Node 1's report reaches both (node 2 forgets its cold-start wait for node 1), node
    // 2's own report reaches node 1 only.
    let (from, first) = w.wire.pop_front().expect("node 1's report");
    assert_eq!(from, n(1));
    for m in [1, 2] {
        w.input(
            n(m),
            Input::Deliver {
                from,
                payload: first.clone(),
            },
        );
    }
    w.deliver_to(&[1]);
    assert!(w.node(1).is_deciding());
    assert!(!w.node(2).is_deciding(), "node 2 saw no report of node 1");
    assert_ne!(w.node(2).coordinator(), Some(n(1)));
    let on1: Vec<ServiceIndex> = (0..2)
        .map(ServiceIndex)
        .filter(|s| w.hosts(*s) == vec![n(1)])
        .collect();
    assert!(!on1.is_empty(), "node 1 started VMs: {:?}", w.truth);
    // Node 2 alone, quorate (two_node): node 1 may run anything.
    let v2 = ViewId {
        epoch: 31,
        coordinator: n(2),
        incarnation: 1,
    };
    w.group = vec![n(2)];
    for input in [
        Input::ViewInstalled {
            view: v2,
            members: vec![(n(2), 1)],
        },
        Input::GroupView {
            view: v2,
            seq: 0,
            members: vec![n(2)],
        },
    ] {
        w.input(n(2), input);
    }
    w.settle_among(&[2]);
    assert_eq!(w.node(2).coordinator(), Some(n(2)));
    assert!(!w.node(2).is_deciding(), "decided before node 1 was fenced");
    for s in &on1 {
        assert_eq!(w.hosts(*s), vec![n(1)], "started twice");
    }
    // Fenced: node 1's VMs are gone, node 2 takes everything.
    w.truth.values_mut().for_each(|t| {
        t.remove(&n(1));
    });
    w.answer_fencing(true);
    w.settle_among(&[2]);
    assert!(w.node(2).is_deciding());
    for s in (0..2).map(ServiceIndex) {
        assert_eq!(w.hosts(s), vec![n(2)]);
    }
}

#[test]
fn a_fresh_joiner_does_not_disturb_a_migration_under_way() {
    // Seed 785: node 3 restarts and joins while vm:0 migrates between nodes 1 and 2; the
    // coordinator keeps its engine, so the migration's result is not taken for a stale one.
    let mut w = formed(3, 1);
    w.crash(3, &[1, 2]);
    w.answer_fencing(true);
    let cat = w.node(3).catalog().clone();
    let cfg = CoordConfig {
        me: n(3),
        incarnation: 2,
        nodes: vec![n(1), n(2), n(3)],
        status_interval_ms: 1000,
    };
    w.nodes.insert(n(3), Coordinator::new(cfg, cat));
    w.input(n(3), Input::Quorum { quorate: true });
    let src = w.hosts(S)[0];
    let dst = if src == n(1) { n(2) } else { n(1) };
    w.hold_migrations = true;
    w.input(
        n(1),
        Input::Admin {
            id: 1,
            service: S,
            request: Request::Migrate { target: dst },
        },
    );
    w.settle();
    assert_eq!(w.held, vec![(src, S, dst)]);
    w.set_group(&[1, 2, 3]);
    w.finish_migration(src, S, dst, true);
    w.settle();
    assert_eq!(w.hosts(S), vec![dst], "{:?}", w.truth);
    for m in [1, 2, 3] {
        let r = w.node(m).record(S).cloned().expect("record");
        assert_eq!((r.state, r.owner), (ServiceState::Started, Some(dst)));
    }
    assert!(w.nodes[&dst].local_running().contains(&S));
}

#[test]
fn two_thousand_services_are_placed_and_a_joiner_gets_the_whole_table_in_parts() {
    // The table and the first decision round are far above one group message (16 KiB).
    let mut w = formed(3, 2000);
    for s in (0..2000).map(ServiceIndex) {
        assert_eq!(w.hosts(s).len(), 1, "{s} placed once");
    }
    w.crash(3, &[1, 2]);
    w.answer_fencing(true);
    let cat = w.node(3).catalog().clone();
    let cfg = CoordConfig {
        me: n(3),
        incarnation: 2,
        nodes: vec![n(1), n(2), n(3)],
        status_interval_ms: 1000,
    };
    w.nodes.insert(n(3), Coordinator::new(cfg, cat));
    w.input(n(3), Input::Quorum { quorate: true });
    w.set_group(&[1, 2, 3]);
    assert!(w.node(3).synced(), "the whole table arrived");
    for s in (0..2000).map(ServiceIndex) {
        assert_eq!(w.node(3).record(s), w.node(1).record(s));
        assert_eq!(w.hosts(s).len(), 1);
    }
}

#[test]
fn a_restarted_rgmanagerd_adopts_what_runs_and_nothing_starts_twice() {
    // Without adoption the restarted node reports nothing, its hold ends, and the VM it
    // still runs would be started again elsewhere.
    let mut w = formed(2, 2);
    let on2: Vec<ServiceIndex> = (0..2)
        .map(ServiceIndex)
        .filter(|s| w.hosts(*s) == vec![n(2)])
        .collect();
    assert!(!on2.is_empty());
    // rgmanagerd on node 2 dies (cmand lives): an ordered leave; its VMs keep running.
    w.group_event(&[1], 1);
    let cat = w.node(2).catalog().clone();
    let cfg = w.node(2).config().clone();
    let mut fresh = Coordinator::new(cfg, cat);
    fresh.adopt_running(w.now, &on2);
    let mut out = Vec::new();
    fresh.start(&mut out);
    w.nodes.insert(n(2), fresh);
    w.starts.clear();
    w.input(n(2), Input::Quorum { quorate: true });
    w.group_event(&[1, 2], 2);
    assert!(
        w.starts.iter().all(|(_, s)| !on2.contains(s)),
        "started again: {:?}",
        w.starts
    );
    for s in (0..2).map(ServiceIndex) {
        assert_eq!(w.hosts(s).len(), 1, "{s}: {:?}", w.truth);
    }
    for &s in &on2 {
        assert_eq!(w.hosts(s), vec![n(2)], "adopted where it runs");
        assert!(w.node(2).local_running().contains(&s));
    }
}

#[test]
fn a_graceful_shutdown_hands_the_vms_over_then_exits_and_leaves_cleanly() {
    let mut w = formed(3, 3);
    let on3: Vec<ServiceIndex> = (0..3)
        .map(ServiceIndex)
        .filter(|s| w.hosts(*s) == vec![n(3)])
        .collect();
    assert!(!on3.is_empty());
    let mut out = Vec::new();
    w.nodes.get_mut(&n(3)).expect("node 3").handle(
        w.now,
        Input::Shutdown { hand_off: true },
        &mut out,
    );
    assert!(!out.contains(&Action::Exit), "still runs VMs");
    w.act(n(3), out);
    w.settle();
    for &s in &on3 {
        let hosts = w.hosts(s);
        assert_eq!(hosts.len(), 1);
        assert_ne!(hosts[0], n(3), "{s} handed over");
    }
    assert!(w.node(3).local_running().is_empty());
    assert!(w.node(3).shutting_down());
    // The shell leaves the group on Exit: an ordered leave, nothing to fence.
    w.group_event(&[1, 2], 1);
    assert!(w.node(1).pending_fencing().next().is_none());
    assert!(w.asked.is_empty(), "nobody asks fenced about a clean leave");
    assert!(w.node(1).is_deciding());
}

#[test]
fn a_shutdown_without_quorum_stops_the_vms_here_and_exits() {
    let mut w = formed(2, 2);
    w.quorum(&[1, 2], false);
    let mut out = Vec::new();
    w.nodes.get_mut(&n(2)).expect("node 2").handle(
        w.now,
        Input::Shutdown { hand_off: true },
        &mut out,
    );
    assert!(out.contains(&Action::Exit));
    assert!(w.truth.values().all(|t| !t.contains(&n(2))));
}

#[test]
fn nothing_starts_on_a_locked_node_and_a_local_enable_there_is_refused() {
    let mut w = World::new(2, 1);
    w.set_group(&[1, 2]);
    w.input(n(2), Input::Lock { locked: true });
    w.settle();
    assert!(w.node(2).locked());
    w.quorum(&[1, 2], true);
    assert_eq!(w.hosts(S), vec![n(1)], "placed off the locked node");
    w.input(
        n(2),
        Input::Admin {
            id: 7,
            service: S,
            request: Request::Migrate { target: n(2) },
        },
    );
    w.settle();
    assert_eq!(w.replies, vec![(n(2), 7, RG_EAGAIN)]);
    w.input(n(2), Input::Lock { locked: false });
    w.settle();
    w.input(
        n(1),
        Input::Admin {
            id: 8,
            service: S,
            request: Request::Migrate { target: n(2) },
        },
    );
    w.settle();
    assert_eq!(w.hosts(S), vec![n(2)]);
}

impl World {
    /// Every node switches to `cat` at this point of the order (cmand delivered a new
    /// cluster.conf); the hypervisors' truth is renamed with it.
    fn reconfigure(&mut self, cat: &Catalog, nodes: &[u32]) {
        let old = self.node(nodes[0]).catalog().clone();
        self.truth = std::mem::take(&mut self.truth)
            .into_iter()
            .filter_map(|(s, hosts)| cat.lookup(&old.service(s).name).map(|t| (t, hosts)))
            .collect();
        for &m in nodes {
            self.input(
                n(m),
                Input::Reconfigure {
                    catalog: cat.clone(),
                },
            );
        }
        self.settle();
    }

    fn hosts_of(&self, name: &str) -> Vec<NodeId> {
        let s = self.node(1).catalog().lookup(name).expect("configured");
        self.hosts(s)
    }
}

fn catalog_of(names: &[(&str, bool)]) -> Catalog {
    Catalog::new(
        vec![],
        names
            .iter()
            .map(|&(name, autostart)| {
                let mut d = vm(name);
                d.autostart = autostart;
                d
            })
            .collect(),
    )
}

#[test]
fn a_new_configuration_renumbers_the_services_and_nothing_running_moves() {
    let mut w = formed(2, 2);
    let before: Vec<(String, Vec<NodeId>)> = ["vm:0", "vm:1"]
        .iter()
        .map(|name| (name.to_string(), w.hosts_of(name)))
        .collect();
    w.starts.clear();
    // vm:new comes first: every index moves; vm:later is added disabled.
    let cat = catalog_of(&[
        ("vm:new", true),
        ("vm:1", true),
        ("vm:0", true),
        ("vm:later", false),
    ]);
    w.reconfigure(&cat, &[1, 2]);
    for (name, hosts) in &before {
        assert_eq!(&w.hosts_of(name), hosts, "{name} stayed where it ran");
        assert!(w.starts.iter().all(|(_, s)| cat.service(*s).name != *name));
    }
    assert_eq!(
        w.hosts_of("vm:new").len(),
        1,
        "the new autostart VM is placed"
    );
    let later = cat.lookup("vm:later").expect("configured");
    for m in [1, 2] {
        let c = w.node(m);
        assert_eq!(
            c.record(later).map(|r| r.state),
            Some(ServiceState::Disabled)
        );
        for s in cat.indexes() {
            assert_eq!(c.record(s), w.node(1).record(s), "replicas agree on {s}");
        }
    }
    assert!(w.node(1).is_deciding());
    // The new service takes requests.
    w.input(
        n(2),
        Input::Admin {
            id: 1,
            service: later,
            request: Request::Enable { target: None },
        },
    );
    w.settle();
    assert_eq!(w.hosts(later), vec![n(2)]);
}

#[test]
fn a_member_on_another_configuration_stops_all_decisions_until_it_matches() {
    let mut w = formed(2, 2);
    let cat = catalog_of(&[("vm:1", true), ("vm:0", true), ("vm:2", true)]);
    // Only node 2 gets the new file (its copy was edited by hand): its messages name other
    // services, so nobody takes them, and nothing is decided meanwhile.
    w.input(
        n(2),
        Input::Reconfigure {
            catalog: cat.clone(),
        },
    );
    w.settle();
    assert!(!w.node(1).is_deciding());
    let running: usize = w.truth.values().map(BTreeSet::len).sum();
    assert_eq!(running, 2, "nothing started or stopped");
    // Node 1 catches up: one catalog again, decisions resume, vm:2 is placed.
    w.truth = std::mem::take(&mut w.truth)
        .into_iter()
        .map(|(s, hosts)| {
            (
                if s.0 == 0 {
                    ServiceIndex(1)
                } else {
                    ServiceIndex(0)
                },
                hosts,
            )
        })
        .collect();
    w.input(
        n(1),
        Input::Reconfigure {
            catalog: cat.clone(),
        },
    );
    w.settle();
    assert!(w.node(1).is_deciding());
    assert_eq!(w.hosts(cat.lookup("vm:2").expect("vm:2")).len(), 1);
    for s in cat.indexes() {
        assert_eq!(w.hosts(s).len(), 1, "{s}");
    }
}
