//! `rgmanagerd`: places and recovers VM services on the cluster's hosts.
//!
//! ```text
//! rgmanagerd [-f] [-d] [--config FILE] [--runtime-dir DIR] [--state-dir DIR] [--history FILE]
//! ```
//!
//! Always runs in the foreground (systemd `Type=simple`, after cmand and fenced). It joins
//! the cmand group `rgmanager`; the lowest member of the group coordinates placement
//! (libcluster::rgmanager::coord), every member runs the VMs it is told to through the
//! hypervisor driver, and answers `clustat`/`clusvcadm` on `<runtime dir>/rgmanagerd.sock`.
//! docs/rgmanagerd.md is the operator's guide.

mod daemon;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// The resource group manager daemon.
#[derive(Parser, Debug)]
#[command(name = "rgmanagerd", version)]
struct Args {
    /// Stay in the foreground (always the case; accepted for compatibility).
    #[arg(short = 'f')]
    foreground: bool,
    /// Debug logging.
    #[arg(short = 'd', long)]
    debug: bool,
    /// cluster.conf [env: CLUSTER_CONF] [default: /etc/cluster/cluster.conf].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Runtime directory of the sockets [env: CLUSTER_RUNTIME_DIR] [default: /run/cluster].
    #[arg(long, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
    /// Where the QEMU driver keeps its per-VM sockets and pid files [default: <runtime dir>/vms].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Append history records (JSON lines) to FILE [env: CLUSTER_HISTORY].
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = args.foreground;
    clusterio::logging::init(
        "rgmanagerd",
        args.debug || std::env::var_os("RGMANAGER_DEBUG").is_some(),
    );
    let runtime_dir = clusterio::runtime_dir(args.runtime_dir.as_deref());
    let opts = daemon::Options {
        config: flag_or_env(args.config, "CLUSTER_CONF")
            .unwrap_or_else(|| PathBuf::from("/etc/cluster/cluster.conf")),
        state_dir: args.state_dir.unwrap_or_else(|| runtime_dir.join("vms")),
        runtime_dir,
        history: flag_or_env(args.history, "CLUSTER_HISTORY"),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rgmanagerd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("rgmanagerd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The flag if given, else the environment variable if set and non-empty.
fn flag_or_env(flag: Option<PathBuf>, var: &str) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}
