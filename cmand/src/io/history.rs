//! The history file: the writer lives in `clusterio`, shared by every daemon.

pub use clusterio::history::History;
