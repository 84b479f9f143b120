//! `--realtime`: keep cmand's memory resident and its thread ahead of ordinary processes,
//! so a loaded machine does not delay heartbeats past the token timeout (the original cman
//! ran corosync with SCHED_RR and mlockall too).
//!
//! Failures (no privilege, RLIMIT_MEMLOCK) are warnings: the daemon still works, only with
//! weaker timing guarantees.

use nix::sys::mman::{mlockall, MlockAllFlags};

/// SCHED_RR priority: above ordinary real-time helpers, below the kernel's own (99).
pub const PRIORITY: i32 = 50;

/// Locks all current and future memory and switches the calling thread to SCHED_RR at
/// [`PRIORITY`]. Call it before the runtime starts: threads created later inherit the
/// policy. Returns what failed, already logged.
pub fn enter() -> Vec<String> {
    let mut failed = Vec::new();
    if let Err(e) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        tracing::warn!(error = %e, "--realtime: mlockall failed; memory may be paged out");
        failed.push(format!("mlockall: {e}"));
    }
    let param = libc::sched_param {
        sched_priority: PRIORITY,
    };
    // SAFETY: sched_setscheduler reads the sched_param we pass by reference for the
    // duration of the call only; pid 0 means the calling thread. No memory is shared.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(error = %e, priority = PRIORITY, "--realtime: cannot switch to SCHED_RR");
        failed.push(format!("sched_setscheduler: {e}"));
    }
    if failed.is_empty() {
        tracing::info!(
            priority = PRIORITY,
            "running with SCHED_RR and locked memory"
        );
    }
    failed
}
