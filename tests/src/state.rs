//! The lab's record of itself: `DIR/lab.json`.
//!
//! Everything the lab started is written here, so a later `clusterlab` command (or another
//! test) can find, signal and stop it, and `down` stops exactly what `up` started.

use crate::procs::ProcRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The file name of the record inside the lab directory.
pub const STATE_FILE: &str = "lab.json";

/// A whole lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// The lab directory (absolute).
    pub dir: PathBuf,
    /// The cluster name from the configuration.
    pub cluster_name: String,
    /// The configuration the lab was built from.
    pub config_source: PathBuf,
    /// Directory holding the project's binaries the lab runs.
    pub bin_dir: PathBuf,
    /// Whether cmand runs with `--realtime`.
    #[serde(default)]
    pub realtime: bool,
    /// One entry per clusternode, in nodeid order.
    pub nodes: Vec<LabNode>,
}

/// One lab host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabNode {
    /// `<clusternode name>`.
    pub name: String,
    /// `<clusternode nodeid>`.
    pub nodeid: u32,
    /// The address the node's daemons bind and peers reach it at.
    pub address: String,
    /// The node's own directory: config copy, runtime dir, logs.
    pub dir: PathBuf,
    /// Daemons currently recorded as started, by daemon name.
    pub daemons: BTreeMap<String, ProcRecord>,
}

impl LabNode {
    /// The node's copy of cluster.conf.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("cluster.conf")
    }

    /// The node's runtime directory (IPC sockets).
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The log file of one daemon.
    pub fn log_path(&self, daemon: &str) -> PathBuf {
        self.dir.join(format!("{daemon}.log"))
    }
}

impl LabState {
    /// The shared hosts file mapping node names to lab addresses (CLUSTER_HOSTS).
    pub fn hosts_path(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    /// The cluster key every node uses.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("cman_authkey")
    }

    /// Directory of the per-node history files.
    pub fn history_dir(&self) -> PathBuf {
        self.dir.join("history")
    }

    /// Finds a node by name or node id.
    pub fn node(&self, which: &str) -> Option<&LabNode> {
        self.nodes
            .iter()
            .find(|n| n.name == which || n.nodeid.to_string() == which)
    }

    /// Mutable lookup by name or node id.
    pub fn node_mut(&mut self, which: &str) -> Option<&mut LabNode> {
        self.nodes
            .iter_mut()
            .find(|n| n.name == which || n.nodeid.to_string() == which)
    }

    /// Reads `DIR/lab.json`.
    pub fn load(dir: &Path) -> io::Result<LabState> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: {e} (is there a lab here?)", path.display()),
            )
        })?;
        serde_json::from_str(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// Writes `DIR/lab.json` atomically.
    pub fn save(&self) -> io::Result<()> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(tmp, path)
    }
}

/// The loopback address of a node in loopback mode: 127.0.<id / 256>.<id % 256> (all of
/// 127.0.0.0/8 reaches the loopback interface, so no setup is needed).
pub fn loopback_address(nodeid: u32) -> String {
    format!("127.0.{}.{}", nodeid / 256, nodeid % 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_follow_node_ids() {
        assert_eq!(loopback_address(1), "127.0.0.1");
        assert_eq!(loopback_address(2), "127.0.0.2");
        assert_eq!(loopback_address(300), "127.0.1.44");
    }
}
