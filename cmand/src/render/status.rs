//! `cman_tool status` and `cman_tool version`.

use libcluster::ipc::cman::{CmanStatus, MembershipState, CMAN_PROTOCOL_VERSION};
use std::fmt::Write;

/// The ports `cman_tool status` reports as bound.
///
/// The original lists cman's port bitmap: 0 is cman itself, then one port per client
/// subsystem (11 clvmd, 177 rgmanager, 178 qdiskd...). cmand has no port space: its
/// clients use the local socket and named groups. Only port 0, the membership service
/// that is always there, is honest to print.
pub const PORTS_BOUND: &[u8] = &[0];

/// `cman_tool status`: one `Key: value` line each, in the original's order and spacing.
///
/// Decisions where our status differs from cman's (docs/cman_tool.md):
/// `Cluster Member` is `Yes` while in a view (member or leaving), `No` otherwise (cman
/// could not answer at all then); `Flags` shows `2node`, `Shutdown` (leaving) and
/// `DisallowedNodes`; cmand has no `Error`, `DisallowedEnabled` or `HaveState` flags.
pub fn status(s: &CmanStatus) -> String {
    let in_view = matches!(
        s.state,
        MembershipState::ClusterMember | MembershipState::Leaving
    );
    let mut out = String::new();
    // Writing into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "Version: {CMAN_PROTOCOL_VERSION}");
    let _ = writeln!(out, "Config Version: {}", s.config_version);
    let _ = writeln!(out, "Cluster Name: {}", s.cluster_name);
    let _ = writeln!(out, "Cluster Id: {}", s.cluster_id);
    let _ = writeln!(
        out,
        "Cluster Member: {}",
        if in_view { "Yes" } else { "No" }
    );
    let _ = writeln!(out, "Cluster Generation: {}", s.generation);
    let _ = writeln!(out, "Membership state: {}", s.state.word());
    let _ = writeln!(out, "Nodes: {}", s.members.len());
    let _ = writeln!(out, "Expected votes: {}", s.expected_votes);
    if let Some(votes) = s.qdisk_votes {
        let _ = writeln!(out, "Quorum device votes: {votes}");
    }
    let _ = writeln!(out, "Total votes: {}", s.total_votes);
    let _ = writeln!(out, "Node votes: {}", s.node_votes);
    // `Quorum: N ` then either one more space or the words: quorate lines end in two spaces.
    let blocked = if s.quorate { " " } else { "Activity blocked" };
    let _ = writeln!(out, "Quorum: {} {blocked}", s.quorum);
    let _ = writeln!(out, "Active subsystems: {}", s.active_subsystems);
    out.push_str("Flags:");
    for (set, word) in [
        (s.two_node, " 2node"),
        (s.state == MembershipState::Leaving, " Shutdown"),
        (!s.disallowed.is_empty(), " DisallowedNodes"),
    ] {
        if set {
            out.push_str(word);
        }
    }
    out.push_str(" \n");
    out.push_str("Ports Bound: ");
    for port in PORTS_BOUND {
        let _ = write!(out, "{port} ");
    }
    out.push_str(" \n");
    let _ = writeln!(out, "Node name: {}", s.node_name);
    let _ = writeln!(out, "Node ID: {}", s.node_id);
    push_list(&mut out, "Multicast addresses: ", &s.multicast_addresses);
    push_list(&mut out, "Node addresses: ", &s.node_addresses);
    if !s.disallowed.is_empty() {
        push_list(&mut out, "Disallowed nodes: ", &s.disallowed);
    }
    out
}

/// `label` then each item followed by one space, then a newline.
fn push_list(out: &mut String, label: &str, items: &[String]) {
    out.push_str(label);
    for item in items {
        out.push_str(item);
        out.push(' ');
    }
    out.push('\n');
}

/// `cman_tool version`: `6.2.0 config N`.
pub fn version(s: &CmanStatus) -> String {
    format!("{CMAN_PROTOCOL_VERSION} config {}\n", s.config_version)
}

/// `cman_tool status --json`: the whole [`CmanStatus`], field names as in the struct,
/// pretty-printed, with a final newline.
pub fn status_json(s: &CmanStatus) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(s).map(|mut text| {
        text.push('\n');
        text
    })
}
