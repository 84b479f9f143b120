//! Seeds: which ones a test sweeps, how a failure names its replay, how streams are derived.
//!
//! Environment variables (read only here, by test infrastructure, never by a core):
//!
//! | Variable | Effect |
//! | --- | --- |
//! | `SIM_SEED` | run only this seed (replaying a failure); wins over the other two |
//! | `SIM_SEEDS` | how many seeds to sweep (default: the count the test passes) |
//! | `SIM_SEED_BASE` | first seed of the sweep (default 0) |
//! | `SIM_KEEP_GOING` | `1`: a sweep runs every seed and fails at the end, listing each failing seed (soaks) |
//!
//! An empty value counts as unset; anything else must be a decimal `u64`.

use super::process::SimRng;
use super::trace::Fnv;
use crate::NodeId;
use rand::SeedableRng;
use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Which seeds a simulation test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedPlan {
    /// Exactly one seed (`SIM_SEED`).
    One(u64),
    /// `count` consecutive seeds from `base` (wrapping past `u64::MAX`).
    Range {
        /// The first seed.
        base: u64,
        /// How many seeds.
        count: u64,
    },
}

/// An environment variable that should hold a seed or a count but does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedError {
    /// The variable, e.g. `SIM_SEED`.
    pub var: &'static str,
    /// What it held.
    pub value: String,
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is not a decimal unsigned 64-bit number",
            self.var, self.value
        )
    }
}

impl std::error::Error for SeedError {}

impl SeedPlan {
    /// The plan the environment asks for, `default_count` seeds from 0 when nothing is set.
    pub fn from_env(default_count: u64) -> Result<SeedPlan, SeedError> {
        SeedPlan::from_vars(default_count, |var| {
            std::env::var_os(var).map(|v| v.to_string_lossy().into_owned())
        })
    }

    /// As [`SeedPlan::from_env`], reading variables through `lookup` (for tests).
    pub fn from_vars(
        default_count: u64,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SeedPlan, SeedError> {
        let read = |var: &'static str| -> Result<Option<u64>, SeedError> {
            match lookup(var) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| SeedError { var, value: v }),
            }
        };
        if let Some(seed) = read("SIM_SEED")? {
            return Ok(SeedPlan::One(seed));
        }
        Ok(SeedPlan::Range {
            base: read("SIM_SEED_BASE")?.unwrap_or(0),
            count: read("SIM_SEEDS")?.unwrap_or(default_count),
        })
    }

    /// The seeds of this plan, in order.
    pub fn seeds(&self) -> impl Iterator<Item = u64> {
        let (base, count) = match *self {
            SeedPlan::One(seed) => (seed, 1),
            SeedPlan::Range { base, count } => (base, count),
        };
        (0..count).map(move |i| base.wrapping_add(i))
    }

    /// Runs `f` for every seed and panics at the first failure, an `Err` or a panic inside `f`
    /// (a core asserting its own invariant), with the failure and the replay command:
    /// `"{failure}\nreplay: SIM_SEED={seed} cargo test -p libcluster {name}"`.
    pub fn run<E: fmt::Display>(&self, name: &str, f: impl FnMut(u64) -> Result<(), E>) {
        self.run_keeping(name, false, f);
    }

    /// As [`SeedPlan::run`]; with `keep_going` every seed runs, each failure is printed to
    /// stderr as it happens, and the panic at the end lists the failing seeds.
    pub fn run_keeping<E: fmt::Display>(
        &self,
        name: &str,
        keep_going: bool,
        mut f: impl FnMut(u64) -> Result<(), E>,
    ) {
        let mut failed = Vec::new();
        for seed in self.seeds() {
            let failure = match catch_unwind(AssertUnwindSafe(|| f(seed))) {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(panic) => format!("seed {seed}: panicked: {}", panic_text(&*panic)),
            };
            if !keep_going {
                panic!("{failure}\n{}", replay_hint(name, seed));
            }
            eprintln!("{failure}\n{}\n", replay_hint(name, seed));
            failed.push(seed);
        }
        if !failed.is_empty() {
            panic!(
                "{} of {} seeds failed: {failed:?}\n{}",
                failed.len(),
                self.seeds().count(),
                replay_hint(name, failed[0])
            );
        }
    }
}

/// The seeds a simulation test should run: see the module documentation for the variables.
///
/// # Panics
/// If a variable is set to something that is not a number: running other seeds than the ones
/// asked for would look like a passing replay.
pub fn seeds(default_count: u64) -> impl Iterator<Item = u64> {
    plan_or_panic(default_count).seeds()
}

/// Runs `f` for each seed of [`seeds`]`(default_count)`; panics at the first failure with the
/// failure text and `replay: SIM_SEED={seed} cargo test -p libcluster {name}`.
/// Pass the test function's name as `name`.
pub fn run_seeds<E: fmt::Display>(
    name: &str,
    default_count: u64,
    f: impl FnMut(u64) -> Result<(), E>,
) {
    let keep_going = std::env::var_os("SIM_KEEP_GOING").is_some_and(|v| v == "1");
    plan_or_panic(default_count).run_keeping(name, keep_going, f);
}

/// The replay line printed under a failure.
pub fn replay_hint(name: &str, seed: u64) -> String {
    format!("replay: SIM_SEED={seed} cargo test -p libcluster {name}")
}

/// A random stream named `stream` derived from `seed`: independent of every other stream name,
/// so a scenario can draw its schedule without disturbing the simulator's own streams.
pub fn rng_for(seed: u64, stream: &str) -> SimRng {
    let mut h = Fnv::new();
    h.write_bytes(stream.as_bytes());
    SimRng::seed_from_u64(derive(seed, &[h.finish()]))
}

/// The simulator's own streams, tagged so no two coincide (and none equals an `rng_for` name's).
const STREAM_NODE: u64 = 1;
const STREAM_NETWORK: u64 = 2;
const STREAM_BOOT: u64 = 3;

/// The `ctx.rng` of one incarnation of one node: independent of other nodes and the network.
pub(crate) fn node_rng(seed: u64, id: NodeId, incarnation: u64) -> SimRng {
    SimRng::seed_from_u64(derive(seed, &[STREAM_NODE, u64::from(id.0), incarnation]))
}

/// The stream deciding loss, latency and duplication.
pub(crate) fn network_rng(seed: u64) -> SimRng {
    SimRng::seed_from_u64(derive(seed, &[STREAM_NETWORK]))
}

/// The stream drawing boot times.
pub(crate) fn boot_rng(seed: u64) -> SimRng {
    SimRng::seed_from_u64(derive(seed, &[STREAM_BOOT]))
}

/// Mixes `parts` into `seed` (splitmix64 finaliser per part): nearby inputs give unrelated outputs.
pub(crate) fn derive(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed), |acc, &p| mix(acc ^ mix(p)))
}

fn mix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn plan_or_panic(default_count: u64) -> SeedPlan {
    match SeedPlan::from_env(default_count) {
        Ok(plan) => plan,
        Err(e) => panic!("{e}"),
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(non-text panic payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn nothing_set_sweeps_the_default_count_from_zero() {
        let plan = SeedPlan::from_vars(3, vars(&[])).unwrap();
        assert_eq!(plan.seeds().collect::<Vec<_>>(), vec![0, 1, 2]);
    }

    #[test]
    fn sim_seed_wins_over_the_range_variables() {
        let plan = SeedPlan::from_vars(
            3,
            vars(&[
                ("SIM_SEED", " 42 "),
                ("SIM_SEEDS", "9"),
                ("SIM_SEED_BASE", "7"),
            ]),
        )
        .unwrap();
        assert_eq!(plan.seeds().collect::<Vec<_>>(), vec![42]);
    }

    #[test]
    fn base_and_count_shift_and_size_the_sweep() {
        let plan =
            SeedPlan::from_vars(3, vars(&[("SIM_SEEDS", "2"), ("SIM_SEED_BASE", "100")])).unwrap();
        assert_eq!(plan.seeds().collect::<Vec<_>>(), vec![100, 101]);
        let empty = SeedPlan::from_vars(3, vars(&[("SIM_SEED", "")])).unwrap();
        assert_eq!(empty, SeedPlan::Range { base: 0, count: 3 });
    }

    #[test]
    fn malformed_variables_are_errors_naming_the_variable() {
        let err = SeedPlan::from_vars(3, vars(&[("SIM_SEEDS", "lots")])).unwrap_err();
        assert_eq!(err.var, "SIM_SEEDS");
        assert!(err.to_string().contains("SIM_SEEDS=\"lots\""));
        assert!(SeedPlan::from_vars(3, vars(&[("SIM_SEED", "-1")])).is_err());
    }

    #[test]
    fn run_reports_the_first_failing_seed_with_its_replay_line() {
        let plan = SeedPlan::Range { base: 5, count: 10 };
        let mut ran = Vec::new();
        let panic = catch_unwind(AssertUnwindSafe(|| {
            plan.run("some_test", |seed| {
                ran.push(seed);
                if seed == 7 {
                    Err(format!("seed {seed}: broken"))
                } else {
                    Ok(())
                }
            })
        }))
        .unwrap_err();
        assert_eq!(ran, vec![5, 6, 7]);
        assert_eq!(
            panic_text(&*panic),
            "seed 7: broken\nreplay: SIM_SEED=7 cargo test -p libcluster some_test"
        );
    }

    #[test]
    fn keep_going_runs_every_seed_and_lists_the_failures_at_the_end() {
        let plan = SeedPlan::Range { base: 0, count: 6 };
        let mut ran = Vec::new();
        let panic = catch_unwind(AssertUnwindSafe(|| {
            plan.run_keeping("soak", true, |seed| {
                ran.push(seed);
                if seed % 3 == 1 {
                    Err(format!("seed {seed}: broken"))
                } else {
                    Ok(())
                }
            })
        }))
        .unwrap_err();
        assert_eq!(ran, vec![0, 1, 2, 3, 4, 5]);
        let text = panic_text(&*panic);
        assert!(text.starts_with("2 of 6 seeds failed: [1, 4]"), "{text}");
        assert!(text.ends_with("replay: SIM_SEED=1 cargo test -p libcluster soak"));
        plan.run_keeping("soak", true, |_| Ok::<(), String>(()));
    }

    #[test]
    fn run_turns_a_panic_inside_the_scenario_into_a_replayable_failure() {
        let panic = catch_unwind(|| {
            SeedPlan::One(9).run("t", |_| -> Result<(), String> { panic!("two masters") })
        })
        .unwrap_err();
        let text = panic_text(&*panic);
        assert!(text.contains("seed 9: panicked: two masters"), "{text}");
        assert!(text.ends_with("replay: SIM_SEED=9 cargo test -p libcluster t"));
    }

    #[test]
    fn named_streams_are_stable_and_distinct() {
        let a = rng_for(1, "schedule").next_u64();
        assert_eq!(a, rng_for(1, "schedule").next_u64());
        assert_ne!(a, rng_for(1, "inputs").next_u64());
        assert_ne!(a, rng_for(2, "schedule").next_u64());
        assert_ne!(derive(1, &[2, 3]), derive(1, &[3, 2]));
    }
}
