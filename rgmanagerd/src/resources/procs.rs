//! `force_unmount`: finding and killing the processes that keep a file system busy, by
//! scanning `/proc` (what `fuser -km` did for fs.sh).
//!
//! A process uses the file system when its working directory, root, executable or an open
//! file lives on it. We compare device numbers (`st_dev` through the `/proc/PID/...` magic
//! links), not path prefixes: paths of processes in other mount namespaces, or of deleted
//! files, do not read like ours, and a prefix match could hit an unrelated file system
//! mounted below the mountpoint.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::warn;

/// How often we look whether the victims are gone.
const POLL: Duration = Duration::from_millis(100);

/// A process and its start time, so a recycled PID is never signalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Victim {
    pub pid: i32,
    start: u64,
}

/// The processes (other than us) using the file system with device number `dev`.
pub(crate) fn users_of(dev: u64) -> Vec<Victim> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<Victim> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| uses(*pid, dev))
        .filter_map(|pid| {
            let pid = i32::try_from(pid).ok()?;
            Some(Victim {
                pid,
                start: start_time(pid)?,
            })
        })
        .collect();
    found.sort_by_key(|v| v.pid);
    found
}

fn uses(pid: u32, dev: u64) -> bool {
    let base = Path::new("/proc").join(pid.to_string());
    let on_fs = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.dev() == dev);
    if ["cwd", "root", "exe"].iter().any(|l| on_fs(&base.join(l))) {
        return true;
    }
    std::fs::read_dir(base.join("fd"))
        .map(|fds| fds.flatten().any(|fd| on_fs(&fd.path())))
        .unwrap_or(false)
}

/// The state letter and start time (clock ticks since boot) of `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last `)`.
    let rest = text.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 22 overall; after the name, the state is field 3.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, s)| s)
}

/// Still the same process and not a zombie.
fn alive(v: &Victim) -> bool {
    matches!(stat(v.pid), Some((state, start)) if start == v.start && state != 'Z')
}

fn signal(v: &Victim, sig: Signal) {
    if alive(v) {
        let _ = kill(Pid::from_raw(v.pid), sig);
    }
}

/// SIGTERM to every victim, SIGKILL to those still alive after `grace`. Returns how many
/// needed SIGKILL. Blocking (sleeps); run it on a blocking thread.
pub(crate) fn terminate(victims: &[Victim], grace: Duration, mountpoint: &Path) -> usize {
    if victims.is_empty() {
        return 0;
    }
    let pids: Vec<i32> = victims.iter().map(|v| v.pid).collect();
    warn!(mountpoint = %mountpoint.display(), ?pids, "force_unmount: terminating processes using the file system");
    victims.iter().for_each(|v| signal(v, Signal::SIGTERM));
    let deadline = Instant::now() + grace;
    loop {
        let left: Vec<&Victim> = victims.iter().filter(|v| alive(v)).collect();
        if left.is_empty() {
            return 0;
        }
        if Instant::now() >= deadline {
            let pids: Vec<i32> = left.iter().map(|v| v.pid).collect();
            warn!(mountpoint = %mountpoint.display(), ?pids, "force_unmount: killing processes that ignored SIGTERM");
            left.iter().for_each(|v| signal(v, Signal::SIGKILL));
            return left.len();
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_stat_parses_and_we_are_never_a_victim() {
        let me = i32::try_from(std::process::id()).unwrap();
        let (state, start) = stat(me).unwrap();
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(alive(&Victim { pid: me, start }));
        assert!(
            !alive(&Victim {
                pid: me,
                start: start + 1
            }),
            "a recycled pid is not ours"
        );
        let dev = std::fs::metadata("/proc/self/cwd").unwrap().dev();
        assert!(users_of(dev).iter().all(|v| v.pid != me));
    }

    #[test]
    fn a_child_in_a_directory_is_found_then_terminated() {
        let dir = std::env::temp_dir().join(format!("rgm-procs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        struct Reap(std::process::Child);
        impl Drop for Reap {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let mut child = Reap(
            std::process::Command::new("sleep")
                .arg("300")
                .current_dir(&dir)
                .spawn()
                .unwrap(),
        );
        let pid = i32::try_from(child.0.id()).unwrap();
        // The temp directory's file system has many users; ours must be among them.
        let dev = std::fs::metadata(&dir).unwrap().dev();
        let found: Vec<Victim> = users_of(dev).into_iter().filter(|v| v.pid == pid).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(terminate(&found, Duration::from_secs(5), &dir), 0);
        let status = child.0.wait().unwrap();
        assert!(!status.success());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
