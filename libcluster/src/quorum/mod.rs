//! Votes, expected votes and the quorum threshold, as cman computes them.
//!
//! The rule (spec/cman-qdisk.md §1.1), restated:
//!
//! ```text
//! total_votes      = sum(votes of member nodes) + (quorum device votes if the device is a member)
//! highest_expected = max(expected_votes of member nodes)
//! quorum           = max((highest_expected + 2) / 2, (total_votes + 2) / 2)   // strictly more than half
//! unless allow_decrease: quorum = max(previous_quorum, quorum)              // never drops on its own
//! if two_node and at most 2 member nodes: quorum = 1                          // fencing decides a split
//! quorate          = total_votes >= quorum (and at least one member node)
//! ```
//!
//! Everything here is a pure function of its arguments. The membership core calls
//! [`compute`] whenever the installed view, a node's votes or the quorum device change,
//! passing `allow_decrease` as the original does (true only for administrator changes,
//! config reloads, quorum device vote changes and clean "leave remove").

use crate::NodeId;
use serde::{Deserialize, Serialize};

/// The largest vote count one node may carry (`<clusternode votes>` is 0..=255).
pub const MAX_NODE_VOTES: u32 = 255;

/// What one member node contributes to the quorum calculation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberVotes {
    /// The node.
    pub node: NodeId,
    /// Its votes (`<clusternode votes>`, default 1).
    pub votes: u32,
    /// The expected votes this node holds (the configured or administrator-set value).
    pub expected_votes: u32,
}

/// The inputs of one quorum calculation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumInput<'a> {
    /// Nodes in the installed view (disallowed nodes excluded by the caller).
    pub members: &'a [MemberVotes],
    /// Votes of the quorum device when it is a member (alive and polled), else `None`.
    pub qdisk_votes: Option<u32>,
    /// `<cman two_node="1">`.
    pub two_node: bool,
    /// The quorum of the previous calculation (0 before the first).
    pub previous_quorum: u32,
    /// Whether this change may lower the quorum (administrator action, reload, clean removal).
    pub allow_decrease: bool,
}

/// The result of one quorum calculation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumState {
    /// Votes present: member nodes plus the quorum device when it is a member.
    pub total_votes: u32,
    /// The highest expected votes among the members (what `cman_tool status` shows).
    pub expected_votes: u32,
    /// Votes needed to be quorate.
    pub quorum: u32,
    /// Whether `total_votes` reaches `quorum`.
    pub quorate: bool,
}

/// Strictly more than half of `votes`: `(votes + 2) / 2`, i.e. floor(votes / 2) + 1.
pub fn majority(votes: u32) -> u32 {
    votes / 2 + 1
}

/// Computes the quorum state as cman does.
pub fn compute(input: &QuorumInput<'_>) -> QuorumState {
    let node_votes: u32 = input
        .members
        .iter()
        .map(|m| m.votes)
        .fold(0, u32::saturating_add);
    let total_votes = node_votes.saturating_add(input.qdisk_votes.unwrap_or(0));
    let expected_votes = input
        .members
        .iter()
        .map(|m| m.expected_votes)
        .max()
        .unwrap_or(0);
    let mut quorum = majority(expected_votes).max(majority(total_votes));
    if !input.allow_decrease {
        quorum = quorum.max(input.previous_quorum);
    }
    if input.two_node && input.members.len() <= 2 {
        quorum = 1;
    }
    // A view always holds the node computing it; no member nodes means no quorum, even
    // if a quorum device is still reported alive.
    let quorate = !input.members.is_empty() && total_votes >= quorum;
    QuorumState {
        total_votes,
        expected_votes,
        quorum,
        quorate,
    }
}

/// Why `cman_tool expected -e N` (or `votes -v N`) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedError {
    /// The new quorum would be below half of the votes present or above all of them.
    /// Nothing was changed.
    OutOfRange {
        /// The requested expected votes.
        requested: u32,
        /// The quorum that value would give.
        quorum: u32,
        /// The votes present now.
        total_votes: u32,
    },
}

impl std::fmt::Display for ExpectedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedError::OutOfRange {
                requested,
                quorum,
                total_votes,
            } => write!(
                f,
                "expected votes {requested} would give quorum {quorum}, \
                 outside what the {total_votes} votes present allow"
            ),
        }
    }
}

impl std::error::Error for ExpectedError {}

/// Checks a new expected-votes value as `cman_tool expected` does: the resulting quorum
/// `max(majority(requested), majority(total))` must lie within `total/2 ..= total`.
/// Because of the `majority(total)` term, expected votes can never push quorum below a
/// majority of the votes present.
pub fn check_expected(requested: u32, total_votes: u32) -> Result<u32, ExpectedError> {
    let quorum = majority(requested).max(majority(total_votes));
    if quorum < total_votes / 2 || quorum > total_votes {
        return Err(ExpectedError::OutOfRange {
            requested,
            quorum,
            total_votes,
        });
    }
    Ok(quorum)
}

/// Expected votes every remaining member takes after a node leaves with `leave remove`:
/// the number of member nodes (a node count, as the original does, not a vote sum).
pub fn expected_after_remove(remaining_members: usize) -> u32 {
    u32::try_from(remaining_members).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
