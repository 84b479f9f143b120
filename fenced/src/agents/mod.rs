//! Fence agents: the agent side of the standard protocol, and our agents.
//!
//! The protocol (spec/fencing.md §2, docs/fence-agents.md): an agent started without
//! arguments reads `name=value` lines on stdin ([`options`]), does one action and exits 0 on
//! success, 1 on failure, 2 for `status` off. Power agents share [`power::main`] and the
//! action engine [`action`]; a new agent only implements [`action::PowerDevice`] and
//! [`power::PowerAgent`].
//!
//! - [`options`] — stdin and getopt parsing, standard parameters, aliases.
//! - [`metadata`] — the `-o metadata` XML.
//! - [`action`] — on/off/reboot/status/list/list-status/monitor with fence-agents' texts.
//! - [`power`] — the shared `main` of power agents.
//! - [`telnet`], [`conn`] — the telnet layer, TCP and ssh transports, the expect dialog.
//! - [`apc`] — `fence_apc`.
//! - [`manual`] — `fence_manual` and `fence_ack_manual`.

pub mod action;
pub mod apc;
pub mod conn;
pub mod manual;
pub mod metadata;
pub mod options;
pub mod power;
pub mod telnet;
