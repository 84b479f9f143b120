//! The membership core under `libcluster::sim`: 2–9 nodes, random schedules of crashes,
//! restarts, pauses, symmetric / one-way / flapping partitions, loss, duplication, delay
//! (reordering), leaves, and a group-messaging workload. After every step: M1, M3 (order
//! and sets) and Q1. After the heal: M2, one view of exactly the live nodes within 5 × token
//! of the last fault. Nodes that shut down (killed, left) are restarted 200–1000 ms later,
//! as systemd would; nodes still expelled by a side that lost quorum are restarted by "the
//! administrator" 3 × token after the heal.
//!
//! Replay: `SIM_SEED=<seed> cargo test -p libcluster --test membership_simulator <test>`;
//! transcript: add `RUST_LOG=debug ... -- --nocapture`. Soak:
//! `SIM_SEEDS=20000 SIM_SEED_BASE=$(date +%s) cargo test --release -p libcluster --test membership_simulator`.

use libcluster::membership::{
    Action, ClientRequest, Membership, MembershipConfig, MembershipNode, NodeConf, ViewId,
};
use libcluster::sim::{self, Fault, FaultMenu, NodeStatus, Sim, SimConfig, SimError, SimView};
use libcluster::{Millis, NodeId};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Token timeouts the sweeps cycle through (the default, a fast and a slow one).
const TOKENS_MS: [u64; 3] = [1000, 300, 2000];
const GROUP: &str = "g";
const SAFETY_MS: u64 = 12_000;

type View = SimView<MembershipNode>;

fn config(id: NodeId, incarnation: u64, n: u32, two_node: bool, token_ms: u64) -> MembershipConfig {
    let nodes = (1..=n)
        .map(|i| NodeConf {
            id: NodeId(i),
            votes: 1,
        })
        .collect();
    let mut cfg = MembershipConfig::new(id, incarnation, nodes);
    cfg.token_ms = token_ms;
    cfg.quorum_dev_poll_ms = token_ms;
    if two_node {
        cfg.two_node = true;
        cfg.expected_votes = 1;
    }
    cfg
}

/// `RUST_LOG=debug` (with `-- --nocapture`) prints a replayed run as a transcript.
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .without_time()
            .try_init();
    }
}

fn build(seed: u64, n: u32, two_node: bool, token_ms: u64) -> Sim<MembershipNode> {
    init_tracing();
    let mut sc = SimConfig::new(seed, n);
    sc.start_spread_ms = 300;
    let mut sim = Sim::new(sc, move |id, inc| {
        let core = Membership::new(config(id, inc, n, two_node, token_ms)).expect("valid config");
        MembershipNode::new(core, vec![GROUP.to_string()])
    });
    sim.add_invariant("m1_one_member_list_per_view", m1_one_member_list_per_view());
    sim.add_invariant("m3_one_order_per_view", m3_one_order_per_view());
    sim.add_invariant(
        "m3_movers_delivered_the_same_set",
        m3_movers_delivered_the_same_set(),
    );
    if !two_node {
        sim.add_invariant(
            "q1_no_two_disjoint_quorate_views",
            q1_no_two_disjoint_quorate_views,
        );
    }
    sim
}

/// M1: a ViewId has one member list, everywhere, over the whole run.
fn m1_one_member_list_per_view() -> impl FnMut(&View) -> Result<(), String> {
    let mut views: BTreeMap<ViewId, Vec<(NodeId, u64)>> = BTreeMap::new();
    move |v| {
        for e in v.new_events() {
            if let Action::ViewInstalled { view, members } = &e.event {
                let first = views.entry(*view).or_insert_with(|| members.clone());
                if first != members {
                    return Err(format!(
                        "node {} installed {view} with {members:?}, elsewhere {first:?}",
                        e.node
                    ));
                }
            }
        }
        Ok(())
    }
}

/// M3 (order): one entry per (view, seq) everywhere; each node's deliveries in a view
/// strictly increase.
fn m3_one_order_per_view() -> impl FnMut(&View) -> Result<(), String> {
    let mut entries: BTreeMap<(ViewId, u64), (NodeId, Vec<u8>)> = BTreeMap::new();
    let mut last: BTreeMap<(NodeId, u64, ViewId), u64> = BTreeMap::new();
    move |v| {
        for e in v.new_events() {
            if let Action::Deliver {
                view,
                seq,
                from,
                payload,
                ..
            } = &e.event
            {
                let first = entries
                    .entry((*view, *seq))
                    .or_insert((*from, payload.clone()));
                if *first != (*from, payload.clone()) {
                    return Err(format!(
                        "node {} delivered {from}:{payload:?} as {view}#{seq}, elsewhere {}:{:?}",
                        e.node, first.0, first.1
                    ));
                }
                let l = last.entry((e.node, e.incarnation, *view)).or_insert(0);
                if *seq <= *l {
                    return Err(format!("node {} delivered {view}#{seq} after #{l}", e.node));
                }
                *l = *seq;
            }
        }
        Ok(())
    }
}

/// M3 (sets): nodes that install the same next view after the same previous view delivered
/// the same set in the previous view (above the later of their group-join points).
fn m3_movers_delivered_the_same_set() -> impl FnMut(&View) -> Result<(), String> {
    type Key = (NodeId, u64);
    let mut installed: BTreeMap<Key, ViewId> = BTreeMap::new();
    let mut in_group: BTreeMap<Key, bool> = BTreeMap::new();
    let mut member_from: BTreeMap<(Key, ViewId), u64> = BTreeMap::new();
    let mut delivered: BTreeMap<(Key, ViewId), BTreeSet<u64>> = BTreeMap::new();
    let mut movers: BTreeMap<(ViewId, ViewId), Key> = BTreeMap::new();
    move |v| {
        for e in v.new_events() {
            let key = (e.node, e.incarnation);
            match &e.event {
                Action::ViewInstalled { view, .. } => {
                    if let Some(prev) = installed.insert(key, *view) {
                        if let Some(&mine) = member_from.get(&(key, prev)) {
                            match movers.get(&(prev, *view)).copied() {
                                None => {
                                    movers.insert((prev, *view), key);
                                }
                                Some(other) => {
                                    if let Some(&theirs) = member_from.get(&(other, prev)) {
                                        let from = mine.max(theirs);
                                        let pick = |k: Key| -> Vec<u64> {
                                            delivered
                                                .get(&(k, prev))
                                                .map(|d| d.range(from + 1..).copied().collect())
                                                .unwrap_or_default()
                                        };
                                        let (a, b) = (pick(key), pick(other));
                                        if a != b {
                                            return Err(format!(
                                                "nodes {} and {} moved {prev} -> {view} having delivered {a:?} and {b:?}",
                                                key.0, other.0
                                            ));
                                        }
                                    }
                                }
                            }
                        }
                    }
                    if in_group.get(&key).copied().unwrap_or(false) {
                        member_from.entry((key, *view)).or_insert(0);
                    }
                }
                Action::GroupView {
                    group,
                    view,
                    seq,
                    members,
                    ..
                } if group == GROUP => {
                    let inside = members.contains(&e.node);
                    in_group.insert(key, inside);
                    if inside {
                        member_from.entry((key, *view)).or_insert(*seq);
                    }
                }
                Action::Deliver { view, seq, .. } => {
                    delivered.entry((key, *view)).or_default().insert(*seq);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Q1: no two nodes (running or paused) with disjoint installed views are both quorate.
fn q1_no_two_disjoint_quorate_views(v: &View) -> Result<(), String> {
    let quorate: Vec<(NodeId, BTreeSet<NodeId>)> = v
        .nodes()
        .filter_map(|n| {
            let core = n.core?.core();
            if !core.quorum().is_some_and(|q| q.quorate) {
                return None;
            }
            core.view()
                .map(|(_, m)| (n.id, m.iter().map(|x| x.0).collect()))
        })
        .collect();
    for (i, (a, va)) in quorate.iter().enumerate() {
        for (b, vb) in &quorate[i + 1..] {
            if va.is_disjoint(vb) {
                return Err(format!(
                    "node {a} {va:?} and node {b} {vb:?} are both quorate"
                ));
            }
        }
    }
    Ok(())
}

/// Every node up, one view holding exactly the live incarnations, nobody mid-change.
fn converged(v: &View) -> Result<(), String> {
    let live: Vec<(NodeId, u64)> = v.nodes().map(|n| (n.id, n.incarnation)).collect();
    let mut seen = None;
    for n in v.nodes() {
        let (NodeStatus::Up, Some(node)) = (n.status, n.core) else {
            return Err(format!("node {} is {:?}", n.id, n.status));
        };
        let core = node.core();
        let Some((view, members)) = core.view() else {
            return Err(format!("node {} has no view", n.id));
        };
        if members != live.as_slice() || core.changing_view() || seen.is_some_and(|s| s != view) {
            return Err(format!(
                "node {} in {view} with {members:?}; live: {live:?}",
                n.id
            ));
        }
        seen = Some(view);
    }
    Ok(())
}

/// Every node's own account, for a failure message.
fn dump(v: &View) -> String {
    let mut s = String::new();
    for n in v.nodes() {
        let Some(node) = n.core else {
            s += &format!("  node {}: {:?}\n", n.id, n.status);
            continue;
        };
        let st = node.core().status();
        let states: Vec<String> = st
            .nodes
            .iter()
            .map(|x| format!("{}@{}:{:?}", x.id, x.incarnation, x.state))
            .collect();
        s += &format!(
            "  node {}@{} {:?}: view {:?} quorate {:?} changing {} [{}] {:?}\n",
            n.id,
            n.incarnation,
            n.status,
            st.view.map(|v| v.to_string()),
            st.quorum.map(|q| q.quorate),
            node.core().changing_view(),
            states.join(" "),
            st.counters
        );
    }
    s
}

/// Runs to `until`, restarting (200–1000 ms later) every node that asked to shut down.
fn run_restarting(
    sim: &mut Sim<MembershipNode>,
    until: Millis,
    rng: &mut sim::SimRng,
) -> Result<(), SimError> {
    loop {
        let seen = sim.view().history().len();
        let shut = |v: &View| {
            v.history()[seen..]
                .iter()
                .any(|e| matches!(e.event, Action::Shutdown { .. }))
        };
        match sim.run_until("a shutdown", until, shut) {
            Ok(_) => {
                let down: Vec<NodeId> = sim.view().history()[seen..]
                    .iter()
                    .filter(|e| matches!(e.event, Action::Shutdown { .. }))
                    .map(|e| e.node)
                    .collect();
                for n in down {
                    sim.apply(Fault::Crash(n))?;
                    let at = sim.now().plus(rng.random_range(200..1000));
                    sim.schedule(at, Fault::Restart(n));
                }
            }
            Err(SimError::Timeout { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Running nodes some running node holds as expelled at their current incarnation.
fn expelled_everywhere(v: &View) -> Vec<NodeId> {
    let live: BTreeMap<NodeId, u64> = v
        .nodes()
        .filter(|n| n.status == NodeStatus::Up)
        .map(|n| (n.id, n.incarnation))
        .collect();
    let mut out = BTreeSet::new();
    for (_, node) in v.up() {
        for (id, inc) in node.core().expelled() {
            if live.get(&id) == Some(&inc) {
                out.insert(id);
            }
        }
    }
    out.into_iter().collect()
}

struct Outcome {
    settle_ms: u64,
    steps: u64,
    admin_restarts: u64,
    views: usize,
    delivered: usize,
}

fn scenario(seed: u64, n: u32, two_node: bool) -> Result<Outcome, String> {
    let token_ms = TOKENS_MS[(seed / 4 % 3) as usize];
    let m2_bound_ms = 5 * token_ms;
    let mut sim = build(seed, n, two_node, token_ms);
    let mut rng = sim::rng_for(seed, "membership-scenario");
    let nodes: Vec<NodeId> = (1..=n).map(NodeId).collect();
    let menu = FaultMenu {
        max_delay_ms: 200,
        max_faults: 10,
        ..FaultMenu::all(((n as usize) / 2).max(1))
    };
    let schedule = sim::random_schedule(&mut rng, &nodes, Millis(SAFETY_MS), &menu);
    sim.schedule_all(&schedule);
    // Flapping: one split toggling every 100–400 ms for a while.
    if n > 2 && rng.random_bool(0.3) {
        let side: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.5))
            .collect();
        let other: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|x| !side.contains(x))
            .collect();
        let mut at = Millis(rng.random_range(1000..8000));
        let end = at.plus(rng.random_range(500..3000));
        while at < end {
            sim.schedule(at, Fault::Partition(vec![side.clone(), other.clone()]));
            at = at.plus(rng.random_range(100..400));
            sim.schedule(at, Fault::HealAll);
            at = at.plus(rng.random_range(100..400));
        }
    }
    // A clean leave now and then (the node exits and is restarted).
    if rng.random_bool(0.3) {
        let at = Millis(rng.random_range(1000..SAFETY_MS));
        sim.input(
            at,
            NodeId(rng.random_range(1..=n)),
            ClientRequest::Leave { remove: false },
        );
    }
    // Workload: every node sends a group message every 100–600 ms.
    let mut sent = 0u64;
    for &node in &nodes {
        let mut at = Millis(rng.random_range(800..1200));
        while at.0 < SAFETY_MS + 2 * token_ms {
            sent += 1;
            let payload = sent.to_le_bytes().to_vec();
            sim.input(
                at,
                node,
                ClientRequest::GroupSend {
                    group: GROUP.into(),
                    payload,
                },
            );
            at = at.plus(rng.random_range(100..600));
        }
    }
    let fail = |e: SimError| e.to_string();
    run_restarting(&mut sim, schedule.heal_at, &mut rng).map_err(fail)?;
    // Liveness.
    let heal = schedule.heal_at;
    let mut admin_restarts = 0;
    loop {
        let t = sim.now().plus(50);
        run_restarting(&mut sim, t, &mut rng).map_err(fail)?;
        let last_fault = sim
            .view()
            .fault_log()
            .last()
            .map_or(heal, |f| f.0)
            .max(heal);
        if converged(sim.view()).is_ok() {
            let v = sim.view();
            let views = v
                .history()
                .iter()
                .filter(|e| matches!(e.event, Action::ViewInstalled { .. }))
                .count();
            let delivered = v
                .history()
                .iter()
                .filter(|e| matches!(e.event, Action::Deliver { .. }))
                .count();
            return Ok(Outcome {
                settle_ms: sim.now().since(last_fault),
                steps: v.stats().steps,
                admin_restarts,
                views,
                delivered,
            });
        }
        // Only running nodes count: a killed node waiting for systemd is left alone.
        if admin_restarts == 0 && sim.now().since(heal) >= 3 * token_ms {
            for id in expelled_everywhere(sim.view()) {
                admin_restarts += 1;
                sim.apply(Fault::Crash(id)).map_err(fail)?;
                sim.apply(Fault::Restart(id)).map_err(fail)?;
            }
        }
        if sim.now().since(last_fault) > m2_bound_ms {
            let why = format!(
                "{}\n{}",
                converged(sim.view()).err().unwrap_or_default(),
                dump(sim.view())
            );
            return Err(format!(
                "seed {seed}: M2: not converged {m2_bound_ms} ms after the last fault ({n} nodes, token {token_ms} ms{}): {why}",
                if two_node { ", two_node" } else { "" }
            ));
        }
    }
}

// The wall clock only times the sweep for the report; simulated time drives the cores.
#[allow(clippy::disallowed_methods)]
fn sweep(name: &str, default: u64, shape: impl Fn(u64) -> (u32, bool)) {
    let start = std::time::Instant::now();
    let (mut runs, mut worst, mut steps, mut admin, mut views, mut delivered) = (0, 0, 0, 0, 0, 0);
    sim::run_seeds(name, default, |seed| {
        let (n, two_node) = shape(seed);
        let o = scenario(seed, n, two_node)?;
        if o.admin_restarts > 0 && std::env::var_os("SIM_VERBOSE").is_some() {
            eprintln!(
                "{name}: seed {seed}: {} administrator restarts",
                o.admin_restarts
            );
        }
        runs += 1;
        worst = worst.max(o.settle_ms);
        steps += o.steps;
        admin += o.admin_restarts;
        views += o.views;
        delivered += o.delivered;
        Ok::<(), String>(())
    });
    eprintln!(
        "{name}: {runs} schedules, {steps} steps, {views} view installs, {delivered} deliveries, \
         {admin} administrator restarts, slowest convergence {worst} ms after the last fault, {:.1?}",
        start.elapsed()
    );
}

#[test]
fn random_schedules_two_to_five_nodes_keep_m1_m2_m3_q1() {
    sweep(
        "random_schedules_two_to_five_nodes_keep_m1_m2_m3_q1",
        1000,
        |seed| (2 + (seed % 4) as u32, false),
    );
}

#[test]
fn random_schedules_six_to_nine_nodes_keep_m1_m2_m3_q1() {
    sweep(
        "random_schedules_six_to_nine_nodes_keep_m1_m2_m3_q1",
        700,
        |seed| (6 + (seed % 4) as u32, false),
    );
}

#[test]
fn random_schedules_two_node_mode_converge_after_kills() {
    sweep(
        "random_schedules_two_node_mode_converge_after_kills",
        300,
        |_| (2, true),
    );
}

#[test]
fn one_seed_replays_to_the_same_trace() {
    let hash = |seed| {
        let mut sim = build(seed, 4, false, 1000);
        let mut rng = sim::rng_for(seed, "membership-scenario");
        let nodes: Vec<NodeId> = (1..=4).map(NodeId).collect();
        let schedule = sim::random_schedule(&mut rng, &nodes, Millis(6000), &FaultMenu::all(1));
        sim.schedule_all(&schedule);
        sim.run_to(Millis(8000)).expect("no violation");
        sim.trace_hash()
    };
    assert_eq!(hash(5), hash(5));
    assert_ne!(hash(5), hash(6));
}

#[test]
fn the_m1_checker_rejects_a_second_member_list() {
    let mut check = m1_one_member_list_per_view();
    let mut sim = build(3, 3, false, 1000);
    sim.run_to(Millis(3000)).expect("quiet run");
    assert!(check(sim.view()).is_ok());
    // Feed the history to a fresh checker, then a forged install of the same ViewId.
    let installs: Vec<(ViewId, Vec<(NodeId, u64)>)> = sim
        .view()
        .history()
        .iter()
        .filter_map(|e| match &e.event {
            Action::ViewInstalled { view, members } => Some((*view, members.clone())),
            _ => None,
        })
        .collect();
    let (view, mut members) = installs.last().cloned().expect("a view was installed");
    members.pop();
    let mut seen: BTreeMap<ViewId, Vec<(NodeId, u64)>> = BTreeMap::new();
    let mut conflict = false;
    for (v, m) in installs.into_iter().chain([(view, members)]) {
        conflict |= seen.entry(v).or_insert_with(|| m.clone()) != &m;
    }
    assert!(
        conflict,
        "a forged list for an installed ViewId must conflict"
    );
}
