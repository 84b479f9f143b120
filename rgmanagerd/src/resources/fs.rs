//! The native `fs` agent: a local file system mounted for the service.
//!
//! Start creates the mountpoint when missing and runs `mount [-t fstype] [-o options] device
//! mountpoint`; a mount already in place with the same device is success, another device
//! there (or our block device mounted elsewhere) refuses the start. Stop runs `umount`, up
//! to three times, with `force_unmount` first terminating the processes using the file
//! system; an unmounted file system is already stopped. Status (depth 0) wants the
//! mountpoint in `/proc/self/mounts` with the configured device when that names a block
//! device here; depth 10 also lists the directory, depth 20 also writes and removes a file
//! (skipped on read-only mounts), as fs.sh did.
//!
//! File system calls that could hang (a dead disk) run on blocking threads under the
//! group's bound; if one hangs, the operation fails at the bound and the thread is left.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{debug, info, warn};

use super::agent::{Agent, Invocation};
use super::error::AgentError;
use super::mounts::{
    block_device, canonical_mountpoint, read_mounts, same_device, top_mount, MountEntry,
};
use super::procs::{terminate, users_of};
use super::run::{run, system, Command};
use super::tree::{flag, required, AttrProblem};

/// `umount` attempts before a stop fails.
const UMOUNT_TRIES: u32 = 3;
/// Pause between attempts (a process may be closing its files).
const UMOUNT_PAUSE: Duration = Duration::from_secs(1);

/// An `<fs device= mountpoint= fstype= options= force_unmount=>` resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsAgent {
    device: String,
    mountpoint: PathBuf,
    fstype: Option<String>,
    options: Option<String>,
    force_unmount: bool,
    kill_grace: Duration,
}

/// The mount table as it concerns us.
struct Table {
    /// The mountpoint as the table names it.
    mp: PathBuf,
    /// The configured device's number, when it is a block device here.
    dev: Option<u64>,
    /// What is at the mountpoint.
    state: Mounted,
    /// Our device is mounted at the mountpoint under something else.
    buried: bool,
    /// The whole table.
    mounts: Vec<MountEntry>,
}

/// Where the mount stands, read from the mount table.
enum Mounted {
    /// Our device at our mountpoint.
    Ours(MountEntry),
    /// Something else at our mountpoint.
    Other(MountEntry),
    /// Nothing at our mountpoint.
    No,
}

impl FsAgent {
    /// Reads and checks the attributes; `kill_grace` is `force_unmount`'s SIGTERM-to-SIGKILL.
    pub fn from_attrs(
        attrs: &[(String, String)],
        kill_grace: Duration,
    ) -> Result<FsAgent, AttrProblem> {
        let get = |name: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let device = required(attrs, "device")?.trim().to_string();
        let mountpoint = PathBuf::from(required(attrs, "mountpoint")?.trim());
        if !mountpoint.is_absolute() || mountpoint == Path::new("/") {
            return Err(AttrProblem::Bad {
                attr: "mountpoint",
                value: mountpoint.display().to_string(),
                reason: "not an absolute path below /".to_string(),
            });
        }
        Ok(FsAgent {
            device,
            mountpoint,
            fstype: get("fstype"),
            options: get("options"),
            force_unmount: flag(attrs, "force_unmount", false)?,
            kill_grace,
        })
    }

    /// The mountpoint as configured.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    async fn mounted(&self) -> Result<Table, AgentError> {
        let (mountpoint, device) = (self.mountpoint.clone(), self.device.clone());
        blocking(
            "reading /proc/self/mounts for",
            &self.mountpoint,
            move || {
                let mp = canonical_mountpoint(&mountpoint);
                let dev = block_device(&device);
                let mounts = read_mounts()?;
                let state = match top_mount(&mounts, &mp) {
                    Some(m) if same_device(dev, m) => Mounted::Ours(m.clone()),
                    Some(m) => Mounted::Other(m.clone()),
                    None => Mounted::No,
                };
                let buried = matches!(state, Mounted::Other(_))
                    && mounts.iter().any(|m| m.target == mp && same_device(dev, m));
                Ok(Table {
                    mp,
                    dev,
                    state,
                    buried,
                    mounts,
                })
            },
        )
        .await
    }

    fn mount_command(&self) -> Command {
        let mut args: Vec<&str> = Vec::new();
        if let Some(t) = &self.fstype {
            args.extend(["-t", t]);
        }
        if let Some(o) = &self.options {
            args.extend(["-o", o]);
        }
        let mp = self.mountpoint.to_string_lossy();
        args.extend([self.device.as_str(), &mp]);
        Command::new(system("mount"), &args)
    }
}

impl Agent for FsAgent {
    async fn start(&self, inv: &Invocation) -> Result<(), AgentError> {
        let Table {
            mp,
            dev,
            state,
            mounts,
            ..
        } = self.mounted().await?;
        match state {
            Mounted::Ours(_) => {
                info!(mountpoint = %mp.display(), "already mounted");
                return Ok(());
            }
            Mounted::Other(m) => {
                return Err(AgentError::Refused {
                    reason: format!("{} already has {} mounted on it", mp.display(), m.source),
                })
            }
            Mounted::No => {}
        }
        if let Some(dev) = dev {
            // A local file system mounted twice is corrupted; fs.sh refused too.
            if let Some(m) = mounts.iter().find(|m| block_device(&m.source) == Some(dev)) {
                return Err(AgentError::Refused {
                    reason: format!(
                        "{} is already mounted on {}",
                        self.device,
                        m.target.display()
                    ),
                });
            }
        }
        let mountpoint = self.mountpoint.clone();
        blocking("creating the mountpoint", &self.mountpoint, move || {
            std::fs::create_dir_all(&mountpoint)
        })
        .await?;
        let cmd = self.mount_command();
        let done = run(&cmd, inv.limit, &inv.resource, "start", inv.enforced).await?;
        if !done.success() {
            return Err(done.failure(&cmd));
        }
        match self.mounted().await?.state {
            Mounted::Ours(m) => {
                info!(device = %m.source, mountpoint = %mp.display(), fstype = %m.fstype, "mounted");
                Ok(())
            }
            _ => Err(AgentError::Down {
                reason: format!(
                    "`{}` succeeded but {} is not mounted from {}",
                    cmd.display(),
                    mp.display(),
                    self.device
                ),
            }),
        }
    }

    async fn stop(&self, inv: &Invocation) -> Result<(), AgentError> {
        let mut last = None;
        for attempt in 1..=UMOUNT_TRIES {
            let table = self.mounted().await?;
            let mp = table.mp;
            match table.state {
                Mounted::Ours(_) => {}
                // Unmounting the top would remove a file system that is not ours, and
                // calling ours stopped would let another node mount it too.
                Mounted::Other(m) if table.buried => {
                    return Err(AgentError::Refused {
                        reason: format!(
                            "{} is mounted on {} under {}; unmount that first",
                            self.device,
                            mp.display(),
                            m.source
                        ),
                    })
                }
                _ => {
                    debug!(mountpoint = %mp.display(), "not mounted; nothing to stop");
                    return Ok(());
                }
            }
            if self.force_unmount {
                let (grace, at) = (self.kill_grace, mp.clone());
                let killed = blocking("looking for processes using", &mp, move || {
                    let dev = std::fs::metadata(&at)?.dev();
                    Ok(terminate(&users_of(dev), grace, &at))
                })
                .await?;
                if killed > 0 {
                    debug!(mountpoint = %mp.display(), killed, "processes needed SIGKILL");
                }
            }
            let cmd = Command::new(system("umount"), &[&*mp.to_string_lossy()]);
            let done = run(&cmd, inv.limit, &inv.resource, "stop", inv.enforced).await?;
            if done.success() {
                info!(mountpoint = %mp.display(), "unmounted");
                continue; // the next pass confirms (or finds a mount of ours below)
            }
            let e = done.failure(&cmd);
            warn!(mountpoint = %mp.display(), attempt, error = %e, "umount failed");
            last = Some(e);
            if attempt < UMOUNT_TRIES {
                tokio::time::sleep(UMOUNT_PAUSE).await;
            }
        }
        if !matches!(self.mounted().await?.state, Mounted::Ours(_)) {
            return Ok(());
        }
        Err(last.unwrap_or_else(|| AgentError::Down {
            reason: format!(
                "{} is still mounted after {UMOUNT_TRIES} umounts",
                self.mountpoint.display()
            ),
        }))
    }

    async fn status(&self, depth: u32, _inv: &Invocation) -> Result<(), AgentError> {
        let Table { mp, state, .. } = self.mounted().await?;
        let entry = match state {
            Mounted::Ours(m) => m,
            Mounted::Other(m) => {
                return Err(AgentError::Down {
                    reason: format!(
                        "{} has {} mounted, not {}",
                        mp.display(),
                        m.source,
                        self.device
                    ),
                })
            }
            Mounted::No => {
                return Err(AgentError::Down {
                    reason: format!("{} is not mounted", mp.display()),
                })
            }
        };
        if depth < 10 {
            return Ok(());
        }
        let at = mp.clone();
        let listed = blocking("listing", &mp, move || std::fs::read_dir(&at).map(|_| ())).await;
        listed.map_err(|e| AgentError::Down {
            reason: e.to_string(),
        })?;
        if depth < 20 || entry.read_only() {
            return Ok(());
        }
        let probe = mp.join(format!(".rgmanagerd-writable-{}", std::process::id()));
        let at = probe.clone();
        let written = blocking("writing a test file", &probe, move || {
            std::fs::write(&at, b"rgmanagerd status check\n")?;
            std::fs::remove_file(&at)
        })
        .await;
        written.map_err(|e| AgentError::Down {
            reason: e.to_string(),
        })
    }
}

/// Runs blocking file system work on a blocking thread; its error names `what` and `path`.
async fn blocking<T: Send + 'static>(
    what: &str,
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, AgentError> {
    let io_error = |source| AgentError::Io {
        what: what.to_string(),
        path: path.to_path_buf(),
        source,
    };
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(io_error),
        Err(e) => Err(io_error(io::Error::other(e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn attributes_are_checked_and_the_mount_command_follows_them() {
        let g = Duration::from_secs(1);
        assert_eq!(
            FsAgent::from_attrs(&attrs(&[("mountpoint", "/srv")]), g),
            Err(AttrProblem::Missing("device"))
        );
        assert_eq!(
            FsAgent::from_attrs(&attrs(&[("device", "/dev/sdb1")]), g),
            Err(AttrProblem::Missing("mountpoint"))
        );
        for mp in ["srv/data", "/"] {
            let e = FsAgent::from_attrs(&attrs(&[("device", "/dev/sdb1"), ("mountpoint", mp)]), g)
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    AttrProblem::Bad {
                        attr: "mountpoint",
                        ..
                    }
                ),
                "{mp}"
            );
        }
        let e = FsAgent::from_attrs(
            &attrs(&[
                ("device", "d"),
                ("mountpoint", "/m"),
                ("force_unmount", "kinda"),
            ]),
            g,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            AttrProblem::Bad {
                attr: "force_unmount",
                ..
            }
        ));
        let a = FsAgent::from_attrs(
            &attrs(&[
                ("device", "/dev/sdb1"),
                ("mountpoint", "/srv/data"),
                ("fstype", "ext4"),
                ("options", "noatime,ro"),
            ]),
            g,
        )
        .unwrap();
        assert_eq!(
            a.mount_command().args,
            ["-t", "ext4", "-o", "noatime,ro", "/dev/sdb1", "/srv/data"]
        );
        let a = FsAgent::from_attrs(
            &attrs(&[
                ("device", "LABEL=data"),
                ("mountpoint", "/srv/d"),
                ("fstype", ""),
            ]),
            g,
        )
        .unwrap();
        assert_eq!(a.mount_command().args, ["LABEL=data", "/srv/d"]);
        assert!(!a.force_unmount);
    }
}
