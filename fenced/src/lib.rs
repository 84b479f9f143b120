//! fenced: the fence domain daemon, its tools and the fence agents this project ships.
//!
//! - [`agents`]: the agent side of the fence-agent protocol (stdin options, metadata) and our
//!   agents `fence_apc`, `fence_manual`, `fence_ack_manual`.
//! - [`runner`]: running agents the way fenced and `fence_node` do (search path, stdin, timeout).

pub mod agents;
pub mod runner;
pub mod tools;
