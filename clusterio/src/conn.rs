//! One accepted connection: decode frames, check access, forward to the core, write back.
//!
//! ```text
//!            +--------------------- read frame ----------------------+
//!            v                                                       |
//!   [idle] --Request, permitted--> [waiting for the core's reply] ---+
//!     |  \--Request, refused---> write `denied` ---------------------^
//!     |  \--Subscribe----------> start receiving events, write `Subscribed`
//!     +-- in every state: forward events (if subscribed), stop on shutdown,
//!         close on EOF, a fatal framing error, a lagging subscription or a stuck write
//! ```
//! One request is in flight per connection: while the core works on it, no further frame is
//! read, which is the backpressure a pipelining client feels.

use crate::server::{stopped, Channels, Incoming, Limits};
use libcluster::ipc::{
    permits, ApiRequest, ErrorCode, ErrorReply, Frame, FrameDecoder, IpcError, Peer,
};
use serde::{de::DeserializeOwned, Serialize};
use std::future::pending;
use std::ops::ControlFlow;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

type Reply<Resp> = oneshot::Receiver<Result<Resp, ErrorReply>>;
type Answer<Resp> = Result<Result<Resp, ErrorReply>, oneshot::error::RecvError>;

/// Whether the connection goes on (`Continue`) or closes (`Break`); every reason to close
/// is logged where it is found.
type Step = ControlFlow<()>;

const CLOSE: Step = ControlFlow::Break(());
const GO_ON: Step = ControlFlow::Continue(());

pub(crate) struct Conn<Req, Resp, Ev> {
    stream: UnixStream,
    peer: Peer,
    limits: Limits,
    decoder: FrameDecoder,
    channels: Channels<Req, Resp, Ev>,
    /// The request the core is working on, by id.
    pending: Option<(u32, Reply<Resp>)>,
    subscription: Option<broadcast::Receiver<Arc<[u8]>>>,
}

impl<Req, Resp, Ev> Conn<Req, Resp, Ev>
where
    Req: ApiRequest + DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    Ev: Send + 'static,
{
    pub(crate) fn new(
        stream: UnixStream,
        peer: Peer,
        limits: Limits,
        channels: Channels<Req, Resp, Ev>,
    ) -> Self {
        let decoder = FrameDecoder::new(limits.max_frame_len);
        Conn {
            stream,
            peer,
            limits,
            decoder,
            channels,
            pending: None,
            subscription: None,
        }
    }

    pub(crate) async fn run(mut self) {
        debug!(gid = self.peer.gid, groups = ?self.peer.groups, "connected");
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let step = match self.next_buffered_frame().await {
                Some(step) => step,
                None => self.wait_for_something(&mut buf).await,
            };
            if step.is_break() {
                debug!("connection closed");
                return;
            }
        }
    }

    /// Waits for bytes from the client, the core's answer, an event or the shutdown.
    async fn wait_for_something(&mut self, buf: &mut [u8]) -> Step {
        tokio::select! {
            read = self.stream.read(buf), if self.pending.is_none() => match read {
                Ok(0) => CLOSE,
                Ok(n) => {
                    self.decoder.push(&buf[..n]);
                    GO_ON
                }
                Err(e) => {
                    debug!(error = %e, "read failed; closing");
                    CLOSE
                }
            },
            (id, answer) = reply(&mut self.pending) => {
                self.pending = None;
                let answer = answer.unwrap_or_else(|_| {
                    Err(ErrorReply::new(ErrorCode::INTERNAL, "the daemon dropped the request"))
                });
                self.write_answer(id, answer).await
            },
            event = next_event(&mut self.subscription) => self.forward_event(event).await,
            _ = stopped(&mut self.channels.shutdown) => CLOSE,
        }
    }

    /// Handles the next complete frame already received, unless the core is busy with
    /// this connection's last request; `None` when there is nothing to do without reading.
    async fn next_buffered_frame(&mut self) -> Option<Step> {
        if self.pending.is_some() {
            return None;
        }
        Some(match self.decoder.next_frame::<Req, (), ()>() {
            Ok(Some(frame)) => self.on_frame(frame).await,
            Ok(None) => return None,
            Err(e) => self.on_bad_frame(e).await,
        })
    }

    async fn on_frame(&mut self, frame: Frame<Req, (), ()>) -> Step {
        match frame {
            Frame::Request { id, body } => self.on_request(id, body).await,
            Frame::Subscribe { id } => {
                if self.subscription.is_none() {
                    self.subscription = Some(self.channels.events.subscribe());
                }
                self.write(Frame::<(), (), ()>::Subscribed { id }).await
            }
            other => {
                let message = format!("a client may not send {} frames", other.kind());
                debug!(kind = %other.kind(), "unexpected frame; closing");
                let _ = self
                    .write_error(0, ErrorReply::new(ErrorCode::BAD_REQUEST, message))
                    .await;
                CLOSE
            }
        }
    }

    async fn on_request(&mut self, id: u32, request: Req) -> Step {
        let access = request.access();
        if !permits(&self.peer, access, *self.channels.admin_gid.borrow()) {
            info!(
                id,
                ?access,
                gid = self.peer.gid,
                "request denied: needs root or the admin group"
            );
            let message =
                "this request changes cluster state: it needs root or the cluster admin group";
            return self
                .write_error(id, ErrorReply::new(ErrorCode::DENIED, message))
                .await;
        }
        let (tx, rx) = oneshot::channel();
        let incoming = Incoming {
            peer: self.peer.clone(),
            request,
            reply: tx,
        };
        match tokio::time::timeout(
            self.limits.queue_timeout,
            self.channels.requests.send(incoming),
        )
        .await
        {
            Ok(Ok(())) => {
                self.pending = Some((id, rx));
                GO_ON
            }
            Ok(Err(_)) => {
                self.write_error(
                    id,
                    ErrorReply::new(ErrorCode::UNAVAILABLE, "the daemon is shutting down"),
                )
                .await
            }
            Err(_) => {
                warn!(id, "daemon queue full; answering busy");
                self.write_error(
                    id,
                    ErrorReply::new(ErrorCode::BUSY, "the daemon is busy; try again"),
                )
                .await
            }
        }
    }

    /// A frame that does not decode. The whole stream is abandoned when its framing broke;
    /// a bad body in an intact frame is answered and the connection goes on.
    async fn on_bad_frame(&mut self, error: IpcError) -> Step {
        let (id, code) = match &error {
            IpcError::Body { id, .. } => (id.unwrap_or(0), ErrorCode::BAD_REQUEST),
            IpcError::UnsupportedVersion { .. } => (0, ErrorCode::UNSUPPORTED_VERSION),
            _ => (0, ErrorCode::BAD_REQUEST),
        };
        debug!(error = %error, fatal = error.is_fatal(), "bad frame from client");
        let answered = self
            .write_error(id, ErrorReply::new(code, error.to_string()))
            .await;
        if error.is_fatal() {
            return CLOSE;
        }
        answered
    }

    async fn write_answer(&mut self, id: u32, answer: Result<Resp, ErrorReply>) -> Step {
        let body = match answer {
            Ok(body) => body,
            Err(reply) => return self.write_error(id, reply).await,
        };
        let frame = Frame::<(), Resp, ()>::Response { id, body };
        match frame.encode_with_limit(self.limits.max_frame_len) {
            Ok(bytes) => self.write_bytes(&bytes).await,
            Err(e) => {
                warn!(id, error = %e, "cannot send response");
                self.write_error(id, ErrorReply::new(ErrorCode::INTERNAL, e.to_string()))
                    .await
            }
        }
    }

    async fn forward_event(&mut self, event: Result<Arc<[u8]>, RecvError>) -> Step {
        match event {
            Ok(bytes) => self.write_bytes(&bytes).await,
            Err(RecvError::Lagged(missed)) => {
                warn!(
                    pid = self.peer.pid,
                    uid = self.peer.uid,
                    missed,
                    "event subscriber fell behind; disconnecting it"
                );
                CLOSE
            }
            // The publisher is gone: the daemon is stopping.
            Err(RecvError::Closed) => CLOSE,
        }
    }

    async fn write_error(&mut self, id: u32, reply: ErrorReply) -> Step {
        self.write(Frame::<(), (), ()>::Error {
            id,
            code: reply.code,
            message: reply.message,
        })
        .await
    }

    async fn write(&mut self, frame: Frame<(), (), ()>) -> Step {
        match frame.encode_with_limit(self.limits.max_frame_len) {
            Ok(bytes) => self.write_bytes(&bytes).await,
            Err(e) => {
                warn!(error = %e, "cannot encode frame; closing");
                CLOSE
            }
        }
    }

    async fn write_bytes(&mut self, bytes: &[u8]) -> Step {
        match tokio::time::timeout(self.limits.write_timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => GO_ON,
            Ok(Err(e)) => {
                debug!(error = %e, "write failed; closing");
                CLOSE
            }
            Err(_) => {
                warn!(
                    pid = self.peer.pid,
                    uid = self.peer.uid,
                    "client does not read; disconnecting it"
                );
                CLOSE
            }
        }
    }
}

/// The core's answer to the pending request; never resolves when there is none.
async fn reply<Resp>(in_flight: &mut Option<(u32, Reply<Resp>)>) -> (u32, Answer<Resp>) {
    match in_flight {
        Some((id, rx)) => (*id, rx.await),
        None => pending().await,
    }
}

/// The next published event; never resolves when the connection did not subscribe.
async fn next_event(
    subscription: &mut Option<broadcast::Receiver<Arc<[u8]>>>,
) -> Result<Arc<[u8]>, RecvError> {
    match subscription {
        Some(rx) => rx.recv().await,
        None => pending().await,
    }
}
