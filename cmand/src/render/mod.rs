//! Pure renderers for `cman_tool`: the daemon's answers in, the original tool's text out.
//!
//! ```text
//!  CmanStatus ──status()──▶ "Version: 6.2.0\nConfig Version: 3\n..."     (spec §1.8)
//!             ──version()─▶ "6.2.0 config 3\n"
//!  [CmanNode] ──nodes(opts)▶ "Node  Sts   Inc   Joined               Name\n..." (spec §1.9)
//!  either     ──*_json()──▶ serde_json of the IPC types, for scripts
//! ```
//!
//! Nothing here reads a clock, the environment or the time zone: [`NodesOpts`] carries the
//! UTC offset function, so golden files compare byte for byte (cmand/tests/data/). The
//! output decisions where cmand differs from cman are listed in docs/cman_tool.md.

mod nodes;
mod status;
mod time;

pub use nodes::{
    nodes, nodes_json, parse_fields, selected, utc, Field, NodesOpts, MAX_FORMAT_FIELDS,
    MAX_NODE_NAMES,
};
pub use status::{status, status_json, version, PORTS_BOUND};
pub use time::{date_from_days, format_local};
