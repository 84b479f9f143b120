//! Failover-domain rules as pure functions (spec/rgmanager.md §2.1–§2.4, §2.7, §2.8).
//!
//! A [`Domain`] is a `<failoverdomain>` with node names resolved to ids. A [`DomainView`] is
//! that domain seen with one set of online members (the smallest online priority is
//! computed once per membership change, not once per service). [`score`] is rgmanager's
//! `node_should_start`, [`best_target`] its `best_target_node`, [`should_fail_back`] the
//! failback test of `consider_relocate`, and [`exclusive_allows`] the exclusive rule.

use crate::config::{ClusterNode, FailoverDomain};
use crate::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// How well a node suits a service (`FOD_ILLEGAL` .. `FOD_BEST`, spec §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Score {
    /// `FOD_ILLEGAL` (0): the service may not run there.
    Illegal = 0,
    /// `FOD_GOOD` (1): allowed, outside an unrestricted domain.
    Good = 1,
    /// `FOD_BETTER` (2): a domain member, but not the most preferred online one.
    Better = 2,
    /// `FOD_BEST` (3): where the service should run; automatic starts go only here.
    Best = 3,
}

/// A failover domain with its members resolved to node ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// `name`.
    pub name: String,
    /// `ordered`: members are preferred by priority.
    pub ordered: bool,
    /// `restricted`: the service runs on members only.
    pub restricted: bool,
    /// `nofailback`: a running service does not move back to a more preferred member.
    pub nofailback: bool,
    /// Member → priority as rgmanager reads it: 1..=100 in an ordered domain; 0 when the
    /// domain is unordered or the priority is missing or out of range (spec §2.1).
    members: BTreeMap<NodeId, u32>,
}

impl Domain {
    /// A domain from its flags and `(node, priority)` members. Priorities outside 1..=100,
    /// and every priority of an unordered domain, read as 0 (spec §2.1). A node listed twice
    /// keeps its first entry (rgmanager stops reading the list there, error #30).
    pub fn new(
        name: &str,
        ordered: bool,
        restricted: bool,
        nofailback: bool,
        members: &[(NodeId, Option<u32>)],
    ) -> Domain {
        let mut map = BTreeMap::new();
        for &(node, priority) in members {
            if map.contains_key(&node) {
                break;
            }
            let p = match priority {
                Some(p) if ordered && (1..=100).contains(&p) => p,
                _ => 0,
            };
            map.insert(node, p);
        }
        Domain {
            name: name.to_string(),
            ordered,
            restricted,
            nofailback,
            members: map,
        }
    }

    /// The configured domain with node names looked up among `nodes` (exact spelling, as the
    /// original's XPath lookup; a name that is not a `<clusternode>` is left out, as the
    /// original's id -1 never matches a member).
    pub fn from_config(d: &FailoverDomain, nodes: &[ClusterNode]) -> Domain {
        let members: Vec<(NodeId, Option<u32>)> = d
            .nodes
            .iter()
            .filter_map(|m| {
                let node = nodes.iter().find(|n| n.name == m.name)?;
                Some((node.nodeid, m.priority))
            })
            .collect();
        Domain::new(&d.name, d.ordered, d.restricted, d.nofailback, &members)
    }

    /// Whether `node` is a member.
    pub fn contains(&self, node: NodeId) -> bool {
        self.members.contains_key(&node)
    }

    /// The member's priority as read (0 = none), or `None` for a non-member.
    pub fn priority(&self, node: NodeId) -> Option<u32> {
        self.members.get(&node).copied()
    }

    /// Every member, by node id.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.keys().copied()
    }

    /// The ordered node list of `node_domain_set` (spec §2.3): priorities 1→100, then the
    /// priority-less nodes. Equal priorities are ordered by node id (the original shuffles).
    pub fn ordered_nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<(u32, NodeId)> = self
            .members
            .iter()
            .map(|(&n, &p)| (if p == 0 { u32::MAX } else { p }, n))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, n)| n).collect()
    }

    /// This domain seen with the `online` members (nodes in the cluster view running
    /// rgmanager).
    pub fn view(&self, online: &BTreeSet<NodeId>) -> DomainView<'_> {
        let top = self
            .members
            .iter()
            .filter(|(n, _)| online.contains(n))
            .map(|(_, &p)| p)
            .min();
        DomainView { domain: self, top }
    }
}

/// A domain with the smallest priority among its online members (`pmin` of spec §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainView<'a> {
    /// The domain.
    pub domain: &'a Domain,
    /// The smallest priority among online members; `None` when no member is online.
    pub top: Option<u32>,
}

impl DomainView<'_> {
    /// Whether the service may run nowhere: a restricted domain with no online member
    /// (`Marking <svc> as stopped: Restricted domain unavailable`).
    pub fn unavailable(&self) -> bool {
        self.domain.restricted && self.top.is_none()
    }

    /// Whether `node` is among the most preferred online members (all online members of an
    /// unordered domain). Assumes `node` is online.
    pub fn is_top(&self, node: NodeId) -> bool {
        match (self.domain.priority(node), self.top) {
            (Some(p), Some(top)) => p <= top,
            _ => false,
        }
    }
}

/// Where a service runs now, as the nofailback rule reads it: started (or starting) on
/// `owner`, which is online. Pass `None` when it is not running or its owner is offline.
pub type RunningOn = Option<NodeId>;

/// `node_should_start` (spec §2.2): the score of `node` for a service whose domain is `dom`
/// (`None` = no domain or an unknown one), given whether the node is online and where the
/// service runs (only read with `nofailback`).
pub fn score(
    dom: Option<&DomainView<'_>>,
    node: NodeId,
    online: bool,
    running: RunningOn,
) -> Score {
    if !online {
        return Score::Illegal; // rule 1
    }
    let Some(dv) = dom else {
        return Score::Best; // rule 2
    };
    let Some(_) = dv.top else {
        // rule 3: no member online
        return if dv.domain.restricted {
            Score::Illegal
        } else {
            Score::Best
        };
    };
    if !dv.domain.contains(node) {
        // rule 4
        return if dv.domain.restricted {
            Score::Illegal
        } else {
            Score::Good
        };
    }
    let nofailback = dv.domain.nofailback;
    if dv.is_top(node) {
        match running {
            Some(owner) if nofailback && owner != node => Score::Better,
            _ => Score::Best,
        }
    } else {
        match running {
            Some(owner) if nofailback && owner == node => Score::Best,
            _ => Score::Better,
        }
    }
}

/// What a node runs, as the exclusive rule needs it (spec §2.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// Services placed on the node (started, starting, stopping or migrating in).
    pub services: u32,
    /// How many of them are exclusive.
    pub exclusive: u32,
}

/// The exclusive rule: an exclusive service needs an empty node; any service avoids a node
/// that runs an exclusive one (spec §2.8).
pub fn exclusive_allows(exclusive: bool, load: Load) -> bool {
    if exclusive {
        load.services == 0
    } else {
        load.exclusive == 0
    }
}

/// The question [`best_target`] answers.
#[derive(Clone, Copy, Debug)]
pub struct TargetQuery<'a> {
    /// The service's domain as seen now.
    pub dom: Option<&'a DomainView<'a>>,
    /// Whether the service is exclusive.
    pub exclusive: bool,
    /// Where it runs now (for nofailback scoring), if on an online node.
    pub running: RunningOn,
    /// Excluded from the candidates: the current or failed owner.
    pub exclude: Option<NodeId>,
    /// The lowest acceptable score: `Best` for automatic starts (§2.5), `Good` for
    /// failover, relocation and user starts (§2.4, §2.11).
    pub min: Score,
}

/// `best_target_node` (spec §2.4): among the online `candidates`, the node with the highest
/// score that is allowed by the exclusive rule, or `None`. Exclusive services score +2 on
/// the (necessarily empty) nodes that pass, which does not change their order.
///
/// Ties go to the node running the fewest services, then to the lowest node id. (The
/// original picks the later node of a shuffled member list: random. Spreading load is a
/// deterministic choice among the same legal nodes; docs/placement.md.)
pub fn best_target(
    q: &TargetQuery<'_>,
    candidates: impl IntoIterator<Item = NodeId>,
    load: impl Fn(NodeId) -> Load,
) -> Option<NodeId> {
    let mut best: Option<(Score, u32, NodeId)> = None;
    for node in candidates {
        if Some(node) == q.exclude {
            continue;
        }
        let s = score(q.dom, node, true, q.running);
        if s == Score::Illegal || s < q.min {
            continue;
        }
        let l = load(node);
        if !exclusive_allows(q.exclusive, l) {
            continue;
        }
        let better = match best {
            None => true,
            Some((bs, bl, bn)) => {
                (s, std::cmp::Reverse(l.services), std::cmp::Reverse(node))
                    > (bs, std::cmp::Reverse(bl), std::cmp::Reverse(bn))
            }
        };
        if better {
            best = Some((s, l.services, node));
        }
    }
    best.map(|(_, _, n)| n)
}

/// The failback test of `consider_relocate` (spec §2.7): whether a service running on
/// `owner` should move to `other`, because `other` scores strictly higher. With
/// `nofailback` the owner scores BEST, so only a service running outside an unrestricted
/// domain moves (into it).
pub fn should_fail_back(dom: Option<&DomainView<'_>>, owner: NodeId, other: NodeId) -> bool {
    let running = Some(owner);
    score(dom, other, true, running) > score(dom, owner, true, running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(ids: &[u32]) -> BTreeSet<NodeId> {
        ids.iter().map(|&i| NodeId(i)).collect()
    }

    fn ordered(restricted: bool, nofailback: bool) -> Domain {
        // node 1 priority 1, node 2 priority 2, node 3 priority 3
        let m = [
            (NodeId(1), Some(1)),
            (NodeId(2), Some(2)),
            (NodeId(3), Some(3)),
        ];
        Domain::new("d", true, restricted, nofailback, &m)
    }

    fn unordered(restricted: bool) -> Domain {
        let m = [(NodeId(1), Some(1)), (NodeId(2), Some(2))];
        Domain::new("u", false, restricted, false, &m)
    }

    #[test]
    fn offline_node_is_illegal_and_no_domain_is_best_anywhere_online() {
        // §2.2 rules 1 and 2
        assert_eq!(score(None, NodeId(9), false, None), Score::Illegal);
        assert_eq!(score(None, NodeId(9), true, None), Score::Best);
    }

    #[test]
    fn no_member_online_restricted_is_illegal_unrestricted_is_best() {
        // §2.2 rule 3
        let online = set(&[7, 8]);
        let r = ordered(true, false);
        let u = ordered(false, false);
        assert_eq!(
            score(Some(&r.view(&online)), NodeId(7), true, None),
            Score::Illegal
        );
        assert_eq!(
            score(Some(&u.view(&online)), NodeId(7), true, None),
            Score::Best
        );
        assert!(r.view(&online).unavailable());
        assert!(!u.view(&online).unavailable());
    }

    #[test]
    fn non_member_with_a_member_online_is_illegal_or_good() {
        // §2.2 rule 4
        let online = set(&[2, 7]);
        let r = ordered(true, false);
        let u = ordered(false, false);
        assert_eq!(
            score(Some(&r.view(&online)), NodeId(7), true, None),
            Score::Illegal
        );
        assert_eq!(
            score(Some(&u.view(&online)), NodeId(7), true, None),
            Score::Good
        );
    }

    #[test]
    fn ordered_domain_prefers_the_lowest_online_priority() {
        // §2.2 rule 5
        let d = ordered(false, false);
        let all = set(&[1, 2, 3]);
        let v = d.view(&all);
        assert_eq!(score(Some(&v), NodeId(1), true, None), Score::Best);
        assert_eq!(score(Some(&v), NodeId(2), true, None), Score::Better);
        let v = d.view(&set(&[2, 3]));
        assert_eq!(score(Some(&v), NodeId(2), true, None), Score::Best);
        assert_eq!(score(Some(&v), NodeId(3), true, None), Score::Better);
    }

    #[test]
    fn unordered_domain_scores_every_online_member_best() {
        // §2.2 consequences
        let d = unordered(true);
        let v = d.view(&set(&[1, 2, 3]));
        assert_eq!(score(Some(&v), NodeId(1), true, None), Score::Best);
        assert_eq!(score(Some(&v), NodeId(2), true, None), Score::Best);
        assert_eq!(score(Some(&v), NodeId(3), true, None), Score::Illegal);
    }

    #[test]
    fn nofailback_keeps_the_owner_best_and_demotes_the_top_member() {
        // §2.2 rule 5, nofailback branches
        let d = ordered(false, true);
        let v = d.view(&set(&[1, 2, 3]));
        let on2 = Some(NodeId(2));
        assert_eq!(score(Some(&v), NodeId(2), true, on2), Score::Best);
        assert_eq!(score(Some(&v), NodeId(1), true, on2), Score::Better);
        // without nofailback the running owner does not matter
        let d = ordered(false, false);
        let v = d.view(&set(&[1, 2, 3]));
        assert_eq!(score(Some(&v), NodeId(2), true, on2), Score::Better);
    }

    #[test]
    fn missing_priority_in_an_ordered_domain_scores_as_most_preferred_but_lists_last() {
        // §2.2 quirk and §2.3
        let m = [
            (NodeId(1), Some(1)),
            (NodeId(2), None),
            (NodeId(3), Some(200)),
        ];
        let d = Domain::new("q", true, false, false, &m);
        let v = d.view(&set(&[1, 2]));
        assert_eq!(score(Some(&v), NodeId(2), true, None), Score::Best);
        assert_eq!(score(Some(&v), NodeId(1), true, None), Score::Better);
        assert_eq!(d.ordered_nodes(), vec![NodeId(1), NodeId(2), NodeId(3)]);
    }

    #[test]
    fn priorities_of_unordered_domains_are_ignored_and_duplicates_keep_the_first() {
        // §2.1
        let m = [
            (NodeId(4), Some(5)),
            (NodeId(2), Some(1)),
            (NodeId(4), Some(1)),
            (NodeId(9), None),
        ];
        let d = Domain::new("u", false, false, false, &m);
        assert_eq!(d.priority(NodeId(4)), Some(0));
        assert_eq!(d.priority(NodeId(2)), Some(0));
        assert!(!d.contains(NodeId(9)), "parsing stops at the duplicate");
        assert_eq!(d.ordered_nodes(), vec![NodeId(2), NodeId(4)]);
    }

    #[test]
    fn exclusive_needs_an_empty_node_and_others_avoid_exclusive_nodes() {
        // §2.8
        let empty = Load::default();
        let busy = Load {
            services: 1,
            exclusive: 0,
        };
        let excl = Load {
            services: 1,
            exclusive: 1,
        };
        assert!(exclusive_allows(true, empty));
        assert!(!exclusive_allows(true, busy));
        assert!(exclusive_allows(false, busy));
        assert!(!exclusive_allows(false, excl));
    }

    #[test]
    fn best_target_takes_the_highest_score_then_the_least_loaded_then_the_lowest_id() {
        // §2.4 (tie rule is ours)
        let d = ordered(false, false);
        let online = set(&[1, 2, 3, 4]);
        let v = d.view(&online);
        let q = TargetQuery {
            dom: Some(&v),
            exclusive: false,
            running: None,
            exclude: None,
            min: Score::Good,
        };
        let flat = |_| Load::default();
        assert_eq!(
            best_target(&q, online.iter().copied(), flat),
            Some(NodeId(1))
        );
        let q1 = TargetQuery {
            exclude: Some(NodeId(1)),
            ..q
        };
        assert_eq!(
            best_target(&q1, online.iter().copied(), flat),
            Some(NodeId(2))
        );
        let u = unordered(false);
        let v = u.view(&online);
        let q = TargetQuery { dom: Some(&v), ..q };
        let loaded = |n: NodeId| Load {
            services: if n == NodeId(1) { 5 } else { 1 },
            exclusive: 0,
        };
        assert_eq!(
            best_target(&q, online.iter().copied(), loaded),
            Some(NodeId(2))
        );
    }

    #[test]
    fn best_target_skips_exclusive_conflicts_and_may_find_nothing() {
        // §2.4, §2.8
        let online = set(&[1, 2]);
        let q = TargetQuery {
            dom: None,
            exclusive: true,
            running: None,
            exclude: None,
            min: Score::Good,
        };
        let both_busy = |_| Load {
            services: 1,
            exclusive: 0,
        };
        assert_eq!(best_target(&q, online.iter().copied(), both_busy), None);
        let one_empty = |n: NodeId| Load {
            services: u32::from(n == NodeId(1)),
            exclusive: 0,
        };
        assert_eq!(
            best_target(&q, online.iter().copied(), one_empty),
            Some(NodeId(2))
        );
    }

    #[test]
    fn auto_start_minimum_rejects_nodes_outside_an_unrestricted_domain() {
        // §2.5: consider_start needs FOD_BEST
        let d = ordered(false, false);
        let online = set(&[1, 7]);
        let v = d.view(&online);
        let q = TargetQuery {
            dom: Some(&v),
            exclusive: false,
            running: None,
            exclude: Some(NodeId(1)),
            min: Score::Best,
        };
        assert_eq!(
            best_target(&q, online.iter().copied(), |_| Load::default()),
            None
        );
        let q = TargetQuery {
            min: Score::Good,
            ..q
        };
        assert_eq!(
            best_target(&q, online.iter().copied(), |_| Load::default()),
            Some(NodeId(7))
        );
    }

    #[test]
    fn failback_follows_order_unless_nofailback_but_always_moves_into_the_domain() {
        // §2.7
        let all = set(&[1, 2, 3, 7]);
        let d = ordered(false, false);
        let v = d.view(&all);
        assert!(should_fail_back(Some(&v), NodeId(2), NodeId(1)));
        assert!(!should_fail_back(Some(&v), NodeId(1), NodeId(2)));
        let nf = ordered(false, true);
        let v = nf.view(&all);
        assert!(!should_fail_back(Some(&v), NodeId(2), NodeId(1)));
        assert!(
            should_fail_back(Some(&v), NodeId(7), NodeId(1)),
            "outside the domain moves in"
        );
        let u = unordered(false);
        let v = u.view(&all);
        assert!(!should_fail_back(Some(&v), NodeId(2), NodeId(1)));
        assert!(should_fail_back(Some(&v), NodeId(7), NodeId(1)));
    }

    fn arb_domain() -> impl Strategy<Value = Domain> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec((1u32..9, proptest::option::of(0u32..6)), 0..6),
        )
            .prop_map(|(o, r, nf, m)| {
                let m: Vec<_> = m.into_iter().map(|(n, p)| (NodeId(n), p)).collect();
                Domain::new("p", o, r, nf, &m)
            })
    }

    proptest! {
        #[test]
        fn chosen_target_is_online_allowed_and_exclusive_safe(
            dom in proptest::option::of(arb_domain()),
            online in proptest::collection::btree_set(1u32..9, 0..8),
            loads in proptest::collection::vec((0u32..3, 0u32..2), 9),
            exclusive in any::<bool>(),
            best_only in any::<bool>(),
        ) {
            let online: BTreeSet<NodeId> = online.into_iter().map(NodeId).collect();
            let view = dom.as_ref().map(|d| d.view(&online));
            let load = |n: NodeId| {
                let (s, e) = loads[n.0 as usize];
                Load { services: s + e, exclusive: e }
            };
            let min = if best_only { Score::Best } else { Score::Good };
            let q = TargetQuery { dom: view.as_ref(), exclusive, running: None, exclude: None, min };
            if let Some(n) = best_target(&q, online.iter().copied(), load) {
                prop_assert!(online.contains(&n));
                if let Some(d) = &dom {
                    if d.restricted {
                        prop_assert!(d.contains(n));
                    }
                }
                prop_assert!(exclusive_allows(exclusive, load(n)));
                prop_assert!(score(view.as_ref(), n, true, None) >= min);
                // no legal node scores higher
                for m in &online {
                    if exclusive_allows(exclusive, load(*m)) {
                        prop_assert!(score(view.as_ref(), *m, true, None) <= score(view.as_ref(), n, true, None));
                    }
                }
            } else {
                for m in &online {
                    let s = score(view.as_ref(), *m, true, None);
                    prop_assert!(s < min || s == Score::Illegal || !exclusive_allows(exclusive, load(*m)));
                }
            }
        }

        #[test]
        fn some_online_node_scores_best_unless_restricted_and_unavailable(
            dom in arb_domain(),
            online in proptest::collection::btree_set(1u32..9, 1..8),
        ) {
            let online: BTreeSet<NodeId> = online.into_iter().map(NodeId).collect();
            let v = dom.view(&online);
            let any_best = online.iter().any(|&n| score(Some(&v), n, true, None) == Score::Best);
            prop_assert_eq!(any_best, !v.unavailable());
        }
    }
}
