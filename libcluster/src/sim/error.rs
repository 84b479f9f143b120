//! [`SimError`]: why a simulation run failed.

use crate::Millis;
use std::fmt;

/// Why a simulation run failed. Every variant carries the seed, so its text is enough to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// An invariant rejected the state after a step. The simulation stops there: every later
    /// call returns this error again.
    Invariant {
        /// The run's seed.
        seed: u64,
        /// The invariant's name.
        name: String,
        /// Simulated time of the offending step.
        at: Millis,
        /// Number of the offending step (1 is the first).
        step: u64,
        /// What the invariant said.
        message: String,
    },
    /// A liveness predicate did not hold by its deadline. The simulation can continue.
    Timeout {
        /// The run's seed.
        seed: u64,
        /// The predicate's description.
        what: String,
        /// The deadline that passed.
        deadline: Millis,
    },
    /// Too many steps happened without simulated time advancing: a core whose timer never
    /// moves past `now`, or an endless loop of loopback messages. The simulation stops there.
    Stalled {
        /// The run's seed.
        seed: u64,
        /// The instant the run is stuck at.
        at: Millis,
        /// Steps taken at that instant.
        steps: u64,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Invariant {
                seed,
                name,
                at,
                step,
                message,
            } => write!(
                f,
                "seed {seed}: invariant {name} violated at {at} (step {step}): {message}"
            ),
            SimError::Timeout {
                seed,
                what,
                deadline,
            } => write!(f, "seed {seed}: {what}: still not true at {deadline}"),
            SimError::Stalled { seed, at, steps } => write!(
                f,
                "seed {seed}: stalled at {at}: {steps} steps without simulated time advancing \
                 (a timer that never moves past now, or a loop of loopback messages)"
            ),
        }
    }
}

impl std::error::Error for SimError {}
