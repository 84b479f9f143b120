//! `fenced`: the fence domain daemon.
//!
//! ```text
//! fenced [-D] [-j SECS] [-f SECS] [-c] [--config FILE] [--runtime-dir DIR] [--history FILE]
//!        [--no-join] [--agent-timeout SECS]
//! ```
//!
//! Always runs in the foreground (systemd `Type=simple`, after cmand) and logs to stderr.
//! It connects to the local cmand (waiting for it), joins the fence domain (the cmand group
//! `fenced:default`) unless `--no-join` (then `fence_tool join` does it), and serves
//! `fence_tool`, `fence_node`, `fence_ack_manual` and rgmanagerd on
//! `<runtime dir>/fenced.sock`. The decisions are libcluster::fence's; this program only
//! carries them out: group messages through cmand, agents through fenced::runner.
//! docs/fencing.md is the operator's guide.

mod daemon;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// The fence domain daemon.
#[derive(Parser, Debug)]
#[command(name = "fenced", version)]
struct Args {
    /// Debug logging (the original's -D; fenced always stays in the foreground).
    #[arg(short = 'D', long)]
    debug: bool,
    /// post_join_delay in seconds, overriding cluster.conf (-1: wait forever).
    #[arg(short = 'j', value_name = "SECS", allow_hyphen_values = true)]
    post_join_delay: Option<i32>,
    /// post_fail_delay in seconds, overriding cluster.conf (-1: wait forever).
    #[arg(short = 'f', value_name = "SECS", allow_hyphen_values = true)]
    post_fail_delay: Option<i32>,
    /// clean_start: no start-up fencing of nodes that are not members.
    #[arg(short = 'c')]
    clean_start: bool,
    /// cluster.conf [env: CLUSTER_CONF] [default: /etc/cluster/cluster.conf].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Runtime directory of the sockets [env: CLUSTER_RUNTIME_DIR] [default: /run/cluster].
    #[arg(long, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
    /// Append history records (JSON lines) to FILE [env: CLUSTER_HISTORY].
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Do not join the fence domain at start-up; wait for `fence_tool join`.
    #[arg(long)]
    no_join: bool,
    /// Seconds one agent call may take before its process group is killed.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    agent_timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    clusterio::logging::init("fenced", args.debug);
    let opts = daemon::Options {
        config: flag_or_env(args.config, "CLUSTER_CONF")
            .unwrap_or_else(|| PathBuf::from("/etc/cluster/cluster.conf")),
        runtime_dir: clusterio::runtime_dir(args.runtime_dir.as_deref()),
        history: flag_or_env(args.history, "CLUSTER_HISTORY"),
        join: !args.no_join,
        post_join_delay: args.post_join_delay,
        post_fail_delay: args.post_fail_delay,
        clean_start: args.clean_start,
        agent_timeout: std::time::Duration::from_secs(args.agent_timeout.max(1)),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fenced: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fenced: {e}");
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
