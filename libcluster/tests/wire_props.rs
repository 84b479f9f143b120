//! Property tests of the wire envelope and body codec: what seals opens, any change to a
//! frame is refused, and no input makes `open` or `body::decode` panic.

use libcluster::wire::{self, body, ClusterKey, Header, WireError};
use libcluster::NodeId;
use proptest::collection::vec;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const MAGIC: [u8; 4] = *b"RCT1";

fn key() -> ClusterKey {
    ClusterKey::from_bytes(b"property-test key 0123456789".to_vec()).unwrap()
}

fn header_strategy() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 4]>(),
        wire::VERSION_MIN..=wire::VERSION_MAX,
        any::<u8>(),
        any::<u16>(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(
            |(magic, version, kind, cluster_id, sender, incarnation)| Header {
                magic,
                version,
                kind,
                cluster_id,
                sender: NodeId(sender),
                incarnation,
            },
        )
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..512)
}

/// Message shapes like the ones the protocols will define, to decode garbage as.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Heartbeat {
    from: NodeId,
    incarnation: u64,
    view: (u64, Vec<NodeId>),
    hears: Vec<NodeId>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum GroupMessage {
    Join {
        group: String,
        node: NodeId,
    },
    Leave {
        group: String,
        node: NodeId,
    },
    Deliver {
        group: String,
        seq: u64,
        payload: Vec<u8>,
    },
    State(BTreeMap<String, Option<(u32, bool)>>),
}

/// Decodes `b` as several types; only the absence of a panic matters here.
fn decode_as_everything(b: &[u8]) {
    let _ = body::decode::<Heartbeat>(b);
    let _ = body::decode::<GroupMessage>(b);
    let _ = body::decode::<Vec<String>>(b);
    let _ = body::decode::<&str>(b);
    let _ = body::decode::<(u8, i64, f64, char)>(b);
    let _ = body::decode::<Option<Box<GroupMessage>>>(b);
}

/// One change to a frame.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, value: u8 },
    Truncate { len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, n: usize },
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        (any::<usize>(), vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1..8usize).prop_map(|(at, n)| Mutation::Remove { at, n }),
    ]
}

fn apply(frame: &mut Vec<u8>, m: &Mutation) {
    let len = frame.len();
    match m {
        Mutation::Flip { at, mask } if len > 0 => frame[at % len] ^= mask,
        Mutation::Set { at, value } if len > 0 => frame[at % len] = *value,
        Mutation::Truncate { len: to } => frame.truncate(to % (len + 1)),
        Mutation::Insert { at, bytes } => {
            let at = at % (len + 1);
            frame.splice(at..at, bytes.iter().copied());
        }
        Mutation::Remove { at, n } if len > 0 => {
            let at = at % len;
            frame.drain(at..(at + n).min(len));
        }
        _ => {}
    }
}

proptest! {
    #[test]
    fn open_returns_exactly_what_was_sealed(h in header_strategy(), b in body_strategy()) {
        let frame = wire::seal(&h, &b, &key());
        prop_assert_eq!(frame.len(), wire::MIN_FRAME_LEN + b.len());
        let opened = wire::open(&frame, h.magic, h.cluster_id, &key()).unwrap();
        prop_assert_eq!(opened.header, h);
        prop_assert_eq!(opened.body, &b[..]);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        h in header_strategy(), b in body_strategy(), bit in any::<usize>(),
    ) {
        let mut frame = wire::seal(&h, &b, &key());
        let bit = bit % (frame.len() * 8);
        frame[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(wire::open(&frame, h.magic, h.cluster_id, &key()).is_err());
    }

    #[test]
    fn any_truncation_is_rejected(h in header_strategy(), b in body_strategy(), cut in any::<usize>()) {
        let frame = wire::seal(&h, &b, &key());
        let keep = cut % frame.len(); // 0..len: at least one byte goes
        prop_assert!(wire::open(&frame[..keep], h.magic, h.cluster_id, &key()).is_err());
    }

    #[test]
    fn any_extension_is_rejected(
        h in header_strategy(), b in body_strategy(), extra in vec(any::<u8>(), 1..64),
    ) {
        let mut frame = wire::seal(&h, &b, &key());
        frame.extend_from_slice(&extra);
        prop_assert!(wire::open(&frame, h.magic, h.cluster_id, &key()).is_err());
    }

    #[test]
    fn frame_sealed_with_another_key_is_bad_mac(
        h in header_strategy(), b in body_strategy(), other in vec(any::<u8>(), 16..128),
    ) {
        let other = ClusterKey::from_bytes(other).unwrap();
        prop_assume!(other != key());
        let frame = wire::seal(&h, &b, &other);
        prop_assert_eq!(wire::open(&frame, h.magic, h.cluster_id, &key()), Err(WireError::BadMac));
    }

    #[test]
    fn frame_of_another_cluster_id_is_foreign(
        h in header_strategy(), b in body_strategy(), ours in any::<u16>(),
    ) {
        prop_assume!(ours != h.cluster_id);
        let frame = wire::seal(&h, &b, &key());
        prop_assert_eq!(
            wire::open(&frame, h.magic, ours, &key()),
            Err(WireError::ForeignCluster { found: h.cluster_id, expected: ours })
        );
    }

    #[test]
    fn frame_of_another_protocol_family_is_bad_magic(
        h in header_strategy(), b in body_strategy(), expect in any::<[u8; 4]>(),
    ) {
        prop_assume!(expect != h.magic);
        let frame = wire::seal(&h, &b, &key());
        prop_assert_eq!(
            wire::open(&frame, expect, h.cluster_id, &key()),
            Err(WireError::BadMagic { found: h.magic, expected: expect })
        );
    }

    #[test]
    fn body_codec_roundtrips_messages(
        from in any::<u32>(), incarnation in any::<u64>(), view in any::<u64>(),
        members in vec(any::<u32>(), 0..40), group in ".{0,20}", payload in vec(any::<u8>(), 0..100),
    ) {
        let hb = Heartbeat {
            from: NodeId(from),
            incarnation,
            view: (view, members.iter().copied().map(NodeId).collect()),
            hears: members.into_iter().rev().map(NodeId).collect(),
        };
        prop_assert_eq!(body::decode::<Heartbeat>(&body::encode(&hb)).unwrap(), hb);
        let gm = GroupMessage::Deliver { group, seq: view, payload };
        prop_assert_eq!(body::decode::<GroupMessage>(&body::encode(&gm)).unwrap(), gm);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn open_never_panics_on_random_bytes(
        prefix in prop_oneof![
            Just(Vec::new()),
            // A plausible start, so the checks behind magic and version get exercised too.
            (any::<u8>(), any::<u16>()).prop_map(|(kind, flags)| {
                let mut p = MAGIC.to_vec();
                p.push(wire::VERSION_MAX);
                p.push(kind);
                p.extend_from_slice(&flags.to_le_bytes());
                p
            }),
        ],
        rest in vec(any::<u8>(), 0..300),
    ) {
        let frame = [prefix, rest].concat();
        if let Ok(opened) = wire::open(&frame, MAGIC, 0, &key()) {
            // Forging a MAC by chance would be a finding in itself.
            prop_assert!(false, "random bytes opened: {:?}", opened);
        }
    }

    #[test]
    fn open_never_panics_and_refuses_mutated_valid_frames(
        h in header_strategy(), b in body_strategy(), muts in vec(mutation_strategy(), 1..4),
    ) {
        let original = wire::seal(&h, &b, &key());
        let mut frame = original.clone();
        for m in &muts {
            apply(&mut frame, m);
        }
        match wire::open(&frame, h.magic, h.cluster_id, &key()) {
            // Mutations may cancel out (a byte flipped twice); anything else must be refused.
            Ok(opened) => {
                prop_assert_eq!(&frame, &original);
                decode_as_everything(opened.body);
            }
            // Formatting the reason is part of dropping a frame; it must not panic either.
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn body_decode_never_panics_on_random_bytes(b in vec(any::<u8>(), 0..256)) {
        decode_as_everything(&b);
    }

    #[test]
    fn body_decode_never_panics_on_mutated_valid_bodies(
        members in vec(any::<u32>(), 0..20), muts in vec(mutation_strategy(), 1..4),
    ) {
        let mut b = body::encode(&Heartbeat {
            from: NodeId(1),
            incarnation: 2,
            view: (3, members.iter().copied().map(NodeId).collect()),
            hears: members.into_iter().map(NodeId).collect(),
        });
        for m in &muts {
            apply(&mut b, m);
        }
        decode_as_everything(&b);
    }
}
