//! `clustat` and `clusvcadm` without the sockets: command lines, layouts, messages and exit
//! codes of the original tools (spec/rgmanager.md §5.1, §5.2), as pure functions of the
//! values rgmanagerd (or cmand) answered. The binaries in `src/bin/` add the sockets, the
//! terminal and the clock; golden files in `tests/data/clustat_*` pin every layout.
//!
//! - [`clustat`]: arguments, the text report (`-l` long form included), exit rules.
//! - [`xml`]: `clustat -x` and `clustat --json`.
//! - [`clusvcadm`]: arguments, member matching, progress and result lines, exit codes.
//! - [`getopt`], [`ctime`]: the C library behaviour both tools rely on.
//! - [`client`]: the I/O both binaries share (daemon queries, terminal width, time zone).

pub mod client;
pub mod clustat;
pub mod clusvcadm;
pub mod ctime;
pub mod getopt;
pub mod xml;
