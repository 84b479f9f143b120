//! `cman_tool nodes` against golden files: the table, `-a`, `-n`, `-F`, disallowed notes.

use cmand::render::{self, Field, NodesOpts};
use libcluster::ipc::cman::{CmanNode, NodeState};

/// The golden files show local time two hours east of UTC (CEST).
fn cest(_unix_s: i64) -> i32 {
    7_200
}

/// 2011-10-03 15:21:02 and 15:22:22 in CEST.
const QDISK_JOINED: i64 = 1_317_648_062;
const NODES_JOINED: i64 = 1_317_648_142;

fn node(id: u32, name: &str, state: NodeState, inc: u64, joined: Option<i64>) -> CmanNode {
    CmanNode {
        id,
        name: name.into(),
        state,
        incarnation: inc,
        joined_unix_s: joined,
        votes: 1,
        expected_votes: 3,
        addresses: vec![],
    }
}

/// The spec's example (§1.9) plus node2, given out of order as a daemon might.
fn cluster() -> Vec<CmanNode> {
    let mut node2 = node(2, "node2", NodeState::Member, 96, Some(NODES_JOINED));
    node2.addresses = vec!["10.0.0.2".into(), "192.168.1.2".into()];
    // A dead node keeps its last join time; the table must not show it.
    let mut node3 = node(3, "node3", NodeState::Dead, 0, Some(NODES_JOINED - 60));
    node3.addresses = vec!["10.0.0.3".into()];
    let mut node1 = node(1, "node1", NodeState::Member, 104, Some(NODES_JOINED));
    node1.addresses = vec!["10.0.0.1".into()];
    let mut qdisk = node(
        0,
        "/dev/block/8:17",
        NodeState::Member,
        0,
        Some(QDISK_JOINED),
    );
    qdisk.expected_votes = 0;
    vec![node3, node1, qdisk, node2]
}

fn opts() -> NodesOpts {
    NodesOpts {
        utc_offset_s: cest,
        ..NodesOpts::default()
    }
}

#[test]
fn plain_table_is_sorted_by_id_with_local_join_times() {
    assert_eq!(
        render::nodes(&cluster(), &opts()),
        include_str!("data/nodes_plain.txt")
    );
}

#[test]
fn addresses_follow_each_row_that_has_some() {
    let opts = NodesOpts {
        addresses: true,
        ..opts()
    };
    assert_eq!(
        render::nodes(&cluster(), &opts),
        include_str!("data/nodes_addresses.txt")
    );
}

#[test]
fn name_filters_keep_only_the_named_nodes() {
    let opts = NodesOpts {
        names: vec!["node3".into(), "node1".into(), "nosuch".into()],
        ..opts()
    };
    assert_eq!(
        render::nodes(&cluster(), &opts),
        include_str!("data/nodes_filtered.txt")
    );
}

#[test]
fn format_fields_replace_the_table() {
    let (fields, unknown) = render::parse_fields("id,name,type,addr,votes,exp,state");
    assert!(unknown.is_empty());
    let opts = NodesOpts {
        format: Some(fields),
        // -a changes nothing once -F is given.
        addresses: true,
        ..opts()
    };
    assert_eq!(
        render::nodes(&cluster(), &opts),
        include_str!("data/nodes_fields.txt")
    );
}

fn with_disallowed_node2() -> Vec<CmanNode> {
    let mut list = cluster();
    for n in &mut list {
        if n.id == 2 {
            n.state = NodeState::Disallowed;
        }
    }
    list
}

#[test]
fn disallowed_nodes_bring_the_note_and_the_d_letter() {
    assert_eq!(
        render::nodes(&with_disallowed_node2(), &opts()),
        include_str!("data/nodes_disallowed.txt")
    );
}

#[test]
fn the_note_counts_disallowed_nodes_outside_the_filter_too() {
    let opts = NodesOpts {
        names: vec!["node2".into()],
        format: Some(vec![Field::Id, Field::Type, Field::State]),
        ..opts()
    };
    assert_eq!(
        render::nodes(&with_disallowed_node2(), &opts),
        include_str!("data/nodes_disallowed_fields.txt")
    );
}

#[test]
fn a_zero_or_missing_join_time_is_nineteen_spaces() {
    let list = vec![
        node(1, "a", NodeState::Member, 5, Some(0)),
        node(2, "b", NodeState::Joining, 0, None),
    ];
    let text = render::nodes(&list, &opts());
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows[0], format!("   1   M      5   {}  a", " ".repeat(19)));
    assert_eq!(rows[1], format!("   2   ?      0   {}  b", " ".repeat(19)));
}

#[test]
fn wide_values_push_columns_like_printf() {
    let list = vec![node(4096, "big", NodeState::Member, 1_234_567, None)];
    let text = render::nodes(&list, &opts());
    assert_eq!(
        text.lines().nth(1).unwrap(),
        format!("4096   M  1234567   {}  big", " ".repeat(19))
    );
}

#[test]
fn an_empty_list_is_just_the_header() {
    assert_eq!(
        render::nodes(&[], &opts()),
        "Node  Sts   Inc   Joined               Name\n"
    );
}

#[test]
fn json_lists_the_selected_nodes_sorted() {
    let opts = NodesOpts {
        names: vec!["node3".into(), "node1".into()],
        ..opts()
    };
    let text = render::nodes_json(&cluster(), &opts).unwrap();
    let back: Vec<CmanNode> = serde_json::from_str(&text).unwrap();
    let ids: Vec<u32> = back.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![1, 3]);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value[1]["state"], "Dead");
    assert_eq!(value[0]["joined_unix_s"], NODES_JOINED);
}
