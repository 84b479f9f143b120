//! The calling side: an async client for daemons and a blocking one for CLIs.

use libcluster::ipc::{ErrorCode, Frame, FrameDecoder, FrameKind, IpcError};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const READ_CHUNK: usize = 16 * 1024;

/// Why a call did not produce a response.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be reached: usually the daemon is not running.
    Connect {
        /// The socket path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The daemon refused: the request needs root or the admin group.
    Denied {
        /// The daemon's explanation.
        message: String,
    },
    /// No answer came in time. The connection may still receive the late answer, which the
    /// next call skips.
    Timeout {
        /// The time allowed.
        after: Duration,
    },
    /// The daemon answered with an error other than `denied`.
    Daemon {
        /// The error code.
        code: ErrorCode,
        /// The daemon's explanation.
        message: String,
    },
    /// The daemon's bytes were not valid frames, or the request could not be encoded.
    Protocol(IpcError),
    /// The daemon sent a frame a client never expects.
    Unexpected {
        /// Its kind.
        kind: FrameKind,
    },
    /// Reading or writing the connection failed.
    Io(io::Error),
    /// The daemon closed the connection before answering.
    Closed,
    /// An earlier call on this connection was cut off while writing its request, so the
    /// stream may hold half a frame: nothing more is sent on it. Connect again.
    Torn,
}

impl ClientError {
    fn from_reply(code: ErrorCode, message: String) -> ClientError {
        match code {
            ErrorCode::DENIED => ClientError::Denied { message },
            code => ClientError::Daemon { code, message },
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { path, source } => {
                write!(f, "cannot connect to {}: {source}", path.display())
            }
            ClientError::Denied { message } => write!(f, "permission denied: {message}"),
            ClientError::Timeout { after } => {
                write!(f, "no answer within {} ms", after.as_millis())
            }
            ClientError::Daemon { code, message } => write!(f, "{code}: {message}"),
            ClientError::Protocol(e) => write!(f, "protocol error: {e}"),
            ClientError::Unexpected { kind } => {
                write!(f, "unexpected {kind} frame from the daemon")
            }
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
            ClientError::Closed => f.write_str("the daemon closed the connection"),
            ClientError::Torn => {
                f.write_str("an earlier call was cut off mid-request; this connection is unusable")
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { source, .. } | ClientError::Io(source) => Some(source),
            ClientError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

/// An event as a subscriber receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<Ev> {
    /// The daemon's sequence number; a gap means events were missed.
    pub seq: u64,
    /// The daemon-specific event.
    pub body: Ev,
}

/// What a client tracks about its requests: the last id used (ids are non-zero, 0 being
/// the connection itself, and wrap) and whether a write was cut off half-way.
#[derive(Debug, Default)]
struct Ids {
    last: u32,
    /// Set before a request is written and cleared once it is whole. If a timeout drops
    /// the call mid-write, the daemon would read the next request as the rest of this one,
    /// and might decode it as some other valid request: never write after that.
    torn: bool,
}

impl Ids {
    fn next(&mut self) -> Result<u32, ClientError> {
        if self.torn {
            return Err(ClientError::Torn);
        }
        self.last = self.last.wrapping_add(1).max(1);
        Ok(self.last)
    }
}

/// Drains buffered frames until the daemon's answer to `id` (a `Response`, `Subscribed`
/// or `Error` with that id, or an `Error` about the whole connection) turns up; `None` if
/// more bytes are needed. Answers to earlier, timed-out requests and events are skipped.
fn reply_to<Resp, Ev>(
    decoder: &mut FrameDecoder,
    id: u32,
) -> Option<Result<Frame<(), Resp, Ev>, ClientError>>
where
    Resp: DeserializeOwned,
    Ev: DeserializeOwned,
{
    loop {
        match decoder.next_frame::<(), Resp, Ev>() {
            Ok(None) => return None,
            Ok(Some(Frame::Error {
                id: got,
                code,
                message,
            })) if got == id || got == 0 => {
                return Some(Err(ClientError::from_reply(code, message)));
            }
            Ok(Some(frame @ (Frame::Response { id: got, .. } | Frame::Subscribed { id: got })))
                if got == id =>
            {
                return Some(Ok(frame))
            }
            Ok(Some(
                Frame::Response { .. }
                | Frame::Error { .. }
                | Frame::Subscribed { .. }
                | Frame::Event { .. },
            )) => {}
            Ok(Some(other)) => return Some(Err(ClientError::Unexpected { kind: other.kind() })),
            Err(IpcError::Body {
                kind: FrameKind::Event,
                ..
            }) => {}
            Err(IpcError::Body {
                id: Some(other), ..
            }) if other != id => {}
            Err(e) => return Some(Err(ClientError::Protocol(e))),
        }
    }
}

/// [`reply_to`] a call: the response body.
fn answer_to<Resp, Ev>(decoder: &mut FrameDecoder, id: u32) -> Option<Result<Resp, ClientError>>
where
    Resp: DeserializeOwned,
    Ev: DeserializeOwned,
{
    Some(match reply_to::<Resp, Ev>(decoder, id)? {
        Ok(Frame::Response { body, .. }) => Ok(body),
        Ok(other) => Err(ClientError::Unexpected { kind: other.kind() }),
        Err(e) => Err(e),
    })
}

/// [`reply_to`] a subscription: the confirmation.
fn subscribed<Resp, Ev>(decoder: &mut FrameDecoder, id: u32) -> Option<Result<(), ClientError>>
where
    Resp: DeserializeOwned,
    Ev: DeserializeOwned,
{
    Some(match reply_to::<Resp, Ev>(decoder, id)? {
        Ok(Frame::Subscribed { .. }) => Ok(()),
        Ok(other) => Err(ClientError::Unexpected { kind: other.kind() }),
        Err(e) => Err(e),
    })
}

fn encode_request<Req: Serialize>(id: u32, request: &Req) -> Result<Vec<u8>, ClientError> {
    Frame::<&Req, (), ()>::Request { id, body: request }
        .encode()
        .map_err(ClientError::Protocol)
}

/// An async connection to a daemon's local API.
#[derive(Debug)]
pub struct IpcClient<Req, Resp, Ev> {
    stream: UnixStream,
    decoder: FrameDecoder,
    ids: Ids,
    _types: PhantomData<fn(Req, Resp, Ev)>,
}

impl<Req, Resp, Ev> IpcClient<Req, Resp, Ev>
where
    Req: Serialize,
    Resp: DeserializeOwned,
    Ev: DeserializeOwned,
{
    /// Connects to the socket at `path`.
    pub async fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(IpcClient {
            stream,
            decoder: FrameDecoder::default(),
            ids: Ids::default(),
            _types: PhantomData,
        })
    }

    /// Sends `request` and waits at most `timeout` for its answer.
    pub async fn call(&mut self, request: &Req, timeout: Duration) -> Result<Resp, ClientError> {
        let id = self.ids.next()?;
        let bytes = encode_request(id, request)?;
        let exchange = self.exchange(&bytes, |decoder| answer_to::<Resp, Ev>(decoder, id));
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout { after: timeout })?
    }

    /// Asks for the event stream and waits at most `timeout` for the daemon to confirm.
    /// Every event published after this returns is delivered (unless the subscriber falls
    /// too far behind, when the daemon closes the connection). The connection is used for
    /// events only from then on: open another one for calls.
    pub async fn subscribe(mut self, timeout: Duration) -> Result<Subscription<Ev>, ClientError> {
        let id = self.ids.next()?;
        let bytes = Frame::<(), (), ()>::Subscribe { id }
            .encode()
            .map_err(ClientError::Protocol)?;
        let confirm = self.exchange(&bytes, |decoder| subscribed::<Resp, Ev>(decoder, id));
        tokio::time::timeout(timeout, confirm)
            .await
            .map_err(|_| ClientError::Timeout { after: timeout })??;
        Ok(Subscription {
            stream: self.stream,
            decoder: self.decoder,
            _event: PhantomData,
        })
    }

    /// Writes `bytes`, then reads until `done` finds the answer in the decoded frames.
    async fn exchange<T>(
        &mut self,
        bytes: &[u8],
        mut done: impl FnMut(&mut FrameDecoder) -> Option<Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        self.ids.torn = true;
        let written = self.stream.write_all(bytes).await;
        self.ids.torn = written.is_err();
        let mut buf = vec![0u8; READ_CHUNK];
        let answer = loop {
            if let Some(result) = done(&mut self.decoder) {
                break result;
            }
            match self.stream.read(&mut buf).await {
                Ok(0) => break Err(ClientError::Closed),
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) => break Err(ClientError::Io(e)),
            }
        };
        explain_failed_write(written, answer)
    }
}

/// When the write failed, the daemon hung up; it may have said why first (`daemon busy`
/// at the connection limit), and that reason beats the bare `broken pipe`.
fn explain_failed_write<T>(
    written: io::Result<()>,
    answer: Result<T, ClientError>,
) -> Result<T, ClientError> {
    match (written, answer) {
        (Ok(()), answer) => answer,
        (Err(_), Err(reason @ (ClientError::Daemon { .. } | ClientError::Denied { .. }))) => {
            Err(reason)
        }
        (Err(e), _) => Err(ClientError::Io(e)),
    }
}

/// The event stream of one connection, from [`IpcClient::subscribe`].
#[derive(Debug)]
pub struct Subscription<Ev> {
    stream: UnixStream,
    decoder: FrameDecoder,
    _event: PhantomData<fn() -> Ev>,
}

impl<Ev: DeserializeOwned> Subscription<Ev> {
    /// The next event; `Ok(None)` once the daemon closed the stream (it stopped, or this
    /// subscriber fell too far behind).
    pub async fn next_event(&mut self) -> Result<Option<Event<Ev>>, ClientError> {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match self.decoder.next_frame::<(), (), Ev>() {
                Ok(Some(Frame::Event { seq, body })) => return Ok(Some(Event { seq, body })),
                Ok(Some(Frame::Error { code, message, .. })) => {
                    return Err(ClientError::from_reply(code, message))
                }
                Ok(Some(Frame::Response { .. } | Frame::Subscribed { .. })) => continue,
                Ok(Some(other)) => return Err(ClientError::Unexpected { kind: other.kind() }),
                Ok(None) => {}
                // Stale responses (bodies of type ()) may fail to decode: not our concern.
                Err(IpcError::Body {
                    kind: FrameKind::Response,
                    ..
                }) => continue,
                Err(e) => return Err(ClientError::Protocol(e)),
            }
            match self.stream.read(&mut buf).await.map_err(ClientError::Io)? {
                0 => return Ok(None),
                n => self.decoder.push(&buf[..n]),
            }
        }
    }
}

/// A connection to a daemon's local API for programs without an async runtime: plain
/// blocking reads and writes bounded by the call's timeout.
#[derive(Debug)]
pub struct BlockingClient<Req, Resp> {
    stream: std::os::unix::net::UnixStream,
    decoder: FrameDecoder,
    ids: Ids,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Serialize, Resp: DeserializeOwned> BlockingClient<Req, Resp> {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = std::os::unix::net::UnixStream::connect(path).map_err(|source| {
            ClientError::Connect {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(BlockingClient {
            stream,
            decoder: FrameDecoder::default(),
            ids: Ids::default(),
            _types: PhantomData,
        })
    }

    /// Sends `request` and waits at most `timeout` for its answer.
    pub fn call(&mut self, request: &Req, timeout: Duration) -> Result<Resp, ClientError> {
        let deadline = Instant::now() + timeout;
        let timed_out = || ClientError::Timeout { after: timeout };
        // A zero timeout means "no timeout" to the socket options: never pass one.
        let remaining =
            || Some(deadline.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero());
        let id = self.ids.next()?;
        let bytes = encode_request(id, request)?;
        self.stream
            .set_write_timeout(Some(remaining().ok_or_else(timed_out)?))
            .map_err(ClientError::Io)?;
        self.ids.torn = true;
        let written = self.stream.write_all(&bytes);
        self.ids.torn = written.is_err();
        let written = match written {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out());
            }
            written => written,
        };
        let mut buf = vec![0u8; READ_CHUNK];
        let answer = loop {
            if let Some(result) = answer_to::<Resp, ()>(&mut self.decoder, id) {
                break result;
            }
            let Some(left) = remaining() else {
                break Err(timed_out());
            };
            if let Err(e) = self.stream.set_read_timeout(Some(left)) {
                break Err(ClientError::Io(e));
            }
            match self.stream.read(&mut buf) {
                Ok(0) => break Err(ClientError::Closed),
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break Err(timed_out());
                }
                Err(e) => break Err(ClientError::Io(e)),
            }
        };
        explain_failed_write(written, answer)
    }
}

/// Connects to `path`, makes one call and closes: what a CLI such as `clustat` needs.
pub fn call_blocking<Req: Serialize, Resp: DeserializeOwned>(
    path: &Path,
    request: &Req,
    timeout: Duration,
) -> Result<Resp, ClientError> {
    BlockingClient::connect(path)?.call(request, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_skip_zero_when_wrapping() {
        let mut ids = Ids {
            last: u32::MAX - 1,
            torn: false,
        };
        assert_eq!(ids.next().unwrap(), u32::MAX);
        assert_eq!(ids.next().unwrap(), 1);
    }

    #[test]
    fn no_request_follows_a_torn_one() {
        let mut ids = Ids {
            last: 3,
            torn: true,
        };
        assert!(matches!(ids.next(), Err(ClientError::Torn)));
    }

    fn decoder_with(frames: &[Frame<(), u32, u8>]) -> FrameDecoder {
        let mut decoder = FrameDecoder::default();
        for frame in frames {
            decoder.push(&frame.encode().unwrap());
        }
        decoder
    }

    #[test]
    fn stale_answers_and_events_are_skipped() {
        let mut decoder = decoder_with(&[
            Frame::Response { id: 1, body: 10 },
            Frame::Error {
                id: 2,
                code: ErrorCode::BUSY,
                message: "late".into(),
            },
            Frame::Event { seq: 1, body: 7 },
            Frame::Response { id: 3, body: 30 },
        ]);
        assert!(matches!(
            answer_to::<u32, u8>(&mut decoder, 3),
            Some(Ok(30))
        ));
        assert!(answer_to::<u32, u8>(&mut decoder, 4).is_none());
    }

    #[test]
    fn denied_and_connection_errors_are_told_apart() {
        let mut decoder = decoder_with(&[Frame::Error {
            id: 5,
            code: ErrorCode::DENIED,
            message: "no".into(),
        }]);
        assert!(matches!(
            answer_to::<u32, u8>(&mut decoder, 5),
            Some(Err(ClientError::Denied { .. }))
        ));
        let mut decoder = decoder_with(&[Frame::Error {
            id: 0,
            code: ErrorCode::BUSY,
            message: "full".into(),
        }]);
        match answer_to::<u32, u8>(&mut decoder, 9) {
            Some(Err(ClientError::Daemon { code, .. })) => assert_eq!(code, ErrorCode::BUSY),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_request_from_the_daemon_is_a_protocol_violation() {
        let mut decoder = FrameDecoder::default();
        decoder.push(
            &Frame::<(), (), ()>::Request { id: 1, body: () }
                .encode()
                .unwrap(),
        );
        assert!(matches!(
            answer_to::<u32, u8>(&mut decoder, 1),
            Some(Err(ClientError::Unexpected {
                kind: FrameKind::Request
            }))
        ));
    }
}
