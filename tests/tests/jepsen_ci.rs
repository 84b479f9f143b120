//! The Jepsen runner's CI set: short seeded runs on 3 and 5 nodes with every nemesis (kill,
//! pause, power through the lab's switch, and partitions when the lab runs in network
//! namespaces, i.e. as root), each of which must pass, and
//! a planted violation that the checkers must catch. The runs share the machine's two
//! cores, so they go one at a time.
//!
//! Replay a failing seed by hand: `clusterlab jepsen --config FILE --time 20s --seed N
//! --nemesis kill,pause,partition,power --keep` (docs/testing.md).

use clusterlab::jepsen::{self, schedule::NemesisKind, JepsenOptions};
use clusterlab::lab;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A cluster.conf of `n` nodes; non-root runs name the caller's group as admin_group so the
/// workload may join groups.
fn config(dir: &Path, n: u32) -> PathBuf {
    config_with(dir, n, "")
}

/// [`config`] with extra `<cman>` attributes (`two_node="1" expected_votes="1"`).
fn config_with(dir: &Path, n: u32, cman_attrs: &str) -> PathBuf {
    let admin = if nix::unistd::geteuid().is_root() {
        String::new()
    } else {
        let gid = nix::unistd::getegid();
        let group = nix::unistd::Group::from_gid(gid)
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_default();
        format!(" admin_group=\"{group}\"")
    };
    let nodes: String = (1..=n)
        .map(|i| format!("    <clusternode name=\"n{i}\" nodeid=\"{i}\" votes=\"1\"/>\n"))
        .collect();
    let text = format!(
        "<?xml version=\"1.0\"?>\n<cluster name=\"jepsen{n}\" config_version=\"1\">\n  <cman{admin}{cman_attrs}/>\n  <clusternodes>\n{nodes}  </clusternodes>\n</cluster>\n"
    );
    std::fs::create_dir_all(dir).expect("config dir");
    let path = dir.join(format!("jepsen{n}.conf"));
    std::fs::write(&path, text).expect("write config");
    path
}

fn opts(n: u32, seed: u64, secs: u64, tag: &str) -> JepsenOptions {
    let base = std::env::temp_dir().join(format!("clab-jepsen-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut o = JepsenOptions::new(config(&base, n), seed, Duration::from_secs(secs));
    o.dir = Some(base.join("lab"));
    o.nemesis = NemesisKind::ALL.to_vec();
    o
}

/// Runs one seed and fails with the verdict table (and where the lab directory is) unless
/// it passes. Returns the lab directory, kept for the caller.
fn must_pass(o: &JepsenOptions) -> PathBuf {
    let (verdict, dir) = match jepsen::run(o) {
        Ok(v) => v,
        Err(e) => panic!("seed {}: the run failed: {e}", o.seed),
    };
    let table = verdict.table();
    eprintln!("{table}");
    assert!(
        verdict.passed(),
        "seed {} failed; lab directory {} kept\n{table}\nreplay: clusterlab jepsen --config {} --time {}s --seed {} --nemesis kill,pause,partition,power",
        o.seed,
        dir.display(),
        o.config.display(),
        o.time.as_secs(),
        o.seed
    );
    dir
}

fn remove_lab(o: &JepsenOptions) {
    if let Some(base) = o.dir.as_ref().and_then(|d| d.parent()) {
        let _ = std::fs::remove_dir_all(base);
    }
}

#[test]
fn three_node_seeds_pass_under_every_nemesis() {
    if !lab::binaries_present() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for seed in [1, 2, 3] {
        let o = opts(3, seed, 20, &format!("3n-{seed}"));
        must_pass(&o);
        remove_lab(&o);
    }
}

#[test]
fn five_node_seeds_pass_under_every_nemesis() {
    if !lab::binaries_present() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for seed in [11, 12] {
        let o = opts(5, seed, 20, &format!("5n-{seed}"));
        must_pass(&o);
        remove_lab(&o);
    }
}

/// With fenced on every node: failed nodes are fenced through the lab's switch while the
/// nemeses cut power, pause, kill and partition. F1 (fenced means dead), F2 (fencing needs
/// quorum) and F3 (each failure fenced once) join the verdict. On the two_node cluster a
/// partition is a fence race: exactly one side survives, the loser boots and waits for
/// its peer.
#[test]
fn fencing_seeds_pass_on_two_and_three_nodes_with_power_cuts() {
    if !lab::binaries_present() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for (n, seed) in [(3, 21), (3, 22), (2, 31), (2, 32)] {
        let tag = format!("fence{n}n-{seed}");
        let mut o = opts(n, seed, 20, &tag);
        if n == 2 {
            let base = o
                .dir
                .as_ref()
                .and_then(|d| d.parent())
                .unwrap()
                .to_path_buf();
            o.config = config_with(&base, 2, " two_node=\"1\" expected_votes=\"1\"");
        }
        o.stack = lab::Stack::Fencing;
        let (verdict, dir) = jepsen::run(&o).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let table = verdict.table();
        eprintln!("{table}");
        assert!(
            verdict.passed(),
            "seed {seed} ({n} nodes, fencing) failed; lab directory {} kept\n{table}\nreplay: clusterlab jepsen --config {} --time 20s --seed {seed} --nemesis kill,pause,partition,power --fencing",
            dir.display(),
            o.config.display()
        );
        for id in ["F1", "F2", "F3"] {
            assert!(
                table.contains(id),
                "{id} missing from the verdict:\n{table}"
            );
        }
        remove_lab(&o);
    }
}

/// A passing run's history, with one delivery doctored, must fail `clusterlab check`: the
/// runner can fail.
#[test]
fn a_planted_violation_in_a_real_history_is_caught() {
    if !lab::binaries_present() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let o = opts(3, 4, 8, "planted");
    let dir = must_pass(&o);
    assert!(jepsen::check_dir(&dir).expect("check").passed());
    // Change the payload crc of the last delivery of one node: that node now delivered, at
    // that seq, a message nobody sent (N2) and not what the others delivered there (M3).
    let file = dir.join("history").join("n2.jsonl");
    let text = std::fs::read_to_string(&file).expect("n2 history");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let i = lines
        .iter()
        .rposition(|l| l.contains("\"kind\":\"deliver\""))
        .expect("n2 delivered something");
    let mut rec = libcluster::history::Record::from_line(&lines[i]).expect("record");
    if let libcluster::history::Event::Deliver { crc, .. } = &mut rec.event {
        *crc ^= 0x5a5a_5a5a;
    }
    lines[i] = rec.to_line();
    std::fs::write(&file, lines.join("\n") + "\n").expect("doctor history");
    let verdict = jepsen::check_dir(&dir).expect("check");
    let table = verdict.table();
    assert!(!verdict.passed(), "a doctored history passed:\n{table}");
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("N2") && l.contains("VIOLATED")),
        "{table}"
    );
    remove_lab(&o);
}
