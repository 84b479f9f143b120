//! Hypervisor drivers behind one trait.
//!
//! rgmanagerd starts, stops, checks and live-migrates a vm through a [`Driver`]:
//!
//! - [`qemu::QemuDriver`]: QEMU processes driven over QMP, one state directory per VM
//!   (sockets, pidfile, log), daemonized so a VM outlives rgmanagerd and is re-adopted.
//! - [`virsh::VirshDriver`]: libvirt through the `virsh` command, as rgmanager's vm.sh.
//! - [`xl::XlDriver`]: Xen through the `xl` command (untested on real Xen).
//!
//! [`AnyDriver`] picks one at run time. Migration is a two-sided affair: the target calls
//! [`Driver::prepare_incoming`] (QEMU listens for the guest; libvirt and Xen do this
//! themselves), the source calls [`Driver::migrate`] with the handle's URI, and if the
//! migration fails the target calls [`Driver::abort_incoming`]. A failed migration leaves
//! the VM running at the source, and the error says so ([`DriverError::MigrationFailed`]).

pub mod cmd;
pub mod qemu;
pub mod qmp;
pub mod virsh;
pub mod xl;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::vmdef::VmDef;

pub use qmp::QmpError;

/// What a driver sees of a VM on this host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum VmState {
    /// The guest runs here.
    Running,
    /// The guest exists here but its CPUs are stopped (paused, or the last phase of an
    /// outgoing migration). It is not running anywhere else.
    Paused,
    /// A QEMU waits here for an incoming live migration; the guest runs elsewhere.
    Incoming,
    /// Nothing runs here under that name.
    Stopped,
    /// The guest exists here in a bad state (crashed, internal error); the reason is the
    /// hypervisor's word for it.
    Failed(String),
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmState::Running => write!(f, "running"),
            VmState::Paused => write!(f, "paused"),
            VmState::Incoming => write!(f, "waiting for an incoming migration"),
            VmState::Stopped => write!(f, "stopped"),
            VmState::Failed(why) => write!(f, "failed ({why})"),
        }
    }
}

/// A VM a driver started or found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    /// The guest name.
    pub name: String,
    /// The hypervisor process, when the driver knows it (QEMU).
    pub pid: Option<u32>,
    /// Its state right after the start.
    pub state: VmState,
}

/// How [`Driver::stop`] may stop a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopOptions {
    /// How long the guest gets to shut down after the ACPI power button.
    pub timeout: Duration,
    /// The vm's `no_kill`: never destroy, only ask the guest.
    pub no_kill: bool,
}

/// How a stop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Nothing was running.
    WasStopped,
    /// The guest shut down within the timeout.
    ShutDown,
    /// The guest was destroyed (after the timeout, or because it was paused).
    Destroyed,
}

/// The target side of a live migration, from [`Driver::prepare_incoming`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingHandle {
    /// The guest name.
    pub name: String,
    /// What the source passes to [`Driver::migrate`] (QEMU: `tcp:HOST:PORT`).
    pub uri: String,
    /// The waiting QEMU process, if any (libvirt and Xen receive by themselves).
    pub pid: Option<u32>,
}

/// Figures of a finished live migration. The QEMU driver reports QEMU's own figures;
/// virsh and xl only know the wall time of their command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationStats {
    /// From the start of the migration until the guest ran at the target, in ms.
    pub total_ms: u64,
    /// How long the guest was stopped, in ms.
    pub downtime_ms: Option<u64>,
    /// Setup before the first memory pass, in ms.
    pub setup_ms: Option<u64>,
    /// Bytes of guest memory sent.
    pub transferred_bytes: Option<u64>,
}

/// Why a driver operation failed, and what state it left.
#[derive(Debug)]
pub enum DriverError {
    /// The guest name cannot name files or processes. Nothing was done.
    BadName {
        /// The name.
        name: String,
    },
    /// This driver cannot do that (a libvirt XML file given to QEMU...). Nothing was done.
    Unsupported {
        /// The driver.
        driver: &'static str,
        /// What was asked.
        what: String,
    },
    /// A disk image named by the definition does not exist. Nothing was started.
    MissingDisk {
        /// The guest.
        vm: String,
        /// The image.
        path: PathBuf,
    },
    /// The VM's state directory or a file in it could not be used.
    StateDir {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A QMP socket path is longer than a unix socket address allows. Choose a shorter
    /// state directory.
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
    },
    /// A program could not be run at all.
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        source: io::Error,
    },
    /// QEMU refused to start; nothing runs. `output` is what it printed.
    StartFailed {
        /// The guest.
        vm: String,
        /// Exit status.
        status: String,
        /// QEMU's messages (the last few KiB).
        output: String,
    },
    /// The QMP conversation failed; the VM's state is unknown.
    Qmp {
        /// The guest.
        vm: String,
        /// What went wrong.
        source: QmpError,
    },
    /// The operation needs a running VM and there is none here.
    NotRunning {
        /// The guest.
        vm: String,
    },
    /// The VM is already here (running, or waiting for a migration).
    AlreadyPresent {
        /// The guest.
        vm: String,
        /// Its state.
        state: VmState,
    },
    /// The hypervisor does not know the VM (virsh "Domain not found").
    NoSuchVm {
        /// The guest.
        vm: String,
    },
    /// The guest did not shut down in time and destroying was not allowed (`no_kill`),
    /// or even destroying did not end it. It may still run.
    StopTimedOut {
        /// The guest.
        vm: String,
        /// How long we waited, in ms.
        waited_ms: u64,
    },
    /// The live migration did not complete. `source_state` is the VM's state at the
    /// source afterwards: `Running` means nothing was lost (rgmanager's "service running
    /// on original owner").
    MigrationFailed {
        /// The guest.
        vm: String,
        /// The hypervisor's reason.
        reason: String,
        /// The state at the source after the failure.
        source_state: VmState,
    },
    /// A virsh or xl command failed.
    CommandFailed {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its stderr (trimmed).
        stderr: String,
    },
    /// A virsh or xl command did not finish in time and was killed.
    CommandTimedOut {
        /// The command line.
        command: String,
        /// How long it ran, in ms.
        after_ms: u64,
    },
    /// A command's output could not be understood.
    BadOutput {
        /// The command line.
        command: String,
        /// What was wrong.
        reason: String,
    },
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::BadName { name } => write!(f, "vm name {name:?} is not usable"),
            DriverError::Unsupported { driver, what } => {
                write!(f, "the {driver} driver cannot {what}")
            }
            DriverError::MissingDisk { vm, path } => write!(
                f,
                "vm {vm}: disk image {} does not exist; nothing was started",
                path.display()
            ),
            DriverError::StateDir { path, source } => {
                write!(f, "state file {}: {source}", path.display())
            }
            DriverError::SocketPathTooLong { path } => write!(
                f,
                "socket path {} is too long for a unix socket; use a shorter state directory",
                path.display()
            ),
            DriverError::Spawn { program, source } => write!(f, "cannot run {program}: {source}"),
            DriverError::StartFailed { vm, status, output } => {
                write!(f, "vm {vm}: qemu failed to start ({status}): {output}")
            }
            DriverError::Qmp { vm, source } => write!(f, "vm {vm}: qmp: {source}"),
            DriverError::NotRunning { vm } => write!(f, "vm {vm} is not running here"),
            DriverError::AlreadyPresent { vm, state } => {
                write!(f, "vm {vm} is already here ({state})")
            }
            DriverError::NoSuchVm { vm } => write!(f, "the hypervisor does not know vm {vm}"),
            DriverError::StopTimedOut { vm, waited_ms } => {
                write!(f, "vm {vm} did not stop within {waited_ms} ms")
            }
            DriverError::MigrationFailed {
                vm,
                reason,
                source_state,
            } => write!(
                f,
                "migration of vm {vm} failed: {reason}; at the source it is {source_state}"
            ),
            DriverError::CommandFailed {
                command,
                status,
                stderr,
            } => write!(f, "`{command}` failed ({status}): {stderr}"),
            DriverError::CommandTimedOut { command, after_ms } => {
                write!(
                    f,
                    "`{command}` did not finish within {after_ms} ms and was killed"
                )
            }
            DriverError::BadOutput { command, reason } => {
                write!(f, "cannot understand the output of `{command}`: {reason}")
            }
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DriverError::StateDir { source, .. } | DriverError::Spawn { source, .. } => {
                Some(source)
            }
            DriverError::Qmp { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A hypervisor driver. Every operation is idempotent where the original vm.sh was:
/// starting a running VM and stopping a stopped one succeed.
pub trait Driver: Send + Sync {
    /// The driver's name (`qemu`, `virsh`, `xl`).
    fn kind(&self) -> &'static str;

    /// Starts `def` here; a VM already running under that name is left alone.
    fn start(&self, def: &VmDef) -> impl Future<Output = Result<Running, DriverError>> + Send;

    /// Asks the guest to shut down (ACPI power button), waits up to `opts.timeout`, then
    /// destroys it unless `opts.no_kill`. A paused guest is destroyed at once, as vm.sh did.
    fn stop(
        &self,
        name: &str,
        opts: StopOptions,
    ) -> impl Future<Output = Result<StopOutcome, DriverError>> + Send;

    /// Destroys the VM at once (the vm agent's `kill`). Nothing running is a success.
    fn kill(&self, name: &str) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// The VM's state here.
    fn status(&self, name: &str) -> impl Future<Output = Result<VmState, DriverError>> + Send;

    /// Every VM this driver finds here, sorted by name, stopped ones left out.
    fn list(&self) -> impl Future<Output = Result<Vec<(String, VmState)>, DriverError>> + Send;

    /// Target side: gets ready to receive `def` by live migration on `listen` (port 0:
    /// any free port; the handle says which).
    fn prepare_incoming(
        &self,
        def: &VmDef,
        listen: SocketAddr,
    ) -> impl Future<Output = Result<IncomingHandle, DriverError>> + Send;

    /// Target side: gives up waiting for `name` (the migration failed or was abandoned).
    /// A VM that already runs here is left alone and reported as an error.
    fn abort_incoming(&self, name: &str) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Source side: live-migrates `name` to `target` (QEMU: the incoming handle's URI;
    /// virsh: a host name or libvirt URI; xl: a host name). On success nothing remains
    /// here; on failure the VM keeps running here.
    fn migrate(
        &self,
        name: &str,
        target: &str,
    ) -> impl Future<Output = Result<MigrationStats, DriverError>> + Send;
}

/// One of the drivers, chosen at run time (the trait's async methods make `dyn Driver`
/// impossible, so the daemon holds this instead).
pub enum AnyDriver {
    /// QEMU over QMP.
    Qemu(qemu::QemuDriver),
    /// libvirt through virsh.
    Virsh(virsh::VirshDriver),
    /// Xen through xl.
    Xl(xl::XlDriver),
}

macro_rules! each {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            AnyDriver::Qemu($d) => $e,
            AnyDriver::Virsh($d) => $e,
            AnyDriver::Xl($d) => $e,
        }
    };
}

impl Driver for AnyDriver {
    fn kind(&self) -> &'static str {
        each!(self, d => d.kind())
    }

    async fn start(&self, def: &VmDef) -> Result<Running, DriverError> {
        each!(self, d => d.start(def).await)
    }

    async fn stop(&self, name: &str, opts: StopOptions) -> Result<StopOutcome, DriverError> {
        each!(self, d => d.stop(name, opts).await)
    }

    async fn kill(&self, name: &str) -> Result<(), DriverError> {
        each!(self, d => d.kill(name).await)
    }

    async fn status(&self, name: &str) -> Result<VmState, DriverError> {
        each!(self, d => d.status(name).await)
    }

    async fn list(&self) -> Result<Vec<(String, VmState)>, DriverError> {
        each!(self, d => d.list().await)
    }

    async fn prepare_incoming(
        &self,
        def: &VmDef,
        listen: SocketAddr,
    ) -> Result<IncomingHandle, DriverError> {
        each!(self, d => d.prepare_incoming(def, listen).await)
    }

    async fn abort_incoming(&self, name: &str) -> Result<(), DriverError> {
        each!(self, d => d.abort_incoming(name).await)
    }

    async fn migrate(&self, name: &str, target: &str) -> Result<MigrationStats, DriverError> {
        each!(self, d => d.migrate(name, target).await)
    }
}
