//! The lab: multi-node clusters on one machine, fault injection, history checkers.
//!
//! `clusterlab` (src/bin) builds a cluster from a cluster.conf: one directory per node
//! with its own config copy, runtime directory and logs, the project's daemons started as
//! real processes, and every process recorded in `DIR/lab.json` so faults can be injected
//! and everything stopped by pid.

pub mod apc;
pub mod bench;
pub mod checker;
pub mod demo;
pub mod jepsen;
pub mod lab;
pub mod nemesis;
pub mod netns;
pub mod power;
pub mod procs;
pub mod report;
pub mod state;
pub mod vmload;
pub mod workload;
