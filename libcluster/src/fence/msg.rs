//! The messages fence domain members exchange over the `fenced:default` group, and their codec.
//!
//! A payload is one version byte ([`PROTOCOL_VERSION`]) followed by the postcard body of
//! [`DomainMsg`]. Append variants at the end only: postcard encodes the variant index.

use crate::ipc::fence::FenceRecord;
use crate::wire::body;
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The protocol version byte leading every payload.
pub const PROTOCOL_VERSION: u8 = 1;

/// Identity of one membership change of the domain group: what every member of it sees
/// alike. (The joined and left lists are not part of it: when partitions merge, each side
/// sees the other join.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeId {
    /// cmand's view epoch it happened in.
    pub generation: u64,
    /// Members after it, sorted.
    pub members: Vec<u32>,
}

/// A member's replicated state, sent in its start message for each change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateBody {
    /// Whether the sender has full state (it completed a change as a member before).
    pub complete: bool,
    /// Victims: (node, incarnation), sorted by node.
    pub victims: Vec<(u32, u64)>,
    /// The last fencing of every node the sender knows of, sorted by node.
    pub last: Vec<FenceRecord>,
}

/// One domain message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DomainMsg {
    /// Sent by every member after each change (C3's START).
    Start {
        /// The change it answers.
        change: ChangeId,
        /// The sender's state.
        state: StateBody,
    },
    /// A victim's fencing completed (C3's VICTIM_DONE): every member records it.
    VictimDone(FenceRecord),
    /// `fence_ack_manual` on the sender.
    Ack {
        /// The acknowledged node.
        node: u32,
        /// The sender's wall clock.
        time_unix_s: i64,
    },
    /// `fence_node` fenced a node from the sender (C3's EXTERNAL).
    External(FenceRecord),
    /// The sender leaves the domain cleanly next: do not fence it for that.
    Leaving,
}

/// Why a domain payload was refused. It is logged and ignored; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceError {
    /// Empty payload.
    Empty {
        /// The sender.
        from: NodeId,
    },
    /// A protocol version this node does not speak.
    Version {
        /// The sender.
        from: NodeId,
        /// The version byte found.
        found: u8,
    },
    /// The body did not decode.
    Decode {
        /// The sender.
        from: NodeId,
        /// What the codec said.
        reason: String,
    },
}

impl fmt::Display for FenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FenceError::Empty { from } => write!(f, "empty domain message from node {from}"),
            FenceError::Version { from, found } => write!(
                f,
                "domain message from node {from} has protocol version {found}, we speak {PROTOCOL_VERSION}"
            ),
            FenceError::Decode { from, reason } => {
                write!(f, "undecodable domain message from node {from}: {reason}")
            }
        }
    }
}

impl std::error::Error for FenceError {}

impl DomainMsg {
    /// The payload for [`super::Action::Send`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        out.extend(body::encode(self));
        out
    }

    /// Decodes a payload from `from`.
    pub fn decode(from: NodeId, payload: &[u8]) -> Result<DomainMsg, FenceError> {
        let (&version, rest) = payload.split_first().ok_or(FenceError::Empty { from })?;
        if version != PROTOCOL_VERSION {
            return Err(FenceError::Version {
                from,
                found: version,
            });
        }
        body::decode(rest).map_err(|e| FenceError::Decode {
            from,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::fence::FenceHow;
    use proptest::prelude::*;

    fn record() -> FenceRecord {
        FenceRecord {
            node: 3,
            incarnation: 7,
            master: 1,
            how: FenceHow::Agent,
            method: Some("power".into()),
            device: Some("apc".into()),
            time_unix_s: 1_700_000_000,
        }
    }

    #[test]
    fn every_message_kind_roundtrips() {
        let msgs = [
            DomainMsg::Start {
                change: ChangeId {
                    generation: 4,
                    members: vec![1, 2],
                },
                state: StateBody {
                    complete: true,
                    victims: vec![(3, 7)],
                    last: vec![record()],
                },
            },
            DomainMsg::VictimDone(record()),
            DomainMsg::Ack {
                node: 3,
                time_unix_s: 5,
            },
            DomainMsg::External(record()),
            DomainMsg::Leaving,
        ];
        for m in msgs {
            assert_eq!(DomainMsg::decode(NodeId(1), &m.encode()), Ok(m));
        }
    }

    #[test]
    fn a_foreign_version_or_an_empty_payload_is_refused() {
        let mut p = DomainMsg::Leaving.encode();
        p[0] = 9;
        assert_eq!(
            DomainMsg::decode(NodeId(2), &p),
            Err(FenceError::Version {
                from: NodeId(2),
                found: 9
            })
        );
        assert_eq!(
            DomainMsg::decode(NodeId(2), &[]),
            Err(FenceError::Empty { from: NodeId(2) })
        );
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic_the_decoder(p in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = DomainMsg::decode(NodeId(1), &p);
        }
    }
}
