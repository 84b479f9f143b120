//! The QEMU driver: one daemonized `qemu-system-x86_64` per VM, driven over QMP.
//!
//! ```text
//! STATE_DIR/NAME/qmp.sock     control monitor: powerdown, quit, migrate (one op at a time)
//!               status.sock   second monitor: query-status, never blocked by a migration
//!               qemu.pid      written by QEMU (-pidfile)
//!               qemu.log      the command line and QEMU's startup messages
//!
//!            start                    system_powerdown          timeout: quit, SIGKILL
//! (none) ─────────────> running ──────────────────> (guest) ──────────────────────> (none)
//!   │ prepare_incoming     │ migrate: completed -> quit here; failed -> still running here
//!   └─────────────> inmigrate ──(source migrates)──> running
//! ```
//!
//! QEMU is started with `-daemonize`: the launching process exits once QEMU is ready (its
//! sockets listen, the pidfile is written) with a status that says whether it started,
//! and the VM is then a child of init. So a VM survives an rgmanagerd restart, and a new
//! driver on the same state directory re-adopts it: `status` and `list` find it through
//! the pidfile, check `/proc/PID/cmdline` names its socket (no recycled PIDs), and ask it
//! over QMP. `-machine accel=kvm:tcg` uses KVM when it works and TCG otherwise.

pub mod args;
mod migrate;
mod process;

use migrate::incoming_port;
pub use migrate::stats_of;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::{debug, info, warn};

use self::args::{command_line, ArgOptions, HostFacts, VmPaths};
use super::qmp::{millis, Qmp};
use super::{
    Driver, DriverError, IncomingHandle, MigrationStats, Running, StopOptions, StopOutcome, VmState,
};
use crate::vmdef::{DefFormat, VmDef};

/// Longest path a unix socket address holds (sun_path less its NUL).
const SUN_PATH_MAX: usize = 107;

/// Settings of the QEMU driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuOptions {
    /// The emulator.
    pub binary: PathBuf,
    /// What shapes the command line (machine, accel, disk cache).
    pub args: ArgOptions,
    /// Bound on each QMP answer.
    pub qmp_timeout: Duration,
    /// Bound on QEMU's startup (until it daemonizes).
    pub start_timeout: Duration,
    /// After `quit`, how long before SIGKILL.
    pub quit_timeout: Duration,
    /// Bound on a whole live migration; then it is cancelled.
    pub migrate_timeout: Duration,
    /// How often `query-migrate` is polled.
    pub migrate_poll: Duration,
}

impl Default for QemuOptions {
    fn default() -> QemuOptions {
        QemuOptions {
            binary: PathBuf::from("qemu-system-x86_64"),
            args: ArgOptions::default(),
            qmp_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(60),
            quit_timeout: Duration::from_secs(5),
            migrate_timeout: Duration::from_secs(600),
            migrate_poll: Duration::from_millis(10),
        }
    }
}

/// QEMU processes under one state directory.
pub struct QemuDriver {
    state_dir: PathBuf,
    opts: QemuOptions,
    /// One lock per VM serialises control operations (start, stop, migrate).
    locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The VM state QEMU's `query-status` names.
pub fn state_of(status: &str) -> VmState {
    match status {
        "running" => VmState::Running,
        "paused" | "suspended" | "prelaunch" | "finish-migrate" | "debug" | "restore-vm"
        | "save-vm" | "colo" => VmState::Paused,
        "inmigrate" => VmState::Incoming,
        // After an outgoing migration, or a guest poweroff under -no-shutdown: the process
        // lingers but the guest runs nowhere here.
        "postmigrate" | "shutdown" => VmState::Stopped,
        other => VmState::Failed(other.to_string()),
    }
}

fn tcp_uri(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("tcp:{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("tcp:[{}]:{}", a.ip(), a.port()),
    }
}

impl QemuDriver {
    /// A driver keeping its VMs under `state_dir` (created if absent; made absolute,
    /// since QEMU changes to `/` when it daemonizes).
    pub fn new(
        state_dir: impl Into<PathBuf>,
        opts: QemuOptions,
    ) -> Result<QemuDriver, DriverError> {
        let state_dir = state_dir.into();
        let state_dir =
            std::path::absolute(&state_dir).map_err(|source| DriverError::StateDir {
                path: state_dir.clone(),
                source,
            })?;
        std::fs::create_dir_all(&state_dir).map_err(|source| DriverError::StateDir {
            path: state_dir.clone(),
            source,
        })?;
        Ok(QemuDriver {
            state_dir,
            opts,
            locks: Mutex::new(BTreeMap::new()),
        })
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The files of VM `name`; the name must be usable as a file name and the sockets'
    /// paths must fit a unix socket address.
    pub fn vm_paths(&self, name: &str) -> Result<VmPaths, DriverError> {
        if !crate::vmdef::name_is_usable(name) {
            return Err(DriverError::BadName {
                name: name.to_string(),
            });
        }
        let paths = VmPaths::new(&self.state_dir, name);
        for sock in [&paths.qmp, &paths.status] {
            if sock.as_os_str().len() > SUN_PATH_MAX {
                return Err(DriverError::SocketPathTooLong { path: sock.clone() });
            }
        }
        Ok(paths)
    }

    fn lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(name.to_string()).or_default().clone()
    }

    /// The PID of VM's QEMU if one is alive.
    async fn live_pid(&self, paths: &VmPaths) -> Option<u32> {
        let pid = process::read_pid(&paths.pidfile).await?;
        process::is_ours(pid, &paths.qmp).await.then_some(pid)
    }

    async fn qmp(&self, name: &str, sock: &Path) -> Result<Qmp, DriverError> {
        Qmp::connect(sock, self.opts.qmp_timeout)
            .await
            .map_err(|source| DriverError::Qmp {
                vm: name.to_string(),
                source,
            })
    }

    /// Asks the status monitor.
    async fn query_state(&self, name: &str, paths: &VmPaths) -> Result<VmState, DriverError> {
        let mut q = self.qmp(name, &paths.status).await?;
        let st = q
            .execute("query-status", None)
            .await
            .map_err(|source| DriverError::Qmp {
                vm: name.to_string(),
                source,
            })?;
        Ok(state_of(
            st.get("status").and_then(Value::as_str).unwrap_or(""),
        ))
    }

    /// Removes the sockets and the pidfile of a VM that is gone; keeps the log.
    async fn cleanup(paths: &VmPaths) {
        for f in [&paths.qmp, &paths.status, &paths.pidfile] {
            let _ = tokio::fs::remove_file(f).await;
        }
    }

    /// `quit` over QMP, then SIGKILL if QEMU is still there after `quit_timeout`.
    async fn destroy(&self, name: &str, paths: &VmPaths, pid: u32) -> Result<(), DriverError> {
        match self.qmp(name, &paths.qmp).await {
            Ok(mut q) => {
                // QEMU may close the socket before it answers: that is success too.
                if let Err(e) = q.execute("quit", None).await {
                    debug!(vm = %name, error = %e, "quit");
                }
            }
            Err(e) => debug!(vm = %name, error = %e, "no monitor for quit"),
        }
        if !process::wait_gone(pid, &paths.qmp, self.opts.quit_timeout).await {
            warn!(vm = %name, pid, "qemu ignored quit, sending SIGKILL");
            process::sigkill(pid, &paths.qmp).await;
            if !process::wait_gone(pid, &paths.qmp, Duration::from_secs(10)).await {
                return Err(DriverError::StopTimedOut {
                    vm: name.to_string(),
                    waited_ms: millis(self.opts.quit_timeout) + 10_000,
                });
            }
        }
        Self::cleanup(paths).await;
        Ok(())
    }

    /// Starts QEMU for `def` (with `-incoming URI` on a migration target) and waits
    /// until it has daemonized. The caller holds the VM's lock and checked nothing runs.
    async fn launch(&self, def: &VmDef, incoming: Option<&str>) -> Result<Running, DriverError> {
        if def.format == DefFormat::LibvirtXml {
            return Err(DriverError::Unsupported {
                driver: "qemu",
                what: format!("start vm {} from a libvirt XML file", def.name),
            });
        }
        let paths = self.vm_paths(&def.name)?;
        for disk in def.disks.iter().filter(|d| !d.path.as_os_str().is_empty()) {
            if tokio::fs::metadata(&disk.path).await.is_err() {
                return Err(DriverError::MissingDisk {
                    vm: def.name.clone(),
                    path: disk.path.clone(),
                });
            }
        }
        let state_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DriverError::StateDir { path, source }
        };
        tokio::fs::create_dir_all(&paths.dir)
            .await
            .map_err(state_err(&paths.dir))?;
        Self::cleanup(&paths).await;
        let cmd = command_line(def, &paths, &self.opts.args, &host_facts().await, incoming);
        for note in &cmd.notes {
            warn!(vm = %def.name, "{note}");
        }
        let mut log = std::fs::File::create(&paths.log).map_err(state_err(&paths.log))?;
        let printable = format!("{} {}\n", self.opts.binary.display(), cmd.args.join(" "));
        log.write_all(printable.as_bytes())
            .map_err(state_err(&paths.log))?;
        let log2 = log.try_clone().map_err(state_err(&paths.log))?;
        info!(vm = %def.name, incoming = incoming.unwrap_or("-"), "starting qemu");
        let mut child = tokio::process::Command::new(&self.opts.binary)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| DriverError::Spawn {
                program: self.opts.binary.display().to_string(),
                source,
            })?;
        let status = match tokio::time::timeout(self.opts.start_timeout, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(source)) => {
                return Err(DriverError::Spawn {
                    program: self.opts.binary.display().to_string(),
                    source,
                })
            }
            Err(_) => {
                let _ = child.kill().await;
                if let Some(pid) = process::read_pid(&paths.pidfile).await {
                    process::sigkill(pid, &paths.qmp).await;
                }
                Self::cleanup(&paths).await;
                return Err(DriverError::StartFailed {
                    vm: def.name.clone(),
                    status: format!(
                        "did not finish starting within {} ms",
                        millis(self.opts.start_timeout)
                    ),
                    output: log_tail(&paths.log).await,
                });
            }
        };
        let pid = process::read_pid(&paths.pidfile).await;
        let Some(pid) = pid.filter(|_| status.success()) else {
            Self::cleanup(&paths).await;
            return Err(DriverError::StartFailed {
                vm: def.name.clone(),
                status: status.to_string(),
                output: log_tail(&paths.log).await,
            });
        };
        let state = self.query_state(&def.name, &paths).await?;
        info!(vm = %def.name, pid, %state, "qemu started");
        Ok(Running {
            name: def.name.clone(),
            pid: Some(pid),
            state,
        })
    }

    /// Kills a leftover QEMU that holds no guest (after a migration, or a poweroff under
    /// -no-shutdown), or reports what is there.
    async fn clear_leftover(&self, name: &str, paths: &VmPaths) -> Result<(), DriverError> {
        if let Some(pid) = self.live_pid(paths).await {
            match self.query_state(name, paths).await {
                Ok(VmState::Stopped) => self.destroy(name, paths, pid).await?,
                Ok(state) => {
                    return Err(DriverError::AlreadyPresent {
                        vm: name.to_string(),
                        state,
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The bridges present on this host.
async fn host_facts() -> HostFacts {
    let mut bridges = BTreeSet::new();
    if let Ok(mut dir) = tokio::fs::read_dir("/sys/class/net").await {
        while let Ok(Some(entry)) = dir.next_entry().await {
            if tokio::fs::metadata(entry.path().join("bridge"))
                .await
                .is_ok()
            {
                bridges.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    HostFacts { bridges }
}

/// The last few KiB of a log, for error messages.
async fn log_tail(log: &Path) -> String {
    let text = tokio::fs::read(log).await.unwrap_or_default();
    let start = text.len().saturating_sub(4096);
    String::from_utf8_lossy(&text[start..]).trim().to_string()
}

impl Driver for QemuDriver {
    fn kind(&self) -> &'static str {
        "qemu"
    }

    async fn start(&self, def: &VmDef) -> Result<Running, DriverError> {
        let paths = self.vm_paths(&def.name)?;
        let lock = self.lock(&def.name);
        let _held = lock.lock().await;
        if let Some(pid) = self.live_pid(&paths).await {
            match self.query_state(&def.name, &paths).await? {
                state @ (VmState::Running | VmState::Paused) => {
                    // vm.sh: starting a running VM succeeds.
                    return Ok(Running {
                        name: def.name.clone(),
                        pid: Some(pid),
                        state,
                    });
                }
                VmState::Stopped => self.destroy(&def.name, &paths, pid).await?,
                state => {
                    return Err(DriverError::AlreadyPresent {
                        vm: def.name.clone(),
                        state,
                    })
                }
            }
        }
        self.launch(def, None).await
    }

    async fn stop(&self, name: &str, opts: StopOptions) -> Result<StopOutcome, DriverError> {
        let paths = self.vm_paths(name)?;
        let lock = self.lock(name);
        let _held = lock.lock().await;
        let Some(pid) = self.live_pid(&paths).await else {
            Self::cleanup(&paths).await;
            return Ok(StopOutcome::WasStopped);
        };
        let state = self.query_state(name, &paths).await;
        if matches!(state, Ok(VmState::Running)) {
            info!(vm = %name, timeout_ms = millis(opts.timeout), "asking the guest to power off");
            match self.qmp(name, &paths.qmp).await {
                Ok(mut q) => {
                    if let Err(e) = q.execute("system_powerdown", None).await {
                        warn!(vm = %name, error = %e, "system_powerdown");
                    }
                }
                Err(e) => warn!(vm = %name, error = %e, "system_powerdown"),
            }
            if process::wait_gone(pid, &paths.qmp, opts.timeout).await {
                Self::cleanup(&paths).await;
                info!(vm = %name, "guest shut down");
                return Ok(StopOutcome::ShutDown);
            }
        }
        if opts.no_kill {
            return Err(DriverError::StopTimedOut {
                vm: name.to_string(),
                waited_ms: millis(opts.timeout),
            });
        }
        info!(vm = %name, state = ?state.ok(), "destroying");
        self.destroy(name, &paths, pid).await?;
        Ok(StopOutcome::Destroyed)
    }

    async fn kill(&self, name: &str) -> Result<(), DriverError> {
        let paths = self.vm_paths(name)?;
        let lock = self.lock(name);
        let _held = lock.lock().await;
        match self.live_pid(&paths).await {
            Some(pid) => self.destroy(name, &paths, pid).await,
            None => {
                Self::cleanup(&paths).await;
                Ok(())
            }
        }
    }

    async fn status(&self, name: &str) -> Result<VmState, DriverError> {
        let paths = self.vm_paths(name)?;
        match self.live_pid(&paths).await {
            Some(_) => self.query_state(name, &paths).await,
            None => Ok(VmState::Stopped),
        }
    }

    async fn list(&self) -> Result<Vec<(String, VmState)>, DriverError> {
        let mut names = BTreeSet::new();
        let mut dir = tokio::fs::read_dir(&self.state_dir)
            .await
            .map_err(|source| DriverError::StateDir {
                path: self.state_dir.clone(),
                source,
            })?;
        while let Ok(Some(entry)) = dir.next_entry().await {
            if let Some(name) = entry.file_name().to_str() {
                if crate::vmdef::name_is_usable(name) {
                    names.insert(name.to_string());
                }
            }
        }
        let mut out = Vec::new();
        for name in names {
            let Ok(paths) = self.vm_paths(&name) else {
                continue;
            };
            if self.live_pid(&paths).await.is_none() {
                continue;
            }
            let state = match self.query_state(&name, &paths).await {
                Ok(s) => s,
                Err(e) => VmState::Failed(format!("monitor not answering: {e}")),
            };
            if state != VmState::Stopped {
                out.push((name, state));
            }
        }
        Ok(out)
    }

    async fn prepare_incoming(
        &self,
        def: &VmDef,
        listen: SocketAddr,
    ) -> Result<IncomingHandle, DriverError> {
        let paths = self.vm_paths(&def.name)?;
        let lock = self.lock(&def.name);
        let _held = lock.lock().await;
        self.clear_leftover(&def.name, &paths).await?;
        let running = self.launch(def, Some(&tcp_uri(listen))).await?;
        let mut addr = listen;
        if addr.port() == 0 {
            let mut q = self.qmp(&def.name, &paths.status).await?;
            let info =
                q.execute("query-migrate", None)
                    .await
                    .map_err(|source| DriverError::Qmp {
                        vm: def.name.clone(),
                        source,
                    })?;
            match incoming_port(&info) {
                Some(port) => addr.set_port(port),
                None => {
                    drop(q);
                    if let Some(pid) = running.pid {
                        self.destroy(&def.name, &paths, pid).await?;
                    }
                    return Err(DriverError::Qmp {
                        vm: def.name.clone(),
                        source: super::QmpError::Protocol(format!(
                            "query-migrate names no listening port: {info}"
                        )),
                    });
                }
            }
        }
        Ok(IncomingHandle {
            name: def.name.clone(),
            uri: tcp_uri(addr),
            pid: running.pid,
        })
    }

    async fn abort_incoming(&self, name: &str) -> Result<(), DriverError> {
        let paths = self.vm_paths(name)?;
        let lock = self.lock(name);
        let _held = lock.lock().await;
        let Some(pid) = self.live_pid(&paths).await else {
            Self::cleanup(&paths).await;
            return Ok(());
        };
        match self.query_state(name, &paths).await {
            // A migration that completed after all: the guest runs here now. Never kill it.
            Ok(state @ (VmState::Running | VmState::Paused)) => Err(DriverError::AlreadyPresent {
                vm: name.to_string(),
                state,
            }),
            _ => self.destroy(name, &paths, pid).await,
        }
    }

    async fn migrate(&self, name: &str, target: &str) -> Result<MigrationStats, DriverError> {
        let paths = self.vm_paths(name)?;
        let lock = self.lock(name);
        let _held = lock.lock().await;
        let Some(pid) = self.live_pid(&paths).await else {
            return Err(DriverError::NotRunning {
                vm: name.to_string(),
            });
        };
        match self.query_state(name, &paths).await? {
            VmState::Running | VmState::Paused => {}
            _ => {
                return Err(DriverError::NotRunning {
                    vm: name.to_string(),
                })
            }
        }
        info!(vm = %name, %target, "live migration");
        self.migrate_locked(name, &paths, pid, target).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qmp_run_states_map_onto_vm_states() {
        assert_eq!(state_of("running"), VmState::Running);
        assert_eq!(state_of("paused"), VmState::Paused);
        assert_eq!(state_of("finish-migrate"), VmState::Paused);
        assert_eq!(state_of("inmigrate"), VmState::Incoming);
        assert_eq!(state_of("postmigrate"), VmState::Stopped);
        assert_eq!(state_of("shutdown"), VmState::Stopped);
        assert_eq!(
            state_of("guest-panicked"),
            VmState::Failed("guest-panicked".into())
        );
    }

    #[test]
    fn migration_figures_and_incoming_ports_are_read_from_query_migrate() {
        let done = json!({"status": "completed", "setup-time": 48, "downtime": 11,
                          "total-time": 78, "ram": {"transferred": 603297}});
        assert_eq!(
            stats_of(&done),
            MigrationStats {
                total_ms: 78,
                downtime_ms: Some(11),
                setup_ms: Some(48),
                transferred_bytes: Some(603297)
            }
        );
        let listening = json!({"socket-address": [{"port": "42353", "host": "127.0.0.1"}]});
        assert_eq!(incoming_port(&listening), Some(42353));
        assert_eq!(incoming_port(&json!({"socket-address": []})), None);
        assert_eq!(
            incoming_port(&json!({"socket-address": [{"port": 99999}]})),
            None
        );
    }

    #[test]
    fn names_and_socket_lengths_are_checked_before_any_file_is_touched() {
        let d = QemuDriver::new(
            std::env::temp_dir().join("qemu-names"),
            QemuOptions::default(),
        )
        .unwrap();
        assert!(matches!(
            d.vm_paths("../x"),
            Err(DriverError::BadName { .. })
        ));
        assert!(matches!(d.vm_paths(""), Err(DriverError::BadName { .. })));
        let long = "v".repeat(110);
        assert!(matches!(
            d.vm_paths(&long),
            Err(DriverError::SocketPathTooLong { .. })
        ));
        assert_eq!(
            tcp_uri("[::1]:5".parse().unwrap()),
            "tcp:[::1]:5".to_string()
        );
    }
}
