//! Checked-in sample frames of every kind in IPC version 1. If one of these fails, the byte
//! format changed: that needs a new IPC_VERSION, not a new sample.

use libcluster::ipc::{ErrorCode, Frame, FrameDecoder, IPC_VERSION};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Req {
    Status,
    Relocate { service: String, node: u32 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Resp {
    quorate: bool,
    votes: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Ev {
    ViewChanged { epoch: u64, members: Vec<u32> },
}

type F = Frame<Req, Resp, Ev>;

fn samples() -> Vec<(F, &'static [u8])> {
    vec![
        (
            Frame::Request {
                id: 1,
                body: Req::Status,
            },
            &[7, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0],
        ),
        (
            Frame::Request {
                id: 0x0102_0304,
                body: Req::Relocate {
                    service: "vm:a".into(),
                    node: 300,
                },
            },
            &[
                14, 0, 0, 0, 1, 1, 4, 3, 2, 1, 1, 4, b'v', b'm', b':', b'a', 0xac, 0x02,
            ],
        ),
        (
            Frame::Response {
                id: 1,
                body: Resp {
                    quorate: true,
                    votes: 3,
                },
            },
            &[8, 0, 0, 0, 1, 2, 1, 0, 0, 0, 1, 3],
        ),
        (
            Frame::Error {
                id: 5,
                code: ErrorCode::DENIED,
                message: "no".into(),
            },
            &[10, 0, 0, 0, 1, 3, 5, 0, 0, 0, 1, 0, b'n', b'o'],
        ),
        (
            Frame::Event {
                seq: 258,
                body: Ev::ViewChanged {
                    epoch: 2,
                    members: vec![1, 2],
                },
            },
            &[15, 0, 0, 0, 1, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 2, 2, 1, 2],
        ),
        (Frame::Subscribe { id: 2 }, &[6, 0, 0, 0, 1, 5, 2, 0, 0, 0]),
        (Frame::Subscribed { id: 2 }, &[6, 0, 0, 0, 1, 6, 2, 0, 0, 0]),
    ]
}

#[test]
fn version_one_is_the_version_of_these_samples() {
    assert_eq!(IPC_VERSION, 1);
}

#[test]
fn samples_encode_to_their_checked_in_bytes() {
    for (frame, bytes) in samples() {
        assert_eq!(frame.encode().unwrap(), bytes, "{frame:?}");
    }
}

#[test]
fn samples_decode_from_their_checked_in_bytes() {
    for (frame, bytes) in samples() {
        let mut dec = FrameDecoder::default();
        dec.push(bytes);
        assert_eq!(dec.next_frame().unwrap(), Some(frame));
        assert_eq!(dec.buffered(), 0);
    }
}
