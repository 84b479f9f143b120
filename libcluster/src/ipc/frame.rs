//! Frames and the incremental decoder.
//!
//! Payload of each kind, after the 6-byte header (all integers little-endian):
//!
//! | kind | name       | payload                                   |
//! |------|------------|-------------------------------------------|
//! | 1    | Request    | id u32, postcard body                     |
//! | 2    | Response   | id u32, postcard body                     |
//! | 3    | Error      | id u32, code u16, message (UTF-8, rest)   |
//! | 4    | Event      | seq u64, postcard body                    |
//! | 5    | Subscribe  | id u32                                    |
//! | 6    | Subscribed | id u32                                    |
//!
//! Kind numbers are append-only and never reused.

use super::{ErrorCode, IpcError, IPC_VERSION, MAX_FRAME_LEN};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;

/// Bytes before the kind-specific payload: length (4), version (1), kind (1).
pub const HEADER_LEN: usize = 6;

/// The length field covers the version and kind bytes, so it is never below this.
const MIN_LEN_FIELD: u32 = 2;

/// The kind byte of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrameKind {
    /// A client asks something of the daemon.
    Request = 1,
    /// The daemon's answer to the request with the same id.
    Response = 2,
    /// The daemon refused or failed the request with the same id (id 0: the connection).
    Error = 3,
    /// Something happened in the daemon; sent only to subscribed connections.
    Event = 4,
    /// A client asks for the event stream on this connection.
    Subscribe = 5,
    /// The daemon confirms a subscription: every event published from now on follows.
    Subscribed = 6,
}

impl FrameKind {
    /// The kind with this byte, if any.
    pub fn from_u8(byte: u8) -> Option<FrameKind> {
        Some(match byte {
            1 => FrameKind::Request,
            2 => FrameKind::Response,
            3 => FrameKind::Error,
            4 => FrameKind::Event,
            5 => FrameKind::Subscribe,
            6 => FrameKind::Subscribed,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            FrameKind::Request => "request",
            FrameKind::Response => "response",
            FrameKind::Error => "error",
            FrameKind::Event => "event",
            FrameKind::Subscribe => "subscribe",
            FrameKind::Subscribed => "subscribed",
        }
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One message of the local API, generic over a daemon's request, response and event types.
///
/// Request ids are chosen by the client (non-zero, unique among its outstanding requests);
/// the daemon echoes them. An `Error` with id 0 concerns the whole connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame<Req, Resp, Ev> {
    /// A client asks something of the daemon.
    Request {
        /// Chosen by the client, echoed in the answer.
        id: u32,
        /// The daemon-specific request.
        body: Req,
    },
    /// The daemon's answer.
    Response {
        /// The id of the request answered.
        id: u32,
        /// The daemon-specific response.
        body: Resp,
    },
    /// The daemon refused or failed a request.
    Error {
        /// The id of the request refused, 0 when it is about the connection.
        id: u32,
        /// Why, as a number a program can act on.
        code: ErrorCode,
        /// Why, for a human.
        message: String,
    },
    /// Something happened in the daemon.
    Event {
        /// The daemon's event counter: consecutive events differ by one, so a gap is visible.
        seq: u64,
        /// The daemon-specific event.
        body: Ev,
    },
    /// A client asks for the event stream on this connection.
    Subscribe {
        /// Chosen by the client, echoed in `Subscribed`.
        id: u32,
    },
    /// The daemon confirms the subscription with this id.
    Subscribed {
        /// The id of the `Subscribe` confirmed.
        id: u32,
    },
}

impl<Req, Resp, Ev> Frame<Req, Resp, Ev> {
    /// The kind byte this frame is written with.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Request { .. } => FrameKind::Request,
            Frame::Response { .. } => FrameKind::Response,
            Frame::Error { .. } => FrameKind::Error,
            Frame::Event { .. } => FrameKind::Event,
            Frame::Subscribe { .. } => FrameKind::Subscribe,
            Frame::Subscribed { .. } => FrameKind::Subscribed,
        }
    }
}

impl<Req: Serialize, Resp: Serialize, Ev: Serialize> Frame<Req, Resp, Ev> {
    /// The frame's bytes, length field included, within [`MAX_FRAME_LEN`].
    pub fn encode(&self) -> Result<Vec<u8>, IpcError> {
        self.encode_with_limit(MAX_FRAME_LEN)
    }

    /// The frame's bytes, refusing a frame whose length field would exceed `max_len`.
    pub fn encode_with_limit(&self, max_len: u32) -> Result<Vec<u8>, IpcError> {
        let kind = self.kind();
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&[0, 0, 0, 0, IPC_VERSION, kind as u8]);
        let out = match self {
            Frame::Request { id, body } => body_into(kind, body, with_u32(out, *id))?,
            Frame::Response { id, body } => body_into(kind, body, with_u32(out, *id))?,
            Frame::Event { seq, body } => {
                out.extend_from_slice(&seq.to_le_bytes());
                body_into(kind, body, out)?
            }
            Frame::Error { id, code, message } => {
                let mut out = with_u32(out, *id);
                out.extend_from_slice(&code.0.to_le_bytes());
                out.extend_from_slice(message.as_bytes());
                out
            }
            Frame::Subscribe { id } | Frame::Subscribed { id } => with_u32(out, *id),
        };
        let len = (out.len() - 4) as u64;
        match u32::try_from(len) {
            Ok(field) if field <= max_len => {
                let mut out = out;
                out[..4].copy_from_slice(&field.to_le_bytes());
                Ok(out)
            }
            _ => Err(IpcError::Oversize { len, max: max_len }),
        }
    }
}

fn with_u32(mut out: Vec<u8>, value: u32) -> Vec<u8> {
    out.extend_from_slice(&value.to_le_bytes());
    out
}

fn body_into<T: Serialize>(kind: FrameKind, body: &T, out: Vec<u8>) -> Result<Vec<u8>, IpcError> {
    postcard::to_extend(body, out).map_err(|e| IpcError::Encode {
        kind,
        reason: e.to_string(),
    })
}

/// Splits a byte stream into frames, however the bytes arrive: a frame cut across several
/// reads, or several frames in one read.
///
/// Decoding never panics. Framing is checked as early as the bytes allow: an oversize
/// length is refused as soon as the 4 length bytes are in, before any of the body is
/// buffered. After a fatal error ([`IpcError::is_fatal`]) the decoder keeps returning that
/// error and ignores further bytes.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` before this offset belong to frames already returned.
    start: usize,
    max_len: u32,
    failed: Option<IpcError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    /// A decoder refusing frames whose length field exceeds `max_len`.
    pub fn new(max_len: u32) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_len,
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        // Drop consumed bytes once they are at least half the buffer: amortized O(1) per byte.
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame<Req, Resp, Ev>(&mut self) -> Result<Option<Frame<Req, Resp, Ev>>, IpcError>
    where
        Req: DeserializeOwned,
        Resp: DeserializeOwned,
        Ev: DeserializeOwned,
    {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let kind = match self.check_header() {
            Ok(Some(kind)) => kind,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                return Err(e);
            }
        };
        let avail = &self.buf[self.start..];
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        let total = 4 + len;
        if avail.len() < total {
            return Ok(None);
        }
        let payload = &avail[HEADER_LEN..total];
        let frame = decode_payload(kind, payload);
        self.start += total;
        frame.map(Some)
    }

    /// Checks whatever part of the next header has arrived; the kind once all of it has.
    fn check_header(&self) -> Result<Option<FrameKind>, IpcError> {
        let avail = &self.buf[self.start..];
        let Some(len_bytes) = avail.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        if len > self.max_len {
            return Err(IpcError::Oversize {
                len: u64::from(len),
                max: self.max_len,
            });
        }
        if len < MIN_LEN_FIELD {
            return Err(IpcError::TooShort { len });
        }
        if let Some(&version) = avail.get(4) {
            if version != IPC_VERSION {
                return Err(IpcError::UnsupportedVersion {
                    found: version,
                    supported: IPC_VERSION,
                });
            }
        }
        match avail.get(5) {
            None => Ok(None),
            Some(&byte) => FrameKind::from_u8(byte)
                .map(Some)
                .ok_or(IpcError::UnknownKind { kind: byte }),
        }
    }
}

/// Decodes the payload of one well-delimited frame; every error here is a `Body` error.
fn decode_payload<Req, Resp, Ev>(
    kind: FrameKind,
    payload: &[u8],
) -> Result<Frame<Req, Resp, Ev>, IpcError>
where
    Req: DeserializeOwned,
    Resp: DeserializeOwned,
    Ev: DeserializeOwned,
{
    let bad = |id: Option<u32>, reason: &str| IpcError::Body {
        kind,
        id,
        reason: reason.to_owned(),
    };
    let id_and_rest = || split_u32(payload).ok_or_else(|| bad(None, "too short for an id"));
    Ok(match kind {
        FrameKind::Request => {
            let (id, rest) = id_and_rest()?;
            Frame::Request {
                id,
                body: body_from(kind, Some(id), rest)?,
            }
        }
        FrameKind::Response => {
            let (id, rest) = id_and_rest()?;
            Frame::Response {
                id,
                body: body_from(kind, Some(id), rest)?,
            }
        }
        FrameKind::Error => {
            let (id, rest) = id_and_rest()?;
            let Some((code, message)) = rest.split_first_chunk::<2>() else {
                return Err(bad(Some(id), "too short for an error code"));
            };
            // The message is for humans: a stray invalid byte must not hide the code.
            let message = String::from_utf8_lossy(message).into_owned();
            Frame::Error {
                id,
                code: ErrorCode(u16::from_le_bytes(*code)),
                message,
            }
        }
        FrameKind::Event => {
            let (seq, rest) =
                split_u64(payload).ok_or_else(|| bad(None, "too short for a sequence number"))?;
            Frame::Event {
                seq,
                body: body_from(kind, None, rest)?,
            }
        }
        FrameKind::Subscribe | FrameKind::Subscribed => {
            let (id, rest) = id_and_rest()?;
            if !rest.is_empty() {
                return Err(bad(Some(id), "unexpected bytes after the id"));
            }
            match kind {
                FrameKind::Subscribe => Frame::Subscribe { id },
                _ => Frame::Subscribed { id },
            }
        }
    })
}

fn body_from<T: DeserializeOwned>(
    kind: FrameKind,
    id: Option<u32>,
    bytes: &[u8],
) -> Result<T, IpcError> {
    let bad = |reason: String| IpcError::Body { kind, id, reason };
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(bad(format!(
            "{} unexpected bytes after the body",
            rest.len()
        ))),
        Err(e) => Err(bad(e.to_string())),
    }
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

fn split_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    type F = Frame<String, u32, Vec<u8>>;

    fn all_kinds() -> Vec<F> {
        vec![
            Frame::Request {
                id: 1,
                body: "status".into(),
            },
            Frame::Response { id: 1, body: 42 },
            Frame::Error {
                id: 9,
                code: ErrorCode::DENIED,
                message: "write needs root".into(),
            },
            Frame::Event {
                seq: u64::MAX,
                body: vec![1, 2, 3],
            },
            Frame::Subscribe { id: 2 },
            Frame::Subscribed { id: 2 },
        ]
    }

    fn decode_all(bytes: &[u8]) -> Vec<Result<F, IpcError>> {
        let mut dec = FrameDecoder::default();
        dec.push(bytes);
        let mut out = Vec::new();
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => out.push(Ok(f)),
                Ok(None) => return out,
                Err(e) => {
                    let fatal = e.is_fatal();
                    out.push(Err(e));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn every_kind_roundtrips_with_its_kind_byte() {
        for frame in all_kinds() {
            let bytes = frame.encode().unwrap();
            assert_eq!(bytes[4], IPC_VERSION);
            assert_eq!(bytes[5], frame.kind() as u8);
            assert_eq!(
                u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize,
                bytes.len() - 4
            );
            assert_eq!(decode_all(&bytes), vec![Ok(frame)]);
        }
    }

    #[test]
    fn several_frames_in_one_push_come_out_in_order() {
        let frames = all_kinds();
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode().unwrap()).collect();
        let decoded: Vec<F> = decode_all(&bytes).into_iter().map(Result::unwrap).collect();
        assert_eq!(decoded, frames);
    }

    #[test]
    fn one_byte_at_a_time_yields_each_frame_once_complete() {
        let frame: F = Frame::Request {
            id: 77,
            body: "x".repeat(300),
        };
        let bytes = frame.encode().unwrap();
        let mut dec = FrameDecoder::default();
        for (i, b) in bytes.iter().enumerate() {
            dec.push(&[*b]);
            let got = dec.next_frame::<String, u32, Vec<u8>>().unwrap();
            assert_eq!(got.is_some(), i == bytes.len() - 1, "byte {i}");
            if let Some(got) = got {
                assert_eq!(got, frame);
            }
        }
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn oversize_length_is_refused_before_the_body_arrives() {
        let mut dec = FrameDecoder::new(1024);
        dec.push(&1025u32.to_le_bytes());
        let err = dec.next_frame::<String, u32, Vec<u8>>().unwrap_err();
        assert_eq!(
            err,
            IpcError::Oversize {
                len: 1025,
                max: 1024
            }
        );
        // The decoder stays failed, whatever comes next.
        dec.push(&F::Subscribe { id: 1 }.encode().unwrap());
        assert_eq!(dec.next_frame::<String, u32, Vec<u8>>().unwrap_err(), err);
    }

    #[test]
    fn wrong_version_is_refused_as_soon_as_its_byte_arrives() {
        let mut dec = FrameDecoder::default();
        dec.push(&[10, 0, 0, 0, 2]);
        let err = dec.next_frame::<String, u32, Vec<u8>>().unwrap_err();
        assert_eq!(
            err,
            IpcError::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        );
    }

    #[test]
    fn unknown_kind_and_short_length_are_fatal() {
        assert_eq!(
            decode_all(&[2, 0, 0, 0, 1, 0]),
            vec![Err(IpcError::UnknownKind { kind: 0 })]
        );
        assert_eq!(
            decode_all(&[1, 0, 0, 0, 1]),
            vec![Err(IpcError::TooShort { len: 1 })]
        );
    }

    #[test]
    fn a_bad_body_skips_one_frame_and_keeps_the_id() {
        // A request whose body is not a postcard String (length 5, one byte present).
        let mut bytes = vec![8, 0, 0, 0, IPC_VERSION, FrameKind::Request as u8];
        bytes.extend_from_slice(&7u32.to_le_bytes());
        bytes.extend_from_slice(&[5, b'a']);
        bytes.extend(F::Subscribe { id: 8 }.encode().unwrap());
        let out = decode_all(&bytes);
        assert!(matches!(
            &out[0],
            Err(IpcError::Body {
                kind: FrameKind::Request,
                id: Some(7),
                ..
            })
        ));
        assert_eq!(out[1], Ok(Frame::Subscribe { id: 8 }));
    }

    #[test]
    fn trailing_bytes_after_a_body_are_refused() {
        let mut bytes = F::Response { id: 3, body: 5 }.encode().unwrap();
        bytes.push(0);
        bytes[0] += 1;
        assert!(matches!(
            &decode_all(&bytes)[0],
            Err(IpcError::Body { id: Some(3), .. })
        ));
    }

    #[test]
    fn error_message_with_invalid_utf8_still_yields_the_code() {
        let mut bytes = F::Error {
            id: 4,
            code: ErrorCode::BUSY,
            message: "ab".into(),
        }
        .encode()
        .unwrap();
        let n = bytes.len();
        bytes[n - 1] = 0xff;
        match &decode_all(&bytes)[0] {
            Ok(Frame::Error {
                id: 4,
                code,
                message,
            }) => {
                assert_eq!(*code, ErrorCode::BUSY);
                assert!(message.starts_with('a'));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn encode_refuses_frames_over_the_limit() {
        let frame: F = Frame::Request {
            id: 1,
            body: "x".repeat(100),
        };
        let err = frame.encode_with_limit(50).unwrap_err();
        assert!(matches!(err, IpcError::Oversize { max: 50, .. }));
        assert!(frame.encode_with_limit(200).is_ok());
    }

    #[test]
    fn consumed_bytes_are_released_as_frames_are_read() {
        let frame = F::Event {
            seq: 1,
            body: vec![0; 1000],
        }
        .encode()
        .unwrap();
        let mut dec = FrameDecoder::default();
        for _ in 0..100 {
            dec.push(&frame);
            assert!(dec.next_frame::<String, u32, Vec<u8>>().unwrap().is_some());
        }
        assert!(
            dec.buf.len() <= 2 * frame.len(),
            "buffer grew to {}",
            dec.buf.len()
        );
    }
}
