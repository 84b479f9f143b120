//! Feeds arbitrary bytes to `wire::open` and `wire::body::decode`.
//!
//! Property: nothing panics, whatever the bytes; and random bytes never pass the MAC. The
//! fuzzer cannot forge an HMAC, so to reach the body decoder through a real envelope the
//! input is also sealed with the fixed key and opened again.
#![no_main]

use libcluster::wire::{self, body, ClusterKey, Header, MAGIC_GROUP, MAGIC_MEMBERSHIP};
use libcluster::NodeId;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The key of the checked-in sample frames (libcluster/tests/wire_samples.rs), so those
/// frames make a useful seed corpus.
const KEY: &[u8] = b"libcluster sample frames key, not secret";
const MAGIC_TEST: [u8; 4] = *b"RCT1";
const CLUSTER_ID: u16 = 56756;

// Message shapes like the protocols' own; only decoding matters, so fields go unread.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
enum TestMessage {
    Empty,
    Beat {
        from: NodeId,
        incarnation: u64,
        seq: u64,
        hears: Vec<NodeId>,
    },
    Text {
        group: String,
        payload: Vec<u8>,
        flag: Option<bool>,
    },
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct Nested<'a> {
    name: &'a str,
    members: BTreeMap<u32, (bool, Option<u64>)>,
    history: Vec<(i64, f32, char)>,
}

fn key() -> &'static ClusterKey {
    static KEY_CELL: OnceLock<ClusterKey> = OnceLock::new();
    KEY_CELL.get_or_init(|| ClusterKey::from_bytes(KEY.to_vec()).expect("fixed key is valid"))
}

fn decode_all(b: &[u8]) {
    let _ = body::decode::<TestMessage>(b);
    let _ = body::decode::<Nested>(b);
    let _ = body::decode::<Vec<String>>(b);
    let _ = body::decode::<(u8, u16, u32, u64, u128)>(b);
}

fuzz_target!(|data: &[u8]| {
    for magic in [MAGIC_TEST, MAGIC_MEMBERSHIP, MAGIC_GROUP] {
        match wire::open(data, magic, CLUSTER_ID, key()) {
            Ok(opened) => decode_all(opened.body),
            Err(e) => {
                let _ = (e.to_string(), e.counter_name());
            }
        }
    }
    decode_all(data);

    // Through a real envelope: what seals must open, to the same body.
    let h = Header::new(
        MAGIC_TEST,
        data.first().copied().unwrap_or(0),
        CLUSTER_ID,
        NodeId(1),
        1,
    );
    if let Ok(frame) = wire::try_seal(&h, data, key()) {
        let opened = wire::open(&frame, MAGIC_TEST, CLUSTER_ID, key()).expect("sealed frame opens");
        assert_eq!(opened.body, data);
        decode_all(opened.body);
    }
});
