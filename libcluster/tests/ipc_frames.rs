//! Property tests of the local API frames: any byte stream decodes without panicking, and
//! valid streams reassemble exactly however they are cut.

use libcluster::ipc::{ErrorCode, Frame, FrameDecoder, IpcError, IPC_VERSION};
use proptest::collection::vec;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Req {
    Status,
    Relocate { service: String, node: Option<u32> },
    Bulk(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Resp {
    Done,
    Members(Vec<(u32, String)>),
    Count(u64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Ev {
    ViewChanged {
        epoch: u64,
        members: Vec<u32>,
        quorate: bool,
    },
    Note(String),
}

type F = Frame<Req, Resp, Ev>;

fn req() -> impl Strategy<Value = Req> {
    prop_oneof![
        Just(Req::Status),
        (".{0,20}", any::<Option<u32>>())
            .prop_map(|(service, node)| Req::Relocate { service, node }),
        vec(any::<u8>(), 0..300).prop_map(Req::Bulk),
    ]
}

fn resp() -> impl Strategy<Value = Resp> {
    prop_oneof![
        Just(Resp::Done),
        vec((any::<u32>(), "[a-z0-9.-]{0,12}"), 0..6).prop_map(Resp::Members),
        any::<u64>().prop_map(Resp::Count),
    ]
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (any::<u64>(), vec(any::<u32>(), 0..8), any::<bool>()).prop_map(
            |(epoch, members, quorate)| Ev::ViewChanged {
                epoch,
                members,
                quorate
            }
        ),
        ".{0,40}".prop_map(Ev::Note),
    ]
}

fn frame() -> impl Strategy<Value = F> {
    prop_oneof![
        (any::<u32>(), req()).prop_map(|(id, body)| Frame::Request { id, body }),
        (any::<u32>(), resp()).prop_map(|(id, body)| Frame::Response { id, body }),
        (any::<u32>(), any::<u16>(), ".{0,40}").prop_map(|(id, code, message)| Frame::Error {
            id,
            code: ErrorCode(code),
            message
        }),
        (any::<u64>(), ev()).prop_map(|(seq, body)| Frame::Event { seq, body }),
        any::<u32>().prop_map(|id| Frame::Subscribe { id }),
        any::<u32>().prop_map(|id| Frame::Subscribed { id }),
    ]
}

/// Feeds `chunks` one by one, draining frames after each; stops at the first fatal error.
fn decode_chunks(chunks: &[&[u8]]) -> (Vec<Result<F, IpcError>>, FrameDecoder) {
    let mut dec = FrameDecoder::new(4096);
    let mut out = Vec::new();
    for chunk in chunks {
        dec.push(chunk);
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => out.push(Ok(f)),
                Ok(None) => break,
                Err(e) if e.is_fatal() => {
                    out.push(Err(e));
                    return (out, dec);
                }
                Err(e) => out.push(Err(e)),
            }
        }
    }
    (out, dec)
}

/// Cuts `bytes` at the given positions (taken modulo the length, in any order).
fn cut<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for to in at.into_iter().chain([bytes.len()]) {
        chunks.push(&bytes[from..to]);
        from = to;
    }
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..1024), cuts in vec(any::<usize>(), 0..6)) {
        let (out, _) = decode_chunks(&cut(&bytes, &cuts));
        // Each decoded frame consumed at least a header, so the output is bounded.
        prop_assert!(out.len() <= bytes.len() / 6 + 1);
    }

    #[test]
    fn random_payloads_behind_a_valid_header_never_panic(
        kind in 0u8..8,
        payload in vec(any::<u8>(), 0..256),
        cuts in vec(any::<usize>(), 0..4),
    ) {
        // Random bytes rarely pass the header checks; this reaches every payload decoder.
        let mut bytes = ((payload.len() + 2) as u32).to_le_bytes().to_vec();
        bytes.extend([IPC_VERSION, kind]);
        bytes.extend(&payload);
        let (out, dec) = decode_chunks(&cut(&bytes, &cuts));
        prop_assert_eq!(out.len(), 1);
        if (1..=6).contains(&kind) {
            prop_assert_eq!(dec.buffered(), 0);
        }
    }

    #[test]
    fn mutated_frames_decode_or_fail_cleanly(
        frames in vec(frame(), 1..4),
        edits in vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4),
        cuts in vec(any::<usize>(), 0..4),
    ) {
        let mut bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode().unwrap()).collect();
        for (at, value, how) in edits {
            let at = at % bytes.len().max(1);
            match how {
                0 if !bytes.is_empty() => bytes[at] ^= value | 1,
                1 => bytes.insert(at, value),
                _ => bytes.truncate(at),
            }
        }
        let (out, _) = decode_chunks(&cut(&bytes, &cuts));
        prop_assert!(out.len() <= bytes.len() / 6 + 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn split_streams_reassemble_exactly(frames in vec(frame(), 1..8), cuts in vec(any::<usize>(), 0..12)) {
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode().unwrap()).collect();
        let (out, dec) = decode_chunks(&cut(&bytes, &cuts));
        let decoded: Vec<F> = out.into_iter().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded, frames);
        prop_assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn a_frame_cut_short_is_never_returned(frame in frame(), keep in any::<usize>()) {
        let bytes = frame.encode().unwrap();
        let keep = keep % bytes.len();
        let (out, dec) = decode_chunks(&[&bytes[..keep]]);
        prop_assert!(out.is_empty());
        prop_assert_eq!(dec.buffered(), keep);
    }
}
