//! The pure halves of `fence_node` and `fence_tool`: command lines, output layouts, exit
//! codes. The binaries in `src/bin` add the I/O (cluster.conf, the runner, the daemons'
//! sockets). docs/fence_tool.md describes both tools.

pub mod fence_node;
pub mod fence_tool;
mod getopt;

pub use getopt::UsageError;

/// Where cluster.conf is read from without `--config`: `$CLUSTER_CONF`, else this file.
pub const DEFAULT_CONFIG: &str = "/etc/cluster/cluster.conf";

/// The environment variable naming cluster.conf.
pub const CLUSTER_CONF_ENV: &str = "CLUSTER_CONF";

/// The cluster.conf path: the flag, else `$CLUSTER_CONF` (if set and non-empty), else
/// [`DEFAULT_CONFIG`]. `env` is the value of `$CLUSTER_CONF`.
pub fn config_path(
    flag: Option<&std::path::Path>,
    env: Option<&std::ffi::OsStr>,
) -> std::path::PathBuf {
    match (flag, env) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(env)) if !env.is_empty() => env.into(),
        _ => DEFAULT_CONFIG.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::path::{Path, PathBuf};

    #[test]
    fn config_flag_beats_environment_beats_default() {
        let flag = Some(Path::new("/x.conf"));
        let env = Some(OsStr::new("/env.conf"));
        assert_eq!(config_path(flag, env), PathBuf::from("/x.conf"));
        assert_eq!(config_path(None, env), PathBuf::from("/env.conf"));
        assert_eq!(
            config_path(None, Some(OsStr::new(""))),
            PathBuf::from(DEFAULT_CONFIG)
        );
        assert_eq!(config_path(None, None), PathBuf::from(DEFAULT_CONFIG));
    }
}
