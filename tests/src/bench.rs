//! `clusterlab bench membership`: formation time, failure detection time, idle cost.
//!
//! Figures come from the daemons' own history files (CLOCK_MONOTONIC, the clock every
//! process on the machine shares), so the measuring loop's polling does not blur them:
//! detection time = the latest survivor's first view without the victim, minus the instant
//! just before the lab sent SIGKILL.

use crate::lab::{self, simple_config, wait_for_view, LabGuard, UpOptions};
use crate::state::LabState;
use libcluster::history::{Event, Record};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// CLOCK_MONOTONIC in nanoseconds (what the daemons write in their history).
pub fn monotonic_ns() -> u64 {
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("monotonic clock");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// Median, min and max of a sample, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// Sample size.
    pub n: usize,
    /// Median.
    pub median_ms: f64,
    /// Minimum.
    pub min_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Stats {
    /// Summarises `samples` (milliseconds).
    pub fn of(mut samples: Vec<f64>) -> Stats {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median_ms = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        Stats {
            n,
            median_ms,
            min_ms: samples.first().copied().unwrap_or(f64::NAN),
            max_ms: samples.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// One row of the membership table.
#[derive(Clone, Debug, Serialize)]
pub struct MembershipRow {
    /// Cluster size.
    pub nodes: u32,
    /// Start of all daemons to one quorate view on every node.
    pub formation: Stats,
    /// SIGKILL of one node to a view without it on every survivor.
    pub detection: Stats,
}

/// Idle cost of one cmand.
#[derive(Clone, Debug, Serialize)]
pub struct IdleRow {
    /// Node.
    pub node: String,
    /// CPU used over the window, percent of one core.
    pub cpu_percent: f64,
    /// Resident set size at the end, KiB.
    pub rss_kib: u64,
}

/// Everything `bench membership` measured.
#[derive(Clone, Debug, Serialize)]
pub struct MembershipBench {
    /// Per cluster size.
    pub rows: Vec<MembershipRow>,
    /// Idle cost per daemon in a 3-node cluster.
    pub idle: Vec<IdleRow>,
    /// Length of the idle window, seconds.
    pub idle_window_s: u64,
}

fn history(lab: &LabState, node: &str) -> Vec<Record> {
    let path = lab.history_dir().join(format!("{node}.jsonl"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| Record::from_line(l).ok())
        .collect()
}

/// The first instant after `after_ns` at which `node` installed a view without `victim`.
fn first_view_without(lab: &LabState, node: &str, victim: u32, after_ns: u64) -> Option<u64> {
    history(lab, node).into_iter().find_map(|r| match r.event {
        Event::View { members, .. }
            if r.t_ns > after_ns && !members.iter().any(|(id, _)| *id == victim) =>
        {
            Some(r.t_ns)
        }
        _ => None,
    })
}

fn bring_up(base: &Path, n: u32, realtime: bool) -> Result<(LabGuard, Duration), String> {
    let dir = base.join(format!("bench-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let conf = dir.join("cluster.conf");
    std::fs::write(&conf, simple_config("bench", n, false, 1)).map_err(|e| e.to_string())?;
    let opts = UpOptions {
        config: conf,
        dir,
        bin_dir: lab::default_bin_dir(),
        realtime,
        timeout: Duration::from_secs(120),
    };
    let t = Instant::now();
    let lab = lab::up(&opts)?;
    Ok((LabGuard { lab }, t.elapsed()))
}

/// Measures formation and detection for each size in `sizes`, `runs` times each, and the
/// idle cost of a 3-node cluster over `idle_window`.
pub fn membership(
    base: &Path,
    sizes: &[u32],
    runs: usize,
    idle_window: Duration,
    realtime: bool,
) -> Result<MembershipBench, String> {
    let mut rows = Vec::new();
    for &n in sizes {
        let mut formation = Vec::new();
        let mut detection = Vec::new();
        for run in 0..runs {
            let (mut g, took) = bring_up(base, n, realtime)?;
            formation.push(took.as_secs_f64() * 1000.0);
            // Alternate the victim: the highest id, then the coordinator (lowest id).
            let victim_id = if run % 2 == 0 { n } else { 1 };
            let victim = format!("n{victim_id}");
            let survivors: Vec<String> = (1..=n)
                .filter(|i| *i != victim_id)
                .map(|i| format!("n{i}"))
                .collect();
            let t0 = monotonic_ns();
            lab::stop_node(&mut g.lab, &victim, true)?;
            wait_for_view(
                &g.lab,
                &survivors,
                &survivors,
                n > 2,
                Duration::from_secs(60),
            )?;
            let mut worst = 0u64;
            for s in &survivors {
                let t = first_view_without(&g.lab, s, victim_id, t0)
                    .ok_or_else(|| format!("{s} recorded no view without {victim}"))?;
                worst = worst.max(t - t0);
            }
            detection.push(worst as f64 / 1e6);
        }
        rows.push(MembershipRow {
            nodes: n,
            formation: Stats::of(formation),
            detection: Stats::of(detection),
        });
    }
    let (g, _) = bring_up(base, 3, realtime)?;
    let idle = idle_cost(&g.lab, idle_window);
    Ok(MembershipBench {
        rows,
        idle,
        idle_window_s: idle_window.as_secs(),
    })
}

/// (utime + stime) in clock ticks of a process.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn idle_cost(lab: &LabState, window: Duration) -> Vec<IdleRow> {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let pids: Vec<(String, i32)> = lab
        .nodes
        .iter()
        .filter_map(|n| Some((n.name.clone(), n.daemons.get("cmand")?.pid)))
        .collect();
    let before: Vec<u64> = pids
        .iter()
        .map(|(_, p)| cpu_ticks(*p).unwrap_or(0))
        .collect();
    let t = Instant::now();
    std::thread::sleep(window);
    let secs = t.elapsed().as_secs_f64();
    pids.iter()
        .zip(before)
        .map(|((name, pid), b)| IdleRow {
            node: name.clone(),
            cpu_percent: (cpu_ticks(*pid).unwrap_or(b) - b) as f64 / hz / secs * 100.0,
            rss_kib: rss_kib(*pid),
        })
        .collect()
}

/// The bench as a table.
pub fn membership_table(b: &MembershipBench) -> String {
    let mut out = String::from(
        "nodes  formation ms (median / min / max)   detection ms (median / min / max)   runs\n",
    );
    for r in &b.rows {
        out += &format!(
            "{:>5}  {:>9.0} / {:>6.0} / {:>6.0}             {:>9.0} / {:>6.0} / {:>6.0}             {:>4}\n",
            r.nodes, r.formation.median_ms, r.formation.min_ms, r.formation.max_ms, r.detection.median_ms, r.detection.min_ms, r.detection.max_ms, r.detection.n
        );
    }
    out += &format!(
        "\nidle cmand over {} s (3 nodes)\nnode   cpu %   rss KiB\n",
        b.idle_window_s
    );
    for i in &b.idle {
        out += &format!("{:<6} {:>5.2}   {:>7}\n", i.node, i.cpu_percent, i.rss_kib);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_take_the_middle_of_odd_and_even_samples() {
        let s = Stats::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median_ms, s.min_ms, s.max_ms, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(Stats::of(vec![4.0, 1.0, 2.0, 3.0]).median_ms, 2.5);
    }
}
