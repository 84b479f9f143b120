//! Engine tests: a tiny world carries out the engine's actions, node agents answer at once
//! unless a failure is injected.

use super::*;
use crate::config::Recovery;
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

fn n(i: u32) -> NodeId {
    NodeId(i)
}

fn nodes(ids: &[u32]) -> BTreeSet<NodeId> {
    ids.iter().map(|&i| NodeId(i)).collect()
}

/// Nodes that run the agents the engine asks for.
struct World {
    engine: Engine,
    now: Millis,
    alive: BTreeSet<NodeId>,
    /// What each node (dead ones too, until fenced) really runs.
    running: BTreeMap<NodeId, BTreeSet<ServiceIndex>>,
    fail_start: BTreeSet<(ServiceIndex, NodeId)>,
    fail_stop: BTreeSet<(ServiceIndex, NodeId)>,
    /// Answers held back (not delivered by `pump`).
    hold_answers: bool,
    queue: VecDeque<Input>,
    actions: Vec<Action>,
}

impl World {
    fn new(cat: Catalog, alive: &[u32]) -> World {
        let mut w = World {
            engine: Engine::new(cat),
            now: Millis(0),
            alive: nodes(alive),
            running: BTreeMap::new(),
            fail_start: BTreeSet::new(),
            fail_stop: BTreeSet::new(),
            hold_answers: false,
            queue: VecDeque::new(),
            actions: Vec::new(),
        };
        let members = w.alive.clone();
        w.input(Input::View {
            members,
            quorate: true,
        });
        w
    }

    fn sid(&self, name: &str) -> ServiceIndex {
        self.engine.catalog().lookup(name).unwrap()
    }

    fn input(&mut self, i: Input) {
        self.queue.push_back(i);
        self.pump();
    }

    fn pump(&mut self) {
        while let Some(i) = self.queue.pop_front() {
            self.now = self.now.plus(1);
            let mut out = Vec::new();
            self.engine.handle(self.now, i, &mut out);
            self.carry_out(out);
            if self.hold_answers {
                break;
            }
        }
    }

    fn request(&mut self, s: ServiceIndex, r: Request) -> Result<(), RequestError> {
        let mut out = Vec::new();
        let res = self.engine.request(self.now, s, r, &mut out);
        self.carry_out(out);
        self.pump();
        res
    }

    fn carry_out(&mut self, out: Vec<Action>) {
        for a in out {
            match a {
                Action::Start { service, node, .. } => {
                    let on_other = self
                        .running
                        .iter()
                        .any(|(m, set)| *m != node && set.contains(&service));
                    assert!(
                        !on_other,
                        "R1: {service} started on {node} while running elsewhere"
                    );
                    if !self.alive.contains(&node) {
                        continue;
                    }
                    let result = if self.fail_start.contains(&(service, node)) {
                        OpResult::StartFailed
                    } else {
                        self.running.entry(node).or_default().insert(service);
                        OpResult::Started
                    };
                    self.queue.push_back(Input::Done {
                        service,
                        node,
                        result,
                    });
                }
                Action::Stop { service, node, .. } => {
                    if !self.alive.contains(&node) {
                        continue;
                    }
                    let result = if self.fail_stop.contains(&(service, node)) {
                        OpResult::StopFailed
                    } else {
                        self.running.entry(node).or_default().remove(&service);
                        OpResult::Stopped
                    };
                    self.queue.push_back(Input::Done {
                        service,
                        node,
                        result,
                    });
                }
                Action::Migrate { service, from, to } => {
                    if !self.alive.contains(&from) {
                        continue;
                    }
                    self.running.entry(from).or_default().remove(&service);
                    self.running.entry(to).or_default().insert(service);
                    self.queue.push_back(Input::Done {
                        service,
                        node: from,
                        result: OpResult::Migrated,
                    });
                }
                Action::Record { .. } | Action::AwaitFencing { .. } => {}
            }
            self.actions.push(a);
        }
    }

    fn kill(&mut self, node: u32) {
        self.alive.remove(&n(node));
        let members = self.alive.clone();
        self.input(Input::View {
            members,
            quorate: true,
        });
    }

    fn fence(&mut self, node: u32) {
        self.running.remove(&n(node));
        self.input(Input::Fenced { node: n(node) });
    }

    fn join(&mut self, node: u32) {
        self.alive.insert(n(node));
        self.running.remove(&n(node));
        let members = self.alive.clone();
        self.input(Input::View {
            members,
            quorate: true,
        });
        self.input(Input::Report {
            node: n(node),
            running: vec![],
        });
    }

    fn owner(&self, s: ServiceIndex) -> Option<NodeId> {
        self.engine.record(s).owner
    }

    fn state(&self, s: ServiceIndex) -> ServiceState {
        self.engine.record(s).state
    }

    fn starts(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::Start { .. }))
            .count()
    }
}

fn ordered_domain(name: &str, prio: &[(u32, u32)], restricted: bool, nofailback: bool) -> Domain {
    let m: Vec<_> = prio.iter().map(|&(i, p)| (n(i), Some(p))).collect();
    Domain::new(name, true, restricted, nofailback, &m)
}

fn vm(name: &str, domain: Option<&str>) -> ServiceDef {
    let mut d = ServiceDef::new(name);
    d.domain = domain.map(str::to_string);
    d.migratory = true;
    d
}

#[test]
fn ordered_domain_starts_on_the_highest_priority_online_member() {
    // §2.5, §2.2 rule 5
    let d = ordered_domain("d", &[(3, 1), (2, 2), (1, 3)], false, false);
    let w = World::new(
        Catalog::new(vec![d], vec![vm("vm:a", Some("d"))]),
        &[1, 2, 3],
    );
    let a = w.sid("vm:a");
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(3)))
    );
}

#[test]
fn services_without_a_domain_spread_over_the_members() {
    // §2.4 tie rule (ours): least loaded, then lowest id
    let svcs = (0..6).map(|i| vm(&format!("vm:{i}"), None)).collect();
    let w = World::new(Catalog::new(vec![], svcs), &[1, 2, 3]);
    for node in 1..=3 {
        assert_eq!(w.engine.load(n(node)).services, 2);
    }
}

#[test]
fn nothing_happens_without_quorum() {
    // §3.7, DESIGN: no decision without quorum
    let mut e = Engine::new(Catalog::new(vec![], vec![vm("vm:a", None)]));
    let mut out = Vec::new();
    e.handle(
        Millis(1),
        Input::View {
            members: nodes(&[1, 2]),
            quorate: false,
        },
        &mut out,
    );
    assert!(out.is_empty());
    let err = e.request(
        Millis(2),
        ServiceIndex(0),
        Request::Enable { target: None },
        &mut out,
    );
    assert_eq!(err, Err(RequestError::NoQuorum));
    e.handle(
        Millis(3),
        Input::View {
            members: nodes(&[1, 2]),
            quorate: true,
        },
        &mut out,
    );
    assert!(out.iter().any(|a| matches!(a, Action::Start { .. })));
}

#[test]
fn a_dead_owners_services_wait_for_fencing_then_fail_over() {
    // §2.6, §3.6, F1
    let d = ordered_domain("d", &[(1, 1), (2, 2)], false, false);
    let mut w = World::new(Catalog::new(vec![d], vec![vm("vm:a", Some("d"))]), &[1, 2]);
    let a = w.sid("vm:a");
    assert_eq!(w.owner(a), Some(n(1)));
    let before = w.starts();
    w.kill(1);
    assert_eq!(w.state(a), ServiceState::Stopped);
    assert_eq!(w.engine.record(a).last_owner, Some(n(1)));
    assert!(w.engine.held(a));
    assert_eq!(w.starts(), before, "no start before fencing");
    assert!(w
        .actions
        .iter()
        .any(|x| matches!(x, Action::AwaitFencing { node, services: 1 } if *node == n(1))));
    w.fence(1);
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(2)))
    );
}

#[test]
fn a_fencing_result_for_a_current_member_is_ignored() {
    // F1: only a node that left can be fenced since it left
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    let owner = w.owner(a).unwrap();
    w.input(Input::Fenced { node: owner });
    w.kill(owner.0);
    assert!(w.engine.held(a), "the early answer did not count");
}

#[test]
fn a_frozen_service_of_a_dead_node_stays_stopped_and_frozen() {
    // §2.6 step 3
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    w.request(a, Request::Freeze).unwrap();
    let owner = w.owner(a).unwrap();
    w.kill(owner.0);
    w.fence(owner.0);
    assert_eq!(w.state(a), ServiceState::Stopped);
    assert!(w.engine.record(a).flags.frozen());
}

#[test]
fn a_service_reported_running_is_adopted_not_started_again() {
    // R1
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[]);
    let a = w.sid("vm:a");
    w.alive = nodes(&[1, 2]);
    w.running.entry(n(2)).or_default().insert(a);
    // the report arrives with the view: hold answers so it is seen first
    let mut out = Vec::new();
    w.engine.handle(
        Millis(5),
        Input::View {
            members: nodes(&[1, 2]),
            quorate: false,
        },
        &mut out,
    );
    w.engine.handle(
        Millis(6),
        Input::Report {
            node: n(2),
            running: vec![a],
        },
        &mut out,
    );
    w.engine.handle(
        Millis(7),
        Input::View {
            members: nodes(&[1, 2]),
            quorate: true,
        },
        &mut out,
    );
    assert!(!out.iter().any(|x| matches!(x, Action::Start { .. })));
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(2)))
    );
}

#[test]
fn a_second_running_copy_is_stopped() {
    // R1
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    let owner = w.owner(a).unwrap();
    let other = if owner == n(1) { n(2) } else { n(1) };
    w.running.entry(other).or_default().insert(a);
    w.input(Input::Report {
        node: other,
        running: vec![a],
    });
    assert!(w.actions.iter().any(
        |x| matches!(x, Action::Stop { node, cause: StopCause::Duplicate, .. } if *node == other)
    ));
    assert!(!w.running[&other].contains(&a));
    assert_eq!(w.owner(a), Some(owner));
}

#[test]
fn a_member_that_shuts_down_hands_its_services_over() {
    // DESIGN.md: rgmanagerd hands off services at shutdown. VMs migrate live, other
    // services relocate, a restricted one with nowhere else to go stops; a frozen one stays.
    let only1 = ordered_domain("only1", &[(1, 1)], true, false);
    let mut plain = ServiceDef::new("service:web");
    plain.domain = None;
    let cat = Catalog::new(
        vec![only1],
        vec![
            vm("vm:a", None),
            plain,
            vm("vm:pinned", Some("only1")),
            vm("vm:frozen", None),
        ],
    );
    let mut w = World::new(cat, &[1, 2, 3]);
    let (a, web, pinned, frozen) = (
        w.sid("vm:a"),
        w.sid("service:web"),
        w.sid("vm:pinned"),
        w.sid("vm:frozen"),
    );
    for s in [a, web, frozen] {
        if w.owner(s) != Some(n(1)) {
            w.request(s, Request::Relocate { target: Some(n(1)) })
                .unwrap();
        }
    }
    w.request(frozen, Request::Freeze).unwrap();
    assert!([a, web, pinned, frozen]
        .iter()
        .all(|&s| w.owner(s) == Some(n(1))));
    w.input(Input::Leaving { node: n(1) });
    assert!(w.actions.iter().any(
        |x| matches!(x, Action::Migrate { service, from, .. } if *service == a && *from == n(1))
    ));
    assert_ne!(w.owner(a), Some(n(1)));
    assert_eq!(w.state(a), ServiceState::Started);
    assert_eq!(w.state(web), ServiceState::Started);
    assert_ne!(w.owner(web), Some(n(1)), "relocated by stop and start");
    assert_eq!(
        w.state(pinned),
        ServiceState::Stopped,
        "restricted to node 1"
    );
    assert_eq!(
        (w.state(frozen), w.owner(frozen)),
        (ServiceState::Started, Some(n(1)))
    );
    // Nothing new goes to the leaving node.
    assert_eq!(
        w.request(web, Request::Relocate { target: Some(n(1)) }),
        Err(RequestError::Locked { node: n(1) })
    );
    w.kill(1);
    w.join(1);
    assert_eq!(w.owner(pinned), Some(n(1)), "back when node 1 returns");
}

#[test]
fn nothing_starts_on_a_locked_node_until_it_is_unlocked() {
    // clusvcadm -l: "prevents resource groups from starting on the local node".
    let only2 = ordered_domain("only2", &[(2, 1)], true, false);
    let cat = Catalog::new(
        vec![only2],
        vec![vm("vm:a", Some("only2")), vm("vm:b", None)],
    );
    let mut w = World::new(cat, &[1]);
    let (a, b) = (w.sid("vm:a"), w.sid("vm:b"));
    w.input(Input::Locked {
        node: n(2),
        locked: true,
    });
    w.join(2);
    assert_eq!(w.state(a), ServiceState::Stopped, "its only node is locked");
    assert_eq!(w.owner(b), Some(n(1)));
    assert_eq!(
        w.request(b, Request::Migrate { target: n(2) }),
        Err(RequestError::Locked { node: n(2) })
    );
    assert_eq!(
        w.request(a, Request::Enable { target: Some(n(2)) }),
        Err(RequestError::Locked { node: n(2) })
    );
    w.input(Input::Locked {
        node: n(2),
        locked: false,
    });
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(2)))
    );
}

#[test]
fn nothing_starts_a_service_while_a_second_copy_is_being_stopped() {
    // R1 (simulator seeds 785, 1767, 2467): a copy reported on another node is being
    // stopped when the owner says it does not run the service; its recovery waits for that
    // stop (the world asserts R1 on every start).
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    let owner = w.owner(a).unwrap();
    let other = if owner == n(1) { n(2) } else { n(1) };
    w.running.entry(other).or_default().insert(a);
    w.hold_answers = true;
    w.input(Input::Report {
        node: other,
        running: vec![a],
    });
    let duplicate_stopped: Vec<Input> = w.queue.drain(..).collect();
    assert_eq!(
        duplicate_stopped.len(),
        1,
        "the second copy's stop is in flight"
    );
    w.hold_answers = false;
    w.running.entry(owner).or_default().remove(&a);
    let before = w.starts();
    w.input(Input::StatusFailed {
        service: a,
        node: owner,
    });
    assert_eq!(w.starts(), before, "started while the second copy runs");
    assert!(w.request(a, Request::Enable { target: None }).is_err());
    for i in duplicate_stopped {
        w.input(i);
    }
    assert_eq!(w.starts(), before + 1);
    assert_eq!(w.state(a), ServiceState::Started);
}

#[test]
fn ordered_failback_live_migrates_a_vm_to_the_returning_node() {
    // §2.7
    let d = ordered_domain("d", &[(1, 1), (2, 2)], false, false);
    let mut w = World::new(Catalog::new(vec![d], vec![vm("vm:a", Some("d"))]), &[1, 2]);
    let a = w.sid("vm:a");
    w.kill(1);
    w.fence(1);
    assert_eq!(w.owner(a), Some(n(2)));
    w.join(1);
    assert!(w
        .actions
        .iter()
        .any(|x| matches!(x, Action::Migrate { from, to, .. } if *from == n(2) && *to == n(1))));
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(1)))
    );
}

#[test]
fn a_preferred_node_back_before_the_failover_start_ended_still_gets_its_vm_back() {
    // §2.7 after a fast reboot: node 1 rejoins while vm:a's recovery start on node 2 is in
    // flight; the failback is judged when that start ends.
    let d = ordered_domain("d", &[(1, 1), (2, 2)], false, false);
    let mut w = World::new(Catalog::new(vec![d], vec![vm("vm:a", Some("d"))]), &[1, 2]);
    let a = w.sid("vm:a");
    w.kill(1);
    w.hold_answers = true;
    w.fence(1);
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Starting, Some(n(2)))
    );
    let start_done: Vec<Input> = w.queue.drain(..).collect();
    w.hold_answers = false;
    w.join(1);
    assert!(
        !w.actions
            .iter()
            .any(|x| matches!(x, Action::Migrate { .. })),
        "nothing moves while the start is in flight"
    );
    for i in start_done {
        w.input(i);
    }
    assert!(w
        .actions
        .iter()
        .any(|x| matches!(x, Action::Migrate { from, to, .. } if *from == n(2) && *to == n(1))));
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(1)))
    );
}

#[test]
fn a_vm_placed_by_the_administrator_stays_until_a_node_joins() {
    // §2.7: failback happens at node events only, not after any start.
    let d = ordered_domain("d", &[(1, 1), (2, 2)], false, false);
    let mut w = World::new(Catalog::new(vec![d], vec![vm("vm:a", Some("d"))]), &[1, 2]);
    let a = w.sid("vm:a");
    w.request(a, Request::Relocate { target: Some(n(2)) })
        .unwrap();
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(2)))
    );
    w.join(3);
    assert_eq!(w.owner(a), Some(n(1)), "a node event fails it back");
}

#[test]
fn nofailback_keeps_the_service_where_it_runs() {
    // §2.7 nofailback
    let d = ordered_domain("d", &[(1, 1), (2, 2)], false, true);
    let mut w = World::new(Catalog::new(vec![d], vec![vm("vm:a", Some("d"))]), &[1, 2]);
    let a = w.sid("vm:a");
    w.kill(1);
    w.fence(1);
    w.join(1);
    assert_eq!(w.owner(a), Some(n(2)));
    assert!(!w
        .actions
        .iter()
        .any(|x| matches!(x, Action::Migrate { .. })));
}

#[test]
fn a_service_that_cannot_migrate_fails_back_by_stop_and_start() {
    // §2.7: RG_RELOCATE for non-migratory services
    let d = ordered_domain("d", &[(1, 1), (2, 2)], false, false);
    let mut s = ServiceDef::new("service:web");
    s.domain = Some("d".into());
    let mut w = World::new(Catalog::new(vec![d], vec![s]), &[2]);
    let a = w.sid("service:web");
    assert_eq!(w.owner(a), Some(n(2)));
    w.join(1);
    assert!(w.actions.iter().any(|x| matches!(
        x,
        Action::Stop {
            cause: StopCause::Failback { .. },
            ..
        }
    )));
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(1)))
    );
}

#[test]
fn restricted_domain_without_members_keeps_the_service_stopped() {
    // §2.2 rule 3, §1.4 "Restricted domain unavailable"
    let d = ordered_domain("d", &[(5, 1)], true, false);
    let w = World::new(Catalog::new(vec![d], vec![vm("vm:a", Some("d"))]), &[1, 2]);
    let a = w.sid("vm:a");
    assert_eq!(w.state(a), ServiceState::Stopped);
    assert_eq!(w.starts(), 0);
}

#[test]
fn unrestricted_service_runs_outside_its_domain_only_when_no_member_is_up() {
    // §2.6 step 2, §2.7 moves back into the domain
    let d = ordered_domain("d", &[(5, 1)], false, false);
    let mut w = World::new(Catalog::new(vec![d], vec![vm("vm:a", Some("d"))]), &[1]);
    let a = w.sid("vm:a");
    assert_eq!(w.owner(a), Some(n(1)));
    w.join(5);
    assert_eq!(w.owner(a), Some(n(5)));
}

#[test]
fn exclusive_service_needs_an_empty_node_and_keeps_others_away() {
    // §2.8
    let mut ex = vm("vm:ex", None);
    ex.exclusive = true;
    let w = World::new(
        Catalog::new(vec![], vec![ex, vm("vm:b", None), vm("vm:c", None)]),
        &[1, 2],
    );
    let ex = w.sid("vm:ex");
    let home = w.owner(ex).unwrap();
    assert_eq!(w.engine.load(home).services, 1);
    let other = if home == n(1) { n(2) } else { n(1) };
    assert_eq!(w.engine.load(other).services, 2);
}

#[test]
fn autostart_off_makes_a_new_service_disabled() {
    // §2.9
    let mut s = vm("vm:a", None);
    s.autostart = false;
    let w = World::new(Catalog::new(vec![], vec![s]), &[1]);
    assert_eq!(w.state(ServiceIndex(0)), ServiceState::Disabled);
}

#[test]
fn a_dependant_waits_for_its_dependency_and_stops_when_it_goes() {
    // §2.10
    let mut b = vm("vm:b", None);
    b.depend = Some("vm:a".into());
    let mut a = vm("vm:a", None);
    a.autostart = false;
    let mut w = World::new(Catalog::new(vec![], vec![b, a]), &[1]);
    let (b, a) = (w.sid("vm:b"), w.sid("vm:a"));
    assert_eq!(w.state(b), ServiceState::Stopped);
    w.request(a, Request::Enable { target: None }).unwrap();
    assert_eq!(w.state(b), ServiceState::Started);
    w.request(a, Request::Disable).unwrap();
    assert_eq!(w.state(a), ServiceState::Disabled);
    assert_eq!(w.state(b), ServiceState::Stopped);
}

#[test]
fn status_failure_restarts_in_place_until_max_restarts_then_relocates() {
    // §3.2, §3.3
    let d = ordered_domain("d", &[(1, 1), (2, 2)], false, false);
    let mut s = vm("vm:a", Some("d"));
    s.max_restarts = 1;
    s.restart_expire_ms = 60_000;
    let mut w = World::new(Catalog::new(vec![d], vec![s]), &[1, 2]);
    let a = w.sid("vm:a");
    w.input(Input::StatusFailed {
        service: a,
        node: n(1),
    });
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(1)))
    );
    assert_eq!(w.engine.record(a).restarts, 1);
    w.input(Input::StatusFailed {
        service: a,
        node: n(1),
    });
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(2)))
    );
    assert_eq!(
        w.engine.record(a).restarts,
        2,
        "every start from recovering counts (§1.1)"
    );
}

#[test]
fn a_failed_local_restart_relocates() {
    // §3.3 restart: "if the local start fails the service is ... relocated"
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    let home = w.owner(a).unwrap();
    w.fail_start.insert((a, home));
    w.input(Input::StatusFailed {
        service: a,
        node: home,
    });
    assert_eq!(w.state(a), ServiceState::Started);
    assert_ne!(w.owner(a), Some(home));
}

#[test]
fn when_no_node_can_start_it_the_service_ends_stopped() {
    // §3.3: every candidate tried → stopped until the next node event
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    w.fail_start.insert((a, n(1)));
    w.fail_start.insert((a, n(2)));
    let home = w.owner(a).unwrap();
    w.input(Input::StatusFailed {
        service: a,
        node: home,
    });
    assert_eq!((w.state(a), w.owner(a)), (ServiceState::Stopped, None));
    w.fail_start.clear();
    w.join(3);
    assert_eq!(w.state(a), ServiceState::Started);
}

#[test]
fn recovery_disable_disables_and_relocate_moves() {
    // §3.3
    let mut d = vm("vm:d", None);
    d.recovery = Recovery::Disable;
    let mut r = vm("vm:r", None);
    r.recovery = Recovery::Relocate;
    let mut w = World::new(Catalog::new(vec![], vec![d, r]), &[1, 2]);
    let (d, r) = (w.sid("vm:d"), w.sid("vm:r"));
    let (hd, hr) = (w.owner(d).unwrap(), w.owner(r).unwrap());
    w.input(Input::StatusFailed {
        service: d,
        node: hd,
    });
    w.input(Input::StatusFailed {
        service: r,
        node: hr,
    });
    assert_eq!(w.state(d), ServiceState::Disabled);
    assert!(!w.engine.intent(d).enabled);
    assert_eq!(w.state(r), ServiceState::Started);
    assert_ne!(w.owner(r), Some(hr));
}

#[test]
fn a_failed_stop_makes_the_service_failed_and_only_disable_clears_it() {
    // §3.4
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    let home = w.owner(a).unwrap();
    w.fail_stop.insert((a, home));
    w.input(Input::StatusFailed {
        service: a,
        node: home,
    });
    assert_eq!((w.state(a), w.owner(a)), (ServiceState::Failed, None));
    assert_eq!(w.engine.record(a).last_owner, Some(home));
    let err = w.request(a, Request::Enable { target: None }).unwrap_err();
    assert_eq!(err.code(), -1);
    w.join(3);
    assert_eq!(
        w.state(a),
        ServiceState::Failed,
        "never started automatically"
    );
    w.request(a, Request::Disable).unwrap();
    assert_eq!(w.state(a), ServiceState::Disabled);
}

#[test]
fn frozen_services_ignore_status_failures_and_refuse_requests() {
    // §1.3
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    let home = w.owner(a).unwrap();
    w.request(a, Request::Freeze).unwrap();
    assert_eq!(w.engine.record(a).flags.short(), "Z");
    w.input(Input::StatusFailed {
        service: a,
        node: home,
    });
    assert_eq!(w.state(a), ServiceState::Started);
    assert_eq!(
        w.request(a, Request::Relocate { target: None }),
        Err(RequestError::Frozen)
    );
    w.request(a, Request::Unfreeze).unwrap();
    assert!(!w.engine.record(a).flags.frozen());
}

#[test]
fn migrate_request_checks_target_and_moves_the_vm() {
    // §4.4 daemon checks
    let d = ordered_domain("d", &[(1, 1), (2, 2)], true, false);
    let mut plain = ServiceDef::new("service:s");
    plain.domain = Some("d".into());
    let mut w = World::new(
        Catalog::new(vec![d], vec![vm("vm:a", Some("d")), plain]),
        &[1, 2, 3],
    );
    let (a, s) = (w.sid("vm:a"), w.sid("service:s"));
    assert_eq!(
        w.request(s, Request::Migrate { target: n(2) }),
        Err(RequestError::Invalid)
    );
    assert_eq!(
        w.request(a, Request::Migrate { target: n(9) }),
        Err(RequestError::NodeDown { node: n(9) })
    );
    assert_eq!(
        w.request(a, Request::Migrate { target: n(3) }),
        Err(RequestError::Dependency)
    );
    assert_eq!(
        w.request(a, Request::Migrate { target: n(1) }),
        Ok(()),
        "already there"
    );
    w.request(a, Request::Migrate { target: n(2) }).unwrap();
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(2)))
    );
    assert_eq!(w.engine.record(a).last_owner, Some(n(1)));
}

#[test]
fn a_migration_that_fails_off_the_source_marks_the_service_failed() {
    // §4.4 agent exit 1
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    let home = w.owner(a).unwrap();
    let other = if home == n(1) { n(2) } else { n(1) };
    let mut out = Vec::new();
    w.engine
        .request(Millis(50), a, Request::Migrate { target: other }, &mut out)
        .unwrap();
    assert_eq!(w.state(a), ServiceState::Migrating);
    assert_eq!(
        w.request(a, Request::Stop),
        Err(RequestError::Busy {
            state: ServiceState::Migrating
        })
    );
    let done = OpResult::MigrateFailed { on_source: true };
    w.input(Input::Done {
        service: a,
        node: home,
        result: done,
    });
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(home))
    );
    w.engine
        .request(Millis(60), a, Request::Migrate { target: other }, &mut out)
        .unwrap();
    w.input(Input::Done {
        service: a,
        node: home,
        result: OpResult::MigrateFailed { on_source: false },
    });
    assert_eq!(w.state(a), ServiceState::Failed);
}

#[test]
fn relocate_request_goes_to_the_named_member_and_stop_waits_for_a_node_event() {
    // §2.11
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2, 3]);
    let a = w.sid("vm:a");
    w.request(a, Request::Relocate { target: Some(n(3)) })
        .unwrap();
    assert_eq!(w.owner(a), Some(n(3)));
    w.request(a, Request::Stop).unwrap();
    assert_eq!(w.state(a), ServiceState::Stopped);
    w.join(4);
    assert_eq!(w.state(a), ServiceState::Started);
}

#[test]
fn enable_on_a_named_member_outside_a_restricted_domain_is_refused() {
    // §2.11: score 0 → RG_EFAIL
    let d = ordered_domain("d", &[(1, 1)], true, false);
    let mut s = vm("vm:a", Some("d"));
    s.autostart = false;
    let mut w = World::new(Catalog::new(vec![d], vec![s]), &[1, 2]);
    let a = w.sid("vm:a");
    assert_eq!(
        w.request(a, Request::Enable { target: Some(n(2)) }),
        Err(RequestError::NowhereToRun)
    );
    w.request(a, Request::Enable { target: Some(n(1)) })
        .unwrap();
    assert_eq!(w.owner(a), Some(n(1)));
    assert_eq!(
        w.request(a, Request::Enable { target: None }),
        Err(RequestError::AlreadyRunning { node: n(1) })
    );
}

#[test]
fn a_vm_migrating_off_a_node_that_dies_waits_for_the_targets_report() {
    // R1 while a migration is in flight
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2, 3]);
    let a = w.sid("vm:a");
    let home = w.owner(a).unwrap();
    let target = *w.alive.iter().find(|m| **m != home).unwrap();
    let mut out = Vec::new();
    w.engine
        .request(Millis(50), a, Request::Migrate { target }, &mut out)
        .unwrap();
    // the migration completed just before the source died; no answer reached us
    w.running.entry(home).or_default().remove(&a);
    w.running.entry(target).or_default().insert(a);
    w.kill(home.0);
    w.fence(home.0);
    assert!(w.engine.held(a), "the target has not reported yet");
    w.input(Input::Report {
        node: target,
        running: vec![a],
    });
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(target))
    );
}

#[test]
fn a_member_that_no_longer_runs_its_service_triggers_recovery() {
    // §3.2 via reports
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1]);
    let a = w.sid("vm:a");
    w.running.clear();
    w.input(Input::Report {
        node: n(1),
        running: vec![],
    });
    assert_eq!(
        (w.state(a), w.owner(a)),
        (ServiceState::Started, Some(n(1)))
    );
    assert_eq!(w.engine.record(a).restarts, 1);
}

#[test]
fn restore_installs_a_replicated_table() {
    let mut e = Engine::new(Catalog::new(vec![], vec![vm("vm:a", None)]));
    let rec = ServiceRecord {
        state: ServiceState::Started,
        owner: Some(n(2)),
        ..ServiceRecord::new()
    };
    e.restore(ServiceIndex(0), rec, Intent::initial(true));
    assert_eq!(e.load(n(2)).services, 1);
    let mut out = Vec::new();
    e.handle(
        Millis(1),
        Input::View {
            members: nodes(&[1, 2]),
            quorate: true,
        },
        &mut out,
    );
    assert!(!out.iter().any(|a| matches!(a, Action::Start { .. })));
}

#[test]
fn request_errors_map_to_the_original_codes() {
    // §5.1 table
    assert_eq!(RequestError::NoQuorum.code(), -9);
    assert_eq!(RequestError::Frozen.code(), -11);
    assert_eq!(
        RequestError::Busy {
            state: ServiceState::Starting
        }
        .code(),
        -6
    );
    assert_eq!(RequestError::AlreadyRunning { node: n(1) }.code(), -10);
    assert_eq!(RequestError::Dependency.code(), -7);
    assert_eq!(RequestError::NodeDown { node: n(1) }.code(), -12);
    assert_eq!(RequestError::Invalid.code(), -8);
    assert_eq!(
        RequestError::NoQuorum.to_string(),
        "operation requires quorum"
    );
}

#[test]
fn a_service_whose_stop_failed_starts_nowhere_but_on_that_node() {
    // §3.4: resources may still be allocated where the stop failed (R1)
    let mut w = World::new(Catalog::new(vec![], vec![vm("vm:a", None)]), &[1, 2]);
    let a = w.sid("vm:a");
    let home = w.owner(a).unwrap();
    w.fail_stop.insert((a, home));
    w.request(a, Request::Disable).unwrap();
    assert_eq!(w.state(a), ServiceState::Disabled);
    assert_eq!(w.engine.load(home).services, 1, "still occupies its node");
    w.fail_stop.clear();
    w.request(a, Request::Enable { target: None }).unwrap();
    assert_eq!(w.owner(a), Some(home));
    let other = if home == n(1) { n(2) } else { n(1) };
    assert_eq!(
        w.request(
            a,
            Request::Enable {
                target: Some(other)
            }
        ),
        Err(RequestError::AlreadyRunning { node: home })
    );
}
