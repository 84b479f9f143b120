//! Carrying out the schedule on a live lab: inject and heal faults, record each one in
//! `DIR/history/lab.jsonl`, restart daemons that exited on their own (as systemd would),
//! and bring the cluster back to one quorate view of every node at the end.

use super::schedule::Fault;
use crate::bench::monotonic_ns;
use crate::lab;
use crate::nemesis::NetFault;
use crate::netns::LabNet;
use crate::procs::ProcRecord;
use crate::state::LabState;
use libcluster::history::{Event, Record};
use libcluster::ipc::cman::{CmanStatus, MembershipState};
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The lab's own history file inside the history directory.
pub const LAB_HISTORY: &str = "lab.jsonl";

/// Appends the lab's fault records, one `write` per line, stamped with CLOCK_MONOTONIC.
#[derive(Debug, Clone)]
pub struct FaultLog {
    path: PathBuf,
}

impl FaultLog {
    /// The fault log of the lab in `dir` (`dir/history/lab.jsonl`).
    pub fn new(dir: &Path) -> FaultLog {
        FaultLog {
            path: dir.join("history").join(LAB_HISTORY),
        }
    }

    /// Records that `what` was done to `target` (a node id), now.
    pub fn record(&self, target: Option<u32>, what: &str) -> Result<(), String> {
        let r = Record {
            t_ns: monotonic_ns(),
            node: 0,
            incarnation: 0,
            daemon: "lab".into(),
            event: Event::Fault {
                target,
                what: what.to_string(),
            },
        };
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        f.write_all(format!("{}\n", r.to_line()).as_bytes())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// The nemesis's hands on one lab.
pub struct Injector {
    /// The lab.
    pub lab: LabState,
    /// Its network, in a netns lab.
    pub net: Option<LabNet>,
    /// Where faults are recorded.
    pub log: FaultLog,
    /// Nodes the nemesis took down (killed, powered off): not restarted by supervision.
    down: BTreeSet<u32>,
    /// Nodes the nemesis paused.
    paused: BTreeSet<u32>,
    /// Whether a partition is in force.
    partitioned: bool,
    /// What supervision and recovery did, for the verdict's notes.
    pub notes: Vec<String>,
}

impl Injector {
    /// Hands on `lab` (and its network, if any).
    pub fn new(lab: LabState, net: Option<LabNet>) -> Injector {
        let log = FaultLog::new(&lab.dir);
        Injector {
            lab,
            net,
            log,
            down: BTreeSet::new(),
            paused: BTreeSet::new(),
            partitioned: false,
            notes: Vec::new(),
        }
    }

    fn name(&self, id: u32) -> Result<String, String> {
        self.lab
            .nodes
            .iter()
            .find(|n| n.nodeid == id)
            .map(|n| n.name.clone())
            .ok_or_else(|| format!("no node with id {id}"))
    }

    fn records(&self, id: u32) -> Vec<ProcRecord> {
        self.lab
            .nodes
            .iter()
            .find(|n| n.nodeid == id)
            .map(|n| n.daemons.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Injects `fault`.
    pub fn inject(&mut self, fault: &Fault) -> Result<(), String> {
        match fault {
            Fault::Kill(ids) => {
                for &id in ids {
                    let name = self.name(id)?;
                    lab::stop_node(&mut self.lab, &name, true)?;
                    // Stamped after the process is gone: every record it wrote is earlier.
                    self.log.record(Some(id), "kill")?;
                    self.down.insert(id);
                    self.paused.remove(&id);
                }
            }
            Fault::Pause(ids) => {
                for &id in ids {
                    // Stamped before the stop: a paused node still counts as alive.
                    self.log.record(Some(id), "pause")?;
                    for rec in self.records(id) {
                        rec.signal(Signal::SIGSTOP);
                    }
                    self.paused.insert(id);
                }
            }
            Fault::Net(f) => {
                let net = self
                    .net
                    .as_ref()
                    .ok_or("a partition needs a netns lab (DIR/netns.json)")?;
                net.inject(f).map_err(|e| e.to_string())?;
                let target = match f {
                    NetFault::Isolate(n) => Some(*n),
                    _ => None,
                };
                let kind = f.to_string();
                let kind = kind.split_whitespace().next().unwrap_or("partition");
                self.log.record(target, kind)?;
                self.partitioned = true;
            }
            Fault::Power(_) => {
                return Err("power faults need the lab's power switch, which this lab lacks".into())
            }
        }
        Ok(())
    }

    /// Heals `fault`: start the killed, resume the paused, remove the partition.
    pub fn heal(&mut self, fault: &Fault) -> Result<(), String> {
        match fault {
            Fault::Kill(ids) | Fault::Power(ids) => {
                for &id in ids {
                    self.start(id, "start")?;
                }
            }
            Fault::Pause(ids) => {
                for &id in ids {
                    self.resume(id)?;
                }
            }
            Fault::Net(_) => self.heal_net()?,
        }
        Ok(())
    }

    fn start(&mut self, id: u32, what: &str) -> Result<(), String> {
        let name = self.name(id)?;
        lab::start_node(&mut self.lab, &name)?;
        self.log.record(Some(id), what)?;
        self.down.remove(&id);
        Ok(())
    }

    fn resume(&mut self, id: u32) -> Result<(), String> {
        for rec in self.records(id) {
            rec.signal(Signal::SIGCONT);
        }
        self.log.record(Some(id), "resume")?;
        self.paused.remove(&id);
        Ok(())
    }

    fn heal_net(&mut self) -> Result<(), String> {
        if let Some(net) = &self.net {
            net.heal().map_err(|e| e.to_string())?;
            self.log.record(None, "heal")?;
        }
        self.partitioned = false;
        Ok(())
    }

    /// Restarts daemons that exited although the nemesis did not take their node down
    /// (expelled and killed by the cluster, crashed): what systemd's Restart=on-failure does.
    pub fn supervise(&mut self) -> Result<(), String> {
        let ids: Vec<u32> = self.lab.nodes.iter().map(|n| n.nodeid).collect();
        for id in ids {
            if self.down.contains(&id) || self.paused.contains(&id) {
                continue;
            }
            let recs = self.records(id);
            if recs.is_empty() || recs.iter().any(|r| !r.alive()) {
                let name = self.name(id)?;
                // Clear the dead record first so start_node starts a fresh daemon.
                lab::stop_node(&mut self.lab, &name, true)?;
                self.start(id, "restart")?;
                self.notes
                    .push(format!("{name}: daemon exited on its own; restarted"));
            }
        }
        Ok(())
    }

    /// Sleeps until `until`, supervising every half second.
    pub fn wait_until(&mut self, until: Instant) -> Result<(), String> {
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            sleep((until - now).min(Duration::from_millis(500)));
            self.supervise()?;
        }
    }

    /// Heals everything, then waits (at most `bound`) for one quorate view of every node,
    /// restarting nodes that cannot merge back: those some node reports as disallowed at
    /// once, and after `grace` without progress, every node outside the largest quorate
    /// view. Returns the converged view's statuses (in lab node order) and a description.
    pub fn converge(
        &mut self,
        bound: Duration,
        grace: Duration,
    ) -> Result<(Vec<CmanStatus>, String), String> {
        let start = Instant::now();
        if self.partitioned {
            self.heal_net()?;
        }
        for id in self.paused.clone() {
            self.resume(id)?;
        }
        for id in self.down.clone() {
            self.start(id, "start")?;
        }
        let names: Vec<String> = self.lab.nodes.iter().map(|n| n.name.clone()).collect();
        let ids: Vec<u32> = self.lab.nodes.iter().map(|n| n.nodeid).collect();
        let mut want = ids.clone();
        want.sort_unstable();
        let mut last_restart = Instant::now();
        let mut restarted = Vec::new();
        loop {
            self.supervise()?;
            let seen: Vec<Result<CmanStatus, String>> = names
                .iter()
                .map(|n| lab::cman_status(&self.lab, n))
                .collect();
            if let Some(all) = settled(&seen, &want) {
                let s = &all[0];
                let mut how = format!(
                    "generation {} coordinator {:?} with {} nodes, {:.1} s after the last heal",
                    s.generation,
                    s.coordinator,
                    all.len(),
                    start.elapsed().as_secs_f64()
                );
                if !restarted.is_empty() {
                    how += &format!("; restarted {}", restarted.join(", "));
                }
                return Ok((all, how));
            }
            if start.elapsed() >= bound {
                let mut msg = format!("no quorate view of all nodes after {bound:?}:\n");
                for (n, s) in names.iter().zip(&seen) {
                    match s {
                        Ok(s) => {
                            msg += &format!(
                            "    {n}: {} generation {} members {:?} quorate {} disallowed {:?}\n",
                            s.state.word(),
                            s.generation,
                            s.members,
                            s.quorate,
                            s.disallowed
                        )
                        }
                        Err(e) => msg += &format!("    {n}: {e}\n"),
                    }
                }
                return Err(msg);
            }
            let stuck = stuck_nodes(&names, &ids, &seen, last_restart.elapsed() >= grace);
            for name in stuck {
                let id = ids[names.iter().position(|n| *n == name).unwrap_or(0)];
                lab::stop_node(&mut self.lab, &name, true)?;
                self.log.record(Some(id), "kill")?;
                self.start(id, "start")?;
                restarted.push(name);
                last_restart = Instant::now();
            }
            sleep(Duration::from_millis(200));
        }
    }
}

/// Every status answered, all in one view (generation and coordinator) of exactly `want`,
/// and quorate.
fn settled(seen: &[Result<CmanStatus, String>], want: &[u32]) -> Option<Vec<CmanStatus>> {
    let all: Vec<CmanStatus> = seen
        .iter()
        .filter_map(|s| s.as_ref().ok().cloned())
        .collect();
    let ok = all.len() == seen.len()
        && all.iter().all(|s| s.members == want && s.quorate)
        && all
            .windows(2)
            .all(|w| (w[0].generation, w[0].coordinator) == (w[1].generation, w[1].coordinator));
    ok.then_some(all)
}

/// Nodes to restart: those any node reports as disallowed (they can never merge back with
/// their incarnation); and, when `give_up` (no progress for a while), every node that
/// is not a member of the largest quorate view anyone reports.
fn stuck_nodes(
    names: &[String],
    ids: &[u32],
    seen: &[Result<CmanStatus, String>],
    give_up: bool,
) -> Vec<String> {
    let mut out: BTreeSet<String> = seen
        .iter()
        .flatten()
        .flat_map(|s| s.disallowed.iter().cloned())
        .filter(|n| names.contains(n))
        .collect();
    if give_up {
        let best = seen
            .iter()
            .flatten()
            .filter(|s| s.quorate && s.state == MembershipState::ClusterMember)
            .max_by_key(|s| (s.members.len(), s.generation));
        for (i, name) in names.iter().enumerate() {
            let in_best = best.is_some_and(|b| b.members.contains(&ids[i]));
            let agrees = matches!(&seen[i], Ok(s) if best.is_some_and(|b| s.generation == b.generation && s.coordinator == b.coordinator));
            if !in_best || !agrees {
                out.insert(name.clone());
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn status(id: u32, generation: u64, members: &[u32], quorate: bool) -> CmanStatus {
        CmanStatus {
            config_version: 1,
            cluster_name: "c".into(),
            cluster_id: 1,
            state: MembershipState::ClusterMember,
            generation,
            coordinator: members.first().copied(),
            members: members.to_vec(),
            expected_votes: 3,
            qdisk_votes: None,
            total_votes: members.len() as u32,
            node_votes: 1,
            quorum: 2,
            quorate,
            active_subsystems: 1,
            two_node: false,
            disallowed: vec![],
            node_name: format!("n{id}"),
            node_id: id,
            incarnation: 1,
            multicast_addresses: vec![],
            node_addresses: vec![],
            uptime_s: 1,
            counters: BTreeMap::new(),
        }
    }

    #[test]
    fn only_one_quorate_view_of_every_node_is_settled() {
        let all = [1, 2, 3];
        let ok: Vec<_> = all.iter().map(|i| Ok(status(*i, 5, &all, true))).collect();
        assert!(settled(&ok, &all).is_some());
        let mut split = ok.clone();
        split[2] = Ok(status(3, 6, &all, true));
        assert!(settled(&split, &all).is_none());
        let mut dead = ok.clone();
        dead[1] = Err("gone".into());
        assert!(settled(&dead, &all).is_none());
    }

    #[test]
    fn disallowed_nodes_restart_at_once_and_outsiders_after_the_grace() {
        let names: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let ids = [1, 2, 3];
        let mut s1 = status(1, 7, &[1, 2], true);
        s1.disallowed = vec!["n3".into()];
        let seen = vec![
            Ok(s1),
            Ok(status(2, 7, &[1, 2], true)),
            Ok(status(3, 4, &[3], false)),
        ];
        assert_eq!(stuck_nodes(&names, &ids, &seen, false), vec!["n3"]);
        let mut s1 = status(1, 7, &[1, 2], true);
        s1.disallowed.clear();
        let seen = vec![
            Ok(s1),
            Ok(status(2, 7, &[1, 2], true)),
            Err("no answer".into()),
        ];
        assert!(stuck_nodes(&names, &ids, &seen, false).is_empty());
        assert_eq!(stuck_nodes(&names, &ids, &seen, true), vec!["n3"]);
    }
}
