//! A toy daemon speaking a toy protocol over the real server, in a temporary directory.
#![allow(dead_code)] // each test file uses a different part of this kit

use clusterio::{EventPublisher, Incoming, Limits, Server};
use libcluster::ipc::{Access, ApiRequest, ErrorCode, ErrorReply};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Generous: the machine is shared, a late answer must not fail a test.
pub const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Req {
    Echo(String),
    Add(u32, u32),
    /// A write: changes the daemon's value.
    SetValue(u64),
    GetValue,
    /// A write: publishes `count` events carrying `size` bytes each.
    Publish {
        count: u32,
        size: u32,
    },
    /// Answered with a daemon-specific error code.
    Fail,
    /// Not answered until a `Release` comes (on another connection).
    Stall,
    /// Answers every stalled request with `Done`, then itself with `Done`.
    Release,
}

impl ApiRequest for Req {
    fn access(&self) -> Access {
        match self {
            Req::SetValue(_) | Req::Publish { .. } => Access::Write,
            Req::Echo(_) | Req::Add(..) | Req::GetValue | Req::Fail | Req::Stall | Req::Release => {
                Access::Read
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Resp {
    Echo(String),
    Sum(u64),
    Value(u64),
    Done,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Ev {
    Note { index: u32, padding: String },
}

pub const TOY_ERROR: ErrorCode = ErrorCode(ErrorCode::DAEMON_BASE.0 + 1);

/// A directory under the system temp dir, mode 0755 so an unprivileged peer can reach the
/// socket in it, removed with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("clusterio-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The toy daemon: its server and its core task.
pub struct Daemon {
    pub path: PathBuf,
    pub admin_gid: watch::Sender<Option<u32>>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    core: JoinHandle<()>,
}

impl Daemon {
    pub async fn start(path: &Path) -> Daemon {
        Daemon::start_with(path, Limits::default(), 64).await
    }

    pub async fn start_with(path: &Path, limits: Limits, event_capacity: usize) -> Daemon {
        let server = Server::<Req, Resp, Ev>::bind(path, limits)
            .await
            .expect("bind");
        let (requests_tx, requests) = mpsc::channel(32);
        let publisher = EventPublisher::new(event_capacity);
        let (admin_gid, admin_rx) = watch::channel(None);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let feed = publisher.feed();
        let server = tokio::spawn(server.run(requests_tx, feed, admin_rx, shutdown_rx));
        let core = tokio::spawn(core(requests, publisher));
        Daemon {
            path: path.to_path_buf(),
            admin_gid,
            shutdown,
            server,
            core,
        }
    }

    /// Stops the server and waits for it to finish (it removes its socket).
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        tokio::time::timeout(TIMEOUT, self.server)
            .await
            .expect("server stops")
            .expect("server task");
        self.core.abort();
    }
}

/// The toy core: owns the value and the event publisher, like a daemon's core task.
async fn core(
    mut requests: mpsc::Receiver<Incoming<Req, Resp>>,
    mut publisher: EventPublisher<Ev>,
) {
    let mut value = 0;
    let mut next_index = 0;
    let mut stalled = Vec::new();
    while let Some(incoming) = requests.recv().await {
        let answer = match &incoming.request {
            Req::Echo(text) => Ok(Resp::Echo(text.clone())),
            Req::Add(a, b) => Ok(Resp::Sum(u64::from(*a) + u64::from(*b))),
            Req::SetValue(v) => {
                value = *v;
                Ok(Resp::Done)
            }
            Req::GetValue => Ok(Resp::Value(value)),
            Req::Publish { count, size } => {
                for _ in 0..*count {
                    let padding = "x".repeat(*size as usize);
                    let event = Ev::Note {
                        index: next_index,
                        padding,
                    };
                    publisher.publish(&event).expect("publish");
                    next_index += 1;
                }
                Ok(Resp::Done)
            }
            Req::Fail => Err(ErrorReply::new(
                TOY_ERROR,
                "the toy daemon fails on purpose",
            )),
            Req::Stall => {
                stalled.push(incoming);
                continue;
            }
            Req::Release => {
                for waiting in stalled.drain(..) {
                    waiting.respond(Ok(Resp::Done));
                }
                Ok(Resp::Done)
            }
        };
        incoming.respond(answer);
    }
}
