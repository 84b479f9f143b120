//! `fence_node`: fence (or with `-U` unfence) one node now, the way fenced would, and tell
//! fenced about a success (spec/fencing.md §1.11; docs/fence_tool.md).
//!
//! ```text
//!  argv ─▶ cluster.conf (--config > $CLUSTER_CONF > /etc/cluster/cluster.conf)
//!       ─▶ fence_plan / unfence_plan ─▶ runner (each agent once) ─▶ stderr report
//!       ─▶ success: FenceRequest::External to fenced (if it runs)
//!  exit: 0 success, 1 failed, 2 nothing configured
//! ```

use clusterio::ClientError;
use fenced::runner::{fence_once, unfence_once, AttemptOutcome, Cancel, RunnerConfig, SearchPath};
use fenced::tools::fence_node::{exit_code, parse, report, usage, NodeCli};
use fenced::tools::{config_path, CLUSTER_CONF_ENV};
use libcluster::config;
use libcluster::fence::plan::{fence_plan, lookup_node, unfence_plan};
use libcluster::ipc::cman::{self, CmanRequest, CmanResponse};
use libcluster::ipc::fence::{self as fence_ipc, FenceRequest, FenceResponse};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// fenced answers External from memory.
const FENCED_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("fence_node: {e}");
            eprintln!("Please use '-h' for usage.");
            return ExitCode::FAILURE;
        }
    };
    if cli.help {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    if cli.version {
        println!("fence_node {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("fence_node: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &NodeCli) -> Result<u8, String> {
    let env = std::env::var_os(CLUSTER_CONF_ENV);
    let path = config_path(cli.config.as_deref(), env.as_deref());
    let conf = match config::load(&path) {
        Ok(parsed) => parsed.config,
        Err(diags) => {
            for d in diags.errors() {
                eprintln!("{d}");
            }
            return Err(format!("cannot use {}", path.display()));
        }
    };
    let runtime_dir = clusterio::runtime_dir(cli.runtime_dir.as_deref());
    let asked = match &cli.node {
        Some(node) => node.clone(),
        None => local_node_name(&runtime_dir)?,
    };
    let victim = lookup_node(&conf, &asked)
        .map_err(|e| format!("{e} ({})", path.display()))?
        .name
        .clone();
    let runner = RunnerConfig::new(SearchPath::from_env());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let outcome: AttemptOutcome = if cli.unfence {
        let calls = unfence_plan(&conf, &victim).map_err(|e| e.to_string())?;
        rt.block_on(unfence_once(&victim, &calls, &runner, &mut Cancel::never()))
    } else {
        let plan = fence_plan(&conf, &victim).map_err(|e| e.to_string())?;
        rt.block_on(fence_once(&victim, &plan, &runner, &mut Cancel::never()))
    };
    eprint!("{}", report(&outcome, cli.action(), cli.verbose));
    if outcome.success && !cli.unfence {
        tell_fenced(&runtime_dir, &outcome);
    }
    Ok(exit_code(&outcome))
}

/// `-U` without a node: this node's name as cmand knows it, else the host name.
fn local_node_name(runtime_dir: &Path) -> Result<String, String> {
    let socket = clusterio::socket_path(runtime_dir, cman::DAEMON);
    match clusterio::call_blocking::<CmanRequest, CmanResponse>(
        &socket,
        &CmanRequest::Status,
        FENCED_TIMEOUT,
    ) {
        Ok(CmanResponse::Status(status)) if !status.node_name.is_empty() => Ok(status.node_name),
        _ => nix::unistd::gethostname()
            .map_err(|e| format!("cannot find this node's name: {e}"))
            .map(|h| h.to_string_lossy().into_owned()),
    }
}

/// Records the success with fenced (C3's EXTERNAL) so the domain does not fence the node
/// again for the same failure. fenced not running is fine: a note, the exit stays 0.
fn tell_fenced(runtime_dir: &Path, outcome: &AttemptOutcome) {
    let socket = clusterio::socket_path(runtime_dir, fence_ipc::DAEMON);
    let request = FenceRequest::External {
        node: outcome.victim.clone(),
        method: outcome.method.clone(),
        device: outcome.device.clone(),
    };
    match clusterio::call_blocking::<FenceRequest, FenceResponse>(&socket, &request, FENCED_TIMEOUT)
    {
        Ok(_) => {}
        Err(ClientError::Connect { .. }) => {
            eprintln!("fence_node: fenced is not running; the fence domain was not told");
        }
        Err(e) => eprintln!("fence_node: fenced was not told: {e}"),
    }
}
