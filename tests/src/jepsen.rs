//! `clusterlab jepsen`: a Jepsen-style run. A lab comes up, a client workload sends ordered
//! group messages through every node's cmand, a seeded nemesis schedule injects bounded
//! faults, then everything is healed, the cluster must converge, the histories are merged
//! and checked, and a verdict table says what held.
//!
//! ```text
//!   up ─► workload ─► schedule (inject/heal, supervise) ─► heal all ─► converge
//!                                                                        │
//!   verdict ◄─ checks (M1 Q1 M3 N1 N2) ◄─ merge histories ◄─ stop ◄─ drain workload
//! ```
//!
//! Files in the lab directory: `history/*.jsonl` (each node's, and `lab.jsonl` with the
//! faults), `history.merged.jsonl`, `workload.json` (every send and its outcome),
//! `schedule.txt` (the faults the seed chose), `verdict.txt`. `clusterlab check --dir DIR`
//! judges such a directory again. docs/testing.md says how to read and replay a verdict.

pub mod check;
pub mod faults;
pub mod fencing;
pub mod schedule;
pub mod verdict;
pub mod vms;

use crate::checker;
use crate::lab::{self, faults as lab_faults, LabOptions, Network, UpOptions};
use crate::state::LabState;
use crate::workload::{self, Target, Workload, WorkloadLog};
use faults::Injector;
use libcluster::ipc::cman::DAEMON;
use schedule::{NemesisKind, Timing};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use verdict::Verdict;

/// How a run is asked for.
#[derive(Clone, Debug)]
pub struct JepsenOptions {
    /// The cluster.conf.
    pub config: PathBuf,
    /// The lab directory; a fresh one under the temp dir when None.
    pub dir: Option<PathBuf>,
    /// How long the nemesis schedule runs.
    pub time: Duration,
    /// The schedule's seed.
    pub seed: u64,
    /// Which faults.
    pub nemesis: Vec<NemesisKind>,
    /// Keep the lab directory after a passing run (a failing run always keeps it).
    pub keep: bool,
    /// Where the daemons are.
    pub bin_dir: PathBuf,
    /// Bound on convergence after the schedule.
    pub converge_timeout: Duration,
    /// The workload's pace.
    pub workload: workload::Options,
    /// Which network the lab is built on (namespaces when root, by default).
    pub network: Network,
    /// Which daemons the nodes run: with fenced, failed nodes are fenced through the lab's
    /// switch and the fencing checks (F1, F2, F3) join the verdict.
    pub stack: lab::Stack,
    /// Run the VM workload and the QEMU observer beside the messaging workload (needs
    /// `stack` Full): R1, R1h, F1vm and R2 join the verdict (jepsen/vms.rs).
    pub vms: bool,
}

impl JepsenOptions {
    /// Defaults for a config, seed and duration: kill and pause, 120 s convergence bound.
    pub fn new(config: PathBuf, seed: u64, time: Duration) -> JepsenOptions {
        JepsenOptions {
            config,
            dir: None,
            time,
            seed,
            nemesis: vec![NemesisKind::Kill, NemesisKind::Pause],
            keep: false,
            bin_dir: lab::default_bin_dir(),
            converge_timeout: Duration::from_secs(120),
            workload: workload::Options::default(),
            network: Network::Auto,
            stack: lab::Stack::Membership,
            vms: false,
        }
    }
}

/// Parses `60s`, `30m`, `2h`, `1500ms` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration {text:?}: expected e.g. 60s, 30m, 2h"))?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        _ => return Err(format!("bad duration unit in {text:?}: use ms, s, m or h")),
    };
    Ok(Duration::from_millis(ms))
}

fn fresh_dir(seed: u64) -> PathBuf {
    let nanos = crate::bench::monotonic_ns();
    std::env::temp_dir().join(format!(
        "clusterlab-jepsen-{seed}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_007
    ))
}

/// Runs one Jepsen-style test and returns its verdict (also written to DIR/verdict.txt).
/// `Err` means the run itself could not be carried out (the lab did not come up, a fault
/// could not be injected); a failed invariant or convergence is a failing verdict.
pub fn run(opts: &JepsenOptions) -> Result<(Verdict, PathBuf), String> {
    let started = Instant::now();
    let (dir, generated) = match &opts.dir {
        Some(d) => (d.clone(), false),
        None => (fresh_dir(opts.seed), true),
    };
    if dir
        .join("history")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
    {
        return Err(format!(
            "{} already holds a history; give the run a fresh directory",
            dir.display()
        ));
    }
    let up = UpOptions {
        config: opts.config.clone(),
        dir: dir.clone(),
        bin_dir: opts.bin_dir.clone(),
        realtime: false,
        timeout: Duration::from_secs(60),
    };
    let lab_opts = LabOptions {
        network: opts.network,
        // If the runner dies, `clusterlab gc` tears the lab down.
        owned: true,
        stack: opts.stack,
    };
    let state = match lab::up_with(&up, &lab_opts) {
        Ok(s) => s,
        Err(e) => {
            if let Ok(mut s) = LabState::load(&dir) {
                let _ = lab::down(&mut s);
            }
            return Err(format!("the lab did not come up: {e}"));
        }
    };
    let dir = state.dir.clone();
    let mut guard = Guard {
        inj: Some(Injector::new(state)),
    };
    let outcome = run_in_lab(opts, &mut guard, started);
    // Whatever happened, nothing keeps running.
    if let Some(mut inj) = guard.inj.take() {
        let _ = stop_all(&mut inj);
    }
    let mut verdict = outcome?;
    let merged = checker::load(&dir.join("history"))?;
    write_merged(&dir.join("history.merged.jsonl"), &merged)?;
    let log = WorkloadLog::load(&dir).ok();
    verdict::judge(&mut verdict, &merged, log.as_ref(), two_node(&dir));
    verdict::judge_vms(&mut verdict, &merged, &dir);
    verdict.seconds = Some((opts.time.as_secs_f64(), started.elapsed().as_secs_f64()));
    let table = verdict.table();
    let _ = std::fs::write(dir.join("verdict.txt"), &table);
    if verdict.passed() && generated && !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok((verdict, dir))
}

/// Stops the lab when dropped (a panic in the runner leaves no process behind).
struct Guard {
    inj: Option<Injector>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(inj) = &mut self.inj {
            let _ = stop_all(inj);
        }
    }
}

/// Stops every node cleanly (a `stop` record each), then the rest of the lab: the power
/// switch and the network.
fn stop_all(inj: &mut Injector) -> Result<(), String> {
    if inj.netns {
        let _ = lab_faults::heal(&inj.lab);
    }
    let nodes: Vec<String> = inj.lab.nodes.iter().map(|n| n.name.clone()).collect();
    for name in nodes {
        let running = inj
            .lab
            .node(&name)
            .is_some_and(|n| n.daemons.values().any(|r| r.alive()));
        if running {
            lab_faults::stop(&mut inj.lab, &name)?;
        }
    }
    lab::down(&mut inj.lab)
}

fn run_in_lab(
    opts: &JepsenOptions,
    guard: &mut Guard,
    started: Instant,
) -> Result<Verdict, String> {
    let inj = guard.inj.as_mut().ok_or("no lab")?;
    let dir = inj.lab.dir.clone();
    let mut verdict = Verdict {
        seed: Some(opts.seed),
        nodes: inj.lab.nodes.iter().map(|n| n.name.clone()).collect(),
        nemesis: opts.nemesis.iter().map(|k| k.to_string()).collect(),
        ..Verdict::default()
    };
    let mut kinds = opts.nemesis.clone();
    if kinds.contains(&NemesisKind::Partition) && !inj.netns {
        kinds.retain(|k| *k != NemesisKind::Partition);
        verdict
            .notes
            .push("partition skipped: not a netns lab (no DIR/netns.json)".into());
    }
    if kinds.contains(&NemesisKind::Power) && inj.lab.power_switch.is_none() {
        kinds.retain(|k| *k != NemesisKind::Power);
        verdict
            .notes
            .push("power skipped: the lab has no power switch".into());
    }
    let ids: Vec<u32> = inj.lab.nodes.iter().map(|n| n.nodeid).collect();
    let time_ms = u64::try_from(opts.time.as_millis()).unwrap_or(u64::MAX);
    let steps = schedule::schedule(opts.seed, &ids, time_ms, &kinds, Timing::default());
    let text: String = steps
        .iter()
        .map(|s| format!("{:>8} ms  {:>8} ms  {}\n", s.at_ms, s.heal_ms, s.fault))
        .collect();
    std::fs::write(
        dir.join("schedule.txt"),
        format!("# seed {}: inject at, heal at, fault\n{text}", opts.seed),
    )
    .map_err(|e| e.to_string())?;
    eprintln!(
        "clusterlab jepsen: lab {} up in {:.1} s; {} faults over {:?} (seed {})",
        dir.display(),
        started.elapsed().as_secs_f64(),
        steps.len(),
        opts.time,
        opts.seed
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let targets: Vec<Target> = inj
        .lab
        .nodes
        .iter()
        .map(|n| Target {
            name: n.name.clone(),
            nodeid: n.nodeid,
            socket: clusterio::socket_path(&n.runtime_dir(), DAEMON),
        })
        .collect();
    let wl = Workload::start(rt.handle(), &targets, opts.workload);
    // The VM workload and the QEMU observer (--vms).
    let mut vl = if opts.vms {
        Some(start_vm_load(&inj.lab, opts.seed)?)
    } else {
        None
    };

    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut failure = None;
    for s in &steps {
        let step = inj
            .wait_until(at(s.at_ms))
            .and_then(|()| inj.inject(&s.fault))
            .and_then(|()| inj.wait_until(at(s.heal_ms)))
            .and_then(|()| inj.heal(&s.fault));
        if let Err(e) = step {
            failure = Some(format!("at {} ms, {}: {e}", s.at_ms, s.fault));
            break;
        }
    }
    if failure.is_none() {
        if let Err(e) = inj.wait_until(at(time_ms)) {
            failure = Some(e);
        }
    }

    let converged = inj.converge(opts.converge_timeout, Duration::from_secs(8));
    let finals = match &converged {
        Ok((statuses, how)) => {
            verdict.converged = Some(Ok(how.clone()));
            statuses
                .iter()
                .map(|s| (s.node_id, s.incarnation))
                .collect()
        }
        Err(e) => {
            verdict.converged = Some(Err(e.clone()));
            Default::default()
        }
    };
    // Drain: no new sends; wait for every acked message of a live incarnation to come
    // back to its sender (N1 judges the ones that never do).
    wl.stop_sending();
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    while wl.unconfirmed() > 0 && Instant::now() < drain_deadline && converged.is_ok() {
        std::thread::sleep(Duration::from_millis(100));
    }
    // The VM settle (R2's final enable), then the end of the judged span.
    if let Some(mut v) = vl.take() {
        v.settle(VM_SETTLE_BOUND);
        v.finish(&dir)?;
    }
    let clients = rt.block_on(wl.finish());
    rt.shutdown_timeout(Duration::from_secs(2));
    let log = WorkloadLog {
        group: workload::GROUP.into(),
        clients,
        final_incarnations: finals,
    };
    log.save(&dir)?;
    verdict.notes.append(&mut inj.notes);
    if let Some(f) = failure {
        return Err(format!("the nemesis failed {f}"));
    }
    Ok(verdict)
}

/// How long the VM settle may take after the faults (R2's bound).
const VM_SETTLE_BOUND: Duration = Duration::from_secs(120);

/// Starts the VM workload on every node of the lab, with the VMs of its configuration.
fn start_vm_load(lab: &LabState, seed: u64) -> Result<crate::vmload::VmLoad, String> {
    let hosts: Vec<crate::vmload::VmHost> = lab
        .nodes
        .iter()
        .map(|n| crate::vmload::VmHost {
            name: n.name.clone(),
            nodeid: n.nodeid,
            runtime_dir: n.runtime_dir(),
        })
        .collect();
    let conf = lab
        .nodes
        .first()
        .ok_or("a lab without nodes")?
        .config_path();
    let specs = crate::vmload::vm_specs(&conf)?;
    crate::vmload::VmLoad::start(&lab.dir, hosts, specs, crate::vmload::Options::new(seed))
}

fn write_merged(path: &Path, h: &[libcluster::history::Record]) -> Result<(), String> {
    let text: String = h.iter().map(|r| r.to_line() + "\n").collect();
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// two_node from the lab's configuration (false when it cannot be read).
fn two_node(dir: &Path) -> bool {
    LabState::load(dir)
        .ok()
        .and_then(|lab| {
            let n = lab.nodes.first()?;
            libcluster::config::load(&n.config_path()).ok()
        })
        .is_some_and(|p| p.config.two_node())
}

/// `clusterlab check --dir DIR`: judges an existing lab directory's history (and its
/// workload log, when there is one) again.
pub fn check_dir(dir: &Path) -> Result<Verdict, String> {
    let merged = checker::load(&dir.join("history"))?;
    let mut verdict = Verdict {
        nodes: LabState::load(dir)
            .map(|l| l.nodes.iter().map(|n| n.name.clone()).collect())
            .unwrap_or_default(),
        ..Verdict::default()
    };
    let log = WorkloadLog::load(dir).ok();
    verdict::judge(&mut verdict, &merged, log.as_ref(), two_node(dir));
    verdict::judge_vms(&mut verdict, &merged, dir);
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_bad_ones_are_refused() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("10d").is_err());
    }
}
