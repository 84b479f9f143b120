//! The nemesis schedule: a pure function of (seed, nodes, duration, nemesis kinds).
//!
//! ```text
//!   0 ── warm-up (1–3 s) ──┬─ fault (1–5 s) ─┬─ quiet (1–3 s) ─┬─ fault ─┬─ ... ─┤ time
//!                          inject           heal             inject    heal
//! ```
//!
//! One fault at a time, each healed before the next is injected, so faults never pile up;
//! a fault that takes nodes down or freezes them hits a minority (at most (n-1)/2 nodes, at
//! least one), so the rest of the cluster keeps a quorum and the workload makes progress.
//! Partitions may cut the cluster anywhere (every side may lose quorum for a while): they
//! are bounded in time like every fault. The same seed gives the same schedule on every
//! machine (`Xoshiro256PlusPlus`); only the timing of the processes differs between runs.

use crate::nemesis::NetFault;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::fmt;
use std::str::FromStr;

/// A kind of fault the runner may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NemesisKind {
    /// SIGKILL every daemon of the targets; start them again at the heal.
    Kill,
    /// SIGSTOP the targets' daemons; SIGCONT at the heal.
    Pause,
    /// A network partition (netns labs only); heal removes it.
    Partition,
    /// Power the targets off through the lab's power switch; on again at the heal.
    Power,
}

impl NemesisKind {
    /// Every kind, in the order `--nemesis` lists them.
    pub const ALL: [NemesisKind; 4] = [
        NemesisKind::Kill,
        NemesisKind::Pause,
        NemesisKind::Partition,
        NemesisKind::Power,
    ];

    /// The name on the command line and in the verdict.
    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Kill => "kill",
            NemesisKind::Pause => "pause",
            NemesisKind::Partition => "partition",
            NemesisKind::Power => "power",
        }
    }
}

impl fmt::Display for NemesisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NemesisKind {
    type Err = String;

    fn from_str(s: &str) -> Result<NemesisKind, String> {
        NemesisKind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| format!("unknown nemesis {s:?}; known: kill, pause, partition, power"))
    }
}

/// One fault of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Kill these node ids.
    Kill(Vec<u32>),
    /// Pause these node ids.
    Pause(Vec<u32>),
    /// Apply this partition.
    Net(NetFault),
    /// Power these node ids off.
    Power(Vec<u32>),
}

impl Fault {
    /// The kind of nemesis that injects it.
    pub fn kind(&self) -> NemesisKind {
        match self {
            Fault::Kill(_) => NemesisKind::Kill,
            Fault::Pause(_) => NemesisKind::Pause,
            Fault::Net(_) => NemesisKind::Partition,
            Fault::Power(_) => NemesisKind::Power,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        match self {
            Fault::Kill(v) => write!(f, "kill {}", ids(v)),
            Fault::Pause(v) => write!(f, "pause {}", ids(v)),
            Fault::Net(n) => write!(f, "{n}"),
            Fault::Power(v) => write!(f, "power-off {}", ids(v)),
        }
    }
}

/// A fault with its window, in milliseconds since the schedule started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// When it is injected.
    pub at_ms: u64,
    /// When it is healed (always after `at_ms`, never after the schedule's end).
    pub heal_ms: u64,
    /// What.
    pub fault: Fault,
}

/// Bounds of the schedule, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Quiet time before the first fault: `warmup_ms.0..=warmup_ms.1`.
    pub warmup_ms: (u64, u64),
    /// How long a fault lasts.
    pub fault_ms: (u64, u64),
    /// Quiet time after a heal.
    pub quiet_ms: (u64, u64),
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            warmup_ms: (1000, 3000),
            fault_ms: (1000, 5000),
            quiet_ms: (1000, 3000),
        }
    }
}

/// The largest number of nodes a kill, pause or power fault may take at once: a minority
/// ((n-1)/2), but at least one.
pub fn max_down(n: usize) -> usize {
    (n.saturating_sub(1) / 2).max(1)
}

/// The schedule for `seed` over `nodes` (ids) lasting `time_ms`, drawing from `kinds`.
/// Empty when `kinds` or `nodes` is empty. Deterministic: same inputs, same steps.
pub fn schedule(
    seed: u64,
    nodes: &[u32],
    time_ms: u64,
    kinds: &[NemesisKind],
    timing: Timing,
) -> Vec<Step> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut steps = Vec::new();
    if kinds.is_empty() || nodes.is_empty() {
        return steps;
    }
    let mut sorted = nodes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut t = rng.random_range(timing.warmup_ms.0..=timing.warmup_ms.1);
    while t + timing.fault_ms.0 <= time_ms {
        let kind = kinds[rng.random_range(0..kinds.len())];
        let fault = match kind {
            NemesisKind::Kill => Fault::Kill(minority(&mut rng, &sorted)),
            NemesisKind::Pause => Fault::Pause(minority(&mut rng, &sorted)),
            NemesisKind::Power => Fault::Power(minority(&mut rng, &sorted)),
            NemesisKind::Partition => Fault::Net(partition(&mut rng, &sorted)),
        };
        let heal = (t + rng.random_range(timing.fault_ms.0..=timing.fault_ms.1)).min(time_ms);
        steps.push(Step {
            at_ms: t,
            heal_ms: heal,
            fault,
        });
        t = heal + rng.random_range(timing.quiet_ms.0..=timing.quiet_ms.1);
    }
    steps
}

/// 1..=max_down(n) distinct nodes, sorted.
fn minority(rng: &mut Xoshiro256PlusPlus, nodes: &[u32]) -> Vec<u32> {
    let k = rng.random_range(1..=max_down(nodes.len()).min(nodes.len()));
    let mut pool = nodes.to_vec();
    let mut out = Vec::with_capacity(k);
    for _ in 0..k {
        out.push(pool.swap_remove(rng.random_range(0..pool.len())));
    }
    out.sort_unstable();
    out
}

/// One of: isolate a node, a minority against the rest, halves, a bridge, a one-way link.
fn partition(rng: &mut Xoshiro256PlusPlus, nodes: &[u32]) -> NetFault {
    let pick = |rng: &mut Xoshiro256PlusPlus| nodes[rng.random_range(0..nodes.len())];
    if nodes.len() < 2 {
        return NetFault::Heal;
    }
    match rng.random_range(0..5u32) {
        0 => NetFault::Isolate(pick(rng)),
        1 => NetFault::Partition(vec![minority(rng, nodes)]),
        2 => NetFault::Halves,
        3 if nodes.len() >= 3 => {
            let three = {
                let mut pool = nodes.to_vec();
                let mut v = Vec::new();
                for _ in 0..3 {
                    v.push(pool.swap_remove(rng.random_range(0..pool.len())));
                }
                v
            };
            NetFault::Bridge {
                a: three[0],
                b: three[1],
                c: three[2],
            }
        }
        _ => {
            let from = pick(rng);
            let mut to = pick(rng);
            while to == from {
                to = pick(rng);
            }
            NetFault::OneWay { from, to }
        }
    }
}

/// Parses `kill,pause,...` (duplicates dropped, order kept).
pub fn parse_kinds(text: &str) -> Result<Vec<NemesisKind>, String> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let k: NemesisKind = part.parse()?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: &[NemesisKind] = &NemesisKind::ALL;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let a = schedule(7, &[1, 2, 3, 4, 5], 60_000, ALL, Timing::default());
        let b = schedule(7, &[1, 2, 3, 4, 5], 60_000, ALL, Timing::default());
        let c = schedule(8, &[1, 2, 3, 4, 5], 60_000, ALL, Timing::default());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() >= 5, "a 60 s schedule has several faults: {a:?}");
    }

    #[test]
    fn kinds_parse_and_unknown_ones_are_refused() {
        assert_eq!(
            parse_kinds("kill,pause,kill").unwrap(),
            vec![NemesisKind::Kill, NemesisKind::Pause]
        );
        assert!(parse_kinds("kill,flood").is_err());
        assert!(parse_kinds("").unwrap().is_empty());
    }

    #[test]
    fn no_kinds_or_no_nodes_means_no_faults() {
        assert!(schedule(1, &[1, 2, 3], 60_000, &[], Timing::default()).is_empty());
        assert!(schedule(1, &[], 60_000, ALL, Timing::default()).is_empty());
    }

    proptest! {
        #[test]
        fn faults_are_bounded_apart_and_take_down_only_a_minority(
            seed in any::<u64>(), n in 2usize..8, time_ms in 0u64..120_000,
        ) {
            let nodes: Vec<u32> = (1..=n as u32).collect();
            let t = Timing::default();
            let steps = schedule(seed, &nodes, time_ms, ALL, t);
            let mut last_heal = 0;
            for s in &steps {
                prop_assert!(s.at_ms >= last_heal + t.quiet_ms.0.min(t.warmup_ms.0));
                prop_assert!(s.heal_ms > s.at_ms && s.heal_ms <= time_ms);
                prop_assert!(s.heal_ms - s.at_ms <= t.fault_ms.1);
                last_heal = s.heal_ms;
                match &s.fault {
                    Fault::Kill(v) | Fault::Pause(v) | Fault::Power(v) => {
                        prop_assert!(!v.is_empty() && v.len() <= max_down(n));
                        prop_assert!(v.iter().all(|id| nodes.contains(id)));
                        prop_assert!(v.windows(2).all(|w| w[0] < w[1]));
                    }
                    Fault::Net(f) => prop_assert!(f.drops(&nodes).is_ok(), "{f}"),
                }
            }
        }
    }
}
