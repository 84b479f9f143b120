//! Tracing setup for daemons and tools: human-readable lines on stderr.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the process's tracing subscriber: formatted lines on stderr (never stdout, which
/// belongs to a tool's output), colours only when stderr is a terminal.
///
/// The filter is `RUST_LOG` when set; otherwise `info`, or with `debug` set, `debug` for
/// `name` (the binary's crate, e.g. `cmand`), `libcluster` and `clusterio` while
/// dependencies stay at `info`. A second call does nothing.
pub fn init(name: &str, debug: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_directives(name, debug)));
    let _already_set = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init();
}

fn default_directives(name: &str, debug: bool) -> String {
    if debug {
        // Crate names use `_` in targets even when the package name has `-`.
        let target = name.replace('-', "_");
        format!("info,{target}=debug,libcluster=debug,clusterio=debug")
    } else {
        "info".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_flag_lowers_only_our_crates_to_debug() {
        assert_eq!(default_directives("cman_tool", false), "info");
        let d = default_directives("clusterio-probe", true);
        assert_eq!(
            d,
            "info,clusterio_probe=debug,libcluster=debug,clusterio=debug"
        );
        assert!(EnvFilter::try_new(&d).is_ok());
    }
}
