//! What one node runs, and the operations it carries out for the coordinator.
//!
//! ```text
//!  Start ──▶ Starting ──ok/failed──▶ Running ◀──migrated in── Incoming ◀── Prepare (target)
//!                                     │  ▲ status every interval      │ source failed/left
//!                      Stop ──────────▼  │ failed migration           ▼
//!                                  Stopping ──▶ gone        Outgoing ──ok──▶ gone
//! ```
//!
//! Every entry counts as running in what the node reports (R1, conservative): a start in
//! flight, a VM whose start failed (until a stop succeeds), an incoming migration, a stop
//! not finished. One operation per service at a time; a command arriving meanwhile waits.

use super::super::catalog::ServiceIndex;
use super::super::engine::OpResult;
use super::msg::{Command, Msg};
use super::{Action, VmResult};
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tracing::{debug, info, warn};

mod migration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vm {
    Starting,
    /// Started (or its start failed and it awaits a stop); `next_check` is the status timer.
    Running {
        next_check: Millis,
        checking: bool,
    },
    Stopping,
    /// Prepared as a migration target; `resolving` once the shell was asked whether the VM
    /// arrived (the source left, or will never act on our `Ready`).
    Incoming {
        from: NodeId,
        resolving: bool,
        ready: Ready,
    },
    Outgoing {
        to: NodeId,
    },
}

/// Where this target's `Ready` is in the group's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ready {
    /// Not sent, or sent and not yet delivered back.
    Waiting,
    /// Delivered back in the current round: the source delivers it too if it is a member.
    Delivered,
    /// Delivered back before the current round began: a member source that does not report
    /// the migration under way in this round never will (it missed the `Ready`, or it
    /// finished and its `Done` is still on its way).
    Old,
}

/// The node-local executor.
#[derive(Clone, Debug)]
pub(super) struct Local {
    me: NodeId,
    interval_ms: u64,
    vms: BTreeMap<ServiceIndex, Vm>,
    queued: BTreeMap<ServiceIndex, VecDeque<Command>>,
    /// Running VMs the coordinator migrates away: the target and when this node delivered
    /// the `Prepare` (`Delivered` in this round, `Old` before it). Until the target's
    /// `Ready`, the migration can only fail here, and must, if the target leaves or never
    /// saw the `Prepare`.
    awaiting: BTreeMap<ServiceIndex, (NodeId, Ready)>,
    /// `clusvcadm -l` here: starts and incoming migrations are refused.
    pub(super) locked: bool,
    /// rgmanagerd shuts down: likewise.
    pub(super) leaving: bool,
    /// VMs this node does not hold are looked for now and then: one started behind the
    /// cluster's back (by hand, or by a killed rgmanagerd's last operation) is adopted and
    /// reported, so the coordinator sees it (and stops it if it runs elsewhere too).
    sweep: Vec<ServiceIndex>,
    next_sweep: Millis,
    sweeping: BTreeSet<ServiceIndex>,
}

/// Sweeps for VMs nobody started here come every this many status intervals.
const SWEEP_INTERVALS: u64 = 6;

impl Local {
    pub(super) fn new(me: NodeId, interval_ms: u64, sweep: Vec<ServiceIndex>) -> Local {
        let interval_ms = interval_ms.max(1);
        Local {
            me,
            interval_ms,
            sweep,
            next_sweep: Millis(interval_ms.saturating_mul(SWEEP_INTERVALS)),
            sweeping: BTreeSet::new(),
            vms: BTreeMap::new(),
            queued: BTreeMap::new(),
            awaiting: BTreeMap::new(),
            locked: false,
            leaving: false,
        }
    }

    /// Why this node takes no start or incoming migration now, if it takes none.
    fn refusal(&self, quorate: bool) -> Option<&'static str> {
        if !quorate {
            Some("no quorum")
        } else if self.leaving {
            Some("rgmanagerd shuts down")
        } else if self.locked {
            Some("locked")
        } else {
            None
        }
    }

    /// A VM found running here when rgmanagerd started (re-adopted, not started again).
    pub(super) fn adopt(&mut self, now: Millis, s: ServiceIndex) {
        self.vms.entry(s).or_insert(Vm::Running {
            next_check: now.plus(self.interval_ms),
            checking: false,
        });
    }

    /// Whether nothing runs or is under way here but the services `keep` names, which
    /// already run.
    pub(super) fn idle_but(&self, keep: impl Fn(ServiceIndex) -> bool) -> bool {
        self.queued.is_empty()
            && self.awaiting.is_empty()
            && self
                .vms
                .iter()
                .all(|(s, vm)| keep(*s) && matches!(vm, Vm::Running { .. }))
    }

    /// Everything that may run here (not incoming migrations).
    pub(super) fn running(&self) -> Vec<ServiceIndex> {
        self.vms
            .iter()
            .filter(|(_, vm)| !matches!(vm, Vm::Incoming { .. }))
            .map(|(s, _)| *s)
            .collect()
    }

    /// Incoming migrations whose source left, not yet resolved.
    pub(super) fn incoming(&self) -> Vec<ServiceIndex> {
        self.vms
            .iter()
            .filter(|(_, vm)| {
                matches!(
                    vm,
                    Vm::Incoming {
                        resolving: true,
                        ..
                    }
                )
            })
            .map(|(s, _)| *s)
            .collect()
    }

    /// Migrations under way here: outgoing (or waiting for the target's `Ready`), or
    /// incoming from a live source.
    pub(super) fn migrating(&self) -> Vec<ServiceIndex> {
        let m: Vec<ServiceIndex> = self
            .vms
            .iter()
            .filter(|(s, vm)| {
                matches!(
                    vm,
                    Vm::Outgoing { .. }
                        | Vm::Incoming {
                            resolving: false,
                            ..
                        }
                ) || self.awaiting.contains_key(s)
            })
            .map(|(s, _)| *s)
            .collect();
        m
    }

    fn running_msg(&self) -> Msg {
        Msg::Running {
            running: self.running(),
            incoming: self.incoming(),
            migrating: self.migrating(),
        }
    }

    fn busy(&self, s: ServiceIndex) -> bool {
        matches!(
            self.vms.get(&s),
            Some(Vm::Starting | Vm::Stopping | Vm::Outgoing { .. })
                | Some(Vm::Incoming {
                    resolving: true,
                    ..
                })
        )
    }

    fn done(&self, s: ServiceIndex, result: OpResult, msgs: &mut Vec<Msg>) {
        msgs.push(Msg::Done {
            service: s,
            result,
            running: self.running(),
        });
    }

    /// A command addressed to this node (or, for `Prepare`, naming it as the target).
    pub(super) fn command(
        &mut self,
        _now: Millis,
        cmd: Command,
        quorate: bool,
        out: &mut Vec<Action>,
        msgs: &mut Vec<Msg>,
    ) {
        let s = cmd.service();
        if matches!(cmd, Command::Stop { .. }) {
            self.awaiting.remove(&s); // a stop ends any migration this node waited to start
        }
        if self.busy(s) {
            self.queued.entry(s).or_default().push_back(cmd);
            return;
        }
        match cmd {
            Command::Start { .. } => match self.vms.get(&s) {
                Some(Vm::Running { .. }) => self.done(s, OpResult::Started, msgs),
                _ if self.refusal(quorate).is_some() => {
                    let why = self.refusal(quorate).unwrap_or_default();
                    warn!(service = %s, why, "start refused");
                    self.done(s, OpResult::StartFailed, msgs);
                }
                _ => {
                    self.vms.insert(s, Vm::Starting);
                    out.push(Action::StartVm { service: s });
                }
            },
            Command::Stop { .. } => match self.vms.get(&s) {
                Some(Vm::Incoming { .. }) => {
                    // The VM may have arrived already (the source's Done still on its way:
                    // seed 25250): drop the incoming side and stop whatever runs.
                    out.push(Action::AbortIncoming { service: s });
                    self.vms.insert(s, Vm::Stopping);
                    out.push(Action::StopVm { service: s });
                }
                _ => {
                    // Stop even when nothing is known to run: stopping an absent VM succeeds,
                    // and it may be a leftover the node does not know about.
                    self.vms.insert(s, Vm::Stopping);
                    out.push(Action::StopVm { service: s });
                }
            },
            Command::Prepare { from, .. } => {
                if self.refusal(quorate).is_some() || self.vms.contains_key(&s) {
                    msgs.push(Msg::PrepareFailed {
                        service: s,
                        from,
                        running: self.running(),
                    });
                } else {
                    self.vms.insert(
                        s,
                        Vm::Incoming {
                            from,
                            resolving: false,
                            ready: Ready::Waiting,
                        },
                    );
                    out.push(Action::PrepareIncoming { service: s, from });
                }
            }
        }
    }

    /// The shell finished an operation.
    pub(super) fn vm_done(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        result: VmResult,
        quorate: bool,
        out: &mut Vec<Action>,
        msgs: &mut Vec<Msg>,
    ) {
        let vm = self.vms.get(&s).copied();
        let running = Vm::Running {
            next_check: now.plus(self.interval_ms),
            checking: false,
        };
        match (vm, result) {
            (Some(Vm::Starting), VmResult::Started) => {
                self.vms.insert(s, running);
                self.done(s, OpResult::Started, msgs);
            }
            (Some(Vm::Starting), VmResult::StartFailed) => {
                // It may hold resources until stopped; check soon in case nobody asks.
                self.vms.insert(
                    s,
                    Vm::Running {
                        next_check: now,
                        checking: false,
                    },
                );
                self.done(s, OpResult::StartFailed, msgs);
            }
            (Some(Vm::Stopping), VmResult::Stopped) => {
                self.vms.remove(&s);
                self.done(s, OpResult::Stopped, msgs);
            }
            (Some(Vm::Stopping), VmResult::StopFailed) => {
                self.vms.insert(s, running);
                self.done(s, OpResult::StopFailed, msgs);
            }
            (Some(Vm::Incoming { from, .. }), VmResult::Prepared { uri }) => {
                msgs.push(Msg::Ready {
                    service: s,
                    from,
                    uri,
                });
                return; // still waiting for the source
            }
            (Some(Vm::Incoming { from, .. }), VmResult::PrepareFailed) => {
                self.vms.remove(&s);
                msgs.push(Msg::PrepareFailed {
                    service: s,
                    from,
                    running: self.running(),
                });
            }
            (Some(Vm::Outgoing { .. }), VmResult::Migrated) => {
                self.vms.remove(&s);
                self.done(s, OpResult::Migrated, msgs);
            }
            (Some(Vm::Outgoing { .. }), VmResult::MigrateFailed { on_source }) => {
                if on_source {
                    self.vms.insert(s, running);
                } else {
                    self.vms.remove(&s);
                }
                self.done(s, OpResult::MigrateFailed { on_source }, msgs);
            }
            (vm, result) => {
                debug!(service = %s, ?vm, ?result, "unexpected operation result ignored");
                return;
            }
        }
        self.next_queued(now, quorate, out, msgs);
    }

    /// A status check answered.
    pub(super) fn status(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        up: bool,
        quorate: bool,
        out: &mut Vec<Action>,
        msgs: &mut Vec<Msg>,
    ) {
        if self.sweeping.remove(&s) && !self.vms.contains_key(&s) {
            if up {
                warn!(service = %s, "running here though this rgmanagerd never started it; adopted");
                self.adopt(now, s);
                msgs.push(self.running_msg());
            }
            return;
        }
        match self.vms.get(&s).copied() {
            Some(Vm::Running { .. }) => {
                if up {
                    self.vms.insert(
                        s,
                        Vm::Running {
                            next_check: now.plus(self.interval_ms),
                            checking: false,
                        },
                    );
                } else {
                    warn!(service = %s, "status check failed");
                    // Kept as running (it may hold resources) until a stop succeeds; the
                    // failure is reported again every interval until the stop comes (a
                    // report may reach a coordinator that cannot act on it yet).
                    self.vms.insert(
                        s,
                        Vm::Running {
                            next_check: now.plus(self.interval_ms),
                            checking: false,
                        },
                    );
                    msgs.push(Msg::StatusFailed {
                        service: s,
                        running: self.running(),
                    });
                }
            }
            Some(Vm::Incoming {
                resolving: true, ..
            }) => {
                if up {
                    info!(service = %s, "incoming VM arrived before its source left");
                    self.vms.insert(
                        s,
                        Vm::Running {
                            next_check: now.plus(self.interval_ms),
                            checking: false,
                        },
                    );
                } else {
                    self.vms.remove(&s);
                    out.push(Action::AbortIncoming { service: s });
                }
                msgs.push(self.running_msg());
                self.next_queued(now, quorate, out, msgs);
            }
            _ => {}
        }
    }

    /// Quorum lost: stop every local VM without touching the table (§3.7).
    pub(super) fn stop_all(&mut self, now: Millis, out: &mut Vec<Action>, msgs: &mut Vec<Msg>) {
        self.stop_all_but(now, |_| false, out, msgs);
    }

    /// Stops every local VM but those `keep` names (frozen ones at a shutdown, §3.7).
    pub(super) fn stop_all_but(
        &mut self,
        now: Millis,
        keep: impl Fn(ServiceIndex) -> bool,
        out: &mut Vec<Action>,
        msgs: &mut Vec<Msg>,
    ) {
        let all: Vec<ServiceIndex> = self.vms.keys().copied().filter(|s| !keep(*s)).collect();
        for s in all {
            let busy = self.busy(s);
            let q = self.queued.entry(s).or_default();
            q.clear();
            if busy {
                q.push_back(Command::Stop {
                    service: s,
                    node: self.me,
                });
            } else {
                self.command(
                    now,
                    Command::Stop {
                        service: s,
                        node: self.me,
                    },
                    false,
                    out,
                    msgs,
                );
            }
        }
        self.queued.retain(|_, q| !q.is_empty());
    }

    fn next_queued(
        &mut self,
        now: Millis,
        quorate: bool,
        out: &mut Vec<Action>,
        msgs: &mut Vec<Msg>,
    ) {
        let ready: Vec<ServiceIndex> = self
            .queued
            .keys()
            .copied()
            .filter(|s| !self.busy(*s))
            .collect();
        for s in ready {
            let Some(cmd) = self.queued.get_mut(&s).and_then(|q| q.pop_front()) else {
                continue;
            };
            if self.queued.get(&s).is_some_and(|q| q.is_empty()) {
                self.queued.remove(&s);
            }
            self.command(now, cmd, quorate, out, msgs);
        }
    }

    /// Status checks that are due.
    pub(super) fn tick(&mut self, now: Millis, out: &mut Vec<Action>) {
        if !self.sweep.is_empty() && now >= self.next_sweep {
            self.next_sweep = now.plus(self.interval_ms.saturating_mul(SWEEP_INTERVALS));
            for &s in &self.sweep {
                if !self.vms.contains_key(&s) && self.sweeping.insert(s) {
                    out.push(Action::CheckStatus { service: s });
                }
            }
        }
        for (s, vm) in self.vms.iter_mut() {
            if let Vm::Running {
                next_check,
                checking: false,
            } = *vm
            {
                if next_check <= now {
                    *vm = Vm::Running {
                        next_check,
                        checking: true,
                    };
                    out.push(Action::CheckStatus { service: *s });
                }
            }
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Millis> {
        let sweep = (!self.sweep.is_empty()).then_some(self.next_sweep);
        self.vms
            .values()
            .filter_map(|vm| match *vm {
                Vm::Running {
                    next_check,
                    checking: false,
                } if next_check != Millis(u64::MAX) => Some(next_check),
                _ => None,
            })
            .chain(sweep)
            .min()
    }
}
