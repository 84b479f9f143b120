//! The verdict: every check over one merged history, and the table people read.

use super::check;
use crate::checker::{self, Violation};
use crate::workload::{Outcome, WorkloadLog};
use libcluster::history::{Event, Record};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One checked invariant: `Ok(summary)` when it held (or was skipped, the summary says
/// so), or the first violation.
#[derive(Debug, Clone)]
pub struct CheckLine {
    /// Invariant id (M1, Q1, M3, N1, N2).
    pub id: &'static str,
    /// Short name.
    pub name: &'static str,
    /// Held (with a summary) or the violation.
    pub outcome: Result<String, Violation>,
}

/// Counts of the workload's sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Messages tried.
    pub sent: usize,
    /// Answered Done.
    pub acked: usize,
    /// Refused with an error.
    pub refused: usize,
    /// No answer.
    pub unknown: usize,
    /// Busy answers (retried).
    pub busy: u64,
}

impl OpCounts {
    /// Counts over a workload log.
    pub fn of(log: &WorkloadLog) -> OpCounts {
        let mut c = OpCounts {
            busy: log.clients.iter().map(|c| c.busy).sum(),
            ..OpCounts::default()
        };
        for op in log.ops() {
            c.sent += 1;
            match op.outcome {
                Outcome::Acked => c.acked += 1,
                Outcome::Refused => c.refused += 1,
                Outcome::Unknown => c.unknown += 1,
            }
        }
        c
    }
}

/// The result of a run (or of `clusterlab check`).
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// The schedule's seed, when a run made it.
    pub seed: Option<u64>,
    /// Node names.
    pub nodes: Vec<String>,
    /// Nemesis kinds asked for.
    pub nemesis: Vec<String>,
    /// Seconds of the schedule, and of the whole run.
    pub seconds: Option<(f64, f64)>,
    /// The workload's sends, when its log exists.
    pub ops: Option<OpCounts>,
    /// Deliveries of the workload's group in the history.
    pub deliveries: usize,
    /// Lab fault records by `what`.
    pub faults: BTreeMap<String, usize>,
    /// Convergence after the schedule: `Ok(description)` or why it failed.
    pub converged: Option<Result<String, String>>,
    /// Remarks (skipped nemeses, restarts, ...).
    pub notes: Vec<String>,
    /// Every check.
    pub checks: Vec<CheckLine>,
}

impl Verdict {
    /// True when every check held and the cluster converged (when that was asked).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome.is_ok()) && !matches!(self.converged, Some(Err(_)))
    }

    /// The table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        let _ = writeln!(s, "Jepsen verdict: {verdict}");
        if let Some(seed) = self.seed {
            let _ = writeln!(s, "  {:<11} {seed}", "seed");
        }
        let _ = writeln!(
            s,
            "  {:<11} {} ({})",
            "nodes",
            self.nodes.len(),
            self.nodes.join(" ")
        );
        if let Some((sched, total)) = self.seconds {
            let _ = writeln!(
                s,
                "  {:<11} {sched:.1} s of faults, {total:.1} s in all",
                "duration"
            );
        }
        if !self.nemesis.is_empty() {
            let _ = writeln!(s, "  {:<11} {}", "nemesis", self.nemesis.join(","));
        }
        match self.ops {
            Some(o) => {
                let _ = writeln!(
                    s,
                    "  {:<11} sent {}, acked {}, refused {}, unknown {}, busy retries {}",
                    "ops", o.sent, o.acked, o.refused, o.unknown, o.busy
                );
            }
            None => {
                let _ = writeln!(s, "  {:<11} (no workload log)", "ops");
            }
        }
        let _ = writeln!(s, "  {:<11} {} deliveries", "delivered", self.deliveries);
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let faults = if faults.is_empty() {
            "none".to_string()
        } else {
            faults.join(", ")
        };
        let _ = writeln!(s, "  {:<11} {faults}", "faults");
        match &self.converged {
            Some(Ok(how)) => {
                let _ = writeln!(s, "  {:<11} yes: {how}", "converged");
            }
            Some(Err(why)) => {
                let _ = writeln!(s, "  {:<11} NO: {}", "converged", why.trim_end());
            }
            None => {}
        }
        for n in &self.notes {
            let _ = writeln!(s, "  {:<11} {n}", "note");
        }
        let _ = writeln!(s, "  {:<4} {:<24} result", "id", "invariant");
        for c in &self.checks {
            match &c.outcome {
                Ok(summary) => {
                    let _ = writeln!(s, "  {:<4} {:<24} held: {summary}", c.id, c.name);
                }
                Err(v) => {
                    let _ = writeln!(s, "  {:<4} {:<24} VIOLATED: {}", c.id, c.name, v.message);
                    for r in &v.records {
                        let _ = writeln!(s, "         {}", r.to_line());
                    }
                }
            }
        }
        s
    }
}

/// Runs every check over a merged history (and the workload log, when there is one) and
/// fills the verdict's checks, delivery count and fault counts.
pub fn judge(verdict: &mut Verdict, h: &[Record], log: Option<&WorkloadLog>, two_node: bool) {
    let views = h
        .iter()
        .filter(|r| matches!(r.event, Event::View { .. }))
        .count();
    verdict.checks.push(CheckLine {
        id: "M1",
        name: "agreement",
        outcome: checker::agreement(h).map(|()| format!("{views} view records")),
    });
    let q1 = if two_node {
        Ok("skipped: two_node (fencing decides)".to_string())
    } else {
        check::quorum(h, false).map(|()| "no two disjoint quorate views".to_string())
    };
    verdict.checks.push(CheckLine {
        id: "Q1",
        name: "quorum",
        outcome: q1,
    });
    if h.iter().any(|r| r.daemon == "fenced") {
        verdict.checks.push(CheckLine {
            id: "F1",
            name: "fenced means dead",
            outcome: super::fencing::fenced_means_dead(h)
                .map(|n| format!("{n} fencings, no victim ran after")),
        });
        verdict.checks.push(CheckLine {
            id: "F2",
            name: "fencing needs quorum",
            outcome: super::fencing::fencing_needs_quorum(h)
                .map(|n| format!("{n} fence starts, all quorate")),
        });
        verdict.checks.push(CheckLine {
            id: "F3",
            name: "each failure fenced once",
            outcome: super::fencing::fenced_once(h)
                .map(|n| format!("{n} failures, each completed once")),
        });
    }
    let joins = check::join_generations(log);
    verdict.checks.push(CheckLine {
        id: "M3",
        name: "group order+sets",
        outcome: check::group_order(h, &joins).map(|n| format!("{n} deliveries")),
    });
    match log {
        Some(log) => {
            verdict.checks.push(CheckLine {
                id: "N1",
                name: "no loss (sender)",
                outcome: check::no_loss(h, log)
                    .map(|n| format!("{n} acked by survivors, all delivered to their sender")),
            });
            verdict.checks.push(CheckLine {
                id: "N2",
                name: "integrity",
                outcome: check::integrity(h, log)
                    .map(|n| format!("{n} distinct messages, each sent, once per node")),
            });
            verdict.ops = Some(OpCounts::of(log));
        }
        None => verdict
            .notes
            .push("no workload.json: N1 and N2 skipped".into()),
    }
    verdict.deliveries = h
        .iter()
        .filter(
            |r| matches!(&r.event, Event::Deliver { group, .. } if group == crate::workload::GROUP),
        )
        .count();
    for r in h {
        if let Event::Fault { what, .. } = &r.event {
            // The first word is the kind (`isolate 2`, `partition 1,2 3`).
            let kind = what.split_whitespace().next().unwrap_or("?");
            *verdict.faults.entry(kind.to_string()).or_default() += 1;
        }
    }
}

/// The VM checks (jepsen/vms.rs), when the history has rgmanagerd records: R1 from the
/// lab's QEMU observations, R1h and F1vm from the records up to the end of the VM
/// workload, R2 from its settle. Missing files are notes, not failures.
pub fn judge_vms(verdict: &mut Verdict, h: &[Record], dir: &std::path::Path) {
    use super::vms;
    if !h.iter().any(|r| r.daemon == "rgmanagerd") {
        return;
    }
    let log = vms::VmLog::load(dir).ok();
    let until = log.as_ref().map_or(u64::MAX, |l| l.end_ns);
    match vms::load_observations(dir) {
        Ok(obs) => verdict.checks.push(CheckLine {
            id: "R1",
            name: "one host per VM (QEMU)",
            outcome: vms::one_host_observed(&obs).map(|n| {
                let seen = obs.iter().filter(|o| !o.vms.is_empty()).count();
                format!("{n} samples ({seen} with a guest), never two running")
            }),
        }),
        Err(_) => verdict
            .notes
            .push("no vm-observations.jsonl: R1 (observed) skipped".into()),
    }
    verdict.checks.push(CheckLine {
        id: "R1h",
        name: "one host per VM (recs)",
        outcome: vms::one_host_recorded(h, until)
            .map(|n| format!("{n} starts and arrivals, none beside a running copy")),
    });
    verdict.checks.push(CheckLine {
        id: "F1vm",
        name: "VM restart after fencing",
        outcome: vms::restart_after_fencing(h, until)
            .map(|n| format!("{n} restarts of a dead host's VM, each after its fencing")),
    });
    if let Some(l) = &log {
        let ok = l.requests.iter().filter(|r| r.code == Some(0)).count();
        verdict.notes.push(format!(
            "vm requests: {} sent, {ok} succeeded",
            l.requests.len()
        ));
    }
    match log {
        Some(vms::VmLog {
            final_state: Some(f),
            ..
        }) => verdict.checks.push(CheckLine {
            id: "R2",
            name: "VMs settle on one host",
            outcome: vms::settled(&f),
        }),
        Some(_) => verdict
            .notes
            .push("vmload.json has no settle: R2 skipped".into()),
        None => verdict.notes.push("no vmload.json: R2 skipped".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violation_fails_the_verdict_and_is_printed_with_its_records() {
        let r = Record {
            t_ns: 5,
            node: 2,
            incarnation: 1,
            daemon: "cmand".into(),
            event: Event::Start,
        };
        let mut v = Verdict {
            seed: Some(9),
            nodes: vec!["n1".into(), "n2".into()],
            ..Verdict::default()
        };
        v.checks.push(CheckLine {
            id: "M1",
            name: "agreement",
            outcome: Ok("3 view records".into()),
        });
        assert!(v.passed());
        assert!(v.table().starts_with("Jepsen verdict: PASS"));
        v.checks.push(CheckLine {
            id: "M3",
            name: "group order+sets",
            outcome: Err(Violation {
                invariant: "M3",
                message: "boom".into(),
                records: vec![r.clone()],
            }),
        });
        let t = v.table();
        assert!(!v.passed());
        assert!(t.starts_with("Jepsen verdict: FAIL"), "{t}");
        assert!(
            t.contains("VIOLATED: boom") && t.contains(&r.to_line()),
            "{t}"
        );
    }

    #[test]
    fn failing_to_converge_fails_the_verdict() {
        let v = Verdict {
            converged: Some(Err("n3 never came back".into())),
            ..Verdict::default()
        };
        assert!(!v.passed());
        assert!(v.table().contains("NO: n3 never came back"));
    }
}
