//! The shared library of the cluster stack.
//!
//! Everything here is pure: protocol cores are state machines that take the time and
//! randomness as arguments and return what they want done. The daemons (`cmand`,
//! `fenced`, ...) are thin shells that carry the I/O. Because of that, the simulator in
//! [`sim`] can run many nodes' cores in one process under a seeded fault schedule.
//!
//! Modules:
//! - [`config`]: the `cluster.conf` model, parser with line:column errors, validation, writer.
//! - [`quorum`]: votes, expected votes and the quorum threshold, as cman computes them.
//! - [`wire`]: the authenticated datagram envelope and key files.
//! - [`ipc`]: the local request/response/event protocol between daemons and tools.
//! - [`membership`]: heartbeats, view agreement, quorum and ordered group messaging (cmand's core).
//! - [`files`]: atomic file replacement (keys, received configurations, counters).
//! - [`history`]: the event records every daemon appends for the lab's checkers.
//! - [`sim`]: the deterministic many-node simulator.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod fence;
pub mod files;
pub mod history;
pub mod ipc;
pub mod membership;
pub mod quorum;
pub mod rgmanager;
pub mod sim;
pub mod types;
pub mod wire;

pub use types::{Millis, NodeId};
