//! `cman_tool status` and `version` against golden files (byte for byte, trailing spaces
//! included), and a reader that checks any rendered status against the spec's line order.

use cmand::render;
use libcluster::ipc::cman::{CmanStatus, MembershipState};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::BTreeMap;

/// The spec's example (spec/cman-qdisk.md §1.8): two nodes and a quorum disk, quorate.
fn quorate_with_qdisk() -> CmanStatus {
    CmanStatus {
        config_version: 3,
        cluster_name: "mycluster".into(),
        cluster_id: 56756,
        state: MembershipState::ClusterMember,
        generation: 104,
        coordinator: Some(1),
        members: vec![1, 2],
        expected_votes: 3,
        qdisk_votes: Some(1),
        total_votes: 3,
        node_votes: 1,
        quorum: 2,
        quorate: true,
        active_subsystems: 9,
        two_node: false,
        disallowed: vec![],
        node_name: "node1".into(),
        node_id: 1,
        incarnation: 104,
        multicast_addresses: vec!["239.192.221.146".into()],
        node_addresses: vec!["10.0.0.1".into()],
        uptime_s: 3600,
        counters: BTreeMap::from([("views".to_string(), 4)]),
    }
}

/// Alone after the other node and the quorum disk went: quorum stays at 2.
fn inquorate() -> CmanStatus {
    CmanStatus {
        generation: 105,
        members: vec![1],
        qdisk_votes: None,
        total_votes: 1,
        quorate: false,
        active_subsystems: 4,
        ..quorate_with_qdisk()
    }
}

/// The reference deployment's two_node cluster with one host up.
fn two_node() -> CmanStatus {
    CmanStatus {
        config_version: 2,
        cluster_name: "dom0cluster1".into(),
        cluster_id: 20121,
        generation: 8,
        members: vec![1],
        expected_votes: 1,
        qdisk_votes: None,
        total_votes: 1,
        quorum: 1,
        quorate: true,
        active_subsystems: 5,
        two_node: true,
        node_name: "station200.example.com".into(),
        multicast_addresses: vec!["10.0.0.2".into()],
        node_addresses: vec!["10.0.0.1".into(), "192.168.122.1".into()],
        ..quorate_with_qdisk()
    }
}

/// Leaving, with two disallowed nodes and no multicast.
fn leaving_with_disallowed() -> CmanStatus {
    CmanStatus {
        state: MembershipState::Leaving,
        generation: 110,
        qdisk_votes: None,
        total_votes: 2,
        active_subsystems: 2,
        disallowed: vec!["node3".into(), "node4".into()],
        multicast_addresses: vec![],
        ..quorate_with_qdisk()
    }
}

/// Just started: no view yet.
fn joining() -> CmanStatus {
    CmanStatus {
        config_version: 1,
        cluster_name: "c".into(),
        cluster_id: 99,
        state: MembershipState::Joining,
        generation: 0,
        coordinator: None,
        members: vec![],
        expected_votes: 2,
        qdisk_votes: None,
        total_votes: 0,
        node_votes: 1,
        quorum: 2,
        quorate: false,
        active_subsystems: 0,
        two_node: false,
        disallowed: vec![],
        node_name: "a".into(),
        node_id: 1,
        incarnation: 1,
        multicast_addresses: vec![],
        node_addresses: vec![],
        uptime_s: 0,
        counters: BTreeMap::new(),
    }
}

#[test]
fn quorate_status_with_a_quorum_disk_matches_the_spec_layout() {
    assert_eq!(
        render::status(&quorate_with_qdisk()),
        include_str!("data/status_quorate_qdisk.txt")
    );
}

#[test]
fn inquorate_status_says_activity_blocked_and_drops_the_qdisk_line() {
    assert_eq!(
        render::status(&inquorate()),
        include_str!("data/status_inquorate.txt")
    );
}

#[test]
fn two_node_status_shows_the_2node_flag() {
    assert_eq!(
        render::status(&two_node()),
        include_str!("data/status_two_node.txt")
    );
}

#[test]
fn disallowed_nodes_add_a_flag_and_a_final_line() {
    assert_eq!(
        render::status(&leaving_with_disallowed()),
        include_str!("data/status_disallowed.txt")
    );
}

#[test]
fn a_node_outside_any_view_is_not_a_cluster_member() {
    assert_eq!(
        render::status(&joining()),
        include_str!("data/status_joining.txt")
    );
}

#[test]
fn version_prints_protocol_and_config_version() {
    assert_eq!(
        render::version(&quorate_with_qdisk()),
        include_str!("data/version.txt")
    );
}

#[test]
fn json_status_carries_every_field_under_its_struct_name() {
    let s = quorate_with_qdisk();
    let text = render::status_json(&s).unwrap();
    assert!(text.ends_with("}\n"));
    let back: CmanStatus = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["config_version"], 3);
    assert_eq!(value["state"], "ClusterMember");
    assert_eq!(value["qdisk_votes"], 1);
}

/// The keys of `cman_tool status` in the spec's order (§1.8); optional ones included.
const SPEC_ORDER: &[&str] = &[
    "Version",
    "Config Version",
    "Cluster Name",
    "Cluster Id",
    "Cluster Member",
    "Cluster Generation",
    "Membership state",
    "Nodes",
    "Expected votes",
    "Quorum device votes",
    "Total votes",
    "Node votes",
    "Quorum",
    "Active subsystems",
    "Flags",
    "Ports Bound",
    "Node name",
    "Node ID",
    "Multicast addresses",
    "Node addresses",
    "Disallowed nodes",
];

/// Keys that are left out when they do not apply.
const OPTIONAL: &[&str] = &["Quorum device votes", "Disallowed nodes"];

/// A script's view of the status: `Key: value` lines, split at the first `": "` (or a
/// final `:` with nothing after it), in order.
fn read_status(text: &str) -> Vec<(String, String)> {
    assert!(text.ends_with('\n'), "output ends with a newline");
    text.lines()
        .map(|line| {
            let (key, value) = line
                .split_once(": ")
                .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
                .unwrap_or_else(|| panic!("not a `Key: value` line: {line:?}"));
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// Checks order and the values a script would read back.
fn check_against_spec(s: &CmanStatus) {
    let text = render::status(s);
    let lines = read_status(&text);
    let keys: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    let expected: Vec<&str> = SPEC_ORDER
        .iter()
        .copied()
        .filter(|k| match *k {
            "Quorum device votes" => s.qdisk_votes.is_some(),
            "Disallowed nodes" => !s.disallowed.is_empty(),
            _ => true,
        })
        .collect();
    assert_eq!(keys, expected, "{text}");
    assert!(SPEC_ORDER
        .iter()
        .filter(|k| !OPTIONAL.contains(k))
        .all(|k| keys.contains(k)));
    let value = |key: &str| -> &str { &lines.iter().find(|(k, _)| k == key).unwrap().1 };
    assert_eq!(value("Version"), "6.2.0");
    assert_eq!(value("Config Version"), s.config_version.to_string());
    assert_eq!(value("Cluster Name"), s.cluster_name);
    assert_eq!(value("Cluster Id"), s.cluster_id.to_string());
    assert_eq!(value("Cluster Generation"), s.generation.to_string());
    assert_eq!(value("Membership state"), s.state.word());
    assert_eq!(value("Nodes"), s.members.len().to_string());
    assert_eq!(value("Expected votes"), s.expected_votes.to_string());
    if let Some(q) = s.qdisk_votes {
        assert_eq!(value("Quorum device votes"), q.to_string());
    }
    assert_eq!(value("Total votes"), s.total_votes.to_string());
    assert_eq!(value("Node votes"), s.node_votes.to_string());
    let quorum = value("Quorum");
    if s.quorate {
        assert_eq!(
            quorum,
            format!("{}  ", s.quorum),
            "quorate: two trailing spaces"
        );
    } else {
        assert_eq!(quorum, format!("{} Activity blocked", s.quorum));
    }
    assert_eq!(value("Active subsystems"), s.active_subsystems.to_string());
    let flags = value("Flags");
    assert!(flags.ends_with(' ') || flags.is_empty(), "{flags:?}");
    assert_eq!(flags.contains("2node"), s.two_node);
    assert_eq!(flags.contains("DisallowedNodes"), !s.disallowed.is_empty());
    assert_eq!(value("Ports Bound"), "0  ");
    assert_eq!(value("Node name"), s.node_name);
    assert_eq!(value("Node ID"), s.node_id.to_string());
    let list = |items: &[String]| items.iter().map(|a| format!("{a} ")).collect::<String>();
    assert_eq!(value("Multicast addresses"), list(&s.multicast_addresses));
    assert_eq!(value("Node addresses"), list(&s.node_addresses));
    if !s.disallowed.is_empty() {
        assert_eq!(value("Disallowed nodes"), list(&s.disallowed));
    }
}

#[test]
fn every_golden_status_reads_back_in_the_spec_order() {
    for s in [
        quorate_with_qdisk(),
        inquorate(),
        two_node(),
        leaving_with_disallowed(),
        joining(),
    ] {
        check_against_spec(&s);
    }
}

/// Names as cluster.conf allows them: no `": "` inside, no line breaks.
fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9.:-]{0,20}"
}

fn any_state() -> impl Strategy<Value = MembershipState> {
    prop_oneof![
        Just(MembershipState::Joining),
        Just(MembershipState::ClusterMember),
        Just(MembershipState::NotInCluster),
        Just(MembershipState::Leaving),
    ]
}

prop_compose! {
    fn any_status()(
        config_version in any::<u64>(),
        cluster_name in word(),
        cluster_id in any::<u16>(),
        state in any_state(),
        generation in any::<u64>(),
        members in prop::collection::vec(1u32..64, 0..8),
        votes in prop::array::uniform6(any::<u32>()),
        qdisk in prop::option::of(any::<u32>()),
        quorate in any::<bool>(),
        two_node in any::<bool>(),
        disallowed in prop::collection::vec(word(), 0..3),
        node_name in word(),
        multicast_addresses in prop::collection::vec(word(), 0..3),
        node_addresses in prop::collection::vec(word(), 0..3),
    ) -> CmanStatus {
        CmanStatus {
            config_version,
            cluster_name,
            cluster_id,
            state,
            generation,
            coordinator: members.first().copied(),
            members,
            expected_votes: votes[0],
            qdisk_votes: qdisk,
            total_votes: votes[1],
            node_votes: votes[2],
            quorum: votes[3],
            quorate,
            active_subsystems: votes[4],
            two_node,
            disallowed,
            node_name,
            node_id: votes[5],
            incarnation: 1,
            multicast_addresses,
            node_addresses,
            uptime_s: 0,
            counters: BTreeMap::new(),
        }
    }
}

proptest! {
    // Integration tests have no lib.rs beside them: name the regression file outright.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/data/proptest-regressions/render_status.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_status_reads_back_in_the_spec_order(s in any_status()) {
        check_against_spec(&s);
    }
}
