//! Placement engine timing: 10,000 VMs over 8 failover domains on 32 nodes.
//!
//! `cargo bench -p libcluster --bench placement`. Std only: each scenario runs on a fresh
//! clone of its starting engine (the clone is not timed) and prints median/min/max.

use libcluster::rgmanager::{Action, Catalog, Domain, Engine, Input, OpResult, ServiceDef};
use libcluster::{Millis, NodeId};
use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

const NODES: u32 = 32;
const SERVICES: u32 = 10_000;
const RUNS: usize = 21;

/// Eight domains: even ones unordered over 8 nodes, odd ones ordered with two tiers of 8
/// nodes at priorities 1 and 2; restricted alternates by pairs. Every node is in some
/// domain's top tier, so services spread (about 312 per node).
fn catalog() -> Catalog {
    let mut domains = Vec::new();
    for d in 0..8u32 {
        let base = (d * 8) % NODES;
        let ordered = d % 2 == 1;
        let restricted = (d / 2) % 2 == 0;
        let mut members = Vec::new();
        for k in 0..8 {
            members.push((NodeId(1 + (base + k) % NODES), Some(1)));
        }
        if ordered {
            for k in 8..16 {
                members.push((NodeId(1 + (base + k) % NODES), Some(2)));
            }
        }
        domains.push(Domain::new(
            &format!("dom{d}"),
            ordered,
            restricted,
            d == 7,
            &members,
        ));
    }
    let services = (0..SERVICES)
        .map(|i| {
            let mut s = ServiceDef::new(&format!("vm:guest{i:05}"));
            s.domain = Some(format!("dom{}", i % 8));
            s.migratory = true;
            s
        })
        .collect();
    Catalog::new(domains, services)
}

fn finish(e: &mut Engine, now: Millis, out: Vec<Action>) -> usize {
    let mut starts = 0;
    let mut queue = out;
    while !queue.is_empty() {
        let mut next = Vec::new();
        for a in queue {
            if let Action::Start { service, node, .. } = a {
                starts += 1;
                let done = Input::Done {
                    service,
                    node,
                    result: OpResult::Started,
                };
                e.handle(now, done, &mut next);
            }
        }
        queue = next;
    }
    starts
}

struct Row {
    name: &'static str,
    times: Vec<Duration>,
    actions: usize,
}

/// Runs `f` on `RUNS` fresh clones of `start`; only `f` is timed.
fn time<F: FnMut(Engine) -> usize>(name: &'static str, start: &Engine, mut f: F) -> Row {
    let mut times = Vec::with_capacity(RUNS);
    let mut actions = 0;
    for _ in 0..RUNS {
        let e = start.clone();
        #[allow(clippy::disallowed_methods)] // a benchmark measures wall time; cores never do
        let t = Instant::now();
        actions = black_box(f(e));
        times.push(t.elapsed());
    }
    times.sort();
    Row {
        name,
        times,
        actions,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let members: BTreeSet<NodeId> = (1..=NODES).map(NodeId).collect();
    let fresh = Engine::new(catalog());

    // Settled cluster: everything started.
    let mut settled = fresh.clone();
    let mut out = Vec::new();
    settled.handle(
        Millis(1),
        Input::View {
            members: members.clone(),
            quorate: true,
        },
        &mut out,
    );
    let placed = finish(&mut settled, Millis(2), out);
    let victim = NodeId(1);
    let lost = settled.load(victim).services as usize;

    let mut rows = Vec::new();

    rows.push(time(
        "initial placement: decision round",
        &fresh,
        |mut e| {
            let mut out = Vec::new();
            e.handle(
                Millis(1),
                Input::View {
                    members: members.clone(),
                    quorate: true,
                },
                &mut out,
            );
            out.iter()
                .filter(|a| matches!(a, Action::Start { .. }))
                .count()
        },
    ));

    rows.push(time(
        "initial placement: round + 10k start results",
        &fresh,
        |mut e| {
            let mut out = Vec::new();
            e.handle(
                Millis(1),
                Input::View {
                    members: members.clone(),
                    quorate: true,
                },
                &mut out,
            );
            finish(&mut e, Millis(2), out)
        },
    ));

    let survivors: BTreeSet<NodeId> = members.iter().copied().filter(|n| *n != victim).collect();
    rows.push(time(
        "node loss: view change (stop + wait for fencing)",
        &settled,
        |mut e| {
            let mut out = Vec::new();
            e.handle(
                Millis(10),
                Input::View {
                    members: survivors.clone(),
                    quorate: true,
                },
                &mut out,
            );
            out.len()
        },
    ));

    rows.push(time(
        "node loss: view + fenced + re-placement + results",
        &settled,
        |mut e| {
            let mut out = Vec::new();
            e.handle(
                Millis(10),
                Input::View {
                    members: survivors.clone(),
                    quorate: true,
                },
                &mut out,
            );
            out.clear();
            e.handle(Millis(11), Input::Fenced { node: victim }, &mut out);
            finish(&mut e, Millis(12), out)
        },
    ));

    println!("placement engine: {SERVICES} VMs, 8 domains, {NODES} nodes; {placed} placed, {lost} on the lost node; {RUNS} runs");
    println!(
        "{:<52} {:>10} {:>10} {:>10} {:>9}",
        "scenario", "median ms", "min ms", "max ms", "actions"
    );
    for r in rows {
        let med = r.times[r.times.len() / 2];
        println!(
            "{:<52} {:>10} {:>10} {:>10} {:>9}",
            r.name,
            ms(med),
            ms(r.times[0]),
            ms(r.times[r.times.len() - 1]),
            r.actions
        );
    }
}
