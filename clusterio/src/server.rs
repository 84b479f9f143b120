//! The listening side: binding the socket, accepting connections, publishing events.

use crate::conn::Conn;
use libcluster::ipc::{ApiRequest, ErrorCode, ErrorReply, Frame, IpcError, MAX_FRAME_LEN};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn, Instrument};

pub use libcluster::ipc::Peer;

/// Bounds on what clients can make the server hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; one more is answered `daemon busy` and closed.
    pub max_connections: usize,
    /// The largest frame accepted or sent (the frame's length field).
    pub max_frame_len: u32,
    /// How long writing one frame to a client may take before the client is dropped.
    pub write_timeout: Duration,
    /// How long a request may wait for room in the daemon's queue before `daemon busy`.
    pub queue_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_frame_len: MAX_FRAME_LEN,
            write_timeout: Duration::from_secs(5),
            queue_timeout: Duration::from_secs(2),
        }
    }
}

/// A permitted request on its way to the daemon's core task.
#[derive(Debug)]
pub struct Incoming<Req, Resp> {
    /// Who asked (already checked against the access policy).
    pub peer: Peer,
    /// What was asked.
    pub request: Req,
    /// Where the answer goes; the connection waits for it (or for the sender to be dropped).
    pub reply: oneshot::Sender<Result<Resp, ErrorReply>>,
}

impl<Req, Resp> Incoming<Req, Resp> {
    /// Sends the answer. A client that went away meanwhile is not an error.
    pub fn respond(self, answer: Result<Resp, ErrorReply>) {
        let _client_gone = self.reply.send(answer);
    }
}

/// The daemon's end of the event stream. Owned by the core task, so events are numbered in
/// the order they are published. Each event is encoded once and shared by all subscribers.
#[derive(Debug)]
pub struct EventPublisher<Ev> {
    tx: broadcast::Sender<Arc<[u8]>>,
    next_seq: u64,
    _event: PhantomData<fn(Ev)>,
}

/// A handle the server uses to subscribe connections to the event stream.
#[derive(Debug)]
pub struct EventFeed<Ev> {
    tx: broadcast::Sender<Arc<[u8]>>,
    _event: PhantomData<fn(Ev)>,
}

impl<Ev> Clone for EventFeed<Ev> {
    fn clone(&self) -> Self {
        EventFeed {
            tx: self.tx.clone(),
            _event: PhantomData,
        }
    }
}

impl<Ev> EventFeed<Ev> {
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<[u8]>> {
        self.tx.subscribe()
    }
}

impl<Ev: Serialize> EventPublisher<Ev> {
    /// A publisher keeping up to `capacity` events for slow subscribers; a subscriber that
    /// falls further behind is disconnected.
    pub fn new(capacity: usize) -> EventPublisher<Ev> {
        let (tx, _) = broadcast::channel(capacity.clamp(1, 1 << 20));
        EventPublisher {
            tx,
            next_seq: 1,
            _event: PhantomData,
        }
    }

    /// Sends `event` to every subscribed connection without waiting for any of them, and
    /// returns its sequence number. Fails only if the event cannot be encoded.
    pub fn publish(&mut self, event: &Ev) -> Result<u64, IpcError> {
        let seq = self.next_seq;
        let bytes = Frame::<(), (), &Ev>::Event { seq, body: event }.encode()?;
        self.next_seq += 1;
        // No subscriber is not an error: the event simply had no audience.
        let _receivers = self.tx.send(bytes.into());
        Ok(seq)
    }

    /// The handle to give the server.
    pub fn feed(&self) -> EventFeed<Ev> {
        EventFeed {
            tx: self.tx.clone(),
            _event: PhantomData,
        }
    }
}

/// Why the server could not take its socket.
#[derive(Debug)]
pub enum ServerError {
    /// The runtime directory could not be created. Nothing was bound.
    RuntimeDir {
        /// The directory.
        dir: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Another process answers on the socket: a daemon is already running. It was left alone.
    AlreadyRunning {
        /// The socket path.
        path: PathBuf,
    },
    /// Something other than a socket is in the way. It was left alone.
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The existing socket could not be probed or removed. It was left alone.
    Stale {
        /// The socket path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Binding the socket or setting its mode failed.
    Bind {
        /// The socket path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::RuntimeDir { dir, .. } => {
                write!(f, "cannot create runtime directory {}", dir.display())
            }
            ServerError::AlreadyRunning { path } => {
                write!(f, "a daemon is already listening on {}", path.display())
            }
            ServerError::NotASocket { path } => {
                write!(f, "{} exists and is not a socket", path.display())
            }
            ServerError::Stale { path, .. } => {
                write!(f, "cannot replace the old socket {}", path.display())
            }
            ServerError::Bind { path, .. } => write!(f, "cannot listen on {}", path.display()),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::RuntimeDir { source, .. }
            | ServerError::Stale { source, .. }
            | ServerError::Bind { source, .. } => Some(source),
            ServerError::AlreadyRunning { .. } | ServerError::NotASocket { .. } => None,
        }
    }
}

/// A bound local API socket, ready to serve a daemon's `Req`/`Resp`/`Ev` protocol.
#[derive(Debug)]
pub struct Server<Req, Resp, Ev> {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket we bound, so we only ever remove our own.
    identity: (u64, u64),
    limits: Limits,
    _types: PhantomData<fn(Req, Resp, Ev)>,
}

impl<Req, Resp, Ev> Server<Req, Resp, Ev>
where
    Req: ApiRequest + DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    Ev: Send + 'static,
{
    /// Binds `path` with mode 0666 (any local user may connect; the access policy decides
    /// what they may do), creating its directory with mode 0755 if missing. A socket left
    /// by a dead daemon is replaced; one that answers means a daemon is running, and is
    /// refused, as is any file that is not a socket.
    pub async fn bind(path: &Path, limits: Limits) -> Result<Self, ServerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_runtime_dir(dir).map_err(|source| ServerError::RuntimeDir {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        remove_stale_socket(path).await?;
        let bind_err = |source| ServerError::Bind {
            path: path.to_path_buf(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(bind_err)?;
        let meta = std::fs::symlink_metadata(path).map_err(bind_err)?;
        info!(path = %path.display(), "listening");
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
            limits,
            _types: PhantomData,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `shutdown` turns true (or its sender is dropped), then closes every
    /// connection and removes the socket file. Permitted requests go to `requests`; Write
    /// requests the policy refuses, given the current `admin_gid`, are answered `denied`
    /// here and never reach the daemon.
    pub async fn run(
        self,
        requests: mpsc::Sender<Incoming<Req, Resp>>,
        events: EventFeed<Ev>,
        admin_gid: watch::Receiver<Option<u32>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let max = self.limits.max_connections.min(Semaphore::MAX_PERMITS);
        let slots = Arc::new(Semaphore::new(max));
        let mut conns = JoinSet::new();
        let channels = Channels {
            requests,
            events,
            admin_gid,
            shutdown: shutdown.clone(),
        };
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => self.admit(stream, &slots, &channels, &mut conns),
                    Err(e) => {
                        // Out of descriptors, usually: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(joined) = conns.join_next(), if !conns.is_empty() => match joined {
                    Err(e) if e.is_panic() => error!(error = %e, "connection task panicked"),
                    _ => {}
                },
                _ = stopped(&mut shutdown) => break,
            }
        }
        conns.shutdown().await;
        self.remove_own_socket();
        info!(path = %self.path.display(), "stopped listening");
    }

    /// Starts a task for a new connection if a slot is free, else tells it `daemon busy`.
    fn admit(
        &self,
        stream: UnixStream,
        slots: &Arc<Semaphore>,
        channels: &Channels<Req, Resp, Ev>,
        conns: &mut JoinSet<()>,
    ) {
        let Ok(slot) = Arc::clone(slots).try_acquire_owned() else {
            refuse_busy(&stream, self.limits.max_connections);
            return;
        };
        let peer = match crate::peer_credentials(&stream) {
            Ok(peer) => peer,
            Err(e) => {
                debug!(error = %e, "no peer credentials; closing");
                return;
            }
        };
        let span = tracing::debug_span!("ipc", pid = peer.pid, uid = peer.uid);
        let conn = Conn::new(stream, peer, self.limits, channels.clone());
        conns.spawn(
            async move {
                conn.run().await;
                drop(slot);
            }
            .instrument(span),
        );
    }

    fn remove_own_socket(&self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                warn!(path = %self.path.display(), error = %e, "cannot remove socket");
            }
        }
    }
}

/// The channels between the server's connection tasks and the daemon; each task has a clone.
pub(crate) struct Channels<Req, Resp, Ev> {
    pub(crate) requests: mpsc::Sender<Incoming<Req, Resp>>,
    pub(crate) events: EventFeed<Ev>,
    pub(crate) admin_gid: watch::Receiver<Option<u32>>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl<Req, Resp, Ev> Clone for Channels<Req, Resp, Ev> {
    fn clone(&self) -> Self {
        Channels {
            requests: self.requests.clone(),
            events: self.events.clone(),
            admin_gid: self.admin_gid.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

/// Resolves when `shutdown` is true or can no longer change.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: nobody can keep us running any more.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Tells a client over the connection limit why it is closed. The frame is tiny and the
/// socket new, so a non-blocking write always fits; if not, the close says enough.
fn refuse_busy(stream: &UnixStream, max: usize) {
    debug!(max, "connection limit reached; refusing");
    let reply = ErrorReply::new(
        ErrorCode::BUSY,
        format!("too many connections (limit {max})"),
    );
    let frame = Frame::<(), (), ()>::Error {
        id: 0,
        code: reply.code,
        message: reply.message,
    };
    if let Ok(bytes) = frame.encode() {
        let _ = stream.try_write(&bytes);
    }
}

fn create_runtime_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    // The umask may have taken bits away; clients of every user must reach the sockets.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}

async fn remove_stale_socket(path: &Path) -> Result<(), ServerError> {
    let stale = |source| ServerError::Stale {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(stale(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match tokio::net::UnixStream::connect(path).await {
        Ok(_) => Err(ServerError::AlreadyRunning {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            info!(path = %path.display(), "removing stale socket");
            std::fs::remove_file(path).map_err(stale)
        }
        Err(e) => Err(stale(e)),
    }
}
