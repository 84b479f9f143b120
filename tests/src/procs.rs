//! Processes the lab started: spawn detached, identify by pid and start time, signal.
//!
//! The lab only ever signals processes it recorded itself. A record holds the pid and the
//! kernel's start time of that pid (field 22 of `/proc/PID/stat`), so a pid reused by an
//! unrelated process after ours died is never signalled.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// One process the lab started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRecord {
    /// Its pid.
    pub pid: i32,
    /// Its start time in clock ticks since boot, from /proc/PID/stat.
    pub start_time: u64,
}

/// The start time of `pid` from /proc, or None when no such process exists (or is a zombie).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); start time is field 22.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

impl ProcRecord {
    /// Whether the recorded process is still the one we started and still running.
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }

    /// Sends `sig` if the process is still ours. Returns whether it was sent.
    pub fn signal(&self, sig: Signal) -> bool {
        self.alive() && kill(Pid::from_raw(self.pid), sig).is_ok()
    }

    /// SIGTERM, then SIGKILL after `grace`; returns once the process is gone.
    pub fn stop(&self, grace: Duration) {
        if !self.signal(Signal::SIGTERM) {
            return;
        }
        let deadline = Instant::now() + grace;
        while self.alive() && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        self.kill_and_wait();
    }

    /// SIGKILL and wait (bounded) until the process is gone.
    pub fn kill_and_wait(&self) {
        self.signal(Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive() && Instant::now() < deadline {
            sleep(Duration::from_millis(10));
        }
    }
}

/// Starts `cmd` detached from the lab's own process: its own process group, stdin from
/// /dev/null, stdout and stderr appended to `log`. The child is not waited for: it is
/// reparented to init when the lab command exits, and found again through its record.
pub fn spawn_detached(mut cmd: Command, log: &Path) -> io::Result<ProcRecord> {
    let out = OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let child = cmd.spawn()?;
    let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    // Dropping `Child` does not kill or wait: the record is what we keep.
    drop(child);
    let start_time = start_time(pid).ok_or_else(|| {
        io::Error::other(format!(
            "process {pid} exited at once; see {}",
            log.display()
        ))
    })?;
    Ok(ProcRecord { pid, start_time })
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_a_start_time_and_a_dead_pid_has_none() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        let rec = ProcRecord {
            pid: me,
            start_time: start_time(me).unwrap() + 1,
        };
        assert!(
            !rec.alive(),
            "a different start time must not count as our process"
        );
    }

    #[test]
    fn spawned_process_is_tracked_and_stopped() {
        let dir = std::env::temp_dir().join(format!("clusterlab-procs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let rec = spawn_detached(cmd, &dir.join("sleep.log")).unwrap();
        assert!(rec.alive());
        rec.stop(Duration::from_secs(5));
        // The child is not ours to reap: it stays a zombie until this test process exits,
        // and a zombie does not count as alive.
        assert!(!rec.alive());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
