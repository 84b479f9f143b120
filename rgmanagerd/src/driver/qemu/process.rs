//! Finding, waiting for and killing a daemonized QEMU by the PID in its pidfile.
//!
//! QEMU runs with `-daemonize`, so it is not our child: init reaps it (or, in a
//! container whose init does not reap, it lingers as a zombie, which counts as gone).
//! A PID is only trusted while `/proc/PID/cmdline` still names the VM's QMP socket, so a
//! recycled PID is never signalled.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The PID in a pidfile, if it holds one.
pub(crate) async fn read_pid(pidfile: &Path) -> Option<u32> {
    let text = tokio::fs::read_to_string(pidfile).await.ok()?;
    text.trim().parse::<u32>().ok().filter(|&p| p > 1)
}

/// Whether `pid` is a live (not zombie) process whose command line mentions `marker`.
pub(crate) async fn is_ours(pid: u32, marker: &Path) -> bool {
    let Ok(stat) = tokio::fs::read_to_string(format!("/proc/{pid}/stat")).await else {
        return false;
    };
    // The state letter follows the command name, which is in parentheses and may itself
    // contain parentheses: look after the last one.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, None | Some('Z' | 'X' | 'x')) {
        return false;
    }
    let Ok(cmdline) = tokio::fs::read(format!("/proc/{pid}/cmdline")).await else {
        return false;
    };
    let marker = marker.as_os_str().as_encoded_bytes();
    !marker.is_empty() && cmdline.windows(marker.len()).any(|w| w == marker)
}

/// Waits until `pid` is no longer our process, polling; false if it still is at `timeout`.
pub(crate) async fn wait_gone(pid: u32, marker: &Path, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !is_ours(pid, marker).await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends SIGKILL to `pid` if it is still ours. Errors (already gone) are ignored.
pub(crate) async fn sigkill(pid: u32, marker: &Path) {
    if !is_ours(pid, marker).await {
        return;
    }
    if let Ok(raw) = i32::try_from(pid) {
        if raw > 1 {
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn our_own_process_is_recognised_by_a_marker_in_its_command_line() {
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_owned();
        assert!(is_ours(me, Path::new(&name)).await);
        assert!(!is_ours(me, Path::new("/no/such/marker/qmp.sock")).await);
        assert!(!is_ours(u32::MAX - 1, Path::new("x")).await);
    }

    #[tokio::test]
    async fn pidfiles_must_hold_a_plausible_pid() {
        let dir = std::env::temp_dir().join(format!("qemu-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p");
        for (text, want) in [
            ("1234\n", Some(1234)),
            ("1", None),
            ("0", None),
            ("x", None),
        ] {
            std::fs::write(&f, text).unwrap();
            assert_eq!(read_pid(&f).await, want, "{text:?}");
        }
        assert_eq!(read_pid(&dir.join("absent")).await, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
