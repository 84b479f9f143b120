//! `clusterlab bench failover` and `clusterlab bench migrate`: the reference deployment
//! (docs/examples/dom0cluster1.conf: station200/201 in a two_node cluster, vm:station182
//! preferring station200, vm:station183 preferring station201, APC + manual fencing) with
//! cmand, fenced, rgmanagerd and real QEMU guests in network namespaces.
//!
//! failover, per run (victims alternate, station201 first):
//!
//! ```text
//!  both VMs moved to the victim (clusvcadm -e/-M) ── power cut at the switch = t0
//!    ├─ detection = survivor's first cmand view without the victim      − t0
//!    ├─ fenced    = fenced's `fenced` record for the victim              − t0
//!    └─ restart   = the survivor's last `vm start ok` (both VMs running) − t0
//!  the agent's `reboot` powers the victim on; it rejoins; failback may move its preferred
//!  VM home; the next run starts once both VMs are started and stay so for 3 s
//! ```
//!
//! Seen here: the lab's outlet comes back on at once, so the victim often rejoins before
//! the survivor has restarted the VMs, and then no failback follows (rgmanagerd considers
//! failback when a node joins, not when a service started after that join).
//!
//! The fence daemon's `post_fail_delay` is rewritten in the lab's copy of the
//! configuration (0 by default, so the figure shows the stack's own speed; the reference
//! says 5 s).
//!
//! migrate, per run: `clusvcadm -M vm:station182 -m <other host>`, back and forth; the time
//! from the call to `started` on the target in `clustat`, and QEMU's downtime and total
//! time from the source's `migrate-out` record.
//!
//! All figures but the clustat one come from the daemons' history files (CLOCK_MONOTONIC).

use super::{monotonic_ns, Stats};
use crate::demo::{missing_prerequisites, REFERENCE_CONF};
use crate::lab::{self, LabGuard, LabOptions, Network, Stack, UpOptions};
use crate::power::{self, PowerAction};
use crate::state::LabState;
use libcluster::history::{Event, Record};
use libcluster::ipc::fence::{FenceRequest, FenceResponse, DAEMON as FENCED};
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const A: &str = "station200.example.com";
const B: &str = "station201.example.com";
const VM1: &str = "vm:station182.example.com";
const VM2: &str = "vm:station183.example.com";
const BOUND: Duration = Duration::from_secs(240);

/// One failover run.
#[derive(Clone, Debug, Serialize)]
pub struct FailoverRun {
    /// The host whose power was cut (it ran both VMs).
    pub victim: String,
    /// Cut → the survivor's first view without the victim, ms.
    pub detection_ms: f64,
    /// Cut → the victim recorded fenced, ms.
    pub fenced_ms: f64,
    /// Cut → the survivor's last successful VM start (both running), ms.
    pub restart_ms: f64,
}

/// Everything `bench failover` measured.
#[derive(Clone, Debug, Serialize)]
pub struct FailoverBench {
    /// The `post_fail_delay` the lab's configuration used, seconds.
    pub post_fail_delay_s: u64,
    /// Power cut → view without the victim.
    pub detection: Stats,
    /// Power cut → victim fenced.
    pub fenced: Stats,
    /// Power cut → both VMs running on the survivor.
    pub restart: Stats,
    /// Each run.
    pub runs: Vec<FailoverRun>,
}

/// One live migration.
#[derive(Clone, Debug, Serialize)]
pub struct MigrateRun {
    /// Source host.
    pub from: String,
    /// Target host.
    pub to: String,
    /// The clusvcadm call → `started` on the target in clustat, ms.
    pub started_ms: f64,
    /// QEMU's downtime, ms (when QEMU reported one).
    pub downtime_ms: Option<u64>,
    /// The source's migrate-out operation in all, ms.
    pub took_ms: u64,
}

/// Everything `bench migrate` measured.
#[derive(Clone, Debug, Serialize)]
pub struct MigrateBench {
    /// The VM moved.
    pub vm: String,
    /// clusvcadm -M → started on the target (clustat).
    pub started: Stats,
    /// QEMU's downtime.
    pub downtime: Stats,
    /// The migrate-out operation in all (rgmanagerd's record).
    pub took: Stats,
    /// Each run.
    pub runs: Vec<MigrateRun>,
}

/// `conf` with `<fence_daemon post_fail_delay>` set to `secs` (the attribute is added to
/// `<fence_daemon>` when missing). Errors when the configuration has no `<fence_daemon>`.
pub fn with_post_fail_delay(conf: &str, secs: u64) -> Result<String, String> {
    let start = conf
        .find("<fence_daemon")
        .ok_or("the configuration has no <fence_daemon> element")?;
    let end = conf[start..]
        .find('>')
        .map(|i| start + i)
        .ok_or("unterminated <fence_daemon> element")?;
    let tag = &conf[start..end];
    let new_tag = match tag.find("post_fail_delay=") {
        Some(a) => {
            let value_at = a + "post_fail_delay=".len();
            let quote = tag[value_at..]
                .chars()
                .next()
                .filter(|q| *q == '"' || *q == '\'')
                .ok_or("post_fail_delay has an unquoted value")?;
            let close = tag[value_at + 1..]
                .find(quote)
                .map(|i| value_at + 1 + i)
                .ok_or("post_fail_delay has an unterminated value")?;
            format!(
                "{}{quote}{secs}{quote}{}",
                &tag[..value_at],
                &tag[close + 1..]
            )
        }
        None => {
            let name_end = "<fence_daemon".len();
            format!(
                "{} post_fail_delay=\"{secs}\"{}",
                &tag[..name_end],
                &tag[name_end..]
            )
        }
    };
    Ok(format!("{}{new_tag}{}", &conf[..start], &conf[end..]))
}

/// (owner, state) of `service` in `clustat -s` output.
pub fn parse_service(clustat: &str, service: &str) -> Option<(String, String)> {
    clustat.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 3 && w[0] == service).then(|| (w[1].to_string(), w[2].to_string()))
    })
}

/// The failover figures (detection, fenced, restart; ms after `t0`) from merged history,
/// once all three are there: the survivor's first cmand view without the victim, the
/// victim's `fenced` record, and the survivor's last successful start among `vms` (every
/// one of them started).
pub fn failover_figures(
    h: &[Record],
    t0: u64,
    victim: u32,
    survivor: u32,
    vms: &[&str],
) -> Option<(f64, f64, f64)> {
    let after = |r: &&Record| r.t_ns > t0;
    let seen = h.iter().filter(after).find(|r| {
        r.node == survivor
            && r.daemon == "cmand"
            && matches!(&r.event, Event::View { members, .. }
                if !members.iter().any(|(id, _)| *id == victim))
    })?;
    let fenced = h
        .iter()
        .filter(after)
        .find(|r| matches!(&r.event, Event::Fenced { victim: v, .. } if *v == victim))?;
    let mut last = 0;
    for want in vms {
        let name = want.strip_prefix("vm:").unwrap_or(want);
        let t = h
            .iter()
            .filter(after)
            .filter(|r| {
                r.node == survivor
                    && matches!(&r.event, Event::Vm { vm, op, ok: true, .. }
                        if vm == name && op == "start")
            })
            .map(|r| r.t_ns)
            .max()?;
        last = last.max(t);
    }
    let ms = |t: u64| t.saturating_sub(t0) as f64 / 1e6;
    Some((ms(seen.t_ns), ms(fenced.t_ns), ms(last)))
}

/// (downtime, took) of the first successful `migrate-out` of `vm` to `to` after `t0`.
pub fn migrate_figures(h: &[Record], t0: u64, vm: &str, to: u32) -> Option<(Option<u64>, u64)> {
    let name = vm.strip_prefix("vm:").unwrap_or(vm);
    h.iter()
        .filter(|r| r.t_ns > t0)
        .find_map(|r| match &r.event {
            Event::Vm {
                vm,
                op,
                ok: true,
                to: Some(t),
                downtime_ms,
                took_ms,
            } if vm == name && op == "migrate-out" && *t == to => Some((*downtime_ms, *took_ms)),
            _ => None,
        })
}

fn history(lab: &LabState) -> Vec<Record> {
    crate::checker::load(&lab.history_dir()).unwrap_or_default()
}

/// Runs a tool as `node`: (exit status success, stdout + stderr).
fn tool(lab: &LabState, node: &str, args: &[&str]) -> (bool, String) {
    let Some(n) = lab.node(node) else {
        return (false, format!("no node {node}"));
    };
    let mut cmd: Command = lab::node_command(lab, n, lab.bin_dir.join(args[0]));
    cmd.args(&args[1..]);
    match cmd.output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        ),
        Err(e) => (false, format!("could not run {}: {e}", args[0])),
    }
}

fn clusvcadm(lab: &LabState, node: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["clusvcadm"];
    all.extend_from_slice(args);
    match tool(lab, node, &all) {
        (true, _) => Ok(()),
        (false, out) => Err(format!("[{node}] {}: {}", all.join(" "), out.trim())),
    }
}

fn service(lab: &LabState, node: &str, svc: &str) -> Option<(String, String)> {
    parse_service(&tool(lab, node, &["clustat", "-s", svc]).1, svc)
}

fn started_on(lab: &LabState, ask: &str, svc: &str, host: &str) -> bool {
    service(lab, ask, svc).is_some_and(|(o, s)| o == host && s == "started")
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("timed out after {BOUND:?} waiting for {what}"))
}

fn node_id(lab: &LabState, name: &str) -> Result<u32, String> {
    lab.node(name)
        .map(|n| n.nodeid)
        .ok_or_else(|| format!("no node {name} in the lab"))
}

/// The reference deployment, up, with rgmanager on both hosts.
fn reference_lab(base: &Path, name: &str, conf: &str) -> Result<LabGuard, String> {
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        return Err(format!("bench {name} needs:\n  {}", missing.join("\n  ")));
    }
    let dir = base.join(format!("bench-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let conf_path = dir.join("cluster.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let opts = UpOptions {
        config: conf_path,
        dir,
        bin_dir: lab::default_bin_dir(),
        realtime: false,
        timeout: Duration::from_secs(120),
    };
    let lab_opts = LabOptions {
        network: Network::Netns,
        owned: true,
        stack: Stack::Full,
    };
    let guard = LabGuard {
        lab: lab::up_with(&opts, &lab_opts)?,
    };
    wait_for("rgmanager on both hosts", || {
        both_with_rgmanager(&guard.lab, A)
    })?;
    Ok(guard)
}

fn both_with_rgmanager(lab: &LabState, ask: &str) -> bool {
    tool(lab, ask, &["clustat"]).1.matches("rgmanager").count() >= 2
}

/// Whether both hosts' fenced report a domain of both and no victims.
fn fence_domain_whole(lab: &LabState) -> bool {
    lab.nodes.iter().all(|node| {
        let sock = clusterio::socket_path(&node.runtime_dir(), FENCED);
        matches!(
            clusterio::call_blocking::<FenceRequest, FenceResponse>(
                &sock,
                &FenceRequest::DomainInfo,
                Duration::from_secs(2),
            ),
            Ok(FenceResponse::Domain(d)) if d.joined && d.members.len() == 2 && d.victims.is_empty()
        )
    })
}

/// Moves both VMs to `host`: enables what is not running, live-migrates what runs elsewhere.
fn both_on(lab: &LabState, host: &str) -> Result<(), String> {
    for vm in [VM1, VM2] {
        match service(lab, host, vm) {
            Some((o, s)) if o == host && s == "started" => {}
            Some((_, s)) if s == "started" => clusvcadm(lab, host, &["-M", vm, "-m", host])?,
            _ => clusvcadm(lab, host, &["-e", vm, "-m", host])?,
        }
    }
    wait_for(&format!("both VMs started on {host}"), || {
        started_on(lab, host, VM1, host) && started_on(lab, host, VM2, host)
    })
}

/// Waits until both VMs are `started` (anywhere) in two looks 3 s apart, so that a
/// failback migration that is about to begin or under way is over.
fn settle(lab: &LabState, ask: &str) -> Result<(), String> {
    let both_started = || {
        [VM1, VM2]
            .iter()
            .all(|vm| service(lab, ask, vm).is_some_and(|(_, s)| s == "started"))
    };
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if both_started() {
            std::thread::sleep(Duration::from_secs(3));
            if both_started() {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "timed out after {BOUND:?} waiting for both VMs to settle"
    ))
}

/// Cuts the host running both VMs `runs` times, victims alternating.
pub fn failover(base: &Path, runs: usize, post_fail_delay: u64) -> Result<FailoverBench, String> {
    let conf = with_post_fail_delay(REFERENCE_CONF, post_fail_delay)?;
    let guard = reference_lab(base, "failover", &conf)?;
    let lab = &guard.lab;
    let names = [A.to_string(), B.to_string()];
    let mut done = Vec::new();
    for run in 0..runs {
        let (victim, survivor) = if run % 2 == 0 { (B, A) } else { (A, B) };
        let (victim_id, survivor_id) = (node_id(lab, victim)?, node_id(lab, survivor)?);
        wait_for("both hosts in one view", || {
            lab::wait_for_view(lab, &names, &names, true, Duration::from_secs(1)).is_ok()
        })?;
        wait_for("a whole fence domain", || fence_domain_whole(lab))?;
        both_on(lab, victim)?;
        let t0 = monotonic_ns();
        power::power(lab, victim, PowerAction::Off).map_err(|e| e.to_string())?;
        let mut found = None;
        wait_for(&format!("both VMs restarted on {survivor}"), || {
            found = failover_figures(&history(lab), t0, victim_id, survivor_id, &[VM1, VM2]);
            found.is_some()
        })?;
        let (detection_ms, fenced_ms, restart_ms) = found.ok_or("no figures")?;
        eprintln!(
            "clusterlab bench failover: run {}: {victim} cut, detected {detection_ms:.0} ms, fenced {fenced_ms:.0} ms, both VMs running {restart_ms:.0} ms",
            run + 1
        );
        done.push(FailoverRun {
            victim: victim.to_string(),
            detection_ms,
            fenced_ms,
            restart_ms,
        });
        // The agent's reboot brings the victim back; failback may take its VM home (when
        // the victim rejoined before the restarts, it does not: see the module doc).
        wait_for(&format!("{victim} back with rgmanager"), || {
            both_with_rgmanager(lab, survivor)
        })?;
        settle(lab, survivor)?;
    }
    let stat = |f: fn(&FailoverRun) -> f64| Stats::of(done.iter().map(f).collect());
    Ok(FailoverBench {
        post_fail_delay_s: post_fail_delay,
        detection: stat(|r| r.detection_ms),
        fenced: stat(|r| r.fenced_ms),
        restart: stat(|r| r.restart_ms),
        runs: done,
    })
}

/// Live-migrates vm:station182 between the two hosts `runs` times.
pub fn migrate(base: &Path, runs: usize) -> Result<MigrateBench, String> {
    let guard = reference_lab(base, "migrate", REFERENCE_CONF)?;
    let lab = &guard.lab;
    clusvcadm(lab, A, &["-e", VM1, "-m", A])?;
    wait_for("vm:station182 started", || started_on(lab, A, VM1, A))?;
    let mut done = Vec::new();
    for run in 0..runs {
        let (from, to) = if run % 2 == 0 { (A, B) } else { (B, A) };
        let to_id = node_id(lab, to)?;
        let t0 = monotonic_ns();
        let t = Instant::now();
        clusvcadm(lab, A, &["-M", VM1, "-m", to])?;
        wait_for(&format!("{VM1} started on {to}"), || {
            started_on(lab, A, VM1, to)
        })?;
        let started_ms = t.elapsed().as_secs_f64() * 1000.0;
        let mut found = None;
        wait_for("the migrate-out record", || {
            found = migrate_figures(&history(lab), t0, VM1, to_id);
            found.is_some()
        })?;
        let (downtime_ms, took_ms) = found.ok_or("no migrate-out record")?;
        eprintln!(
            "clusterlab bench migrate: run {}: {from} -> {to}: started {started_ms:.0} ms, QEMU downtime {} ms, migrate-out {took_ms} ms",
            run + 1,
            downtime_ms.map_or("?".to_string(), |d| d.to_string())
        );
        done.push(MigrateRun {
            from: from.to_string(),
            to: to.to_string(),
            started_ms,
            downtime_ms,
            took_ms,
        });
    }
    Ok(MigrateBench {
        vm: VM1.to_string(),
        started: Stats::of(done.iter().map(|r| r.started_ms).collect()),
        downtime: Stats::of(
            done.iter()
                .filter_map(|r| r.downtime_ms.map(|d| d as f64))
                .collect(),
        ),
        took: Stats::of(done.iter().map(|r| r.took_ms as f64).collect()),
        runs: done,
    })
}

fn row(name: &str, s: &Stats) -> String {
    format!(
        "{name:<40} {:>8.0} {:>8.0} {:>8.0} {:>5}\n",
        s.median_ms, s.min_ms, s.max_ms, s.n
    )
}

fn header(title: &str) -> String {
    format!(
        "{title}\n{:<40} {:>8} {:>8} {:>8} {:>5}\n",
        "ms", "median", "min", "max", "runs"
    )
}

/// The table `bench failover` prints.
pub fn failover_table(b: &FailoverBench) -> String {
    let mut out = header(&format!(
        "failover, the reference deployment (2 hosts, 2 VMs on the victim), power cut at the APC switch, post_fail_delay={} s",
        b.post_fail_delay_s
    ));
    out += &row("power cut -> view without victim", &b.detection);
    out += &row("power cut -> victim fenced", &b.fenced);
    out += &row("power cut -> both VMs running on survivor", &b.restart);
    out
}

/// The table `bench migrate` prints.
pub fn migrate_table(b: &MigrateBench) -> String {
    let mut out = header(&format!(
        "live migration of {} back and forth between the two hosts",
        b.vm
    ));
    out += &row("clusvcadm -M -> started on target", &b.started);
    out += &row("QEMU downtime", &b.downtime);
    out += &row("migrate-out in all (rgmanagerd)", &b.took);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t_ns: u64, node: u32, daemon: &str, event: Event) -> Record {
        Record {
            t_ns,
            node,
            incarnation: 1,
            daemon: daemon.into(),
            event,
        }
    }

    fn vm(name: &str, op: &str, ok: bool, to: Option<u32>) -> Event {
        Event::Vm {
            vm: name.into(),
            op: op.into(),
            ok,
            to,
            downtime_ms: Some(40),
            took_ms: 900,
        }
    }

    #[test]
    fn post_fail_delay_is_rewritten_and_nothing_else_changes() {
        let out = with_post_fail_delay(REFERENCE_CONF, 0).unwrap();
        assert!(out.contains(
            "<fence_daemon clean_start=\"1\" post_fail_delay=\"0\" post_join_delay=\"20\"/>"
        ));
        assert_eq!(
            out.replace("post_fail_delay=\"0\"", "post_fail_delay=\"5\""),
            REFERENCE_CONF
        );
        let single = with_post_fail_delay("<c><fence_daemon post_fail_delay='7'/></c>", 3);
        assert_eq!(
            single.unwrap(),
            "<c><fence_daemon post_fail_delay='3'/></c>"
        );
    }

    #[test]
    fn post_fail_delay_is_added_when_missing_and_refused_without_fence_daemon() {
        assert_eq!(
            with_post_fail_delay("<c><fence_daemon clean_start=\"1\"/></c>", 2).unwrap(),
            "<c><fence_daemon post_fail_delay=\"2\" clean_start=\"1\"/></c>"
        );
        assert!(with_post_fail_delay("<cluster/>", 0).is_err());
        assert!(with_post_fail_delay("<c><fence_daemon post_fail_delay=5/>", 0).is_err());
    }

    #[test]
    fn clustat_rows_give_owner_and_state_of_the_named_service_only() {
        let text = " Service Name        Owner (Last)        State\n ------- ----        ----- ------      -----\n vm:a                n1                  started\n vm:ab               (n2)                stopped\n";
        assert_eq!(
            parse_service(text, "vm:a"),
            Some(("n1".into(), "started".into()))
        );
        assert_eq!(
            parse_service(text, "vm:ab"),
            Some(("(n2)".into(), "stopped".into()))
        );
        assert_eq!(parse_service(text, "vm:b"), None);
    }

    #[test]
    fn failover_figures_wait_for_every_vm_and_ignore_what_came_before_the_cut() {
        let view_without = |t| {
            rec(
                t,
                1,
                "cmand",
                Event::View {
                    generation: 3,
                    coordinator: 1,
                    members: vec![(1, 1)],
                },
            )
        };
        let mut h = vec![
            view_without(500), // before the cut
            rec(600, 1, "rgmanagerd", vm("x", "start", true, None)),
            view_without(2_000_000_000),
            rec(
                7_000_000_000,
                1,
                "fenced",
                Event::Fenced {
                    victim: 2,
                    victim_incarnation: 1,
                    how: "agent".into(),
                    method: None,
                    device: None,
                },
            ),
            rec(8_000_000_000, 1, "rgmanagerd", vm("x", "start", true, None)),
            rec(8_500_000_000, 2, "rgmanagerd", vm("y", "start", true, None)),
            rec(
                8_600_000_000,
                1,
                "rgmanagerd",
                vm("y", "start", false, None),
            ),
        ];
        assert_eq!(
            failover_figures(&h, 1_000_000_000, 2, 1, &["vm:x", "vm:y"]),
            None
        );
        h.push(rec(
            9_000_000_000,
            1,
            "rgmanagerd",
            vm("y", "start", true, None),
        ));
        assert_eq!(
            failover_figures(&h, 1_000_000_000, 2, 1, &["vm:x", "vm:y"]),
            Some((1000.0, 6000.0, 8000.0))
        );
        // Another victim: no figures.
        assert_eq!(failover_figures(&h, 1_000_000_000, 3, 1, &["vm:x"]), None);
    }

    #[test]
    fn migrate_figures_take_the_successful_migration_to_the_target_after_the_call() {
        let h = vec![
            rec(5, 1, "rgmanagerd", vm("x", "migrate-out", true, Some(2))),
            rec(20, 1, "rgmanagerd", vm("x", "migrate-out", false, Some(2))),
            rec(30, 2, "rgmanagerd", vm("x", "migrate-out", true, Some(1))),
            rec(40, 1, "rgmanagerd", vm("x", "migrate-out", true, Some(2))),
        ];
        assert_eq!(migrate_figures(&h, 10, "vm:x", 2), Some((Some(40), 900)));
        assert_eq!(migrate_figures(&h, 40, "vm:x", 2), None);
        assert_eq!(migrate_figures(&h, 10, "vm:y", 1), None);
    }
}
