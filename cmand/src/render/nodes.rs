//! `cman_tool nodes`: the table, `-a` addresses, `-n` filters and `-F` fields.

use super::time::format_local;
use libcluster::ipc::cman::{CmanNode, NodeState};
use std::fmt::Write;

/// The most `-F` fields the original reads; later ones are ignored.
pub const MAX_FORMAT_FIELDS: usize = 10;

/// The most `-n` names the original accepts.
pub const MAX_NODE_NAMES: usize = 10;

/// What the join time column shows for a node that is not a member: 19 spaces, the width
/// of `YYYY-MM-DD HH:MM:SS`.
const NO_JOIN_TIME: &str = "                   ";

/// One `-F` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `id`: the node id.
    Id,
    /// `name`: the node name.
    Name,
    /// `type`: the status letter of the table (`M`, `X`, `d`, `?`).
    Type,
    /// `addr`: the addresses joined by commas.
    Addr,
    /// `votes`: the node's votes.
    Votes,
    /// `exp`: the expected votes the node holds.
    Exp,
    /// `state`: `Joining`, `Member`, `Dead`, `Leaving` or `Disallowed`.
    State,
}

impl Field {
    /// The field a `-F` word names, if any.
    pub fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "id" => Field::Id,
            "name" => Field::Name,
            "type" => Field::Type,
            "addr" => Field::Addr,
            "votes" => Field::Votes,
            "exp" => Field::Exp,
            "state" => Field::State,
            _ => return None,
        })
    }
}

/// Reads a `-F` list the way the original does: comma-separated words (empty ones
/// skipped), at most [`MAX_FORMAT_FIELDS`] of them. Returns the fields and, separately,
/// the words that name no field (the original ignores them silently).
pub fn parse_fields(spec: &str) -> (Vec<Field>, Vec<String>) {
    let mut fields = Vec::new();
    let mut unknown = Vec::new();
    for word in spec
        .split(',')
        .filter(|w| !w.is_empty())
        .take(MAX_FORMAT_FIELDS)
    {
        match Field::from_name(word) {
            Some(f) => fields.push(f),
            None => unknown.push(word.to_string()),
        }
    }
    (fields, unknown)
}

/// Everything variable about a `cman_tool nodes` listing.
#[derive(Clone, Debug)]
pub struct NodesOpts {
    /// `-a`: an `Addresses:` line after each row.
    pub addresses: bool,
    /// `-n NAME`...: only these nodes (by exact name); empty means all.
    pub names: Vec<String>,
    /// `-F`: print these fields instead of the table (no header, no address lines).
    pub format: Option<Vec<Field>>,
    /// The offset from UTC, in seconds east, in effect at a given Unix time: join times are
    /// printed in local time. The binary asks the C library; tests pass a constant.
    pub utc_offset_s: fn(i64) -> i32,
}

/// The offset function for UTC.
pub fn utc(_unix_s: i64) -> i32 {
    0
}

impl Default for NodesOpts {
    /// The plain table in UTC.
    fn default() -> NodesOpts {
        NodesOpts {
            addresses: false,
            names: Vec::new(),
            format: None,
            utc_offset_s: utc,
        }
    }
}

/// The nodes the listing shows: sorted by id (stable, as given otherwise), filtered by
/// `-n` names.
pub fn selected<'a>(nodes: &'a [CmanNode], opts: &NodesOpts) -> Vec<&'a CmanNode> {
    let mut shown: Vec<&CmanNode> = nodes
        .iter()
        .filter(|n| opts.names.is_empty() || opts.names.contains(&n.name))
        .collect();
    shown.sort_by_key(|n| n.id);
    shown
}

/// `cman_tool nodes` output.
///
/// Disallowed nodes are counted over the whole list, filter or not, as the original counts
/// cman's disallowed list.
pub fn nodes(list: &[CmanNode], opts: &NodesOpts) -> String {
    let mut out = String::new();
    let disallowed = list
        .iter()
        .filter(|n| n.state == NodeState::Disallowed)
        .count();
    if disallowed > 0 {
        let _ = writeln!(out, "NOTE: There are {disallowed} disallowed nodes,");
        out.push_str("      members list may seem inconsistent across the cluster\n");
    }
    match &opts.format {
        None => {
            out.push_str("Node  Sts   Inc   Joined               Name\n");
            for node in selected(list, opts) {
                push_row(&mut out, node, opts);
            }
        }
        Some(fields) => {
            for node in selected(list, opts) {
                push_fields(&mut out, node, fields);
            }
        }
    }
    out
}

/// One table row (`%4u   %c  %5d   %s  %s`), and its `Addresses:` line with `-a`.
fn push_row(out: &mut String, node: &CmanNode, opts: &NodesOpts) {
    let letter = node.state.letter();
    // The original shows a join time only for nodes it counts as present.
    let joined = match node.joined_unix_s {
        Some(t) if t != 0 && letter != 'X' => format_local(t, (opts.utc_offset_s)(t)),
        _ => NO_JOIN_TIME.to_string(),
    };
    let _ = writeln!(
        out,
        "{:4}   {letter}  {:5}   {joined}  {}",
        node.id, node.incarnation, node.name
    );
    if opts.addresses && !node.addresses.is_empty() {
        out.push_str("       Addresses: ");
        for address in &node.addresses {
            out.push_str(address);
            out.push(' ');
        }
        out.push('\n');
    }
}

/// One `-F` line: each field followed by a space.
fn push_fields(out: &mut String, node: &CmanNode, fields: &[Field]) {
    for field in fields {
        let _ = match field {
            Field::Id => write!(out, "{} ", node.id),
            Field::Name => write!(out, "{} ", node.name),
            Field::Type => write!(out, "{} ", node.state.letter()),
            Field::Addr => write!(out, "{} ", node.addresses.join(",")),
            Field::Votes => write!(out, "{} ", node.votes),
            Field::Exp => write!(out, "{} ", node.expected_votes),
            Field::State => write!(out, "{} ", node.state.word()),
        };
    }
    out.push('\n');
}

/// `cman_tool nodes --json`: the selected nodes (sorted, `-n` filter applied) as a JSON
/// array of [`CmanNode`] objects, pretty-printed, with a final newline.
pub fn nodes_json(list: &[CmanNode], opts: &NodesOpts) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&selected(list, opts)).map(|mut text| {
        text.push('\n');
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_words_follow_strtok_rules() {
        let (fields, unknown) = parse_fields(",id,,name,bogus,state,");
        assert_eq!(fields, vec![Field::Id, Field::Name, Field::State]);
        assert_eq!(unknown, vec!["bogus".to_string()]);
    }

    #[test]
    fn only_the_first_ten_format_words_count() {
        let spec = ["id"; 12].join(",") + ",name";
        let (fields, _) = parse_fields(&spec);
        assert_eq!(fields.len(), MAX_FORMAT_FIELDS);
        assert!(!fields.contains(&Field::Name));
    }

    #[test]
    fn every_state_has_the_letter_the_table_needs() {
        let letters: Vec<char> = [
            NodeState::Member,
            NodeState::Dead,
            NodeState::Leaving,
            NodeState::Disallowed,
            NodeState::Joining,
        ]
        .iter()
        .map(|s| s.letter())
        .collect();
        assert_eq!(letters, vec!['M', 'X', 'X', 'd', '?']);
    }
}
