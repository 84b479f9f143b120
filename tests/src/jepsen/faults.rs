//! Carrying out the schedule on a live lab: inject and heal faults through the lab's own
//! nemesis calls (`lab::faults`, `power`), each recorded in `DIR/history/lab.jsonl`;
//! restart daemons that exited on their own (as systemd would); and bring the cluster back
//! to one quorate view of every node at the end.

use super::schedule::Fault;
use crate::lab::{self, faults};
use crate::power::{self, PowerAction};
use crate::procs::ProcRecord;
use crate::state::LabState;
use libcluster::ipc::cman::{CmanStatus, MembershipState};
use std::collections::BTreeSet;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The nemesis's hands on one lab.
pub struct Injector {
    /// The lab.
    pub lab: LabState,
    /// Whether it runs in network namespaces (partitions possible).
    pub netns: bool,
    /// Nodes the nemesis took down (killed, powered off): not restarted by supervision.
    down: BTreeSet<u32>,
    /// Of those, the nodes it powered off (on again through the switch).
    powered_off: BTreeSet<u32>,
    /// Nodes the nemesis paused.
    paused: BTreeSet<u32>,
    /// Whether a partition is in force.
    partitioned: bool,
    /// What supervision and recovery did, for the verdict's notes.
    pub notes: Vec<String>,
}

impl Injector {
    /// Hands on `lab`.
    pub fn new(lab: LabState) -> Injector {
        Injector {
            netns: lab::lab_net(&lab).is_ok(),
            lab,
            down: BTreeSet::new(),
            powered_off: BTreeSet::new(),
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

    /// The daemons recorded for node `id`, from the record on disk (the power hook, in
    /// another process, changes it too).
    fn records(&mut self, id: u32) -> Vec<ProcRecord> {
        if let Ok(fresh) = LabState::load(&self.lab.dir) {
            self.lab = fresh;
        }
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
                    faults::kill(&mut self.lab, &name)?;
                    self.down.insert(id);
                    self.paused.remove(&id);
                }
            }
            Fault::Pause(ids) => {
                for &id in ids {
                    let name = self.name(id)?;
                    faults::pause(&mut self.lab, &name)?;
                    self.paused.insert(id);
                }
            }
            Fault::Net(f) => {
                faults::network(&self.lab, f)?;
                self.partitioned = true;
            }
            Fault::Power(ids) => {
                for &id in ids {
                    // Down before the switch answers: a restart by supervision must not race
                    // the power cut.
                    self.down.insert(id);
                    self.powered_off.insert(id);
                    self.paused.remove(&id);
                    power::power(&self.lab, &self.name(id)?, PowerAction::Off)
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Heals `fault`: start the killed, power on the powered off, resume the paused,
    /// remove the partition.
    pub fn heal(&mut self, fault: &Fault) -> Result<(), String> {
        match fault {
            Fault::Kill(ids) => {
                for &id in ids {
                    self.start(id)?;
                }
            }
            Fault::Power(ids) => {
                for &id in ids {
                    self.power_on(id)?;
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

    fn power_on(&mut self, id: u32) -> Result<(), String> {
        power::power(&self.lab, &self.name(id)?, PowerAction::On).map_err(|e| e.to_string())?;
        self.powered_off.remove(&id);
        self.down.remove(&id);
        Ok(())
    }

    fn start(&mut self, id: u32) -> Result<(), String> {
        let name = self.name(id)?;
        faults::start(&mut self.lab, &name)?;
        self.down.remove(&id);
        Ok(())
    }

    fn resume(&mut self, id: u32) -> Result<(), String> {
        // A node the nemesis paused may have been restarted meanwhile: nothing to wake.
        let name = self.name(id)?;
        let _ = faults::resume(&mut self.lab, &name);
        self.paused.remove(&id);
        Ok(())
    }

    fn heal_net(&mut self) -> Result<(), String> {
        if self.netns {
            faults::heal(&self.lab)?;
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
                faults::record(&self.lab.dir, Some(id), "restart")?;
                lab::start_node(&mut self.lab, &name)?;
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
        for id in self.powered_off.clone() {
            self.power_on(id)?;
        }
        for id in self.down.clone() {
            self.start(id)?;
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
                faults::kill(&mut self.lab, &name)?;
                self.start(id)?;
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
