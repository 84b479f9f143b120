//! The resource group manager's pure core: failover-domain placement, service states and
//! recovery policies.
//!
//! ```text
//!                 auto start (score BEST)            status fails / start fails
//!   ┌─────────┐  ─────────────────────▶ ┌──────────┐ ok ┌─────────┐ ───────────▶ ┌─────────────┐
//!   │ stopped │                          │ starting │───▶│ started │              │ recoverable │
//!   └─────────┘ ◀── stop ok (user) ──────└──────────┘    └─────────┘              └─────────────┘
//!     ▲  │ ▲                                               │  │  ▲ migrate ok/150   stop ok │  │ stop fails
//!     │  │ └── owner died: stopped + wait for fencing (F1) │  │  └──── migrating ◀──┐      ▼  ▼
//!     │  │                                     disable ────┘  └─ failback/-M ──────┘ recovering  failed
//!     │  └── autostart off / -d ──▶ disabled ◀─────────────── policy disable ─────────────┘   (only -d)
//!     └────────────────────────── policy: restart here | relocate | nowhere: stopped ─────┘
//! ```
//!
//! What we copy from rgmanager (spec/rgmanager.md): the states and their strings, the
//! failover-domain score `node_should_start`, `best_target_node`, `consider_start` (auto
//! start only on a node scoring BEST), failback by `consider_relocate` (live migration for
//! VMs), the exclusive rule, autostart, `depend`, the recovery policies with
//! `max_restarts`/`restart_expire_time`, and stop failures ending `failed`.
//! What is ours: one decision maker (the coordinator) instead of every node racing for a
//! lock, so tie-breaks are deterministic (least loaded node, then lowest id); a dead
//! owner's services wait for fenced's confirmation explicitly (F1) instead of behind a DLM
//! lock; members report what they run so nothing starts twice (R1). docs/placement.md
//! states every rule, the deviations and the benchmark.
//!
//! - [`domain`]: scores, candidate order, best target, failback, exclusive (pure functions).
//! - [`state`]: states, flags, the replicated record and administrator intent.
//! - [`recovery`]: restart counting and the recovery policy.
//! - [`catalog`]: the configured services compiled for placement.
//! - [`Engine`]: the table, one decision round per [`Input`], [`Action`]s out;
//!   [`Engine::request`] for `clusvcadm`.

pub mod catalog;
pub mod coord;
mod decide;
pub mod domain;
mod engine;
mod events;
pub mod recovery;
mod request;
pub mod sim_node;
pub mod state;

pub use catalog::{Catalog, Dependency, ServiceDef, ServiceIndex};
pub use domain::{
    best_target, exclusive_allows, score, should_fail_back, Domain, DomainView, Load, Score,
    TargetQuery,
};
pub use engine::{Action, Engine, Input, OpResult, StartCause, StopCause};
pub use recovery::{after_failure, recovery_step, Failure, RecoveryStep, RestartCounter};
pub use request::{Request, RequestError};
pub use state::{Flags, Intent, ServiceRecord, ServiceState};

#[cfg(test)]
mod tests;
