//! Why the daemon could not start. Every variant ends the process with status 1 before any
//! frame was sent; the message names the file, node or address involved.

use libcluster::config::Diagnostics;
use libcluster::membership::MembershipError;
use libcluster::wire::KeyError;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A startup failure of cmand.
#[derive(Debug)]
pub enum DaemonError {
    /// cluster.conf could not be read or does not validate; the diagnostics say where.
    Config {
        /// The file.
        path: PathBuf,
        /// Errors and warnings, by position.
        diagnostics: Diagnostics,
    },
    /// cluster.conf could not be read (missing, unreadable, not UTF-8).
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// No `<clusternode>` is this host: neither the given name nor the host name matches.
    WhoAmI {
        /// The name looked for (`--node`, `CLUSTER_NODE_NAME` or the host name).
        name: String,
        /// Whether it came from the host name rather than the command line or environment.
        from_hostname: bool,
        /// The config file searched.
        path: PathBuf,
    },
    /// The host name could not be read and no node name was given.
    Hostname(io::Error),
    /// The hosts file named by `CLUSTER_HOSTS` could not be read.
    Hosts {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// This node's own name has no address, so there is nothing to bind.
    Unresolved {
        /// The node name.
        name: String,
    },
    /// The cluster key could not be loaded.
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: KeyError,
    },
    /// The configuration does not make a valid membership core.
    Core(MembershipError),
    /// The membership socket could not be bound.
    Bind {
        /// This node's address and port.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The history file could not be opened for appending.
    History {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The local API socket could not be set up.
    Ipc(clusterio::ServerError),
    /// The async runtime or a signal handler could not be set up.
    Runtime(io::Error),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Config { path, diagnostics } => write!(
                f,
                "{} does not validate ({} error(s)); first: {}",
                path.display(),
                diagnostics.errors().count(),
                diagnostics.first_error()
            ),
            DaemonError::ConfigRead { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            DaemonError::WhoAmI {
                name,
                from_hostname: true,
                path,
            } => write!(
                f,
                "this host ({name}) is not a clusternode in {}; name the node with --node NAME \
                 or CLUSTER_NODE_NAME",
                path.display()
            ),
            DaemonError::WhoAmI { name, path, .. } => {
                write!(f, "node {name} is not a clusternode in {}", path.display())
            }
            DaemonError::Hostname(e) => write!(
                f,
                "cannot read the host name ({e}); name the node with --node NAME"
            ),
            DaemonError::Hosts { path, source } => {
                write!(f, "cannot read hosts file {}: {source}", path.display())
            }
            DaemonError::Unresolved { name } => write!(
                f,
                "cannot resolve the address of this node ({name}); add it to the hosts file \
                 or DNS"
            ),
            DaemonError::Key {
                path,
                source: KeyError::NotFound { .. },
            } => write!(
                f,
                "key file {p} does not exist; create one with: cman_tool keygen {p} \
                 (then copy it to every node)",
                p = path.display()
            ),
            DaemonError::Key { source, .. } => write!(f, "{source}"),
            DaemonError::Core(e) => write!(f, "invalid membership configuration: {e}"),
            DaemonError::Bind { addr, source } => {
                write!(f, "cannot bind the membership socket {addr}: {source}")
            }
            DaemonError::History { path, source } => {
                write!(f, "cannot open history file {}: {source}", path.display())
            }
            DaemonError::Ipc(e) => write!(f, "local API: {e}"),
            DaemonError::Runtime(e) => write!(f, "cannot start the runtime: {e}"),
        }
    }
}

impl std::error::Error for DaemonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DaemonError::Config { diagnostics, .. } => Some(diagnostics),
            DaemonError::Hostname(e) | DaemonError::Runtime(e) => Some(e),
            DaemonError::Hosts { source, .. }
            | DaemonError::Bind { source, .. }
            | DaemonError::ConfigRead { source, .. }
            | DaemonError::History { source, .. } => Some(source),
            DaemonError::Key { source, .. } => Some(source),
            DaemonError::Core(e) => Some(e),
            DaemonError::Ipc(e) => Some(e),
            DaemonError::WhoAmI { .. } | DaemonError::Unresolved { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_names_the_path_and_the_command_that_creates_it() {
        let path = PathBuf::from("/etc/cluster/cman_authkey");
        let e = DaemonError::Key {
            path: path.clone(),
            source: KeyError::NotFound { path },
        };
        let msg = e.to_string();
        assert!(
            msg.contains("/etc/cluster/cman_authkey does not exist")
                && msg.contains("create one with: cman_tool keygen /etc/cluster/cman_authkey"),
            "{msg}"
        );
    }
}
