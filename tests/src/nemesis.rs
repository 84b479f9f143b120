//! Nemeses: the faults the lab injects. This part is the network: which directed links a
//! partition cuts. It is pure (no I/O): `netns` turns a [`Drops`] set into nftables rules
//! inside the nodes' namespaces and reads them back.
//!
//! ```text
//!   NetFault ──drops(node ids)──► Drops {(from, to), ...} ──netns::LabNet::apply──► nft rules
//!      ▲                                                                               │
//!      └── FromStr / Display ("isolate 1", "oneway 1 2", ...)   LabNet::current_drops ◄─┘
//! ```
//!
//! A fault replaces the previous one (as in Jepsen: partition, heal, partition again);
//! to combine faults, [`Drops::union`] their sets and apply the union.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The id under which the lab host (the bridge address, `10.250.X.254`, where the APC
/// simulator and other lab services listen) takes part in a drop set. Node ids are 1..=253.
pub const HOST_ID: u32 = 254;

/// A set of directed links whose packets are dropped: `(from, to)` means packets sent by
/// `from` to `to` never arrive. A link from a node to itself is never in the set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    links: BTreeSet<(u32, u32)>,
}

impl Drops {
    /// No drops: a healed network.
    pub fn new() -> Drops {
        Drops::default()
    }

    /// Drops `from`'s packets to `to` (one direction). A self-link is ignored.
    pub fn drop_link(&mut self, from: u32, to: u32) {
        if from != to {
            self.links.insert((from, to));
        }
    }

    /// Drops packets between `a` and `b` in both directions.
    pub fn cut(&mut self, a: u32, b: u32) {
        self.drop_link(a, b);
        self.drop_link(b, a);
    }

    /// Whether `from`'s packets to `to` are dropped.
    pub fn blocked(&self, from: u32, to: u32) -> bool {
        self.links.contains(&(from, to))
    }

    /// Every dropped link, in order.
    pub fn links(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.links.iter().copied()
    }

    /// Whether nothing is dropped.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Adds every link of `other`.
    pub fn union(&mut self, other: &Drops) {
        self.links.extend(other.links.iter().copied());
    }

    /// The peers that `node`'s packets to are dropped (its output rules).
    pub fn outgoing(&self, node: u32) -> BTreeSet<u32> {
        self.links
            .iter()
            .filter(|(f, _)| *f == node)
            .map(|(_, t)| *t)
            .collect()
    }

    /// The peers whose packets to `node` are dropped (its input rules).
    pub fn incoming(&self, node: u32) -> BTreeSet<u32> {
        self.links
            .iter()
            .filter(|(_, t)| *t == node)
            .map(|(f, _)| *f)
            .collect()
    }

    /// Every endpoint named in the set.
    pub fn endpoints(&self) -> BTreeSet<u32> {
        self.links.iter().flat_map(|(f, t)| [*f, *t]).collect()
    }
}

/// A network fault, as the lab's `nemesis` commands name it. Node ids, not names: the lab
/// maps names to ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetFault {
    /// Remove every drop.
    Heal,
    /// The node neither sends to nor hears any other node (the lab host stays reachable).
    Isolate(u32),
    /// The lower half of the ids (by count, rounded down) against the upper half.
    Halves,
    /// B sees A and C; A and C do not see each other. Other nodes see everyone.
    Bridge {
        /// One end.
        a: u32,
        /// The node in the middle.
        b: u32,
        /// The other end.
        c: u32,
    },
    /// `from`'s packets to `to` are dropped; `to`'s packets to `from` flow.
    OneWay {
        /// The node whose packets are lost.
        from: u32,
        /// The node that no longer hears `from`.
        to: u32,
    },
    /// Nodes in different groups do not see each other. Nodes named in no group form one
    /// more group together.
    Partition(Vec<Vec<u32>>),
    /// The listed nodes (every node when empty) cannot reach the lab host, nor it them:
    /// the fence device (APC simulator) is down for them.
    CutHost(Vec<u32>),
}

/// Why a fault does not fit the lab, or its text does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NemesisError {
    /// The fault names a node the lab does not have.
    UnknownNode(u32),
    /// A node appears in two groups of a partition.
    NodeTwice(u32),
    /// The nodes of a bridge or one-way fault must be distinct.
    NotDistinct(String),
    /// The fault needs more nodes than the lab has.
    TooFewNodes {
        /// The fault.
        fault: &'static str,
        /// How many it needs.
        need: usize,
        /// How many the lab has.
        have: usize,
    },
    /// The text of a fault does not parse.
    Syntax {
        /// The text.
        text: String,
        /// What is wrong, and the forms that are understood.
        reason: String,
    },
}

impl fmt::Display for NemesisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NemesisError::UnknownNode(id) => write!(f, "the lab has no node {id}"),
            NemesisError::NodeTwice(id) => write!(f, "node {id} is in two groups"),
            NemesisError::NotDistinct(what) => write!(f, "{what} must name distinct nodes"),
            NemesisError::TooFewNodes { fault, need, have } => {
                write!(f, "{fault} needs at least {need} nodes, the lab has {have}")
            }
            NemesisError::Syntax { text, reason } => {
                write!(f, "cannot read fault {text:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for NemesisError {}

impl NetFault {
    /// The drop set this fault means in a lab of `nodes`. Errors name what does not fit.
    pub fn drops(&self, nodes: &[u32]) -> Result<Drops, NemesisError> {
        let all: BTreeSet<u32> = nodes.iter().copied().collect();
        let known = |id: u32| {
            if all.contains(&id) {
                Ok(id)
            } else {
                Err(NemesisError::UnknownNode(id))
            }
        };
        let mut d = Drops::new();
        match self {
            NetFault::Heal => {}
            NetFault::Isolate(n) => {
                known(*n)?;
                for &p in &all {
                    d.cut(*n, p);
                }
            }
            NetFault::Halves => {
                if all.len() < 2 {
                    return Err(NemesisError::TooFewNodes {
                        fault: "halves",
                        need: 2,
                        have: all.len(),
                    });
                }
                let sorted: Vec<u32> = all.iter().copied().collect();
                let (lower, upper) = sorted.split_at(sorted.len() / 2);
                cut_groups(&mut d, &[lower.to_vec(), upper.to_vec()]);
            }
            NetFault::Bridge { a, b, c } => {
                for id in [a, b, c] {
                    known(*id)?;
                }
                if a == b || b == c || a == c {
                    return Err(NemesisError::NotDistinct("a bridge".into()));
                }
                d.cut(*a, *c);
            }
            NetFault::OneWay { from, to } => {
                known(*from)?;
                known(*to)?;
                if from == to {
                    return Err(NemesisError::NotDistinct("a one-way fault".into()));
                }
                d.drop_link(*from, *to);
            }
            NetFault::Partition(groups) => {
                let mut seen = BTreeSet::new();
                for id in groups.iter().flatten() {
                    known(*id)?;
                    if !seen.insert(*id) {
                        return Err(NemesisError::NodeTwice(*id));
                    }
                }
                let mut groups: Vec<Vec<u32>> =
                    groups.iter().filter(|g| !g.is_empty()).cloned().collect();
                let rest: Vec<u32> = all.difference(&seen).copied().collect();
                if !rest.is_empty() {
                    groups.push(rest);
                }
                cut_groups(&mut d, &groups);
            }
            NetFault::CutHost(list) => {
                let list: Vec<u32> = if list.is_empty() {
                    all.iter().copied().collect()
                } else {
                    list.iter().map(|id| known(*id)).collect::<Result<_, _>>()?
                };
                for n in list {
                    d.cut(n, HOST_ID);
                }
            }
        }
        Ok(d)
    }
}

/// Cuts every pair of nodes that are in different groups.
fn cut_groups(d: &mut Drops, groups: &[Vec<u32>]) {
    for (i, g) in groups.iter().enumerate() {
        for h in &groups[i + 1..] {
            for &a in g {
                for &b in h {
                    d.cut(a, b);
                }
            }
        }
    }
}

fn ids(list: &[u32]) -> String {
    let v: Vec<String> = list.iter().map(u32::to_string).collect();
    v.join(",")
}

/// The text form: `heal`, `isolate N`, `halves`, `bridge A B C`, `oneway FROM TO`,
/// `partition 1,2 3,4,5` (groups separated by spaces), `cut-host [1,2]`.
impl fmt::Display for NetFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetFault::Heal => write!(f, "heal"),
            NetFault::Isolate(n) => write!(f, "isolate {n}"),
            NetFault::Halves => write!(f, "halves"),
            NetFault::Bridge { a, b, c } => write!(f, "bridge {a} {b} {c}"),
            NetFault::OneWay { from, to } => write!(f, "oneway {from} {to}"),
            NetFault::Partition(groups) => {
                write!(f, "partition")?;
                for g in groups {
                    write!(f, " {}", ids(g))?;
                }
                Ok(())
            }
            NetFault::CutHost(list) if list.is_empty() => write!(f, "cut-host"),
            NetFault::CutHost(list) => write!(f, "cut-host {}", ids(list)),
        }
    }
}

const FORMS: &str = "expected one of: heal | isolate N | halves | bridge A B C | oneway FROM TO | \
                     partition 1,2 3,4 | cut-host [1,2]";

impl FromStr for NetFault {
    type Err = NemesisError;

    fn from_str(text: &str) -> Result<NetFault, NemesisError> {
        let err = |reason: String| NemesisError::Syntax {
            text: text.to_string(),
            reason,
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let id = |w: &str| {
            w.parse::<u32>()
                .map_err(|_| err(format!("{w:?} is not a node id")))
        };
        let list = |w: &str| w.split(',').map(id).collect::<Result<Vec<u32>, _>>();
        let want = |n: usize| {
            if words.len() == n + 1 {
                Ok(())
            } else {
                Err(err(format!("{} takes {n} argument(s)", words[0])))
            }
        };
        match words.first().copied() {
            Some("heal") => want(0).map(|_| NetFault::Heal),
            Some("halves") => want(0).map(|_| NetFault::Halves),
            Some("isolate") => {
                want(1)?;
                Ok(NetFault::Isolate(id(words[1])?))
            }
            Some("bridge") => {
                want(3)?;
                Ok(NetFault::Bridge {
                    a: id(words[1])?,
                    b: id(words[2])?,
                    c: id(words[3])?,
                })
            }
            Some("oneway") => {
                want(2)?;
                Ok(NetFault::OneWay {
                    from: id(words[1])?,
                    to: id(words[2])?,
                })
            }
            Some("partition") => {
                if words.len() < 2 {
                    return Err(err("partition takes at least one group".into()));
                }
                let groups = words[1..]
                    .iter()
                    .map(|w| list(w))
                    .collect::<Result<_, _>>()?;
                Ok(NetFault::Partition(groups))
            }
            Some("cut-host") => match words.len() {
                1 => Ok(NetFault::CutHost(Vec::new())),
                2 => Ok(NetFault::CutHost(list(words[1])?)),
                _ => Err(err("cut-host takes one comma-separated list".into())),
            },
            _ => Err(err(FORMS.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn lab(n: u32) -> Vec<u32> {
        (1..=n).collect()
    }

    #[test]
    fn isolate_cuts_the_node_both_ways_and_nothing_else() {
        let d = NetFault::Isolate(1).drops(&lab(3)).unwrap();
        for p in [2, 3] {
            assert!(d.blocked(1, p) && d.blocked(p, 1));
        }
        assert!(!d.blocked(2, 3) && !d.blocked(3, 2));
        assert!(!d.blocked(1, HOST_ID) && !d.blocked(HOST_ID, 1));
    }

    #[test]
    fn halves_of_five_are_two_against_three() {
        let d = NetFault::Halves.drops(&lab(5)).unwrap();
        assert!(d.blocked(1, 3) && d.blocked(2, 5) && d.blocked(5, 2));
        assert!(!d.blocked(1, 2) && !d.blocked(3, 4) && !d.blocked(4, 5));
        assert_eq!(d.links().count(), 2 * 2 * 3);
    }

    #[test]
    fn bridge_cuts_only_the_two_ends() {
        let d = NetFault::Bridge { a: 1, b: 2, c: 3 }
            .drops(&lab(4))
            .unwrap();
        assert_eq!(d.links().collect::<Vec<_>>(), vec![(1, 3), (3, 1)]);
    }

    #[test]
    fn oneway_drops_one_direction_only() {
        let d = NetFault::OneWay { from: 2, to: 1 }.drops(&lab(3)).unwrap();
        assert!(d.blocked(2, 1));
        assert!(!d.blocked(1, 2));
        assert_eq!(d.outgoing(2), BTreeSet::from([1]));
        assert_eq!(d.incoming(1), BTreeSet::from([2]));
    }

    #[test]
    fn partition_puts_unnamed_nodes_in_one_more_group() {
        let d = NetFault::Partition(vec![vec![1], vec![2]])
            .drops(&lab(4))
            .unwrap();
        assert!(d.blocked(1, 2) && d.blocked(1, 3) && d.blocked(2, 4));
        assert!(!d.blocked(3, 4));
    }

    #[test]
    fn cut_host_without_a_list_cuts_every_node_from_the_host() {
        let d = NetFault::CutHost(vec![]).drops(&lab(3)).unwrap();
        for n in 1..=3 {
            assert!(d.blocked(n, HOST_ID) && d.blocked(HOST_ID, n));
        }
        assert!(!d.blocked(1, 2));
    }

    #[test]
    fn faults_that_do_not_fit_the_lab_are_errors() {
        let l = lab(3);
        assert_eq!(
            NetFault::Isolate(9).drops(&l),
            Err(NemesisError::UnknownNode(9))
        );
        assert_eq!(
            NetFault::Partition(vec![vec![1, 2], vec![2]]).drops(&l),
            Err(NemesisError::NodeTwice(2))
        );
        assert!(NetFault::Bridge { a: 1, b: 1, c: 2 }.drops(&l).is_err());
        assert!(NetFault::OneWay { from: 3, to: 3 }.drops(&l).is_err());
        assert!(NetFault::Halves.drops(&[1]).is_err());
        assert!(NetFault::CutHost(vec![7]).drops(&l).is_err());
    }

    #[test]
    fn bad_text_is_a_syntax_error_naming_the_forms() {
        for t in [
            "",
            "isolate",
            "isolate x",
            "bridge 1 2",
            "oneway 1",
            "nuke 1",
            "heal 1",
        ] {
            let e = t.parse::<NetFault>().unwrap_err();
            assert!(matches!(e, NemesisError::Syntax { .. }), "{t:?}: {e}");
        }
        assert!("nuke"
            .parse::<NetFault>()
            .unwrap_err()
            .to_string()
            .contains("isolate N"));
    }

    fn any_fault() -> impl Strategy<Value = NetFault> {
        prop_oneof![
            Just(NetFault::Heal),
            Just(NetFault::Halves),
            (1u32..9).prop_map(NetFault::Isolate),
            (1u32..9, 1u32..9, 1u32..9).prop_map(|(a, b, c)| NetFault::Bridge { a, b, c }),
            (1u32..9, 1u32..9).prop_map(|(from, to)| NetFault::OneWay { from, to }),
            vec(vec(1u32..9, 1..4), 1..4).prop_map(NetFault::Partition),
            vec(1u32..9, 0..4).prop_map(NetFault::CutHost),
        ]
    }

    proptest! {
        #[test]
        fn text_form_round_trips(f in any_fault()) {
            prop_assert_eq!(f.to_string().parse::<NetFault>(), Ok(f));
        }

        #[test]
        fn no_fault_drops_a_self_link_or_names_a_stranger(f in any_fault(), n in 1u32..9) {
            let nodes = lab(n);
            if let Ok(d) = f.drops(&nodes) {
                for (a, b) in d.links() {
                    prop_assert_ne!(a, b);
                    prop_assert!(nodes.contains(&a) || a == HOST_ID);
                    prop_assert!(nodes.contains(&b) || b == HOST_ID);
                }
            }
        }

        #[test]
        fn partition_blocks_exactly_the_pairs_in_different_groups(
            assign in vec(0usize..3, 1..9),
        ) {
            // Node i+1 goes to group assign[i]; the last group is left implicit ("the rest").
            let nodes = lab(assign.len() as u32);
            let named: Vec<Vec<u32>> = (0..2)
                .map(|g| nodes.iter().copied().filter(|n| assign[*n as usize - 1] == g).collect())
                .collect();
            let d = NetFault::Partition(named).drops(&nodes).unwrap();
            for &a in &nodes {
                for &b in &nodes {
                    let apart = assign[a as usize - 1] != assign[b as usize - 1];
                    prop_assert_eq!(d.blocked(a, b), apart, "{} -> {}", a, b);
                }
            }
        }

        #[test]
        fn halves_is_symmetric_and_splits_into_two_nonempty_cliques(n in 2u32..20) {
            let nodes = lab(n);
            let d = NetFault::Halves.drops(&nodes).unwrap();
            let low = n / 2;
            for a in 1..=n {
                for b in 1..=n {
                    prop_assert_eq!(d.blocked(a, b), d.blocked(b, a));
                    prop_assert_eq!(d.blocked(a, b), (a <= low) != (b <= low));
                }
            }
        }
    }
}
