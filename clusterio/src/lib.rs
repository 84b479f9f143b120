//! The I/O half shared by the daemon shells: the local API over unix sockets, with the
//! peer's credentials, and tracing setup. The protocol itself (frames, error codes, the
//! access policy) is pure and lives in [`libcluster::ipc`].
//!
//! A daemon binds a [`Server`] on `socket_path(runtime_dir(flag), "cmand")` and runs it
//! beside its core task; the server checks each request against the peer's credentials and
//! hands the permitted ones to the core as [`Incoming`] values. Tools use [`IpcClient`]
//! (async) or [`call_blocking`] (no runtime, for CLIs that must answer in milliseconds).
//!
//! ```text
//!  clustat ──┐                   ┌── conn task ──┐
//!  clusvcadm ┼── <dir>/X.sock ──>├── conn task ──┼── mpsc<Incoming> ──> core task
//!  fenced ───┘    (Server)       └── conn task ──┘ <── oneshot reply ──┘
//!                                      ^ broadcast of encoded events ── EventPublisher
//! ```

mod client;
pub mod cmanlink;
mod conn;
mod creds;
pub mod history;
pub mod logging;
mod server;

pub use client::{call_blocking, BlockingClient, ClientError, Event, IpcClient, Subscription};
pub use creds::{group_id, parse_status_groups, peer_credentials};
pub use server::{EventFeed, EventPublisher, Incoming, Limits, Server, ServerError};

use std::path::{Path, PathBuf};

/// Where sockets live when neither a flag nor the environment says otherwise.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/cluster";

/// The environment variable naming the runtime directory (used by the lab, one per node).
pub const RUNTIME_DIR_ENV: &str = "CLUSTER_RUNTIME_DIR";

/// The runtime directory: the command-line flag if given, else `$CLUSTER_RUNTIME_DIR` if
/// set and non-empty, else `/run/cluster`.
pub fn runtime_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    match std::env::var_os(RUNTIME_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_RUNTIME_DIR),
    }
}

/// The socket of `daemon` (for example `cmand`) in `runtime_dir`: `<dir>/<daemon>.sock`.
pub fn socket_path(runtime_dir: &Path, daemon: &str) -> PathBuf {
    runtime_dir.join(format!("{daemon}.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_everything() {
        assert_eq!(
            runtime_dir(Some(Path::new("/tmp/x"))),
            PathBuf::from("/tmp/x")
        );
    }

    #[test]
    fn socket_is_named_after_the_daemon() {
        assert_eq!(
            socket_path(Path::new("/run/cluster"), "cmand"),
            PathBuf::from("/run/cluster/cmand.sock")
        );
    }
}
