//! Faults, fault schedules and the random schedule generator.

use super::network::LinkConfig;
use crate::{Millis, NodeId};
use rand::Rng;
use std::collections::BTreeSet;

/// Something that goes wrong (or is repaired) at a point in simulated time.
///
/// A fault that does not apply to the node's state (crashing a node already down, resuming a
/// running node) changes nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// SIGKILL: the node's core is dropped with its state, its socket buffer emptied.
    Crash(NodeId),
    /// Start a down node: the factory builds a fresh core with the next incarnation.
    Restart(NodeId),
    /// SIGSTOP: the node keeps its state but runs nothing; its socket buffer keeps up to
    /// [`super::NetConfig::pause_buffer`] messages and drops the rest.
    Pause(NodeId),
    /// SIGCONT: the node receives its buffered messages late, then its overdue timer fires.
    Resume(NodeId),
    /// Split the network into these groups (replacing any earlier partition); unlisted nodes
    /// are each alone.
    Partition(Vec<Vec<NodeId>>),
    /// Drop everything `from` sends to `to`; the other direction still works.
    CutLink {
        /// The sender whose messages are dropped.
        from: NodeId,
        /// The receiver that stops hearing `from`.
        to: NodeId,
    },
    /// Undo one [`Fault::CutLink`].
    HealLink {
        /// The sender of the healed direction.
        from: NodeId,
        /// The receiver of the healed direction.
        to: NodeId,
    },
    /// Remove every partition and cut and restore the starting link configuration
    /// (loss, duplication, delay). Nodes are not touched.
    HealAll,
    /// Set the loss probability of links without an override.
    SetLoss(f64),
    /// Set the duplication probability of links without an override.
    SetDuplication(f64),
    /// Set the latency range of links without an override.
    SetDelay {
        /// Smallest latency in milliseconds.
        min_ms: u64,
        /// Largest latency in milliseconds (inclusive).
        max_ms: u64,
    },
    /// Override one direction of one link.
    SetLink {
        /// Sender side.
        from: NodeId,
        /// Receiver side.
        to: NodeId,
        /// How the direction behaves from now on (until [`Fault::HealAll`]).
        link: LinkConfig,
    },
}

/// A list of timed faults: a safety phase with faults, ending in a full heal at `heal_at`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    /// The faults, sorted by time.
    pub faults: Vec<(Millis, Fault)>,
    /// When the safety phase ends: from here on the network is healed, paused nodes run and
    /// (if the menu says so) crashed nodes have restarted. Liveness deadlines count from here.
    pub heal_at: Millis,
}

/// Which faults [`random_schedule`] may use, and how hard.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultMenu {
    /// Crash nodes and restart them later.
    pub crash: bool,
    /// Pause nodes and resume them later.
    pub pause: bool,
    /// Symmetric partitions into two or three groups.
    pub partition: bool,
    /// One-way link cuts.
    pub one_way: bool,
    /// Highest loss probability to set; 0 never sets loss.
    pub max_loss: f64,
    /// Highest duplication probability to set; 0 never sets duplication.
    pub max_duplication: f64,
    /// Highest latency to set, in milliseconds; 0 never changes latency.
    pub max_delay_ms: u64,
    /// Most fault events in the safety phase (at least one is drawn when anything is enabled).
    pub max_faults: usize,
    /// Most nodes down or paused at the same time.
    pub max_down: usize,
    /// Restart crashed nodes when the safety phase ends (otherwise they stay down).
    pub restart_at_heal: bool,
}

impl FaultMenu {
    /// Every kind of fault, at most `max_down` nodes down or paused at once.
    pub fn all(max_down: usize) -> Self {
        FaultMenu {
            crash: true,
            pause: true,
            partition: true,
            one_way: true,
            max_loss: 0.3,
            max_duplication: 0.2,
            max_delay_ms: 200,
            max_faults: 12,
            max_down,
            restart_at_heal: true,
        }
    }

    /// No faults at all: the schedule is a single heal (a quiet run).
    pub fn none() -> Self {
        FaultMenu {
            crash: false,
            pause: false,
            partition: false,
            one_way: false,
            max_loss: 0.0,
            max_duplication: 0.0,
            max_delay_ms: 0,
            max_faults: 0,
            max_down: 0,
            restart_at_heal: true,
        }
    }

    /// Only network faults: partitions, cuts, loss, duplication, delay.
    pub fn network_only() -> Self {
        FaultMenu {
            crash: false,
            pause: false,
            ..FaultMenu::all(0)
        }
    }
}

impl Default for FaultMenu {
    /// [`FaultMenu::all`] with one node down or paused at a time.
    fn default() -> Self {
        FaultMenu::all(1)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Crash,
    Restart,
    Pause,
    Resume,
    Partition,
    Cut,
    Heal,
    Loss,
    Duplication,
    Delay,
}

/// Draws a random schedule for `nodes`: up to `menu.max_faults` faults at random times in
/// `[0, duration)`, then at `duration` a [`Fault::HealAll`], a resume of every paused node and
/// (if `menu.restart_at_heal`) a restart of every crashed node. Never more than `menu.max_down`
/// nodes are down or paused at once; only nodes the schedule itself crashed are restarted.
pub fn random_schedule<R: Rng + ?Sized>(
    rng: &mut R,
    nodes: &[NodeId],
    duration: Millis,
    menu: &FaultMenu,
) -> Schedule {
    let nodes: Vec<NodeId> = nodes
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut times: Vec<u64> = if menu.max_faults == 0 || duration.0 == 0 {
        Vec::new()
    } else {
        let count = rng.random_range(1..=menu.max_faults);
        (0..count)
            .map(|_| rng.random_range(0..duration.0))
            .collect()
    };
    times.sort_unstable();

    let mut crashed = BTreeSet::new();
    let mut paused = BTreeSet::new();
    let mut faults = Vec::new();
    for t in times {
        let down = crashed.len() + paused.len();
        let up: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| !crashed.contains(n) && !paused.contains(n))
            .collect();
        let can_stop = down < menu.max_down && !up.is_empty();
        let split = nodes.len() >= 2;
        let kinds: Vec<Kind> = [
            (menu.crash && can_stop, Kind::Crash),
            (menu.crash && !crashed.is_empty(), Kind::Restart),
            (menu.pause && can_stop, Kind::Pause),
            (menu.pause && !paused.is_empty(), Kind::Resume),
            (menu.partition && split, Kind::Partition),
            (menu.one_way && split, Kind::Cut),
            ((menu.partition || menu.one_way) && split, Kind::Heal),
            (menu.max_loss > 0.0, Kind::Loss),
            (menu.max_duplication > 0.0, Kind::Duplication),
            (menu.max_delay_ms > 0, Kind::Delay),
        ]
        .into_iter()
        .filter_map(|(enabled, kind)| enabled.then_some(kind))
        .collect();
        if kinds.is_empty() {
            continue;
        }
        let fault = match kinds[rng.random_range(0..kinds.len())] {
            Kind::Crash => {
                let n = pick(rng, &up);
                crashed.insert(n);
                Fault::Crash(n)
            }
            Kind::Restart => {
                let n = pick(rng, &crashed.iter().copied().collect::<Vec<_>>());
                crashed.remove(&n);
                Fault::Restart(n)
            }
            Kind::Pause => {
                let n = pick(rng, &up);
                paused.insert(n);
                Fault::Pause(n)
            }
            Kind::Resume => {
                let n = pick(rng, &paused.iter().copied().collect::<Vec<_>>());
                paused.remove(&n);
                Fault::Resume(n)
            }
            Kind::Partition => Fault::Partition(random_groups(rng, &nodes)),
            Kind::Cut => {
                let from = pick(rng, &nodes);
                let others: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != from).collect();
                Fault::CutLink {
                    from,
                    to: pick(rng, &others),
                }
            }
            Kind::Heal => Fault::HealAll,
            Kind::Loss => Fault::SetLoss(rng.random_range(0.0..=menu.max_loss.min(1.0))),
            Kind::Duplication => {
                Fault::SetDuplication(rng.random_range(0.0..=menu.max_duplication.min(1.0)))
            }
            Kind::Delay => {
                let max_ms = rng.random_range(0..=menu.max_delay_ms);
                Fault::SetDelay {
                    min_ms: rng.random_range(0..=max_ms),
                    max_ms,
                }
            }
        };
        faults.push((Millis(t), fault));
    }

    faults.push((duration, Fault::HealAll));
    faults.extend(paused.iter().map(|&n| (duration, Fault::Resume(n))));
    if menu.restart_at_heal {
        faults.extend(crashed.iter().map(|&n| (duration, Fault::Restart(n))));
    }
    Schedule {
        faults,
        heal_at: duration,
    }
}

/// A uniformly chosen element of a non-empty slice.
fn pick<R: Rng + ?Sized>(rng: &mut R, from: &[NodeId]) -> NodeId {
    from[rng.random_range(0..from.len())]
}

/// Two or three groups, none empty, covering every node (needs at least two nodes).
fn random_groups<R: Rng + ?Sized>(rng: &mut R, nodes: &[NodeId]) -> Vec<Vec<NodeId>> {
    let count = rng.random_range(2..=nodes.len().min(3));
    let mut shuffled = nodes.to_vec();
    // Fisher-Yates with our own RNG, so the order depends only on the seed.
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.random_range(0..=i));
    }
    let mut groups = vec![Vec::new(); count];
    // The first `count` nodes seed one group each, so no group is empty.
    for (i, n) in shuffled.into_iter().enumerate() {
        let g = if i < count {
            i
        } else {
            rng.random_range(0..count)
        };
        groups[g].push(n);
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimRng;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn ids(n: u32) -> Vec<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    #[test]
    fn empty_menu_gives_only_the_final_heal() {
        let mut rng = SimRng::seed_from_u64(3);
        let s = random_schedule(&mut rng, &ids(5), Millis(1000), &FaultMenu::none());
        assert_eq!(s.faults, vec![(Millis(1000), Fault::HealAll)]);
        assert_eq!(s.heal_at, Millis(1000));
    }

    #[test]
    fn single_node_gets_no_network_split() {
        let mut rng = SimRng::seed_from_u64(4);
        let s = random_schedule(&mut rng, &ids(1), Millis(1000), &FaultMenu::network_only());
        assert!(s
            .faults
            .iter()
            .all(|(_, f)| !matches!(f, Fault::Partition(_) | Fault::CutLink { .. })));
    }

    proptest! {
        #[test]
        fn schedules_respect_the_menu_and_end_healed(
            seed in any::<u64>(),
            node_count in 1u32..8,
            max_down in 0usize..4,
            duration in 1u64..20_000,
            crash in any::<bool>(),
            pause in any::<bool>(),
        ) {
            let nodes = ids(node_count);
            let menu = FaultMenu { crash, pause, ..FaultMenu::all(max_down) };
            let mut rng = SimRng::seed_from_u64(seed);
            let s = random_schedule(&mut rng, &nodes, Millis(duration), &menu);
            prop_assert_eq!(s.heal_at, Millis(duration));
            prop_assert!(s.faults.windows(2).all(|w| w[0].0 <= w[1].0));
            prop_assert!(s.faults.len() <= menu.max_faults + 1 + nodes.len());

            let (mut crashed, mut paused) = (BTreeSet::new(), BTreeSet::new());
            for (at, fault) in &s.faults {
                prop_assert!(*at <= Millis(duration));
                match fault {
                    Fault::Crash(n) => { prop_assert!(crash && !paused.contains(n)); prop_assert!(crashed.insert(*n)); }
                    Fault::Restart(n) => prop_assert!(crashed.remove(n)),
                    Fault::Pause(n) => { prop_assert!(pause && !crashed.contains(n)); prop_assert!(paused.insert(*n)); }
                    Fault::Resume(n) => prop_assert!(paused.remove(n)),
                    Fault::Partition(groups) => {
                        prop_assert!(groups.len() >= 2 && groups.iter().all(|g| !g.is_empty()));
                        let mut all: Vec<NodeId> = groups.concat();
                        all.sort_unstable();
                        prop_assert_eq!(&all, &nodes);
                    }
                    Fault::CutLink { from, to } => prop_assert!(from != to),
                    Fault::SetLoss(p) => prop_assert!((0.0..=menu.max_loss).contains(p)),
                    Fault::SetDuplication(p) => prop_assert!((0.0..=menu.max_duplication).contains(p)),
                    Fault::SetDelay { min_ms, max_ms } => prop_assert!(min_ms <= max_ms && *max_ms <= menu.max_delay_ms),
                    Fault::HealAll | Fault::HealLink { .. } | Fault::SetLink { .. } => {}
                }
                prop_assert!(crashed.len() + paused.len() <= max_down);
            }
            prop_assert!(s.faults.contains(&(Millis(duration), Fault::HealAll)));
            prop_assert!(crashed.is_empty() && paused.is_empty());
        }
    }
}
