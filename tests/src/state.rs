//! The lab's record of itself: `DIR/lab.json`.
//!
//! Everything the lab started is written here, so a later `clusterlab` command (or another
//! test) can find, signal and stop it, and `down` stops exactly what `up` started.
//!
//! Several processes change the record (the lab's commands, and the APC simulator's power
//! hook while a test drives the switch): every change goes through [`LabState::update`],
//! which holds an exclusive lock on `DIR/lab.lock` around load, change and save.

use crate::procs::ProcRecord;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The file name of the record inside the lab directory.
pub const STATE_FILE: &str = "lab.json";
/// The lock file that serializes changes to the record.
pub const LOCK_FILE: &str = "lab.lock";

/// Where a lab's nodes live on the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabMode {
    /// Every node on its own 127.A.B.ID address of the loopback interface (no root needed).
    #[default]
    Loopback,
    /// Every node in its own network namespace on a private bridge (root; docs/lab-network.md).
    Netns,
}

impl LabMode {
    /// `loopback` or `netns`.
    pub fn as_str(self) -> &'static str {
        match self {
            LabMode::Loopback => "loopback",
            LabMode::Netns => "netns",
        }
    }
}

/// The lab's APC power switch (the `apcsim` process) and how to log in to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerSwitch {
    /// The address it listens on (the lab host's bridge address, or 127.0.0.1).
    pub address: String,
    /// Its TCP port.
    pub port: u16,
    /// The user name it accepts.
    pub login: String,
    /// The password it accepts.
    pub password: String,
    /// The `apcsim` process.
    pub process: Option<ProcRecord>,
}

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
    /// Loopback or network namespaces.
    #[serde(default)]
    pub mode: LabMode,
    /// The process the lab belongs to, if one: when it is gone, `clusterlab gc` tears the
    /// lab down. None for a lab left running on purpose (`clusterlab up` without `--hold`).
    #[serde(default)]
    pub owner: Option<ProcRecord>,
    /// The APC power switch simulator, once started.
    #[serde(default)]
    pub power_switch: Option<PowerSwitch>,
    /// The daemons every node runs, in start order (`cmand`, then `fenced`, ...).
    #[serde(default = "membership_daemons")]
    pub daemons: Vec<String>,
    /// One entry per clusternode, in nodeid order.
    pub nodes: Vec<LabNode>,
}

/// What a lab recorded before daemons were listed ran: cmand only.
fn membership_daemons() -> Vec<String> {
    vec!["cmand".to_string()]
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
    /// Its network namespace (netns mode), e.g. `cl1a2b3c-n2`.
    #[serde(default)]
    pub netns: Option<String>,
    /// The outlet of the lab's power switch that powers it.
    #[serde(default)]
    pub outlet: u32,
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

    /// The history file of the lab's own records (faults it injected).
    pub fn lab_history_path(&self) -> PathBuf {
        self.history_dir().join("lab.jsonl")
    }

    /// The power switch's state file (outlet names and power), written by `apcsim`.
    pub fn apc_state_path(&self) -> PathBuf {
        self.dir.join("apc.json")
    }

    /// Finds the node powered by `outlet`.
    pub fn node_on_outlet(&self, outlet: u32) -> Option<&LabNode> {
        self.nodes.iter().find(|n| n.outlet == outlet)
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

    /// Loads `DIR/lab.json` under the lab's lock, lets `f` change it, saves it and returns
    /// the new record with `f`'s result. `f` must not wait for another process that takes
    /// the lock (the power hook does): it would wait forever.
    pub fn update<T, E: From<String>>(
        dir: &Path,
        f: impl FnOnce(&mut LabState) -> Result<T, E>,
    ) -> Result<(LabState, T), E> {
        let _lock = lock(dir).map_err(|e| E::from(e.to_string()))?;
        let mut lab = LabState::load(dir).map_err(|e| E::from(e.to_string()))?;
        let out = f(&mut lab);
        // Saved even when `f` failed: it may have started or stopped processes first.
        lab.save().map_err(|e| E::from(e.to_string()))?;
        out.map(|t| (lab, t))
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

/// The lab's exclusive lock (`DIR/lab.lock`), held until the value is dropped.
pub fn lock(dir: &Path) -> io::Result<Flock<File>> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| io::Error::other(format!("locking {}: {errno}", path.display())))
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
