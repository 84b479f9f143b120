//! `clusterlab bench fencing`: from a node's power cut to "fenced" on the survivors.
//!
//! One lab (fenced on every node, the lab's APC outlet as every node's first method) and
//! `runs` power cuts, each of a different node in turn. For each cut, from the daemons'
//! own history files (CLOCK_MONOTONIC):
//!
//! - detection = the last survivor's first view without the victim − the cut;
//! - fenced = the master's `fenced` record for the victim − the cut (what rgmanagerd waits
//!   for before it restarts the victim's services);
//! - agent = that record − the master's `fence_start` (the fence_apc call: log in, `off`,
//!   which finds the outlet already off, `on`).
//!
//! The cut is made through the switch's telnet interface, as `clusterlab power off` does;
//! the victim comes back when fenced's `reboot` turns its outlet on again, and the next
//! run waits for it to rejoin the cluster and the fence domain first.

use super::{monotonic_ns, Stats};
use crate::lab::{self, simple_config, LabGuard, LabOptions, Network, Stack, UpOptions};
use crate::power::{self, PowerAction};
use crate::state::LabState;
use libcluster::history::{Event, Record};
use libcluster::ipc::fence::{FenceRequest, FenceResponse, DAEMON as FENCED};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// Everything `bench fencing` measured.
#[derive(Clone, Debug, Serialize)]
pub struct FencingBench {
    /// Cluster size.
    pub nodes: u32,
    /// Power cut → view without the victim on every survivor.
    pub detection: Stats,
    /// Power cut → the victim recorded fenced.
    pub fenced: Stats,
    /// The fence agent's part: fence start → fenced.
    pub agent: Stats,
}

fn all_records(lab: &LabState) -> Vec<Record> {
    crate::checker::load(&lab.history_dir()).unwrap_or_default()
}

/// Whether every node's fenced reports a domain of all `n` nodes.
fn domain_complete(lab: &LabState, n: usize) -> bool {
    lab.nodes.iter().all(|node| {
        let sock = clusterio::socket_path(&node.runtime_dir(), FENCED);
        matches!(
            clusterio::call_blocking::<FenceRequest, FenceResponse>(
                &sock,
                &FenceRequest::DomainInfo,
                Duration::from_secs(2),
            ),
            Ok(FenceResponse::Domain(d)) if d.joined && d.members.len() == n && d.victims.is_empty()
        )
    })
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("timed out after {timeout:?} waiting for {what}"))
}

/// One cut of `victim`: (detection, fenced, agent) in ms.
fn one_cut(lab: &LabState, victim: &str, victim_id: u32) -> Result<(f64, f64, f64), String> {
    let survivors: Vec<u32> = lab
        .nodes
        .iter()
        .filter(|n| n.nodeid != victim_id)
        .map(|n| n.nodeid)
        .collect();
    let t0 = monotonic_ns();
    power::power(lab, victim, PowerAction::Off).map_err(|e| e.to_string())?;
    let mut found = None;
    wait_for("the victim to be fenced", Duration::from_secs(120), || {
        let h = all_records(lab);
        let fenced = h.iter().find(|r| {
            r.t_ns > t0 && matches!(&r.event, Event::Fenced { victim, .. } if *victim == victim_id)
        });
        let Some(f) = fenced else { return false };
        let start = h.iter().rev().find(|r| {
            r.t_ns > t0
                && r.t_ns <= f.t_ns
                && r.node == f.node
                && matches!(&r.event, Event::FenceStart { victim, .. } if *victim == victim_id)
        });
        let views = survivors.iter().map(|s| {
            h.iter().find(|r| {
                r.t_ns > t0
                    && r.node == *s
                    && r.daemon == "cmand"
                    && matches!(&r.event, Event::View { members, .. }
                        if !members.iter().any(|(id, _)| *id == victim_id))
            })
        });
        let detected: Option<Vec<u64>> = views.map(|v| v.map(|r| r.t_ns)).collect();
        match (detected, start) {
            (Some(d), Some(s)) => {
                let last = d.into_iter().max().unwrap_or(t0);
                found = Some((last, s.t_ns, f.t_ns));
                true
            }
            _ => false,
        }
    })?;
    let (seen, start, done) = found.ok_or("no result")?;
    let ms = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1e6;
    Ok((ms(t0, seen), ms(t0, done), ms(start, done)))
}

/// Brings up `n` nodes with fenced and cuts a node's power `runs` times.
pub fn fencing(base: &Path, n: u32, runs: usize) -> Result<FencingBench, String> {
    if n < 2 {
        return Err("bench fencing needs at least 2 nodes".into());
    }
    let dir = base.join(format!("bench-fencing-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let conf = dir.join("cluster.conf");
    std::fs::write(&conf, simple_config("benchfence", n, n == 2, 1)).map_err(|e| e.to_string())?;
    let opts = UpOptions {
        config: conf,
        dir,
        bin_dir: lab::default_bin_dir(),
        realtime: false,
        timeout: Duration::from_secs(120),
    };
    let lab_opts = LabOptions {
        network: Network::Auto,
        owned: true,
        stack: Stack::Fencing,
    };
    let guard = LabGuard {
        lab: lab::up_with(&opts, &lab_opts)?,
    };
    let lab = &guard.lab;
    let names: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
    let (mut detection, mut fenced, mut agent) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        wait_for("every node in one view", Duration::from_secs(120), || {
            lab::wait_for_view(lab, &names, &names, true, Duration::from_secs(1)).is_ok()
        })?;
        wait_for(
            "a complete fence domain with no victims",
            Duration::from_secs(120),
            || domain_complete(lab, names.len()),
        )?;
        // Never the highest id in a two-node cluster... any node will do; take turns.
        let victim = &lab.nodes[run % lab.nodes.len()];
        let (d, f, a) = one_cut(lab, &victim.name, victim.nodeid)?;
        eprintln!(
            "clusterlab bench fencing: run {}: {} cut, detected {d:.0} ms, fenced {f:.0} ms (agent {a:.0} ms)",
            run + 1,
            victim.name
        );
        detection.push(d);
        fenced.push(f);
        agent.push(a);
    }
    Ok(FencingBench {
        nodes: n,
        detection: Stats::of(detection),
        fenced: Stats::of(fenced),
        agent: Stats::of(agent),
    })
}

/// The table `bench fencing` prints.
pub fn fencing_table(b: &FencingBench) -> String {
    let row = |name: &str, s: &Stats| {
        format!(
            "{name:<34} {:>8.0} {:>8.0} {:>8.0} {:>5}\n",
            s.median_ms, s.min_ms, s.max_ms, s.n
        )
    };
    let mut out = format!(
        "fencing, {} nodes, power cut through the lab's APC switch\n{:<34} {:>8} {:>8} {:>8} {:>5}\n",
        b.nodes, "ms", "median", "min", "max", "runs"
    );
    out.push_str(&row("power cut -> view without victim", &b.detection));
    out.push_str(&row("power cut -> victim fenced", &b.fenced));
    out.push_str(&row("fence agent (start -> fenced)", &b.agent));
    out
}
