//! Running the `--hook` command: `CMD on|off N` in its own process group, with a timeout.

use super::model::Power;
use super::server::PowerChange;
use std::fmt;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How a hook command ended.
#[derive(Debug)]
pub enum HookOutcome {
    /// It exited (code None: killed by a signal); `output` is the start of its stdout and
    /// stderr.
    Exited {
        /// Exit code.
        code: Option<i32>,
        /// Up to 4 KiB of its output.
        output: String,
    },
    /// It ran past the timeout; its process group was killed.
    TimedOut,
    /// It could not be started.
    SpawnFailed(io::Error),
}

impl HookOutcome {
    /// Whether it exited with 0.
    pub fn success(&self) -> bool {
        matches!(self, HookOutcome::Exited { code: Some(0), .. })
    }
}

impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookOutcome::Exited {
                code: Some(c),
                output,
            } if output.trim().is_empty() => {
                write!(f, "exit {c}")
            }
            HookOutcome::Exited {
                code: Some(c),
                output,
            } => {
                write!(f, "exit {c}: {}", output.trim())
            }
            HookOutcome::Exited { code: None, .. } => write!(f, "killed by a signal"),
            HookOutcome::TimedOut => write!(f, "timed out, killed"),
            HookOutcome::SpawnFailed(e) => write!(f, "could not start: {e}"),
        }
    }
}

const HOOK_OUTPUT_MAX: usize = 4096;

/// Runs `cmd` (a shell command line) with the arguments `on|off N` appended, in its own
/// process group, stdin from /dev/null; kills the group after `timeout`.
pub fn run_hook_command(cmd: &str, change: PowerChange, timeout: Duration) -> HookOutcome {
    let word = match change.power {
        Power::On => "on",
        Power::Off => "off",
    };
    let mut child = match Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{cmd} \"$@\""))
        .arg("apcsim-hook")
        .arg(word)
        .arg(change.outlet.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return HookOutcome::SpawnFailed(e),
    };
    let (tx, rx) = mpsc::channel();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut kept = Vec::new();
            let mut pipe = pipe;
            let mut buf = [0u8; 1024];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = HOOK_OUTPUT_MAX.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            let _ = tx.send(kept);
        });
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => break None,
        }
    };
    let Some(status) = status else {
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.wait();
        return HookOutcome::TimedOut;
    };
    // A background process of the hook may keep a pipe open: wait for output only briefly.
    let mut output = Vec::new();
    let until = Instant::now() + Duration::from_secs(1);
    while let Ok(part) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        output.extend(part);
    }
    HookOutcome::Exited {
        code: status.code(),
        output: String::from_utf8_lossy(&output).into_owned(),
    }
}
