//! Where agents are looked for.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The environment variable with extra agent directories (colon separated), searched after
/// the directory of the running executable and before `PATH`.
pub const FENCE_AGENT_PATH_ENV: &str = "FENCE_AGENT_PATH";

/// Searched last, whatever `PATH` says: where distributions install fence agents.
pub const SYSTEM_AGENT_DIRS: [&str; 3] = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/// The directories an agent name is looked up in, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPath {
    dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// Exactly these directories.
    pub fn new(dirs: Vec<PathBuf>) -> SearchPath {
        SearchPath { dirs }
    }

    /// The path fenced and fence_node use: the running executable's directory (our agents are
    /// installed beside fenced), then `$FENCE_AGENT_PATH`, then `$PATH`, then
    /// [`SYSTEM_AGENT_DIRS`].
    pub fn from_env() -> SearchPath {
        let exe = std::env::current_exe().ok();
        let exe_dir = exe.as_deref().and_then(Path::parent);
        let extra = std::env::var_os(FENCE_AGENT_PATH_ENV);
        let path = std::env::var_os("PATH");
        SearchPath::from_parts(exe_dir, extra.as_deref(), path.as_deref())
    }

    /// [`SearchPath::from_env`] with the three inputs given. Empty entries are skipped,
    /// and a directory listed twice is kept at its first place.
    pub fn from_parts(
        exe_dir: Option<&Path>,
        fence_agent_path: Option<&OsStr>,
        path: Option<&OsStr>,
    ) -> SearchPath {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut add = |dir: PathBuf| {
            if !dir.as_os_str().is_empty() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        };
        if let Some(dir) = exe_dir {
            add(dir.to_path_buf());
        }
        for list in [fence_agent_path, path].into_iter().flatten() {
            std::env::split_paths(list).for_each(&mut add);
        }
        SYSTEM_AGENT_DIRS.iter().map(PathBuf::from).for_each(add);
        SearchPath { dirs }
    }

    /// The directories, in search order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The executable `agent` names: a name with a `/` is a path, used as is (`execlp` does
    /// the same); any other name is the first executable regular file of that name in the
    /// directories. `None`: not found.
    pub fn find(&self, agent: &str) -> Option<PathBuf> {
        if agent.is_empty() {
            return None;
        }
        if agent.contains('/') {
            return Some(PathBuf::from(agent));
        }
        self.dirs
            .iter()
            .map(|dir| dir.join(agent))
            .find(|candidate| is_executable(candidate))
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_exe_dir_then_fence_agent_path_then_path_then_system_dirs() {
        let sp = SearchPath::from_parts(
            Some(Path::new("/opt/cluster/sbin")),
            Some(OsStr::new("/a:/b::")),
            Some(OsStr::new("/usr/bin:/a:/usr/sbin")),
        );
        let want: Vec<PathBuf> = [
            "/opt/cluster/sbin",
            "/a",
            "/b",
            "/usr/bin",
            "/usr/sbin",
            "/sbin",
            "/usr/local/sbin",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(sp.dirs(), &want[..]);
    }

    #[test]
    fn names_with_a_slash_are_used_as_is_and_empty_names_are_not_found() {
        let sp = SearchPath::new(vec![]);
        assert_eq!(
            sp.find("/nowhere/fence_x"),
            Some(PathBuf::from("/nowhere/fence_x"))
        );
        assert_eq!(sp.find(""), None);
        assert_eq!(sp.find("fence_x"), None);
    }
}
