//! The simulator proven on the toy gossip protocol: random schedules, a planted bug caught and
//! replayed by seed, determinism of the trace hash.

use libcluster::sim::toy::{scenario, stale_message_menu, Flaw, GossipConfig};
use libcluster::sim::{run_seeds, FaultMenu, SeedPlan, SimError};
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn flawed() -> GossipConfig {
    GossipConfig::with_flaw(Flaw::RecomputeFromLatest)
}

/// `RUST_LOG=debug` (with `-- --nocapture`) prints a replayed run as a transcript.
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .without_time()
        .try_init();
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

#[test]
fn correct_gossip_survives_random_fault_schedules() {
    init_tracing();
    run_seeds(
        "correct_gossip_survives_random_fault_schedules",
        500,
        |seed| {
            scenario(seed, GossipConfig::default(), &FaultMenu::all(2))?;
            scenario(seed, GossipConfig::default(), &stale_message_menu()).map(drop)
        },
    );
}

#[test]
fn flawed_gossip_is_caught_and_the_failure_names_its_seed() {
    init_tracing();
    let name = "flawed_gossip_is_caught_and_the_failure_names_its_seed";
    let plan = SeedPlan::Range {
        base: 0,
        count: 200,
    };
    let text = panic_text(
        catch_unwind(AssertUnwindSafe(|| {
            plan.run(name, |seed| {
                scenario(seed, flawed(), &stale_message_menu()).map(drop)
            })
        }))
        .expect_err("the flawed toy passed 200 random schedules"),
    );
    let (violation, replay) = text.split_once('\n').expect("two lines");
    assert!(
        violation.contains("invariant values_never_decrease violated"),
        "{text}"
    );
    let seed: u64 = violation
        .strip_prefix("seed ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seed in {violation:?}"));
    assert_eq!(
        replay,
        format!("replay: SIM_SEED={seed} cargo test -p libcluster {name}")
    );

    // Replaying the seed reproduces the exact violation.
    let again = scenario(seed, flawed(), &stale_message_menu()).unwrap_err();
    assert_eq!(again.to_string(), violation);
    assert!(matches!(again, SimError::Invariant { seed: s, .. } if s == seed));
}

#[test]
fn flawed_gossip_passes_without_faults_so_the_faults_find_the_bug() {
    init_tracing();
    for seed in 0..20 {
        if let Err(e) = scenario(seed, flawed(), &FaultMenu::none()) {
            panic!("fault-free run failed: {e}");
        }
    }
}

#[test]
fn same_seed_gives_the_same_trace_hash() {
    init_tracing();
    for seed in [0, 1, 7, 12345] {
        let a = scenario(seed, GossipConfig::default(), &FaultMenu::all(2)).unwrap();
        let b = scenario(seed, GossipConfig::default(), &FaultMenu::all(2)).unwrap();
        assert_eq!(a, b, "seed {seed}");
    }
}

#[test]
fn different_seeds_give_different_trace_hashes() {
    init_tracing();
    let hashes: BTreeSet<u64> = (0..30)
        .map(|seed| scenario(seed, GossipConfig::default(), &FaultMenu::all(2)).unwrap())
        .collect();
    assert_eq!(hashes.len(), 30);
}
