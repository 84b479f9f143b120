//! The deterministic many-node simulator.
//!
//! Many nodes' protocol cores run in one process over a simulated network, under a seeded
//! fault schedule, with invariants checked after every step. A seed fixes everything: the
//! same seed gives the same run and the same [`Sim::trace_hash`], so every failure replays.
//!
//! ```text
//!            ┌──────────── event queue, ordered by (time, sequence) ────────────┐
//!  schedule ─┤ Fault(t)   Deliver(t, from→to, msg)   Input(t, node)            │
//!            └─────┬──────────────────┬──────────────────────┬──────────────────┘
//!                  │ crash/pause/      │ up: on_message       │ up: on_input
//!                  │ partition/loss    │ paused: socket buffer│ paused: held
//!                  ▼                   ▼ down: dropped        ▼ down: dropped
//!               Network ◄── ctx.send ── Process (one per node) ── ctx.emit ──► history
//!                                      ▲ on_timer when now >= next_deadline()
//!            after every step: every invariant(&SimView) must return Ok
//! ```
//!
//! # Writing a core for the simulator
//!
//! A protocol core never depends on this module. It is a sans-IO state machine with its own
//! API that both the tokio shell and the simulator can drive:
//!
//! ```text
//! impl Membership {
//!     fn on_packet(&mut self, now: Millis, from: NodeId, msg: Msg, out: &mut Vec<Action>);
//!     fn on_tick(&mut self, now: Millis, rng: &mut impl Rng, out: &mut Vec<Action>);
//!     fn next_deadline(&self) -> Millis;
//! }
//! ```
//!
//! To simulate it, write a thin adapter that implements [`Process`]: each method calls the
//! core with `ctx.now` and `ctx.rng`, then maps the core's actions onto [`Ctx::send`] /
//! [`Ctx::broadcast`] (network effects) and [`Ctx::emit`] (observable events the invariants
//! read). Effects the simulator does not model (writing a disk block, running a fence agent)
//! become events, or the adapter simulates them itself. [`toy::GossipNode`] is a complete
//! example. The shell does the same mapping onto sockets, and logs its RNG seed.
//!
//! # Node lifecycle
//!
//! A [`Sim`] is built from a [`SimConfig`] and a factory `FnMut(NodeId, incarnation) -> P`.
//! Every node starts [`NodeStatus::Down`] with incarnation 0 and boots through a
//! [`Fault::Restart`] at a random time within `start_spread_ms`: the factory builds a fresh
//! core with the next incarnation (1, 2, ...), then `on_start` runs. [`Fault::Crash`] drops
//! the core and its state. [`Fault::Pause`] models SIGSTOP: the core keeps its state and runs
//! nothing; messages arriving meanwhile wait in a socket buffer of
//! [`NetConfig::pause_buffer`] messages (the rest are dropped) and are delivered, late, on
//! [`Fault::Resume`], after which the overdue timer fires.
//!
//! # Randomness
//!
//! The simulator derives independent streams from the seed: one per node incarnation (the
//! `ctx.rng` of that node), one for the network, one for boot times. Adding a node therefore
//! does not change what the other nodes draw. Scenarios take their own streams with
//! [`rng_for`]`(seed, "name")`.
//!
//! # Invariants, liveness, seeds
//!
//! [`Sim::add_invariant`] registers a named check `FnMut(&SimView<P>) -> Result<(), String>`,
//! run after every step; the first `Err` stops the run with [`SimError::Invariant`].
//! Liveness is checked with [`Sim::run_until`], which fails with [`SimError::Timeout`] when
//! the predicate does not hold by the deadline. Tests sweep seeds with [`run_seeds`], which
//! reads `SIM_SEED`, `SIM_SEEDS` and `SIM_SEED_BASE` (see [`seeds`](seeds())) and panics with
//! the failure and its replay command.
//!
//! # Tracing
//!
//! Every call into a node runs in an `info`-level `node` span with fields `id`, `inc` and
//! `t` (simulated time), faults are logged at `info`, drops and events at `debug`. The
//! simulator never installs a subscriber; a test that wants a transcript installs one.
//!
//! docs/simulation.md shows how to write a scenario, the fault menu, replay and soak runs.

mod error;
mod fault;
mod lifecycle;
mod network;
mod process;
mod queue;
mod runner;
mod seeds;
pub mod toy;
mod trace;
mod view;

pub use error::SimError;
pub use fault::{random_schedule, Fault, FaultMenu, Schedule};
pub use network::{DropReason, LinkConfig, NetConfig, Network};
pub use process::{Ctx, Emitted, Outbox, Process, SimRng};
pub use runner::{Sim, SimConfig};
pub use seeds::{replay_hint, rng_for, run_seeds, seeds, SeedError, SeedPlan};
pub use view::{NodeInfo, NodeStatus, SimView, Stats};
