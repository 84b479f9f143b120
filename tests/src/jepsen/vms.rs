//! The VM checks over a run with rgmanagerd (`clusterlab jepsen --vms`): the daemons'
//! `vm` records, the lab's faults and fencing records, the lab's own observation of QEMU
//! (`vm-observations.jsonl`) and the final settle of the VM workload (`vmload.json`).
//!
//! | id | check | what is asserted |
//! |---|---|---|
//! | R1 | [`one_host_observed`] | no observation sample shows one VM `running` (QEMU's own `query-status`) on two hosts, after a second look at both |
//! | R1h | [`one_host_recorded`] | replaying the `vm` records with the lab's power cuts and agent fencings, a VM is never started (or received) on a host while another host still runs it, except the source of a live migration to that host |
//! | F1vm | [`restart_after_fencing`] | a VM whose host died (a `kill` or `power-off` fault, or a `fenced` record naming it) while running it is started elsewhere (`start` ok, or `incoming` ok of a migration that began after the death) only after a `fenced` record for that host written after the death |
//! | R2 | [`settled`] | after the faults stop and the final enable, every VM runs on exactly one host, the one `clustat` names, in its allowed set, within the bound |
//!
//! Records after the workload's end (`vmload.json` `end_ns`, before the lab is stopped)
//! are not judged: a cleanly stopping host leaves its QEMU running for the survivors to
//! take over, which is a teardown, not a run. A `kill` leaves QEMU running (the lab kills
//! daemons only): the host still runs its VMs until the power goes, so for R1h only a
//! `power-off` or an agent fencing ends them; for F1vm a `kill` is a death.

use crate::checker::Violation;
use libcluster::history::{Event, Record};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One host's word on one guest in a sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The host's node id.
    pub node: u32,
    /// QEMU's `query-status` status (`running`, `inmigrate`, `postmigrate`, `paused`, ...),
    /// or `unanswered` when the process exists but its monitor did not answer.
    pub status: String,
}

/// One sample of the lab's observer: every QEMU process per host namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// CLOCK_MONOTONIC ns when the sample began.
    pub t_ns: u64,
    /// Guest name (without `vm:`) → what each host holding a QEMU of it said.
    pub vms: BTreeMap<String, Vec<Seen>>,
}

impl Observation {
    /// Hosts that report `vm` running, sorted.
    pub fn running(&self, vm: &str) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .vms
            .get(vm)
            .map(|s| {
                s.iter()
                    .filter(|s| s.status == "running")
                    .map(|s| s.node)
                    .collect()
            })
            .unwrap_or_default();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// One administrator request of the VM workload and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRequest {
    /// CLOCK_MONOTONIC ns when it was sent.
    pub sent_ns: u64,
    /// When it was answered (or given up).
    pub done_ns: u64,
    /// The node whose rgmanagerd it was sent to.
    pub node: u32,
    /// The service (`vm:NAME`).
    pub service: String,
    /// What was asked (`enable 2`, `disable`, `relocate 1`, `migrate 3`, `enable domain`).
    pub request: String,
    /// `random` during the run, `final` for the closing enables.
    pub phase: String,
    /// The `RG_E*` code, when answered.
    pub code: Option<i32>,
    /// Why there is no code (connect error, timeout).
    pub error: Option<String>,
}

/// A VM's state at the end of the settle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmFinal {
    /// Hosts it may run on (its restricted domain, else every node), sorted.
    pub allowed: Vec<u32>,
    /// The owner `clustat` shows.
    pub owner: Option<u32>,
    /// The state `clustat` shows (`started`, `stopped`, ...), or `unknown`.
    pub state: String,
    /// Hosts whose QEMU reports it running in the last observation.
    pub running: Vec<u32>,
}

/// The final settle: every VM enabled, then watched until it runs in one place.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalState {
    /// The bound, ms.
    pub bound_ms: u64,
    /// How long it took (or the bound, when it did not settle), ms.
    pub waited_ms: u64,
    /// Per service (`vm:NAME`).
    pub vms: BTreeMap<String, VmFinal>,
}

/// `DIR/vmload.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmLog {
    /// Every request, in order.
    pub requests: Vec<VmRequest>,
    /// CLOCK_MONOTONIC ns of the end of the judged span (after the settle, before the
    /// lab is stopped).
    pub end_ns: u64,
    /// The settle, when it ran.
    pub final_state: Option<FinalState>,
}

/// The file name of the workload log in a lab directory.
pub const LOG_FILE: &str = "vmload.json";
/// The file name of the observations in a lab directory.
pub const OBSERVATIONS_FILE: &str = "vm-observations.jsonl";

impl VmLog {
    /// Reads `DIR/vmload.json`.
    pub fn load(dir: &Path) -> Result<VmLog, String> {
        let path = dir.join(LOG_FILE);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes `DIR/vmload.json`.
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(LOG_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Reads `DIR/vm-observations.jsonl` (a torn last line is skipped).
pub fn load_observations(dir: &Path) -> Result<Vec<Observation>, String> {
    let path = dir.join(OBSERVATIONS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn violation(invariant: &'static str, message: String, records: Vec<Record>) -> Violation {
    Violation {
        invariant,
        message,
        records,
    }
}

/// R1 from the lab's observation: no sample has a guest `running` on two hosts. Returns
/// how many samples it judged.
pub fn one_host_observed(obs: &[Observation]) -> Result<usize, Violation> {
    for o in obs {
        for vm in o.vms.keys() {
            let hosts = o.running(vm);
            if hosts.len() > 1 {
                return Err(violation(
                    "R1",
                    format!(
                        "at t={} ns QEMU reported {vm} running on nodes {hosts:?}",
                        o.t_ns
                    ),
                    Vec::new(),
                ));
            }
        }
    }
    Ok(obs.len())
}

/// The replay of one VM's hosts through the records.
#[derive(Default)]
struct VmTrack<'a> {
    /// Host → the record that made it run the VM.
    running: BTreeMap<u32, &'a Record>,
    /// Sources of a live migration whose target already reported `incoming` ok.
    handing_off: BTreeSet<u32>,
    /// Targets a `migrate-out` ok put in before their own `incoming` record.
    arrived: BTreeSet<u32>,
    /// Hosts that died while running it → the death record (for F1vm).
    orphans: BTreeMap<u32, &'a Record>,
}

/// Both record checks walk the history the same way; `F` picks which one fails.
struct Replay<'a> {
    vms: BTreeMap<String, VmTrack<'a>>,
    /// Victim → its `fenced` records.
    fenced: BTreeMap<u32, Vec<&'a Record>>,
    starts: usize,
    restarts: usize,
}

impl<'a> Replay<'a> {
    fn new() -> Replay<'a> {
        Replay {
            vms: BTreeMap::new(),
            fenced: BTreeMap::new(),
            starts: 0,
            restarts: 0,
        }
    }

    /// A host died: every VM it ran is orphaned (F1vm); with `power_gone` its QEMU is gone.
    fn died(&mut self, host: u32, r: &'a Record, power_gone: bool) {
        for t in self.vms.values_mut() {
            if t.running.contains_key(&host) {
                t.orphans.entry(host).or_insert(r);
            }
            if power_gone {
                t.running.remove(&host);
                t.handing_off.remove(&host);
                t.arrived.remove(&host);
            }
        }
    }

    /// F1vm: every orphan of `vm` other than `host` that died before `began_ns` must have
    /// been fenced after its death and before `r`.
    fn judge_restart(
        &mut self,
        vm: &str,
        host: u32,
        began_ns: u64,
        r: &'a Record,
    ) -> Result<(), Violation> {
        let Some(t) = self.vms.get_mut(vm) else {
            return Ok(());
        };
        let orphans = std::mem::take(&mut t.orphans);
        let mut first = Ok(());
        for (y, death) in orphans {
            if y == host || death.t_ns > began_ns {
                continue;
            }
            self.restarts += 1;
            let fenced = self
                .fenced
                .get(&y)
                .is_some_and(|fs| fs.iter().any(|f| f.t_ns >= death.t_ns && f.t_ns <= r.t_ns));
            if !fenced && first.is_ok() {
                first = Err(violation(
                    "F1vm",
                    format!(
                        "{vm} was started on node {host} after its host node {y} died, before node {y} was fenced"
                    ),
                    vec![death.clone(), r.clone()],
                ));
            }
        }
        first
    }

    /// R1h: `host` starts running `vm`; nobody else may (but the sources handing off).
    fn judge_start(
        &mut self,
        vm: &str,
        host: u32,
        r: &'a Record,
        incoming: bool,
    ) -> Result<(), Violation> {
        self.starts += 1;
        let t = self.vms.entry(vm.to_string()).or_default();
        if incoming && t.arrived.remove(&host) {
            return Ok(());
        }
        let others: Vec<u32> = t.running.keys().copied().filter(|h| *h != host).collect();
        let mut result = Ok(());
        if incoming {
            t.handing_off.extend(others);
        } else if !others.is_empty() {
            let mut records: Vec<Record> = others
                .iter()
                .filter_map(|h| t.running.get(h).map(|r| (*r).clone()))
                .collect();
            records.push(r.clone());
            result = Err(violation(
                "R1h",
                format!("{vm} was started on node {host} while nodes {others:?} still ran it"),
                records,
            ));
            // Go on believing the newest record.
            t.running.clear();
            t.handing_off.clear();
        }
        t.running.insert(host, r);
        result
    }

    fn gone(&mut self, vm: &str, host: u32) {
        if let Some(t) = self.vms.get_mut(vm) {
            t.running.remove(&host);
            t.handing_off.remove(&host);
            t.arrived.remove(&host);
        }
    }

    /// Steps one record; the violations of either check it shows.
    fn step(&mut self, r: &'a Record) -> Vec<Violation> {
        let mut found = Vec::new();
        match &r.event {
            Event::Fault {
                target: Some(y),
                what,
            } if what == "kill" || what == "power-off" => {
                self.died(*y, r, what == "power-off");
            }
            Event::Fenced { victim, how, .. } => {
                self.fenced.entry(*victim).or_default().push(r);
                self.died(*victim, r, how == "agent");
            }
            Event::Vm {
                vm,
                op,
                ok,
                to,
                took_ms,
                ..
            } if r.daemon == "rgmanagerd" => {
                let x = r.node;
                // Any record of the VM from its host shows the host alive with it: not an
                // orphan (a killed rgmanagerd restarted and re-adopted its QEMU).
                if let Some(t) = self.vms.get_mut(vm.as_str()) {
                    t.orphans.remove(&x);
                }
                match (op.as_str(), *ok) {
                    ("start", true) => {
                        found.extend(self.judge_restart(vm, x, r.t_ns, r).err());
                        found.extend(self.judge_start(vm, x, r, false).err());
                    }
                    ("incoming", true) => {
                        let began = r.t_ns.saturating_sub(took_ms.saturating_mul(1_000_000));
                        found.extend(self.judge_restart(vm, x, began, r).err());
                        found.extend(self.judge_start(vm, x, r, true).err());
                    }
                    ("migrate-out", true) => {
                        self.gone(vm, x);
                        if let Some(target) = to {
                            let t = self.vms.entry(vm.clone()).or_default();
                            if !t.running.contains_key(target) {
                                t.running.insert(*target, r);
                                t.arrived.insert(*target);
                            }
                        }
                    }
                    ("stop", true)
                    | ("status-failed", _)
                    | ("start", false)
                    | ("incoming", false)
                    | ("abort-incoming", _) => self.gone(vm, x),
                    _ => {}
                }
            }
            _ => {}
        }
        found
    }
}

fn replay<'a>(h: &'a [Record], until_ns: u64, which: &str) -> Result<Replay<'a>, Violation> {
    let mut rp = Replay::new();
    for r in h.iter().filter(|r| r.t_ns <= until_ns) {
        // The other check's violations are that check's to report.
        if let Some(v) = rp.step(r).into_iter().find(|v| v.invariant == which) {
            return Err(v);
        }
    }
    Ok(rp)
}

/// R1 from the daemons' records, replayed with the lab's power cuts and agent fencings.
/// Returns how many starts (and incoming migrations) it judged.
pub fn one_host_recorded(h: &[Record], until_ns: u64) -> Result<usize, Violation> {
    replay(h, until_ns, "R1h").map(|rp| rp.starts)
}

/// F1 for VMs: a dead host's VM starts elsewhere only after the host was fenced. Returns
/// how many such restarts it judged.
pub fn restart_after_fencing(h: &[Record], until_ns: u64) -> Result<usize, Violation> {
    replay(h, until_ns, "F1vm").map(|rp| rp.restarts)
}

/// R2: every VM of the settle runs on exactly one allowed host, the owner `clustat` shows.
/// Returns a summary.
pub fn settled(f: &FinalState) -> Result<String, Violation> {
    for (vm, s) in &f.vms {
        let fine = s.state == "started"
            && s.running.len() == 1
            && s.owner == Some(s.running[0])
            && s.allowed.contains(&s.running[0]);
        if !fine {
            return Err(violation(
                "R2",
                format!(
                    "{vm} did not settle within {} ms: clustat says {} on {:?}, QEMU runs it on {:?}, allowed {:?}",
                    f.bound_ms, s.state, s.owner, s.running, s.allowed
                ),
                Vec::new(),
            ));
        }
    }
    Ok(format!(
        "{} VMs each on one allowed host after {:.1} s",
        f.vms.len(),
        f.waited_ms as f64 / 1000.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: u64, node: u32, daemon: &str, event: Event) -> Record {
        Record {
            t_ns: t,
            node,
            incarnation: 7,
            daemon: daemon.into(),
            event,
        }
    }

    fn vm(t: u64, node: u32, op: &str, ok: bool, to: Option<u32>) -> Record {
        rec(
            t,
            node,
            "rgmanagerd",
            Event::Vm {
                vm: "g1".into(),
                op: op.into(),
                ok,
                to,
                downtime_ms: None,
                took_ms: 0,
            },
        )
    }

    fn fault(t: u64, target: u32, what: &str) -> Record {
        rec(
            t,
            0,
            "lab",
            Event::Fault {
                target: Some(target),
                what: what.into(),
            },
        )
    }

    fn fenced(t: u64, victim: u32) -> Record {
        rec(
            t,
            1,
            "fenced",
            Event::Fenced {
                victim,
                victim_incarnation: 3,
                how: "agent".into(),
                method: Some("1".into()),
                device: None,
            },
        )
    }

    const ALL: u64 = u64::MAX;

    #[test]
    fn a_failover_after_fencing_passes_r1h_and_f1vm() {
        let h = vec![
            vm(1, 2, "start", true, None),
            fault(5, 2, "power-off"),
            fenced(9, 2),
            vm(12, 1, "start", true, None),
        ];
        assert_eq!(one_host_recorded(&h, ALL).unwrap(), 2);
        assert_eq!(restart_after_fencing(&h, ALL).unwrap(), 1);
    }

    #[test]
    fn a_restart_before_the_dead_host_was_fenced_violates_f1vm() {
        let h = vec![
            vm(1, 2, "start", true, None),
            fault(5, 2, "power-off"),
            vm(8, 1, "start", true, None),
            fenced(9, 2),
        ];
        let v = restart_after_fencing(&h, ALL).unwrap_err();
        assert_eq!(v.invariant, "F1vm");
        assert_eq!(v.records.len(), 2);
        // The power was gone: no two hosts ran it.
        assert!(one_host_recorded(&h, ALL).is_ok());
        // A fencing before the death does not count.
        let h = vec![
            fenced(0, 2),
            vm(1, 2, "start", true, None),
            fault(5, 2, "kill"),
            vm(8, 1, "start", true, None),
        ];
        assert_eq!(
            restart_after_fencing(&h, ALL).unwrap_err().invariant,
            "F1vm"
        );
    }

    #[test]
    fn a_start_while_a_killed_host_still_runs_qemu_violates_r1h() {
        // A kill leaves QEMU running: the start on node 1 is a second copy, and came
        // before fencing too.
        let h = vec![
            vm(1, 2, "start", true, None),
            fault(5, 2, "kill"),
            vm(8, 1, "start", true, None),
        ];
        assert_eq!(one_host_recorded(&h, ALL).unwrap_err().invariant, "R1h");
        assert_eq!(
            restart_after_fencing(&h, ALL).unwrap_err().invariant,
            "F1vm"
        );
        // Fenced by an agent in between: the power went, both hold.
        let h = vec![
            vm(1, 2, "start", true, None),
            fault(5, 2, "kill"),
            fenced(7, 2),
            vm(8, 1, "start", true, None),
        ];
        assert!(one_host_recorded(&h, ALL).is_ok());
        assert_eq!(restart_after_fencing(&h, ALL).unwrap(), 1);
    }

    #[test]
    fn a_killed_host_that_comes_back_with_its_vm_may_migrate_it_unfenced() {
        let h = vec![
            vm(1, 2, "start", true, None),
            fault(5, 2, "kill"),
            fault(6, 2, "start"),
            vm(9, 2, "migrate-out", true, Some(1)),
            vm(10, 1, "incoming", true, None),
        ];
        assert!(restart_after_fencing(&h, ALL).is_ok());
        assert!(one_host_recorded(&h, ALL).is_ok());
    }

    #[test]
    fn live_migrations_in_either_record_order_and_clean_stops_pass() {
        for h in [
            vec![
                vm(1, 1, "start", true, None),
                vm(5, 2, "incoming", true, None),
                vm(6, 1, "migrate-out", true, Some(2)),
                vm(9, 1, "start", true, None),
            ],
            vec![
                vm(1, 1, "start", true, None),
                vm(5, 1, "migrate-out", true, Some(2)),
                vm(6, 2, "incoming", true, None),
                vm(8, 2, "stop", true, None),
                vm(9, 1, "start", true, None),
            ],
        ] {
            assert!(
                one_host_recorded(&h, ALL).is_err() == (h.len() == 4),
                "{h:?}"
            );
        }
        // A failed migration leaves the source running: a start elsewhere is a second copy.
        let h = vec![
            vm(1, 1, "start", true, None),
            vm(5, 1, "migrate-out", false, Some(2)),
            vm(6, 2, "abort-incoming", true, None),
            vm(9, 2, "start", true, None),
        ];
        assert_eq!(one_host_recorded(&h, ALL).unwrap_err().invariant, "R1h");
    }

    #[test]
    fn records_after_the_end_of_the_run_are_not_judged() {
        let h = vec![
            vm(1, 2, "start", true, None),
            vm(20, 1, "start", true, None),
        ];
        assert!(one_host_recorded(&h, ALL).is_err());
        assert_eq!(one_host_recorded(&h, 10).unwrap(), 1);
    }

    fn sample(t: u64, seen: &[(u32, &str)]) -> Observation {
        Observation {
            t_ns: t,
            vms: BTreeMap::from([(
                "g1".to_string(),
                seen.iter()
                    .map(|(n, s)| Seen {
                        node: *n,
                        status: s.to_string(),
                    })
                    .collect(),
            )]),
        }
    }

    #[test]
    fn two_hosts_running_one_guest_in_a_sample_violates_r1() {
        let ok = vec![
            sample(1, &[(1, "running")]),
            sample(2, &[(1, "running"), (2, "inmigrate")]),
            sample(3, &[(1, "postmigrate"), (2, "running")]),
        ];
        assert_eq!(one_host_observed(&ok).unwrap(), 3);
        let mut bad = ok.clone();
        bad.push(sample(4, &[(1, "running"), (2, "running")]));
        let v = one_host_observed(&bad).unwrap_err();
        assert_eq!(v.invariant, "R1");
        assert!(v.message.contains("[1, 2]"), "{v}");
    }

    #[test]
    fn r2_needs_one_running_copy_on_the_allowed_owner() {
        let good = VmFinal {
            allowed: vec![1, 2],
            owner: Some(2),
            state: "started".into(),
            running: vec![2],
        };
        let mut f = FinalState {
            bound_ms: 1000,
            waited_ms: 300,
            vms: BTreeMap::from([("vm:g1".to_string(), good.clone())]),
        };
        assert!(settled(&f).is_ok());
        for bad in [
            VmFinal {
                running: vec![1, 2],
                ..good.clone()
            },
            VmFinal {
                running: vec![],
                ..good.clone()
            },
            VmFinal {
                owner: Some(1),
                ..good.clone()
            },
            VmFinal {
                allowed: vec![1],
                ..good.clone()
            },
            VmFinal {
                state: "stopped".into(),
                ..good.clone()
            },
        ] {
            f.vms.insert("vm:g1".into(), bad.clone());
            assert_eq!(settled(&f).unwrap_err().invariant, "R2", "{bad:?}");
        }
    }
}
