//! The migration steps of one node: the target's `Ready` and the source's wait for it,
//! an incoming VM's arrival, and what ends them when a peer leaves, misses a step in a view
//! it did not share, or a new configuration renumbers the services.

use super::*;

impl Local {
    /// A new configuration renumbered the services (`map`: old index → new). A VM no longer
    /// configured is forgotten (left running); commands waiting for a busy VM are dropped
    /// (the coordinator decides again); migrations not started yet end: an incoming VM is
    /// checked (it may have arrived), one waiting to go stays here.
    pub(in crate::rgmanager::coord) fn remap(
        &mut self,
        map: &BTreeMap<ServiceIndex, ServiceIndex>,
        out: &mut Vec<Action>,
    ) {
        self.vms = std::mem::take(&mut self.vms)
            .into_iter()
            .filter_map(|(s, vm)| map.get(&s).map(|t| (*t, vm)))
            .collect();
        self.queued.clear();
        self.awaiting.clear();
        self.sweeping.clear();
        self.resolve_incoming(out, |_, _, _| true);
    }

    /// Services the next sweep looks for (the configuration's VMs).
    pub(in crate::rgmanager::coord) fn set_sweep(&mut self, vms: Vec<ServiceIndex>) {
        self.sweep = vms;
    }

    /// The target is ready: migrate if this node is the source.
    pub(in crate::rgmanager::coord) fn ready(
        &mut self,
        s: ServiceIndex,
        to: NodeId,
        uri: String,
        out: &mut Vec<Action>,
        msgs: &mut Vec<Msg>,
    ) {
        self.awaiting.remove(&s);
        match self.vms.get(&s) {
            Some(Vm::Running { .. }) => {
                self.vms.insert(s, Vm::Outgoing { to });
                out.push(Action::MigrateOut {
                    service: s,
                    to,
                    uri,
                });
            }
            other => {
                debug!(service = %s, ?other, "ready for a migration this node cannot start");
                self.migration_failed_here(s, msgs);
            }
        }
    }

    /// A migration of `s` from here cannot happen. If the VM does not run here at all, it is
    /// vm.sh's exit 7 (spec §4.4: the record stays, the next status check recovers it), so
    /// the status failure follows at once.
    pub(super) fn migration_failed_here(&self, s: ServiceIndex, msgs: &mut Vec<Msg>) {
        self.done(s, OpResult::MigrateFailed { on_source: true }, msgs);
        if !self.vms.contains_key(&s) {
            msgs.push(Msg::StatusFailed {
                service: s,
                running: self.running(),
            });
        }
    }

    /// Another node's operation on `s` finished: the end of a migration to this node.
    pub(in crate::rgmanager::coord) fn peer_done(
        &mut self,
        now: Millis,
        from: NodeId,
        s: ServiceIndex,
        result: OpResult,
        out: &mut Vec<Action>,
        msgs: &mut Vec<Msg>,
    ) {
        let Some(Vm::Incoming { from: src, .. }) = self.vms.get(&s).copied() else {
            return;
        };
        if src != from {
            return;
        }
        match result {
            OpResult::Migrated => {
                info!(service = %s, "now running locally after migration");
                self.vms.insert(
                    s,
                    Vm::Running {
                        next_check: now.plus(self.interval_ms),
                        checking: false,
                    },
                );
                msgs.push(self.running_msg());
            }
            OpResult::MigrateFailed { .. } => {
                self.vms.remove(&s);
                out.push(Action::AbortIncoming { service: s });
                msgs.push(self.running_msg());
            }
            _ => return,
        }
        self.next_queued(now, true, out, msgs);
    }

    /// `node` left the group: incoming VMs from it may or may not have arrived (ask), and
    /// migrations to it that it never answered with `Ready` failed with the VM here.
    pub(in crate::rgmanager::coord) fn peer_left(
        &mut self,
        node: NodeId,
        out: &mut Vec<Action>,
        msgs: &mut Vec<Msg>,
    ) {
        self.resolve_incoming(out, |_, from, _| from == node);
        self.fail_awaiting(msgs, |_, to, _| to == node);
    }

    /// The coordinator asks this node to migrate `s` to `to`: wait for `to`'s `Ready`.
    /// A target that is no longer a member never will be.
    pub(in crate::rgmanager::coord) fn expect_ready(
        &mut self,
        s: ServiceIndex,
        to: NodeId,
        target_member: bool,
        msgs: &mut Vec<Msg>,
    ) {
        if target_member {
            self.awaiting.insert(s, (to, Ready::Delivered));
        } else {
            self.migration_failed_here(s, msgs);
        }
    }

    /// The target of a migration of `s` could not prepare: the VM stays here.
    pub(in crate::rgmanager::coord) fn prepare_failed(
        &mut self,
        s: ServiceIndex,
        msgs: &mut Vec<Msg>,
    ) {
        if self.awaiting.remove(&s).is_some() {
            msgs.push(self.running_msg());
        }
    }

    pub(super) fn fail_awaiting(
        &mut self,
        msgs: &mut Vec<Msg>,
        lost: impl Fn(ServiceIndex, NodeId, Ready) -> bool,
    ) {
        let failed: Vec<ServiceIndex> = self
            .awaiting
            .iter()
            .filter(|(s, (to, age))| lost(**s, *to, *age))
            .map(|(s, _)| *s)
            .collect();
        for s in failed {
            self.awaiting.remove(&s);
            debug!(service = %s, "the migration target will never be ready; the VM stays here");
            self.migration_failed_here(s, msgs);
        }
    }

    /// This node's `Ready` for `s` was delivered back to it.
    pub(in crate::rgmanager::coord) fn ready_delivered(&mut self, s: ServiceIndex) {
        if let Some(Vm::Incoming { ready, .. }) = self.vms.get_mut(&s) {
            if *ready == Ready::Waiting {
                *ready = Ready::Delivered;
            }
        }
    }

    /// A new round of reports begins.
    pub(in crate::rgmanager::coord) fn round_started(&mut self) {
        let ages = self
            .vms
            .values_mut()
            .filter_map(|vm| match vm {
                Vm::Incoming { ready, .. } => Some(ready),
                _ => None,
            })
            .chain(self.awaiting.values_mut().map(|(_, age)| age));
        for age in ages {
            if *age == Ready::Delivered {
                *age = Ready::Old;
            }
        }
    }

    /// Every member reported in this round: a source whose report does not list the
    /// migration under way missed our `Ready` in a view we did not share (or finished): ask
    /// the shell whether the VM arrived instead of waiting forever.
    /// Likewise a target that does not list the migration in this round never saw the
    /// `Prepare` this node delivered before the round: the migration failed, the VM is here.
    pub(in crate::rgmanager::coord) fn round_complete(
        &mut self,
        peer_migrating: impl Fn(NodeId, ServiceIndex) -> bool,
        out: &mut Vec<Action>,
        msgs: &mut Vec<Msg>,
    ) {
        self.resolve_incoming(out, |s, from, ready| {
            ready == Ready::Old && !peer_migrating(from, s)
        });
        self.fail_awaiting(msgs, |s, to, age| {
            age == Ready::Old && !peer_migrating(to, s)
        });
    }

    pub(super) fn resolve_incoming(
        &mut self,
        out: &mut Vec<Action>,
        lost: impl Fn(ServiceIndex, NodeId, Ready) -> bool,
    ) {
        for (s, vm) in self.vms.iter_mut() {
            if let Vm::Incoming {
                from,
                resolving: false,
                ready,
            } = *vm
            {
                if lost(*s, from, ready) {
                    debug!(service = %s, source = %from, "asking whether the incoming VM arrived");
                    *vm = Vm::Incoming {
                        from,
                        resolving: true,
                        ready,
                    };
                    out.push(Action::CheckStatus { service: *s });
                }
            }
        }
    }
}
