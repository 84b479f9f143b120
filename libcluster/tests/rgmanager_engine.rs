//! Property tests of the placement engine: random failures, joins, fencing, agent failures
//! and administrator requests against a small world of nodes that carry out its actions.
//! After every step: no service runs on two nodes (R1), nothing starts before a dead
//! owner is fenced (F1: a dead node keeps "running" its services until fenced, so a start
//! elsewhere would be caught by R1), restricted domains and exclusivity hold (R3). After a
//! fault-free phase every enabled service runs (R2).

use libcluster::rgmanager::{
    score, Action, Catalog, Domain, Engine, Input, OpResult, Request, Score, ServiceDef,
    ServiceIndex, ServiceState,
};
use libcluster::{Millis, NodeId};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const NODES: u32 = 5;

#[derive(Clone, Debug)]
enum Step {
    Kill(u32),
    Join(u32),
    Fence(u32),
    StatusFail(u32),
    BreakStart(u32, u32),
    BreakStop(u32, u32),
    Request(u32, u8, u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1..=NODES).prop_map(Step::Kill),
        (1..=NODES).prop_map(Step::Join),
        (1..=NODES).prop_map(Step::Fence),
        (0u32..12).prop_map(Step::StatusFail),
        ((0u32..12), (1..=NODES)).prop_map(|(s, n)| Step::BreakStart(s, n)),
        ((0u32..12), (1..=NODES)).prop_map(|(s, n)| Step::BreakStop(s, n)),
        ((0u32..12), 0u8..8, (1..=NODES)).prop_map(|(s, k, n)| Step::Request(s, k, n)),
    ]
}

/// ordered, restricted, nofailback, (node, priority) members.
type DomainSetup = (bool, bool, bool, Vec<(u32, u32)>);

#[derive(Clone, Debug)]
struct Setup {
    domains: Vec<DomainSetup>,
    services: Vec<(Option<usize>, bool, bool)>,
}

fn setup() -> impl Strategy<Value = Setup> {
    let domain = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec((1..=NODES, 1u32..4), 1..4),
    );
    let service = (
        proptest::option::of(0usize..3),
        any::<bool>(),
        prop::bool::weighted(0.15),
    );
    (
        proptest::collection::vec(domain, 3),
        proptest::collection::vec(service, 12),
    )
        .prop_map(|(domains, services)| Setup { domains, services })
}

struct World {
    e: Engine,
    now: Millis,
    alive: BTreeSet<NodeId>,
    running: BTreeMap<NodeId, BTreeSet<ServiceIndex>>,
    broken_start: BTreeSet<(ServiceIndex, NodeId)>,
    broken_stop: BTreeSet<(ServiceIndex, NodeId)>,
    queue: VecDeque<Input>,
}

impl World {
    fn runs_on(&self, s: ServiceIndex) -> Vec<NodeId> {
        self.running
            .iter()
            .filter(|(_, set)| set.contains(&s))
            .map(|(n, _)| *n)
            .collect()
    }

    fn carry_out(&mut self, out: Vec<Action>) -> Result<(), TestCaseError> {
        for a in out {
            match a {
                Action::Start { service, node, .. } => {
                    let elsewhere: Vec<_> = self
                        .runs_on(service)
                        .into_iter()
                        .filter(|n| *n != node)
                        .collect();
                    prop_assert!(
                        elsewhere.is_empty(),
                        "R1/F1: {} started on {} while on {:?}",
                        service,
                        node,
                        elsewhere
                    );
                    let dv = self
                        .e
                        .catalog()
                        .domain_of(service)
                        .map(|d| &self.e.catalog().domains()[d]);
                    if let Some(d) = dv {
                        if d.restricted {
                            prop_assert!(
                                d.contains(node),
                                "restricted domain broken by a start on {}",
                                node
                            );
                        }
                    }
                    if !self.alive.contains(&node) {
                        continue;
                    }
                    let result = if self.broken_start.contains(&(service, node)) {
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
                    let result = if self.broken_stop.contains(&(service, node)) {
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
                    let result = if self.alive.contains(&to) {
                        self.running.entry(from).or_default().remove(&service);
                        self.running.entry(to).or_default().insert(service);
                        OpResult::Migrated
                    } else {
                        OpResult::MigrateFailed { on_source: true }
                    };
                    self.queue.push_back(Input::Done {
                        service,
                        node: from,
                        result,
                    });
                }
                Action::Record { .. } | Action::AwaitFencing { .. } => {}
            }
        }
        Ok(())
    }

    fn feed(&mut self, i: Input) -> Result<(), TestCaseError> {
        self.queue.push_back(i);
        while let Some(i) = self.queue.pop_front() {
            self.now = self.now.plus(1000);
            let mut out = Vec::new();
            self.e.handle(self.now, i, &mut out);
            self.carry_out(out)?;
            self.check()?;
        }
        Ok(())
    }

    fn view(&mut self) -> Result<(), TestCaseError> {
        let members = self.alive.clone();
        self.feed(Input::View {
            members,
            quorate: true,
        })?;
        for n in self.alive.clone() {
            let running = self
                .running
                .get(&n)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            self.feed(Input::Report { node: n, running })?;
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for s in self.e.catalog().indexes() {
            let on = self.runs_on(s);
            prop_assert!(on.len() <= 1, "R1: {} runs on {:?}", s, on);
            let r = self.e.record(s);
            if let Some(o) = r.owner {
                prop_assert!(
                    self.e.members().contains(&o),
                    "{} owned by non-member {}",
                    s,
                    o
                );
            }
            if r.state == ServiceState::Started {
                let owner = r.owner.unwrap();
                let dv = self
                    .e
                    .catalog()
                    .domain_of(s)
                    .map(|d| self.e.catalog().domains()[d].view(self.e.members()));
                prop_assert!(
                    score(dv.as_ref(), owner, true, Some(owner)) != Score::Illegal,
                    "{} started on an illegal node",
                    s
                );
            }
        }
        for (n, set) in &self.running {
            let excl = set
                .iter()
                .filter(|s| self.e.catalog().service(**s).exclusive)
                .count();
            prop_assert!(
                excl == 0 || set.len() == 1,
                "exclusive broken on {}: {:?}",
                n,
                set
            );
        }
        Ok(())
    }
}

fn build(setup: &Setup) -> Engine {
    let domains = setup
        .domains
        .iter()
        .enumerate()
        .map(|(i, (o, r, nf, m))| {
            let m: Vec<_> = m.iter().map(|&(n, p)| (NodeId(n), Some(p))).collect();
            Domain::new(&format!("d{i}"), *o, *r, *nf, &m)
        })
        .collect();
    let services = setup
        .services
        .iter()
        .enumerate()
        .map(|(i, (d, migratory, exclusive))| {
            let mut s = ServiceDef::new(&format!("vm:{i}"));
            s.domain = d.map(|d| format!("d{d}"));
            s.migratory = *migratory;
            s.exclusive = *exclusive;
            s
        })
        .collect();
    Engine::new(Catalog::new(domains, services))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_faults_never_break_r1_f1_domains_or_exclusivity_and_all_settles(
        setup in setup(),
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let mut w = World {
            e: build(&setup),
            now: Millis(0),
            alive: (1..=NODES).map(NodeId).collect(),
            running: BTreeMap::new(),
            broken_start: BTreeSet::new(),
            broken_stop: BTreeSet::new(),
            queue: VecDeque::new(),
        };
        w.view()?;
        let mut fenced_since: BTreeSet<NodeId> = BTreeSet::new();
        for st in steps {
            match st {
                Step::Kill(n) => {
                    if w.alive.remove(&NodeId(n)) {
                        fenced_since.remove(&NodeId(n));
                        w.view()?;
                    }
                }
                Step::Join(n) => {
                    // A node can only come back after it was fenced (power cycled): it runs nothing.
                    if !w.alive.contains(&NodeId(n)) && fenced_since.contains(&NodeId(n)) {
                        w.alive.insert(NodeId(n));
                        w.running.remove(&NodeId(n));
                        w.view()?;
                    }
                }
                Step::Fence(n) => {
                    if !w.alive.contains(&NodeId(n)) {
                        w.running.remove(&NodeId(n));
                        fenced_since.insert(NodeId(n));
                        w.feed(Input::Fenced { node: NodeId(n) })?;
                    }
                }
                Step::StatusFail(s) => {
                    let s = ServiceIndex(s);
                    if let Some(o) = w.e.record(s).owner {
                        w.feed(Input::StatusFailed { service: s, node: o })?;
                    }
                }
                Step::BreakStart(s, n) => { w.broken_start.insert((ServiceIndex(s), NodeId(n))); }
                Step::BreakStop(s, n) => { w.broken_stop.insert((ServiceIndex(s), NodeId(n))); }
                Step::Request(s, k, n) => {
                    let req = match k {
                        0 => Request::Enable { target: Some(NodeId(n)) },
                        1 => Request::Enable { target: None },
                        2 => Request::Disable,
                        3 => Request::Stop,
                        4 => Request::Relocate { target: Some(NodeId(n)) },
                        5 => Request::Migrate { target: NodeId(n) },
                        6 => Request::Restart,
                        _ => Request::Relocate { target: None },
                    };
                    let mut out = Vec::new();
                    let _ = w.e.request(w.now, ServiceIndex(s), req, &mut out);
                    w.carry_out(out)?;
                    w.check()?;
                    w.feed(Input::Report { node: NodeId(1), running: vec![] }).ok();
                }
            }
        }
        // Fault-free phase: repair everything, fence the dead, bring every node back.
        w.broken_start.clear();
        w.broken_stop.clear();
        for n in 1..=NODES {
            let n = NodeId(n);
            if !w.alive.contains(&n) {
                w.running.remove(&n);
                w.feed(Input::Fenced { node: n })?;
            }
        }
        // A node event (one node power-cycled) also re-evaluates user-stopped services.
        w.alive = (1..NODES).map(NodeId).collect();
        w.view()?;
        w.running.remove(&NodeId(NODES));
        w.feed(Input::Fenced { node: NodeId(NODES) })?;
        w.alive.insert(NodeId(NODES));
        w.view()?;
        let no_exclusive = setup.services.iter().all(|s| !s.2);
        for s in w.e.catalog().indexes() {
            let r = w.e.record(s);
            let i = w.e.intent(s);
            let settled = matches!(r.state, ServiceState::Failed | ServiceState::Disabled | ServiceState::Started | ServiceState::Stopped);
            prop_assert!(settled, "{} left {}", s, r.state);
            let dv = w.e.catalog().domain_of(s).map(|d| w.e.catalog().domains()[d].view(w.e.members()));
            let runnable = dv.as_ref().is_none_or(|v| !v.unavailable());
            if no_exclusive && i.enabled && !i.frozen && runnable && r.state != ServiceState::Failed {
                prop_assert_eq!(r.state, ServiceState::Started, "R2: {} not running", s);
            }
        }
    }
}
