//! The simulated world, one mechanism at a time: links, partitions, pauses, crashes, timers,
//! invariants, stalls and RNG streams. A `Recorder` node sends what
//! the scenario tells it to and records what it receives.

use libcluster::sim::{
    Ctx, Emitted, Fault, LinkConfig, NodeStatus, Process, Sim, SimConfig, SimError, SimView,
};
use libcluster::{Millis, NodeId};
use rand::RngCore;
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Debug)]
enum Cmd {
    Send {
        to: NodeId,
        tag: u32,
    },
    /// Send `count` messages tagged 0.. to `to` in one step.
    Burst {
        to: NodeId,
        count: u32,
    },
    /// Ask for a timer at this time.
    TimerAt(Millis),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Started { draw: u64 },
    Got { from: NodeId, tag: u32 },
    Timer,
}

#[derive(Debug, Default)]
struct Recorder {
    received: Vec<(NodeId, u32)>,
    deadline: Option<Millis>,
}

impl Process for Recorder {
    type Msg = u32;
    type Input = Cmd;
    type Event = Ev;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let draw = ctx.rng.next_u64();
        ctx.emit(Ev::Started { draw });
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, tag: u32) {
        self.received.push((from, tag));
        ctx.emit(Ev::Got { from, tag });
    }

    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, input: Cmd) {
        match input {
            Cmd::Send { to, tag } => ctx.send(to, tag),
            Cmd::Burst { to, count } => (0..count).for_each(|tag| ctx.send(to, tag)),
            Cmd::TimerAt(t) => self.deadline = Some(t),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.deadline = None;
        ctx.emit(Ev::Timer);
    }

    fn next_deadline(&self) -> Option<Millis> {
        self.deadline
    }
}

fn n(i: u32) -> NodeId {
    NodeId(i)
}

fn sim(seed: u64, nodes: u32) -> Sim<Recorder> {
    Sim::new(SimConfig::new(seed, nodes), |_, _| Recorder::default())
}

fn send(sim: &mut Sim<Recorder>, from: u32, to: u32, tag: u32) {
    let now = sim.now();
    sim.input(now, n(from), Cmd::Send { to: n(to), tag });
}

/// (time, receiver, sender, tag) of every message received, in order.
fn received(view: &SimView<Recorder>) -> Vec<(Millis, NodeId, NodeId, u32)> {
    view.history()
        .iter()
        .filter_map(|e| match e.event {
            Ev::Got { from, tag } => Some((e.at, e.node, from, tag)),
            _ => None,
        })
        .collect()
}

fn got(view: &SimView<Recorder>, to: u32, from: u32, tag: u32) -> bool {
    received(view)
        .iter()
        .any(|&(_, r, s, t)| (r, s, t) == (n(to), n(from), tag))
}

#[test]
fn one_way_cut_drops_only_that_direction() {
    let mut sim = sim(1, 3);
    sim.apply(Fault::CutLink {
        from: n(1),
        to: n(2),
    })
    .unwrap();
    send(&mut sim, 1, 2, 10);
    send(&mut sim, 2, 1, 20);
    send(&mut sim, 1, 3, 30);
    sim.run_for(100).unwrap();
    let v = sim.view();
    assert!(!got(v, 2, 1, 10), "1 -> 2 should be cut");
    assert!(got(v, 1, 2, 20), "2 -> 1 should work");
    assert!(got(v, 3, 1, 30), "1 -> 3 should work");
    assert_eq!(v.stats().dropped_partition, 1);

    sim.apply(Fault::HealLink {
        from: n(1),
        to: n(2),
    })
    .unwrap();
    send(&mut sim, 1, 2, 11);
    sim.run_for(100).unwrap();
    assert!(got(sim.view(), 2, 1, 11));
}

#[test]
fn partition_drops_both_ways_between_groups_until_healed() {
    let mut sim = sim(2, 3);
    sim.apply(Fault::Partition(vec![vec![n(1), n(2)], vec![n(3)]]))
        .unwrap();
    for (from, to) in [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)] {
        send(&mut sim, from, to, from * 10 + to);
    }
    sim.run_for(100).unwrap();
    let v = sim.view();
    assert!(got(v, 2, 1, 12) && got(v, 1, 2, 21));
    for (from, to) in [(1, 3), (3, 1), (2, 3), (3, 2)] {
        assert!(!got(v, to, from, from * 10 + to), "{from} -> {to} crossed");
    }
    assert_eq!(v.stats().dropped_partition, 4);

    sim.apply(Fault::HealAll).unwrap();
    send(&mut sim, 3, 1, 99);
    sim.run_for(100).unwrap();
    assert!(got(sim.view(), 1, 3, 99));
}

#[test]
fn paused_node_receives_late_then_its_overdue_timer_fires() {
    let mut sim = sim(3, 2);
    sim.input(Millis(0), n(2), Cmd::TimerAt(Millis(500)));
    sim.schedule(Millis(100), Fault::Pause(n(2)));
    sim.schedule(Millis(1000), Fault::Resume(n(2)));
    sim.input(Millis(200), n(1), Cmd::Send { to: n(2), tag: 7 });
    sim.input(Millis(300), n(2), Cmd::Send { to: n(1), tag: 8 });

    sim.run_to(Millis(999)).unwrap();
    assert_eq!(sim.view().status(n(2)), Some(NodeStatus::Paused));
    assert!(received(sim.view()).is_empty(), "a paused node ran");

    sim.run_to(Millis(2000)).unwrap();
    let v = sim.view();
    let at_2: Vec<_> = v
        .history()
        .iter()
        .filter(|e| e.node == n(2) && !matches!(e.event, Ev::Started { .. }))
        .map(|e| (e.at, e.event.clone()))
        .collect();
    // The buffered message arrives at resume time, before the timer overdue since 500 ms.
    assert_eq!(
        at_2,
        vec![
            (Millis(1000), Ev::Got { from: n(1), tag: 7 }),
            (Millis(1000), Ev::Timer)
        ]
    );
    // The input held during the pause ran after resume, so its message left late.
    let back = received(v)
        .into_iter()
        .find(|&(_, r, _, t)| r == n(1) && t == 8);
    assert!(
        matches!(back, Some((at, ..)) if at > Millis(1000)),
        "{back:?}"
    );
}

#[test]
fn paused_node_keeps_only_a_bounded_socket_buffer() {
    let mut config = SimConfig::new(4, 2);
    config.net.pause_buffer = 3;
    let mut sim = Sim::new(config, |_, _| Recorder::default());
    sim.apply(Fault::Pause(n(2))).unwrap();
    sim.input(
        Millis(0),
        n(1),
        Cmd::Burst {
            to: n(2),
            count: 10,
        },
    );
    sim.run_for(100).unwrap();
    sim.apply(Fault::Resume(n(2))).unwrap();
    sim.run_for(10).unwrap();
    let v = sim.view();
    assert_eq!(v.stats().dropped_pause_overflow, 7);
    assert_eq!(v.core(n(2)).unwrap().received.len(), 3);
    assert!(received(v).iter().all(|&(at, ..)| at == Millis(100)));
}

#[test]
fn crash_and_restart_builds_a_fresh_core_with_a_new_incarnation() {
    let built = Rc::new(RefCell::new(Vec::new()));
    let log = built.clone();
    let mut sim = Sim::new(SimConfig::new(5, 2), move |id, incarnation| {
        log.borrow_mut().push((id, incarnation));
        Recorder::default()
    });
    send(&mut sim, 1, 2, 1);
    sim.run_for(50).unwrap();
    assert_eq!(sim.view().core(n(2)).unwrap().received.len(), 1);

    sim.apply(Fault::Crash(n(2))).unwrap();
    assert_eq!(sim.view().status(n(2)), Some(NodeStatus::Down));
    assert!(sim.view().core(n(2)).is_none());
    send(&mut sim, 1, 2, 2);
    sim.input(sim.now(), n(2), Cmd::Send { to: n(1), tag: 3 });
    sim.run_for(50).unwrap();
    assert_eq!(sim.view().stats().dropped_down, 1);
    assert_eq!(sim.view().stats().inputs_dropped, 1);

    sim.apply(Fault::Restart(n(2))).unwrap();
    let v = sim.view();
    assert_eq!(v.node(n(2)).unwrap().incarnation, 2);
    assert!(v.core(n(2)).unwrap().received.is_empty(), "state survived");
    assert_eq!(
        *built.borrow(),
        vec![(n(1), 1), (n(2), 1), (n(2), 2)],
        "factory calls"
    );
    let last: &Emitted<Ev> = v.history().last().unwrap();
    assert_eq!((last.node, last.incarnation), (n(2), 2));
    assert!(matches!(last.event, Ev::Started { .. }));
    // A restarted node draws a fresh random stream.
    let draws: Vec<_> = v
        .history()
        .iter()
        .filter(|e| e.node == n(2))
        .filter_map(|e| match e.event {
            Ev::Started { draw } => Some(draw),
            _ => None,
        })
        .collect();
    assert!(draws.len() == 2 && draws[0] != draws[1]);
}

#[test]
fn full_loss_drops_and_full_duplication_delivers_twice() {
    let mut sim = sim(6, 2);
    sim.apply(Fault::SetLoss(1.0)).unwrap();
    send(&mut sim, 1, 2, 1);
    sim.run_for(50).unwrap();
    assert_eq!(sim.view().stats().dropped_loss, 1);

    sim.apply(Fault::SetLoss(0.0)).unwrap();
    sim.apply(Fault::SetDuplication(1.0)).unwrap();
    send(&mut sim, 1, 2, 2);
    sim.run_for(50).unwrap();
    let copies = received(sim.view())
        .iter()
        .filter(|&&(_, _, _, t)| t == 2)
        .count();
    assert_eq!(copies, 2);
    assert_eq!(sim.view().stats().duplicated, 1);
}

#[test]
fn random_latency_stays_in_range_and_reorders() {
    let mut sim = sim(7, 2);
    sim.apply(Fault::SetDelay {
        min_ms: 10,
        max_ms: 100,
    })
    .unwrap();
    sim.input(
        Millis(0),
        n(1),
        Cmd::Burst {
            to: n(2),
            count: 50,
        },
    );
    sim.run_for(200).unwrap();
    let got = received(sim.view());
    assert_eq!(got.len(), 50);
    assert!(got
        .iter()
        .all(|&(at, ..)| (Millis(10)..=Millis(100)).contains(&at)));
    let tags: Vec<u32> = got.iter().map(|g| g.3).collect();
    assert!(tags.windows(2).any(|w| w[0] > w[1]), "never reordered");
}

#[test]
fn per_link_override_applies_to_one_direction_until_heal_all() {
    let mut sim = sim(8, 2);
    let slow = LinkConfig {
        min_ms: 70,
        max_ms: 70,
        ..LinkConfig::lan()
    };
    sim.apply(Fault::SetLink {
        from: n(1),
        to: n(2),
        link: slow,
    })
    .unwrap();
    send(&mut sim, 1, 2, 1);
    send(&mut sim, 2, 1, 2);
    sim.run_for(100).unwrap();
    let got = received(sim.view());
    assert!(got.contains(&(Millis(70), n(2), n(1), 1)), "{got:?}");
    assert!(got.iter().any(|&(at, r, ..)| r == n(1) && at <= Millis(5)));

    sim.apply(Fault::HealAll).unwrap();
    assert_eq!(sim.view().network().link(n(1), n(2)), &LinkConfig::lan());
}

#[test]
fn invariant_violation_stops_the_run_and_names_seed_time_and_invariant() {
    let mut sim = sim(9, 2);
    sim.add_invariant("nobody_hears_tag_13", |v: &SimView<Recorder>| {
        match v.new_events().iter().find(|e| {
            e.event
                == Ev::Got {
                    from: n(1),
                    tag: 13,
                }
        }) {
            Some(e) => Err(format!("node {} heard 13", e.node)),
            None => Ok(()),
        }
    });
    sim.input(Millis(40), n(1), Cmd::Send { to: n(2), tag: 13 });
    let err = sim.run_for(1000).unwrap_err();
    let SimError::Invariant { seed, at, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*seed, 9);
    assert!((Millis(41)..=Millis(45)).contains(at));
    assert!(err
        .to_string()
        .starts_with("seed 9: invariant nobody_hears_tag_13 violated at 0.04"));
    assert!(err.to_string().ends_with("node 2 heard 13"));
    assert_eq!(
        sim.step().unwrap_err(),
        err,
        "a failed run must stay failed"
    );
}

#[test]
fn run_until_times_out_with_context_when_the_predicate_never_holds() {
    let mut sim = sim(10, 2);
    sim.apply(Fault::CutLink {
        from: n(1),
        to: n(2),
    })
    .unwrap();
    send(&mut sim, 1, 2, 1);
    let err = sim
        .run_until("node 2 hears node 1", Millis(3000), |v| got(v, 2, 1, 1))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "seed 10: node 2 hears node 1: still not true at 3.000s"
    );
    assert_eq!(sim.now(), Millis(3000));
    // A timeout is not a safety failure: the run can go on.
    sim.apply(Fault::HealAll).unwrap();
    send(&mut sim, 1, 2, 1);
    let t = sim
        .run_until("node 2 hears node 1", Millis(4000), |v| got(v, 2, 1, 1))
        .unwrap();
    assert!(t > Millis(3000) && t <= Millis(3005));
}

/// A core whose timer never moves past now.
struct Spinner;

impl Process for Spinner {
    type Msg = ();
    type Input = ();
    type Event = ();
    fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}
    fn on_message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: ()) {}
    fn on_input(&mut self, _: &mut Ctx<'_, Self>, _: ()) {}
    fn on_timer(&mut self, _: &mut Ctx<'_, Self>) {}
    fn next_deadline(&self) -> Option<Millis> {
        Some(Millis(5))
    }
}

#[test]
fn a_timer_that_never_advances_is_reported_as_a_stall() {
    let mut config = SimConfig::new(11, 1);
    config.max_steps_per_instant = 1000;
    let mut sim = Sim::new(config, |_, _| Spinner);
    let err = sim.run_for(100).unwrap_err();
    assert_eq!(
        err,
        SimError::Stalled {
            seed: 11,
            at: Millis(5),
            steps: 1000
        }
    );
}

fn start_draws(nodes: u32) -> Vec<(NodeId, u64)> {
    let mut sim = sim(12, nodes);
    sim.run_for(1).unwrap();
    sim.view()
        .history()
        .iter()
        .filter_map(|e| match e.event {
            Ev::Started { draw } => Some((e.node, draw)),
            _ => None,
        })
        .collect()
}

#[test]
fn adding_a_node_does_not_change_what_the_others_draw() {
    let three = start_draws(3);
    let four = start_draws(4);
    assert_eq!(three.len(), 3);
    assert_eq!(&four[..3], &three[..]);
}

#[test]
fn staggered_boot_stays_within_the_spread() {
    let mut config = SimConfig::new(13, 5);
    config.start_spread_ms = 300;
    let mut sim = Sim::new(config, |_, _| Recorder::default());
    sim.run_for(300).unwrap();
    let boots: Vec<Millis> = sim.view().fault_log().iter().map(|(at, _)| *at).collect();
    assert_eq!(boots.len(), 5);
    assert!(boots.iter().all(|&t| t <= Millis(300)));
    assert!(boots.iter().any(|&t| t > Millis(0)));
    assert!(sim
        .view()
        .nodes()
        .all(|node| node.status == NodeStatus::Up && node.incarnation == 1));
}
