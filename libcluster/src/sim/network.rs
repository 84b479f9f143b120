//! The simulated network: per-link latency, loss and duplication, partitions and one-way cuts.
//!
//! The fate of a message is decided when it is sent: a message already in flight when a
//! partition starts still arrives, as a datagram already on the wire would. Reordering comes
//! from the random latency each copy draws independently.

use super::process::SimRng;
use crate::{Millis, NodeId};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// How one direction of one link behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Smallest one-way latency in milliseconds.
    pub min_ms: u64,
    /// Largest one-way latency in milliseconds (inclusive). Below `min_ms` means `min_ms`.
    pub max_ms: u64,
    /// Probability in 0..=1 that a message is lost. Out-of-range values are clamped.
    pub loss: f64,
    /// Probability in 0..=1 that a delivered message arrives a second time, with its own latency.
    pub duplication: f64,
}

impl LinkConfig {
    /// A LAN: 1 to 5 ms, nothing lost, nothing duplicated.
    pub fn lan() -> Self {
        LinkConfig {
            min_ms: 1,
            max_ms: 5,
            loss: 0.0,
            duplication: 0.0,
        }
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig::lan()
    }
}

/// The network a simulation starts with, and returns to on [`super::Fault::HealAll`].
#[derive(Clone, Debug, PartialEq)]
pub struct NetConfig {
    /// Behaviour of every link without an override.
    pub link: LinkConfig,
    /// Per-direction overrides: `(from, to)` uses this instead of `link`.
    pub links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    /// Messages a paused node's socket buffer holds; later arrivals are dropped until it resumes.
    pub pause_buffer: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            link: LinkConfig::lan(),
            links: BTreeMap::new(),
            pause_buffer: 64,
        }
    }
}

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// Sender and receiver were on different sides of a partition or a one-way cut.
    Partition,
    /// The link lost it.
    Loss,
    /// The receiver was down when it arrived.
    Down,
    /// The receiver was paused and its socket buffer was full.
    PauseOverflow,
}

/// What the network decided for one sent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Never arrives.
    Drop(DropReason),
    /// Arrives at `at`, and a second time at `duplicate_at` if duplicated.
    Deliver {
        at: Millis,
        duplicate_at: Option<Millis>,
    },
}

/// The current state of the simulated network.
#[derive(Clone, Debug)]
pub struct Network {
    baseline: NetConfig,
    current: NetConfig,
    /// Partition group of each node; `None` when the network is not partitioned.
    groups: Option<BTreeMap<NodeId, usize>>,
    /// Directions cut one way: `(from, to)` drops what `from` sends to `to`.
    cuts: BTreeSet<(NodeId, NodeId)>,
}

impl Network {
    /// A healed network behaving as `config`.
    pub fn new(config: NetConfig) -> Self {
        Network {
            current: config.clone(),
            baseline: config,
            groups: None,
            cuts: BTreeSet::new(),
        }
    }

    /// The configuration in force now.
    pub fn config(&self) -> &NetConfig {
        &self.current
    }

    /// The link configuration `from -> to` uses now.
    pub fn link(&self, from: NodeId, to: NodeId) -> &LinkConfig {
        self.current
            .links
            .get(&(from, to))
            .unwrap_or(&self.current.link)
    }

    /// Whether a message `from -> to` sent now can get through (ignoring random loss).
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        if from == to {
            return true;
        }
        if self.cuts.contains(&(from, to)) {
            return false;
        }
        match &self.groups {
            None => true,
            Some(groups) => match (groups.get(&from), groups.get(&to)) {
                (Some(a), Some(b)) => a == b,
                // A node named in no group is alone.
                _ => false,
            },
        }
    }

    /// Whether any partition or cut is in force.
    pub fn is_split(&self) -> bool {
        self.groups.is_some() || !self.cuts.is_empty()
    }

    /// Splits the network into `groups`; nodes in no group are each alone. Replaces any earlier
    /// partition; one-way cuts stay. A node listed twice belongs to its first group.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        let mut map = BTreeMap::new();
        for (i, group) in groups.iter().enumerate() {
            for &n in group {
                map.entry(n).or_insert(i);
            }
        }
        self.groups = Some(map);
    }

    /// Drops everything `from` sends to `to`; `to -> from` is untouched.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cuts.insert((from, to));
    }

    /// Undoes [`Network::cut`] for `from -> to`.
    pub fn heal_link(&mut self, from: NodeId, to: NodeId) {
        self.cuts.remove(&(from, to));
    }

    /// Removes partitions and cuts and restores the starting link configuration.
    pub fn heal_all(&mut self) {
        self.groups = None;
        self.cuts.clear();
        self.current = self.baseline.clone();
    }

    /// Mutable access to the configuration in force (faults change it; heal restores it).
    pub fn config_mut(&mut self) -> &mut NetConfig {
        &mut self.current
    }

    /// Decides the fate of one message sent at `now`. Draws from `rng` in a fixed order.
    pub(crate) fn route(&self, rng: &mut SimRng, from: NodeId, to: NodeId, now: Millis) -> Route {
        if from == to {
            return Route::Deliver {
                at: now,
                duplicate_at: None,
            };
        }
        if !self.connected(from, to) {
            return Route::Drop(DropReason::Partition);
        }
        let link = *self.link(from, to);
        if chance(rng, link.loss) {
            return Route::Drop(DropReason::Loss);
        }
        let at = now.plus(latency(rng, &link));
        let duplicate_at = chance(rng, link.duplication).then(|| now.plus(latency(rng, &link)));
        Route::Deliver { at, duplicate_at }
    }
}

/// True with probability `p`; never panics (NaN and p <= 0 are never, p >= 1 always).
fn chance(rng: &mut SimRng, p: f64) -> bool {
    p > 0.0 && rng.random::<f64>() < p
}

fn latency(rng: &mut SimRng, link: &LinkConfig) -> u64 {
    let max = link.max_ms.max(link.min_ms);
    rng.random_range(link.min_ms..=max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn n(i: u32) -> NodeId {
        NodeId(i)
    }

    #[test]
    fn one_way_cut_blocks_only_its_direction() {
        let mut net = Network::new(NetConfig::default());
        net.cut(n(1), n(2));
        assert!(!net.connected(n(1), n(2)));
        assert!(net.connected(n(2), n(1)));
        net.heal_link(n(1), n(2));
        assert!(net.connected(n(1), n(2)));
    }

    #[test]
    fn partition_connects_only_within_groups_and_isolates_unlisted_nodes() {
        let mut net = Network::new(NetConfig::default());
        net.partition(&[vec![n(1), n(2)], vec![n(3)]]);
        assert!(net.connected(n(1), n(2)));
        assert!(!net.connected(n(1), n(3)));
        assert!(!net.connected(n(3), n(2)));
        assert!(!net.connected(n(4), n(1)));
        assert!(net.connected(n(4), n(4)));
        net.heal_all();
        assert!(net.connected(n(1), n(3)) && !net.is_split());
    }

    #[test]
    fn heal_all_restores_the_baseline_links() {
        let mut net = Network::new(NetConfig::default());
        net.config_mut().link.loss = 1.0;
        net.heal_all();
        assert_eq!(net.config(), &NetConfig::default());
    }

    #[test]
    fn latency_stays_in_range_and_garbage_probabilities_do_not_panic() {
        let mut rng = SimRng::seed_from_u64(1);
        let mut net = Network::new(NetConfig::default());
        net.config_mut().links.insert(
            (n(1), n(2)),
            LinkConfig {
                min_ms: 10,
                max_ms: 3, // below min: treated as min
                loss: f64::NAN,
                duplication: 7.0,
            },
        );
        for _ in 0..100 {
            match net.route(&mut rng, n(1), n(2), Millis(100)) {
                Route::Deliver { at, duplicate_at } => {
                    assert_eq!(at, Millis(110));
                    assert_eq!(duplicate_at, Some(Millis(110)));
                }
                Route::Drop(r) => panic!("dropped: {r:?}"),
            }
            match net.route(&mut rng, n(2), n(1), Millis(100)) {
                Route::Deliver { at, duplicate_at } => {
                    assert!((101..=105).contains(&at.0));
                    assert_eq!(duplicate_at, None);
                }
                Route::Drop(r) => panic!("dropped: {r:?}"),
            }
        }
    }

    #[test]
    fn full_loss_drops_everything_but_loopback() {
        let mut rng = SimRng::seed_from_u64(2);
        let mut net = Network::new(NetConfig::default());
        net.config_mut().link.loss = 1.0;
        for _ in 0..50 {
            assert_eq!(
                net.route(&mut rng, n(1), n(2), Millis(0)),
                Route::Drop(DropReason::Loss)
            );
        }
        assert!(matches!(
            net.route(&mut rng, n(1), n(1), Millis(0)),
            Route::Deliver { .. }
        ));
    }
}
