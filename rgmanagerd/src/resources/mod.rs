//! The resource group executor: a `<service>` starts, stops and is status-checked through
//! its resource tree, the way rgmanager's `restree.c` ran it (spec/rgmanager.md §3.1, §6.2).
//!
//! ```text
//!   cluster.conf <service>            ResourceGroup::compile             start order
//!   ├─ <fs name=data .../>     ──►    refs resolved, attributes    ──►   fs:data          (level 2)
//!   │  └─ <nfsexport .../>            inherited, agents found,           nfsexport:exp    (child of fs)
//!   ├─ <script file=.../>             status schedules built             ip:10.0.0.5      (level 7)
//!   └─ <ip address=.../>                                                 script:httpd     (level 9)
//!                                                                        stop: the exact reverse
//! ```
//!
//! - [`tree`]: compiling a `<service>` into resources in start order (type levels, `ref=`).
//! - [`schedule`]: action timeouts, status schedules and `<action>` overrides.
//! - [`agent`]: the [`Agent`] trait; the `script` and external (OCF-style `<type>.sh`) agents.
//! - [`ip`], [`fs`]: the native `ip` and `fs` agents.
//! - [`group`]: start/stop/status/probe of one group; [`local`]: this node's groups.
//!
//! Everything here does I/O (processes, `/proc`, mounts, addresses): it is the daemon's shell
//! side, not a core. What it decides is small (order, schedules) and lives in pure functions
//! that the unit tests drive with explicit instants.

pub mod agent;
mod error;
pub mod fs;
pub mod group;
pub mod ip;
pub mod local;
mod mounts;
mod procs;
mod run;
pub mod schedule;
pub mod tree;

pub use agent::{Agent, AnyAgent, Invocation, Op};
pub use error::{AgentError, GroupError, ResourceError};
pub use group::{Probe, ResourceGroup};
pub use local::ServiceGroups;
pub use schedule::{Actions, StatusAction};
pub use tree::CompiledResource;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where external agents live when `RGMANAGER_AGENT_PATH` is not set (rgmanager's
/// install directory for its agents).
pub const DEFAULT_AGENT_DIR: &str = "/usr/share/cluster";

/// The environment variable overriding the agent directories (`:`-separated).
pub const AGENT_PATH_VAR: &str = "RGMANAGER_AGENT_PATH";

/// `OCF_ROOT` passed to agents (the OCF standard location; rgmanager's agents find their
/// helpers next to themselves, through `$(dirname $0)`, so this is informational).
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";

/// Without `__enforce_timeouts`, rgmanager waited for an agent forever. We still bound every
/// run so a hung script cannot wedge the daemon: at least this long, or twice the action's
/// own timeout when that is longer (an `fs` start, with its 900 s fsck allowance, gets 30 min).
pub const DEFAULT_SAFETY_TIMEOUT: Duration = Duration::from_secs(600);

/// `force_unmount`: how long processes using a file system get between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// How agents are found and bounded. One per daemon; tests build their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// Directories searched, in order, for `<type>.sh`.
    pub dirs: Vec<PathBuf>,
    /// `OCF_ROOT` for agents.
    pub ocf_root: PathBuf,
    /// The floor of the bound on agent runs without `__enforce_timeouts`.
    pub safety_timeout: Duration,
    /// `force_unmount`: SIGTERM to SIGKILL.
    pub kill_grace: Duration,
}

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig::with_path(None)
    }
}

impl AgentConfig {
    /// The daemon's configuration: directories from `RGMANAGER_AGENT_PATH` if set.
    pub fn from_env() -> AgentConfig {
        AgentConfig::with_path(std::env::var(AGENT_PATH_VAR).ok().as_deref())
    }

    /// Directories from a `:`-separated value (empty entries skipped); `None` or an empty
    /// value means [`DEFAULT_AGENT_DIR`].
    pub fn with_path(value: Option<&str>) -> AgentConfig {
        let mut dirs: Vec<PathBuf> = value
            .unwrap_or("")
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        if dirs.is_empty() {
            dirs.push(PathBuf::from(DEFAULT_AGENT_DIR));
        }
        AgentConfig {
            dirs,
            ocf_root: PathBuf::from(DEFAULT_OCF_ROOT),
            safety_timeout: DEFAULT_SAFETY_TIMEOUT,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }

    /// The first `<dir>/<kind>.sh` that is a file.
    pub fn find_agent(&self, kind: &str) -> Option<PathBuf> {
        // A type is an element name; refuse anything that could walk out of the directory.
        if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
            return None;
        }
        self.dirs
            .iter()
            .map(|d| d.join(format!("{kind}.sh")))
            .find(|p| is_file(p))
    }
}

fn is_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_path_splits_on_colons_and_falls_back_to_the_default() {
        assert_eq!(
            AgentConfig::with_path(Some("/a::/b")).dirs,
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
        for v in [None, Some(""), Some(":")] {
            assert_eq!(
                AgentConfig::with_path(v).dirs,
                [PathBuf::from(DEFAULT_AGENT_DIR)]
            );
        }
    }

    #[test]
    fn agent_lookup_takes_the_first_directory_holding_the_type() {
        let base = std::env::temp_dir().join(format!("rgm-find-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("nfsexport.sh"), "#!/bin/sh\n").unwrap();
        std::fs::create_dir_all(a.join("apache.sh")).unwrap(); // a directory is no agent
        std::fs::write(b.join("apache.sh"), "#!/bin/sh\n").unwrap();
        let cfg = AgentConfig::with_path(Some(&format!("{}:{}", a.display(), b.display())));
        assert_eq!(cfg.find_agent("nfsexport"), Some(b.join("nfsexport.sh")));
        assert_eq!(cfg.find_agent("apache"), Some(b.join("apache.sh")));
        assert_eq!(cfg.find_agent("lvm"), None);
        assert_eq!(cfg.find_agent("../b/apache"), None);
        let _ = std::fs::remove_dir_all(&base);
    }
}
