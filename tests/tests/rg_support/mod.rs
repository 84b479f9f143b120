//! Helpers the rgmanager lab tests share: tools run on a host, waiting, `clustat -s` read
//! back, and the lab's own view of which host runs which QEMU guest.

#![allow(dead_code)]

use clusterlab::lab::{self, LabGuard};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

pub const A: &str = "station200.example.com";
pub const B: &str = "station201.example.com";
pub const VM1: &str = "vm:station182.example.com";
pub const VM2: &str = "vm:station183.example.com";
pub const BOUND: Duration = Duration::from_secs(120);

pub use clusterlab::vmload::qemu_ready;

pub fn run(g: &LabGuard, node: &str, args: &[&str]) -> (i32, String) {
    let n = g.lab.node(node).unwrap();
    let mut cmd: Command = lab::node_command(&g.lab, n, g.lab.bin_dir.join(args[0]));
    cmd.args(&args[1..]);
    let out = cmd.output().expect("run a tool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

pub fn wait(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (owner, state) of `service` as `clustat` on `node` shows it.
pub fn service(g: &LabGuard, node: &str, service: &str) -> Option<(String, String)> {
    let (_, out) = run(g, node, &["clustat", "-s", service]);
    out.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 3 && w[0] == service).then(|| (w[1].to_string(), w[2].to_string()))
    })
}

/// The lab's own view: VM name → hosts whose namespace holds a QEMU process of it that
/// QEMU itself reports `running` (a migration's incoming target says `inmigrate`, its
/// source `postmigrate` once the switch-over happened).
pub fn running_qemus(g: &LabGuard) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &g.lab.nodes {
        let Some(ns) = &n.netns else { continue };
        let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
            continue;
        };
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let Some((name, _)) = clusterlab::vmload::qemu_guest(&cmdline) else {
                continue;
            };
            let sock = clusterlab::lab::labconf::vm_socket_path(&n.runtime_dir(), &name);
            if clusterlab::vmload::qemu_status(&sock).as_deref() != Some("running") {
                continue;
            }
            // `-daemonize` forks: for a moment one guest has two processes on one host.
            let hosts = seen.entry(name).or_default();
            if !hosts.contains(&n.name) {
                hosts.push(n.name.clone());
            }
        }
    }
    seen
}

/// PIDs of the QEMU processes of guest `name` in `node`'s namespace.
pub fn qemu_pids(g: &LabGuard, node: &str, name: &str) -> Vec<u32> {
    let Some(ns) = g.lab.node(node).and_then(|n| n.netns.clone()) else {
        return Vec::new();
    };
    let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let (guest, _) = clusterlab::vmload::qemu_guest(&cmdline)?;
            (guest == name).then(|| pid.parse().ok())?
        })
        .collect()
}

/// Waits for `what`, checking R1 in the lab's own observation on every poll.
pub fn wait_r1(g: &LabGuard, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    loop {
        for (vm, hosts) in running_qemus(g) {
            assert!(
                hosts.len() <= 1,
                "R1: {vm} runs on {hosts:?} (waiting for {what})"
            );
        }
        if ok() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
