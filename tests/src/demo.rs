//! `clusterlab demo`: the reference deployment (reference/ section 7.3 + 8.3, two hosts
//! station200/201 in a two_node cluster, vm:station182 in domain1, vm:station183 in domain2,
//! APC + manual fencing) on this machine, end to end:
//!
//! 1. the lab comes up (network namespaces, the APC switch, cmand + fenced + rgmanagerd);
//! 2. `clustat`; both VMs enabled with `clusvcadm -e` (real QEMU guests, TCG or KVM);
//! 3. `clusvcadm -M vm:station182 -m station201`: a live migration, with QEMU's downtime;
//! 4. a power cut of station201 at the switch: station200 detects it, fences it
//!    (fence_apc, after the configuration's post_fail_delay of 5 s) and restarts both VMs,
//!    with the time each step took;
//! 5. everything is torn down.
//!
//! Without root or QEMU it says what is missing and how to install it.

use crate::checker;
use crate::lab::{self, LabGuard, LabOptions, Network, Stack, UpOptions};
use crate::power::{self, PowerAction};
use crate::state::LabState;
use libcluster::history::{Event, Record};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The reference deployment's cluster.conf.
pub const REFERENCE_CONF: &str = include_str!("../../docs/examples/dom0cluster1.conf");

const A: &str = "station200.example.com";
const B: &str = "station201.example.com";
const VM1: &str = "vm:station182.example.com";
const VM2: &str = "vm:station183.example.com";
const BOUND: Duration = Duration::from_secs(120);

/// What the demo needs and the machine lacks, as install advice.
pub fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root (the hosts live in network namespaces): run it with sudo".into());
    }
    let have = |p: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).exists()))
            || Path::new("/usr/sbin").join(p).exists()
            || Path::new("/sbin").join(p).exists()
    };
    for (bin, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("ip", "iproute2"),
        ("nft", "nftables"),
    ] {
        if !have(bin) {
            missing.push(format!("{bin}: apt-get install {pkg}"));
        }
    }
    missing
}

fn say(text: &str) {
    println!("{text}");
}

/// Runs a tool as `node` and prints the command and its output.
fn show(lab: &LabState, node: &str, args: &[&str]) -> String {
    let n = match lab.node(node) {
        Some(n) => n,
        None => return String::new(),
    };
    let mut cmd: Command = lab::node_command(lab, n, lab.bin_dir.join(args[0]));
    cmd.args(&args[1..]);
    println!("[{node}]# {}", args.join(" "));
    match cmd.output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            println!("{}", text.trim_end());
            println!();
            text
        }
        Err(e) => {
            println!("(could not run {}: {e})\n", args[0]);
            String::new()
        }
    }
}

fn quiet(lab: &LabState, node: &str, args: &[&str]) -> String {
    let Some(n) = lab.node(node) else {
        return String::new();
    };
    let mut cmd: Command = lab::node_command(lab, n, lab.bin_dir.join(args[0]));
    cmd.args(&args[1..]);
    cmd.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn wait(what: &str, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("timed out after {BOUND:?} waiting for {what}"))
}

/// Whether `clustat` on `node` shows `service` started on `owner`.
fn started_on(lab: &LabState, node: &str, service: &str, owner: &str) -> bool {
    quiet(lab, node, &["clustat", "-s", service])
        .lines()
        .any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= 3 && w[0] == service && w[1] == owner && w[2] == "started"
        })
}

fn history(lab: &LabState) -> Vec<Record> {
    checker::load(&lab.history_dir()).unwrap_or_default()
}

fn ms(from: u64, to: u64) -> f64 {
    to.saturating_sub(from) as f64 / 1e6
}

/// Runs the demo in `dir` (a fresh directory under the temp dir when `None`).
pub fn run(dir: Option<PathBuf>) -> Result<(), String> {
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        return Err(format!(
            "the demo needs:\n  {}\n(everything at once: apt-get install qemu-system-x86 iproute2 nftables fence-agents telnet)",
            missing.join("\n  ")
        ));
    }
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("clusterlab-demo-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let conf = dir.join("cluster.conf");
    std::fs::write(&conf, REFERENCE_CONF).map_err(|e| e.to_string())?;
    say("== The reference deployment: two hosts, two VMs, APC + manual fencing (docs/examples/dom0cluster1.conf)");
    let opts = UpOptions {
        config: conf,
        dir: dir.clone(),
        bin_dir: lab::default_bin_dir(),
        realtime: false,
        timeout: BOUND,
    };
    let lab_opts = LabOptions {
        network: Network::Netns,
        owned: true,
        stack: Stack::Full,
    };
    let guard = LabGuard {
        lab: lab::up_with(&opts, &lab_opts)?,
    };
    let result = steps(&guard.lab);
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn steps(lab: &LabState) -> Result<(), String> {
    print!("{}", crate::report::status_table(lab));
    println!();
    wait("rgmanagerd on both hosts", || {
        quiet(lab, A, &["clustat"]).matches("rgmanager").count() >= 2
    })?;
    show(lab, A, &["clustat"]);

    say("== Enable both VMs (QEMU guests in the hosts' namespaces)");
    show(lab, A, &["clusvcadm", "-e", VM1]);
    show(lab, A, &["clusvcadm", "-e", VM2, "-m", B]);
    wait("both VMs started", || {
        started_on(lab, A, VM1, A) && started_on(lab, A, VM2, B)
    })?;
    show(lab, A, &["clustat"]);

    say("== Live migration of vm:station182 to station201");
    let t = crate::bench::monotonic_ns();
    show(lab, A, &["clusvcadm", "-M", VM1, "-m", B]);
    wait("the migration", || started_on(lab, A, VM1, B))?;
    let h = history(lab);
    if let Some((took, down)) = h.iter().rev().find_map(|r| match &r.event {
        Event::Vm {
            vm,
            op,
            ok: true,
            downtime_ms,
            took_ms,
            ..
        } if r.t_ns > t && op == "migrate-out" && VM1.ends_with(vm.as_str()) => {
            Some((*took_ms, *downtime_ms))
        }
        _ => None,
    }) {
        println!(
            "live migration: {took} ms in all, QEMU downtime {} ms\n",
            down.map_or("?".to_string(), |d| d.to_string())
        );
    }
    show(lab, A, &["clustat"]);

    say("== Power cut of station201 (it runs both VMs now) at the APC switch");
    let t0 = crate::bench::monotonic_ns();
    power::power(lab, B, PowerAction::Off).map_err(|e| e.to_string())?;
    wait("both VMs restarted on station200", || {
        started_on(lab, A, VM1, A) && started_on(lab, A, VM2, A)
    })?;
    let h = history(lab);
    let after = |r: &&Record| r.t_ns > t0;
    let detected = h.iter().filter(after).find(|r| {
        r.node == 1
            && matches!(&r.event, Event::View { members, .. } if !members.iter().any(|(id, _)| *id == 2))
    });
    let fenced = h
        .iter()
        .filter(after)
        .find(|r| matches!(&r.event, Event::Fenced { victim: 2, .. }));
    let restarted = h
        .iter()
        .filter(after)
        .filter(|r| matches!(&r.event, Event::Vm { op, ok: true, .. } if op == "start"))
        .map(|r| r.t_ns)
        .max();
    if let (Some(d), Some(f), Some(s)) = (detected, fenced, restarted) {
        println!(
            "power cut -> station200 sees station201 gone:   {:>7.0} ms",
            ms(t0, d.t_ns)
        );
        println!(
            "         -> station201 fenced (post_fail_delay=5): {:>5.0} ms",
            ms(t0, f.t_ns)
        );
        println!(
            "         -> both VMs running on station200:     {:>7.0} ms",
            ms(t0, s)
        );
        println!();
    }
    show(lab, A, &["fence_tool", "ls", "-n"]);
    show(lab, A, &["clustat"]);
    say("== Tearing down");
    Ok(())
}
