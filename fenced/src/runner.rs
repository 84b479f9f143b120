//! Running fence agents: search path, name=value lines on stdin, a timeout per call.
//!
//! ```text
//!  MethodPlan[] ──fence_once──▶ method 0: device 0 ─ok─▶ device 1 ─ok─▶ … ─▶ success
//!                                    │ any device fails (stop the method)
//!                                    ▼
//!                               method 1: … ──▶ … all methods failed ─▶ failed
//!
//!  one call: find agent ─▶ spawn (own process group, LANG=C LC_ALL=C)
//!            ─▶ stdin = args text, closed ─▶ stdout+stderr (one pipe, bounded)
//!            ─▶ exit 0 = success │ timeout or cancel: SIGKILL to the whole group
//! ```
//!
//! This is libfence's `fence_node`/`unfence_node` (spec/fencing.md §1.6, §2.1) with two
//! additions the original lacks: a timeout per agent call ([`DEFAULT_AGENT_TIMEOUT`], a runner
//! setting: a `timeout` attribute in cluster.conf belongs to the agent) and cancellation
//! (a [`Cancel`] signal, or dropping the future), both of which kill the agent's whole process
//! group so a hung `telnet` child cannot outlive it. An agent that cannot be started ends
//! with `error from fork`; the original's child would have exited 1 (`error from agent`).
//!
//! The caller logs [`AttemptOutcome::lines`]; a cancelled attempt is neither success nor a
//! plain failure, and fenced must not count it as fenced.

mod search;

pub use search::{SearchPath, FENCE_AGENT_PATH_ENV, SYSTEM_AGENT_DIRS};

use libcluster::fence::plan::{result_line, DeviceCall, DeviceResult, MethodPlan};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tracing::debug;

/// How long one agent call may run before its process group is killed. fence_apc takes
/// 2-10 s; its own timeouts (login, shell, power) add up to well under this.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(120);

/// How much of an agent's output is kept; the rest is read and dropped.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;

/// After the agent exits, how long its output pipe is still read (a background child of
/// the agent may hold it open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// How agents are run.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Where agent names are looked up.
    pub search_path: SearchPath,
    /// Per call; on expiry the agent's process group is SIGKILLed.
    pub timeout: Duration,
    /// Bytes of stdout+stderr kept per call.
    pub output_limit: usize,
}

impl RunnerConfig {
    /// The defaults with this search path.
    pub fn new(search_path: SearchPath) -> RunnerConfig {
        RunnerConfig {
            search_path,
            timeout: DEFAULT_AGENT_TIMEOUT,
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// A cancellation signal: `true` sent on the channel stops the current agent (its group is
/// killed) and the attempt. A dropped sender never cancels.
#[derive(Debug)]
pub struct Cancel(Option<watch::Receiver<bool>>);

impl Cancel {
    /// Never cancels.
    pub fn never() -> Cancel {
        Cancel(None)
    }

    /// Cancels once `true` is sent on the channel (or if it already holds `true`).
    pub fn new(rx: watch::Receiver<bool>) -> Cancel {
        Cancel(Some(rx))
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Completes when cancellation is asked for; never, if it cannot be.
    pub async fn cancelled(&mut self) {
        if let Some(rx) = &mut self.0 {
            if rx.wait_for(|&c| c).await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

/// How an agent call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentExit {
    /// The agent exited with this status.
    Exited(i32),
    /// The agent was killed by this signal (not by us).
    Signaled(i32),
    /// It ran past the timeout; its group was killed.
    TimedOut,
    /// Cancelled; its group was killed.
    Cancelled,
    /// No executable of that name on the search path.
    NotFound,
    /// It could not be started.
    SpawnFailed(String),
    /// Not run: the plan marked the call as a configuration error.
    NotRun,
}

/// What one agent call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRun {
    /// The executable run (`None` if it was not found or not run).
    pub path: Option<PathBuf>,
    /// How it ended.
    pub exit: AgentExit,
    /// libfence's verdict: success iff it exited with status 0.
    pub result: DeviceResult,
    /// stdout and stderr as they arrived (lossy UTF-8), at most the output limit.
    pub output: String,
    /// Whether output was dropped beyond the limit.
    pub output_truncated: bool,
    /// Wall time of the call.
    pub elapsed: Duration,
}

impl AgentRun {
    fn not_run(exit: AgentExit, result: DeviceResult) -> AgentRun {
        AgentRun {
            path: None,
            exit,
            result,
            output: String::new(),
            output_truncated: false,
            elapsed: Duration::ZERO,
        }
    }
}

/// One line of an attempt: a device call, or the missing method/device that stood for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAttempt {
    /// Method position, 0-based.
    pub method_index: usize,
    /// Device position, 0-based.
    pub device_index: usize,
    /// Method name (empty if there is no method).
    pub method: String,
    /// Device name (empty if there is no device).
    pub device: String,
    /// The agent, `none` if there was none.
    pub agent: String,
    /// The result.
    pub result: DeviceResult,
    /// `fence_node -vv`'s `agent args:` text (arguments joined by spaces; may hold passwords).
    pub args_line: String,
    /// The call's details; `None` when there was no device to call.
    pub run: Option<AgentRun>,
    /// The log line: `<action> <victim> dev <m>.<d> agent <agent> result: <text>`.
    pub line: String,
}

/// The result of one pass over a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The victim, cluster.conf spelling.
    pub victim: String,
    /// A method succeeded (fence) / every device succeeded (unfence).
    pub success: bool,
    /// Nothing is configured: no method (fence) or no device (unfence).
    pub undefined: bool,
    /// Cancelled before the end: the victim's state is unknown.
    pub cancelled: bool,
    /// The method that succeeded.
    pub method: Option<String>,
    /// The last device of that method.
    pub device: Option<String>,
    /// Every device tried, in order.
    pub attempts: Vec<DeviceAttempt>,
}

impl AttemptOutcome {
    /// The per-device log lines, in order.
    pub fn lines(&self) -> Vec<String> {
        self.attempts.iter().map(|a| a.line.clone()).collect()
    }

    /// `<action> <victim> success|failed|undefined`: the summary fenced logs and fence_node
    /// prints (a cancelled attempt says `failed`).
    pub fn summary(&self, action: &str) -> String {
        let word = if self.success {
            "success"
        } else if self.undefined {
            "undefined"
        } else {
            "failed"
        };
        format!("{action} {} {word}", self.victim)
    }
}

/// Runs one device call: looks the agent up, feeds it its arguments and waits for it,
/// bounded by the configured timeout and by `cancel`.
pub async fn run_agent(call: &DeviceCall, config: &RunnerConfig, cancel: &mut Cancel) -> AgentRun {
    if let Some(result) = call.config_error {
        return AgentRun::not_run(AgentExit::NotRun, result);
    }
    let Some(path) = config.search_path.find(&call.agent) else {
        return AgentRun::not_run(AgentExit::NotFound, DeviceResult::ForkError);
    };
    let started = Instant::now();
    let mut run = match spawn_and_wait(&path, &call.args_text(), config, cancel).await {
        Ok(run) => run,
        Err(e) => AgentRun::not_run(
            AgentExit::SpawnFailed(e.to_string()),
            DeviceResult::ForkError,
        ),
    };
    run.path = Some(path);
    run.elapsed = started.elapsed();
    debug!(agent = %call.agent, device = %call.device, exit = ?run.exit, result = %run.result, "agent finished");
    run
}

/// SIGKILLs a process group when dropped while armed: a cancelled future takes the agent
/// and everything it started with it.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH: the group is already gone.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn spawn_and_wait(
    path: &std::path::Path,
    input: &str,
    config: &RunnerConfig,
    cancel: &mut Cancel,
) -> std::io::Result<AgentRun> {
    // One pipe for stdout and stderr, as libfence does, so the output keeps its order.
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let write_err: OwnedFd = write_end.try_clone()?;
    let mut command = tokio::process::Command::new(path);
    command
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(write_err))
        .process_group(0)
        .kill_on_drop(true);
    let mut tries = 0;
    let spawned = loop {
        match command.spawn() {
            // Another thread's fork can briefly hold a just-written agent open for writing.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 10 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            spawned => break spawned,
        }
    };
    // Our copies of the write end must close, or the pipe never reports end of file.
    drop(command);
    let mut child = spawned?;
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw),
    );
    let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(read_end)?;
    if let Some(mut stdin) = child.stdin.take() {
        // At most 4 KiB: it fits the pipe buffer, so this cannot block on an agent that
        // never reads. An agent that exits first makes it fail, which changes nothing.
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    let mut output = Output::new(config.output_limit);
    let mut buf = vec![0u8; 8192];
    let mut eof = false;
    let deadline = tokio::time::Instant::now() + config.timeout;
    let exit = loop {
        tokio::select! {
            read = reader.read(&mut buf), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => output.push(&buf[..n]),
            },
            status = child.wait() => {
                // The leader is reaped: its group id may be reused, so never signal it now.
                guard.0 = None;
                break match status {
                    Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                        (Some(code), _) => AgentExit::Exited(code),
                        (None, Some(sig)) => AgentExit::Signaled(sig),
                        (None, None) => AgentExit::Exited(-1),
                    },
                    Err(e) => AgentExit::SpawnFailed(e.to_string()),
                };
            }
            _ = tokio::time::sleep_until(deadline) => {
                guard.kill();
                let _ = child.wait().await;
                break AgentExit::TimedOut;
            }
            _ = cancel.cancelled() => {
                guard.kill();
                let _ = child.wait().await;
                break AgentExit::Cancelled;
            }
        }
    };
    if !eof {
        let drain_until = tokio::time::Instant::now() + DRAIN_AFTER_EXIT;
        while let Ok(Ok(n)) = tokio::time::timeout_at(drain_until, reader.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            output.push(&buf[..n]);
        }
    }
    let result = if exit == AgentExit::Exited(0) {
        DeviceResult::Success
    } else {
        DeviceResult::AgentError
    };
    Ok(AgentRun {
        path: None,
        exit,
        result,
        output: String::from_utf8_lossy(&output.kept).into_owned(),
        output_truncated: output.truncated,
        elapsed: Duration::ZERO,
    })
}

struct Output {
    kept: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Output {
    fn new(limit: usize) -> Output {
        Output {
            kept: Vec::new(),
            limit,
            truncated: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.truncated |= bytes.len() > room;
    }
}

/// One fencing attempt for `victim` (cluster.conf spelling) over `plan`, as libfence's
/// `fence_node` makes it: methods in order, a method stops at its first failing device,
/// the first method whose devices all succeed wins. No method: `undefined`, with the line
/// `fence <victim> dev 0.0 agent none result: error no method`.
pub async fn fence_once(
    victim: &str,
    plan: &[MethodPlan],
    config: &RunnerConfig,
    cancel: &mut Cancel,
) -> AttemptOutcome {
    let mut out = AttemptOutcome {
        victim: victim.to_string(),
        success: false,
        undefined: plan.is_empty(),
        cancelled: false,
        method: None,
        device: None,
        attempts: Vec::new(),
    };
    if plan.is_empty() {
        out.attempts
            .push(missing("fence", victim, 0, "", DeviceResult::NoMethod));
        return out;
    }
    for method in plan {
        if method.devices.is_empty() {
            let attempt = missing(
                "fence",
                victim,
                method.index,
                &method.name,
                DeviceResult::NoDevice,
            );
            out.attempts.push(attempt);
            continue;
        }
        let mut all_ok = true;
        for call in &method.devices {
            if cancel.is_cancelled() {
                out.cancelled = true;
                return out;
            }
            let attempt = attempt("fence", victim, call, config, cancel).await;
            let ok = attempt.result.is_success();
            let cancelled = attempt
                .run
                .as_ref()
                .is_some_and(|r| r.exit == AgentExit::Cancelled);
            out.attempts.push(attempt);
            if cancelled || cancel.is_cancelled() {
                out.cancelled = true;
                return out;
            }
            if !ok {
                all_ok = false;
                break;
            }
        }
        if all_ok {
            out.success = true;
            out.method = Some(method.name.clone());
            out.device = method.devices.last().map(|d| d.device.clone());
            return out;
        }
    }
    out
}

/// One unfencing pass (libfence's `unfence_node`): every device is run even after a
/// failure; success only if all succeeded. No device: `undefined`.
pub async fn unfence_once(
    victim: &str,
    calls: &[DeviceCall],
    config: &RunnerConfig,
    cancel: &mut Cancel,
) -> AttemptOutcome {
    let mut out = AttemptOutcome {
        victim: victim.to_string(),
        success: false,
        undefined: calls.is_empty(),
        cancelled: false,
        method: None,
        device: None,
        attempts: Vec::new(),
    };
    for call in calls {
        if cancel.is_cancelled() {
            out.cancelled = true;
            return out;
        }
        let attempt = attempt("unfence", victim, call, config, cancel).await;
        out.attempts.push(attempt);
        if cancel.is_cancelled() {
            out.cancelled = true;
            return out;
        }
    }
    out.success = !calls.is_empty() && out.attempts.iter().all(|a| a.result.is_success());
    if out.success {
        out.device = calls.last().map(|c| c.device.clone());
    }
    out
}

async fn attempt(
    action: &str,
    victim: &str,
    call: &DeviceCall,
    config: &RunnerConfig,
    cancel: &mut Cancel,
) -> DeviceAttempt {
    let run = run_agent(call, config, cancel).await;
    DeviceAttempt {
        method_index: call.method_index,
        device_index: call.device_index,
        method: call.method.clone(),
        device: call.device.clone(),
        agent: call.agent_label().to_string(),
        result: run.result,
        args_line: call.args_line(),
        line: call.result_line(action, victim, run.result),
        run: Some(run),
    }
}

fn missing(
    action: &str,
    victim: &str,
    method_index: usize,
    method: &str,
    result: DeviceResult,
) -> DeviceAttempt {
    DeviceAttempt {
        method_index,
        device_index: 0,
        method: method.to_string(),
        device: String::new(),
        agent: "none".into(),
        result,
        args_line: String::new(),
        run: None,
        line: result_line(action, victim, method_index, 0, "none", result),
    }
}

#[cfg(test)]
mod tests;
