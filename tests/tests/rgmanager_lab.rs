//! rgmanagerd in the lab, end to end, on the reference deployment (two_node, station200/201,
//! vm:station182 in domain1, vm:station183 in domain2, APC + manual fencing): real cmand,
//! fenced and rgmanagerd in network namespaces, real QEMU guests.
//!
//! - `clustat` shows both hosts with rgmanager and both VMs disabled (autostart="0");
//! - `clusvcadm -e` starts each VM where asked; a QEMU process runs in that host's namespace;
//! - `clusvcadm -M` live-migrates one: afterwards exactly one QEMU of it, on the target;
//! - a power cut of the host running both VMs: the survivor fences it and only then
//!   restarts both VMs (F1, from the daemons' history), and no VM ever had two running QEMU
//!   processes in the lab's own observation (R1, sampled every 50 ms through the failover);
//! - `clusvcadm -d` stops a VM; an unknown service is refused with the original message.
//!
//! Root and QEMU needed (skips with a reason; fails under CI=true).

use clusterlab::checker;
use clusterlab::demo::REFERENCE_CONF;
use clusterlab::lab::{
    self, netns_test_ready, test_lab_dir, test_up_stack, LabGuard, Network, Stack,
};
use clusterlab::power::{self, PowerAction};
use libcluster::history::Event;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const A: &str = "station200.example.com";
const B: &str = "station201.example.com";
const VM1: &str = "vm:station182.example.com";
const VM2: &str = "vm:station183.example.com";
const BOUND: Duration = Duration::from_secs(120);

fn qemu_ready() -> bool {
    let ok = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let why = "qemu-system-x86_64 missing (Debian package qemu-system-x86)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but {why}");
        }
        eprintln!("skipped: {why}");
    }
    ok
}

fn run(g: &LabGuard, node: &str, args: &[&str]) -> (i32, String) {
    let n = g.lab.node(node).unwrap();
    let mut cmd: Command = lab::node_command(&g.lab, n, g.lab.bin_dir.join(args[0]));
    cmd.args(&args[1..]);
    let out = cmd.output().expect("run a tool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn wait(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (owner, state) of `service` as `clustat` on `node` shows it.
fn service(g: &LabGuard, node: &str, service: &str) -> Option<(String, String)> {
    let (_, out) = run(g, node, &["clustat", "-s", service]);
    out.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 3 && w[0] == service).then(|| (w[1].to_string(), w[2].to_string()))
    })
}

/// The lab's own view: VM name → hosts whose namespace holds a QEMU process of it that
/// QEMU itself reports `running` (a migration's incoming target says `inmigrate`, its
/// source `postmigrate` once the switch-over happened).
fn running_qemus(g: &LabGuard) -> BTreeMap<String, Vec<String>> {
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
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if !args.first().is_some_and(|a| a.contains("qemu-system")) {
                continue;
            }
            let Some(name) = args.iter().find_map(|a| {
                a.strip_prefix("guest=")
                    .map(|s| s.split(',').next().unwrap_or(s).to_string())
            }) else {
                continue;
            };
            let sock = n.runtime_dir().join("vms").join(&name).join("status.sock");
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

#[test]
fn the_reference_deployment_runs_migrates_and_fails_over_its_vms() {
    if !netns_test_ready("the_reference_deployment_runs_migrates_and_fails_over_its_vms")
        || !qemu_ready()
    {
        return;
    }
    let (dir, conf) = test_lab_dir("rgm-ref", REFERENCE_CONF);
    let g = test_up_stack(&dir, &conf, false, Network::Netns, Stack::Full);
    wait("rgmanager on both hosts", || {
        run(&g, A, &["clustat"]).1.matches("rgmanager").count() >= 2
    });
    let (code, out) = run(&g, A, &["clustat"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Member Status: Quorate"), "{out}");
    assert_eq!(service(&g, A, VM1).unwrap().1, "disabled", "autostart=0");

    // Enable: where asked.
    let (code, out) = run(&g, A, &["clusvcadm", "-e", VM1]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("Local machine trying to enable {VM1}...Success")),
        "{out}"
    );
    let (code, out) = run(&g, A, &["clusvcadm", "-e", VM2, "-m", B]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("Member {B} trying to enable {VM2}...Success")),
        "{out}"
    );
    wait("both started", || {
        service(&g, A, VM1) == Some((A.into(), "started".into()))
            && service(&g, B, VM2) == Some((B.into(), "started".into()))
    });
    let q = running_qemus(&g);
    assert_eq!(
        q.get("station182.example.com"),
        Some(&vec![A.to_string()]),
        "{q:?}"
    );
    assert_eq!(
        q.get("station183.example.com"),
        Some(&vec![B.to_string()]),
        "{q:?}"
    );

    // Live migration.
    let (code, out) = run(&g, A, &["clusvcadm", "-M", VM1, "-m", B]);
    assert_eq!(code, 0, "{out}");
    wait("the migration", || {
        service(&g, A, VM1) == Some((B.into(), "started".into()))
            && running_qemus(&g).get("station182.example.com") == Some(&vec![B.to_string()])
    });
    let h = checker::load(&g.lab.history_dir()).unwrap();
    assert!(h.iter().any(|r| matches!(&r.event,
        Event::Vm { op, ok: true, to: Some(2), downtime_ms: Some(_), .. } if op == "migrate-out")));

    // Power cut of B, which runs both now.
    let t0 = clusterlab::bench::monotonic_ns();
    power::power(&g.lab, B, PowerAction::Off).unwrap();
    // Both restart on A (station201 is fenced with `reboot`: it comes back, and domain2's
    // preferred host may take vm:station183 back by live migration afterwards).
    let starts_on_a = |g: &LabGuard| -> Vec<u64> {
        checker::load(&g.lab.history_dir())
            .unwrap_or_default()
            .iter()
            .filter(|r| {
                r.t_ns > t0
                    && r.node == 1
                    && matches!(&r.event, Event::Vm { op, ok: true, .. } if op == "start")
            })
            .map(|r| r.t_ns)
            .collect()
    };
    let deadline = Instant::now() + BOUND;
    loop {
        for (vm, hosts) in running_qemus(&g) {
            assert!(hosts.len() <= 1, "R1: {vm} runs on {hosts:?}");
        }
        if starts_on_a(&g).len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the VMs never came back on {A}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // F1: the survivor started them only after fenced reported the victim fenced.
    let h = checker::load(&g.lab.history_dir()).unwrap();
    let fenced_at = h
        .iter()
        .find(|r| r.t_ns > t0 && matches!(r.event, Event::Fenced { victim: 2, .. }))
        .map(|r| r.t_ns)
        .expect("station201 fenced");
    let starts = starts_on_a(&g);
    assert_eq!(starts.len(), 2, "both VMs restarted on station200");
    assert!(
        starts.iter().all(|&t| t > fenced_at),
        "F1: a VM restarted before its host was fenced"
    );
    wait("both VMs started after the failover", || {
        service(&g, A, VM1) == Some((A.into(), "started".into()))
            && service(&g, A, VM2).is_some_and(|(_, st)| st == "started")
    });
    for (vm, hosts) in running_qemus(&g) {
        assert!(hosts.len() <= 1, "R1: {vm} runs on {hosts:?}");
    }

    // Disable one; an unknown service is refused.
    let (code, out) = run(&g, A, &["clusvcadm", "-d", VM2]);
    assert_eq!(code, 0, "{out}");
    wait("vm2 disabled", || {
        service(&g, A, VM2).is_some_and(|(_, s)| s == "disabled")
    });
    let (code, out) = run(&g, A, &["clusvcadm", "-e", "vm:nosuch"]);
    assert_ne!(code, 0, "{out}");
    drop(g);
    let leftovers = Command::new("pgrep")
        .args(["-f", "guest=station18[23].example.com"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "QEMU left running after the lab went down: {leftovers}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
