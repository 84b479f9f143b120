//! `clusterlab bench membership`: formation time, failure detection time, idle cost.
//!
//! Figures come from the daemons' own history files (CLOCK_MONOTONIC, the clock every
//! process on the machine shares), so the measuring loop's polling does not blur them:
//! detection time = the latest survivor's first view without the victim, minus the instant
//! just before the lab sent SIGKILL.

mod fencing;
pub use fencing::{fencing, fencing_table, FencingBench};
mod rgmanager;
pub use rgmanager::{
    failover, failover_table, migrate, migrate_table, FailoverBench, FailoverRun, MigrateBench,
    MigrateRun,
};

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
    /// Ordered messaging at 3 nodes.
    pub messaging: MessagingBench,
}

fn history(lab: &LabState, node: &str) -> Vec<Record> {
    crate::checker::load_file(&lab.history_dir().join(format!("{node}.jsonl"))).unwrap_or_default()
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
    let idle = {
        let (g, _) = bring_up(base, 3, realtime)?;
        idle_cost(&g.lab, idle_window)
    };
    let messaging = messaging(base, 2000, 50, 100)?;
    Ok(MembershipBench {
        rows,
        idle,
        idle_window_s: idle_window.as_secs(),
        messaging,
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
    out += "\n";
    out += &messaging_table(&b.messaging);
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

/// Ordered group messaging at 3 nodes: throughput and latency.
#[derive(Clone, Debug, Serialize)]
pub struct MessagingBench {
    /// Messages sent back to back from one node.
    pub messages: usize,
    /// Payload bytes each.
    pub payload_bytes: usize,
    /// Messages per second, first send to the last delivery on every node.
    pub throughput_per_s: f64,
    /// One message at a time: send to delivery on the last of the 3 nodes.
    pub latency: Stats,
}

/// Tails the `Deliver` records of one node's history file, remembering where it stopped.
struct DeliverTail {
    path: std::path::PathBuf,
    offset: usize,
    seen: std::collections::BTreeMap<u32, u64>,
}

impl DeliverTail {
    fn new(lab: &LabState, node: &str) -> DeliverTail {
        let path = lab.history_dir().join(format!("{node}.jsonl"));
        let offset = std::fs::read_to_string(&path).map_or(0, |t| t.len());
        DeliverTail {
            path,
            offset,
            seen: Default::default(),
        }
    }

    /// Reads new complete lines; returns crc → delivery time of every new Deliver record.
    fn poll(&mut self) {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let Some(new) = text.get(self.offset..) else {
            return;
        };
        let complete = new.rfind('\n').map_or(0, |i| i + 1);
        for line in new[..complete].lines() {
            if let Ok(Record {
                t_ns,
                event: Event::Deliver { crc, .. },
                ..
            }) = Record::from_line(line)
            {
                self.seen.entry(crc).or_insert(t_ns);
            }
        }
        self.offset += complete;
    }
}

fn payload(i: usize, bytes: usize) -> Vec<u8> {
    let mut p = format!("bench-{i}-").into_bytes();
    p.resize(bytes.max(p.len()), b'.');
    p
}

/// Measures throughput (`messages` back to back from n1) and latency (`probes` one at a
/// time) of ordered group messages in a 3-node cluster.
pub fn messaging(
    base: &Path,
    messages: usize,
    probes: usize,
    payload_bytes: usize,
) -> Result<MessagingBench, String> {
    use libcluster::ipc::cman::{CmanRequest, CmanResponse, DAEMON};
    let (g, _) = bring_up(base, 3, false)?;
    let lab = &g.lab;
    let nodes = ["n1", "n2", "n3"];
    // Every node joins, so every node delivers; the clients hold their connections open.
    let mut clients = Vec::new();
    for n in nodes {
        let sock = clusterio::socket_path(&lab.node(n).ok_or("node")?.runtime_dir(), DAEMON);
        let mut c = clusterio::BlockingClient::<CmanRequest, CmanResponse>::connect(&sock)
            .map_err(|e| e.to_string())?;
        c.call(
            &CmanRequest::GroupJoin {
                group: "bench".into(),
            },
            Duration::from_secs(5),
        )
        .map_err(|e| format!("{n}: join: {e}"))?;
        clients.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let send = |c: &mut clusterio::BlockingClient<CmanRequest, CmanResponse>,
                p: Vec<u8>|
     -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match c.call(
                &CmanRequest::GroupSend {
                    group: "bench".into(),
                    payload: p.clone(),
                },
                Duration::from_secs(5),
            ) {
                Ok(_) => return Ok(()),
                // max_queued reached: the sequencer is behind; back off briefly.
                Err(clusterio::ClientError::Daemon { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(format!("send: {e}")),
            }
        }
    };
    let mut tails: Vec<DeliverTail> = nodes.iter().map(|n| DeliverTail::new(lab, n)).collect();
    let wait_all = |tails: &mut Vec<DeliverTail>, crcs: &[u32]| -> Result<u64, String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            tails.iter_mut().for_each(DeliverTail::poll);
            let last = crcs
                .iter()
                .map(|c| {
                    tails
                        .iter()
                        .map(|t| t.seen.get(c).copied())
                        .collect::<Option<Vec<u64>>>()
                        .map(|v| v.into_iter().max().unwrap_or(0))
                })
                .collect::<Option<Vec<u64>>>();
            if let Some(v) = last {
                return Ok(v.into_iter().max().unwrap_or(0));
            }
            if Instant::now() > deadline {
                return Err("messages were not delivered on every node within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    // Latency, one at a time.
    let mut lat = Vec::new();
    for i in 0..probes {
        let p = payload(i, payload_bytes);
        let crc = crc32fast::hash(&p);
        let t0 = monotonic_ns();
        send(&mut clients[0], p)?;
        let done = wait_all(&mut tails, &[crc])?;
        lat.push(done.saturating_sub(t0) as f64 / 1e6);
    }
    // Throughput, back to back.
    let batch: Vec<Vec<u8>> = (0..messages)
        .map(|i| payload(probes + i, payload_bytes))
        .collect();
    let crcs: Vec<u32> = batch.iter().map(|p| crc32fast::hash(p)).collect();
    let t0 = monotonic_ns();
    for p in batch {
        send(&mut clients[0], p)?;
    }
    let done = wait_all(&mut tails, &crcs)?;
    let secs = done.saturating_sub(t0) as f64 / 1e9;
    Ok(MessagingBench {
        messages,
        payload_bytes,
        throughput_per_s: messages as f64 / secs,
        latency: Stats::of(lat),
    })
}

/// The messaging bench as a table.
pub fn messaging_table(m: &MessagingBench) -> String {
    format!(
        "ordered group messages, 3 nodes, {} B payload\nthroughput: {:.0} msg/s ({} messages from one node, until delivered on all 3)\nlatency ms (send to delivery on the last node): median {:.2} / min {:.2} / max {:.2} over {}\n",
        m.payload_bytes, m.throughput_per_s, m.messages, m.latency.median_ms, m.latency.min_ms, m.latency.max_ms, m.latency.n
    )
}
