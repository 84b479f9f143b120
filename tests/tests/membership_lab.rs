//! Membership and quorum of real cmand processes on loopback (issue: cmand).
//!
//! Each test builds its own lab (unique directory and 127.A.B.0/24 block) and stops every
//! process it started when it ends, pass or fail.

use clusterlab::lab::{
    self, binaries_present, simple_config, test_lab_dir, test_up, wait_for_view,
};
use std::time::Duration;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const BOUND: Duration = Duration::from_secs(30);

#[test]
fn three_nodes_survive_kills_and_rejoin_after_restart() {
    if !binaries_present() {
        return;
    }
    let (dir, conf) = test_lab_dir("three", &simple_config("three", 3, false, 1));
    let mut g = test_up(&dir, &conf, false);
    let all = names(&["n1", "n2", "n3"]);

    lab::stop_node(&mut g.lab, "n3", true).unwrap();
    wait_for_view(
        &g.lab,
        &names(&["n1", "n2"]),
        &names(&["n1", "n2"]),
        true,
        BOUND,
    )
    .unwrap();

    lab::stop_node(&mut g.lab, "n2", true).unwrap();
    wait_for_view(&g.lab, &names(&["n1"]), &names(&["n1"]), false, BOUND).unwrap();

    lab::start_node(&mut g.lab, "n2").unwrap();
    lab::start_node(&mut g.lab, "n3").unwrap();
    wait_for_view(&g.lab, &all, &all, true, BOUND).unwrap();
    drop(g);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_node_halves_each_stay_quorate() {
    if !binaries_present() {
        return;
    }
    let (dir, conf) = test_lab_dir("twonode", &simple_config("twonode", 2, true, 1));
    let mut g = test_up(&dir, &conf, false);
    let both = names(&["n1", "n2"]);

    lab::stop_node(&mut g.lab, "n2", true).unwrap();
    wait_for_view(&g.lab, &names(&["n1"]), &names(&["n1"]), true, BOUND).unwrap();

    lab::start_node(&mut g.lab, "n2").unwrap();
    wait_for_view(&g.lab, &both, &both, true, BOUND).unwrap();

    lab::stop_node(&mut g.lab, "n1", true).unwrap();
    wait_for_view(&g.lab, &names(&["n2"]), &names(&["n2"]), true, BOUND).unwrap();
    drop(g);
    let _ = std::fs::remove_dir_all(&dir);
}
