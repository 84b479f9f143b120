//! `fence_tool`: join or leave the fence domain, show it, dump fenced's log
//! (spec/fencing.md §1.10; docs/fence_tool.md).
//!
//! ```text
//!  join:  cmand reachable (-t) ─▶ quorate (-q) ─▶ all nodes members (-m) ─▶ Join ─▶ joined (-w)
//!  leave: no gfs mounts, no dlm lockspaces ─▶ Leave ─▶ not joined (-w)
//!  ls:    DomainInfo (+ Nodes with -n) ─▶ stdout; fenced not running: exit 1, no output
//!  dump:  Dump ─▶ stdout
//! ```

use clusterio::ClientError;
use fenced::tools::fence_tool::{
    active_systems, parse, render_dump, render_json, render_ls, usage, waiting_line, Op, ToolCli,
    WaitSecs,
};
use fenced::tools::{config_path, CLUSTER_CONF_ENV};
use libcluster::config;
use libcluster::ipc::cman::{self, CmanRequest, CmanResponse, CmanStatus};
use libcluster::ipc::fence::{self as fence_ipc, FenceRequest, FenceResponse};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_secs(1);
/// How long join retries a fenced whose socket exists but does not answer yet.
const FENCED_START_S: u32 = 10;
/// Progress lines come this often while waiting.
const PROGRESS_EVERY: u32 = 10;

struct Failure(String);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("fence_tool: {e}");
            eprintln!("Please use '-h' for usage.");
            return ExitCode::FAILURE;
        }
    };
    if cli.help {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    if cli.version {
        println!("fence_tool {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let dir = clusterio::runtime_dir(cli.runtime_dir.as_deref());
    let fenced = clusterio::socket_path(&dir, fence_ipc::DAEMON);
    let cmand = clusterio::socket_path(&dir, cman::DAEMON);
    let result = match cli.op {
        Some(Op::Join) => join(&cli, &fenced, &cmand),
        Some(Op::Leave) => leave(&cli, &fenced),
        Some(Op::Ls) => return ls(&cli, &fenced),
        Some(Op::Dump) | None => dump(&fenced),
    };
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("fence_tool: {message}");
            ExitCode::FAILURE
        }
    }
}

fn fenced_call(socket: &Path, request: &FenceRequest) -> Result<FenceResponse, ClientError> {
    clusterio::call_blocking(socket, request, CALL_TIMEOUT)
}

fn cman_status(socket: &Path) -> Result<CmanStatus, ClientError> {
    match clusterio::call_blocking(socket, &CmanRequest::Status, CALL_TIMEOUT)? {
        CmanResponse::Status(status) => Ok(*status),
        _ => Err(ClientError::Closed),
    }
}

/// Polls `done` once a second for up to `limit` (None: forever), printing `progress` every
/// 10 s. Returns whether it became true.
fn wait_until(limit: WaitSecs, progress: Option<&str>, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    let mut polls = 0u32;
    loop {
        if done() {
            return true;
        }
        if limit.is_some_and(|s| started.elapsed() >= Duration::from_secs(s.into())) {
            return false;
        }
        polls += 1;
        if let Some(line) = progress.filter(|_| polls % PROGRESS_EVERY == 0) {
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
        std::thread::sleep(POLL);
    }
}

fn join(cli: &ToolCli, fenced: &Path, cmand: &Path) -> Result<(), Failure> {
    let mut status = None;
    wait_until(cli.cman_retry, None, || {
        status = cman_status(cmand).ok();
        status.is_some()
    });
    let Some(status) = status else {
        return Err(Failure("can't connect to cman".into()));
    };
    if !status.quorate && cli.quorum_wait != Some(0) {
        wait_until(
            cli.quorum_wait,
            Some("fence_tool: waiting for cluster quorum"),
            || cman_status(cmand).is_ok_and(|s| s.quorate),
        );
    }
    if cli.member_wait != Some(0) {
        let env = std::env::var_os(CLUSTER_CONF_ENV);
        let path = config_path(cli.config.as_deref(), env.as_deref());
        let conf = config::load(&path)
            .map_err(|d| {
                Failure(format!(
                    "cannot use {}: {}",
                    path.display(),
                    d.first_error()
                ))
            })?
            .config;
        let ids: Vec<u32> = conf.clusternodes.iter().map(|n| n.nodeid.0).collect();
        wait_until(
            cli.member_wait,
            Some("fence_tool: waiting for all nodes to be cluster members"),
            || cman_status(cmand).is_ok_and(|s| ids.iter().all(|id| s.members.contains(id))),
        );
    }
    if !fenced.exists() {
        return Err(Failure("fenced is not running".into()));
    }
    let mut last = None;
    let sent = wait_until(Some(FENCED_START_S), None, || {
        match fenced_call(fenced, &FenceRequest::Join) {
            Ok(_) => true,
            Err(e @ ClientError::Connect { .. }) => {
                last = Some(e);
                false
            }
            Err(e) => {
                last = Some(e);
                true
            }
        }
    });
    match last {
        Some(e) if !sent || !matches!(e, ClientError::Connect { .. }) => {
            return Err(Failure(format!("join failed: {e}")))
        }
        _ => {}
    }
    wait_complete(cli, fenced, Op::Join);
    Ok(())
}

fn leave(cli: &ToolCli, fenced: &Path) -> Result<(), Failure> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let lockspaces: Vec<String> = std::fs::read_dir("/sys/kernel/dlm")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let active = active_systems(&mounts, &lockspaces);
    if !active.is_empty() {
        for line in &active {
            eprintln!("{line}");
        }
        return Err(Failure("cannot leave due to active systems".into()));
    }
    match fenced_call(fenced, &FenceRequest::Leave) {
        Ok(_) => {}
        Err(ClientError::Connect { .. }) => return Err(Failure("fenced is not running".into())),
        Err(e) => return Err(Failure(format!("leave failed: {e}"))),
    }
    wait_complete(cli, fenced, Op::Leave);
    Ok(())
}

/// `-w`: waits for fenced to report us (not) a member; on expiry says so and still exits 0.
fn wait_complete(cli: &ToolCli, fenced: &Path, op: Op) {
    if cli.complete_wait == Some(0) {
        return;
    }
    let want_joined = op == Op::Join;
    let done = wait_until(cli.complete_wait, Some(waiting_line(op)), || {
        matches!(fenced_call(fenced, &FenceRequest::DomainInfo),
            Ok(FenceResponse::Domain(d)) if d.joined == want_joined)
    });
    if !done {
        let word = if want_joined { "join" } else { "leave" };
        eprintln!("fence_tool: {word} not complete");
    }
}

fn ls(cli: &ToolCli, fenced: &Path) -> ExitCode {
    // Not running, or not in the domain: exit 1 without output (rgmanager polls this).
    let domain = match fenced_call(fenced, &FenceRequest::DomainInfo) {
        Ok(FenceResponse::Domain(d)) if d.joined => d,
        Ok(FenceResponse::Domain(_)) | Err(ClientError::Connect { .. }) => {
            return ExitCode::FAILURE
        }
        Ok(other) => {
            eprintln!("fence_tool: unexpected answer from fenced: {other:?}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("fence_tool: {e}");
            return ExitCode::FAILURE;
        }
    };
    let nodes = if cli.nodes || cli.json {
        match fenced_call(fenced, &FenceRequest::Nodes { node: None }) {
            Ok(FenceResponse::Nodes(nodes)) => Some(nodes),
            Ok(other) => {
                eprintln!("fence_tool: unexpected answer from fenced: {other:?}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("fence_tool: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let text = if cli.json {
        render_json(&domain, nodes.as_deref())
    } else {
        render_ls(&domain, nodes.as_deref())
    };
    print!("{text}");
    let _ = std::io::stdout().flush();
    ExitCode::SUCCESS
}

fn dump(fenced: &Path) -> Result<(), Failure> {
    match fenced_call(fenced, &FenceRequest::Dump) {
        Ok(FenceResponse::Dump(lines)) => {
            print!("{}", render_dump(&lines));
            Ok(())
        }
        Ok(other) => Err(Failure(format!("unexpected answer from fenced: {other:?}"))),
        Err(ClientError::Connect { .. }) => Err(Failure("fenced is not running".into())),
        Err(e) => Err(Failure(e.to_string())),
    }
}
