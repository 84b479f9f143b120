//! The daemon's shell around `libcluster::rgmanager::coord::Coordinator`: cmand (views,
//! quorum, the `rgmanager` group), fenced (has a dead node been fenced?), the hypervisor
//! driver (VM operations as tasks), the local API for clustat/clusvcadm, history records.

mod exec;
mod links;
mod requests;
mod shell;

use clusterio::history::History;
use clusterio::{EventPublisher, Limits, Server};
use libcluster::config::{self, ClusterConf};
use libcluster::ipc::rgmanager::{RgEvent, RgRequest, RgResponse, DAEMON};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the command line and environment decided.
#[derive(Clone, Debug)]
pub struct Options {
    /// cluster.conf.
    pub config: PathBuf,
    /// Runtime directory (cmand's, fenced's and our sockets).
    pub runtime_dir: PathBuf,
    /// The QEMU driver's state directory.
    pub state_dir: PathBuf,
    /// History file, if any.
    pub history: Option<PathBuf>,
}

/// Why the daemon could not run.
#[derive(Debug)]
pub enum DaemonError {
    /// cluster.conf did not load, or `<rm disabled="1">`.
    Config(String),
    /// The local API socket.
    Ipc(clusterio::ServerError),
    /// cmand could not be reached or went away.
    Cman(String),
    /// The history file or the state directory.
    Io {
        /// The path.
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
            DaemonError::Io { path, source } => write!(f, "{}: {source}", path.display()),
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

/// Events kept for slow subscribers.
const EVENT_BACKLOG: usize = 1024;
/// IPC requests queued for the loop.
const REQUEST_QUEUE: usize = 64;

/// Runs the daemon until SIGTERM/SIGINT or until cmand goes away.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let conf = load_config(&opts.config)?;
    std::fs::create_dir_all(&opts.state_dir).map_err(|source| DaemonError::Io {
        path: opts.state_dir.clone(),
        source,
    })?;
    let driver = rgmanagerd::driver::qemu::QemuDriver::new(
        opts.state_dir.clone(),
        rgmanagerd::driver::qemu::QemuOptions::default(),
    )
    .map(rgmanagerd::driver::AnyDriver::Qemu)
    .map_err(|e| DaemonError::Config(format!("the QEMU driver: {e}")))?;
    let cman = clusterio::cmanlink::CmanLink::connect(&opts.runtime_dir).await;
    let me = cman.me.clone();
    let history = match &opts.history {
        Some(path) => Some(History::open(path, DAEMON, me.id, me.incarnation).map_err(
            |source| DaemonError::Io {
                path: path.clone(),
                source,
            },
        )?),
        None => None,
    };
    let socket = clusterio::socket_path(&opts.runtime_dir, DAEMON);
    let server = Server::<RgRequest, RgResponse, RgEvent>::bind(&socket, Limits::default())
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
    let span = tracing::info_span!("rgmanagerd", node = %me.name);
    tracing::info!(parent: &span, id = me.id, cluster = %conf.name,
        services = conf.rm.vms.len() + conf.rm.services.len(), "rgmanagerd starting");
    // A VM this host could never run (a name unusable as a file name, sockets too long for
    // the state directory) is named now, not only at its first start.
    if let rgmanagerd::driver::AnyDriver::Qemu(q) = &driver {
        for vm in &conf.rm.vms {
            if let Err(e) = q.vm_paths(&vm.name) {
                tracing::error!(parent: &span, vm = %vm.name, error = %e, "this host cannot run the VM");
            }
        }
    }
    let mut shell = shell::Shell::new(opts, conf, cman, events, history, driver);
    let result = tracing::Instrument::instrument(shell.run(req_rx), span).await;
    shell.finish(&result);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(1), server_task).await;
    result
}
