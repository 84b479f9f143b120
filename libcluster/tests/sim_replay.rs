//! The replay command works end to end: this test binary reruns itself with `SIM_SEED` set,
//! the way a developer pastes the replay line, and gets the same violation from one seed.

use libcluster::sim::run_seeds;
use libcluster::sim::toy::{scenario, stale_message_menu, Flaw, GossipConfig};
use std::process::Command;

/// The test the replay runs; ignored in normal runs because it is meant to fail.
const INNER: &str = "flawed_gossip_under_the_environment_seeds";

fn flawed() -> GossipConfig {
    GossipConfig::with_flaw(Flaw::RecomputeFromLatest)
}

fn run_flawed(seed: u64) -> Result<(), String> {
    scenario(seed, flawed(), &stale_message_menu())
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
#[ignore = "fails by design; run by sim_seed_in_the_environment_replays_one_seed"]
fn flawed_gossip_under_the_environment_seeds() {
    run_seeds(INNER, 200, run_flawed);
}

/// Runs the inner test in a child process with `SIM_SEED=seed`; (passed, stdout + stderr).
fn replay(seed: u64) -> (bool, String) {
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args(["--ignored", "--exact", INNER, "--test-threads=1"])
        .env("SIM_SEED", seed.to_string())
        .env_remove("SIM_SEEDS")
        .env_remove("SIM_SEED_BASE")
        .output()
        .expect("rerun the test binary");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn sim_seed_in_the_environment_replays_one_seed() {
    let results: Vec<(u64, Result<(), String>)> = (0..200).map(|s| (s, run_flawed(s))).collect();
    let (bad, violation) = results
        .iter()
        .find_map(|(s, r)| r.clone().err().map(|v| (*s, v)))
        .expect("the flawed toy passed 200 schedules");
    let good = results
        .iter()
        .find_map(|(s, r)| r.is_ok().then_some(*s))
        .expect("the flawed toy failed every schedule");

    let (passed, text) = replay(bad);
    assert!(!passed, "replay of seed {bad} passed:\n{text}");
    assert!(text.contains(&violation), "want {violation:?} in:\n{text}");
    assert!(
        text.contains(&format!(
            "replay: SIM_SEED={bad} cargo test -p libcluster {INNER}"
        )),
        "{text}"
    );

    // The sweep of 200 seeds fails, so passing proves SIM_SEED ran that one seed only.
    let (passed, text) = replay(good);
    assert!(passed, "seed {good} alone should pass:\n{text}");
}
