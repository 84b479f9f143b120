//! The lab network's error type.

use crate::nemesis::NemesisError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong with the lab network.
#[derive(Debug)]
pub enum NetError {
    /// A program (`ip`, `nft`) could not be started. Nothing was changed by it.
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// A command ran and failed; what it changed is what its stderr says (an `nft -f`
    /// transaction changes nothing when it fails).
    Command {
        /// The command line.
        command: String,
        /// Its exit status (None: killed by a signal).
        status: Option<i32>,
        /// Its standard error.
        stderr: String,
    },
    /// The node list is empty. Nothing was created.
    NoNodes,
    /// A node id cannot have an address (ids are 1..=253) or appears twice. Nothing was created.
    BadNodeId {
        /// The id.
        id: u32,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The names of this lab belong to another lab whose owner is alive (a hash collision
    /// or the same lab created twice). Nothing was created.
    InUse {
        /// The 6-hex-digit hash in the names.
        hash: String,
        /// The lab id of the owner.
        owner: String,
    },
    /// Every 10.250.X.0/24 is in use. Nothing was created.
    NoFreeSubnet,
    /// The node is not part of this lab network.
    UnknownNode(u32),
    /// A bookkeeping file (registry entry, lock, marker) could not be read or written.
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A bookkeeping file or nft's output could not be understood.
    Parse {
        /// What was being read.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Entering a namespace failed (it does not exist, or no privilege).
    Setns {
        /// The namespace.
        ns: String,
        /// Why.
        source: io::Error,
    },
    /// A socket operation of a probe failed.
    Probe {
        /// What the probe was doing.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// The fault does not fit this lab. No rule was changed.
    Fault(NemesisError),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Spawn { program, source } => write!(f, "cannot run {program}: {source}"),
            NetError::Command {
                command,
                status,
                stderr,
            } => {
                let status = status.map_or("a signal".to_string(), |s| format!("status {s}"));
                write!(f, "`{command}` failed with {status}: {}", stderr.trim())
            }
            NetError::NoNodes => write!(f, "a lab network needs at least one node"),
            NetError::BadNodeId { id, reason } => write!(f, "node id {id}: {reason}"),
            NetError::InUse { hash, owner } => {
                write!(
                    f,
                    "network names cl{hash}-* are in use by the live lab {owner:?}"
                )
            }
            NetError::NoFreeSubnet => write!(f, "every subnet 10.250.X.0/24 is in use"),
            NetError::UnknownNode(id) => write!(f, "node {id} is not in this lab network"),
            NetError::File { path, source } => write!(f, "{}: {source}", path.display()),
            NetError::Parse { what, detail } => write!(f, "cannot read {what}: {detail}"),
            NetError::Setns { ns, source } => write!(f, "cannot enter namespace {ns}: {source}"),
            NetError::Probe { what, source } => write!(f, "probe: {what}: {source}"),
            NetError::Fault(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetError::Spawn { source, .. }
            | NetError::File { source, .. }
            | NetError::Setns { source, .. }
            | NetError::Probe { source, .. } => Some(source),
            NetError::Fault(e) => Some(e),
            _ => None,
        }
    }
}

impl From<NemesisError> for NetError {
    fn from(e: NemesisError) -> NetError {
        NetError::Fault(e)
    }
}
