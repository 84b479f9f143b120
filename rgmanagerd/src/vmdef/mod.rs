//! VM definitions: xm-style files and a plain QEMU format.
//!
//! A vm resource names a guest and a `path` of directories; [`find`] looks for the
//! definition there as rgmanager's vm.sh does, and [`load`] reads it into a [`VmDef`] that
//! every driver understands. Two text formats share one syntax ([`syntax`], a subset of
//! Python assignments):
//!
//! - **xm** (`NAME` or `NAME.cfg`): the Xen guest file of the reference deployment
//!   (`name`, `uuid`, `memory`, `maxmem`, `vcpus`, `disk = [ "tap:aio:PATH,xvda,w" ]`,
//!   `vif = [ "mac=...,bridge=xenbr0" ]`, `on_poweroff`...). Xen-only keys (`bootloader`,
//!   `vfb`, `kernel`...) are kept in [`VmDef::extra`]; unknown keys too, with a warning.
//! - **qemu** (`NAME.qemu`): the same syntax and keys, plus `machine`, `cpu` and
//!   `qemu_args`; Xen-only keys draw a warning there.
//!
//! A libvirt XML file (`NAME.xml`) is found too, but not read: only the virsh driver can
//! use it, through [`VmDef::source`].
//!
//! [`parse`] is the fuzz-friendly entry point: any `&str` gives a definition or an error
//! naming `FILE:LINE:COL`, never a panic (property-tested below).

mod lookup;
pub mod syntax;
mod xm;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use lookup::{exists_in, find, load_for_vm, Found};
pub use syntax::{Item, Pos, Value};
pub use xm::name_is_usable;

/// Which text format a definition came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum DefFormat {
    /// An xm-style Xen guest file.
    #[default]
    Xm,
    /// Our plain QEMU format (`NAME.qemu`).
    Qemu,
    /// A libvirt domain XML file; only its name and path are known.
    LibvirtXml,
}

/// What the hypervisor does when the guest powers off, reboots or crashes (xm names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifecycle {
    /// The domain goes away.
    Destroy,
    /// The domain starts again.
    Restart,
    /// The domain is kept, halted, for inspection.
    Preserve,
    /// The old domain is kept under a new name and a new one starts.
    RenameRestart,
    /// A core dump, then destroy.
    CoredumpDestroy,
    /// A core dump, then restart.
    CoredumpRestart,
}

impl Lifecycle {
    /// The xm spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Destroy => "destroy",
            Lifecycle::Restart => "restart",
            Lifecycle::Preserve => "preserve",
            Lifecycle::RenameRestart => "rename-restart",
            Lifecycle::CoredumpDestroy => "coredump-destroy",
            Lifecycle::CoredumpRestart => "coredump-restart",
        }
    }

    /// Parses the xm spelling.
    pub fn from_name(s: &str) -> Option<Lifecycle> {
        [
            Lifecycle::Destroy,
            Lifecycle::Restart,
            Lifecycle::Preserve,
            Lifecycle::RenameRestart,
            Lifecycle::CoredumpDestroy,
            Lifecycle::CoredumpRestart,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// How the guest may use a disk (`w`, `r`, `w!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskMode {
    /// `w`: read-write, exclusive.
    ReadWrite,
    /// `r`: read-only.
    ReadOnly,
    /// `w!`: read-write, shared with other guests (no locking).
    SharedWrite,
}

/// The image format of a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskFormat {
    /// A raw image or block device.
    Raw,
    /// QEMU's old qcow.
    Qcow,
    /// qcow2.
    Qcow2,
    /// VMware's vmdk.
    Vmdk,
}

impl DiskFormat {
    /// QEMU's name for the format.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow => "qcow",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
        }
    }
}

/// The Xen backend named by a disk's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskBackend {
    /// `tap:aio:`, `tap:qcow:` ...: blktap, an image file.
    Tap,
    /// `file:`: loopback-mounted image file.
    File,
    /// `phy:`: a block device.
    Phy,
    /// No Xen prefix (the QEMU format's plain path, optionally `raw:`/`qcow2:`).
    Plain,
}

/// One disk of a guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// Image file or block device; empty for an empty CD-ROM drive.
    pub path: PathBuf,
    /// The guest device name (`xvda`, `hda`, `vda`), without `ioemu:` or `:cdrom`.
    pub target: String,
    /// Read-write, read-only or shared.
    pub mode: DiskMode,
    /// Image format.
    pub format: DiskFormat,
    /// Xen backend from the prefix.
    pub backend: DiskBackend,
    /// `:cdrom` was given.
    pub cdrom: bool,
}

/// One network interface of a guest (a `vif` entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Nic {
    /// `mac=`, validated as six hex octets.
    pub mac: Option<String>,
    /// `bridge=`.
    pub bridge: Option<String>,
    /// `model=` (Xen HVM: `e1000`, `rtl8139`...).
    pub model: Option<String>,
    /// Other `key=value` pairs (`script`, `ip`, `type`...), in order.
    pub extra: Vec<(String, String)>,
}

/// A guest definition, whichever format it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmDef {
    /// The domain name (`name`), required.
    pub name: String,
    /// `uuid`, validated as 8-4-4-4-12 hex digits.
    pub uuid: Option<String>,
    /// `memory` in MiB (default 128, as xm).
    pub memory_mib: u32,
    /// `maxmem` in MiB.
    pub maxmem_mib: Option<u32>,
    /// `vcpus` (default 1).
    pub vcpus: u32,
    /// `disk` entries, in order.
    pub disks: Vec<Disk>,
    /// `vif` entries, in order.
    pub nics: Vec<Nic>,
    /// `on_poweroff` (default destroy).
    pub on_poweroff: Lifecycle,
    /// `on_reboot` (default restart).
    pub on_reboot: Lifecycle,
    /// `on_crash` (default restart).
    pub on_crash: Lifecycle,
    /// `machine` (QEMU machine type; the driver's default when unset).
    pub machine: Option<String>,
    /// `cpu` (QEMU CPU model; QEMU's default when unset).
    pub cpu: Option<String>,
    /// `qemu_args`: extra QEMU arguments, appended as given.
    pub qemu_args: Vec<String>,
    /// Every other key, by name (Xen-only and unknown keys).
    pub extra: BTreeMap<String, Value>,
    /// The file it was read from.
    pub source: Option<PathBuf>,
    /// The format it was read in.
    pub format: DefFormat,
}

impl VmDef {
    /// A minimal definition: defaults everywhere, no disks, no NICs.
    pub fn new(name: &str) -> VmDef {
        VmDef {
            name: name.to_string(),
            uuid: None,
            memory_mib: 128,
            maxmem_mib: None,
            vcpus: 1,
            disks: Vec::new(),
            nics: Vec::new(),
            on_poweroff: Lifecycle::Destroy,
            on_reboot: Lifecycle::Restart,
            on_crash: Lifecycle::Restart,
            machine: None,
            cpu: None,
            qemu_args: Vec::new(),
            extra: BTreeMap::new(),
            source: None,
            format: DefFormat::Xm,
        }
    }
}

/// Why a definition could not be read. Reported as `FILE:LINE:COL: problem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file (or `<input>`).
    pub file: String,
    /// Where the problem is.
    pub pos: Pos,
    /// What is wrong.
    pub problem: Problem,
}

impl ParseError {
    pub(crate) fn new(file: &str, pos: Pos, problem: Problem) -> ParseError {
        ParseError {
            file: file.to_string(),
            pos,
            problem,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.pos, self.problem)
    }
}

impl std::error::Error for ParseError {}

/// The problems a definition file can have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A character that starts no token.
    UnexpectedChar(char),
    /// A quote with no closing quote on its line.
    UnterminatedString,
    /// `'''` or `"""`.
    TripleQuoted,
    /// A number that is not a decimal or hex integer.
    BadNumber(String),
    /// An integer beyond 64 bits.
    IntegerOverflow(String),
    /// The token does not fit here.
    UnexpectedToken {
        /// What was found.
        found: String,
        /// What the parser wanted.
        expected: &'static str,
    },
    /// A bracket opened here is never closed.
    UnclosedBracket(char),
    /// Lists nested deeper than 16 levels.
    TooDeep,
    /// A key has a value of the wrong type.
    WrongType {
        /// The key.
        key: String,
        /// What it needs.
        expected: &'static str,
        /// What it has.
        found: &'static str,
    },
    /// A number out of its range.
    OutOfRange {
        /// The key.
        key: String,
        /// The value found.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A required key is absent (position: end of file).
    MissingKey(&'static str),
    /// `name` is empty or holds characters no driver can use.
    BadName(String),
    /// `uuid` is not 8-4-4-4-12 hex digits.
    BadUuid(String),
    /// An `on_*` value that is not an xm lifecycle action.
    BadLifecycle {
        /// The key.
        key: String,
        /// The value found.
        value: String,
    },
    /// A `disk` entry that cannot be understood.
    BadDisk {
        /// The entry.
        entry: String,
        /// Why.
        reason: &'static str,
    },
    /// A `vif` entry that cannot be understood.
    BadVif {
        /// The entry.
        entry: String,
        /// Why.
        reason: &'static str,
    },
    /// Two disks with the same target.
    DuplicateTarget(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnexpectedChar(c) => write!(f, "unexpected character `{}`", c.escape_debug()),
            Problem::UnterminatedString => write!(f, "string is not terminated on its line"),
            Problem::TripleQuoted => write!(f, "triple-quoted strings are not supported"),
            Problem::BadNumber(t) => write!(f, "`{}` is not an integer", t.escape_debug()),
            Problem::IntegerOverflow(t) => write!(f, "integer `{t}` is too large"),
            Problem::UnexpectedToken { found, expected } => {
                write!(f, "expected {expected}, found {}", found.escape_debug())
            }
            Problem::UnclosedBracket(c) => write!(f, "`{c}` is never closed"),
            Problem::TooDeep => write!(f, "lists are nested too deeply"),
            Problem::WrongType {
                key,
                expected,
                found,
            } => write!(f, "{key} must be {expected}, found {found}"),
            Problem::OutOfRange {
                key,
                value,
                min,
                max,
            } => write!(f, "{key} = {value} is out of range {min}..={max}"),
            Problem::MissingKey(k) => write!(f, "required key `{k}` is missing"),
            Problem::BadName(n) => write!(
                f,
                "name {:?} is not usable: use letters, digits, `.`, `-`, `_` (not starting with `.`)",
                n
            ),
            Problem::BadUuid(u) => write!(f, "uuid {u:?} is not 8-4-4-4-12 hex digits"),
            Problem::BadLifecycle { key, value } => write!(
                f,
                "{key} = {value:?}: expected destroy, restart, preserve, rename-restart, \
                 coredump-destroy or coredump-restart"
            ),
            Problem::BadDisk { entry, reason } => write!(f, "disk entry {entry:?}: {reason}"),
            Problem::BadVif { entry, reason } => write!(f, "vif entry {entry:?}: {reason}"),
            Problem::DuplicateTarget(t) => write!(f, "two disks use target {t}"),
        }
    }
}

/// Something kept or skipped while reading a definition; never fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The file (or `<input>`).
    pub file: String,
    /// Where.
    pub pos: Pos,
    /// What.
    pub kind: WarningKind,
}

/// The kinds of [`Warning`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// A key neither format knows; kept in [`VmDef::extra`].
    UnknownKey(String),
    /// A key given twice; the last one wins, as in Python.
    DuplicateKey(String),
    /// A Xen-only key in a QEMU-format file; kept in [`VmDef::extra`], unused.
    XenOnlyKey(String),
    /// A `vif` key we do not map; kept in [`Nic::extra`].
    UnmappedVifKey(String),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: warning: ", self.file, self.pos)?;
        match &self.kind {
            WarningKind::UnknownKey(k) => write!(f, "unknown key `{k}` kept but unused"),
            WarningKind::DuplicateKey(k) => write!(f, "`{k}` is set twice; the last value wins"),
            WarningKind::XenOnlyKey(k) => write!(f, "`{k}` is Xen-only and unused by QEMU"),
            WarningKind::UnmappedVifKey(k) => write!(f, "vif key `{k}` is kept but not mapped"),
        }
    }
}

/// A definition and the warnings collected while reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The definition.
    pub def: VmDef,
    /// Unknown, duplicate and unmapped keys, in file order.
    pub warnings: Vec<Warning>,
}

/// Why a definition could not be found or loaded.
#[derive(Debug)]
pub enum DefError {
    /// No `NAME`, `NAME.cfg`, `NAME.qemu` or `NAME.xml` in any `path` directory.
    NotFound {
        /// The vm name.
        name: String,
        /// The directories searched, in order.
        dirs: Vec<PathBuf>,
    },
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file's text is wrong.
    Parse(ParseError),
    /// The file defines a guest with another name than the vm resource.
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The vm resource's name.
        expected: String,
        /// The file's `name`.
        found: String,
    },
}

impl fmt::Display for DefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DefError::NotFound { name, dirs } => {
                let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                write!(
                    f,
                    "no definition for vm {name:?} ({name}, {name}.cfg, {name}.qemu or \
                     {name}.xml) in path {:?}",
                    dirs.join(":")
                )
            }
            DefError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            DefError::Parse(e) => write!(f, "{e}"),
            DefError::NameMismatch {
                path,
                expected,
                found,
            } => write!(
                f,
                "{} defines guest {found:?}, but the vm resource is {expected:?}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for DefError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DefError::Read { source, .. } => Some(source),
            DefError::Parse(e) => Some(e),
            _ => None,
        }
    }
}

/// Parses an xm-style definition from text; errors name the file `<input>`.
/// The fuzz-friendly entry point: never panics.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    parse_text("<input>", text, DefFormat::Xm)
}

/// Parses a definition in `format` from text; `file` names it in errors and warnings.
/// [`DefFormat::LibvirtXml`] is not parsed: the result only carries the name found in
/// the file's first `<name>` element (or an error if there is none).
pub fn parse_text(file: &str, text: &str, format: DefFormat) -> Result<Parsed, ParseError> {
    match format {
        DefFormat::LibvirtXml => xm::libvirt_name(file, text),
        DefFormat::Xm | DefFormat::Qemu => {
            let assignments = syntax::parse_assignments(file, text)?;
            xm::build(file, text, &assignments, format)
        }
    }
}

/// Reads a definition file; the format follows the extension (`.qemu`, `.xml`, else xm).
pub fn load(path: &Path) -> Result<Parsed, DefError> {
    let text = std::fs::read_to_string(path).map_err(|source| DefError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let format = format_of(path);
    let mut parsed =
        parse_text(&path.display().to_string(), &text, format).map_err(DefError::Parse)?;
    parsed.def.source = Some(path.to_path_buf());
    Ok(parsed)
}

/// The format a file name implies.
pub fn format_of(path: &Path) -> DefFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some("qemu") => DefFormat::Qemu,
        Some("xml") => DefFormat::LibvirtXml,
        _ => DefFormat::Xm,
    }
}
