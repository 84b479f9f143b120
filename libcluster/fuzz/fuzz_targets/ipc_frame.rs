//! Feeds arbitrary bytes to the IPC frame decoder, whole and in chunks.
//!
//! Property: nothing panics; a fatal framing error stops the decoder for good; feeding the
//! same bytes whole or split at an arbitrary point yields the same frames (the decoder is
//! incremental, and a daemon reads whatever the socket returns).
#![no_main]

use libcluster::ipc::{Frame, FrameDecoder};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Req {
    Status,
    Kill { node: u32 },
    Send { group: String, payload: Vec<u8> },
}

type Decoded = Vec<Result<Frame<Req, Vec<u32>, (u64, String)>, String>>;

fn drain(dec: &mut FrameDecoder, out: &mut Decoded) -> bool {
    loop {
        match dec.next_frame::<Req, Vec<u32>, (u64, String)>() {
            Ok(Some(f)) => out.push(Ok(f)),
            Ok(None) => return true,
            Err(e) => {
                let fatal = e.is_fatal();
                out.push(Err(e.to_string()));
                if fatal {
                    return false;
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| *b as usize % (data.len() + 1)).unwrap_or(0);

    let mut whole = Decoded::new();
    let mut dec = FrameDecoder::new(64 * 1024);
    dec.push(data);
    drain(&mut dec, &mut whole);

    let mut parts = Decoded::new();
    let mut dec = FrameDecoder::new(64 * 1024);
    dec.push(&data[..split]);
    if drain(&mut dec, &mut parts) {
        dec.push(&data[split..]);
        drain(&mut dec, &mut parts);
    }
    assert_eq!(format!("{whole:?}"), format!("{parts:?}"));
});
