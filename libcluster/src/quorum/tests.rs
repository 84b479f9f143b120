use super::*;
use proptest::prelude::*;

fn members(votes: &[u32], expected: u32) -> Vec<MemberVotes> {
    votes
        .iter()
        .enumerate()
        .map(|(i, &v)| MemberVotes {
            node: NodeId(i as u32 + 1),
            votes: v,
            expected_votes: expected,
        })
        .collect()
}

fn fresh(m: &[MemberVotes], qdisk: Option<u32>, two_node: bool) -> QuorumState {
    compute(&QuorumInput {
        members: m,
        qdisk_votes: qdisk,
        two_node,
        previous_quorum: 0,
        allow_decrease: false,
    })
}

#[test]
fn three_nodes_need_two() {
    let all = members(&[1, 1, 1], 3);
    let s = fresh(&all, None, false);
    assert_eq!(
        (s.total_votes, s.expected_votes, s.quorum, s.quorate),
        (3, 3, 2, true)
    );
    assert!(fresh(&all[..2], None, false).quorate);
    assert!(!fresh(&all[..1], None, false).quorate);
}

#[test]
fn qdisk_votes_carry_a_lone_node_of_three_plus_disk() {
    // qdisk.5 example shape: 3 nodes of 1 vote, qdisk 3 votes, expected_votes 6 → quorum 4.
    let all = members(&[1, 1, 1], 6);
    assert_eq!(fresh(&all, Some(3), false).quorum, 4);
    assert!(fresh(&all[..1], Some(3), false).quorate);
    assert!(!fresh(&all[..1], None, false).quorate);
}

#[test]
fn two_node_forces_quorum_to_one() {
    let both = members(&[1, 1], 1);
    let s = fresh(&both[..1], None, true);
    assert_eq!((s.quorum, s.quorate), (1, true));
    assert!(fresh(&both, None, true).quorate);
}

#[test]
fn two_node_rule_stops_at_three_members() {
    let three = members(&[1, 1, 1], 3);
    assert_eq!(fresh(&three, None, true).quorum, 2);
}

#[test]
fn quorum_does_not_drop_on_node_death_without_allow_decrease() {
    let m = members(&[1, 1, 1, 1, 1], 3);
    let five = compute(&QuorumInput {
        members: &m,
        qdisk_votes: None,
        two_node: false,
        previous_quorum: 0,
        allow_decrease: false,
    });
    assert_eq!(five.quorum, 3);
    let after = compute(&QuorumInput {
        members: &m[..3],
        qdisk_votes: None,
        two_node: false,
        previous_quorum: 4,
        allow_decrease: false,
    });
    assert_eq!((after.quorum, after.quorate), (4, false));
    let allowed = compute(&QuorumInput {
        members: &m[..3],
        qdisk_votes: None,
        two_node: false,
        previous_quorum: 4,
        allow_decrease: true,
    });
    assert_eq!((allowed.quorum, allowed.quorate), (2, true));
}

#[test]
fn empty_view_is_inquorate() {
    let s = fresh(&[], None, false);
    assert!(!s.quorate);
    assert_eq!(s.quorum, 1);
}

#[test]
fn expected_cannot_go_below_majority_of_present_votes() {
    assert_eq!(check_expected(1, 3), Ok(2));
    assert_eq!(check_expected(5, 3), Ok(3));
    assert_eq!(
        check_expected(9, 3),
        Err(ExpectedError::OutOfRange {
            requested: 9,
            quorum: 5,
            total_votes: 3
        })
    );
    assert_eq!(check_expected(2, 2), Ok(2));
}

#[test]
fn remove_sets_expected_to_node_count() {
    assert_eq!(expected_after_remove(2), 2);
}

fn votes_strategy() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(0u32..=MAX_NODE_VOTES, 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Adding a member (more votes, same expected) never turns a quorate view inquorate.
    #[test]
    fn quorum_is_monotone_in_votes(votes in votes_strategy(), extra in 0u32..=MAX_NODE_VOTES,
                                   qd in prop::option::of(0u32..10), two_node in any::<bool>()) {
        let expected: u32 = votes.iter().sum::<u32>() + extra + qd.unwrap_or(0);
        let small = members(&votes, expected);
        let mut big = small.clone();
        big.push(MemberVotes { node: NodeId(100), votes: extra, expected_votes: expected });
        let before = fresh(&small, qd, two_node);
        let after = fresh(&big, qd, two_node);
        // two_node relaxes quorum only up to 2 members: exclude the 2 → 3 step there.
        if !(two_node && small.len() <= 2 && big.len() > 2) {
            prop_assert!(!before.quorate || after.quorate, "{before:?} -> {after:?}");
        }
        // A larger previous quorum only ever makes it harder.
        let stricter = compute(&QuorumInput { members: &big, qdisk_votes: qd, two_node, previous_quorum: after.quorum + 1, allow_decrease: false });
        prop_assert!(stricter.quorum >= after.quorum || two_node);
    }

    /// With expected votes at least the configured total, two disjoint partitions are
    /// never both quorate, unless two_node (then fencing decides). The quorum device
    /// votes count in at most one partition (the one its master is in).
    #[test]
    fn disjoint_partitions_never_both_quorate(votes in votes_strategy(), split in any::<prop::sample::Index>(),
                                              qd in prop::option::of(1u32..10), qd_side in any::<bool>(),
                                              slack in 0u32..5, prev in 0u32..20) {
        let configured: u32 = votes.iter().sum::<u32>() + qd.unwrap_or(0);
        let all = members(&votes, configured + slack);
        let cut = split.index(all.len() + 1);
        let (a, b) = all.split_at(cut);
        let qa = if qd_side { qd } else { None };
        let qb = if qd_side { None } else { qd };
        let sa = compute(&QuorumInput { members: a, qdisk_votes: qa, two_node: false, previous_quorum: prev, allow_decrease: false });
        let sb = compute(&QuorumInput { members: b, qdisk_votes: qb, two_node: false, previous_quorum: prev, allow_decrease: true });
        prop_assert!(!(sa.quorate && sb.quorate), "both quorate: {sa:?} {sb:?}");
    }

    /// The threshold is always strictly more than half of both expected and present votes.
    #[test]
    fn quorum_is_a_strict_majority(votes in votes_strategy(), expected in 0u32..3000) {
        let m = members(&votes, expected);
        let s = fresh(&m, None, false);
        prop_assert!(2 * s.quorum > s.expected_votes);
        prop_assert!(2 * s.quorum > s.total_votes);
    }
}
