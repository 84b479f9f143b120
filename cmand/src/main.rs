//! `cmand`: membership, quorum and ordered group messaging for the cluster (cman's role).
//!
//! ```text
//! cmand [-f|--foreground] [-d|--debug] [--config FILE] [--node NAME] [--runtime-dir DIR]
//!       [--keyfile FILE] [--history FILE] [--realtime] [--insecure-no-key]
//! ```
//!
//! Always runs in the foreground (systemd `Type=simple`) and logs to stderr; `-f` is
//! accepted for the original's muscle memory and changes nothing. docs/cmand.md has the
//! whole contract: environment fallbacks, exit codes, counters, what reloads.

mod api;
mod effects;
mod error;
mod frames;
mod io;
mod net;
mod reconfig;
mod setup;
mod shell;

use clap::Parser;
use clusterio::{EventPublisher, Limits, Server};
use error::DaemonError;
use io::history::History;
use libcluster::ipc::cman::{CmanEvent, CmanRequest, CmanResponse, DAEMON};
use setup::Options;
use shell::{Exit, Shell};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{info, Instrument};

/// Membership, quorum and group messaging daemon.
#[derive(Parser, Debug)]
#[command(name = "cmand", version)]
struct Args {
    /// Stay in the foreground (always the case; accepted for compatibility).
    #[arg(short = 'f', long)]
    foreground: bool,
    /// Debug logging for cmand and its libraries.
    #[arg(short = 'd', long)]
    debug: bool,
    /// cluster.conf [env: CLUSTER_CONF] [default: /etc/cluster/cluster.conf].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This node's clusternode name [env: CLUSTER_NODE_NAME] [default: the host name].
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Runtime directory for the socket and incarnation [env: CLUSTER_RUNTIME_DIR]
    /// [default: /run/cluster].
    #[arg(long, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
    /// Cluster key file [env: CLUSTER_KEYFILE] [default: <cman keyfile>, else
    /// /etc/cluster/cman_authkey].
    #[arg(long, value_name = "FILE")]
    keyfile: Option<PathBuf>,
    /// Append history records (JSON lines) to FILE [env: CLUSTER_HISTORY].
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Lock memory and run with SCHED_RR priority 50 (needs root; failures are warnings).
    #[arg(long)]
    realtime: bool,
    /// Without a key file: authenticate with a key derived from the cluster name. Insecure.
    #[arg(long)]
    insecure_no_key: bool,
}

/// The flag if given, else the environment variable if set and non-empty.
fn flag_or_env<T: From<String>>(flag: Option<T>, var: &str) -> Option<T> {
    flag.or_else(|| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(T::from)
    })
}

impl Args {
    fn options(self) -> Options {
        Options {
            config: flag_or_env(self.config, "CLUSTER_CONF")
                .unwrap_or_else(|| PathBuf::from("/etc/cluster/cluster.conf")),
            node: flag_or_env(self.node, "CLUSTER_NODE_NAME"),
            runtime_dir: clusterio::runtime_dir(self.runtime_dir.as_deref()),
            keyfile: flag_or_env(self.keyfile, "CLUSTER_KEYFILE"),
            history: flag_or_env(self.history, "CLUSTER_HISTORY"),
            insecure_no_key: self.insecure_no_key,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    clusterio::logging::init("cmand", args.debug);
    if args.realtime {
        // Before the runtime exists, so every thread it makes inherits the policy.
        io::realtime::enter();
    }
    let opts = args.options();
    // One thread: the loop owns the core, and --realtime's policy covers all of it.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&DaemonError::Runtime(e)),
    };
    match runtime.block_on(serve(opts)) {
        Ok(exit) => ExitCode::from(exit.status()),
        Err(e) => fail(&e),
    }
}

fn fail(e: &DaemonError) -> ExitCode {
    if let DaemonError::Config { diagnostics, .. } = e {
        for d in diagnostics.all() {
            eprintln!("{d}");
        }
    }
    eprintln!("cmand: {e}");
    ExitCode::from(1)
}

/// Sets everything up, runs the loop, and tears down the local API.
async fn serve(opts: Options) -> Result<Exit, DaemonError> {
    let setup = setup::prepare(&opts)?;
    let me = setup.me;
    let name = setup.name.clone();
    let ip = setup
        .addrs
        .get(&me)
        .copied()
        .ok_or_else(|| DaemonError::Unresolved { name: name.clone() })?;
    let addr = SocketAddr::new(ip, setup.conf.cman.port);
    let sock = io::udp::bind(addr).map_err(|source| DaemonError::Bind { addr, source })?;
    let history = match &opts.history {
        Some(path) => Some(
            History::open(path, "cmand", me.0, setup.incarnation).map_err(|source| {
                DaemonError::History {
                    path: path.clone(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    let socket = clusterio::socket_path(&opts.runtime_dir, DAEMON);
    let server = Server::<CmanRequest, CmanResponse, CmanEvent>::bind(&socket, Limits::default())
        .await
        .map_err(DaemonError::Ipc)?;
    let events = EventPublisher::new(EVENT_BACKLOG);
    let feed = events.feed();
    let (req_tx, req_rx) = mpsc::channel(REQUEST_QUEUE);
    let admin = setup
        .conf
        .cman
        .admin_group
        .as_deref()
        .and_then(clusterio::group_id);
    let (admin_tx, admin_rx) = watch::channel(admin);
    let (stop_tx, stop_rx) = watch::channel(false);
    let server_task = tokio::spawn(server.run(req_tx, feed, admin_rx, stop_rx));

    let seed = random_seed(setup.incarnation);
    let span = tracing::info_span!("cmand", node = %name);
    info!(parent: &span, id = me.0, incarnation = setup.incarnation, %addr, cluster = %setup.conf.name,
          config_version = setup.conf.config_version, seed, "cmand starting");
    let mut shell = Shell::new(setup, sock, events, history, admin_tx, seed);
    let result = shell.run(req_rx).instrument(span.clone()).await;
    if let Ok(exit) = result {
        span.in_scope(|| shell.finish(exit));
        // Let the connection tasks write the Shutdown event before they are closed.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(1), server_task).await;
    result
}

/// Events kept for slow subscribers before they are disconnected.
const EVENT_BACKLOG: usize = 4096;
/// IPC requests queued for the loop.
const REQUEST_QUEUE: usize = 64;

/// The seed of the core's RNG (logged, so an incident can be replayed in simulation).
fn random_seed(incarnation: u64) -> u64 {
    let mut b = [0u8; 8];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => incarnation ^ u64::from(std::process::id()).rotate_left(32),
    }
}
