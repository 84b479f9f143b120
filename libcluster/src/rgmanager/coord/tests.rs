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
                Action::Send(p) => self.wire.push_back((me, p)),
                Action::StartVm { service } => {
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
                Action::AbortIncoming { .. } | Action::JoinGroup => {}
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
    // Deciding now; the restored hold asks fenced once more before node 3's VM restarts.
    assert!(w.node(2).is_deciding());
    assert!(w.hosts(s).is_empty());
    w.answer_fencing(true);
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
    w.wire.push_back((n(2), forged.encode()));
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
