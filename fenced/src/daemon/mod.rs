//! The daemon's shell: cmand connection, IPC server, agent tasks, history, around the
//! `libcluster::fence::Domain` core.

mod cman;
mod requests;
mod shell;

use clusterio::history::History;
use clusterio::{EventPublisher, Limits, Server};
use libcluster::config::{self, ClusterConf};
use libcluster::fence::{self as core, FenceSettings, NodeEntry};
use libcluster::ipc::fence::{FenceEvent, FenceRequest, FenceResponse, DAEMON};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the command line and environment decided.
#[derive(Clone, Debug)]
pub struct Options {
    /// cluster.conf.
    pub config: PathBuf,
    /// Runtime directory (cmand's and our sockets).
    pub runtime_dir: PathBuf,
    /// History file, if any.
    pub history: Option<PathBuf>,
    /// Join the domain at start-up.
    pub join: bool,
    /// `-j`.
    pub post_join_delay: Option<i32>,
    /// `-f`.
    pub post_fail_delay: Option<i32>,
    /// `-c`.
    pub clean_start: bool,
    /// Per agent call.
    pub agent_timeout: Duration,
}

/// Why the daemon could not run.
#[derive(Debug)]
pub enum DaemonError {
    /// cluster.conf did not load.
    Config(String),
    /// The local API socket.
    Ipc(clusterio::ServerError),
    /// cmand could not be reached or went away.
    Cman(String),
    /// The history file.
    History {
        /// Its path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Config(e) => write!(f, "{e}"),
            DaemonError::Ipc(e) => write!(f, "local API: {e}"),
            DaemonError::Cman(e) => write!(f, "cmand: {e}"),
            DaemonError::History { path, source } => {
                write!(f, "history file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for DaemonError {}

/// Loads cluster.conf, naming the file in errors.
pub fn load_config(path: &Path) -> Result<ClusterConf, DaemonError> {
    config::load(path)
        .map(|p| p.config)
        .map_err(|d| DaemonError::Config(d.to_string()))
}

/// The domain's nodes and settings from the configuration and the command line.
pub fn domain_settings(conf: &ClusterConf, opts: &Options) -> (Vec<NodeEntry>, FenceSettings) {
    let (nodes, mut settings) = core::settings_from_config(conf);
    let ms = |s: i32| u64::try_from(s).ok().map(|s| s.saturating_mul(1000));
    if let Some(j) = opts.post_join_delay {
        settings.post_join_delay_ms = ms(j);
    }
    if let Some(f) = opts.post_fail_delay {
        settings.post_fail_delay_ms = ms(f);
    }
    if opts.clean_start {
        settings.clean_start = true;
    }
    (nodes, settings)
}

/// Events kept for slow subscribers.
const EVENT_BACKLOG: usize = 1024;
/// IPC requests queued for the loop.
const REQUEST_QUEUE: usize = 64;

/// Runs the daemon until it leaves the domain on SIGTERM/SIGINT or cmand goes away.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let conf = load_config(&opts.config)?;
    let cman = clusterio::cmanlink::CmanLink::connect(&opts.runtime_dir).await;
    let me = cman.me.clone();
    let incarnation = incarnation();
    let history =
        match &opts.history {
            Some(path) => Some(History::open(path, DAEMON, me.id, incarnation).map_err(
                |source| DaemonError::History {
                    path: path.clone(),
                    source,
                },
            )?),
            None => None,
        };
    let socket = clusterio::socket_path(&opts.runtime_dir, DAEMON);
    let server =
        Server::<FenceRequest, FenceResponse, FenceEvent>::bind(&socket, Limits::default())
            .await
            .map_err(DaemonError::Ipc)?;
    let events = EventPublisher::new(EVENT_BACKLOG);
    let feed = events.feed();
    let (req_tx, req_rx) = mpsc::channel(REQUEST_QUEUE);
    let admin = conf
        .cman
        .admin_group
        .as_deref()
        .and_then(clusterio::group_id);
    let (_admin_tx, admin_rx) = watch::channel(admin);
    let (stop_tx, stop_rx) = watch::channel(false);
    let server_task = tokio::spawn(server.run(req_tx, feed, admin_rx, stop_rx));
    let span = tracing::info_span!("fenced", node = %me.name);
    tracing::info!(parent: &span, id = me.id, incarnation, cluster = %conf.name, "fenced starting");
    let mut shell = shell::Shell::new(opts, conf, cman, events, history);
    let result = tracing::Instrument::instrument(shell.run(req_rx), span).await;
    shell.finish(&result);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(1), server_task).await;
    result
}

/// This start's incarnation: wall-clock microseconds (grows with every start).
fn incarnation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
