//! Checked-in sample frames, so an accidental change to the frame layout or the body
//! encoding fails loudly.
//!
//! The frames in `tests/data/frames/` were sealed with the fixed test key below. If the
//! format changes *on purpose* (with a version bump), regenerate them with
//!
//! ```text
//! cargo test -p libcluster --test wire_samples -- --ignored regenerate_sample_frames
//! ```
//!
//! and commit the new files together with the change.

use libcluster::wire::{self, body, ClusterKey, Header};
use libcluster::NodeId;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The test protocol family; its kinds are the numbers in `samples()`.
const MAGIC_TEST: [u8; 4] = *b"RCT1";
/// cluster_id_from_name("mycluster").
const CLUSTER_ID: u16 = 56756;
const TEST_KEY: &[u8] = b"libcluster sample frames key, not secret";

/// A message with the kinds of fields our protocols carry.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
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

struct Sample {
    file: &'static str,
    header: Header,
    message: TestMessage,
}

fn samples() -> Vec<Sample> {
    let h = |kind, sender, incarnation| Header {
        magic: MAGIC_TEST,
        version: 1,
        kind,
        cluster_id: CLUSTER_ID,
        sender: NodeId(sender),
        incarnation,
    };
    vec![
        Sample {
            file: "v1-kind1-empty.bin",
            header: h(1, 1, 1),
            message: TestMessage::Empty,
        },
        Sample {
            file: "v1-kind2-beat.bin",
            header: h(2, 3, 0x0123_4567_89ab_cdef),
            message: TestMessage::Beat {
                from: NodeId(3),
                incarnation: 0x0123_4567_89ab_cdef,
                seq: 300,
                hears: vec![NodeId(1), NodeId(2), NodeId(3), NodeId(4096)],
            },
        },
        Sample {
            file: "v1-kind3-text.bin",
            header: h(3, u32::MAX, u64::MAX),
            message: TestMessage::Text {
                group: "rgmanager".into(),
                payload: (0u8..=20).collect(),
                flag: Some(true),
            },
        },
    ]
}

fn frames_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/frames")
}

fn key() -> ClusterKey {
    ClusterKey::from_bytes(TEST_KEY.to_vec()).unwrap()
}

#[test]
fn checked_in_frames_open_and_decode_to_the_expected_messages() {
    for s in samples() {
        let path = frames_dir().join(s.file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let opened = wire::open(&bytes, MAGIC_TEST, CLUSTER_ID, &key())
            .unwrap_or_else(|e| panic!("{}: {e}", s.file));
        assert_eq!(opened.header, s.header, "{}", s.file);
        let message: TestMessage =
            body::decode(opened.body).unwrap_or_else(|e| panic!("{}: {e}", s.file));
        assert_eq!(message, s.message, "{}", s.file);
    }
}

#[test]
fn sealing_today_reproduces_the_checked_in_bytes() {
    for s in samples() {
        let path = frames_dir().join(s.file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let sealed = wire::seal(&s.header, &body::encode(&s.message), &key());
        assert_eq!(
            sealed, bytes,
            "{}: encoding changed; bump the version?",
            s.file
        );
    }
}

#[test]
fn checked_in_frames_start_with_the_documented_header() {
    let bytes = std::fs::read(frames_dir().join("v1-kind2-beat.bin")).unwrap();
    assert_eq!(&bytes[0..4], b"RCT1");
    assert_eq!(bytes[4], 1, "version");
    assert_eq!(bytes[5], 2, "kind");
    assert_eq!(u16::from_le_bytes([bytes[12], bytes[13]]), CLUSTER_ID);
    assert_eq!(
        u32::from_le_bytes(bytes[16..20].try_into().unwrap()),
        3,
        "sender"
    );
}

#[test]
#[ignore = "writes tests/data/frames; run by hand after an intended format change"]
fn regenerate_sample_frames() {
    std::fs::create_dir_all(frames_dir()).unwrap();
    for s in samples() {
        let sealed = wire::seal(&s.header, &body::encode(&s.message), &key());
        std::fs::write(frames_dir().join(s.file), sealed).unwrap();
    }
}
