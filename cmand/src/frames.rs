//! Membership messages in and out of the authenticated envelope (`libcluster::wire`).
//!
//! Every [`Msg`] travels in one frame of the membership family ([`MAGIC_MEMBERSHIP`]); the
//! header's kind byte names the variant (table below, append-only) and must agree with the
//! decoded body, so a frame whose kind and body disagree is dropped like any malformed one.
//!
//! | kind | message     | kind | message    |
//! |------|-------------|------|------------|
//! | 1    | heartbeat   | 7    | data       |
//! | 2    | propose     | 8    | ordered    |
//! | 3    | accept      | 9    | retransmit |
//! | 4    | nack        | 10   | leave      |
//! | 5    | commit      | 11   | kill       |
//! | 6    | commit-ack  | 12   | config-push|

use libcluster::membership::Msg;
use libcluster::wire::{self, ClusterKey, Header, WireError, MAGIC_MEMBERSHIP};
use libcluster::NodeId;

/// The header kind byte of `msg`.
pub fn kind_of(msg: &Msg) -> u8 {
    match msg {
        Msg::Heartbeat(_) => 1,
        Msg::Propose(_) => 2,
        Msg::Accept(_) => 3,
        Msg::Nack { .. } => 4,
        Msg::Commit(_) => 5,
        Msg::CommitAck { .. } => 6,
        Msg::Data { .. } => 7,
        Msg::Ordered { .. } => 8,
        Msg::Retransmit { .. } => 9,
        Msg::Leave { .. } => 10,
        Msg::Kill { .. } => 11,
        Msg::ConfigPush { .. } => 12,
    }
}

/// Who seals our frames: the cluster, this node and its incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender {
    /// 16-bit cluster id.
    pub cluster_id: u16,
    /// This node.
    pub me: NodeId,
    /// This daemon start's incarnation.
    pub incarnation: u64,
}

/// Seals `msg` into one datagram; fails only when it would exceed the datagram limit.
pub fn seal(msg: &Msg, from: Sender, key: &ClusterKey) -> Result<Vec<u8>, WireError> {
    let body = wire::body::try_encode(msg)?;
    let h = Header::new(
        MAGIC_MEMBERSHIP,
        kind_of(msg),
        from.cluster_id,
        from.me,
        from.incarnation,
    );
    wire::try_seal(&h, &body, key)
}

/// Why a received datagram was dropped; each reason is one `drop_<name>` counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The envelope was refused (length, magic, version, crc, MAC, cluster id...).
    Wire(WireError),
    /// The envelope is authentic but the body is not a membership message.
    Decode(String),
    /// The header's kind byte does not name the decoded message.
    Kind {
        /// Kind in the header.
        header: u8,
        /// Kind of the decoded body.
        body: u8,
    },
}

impl Dropped {
    /// The counter suffix: a [`WireError::counter_name`], `decode` or `kind`.
    pub fn counter_name(&self) -> &'static str {
        match self {
            Dropped::Wire(e) => e.counter_name(),
            Dropped::Decode(_) => "decode",
            Dropped::Kind { .. } => "kind",
        }
    }
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::Wire(e) => write!(f, "{e}"),
            Dropped::Decode(why) => write!(f, "body is not a membership message: {why}"),
            Dropped::Kind { header, body } => {
                write!(f, "header says kind {header} but the body is kind {body}")
            }
        }
    }
}

/// Opens a datagram: envelope checks, then the body as a [`Msg`] of the header's kind.
pub fn open(frame: &[u8], cluster_id: u16, key: &ClusterKey) -> Result<(Header, Msg), Dropped> {
    let opened = wire::open(frame, MAGIC_MEMBERSHIP, cluster_id, key).map_err(Dropped::Wire)?;
    let msg: Msg = wire::body::decode(opened.body).map_err(|e| match e {
        WireError::Body(why) => Dropped::Decode(why),
        other => Dropped::Decode(other.to_string()),
    })?;
    let body = kind_of(&msg);
    if body != opened.header.kind {
        return Err(Dropped::Kind {
            header: opened.header.kind,
            body,
        });
    }
    Ok((opened.header, msg))
}

/// Every counter suffix [`Dropped::counter_name`] can return, in check order, plus the
/// shell's own (`unknown_sender`, `own_id`, `wrong_address`), so status shows them all.
/// `body` is left out: the shell decodes bodies itself and counts those failures as `decode`.
pub fn drop_counter_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = WireError::counter_names()
        .iter()
        .copied()
        .filter(|n| *n != "body")
        .collect();
    names.extend([
        "decode",
        "kind",
        "unknown_sender",
        "own_id",
        "wrong_address",
    ]);
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcluster::membership::{KillReason, ViewId};

    fn key(b: u8) -> ClusterKey {
        ClusterKey::from_bytes(vec![b; 32]).unwrap()
    }

    const FROM: Sender = Sender {
        cluster_id: 77,
        me: NodeId(2),
        incarnation: 9,
    };

    fn samples() -> Vec<Msg> {
        vec![
            Msg::Leave { remove: true },
            Msg::Kill {
                reason: KillReason::CmanTool,
                target_incarnation: 3,
                quorate: true,
            },
            Msg::CommitAck {
                view: ViewId::default(),
            },
            Msg::ConfigPush {
                version: 4,
                text: "<cluster/>".into(),
            },
        ]
    }

    #[test]
    fn sealed_messages_open_with_the_same_key_and_carry_the_sender() {
        for msg in samples() {
            let frame = seal(&msg, FROM, &key(1)).unwrap();
            let (h, back) = open(&frame, 77, &key(1)).unwrap();
            assert_eq!(back, msg);
            assert_eq!((h.sender, h.incarnation), (NodeId(2), 9));
            assert_eq!(h.kind, kind_of(&msg));
        }
    }

    #[test]
    fn another_key_or_cluster_is_refused_with_its_counter() {
        let frame = seal(&samples()[0], FROM, &key(1)).unwrap();
        let e = open(&frame, 77, &key(2)).unwrap_err();
        assert_eq!(e.counter_name(), "bad_mac");
        let e = open(&frame, 78, &key(1)).unwrap_err();
        assert_eq!(e.counter_name(), "foreign_cluster");
        assert_eq!(
            open(b"junk", 77, &key(1)).unwrap_err().counter_name(),
            "short"
        );
    }

    #[test]
    fn an_authentic_frame_with_a_foreign_body_or_kind_is_refused() {
        let h = Header::new(MAGIC_MEMBERSHIP, 10, 77, NodeId(2), 9);
        let frame = wire::seal(&h, &[0xff, 0xff, 0xff], &key(1));
        assert_eq!(
            open(&frame, 77, &key(1)).unwrap_err().counter_name(),
            "decode"
        );
        let body = wire::body::encode(&Msg::Leave { remove: false });
        let h = Header::new(MAGIC_MEMBERSHIP, 1, 77, NodeId(2), 9);
        let frame = wire::seal(&h, &body, &key(1));
        assert_eq!(
            open(&frame, 77, &key(1)).unwrap_err(),
            Dropped::Kind {
                header: 1,
                body: 10
            }
        );
    }

    #[test]
    fn counter_names_are_unique_and_cover_every_drop() {
        let names = drop_counter_names();
        let set: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(set.len(), names.len());
        assert!(names.contains(&"bad_mac") && names.contains(&"decode"));
        assert!(!names.contains(&"body"));
    }
}
