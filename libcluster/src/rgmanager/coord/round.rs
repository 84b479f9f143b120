//! Rounds of reports: every group view (and cmand view) starts one; when every member's
//! report of it is delivered, the same coordinator is chosen everywhere (docs/rgmanager-protocol.md §3).
//! Also the table's transfer and a cold start.

use super::*;

impl Coordinator {
    pub(super) fn on_quorum(&mut self, now: Millis, quorate: bool, out: &mut Vec<Action>) {
        if quorate == self.quorate {
            return;
        }
        self.quorate = quorate;
        if !quorate {
            warn!("#1: Quorum Dissolved; stopping every local service");
            self.local.stop_all(now, out, &mut self.msgs);
            self.ready = false;
            self.pause_engine(now);
            if self.engine.is_some() {
                // Every member stops its VMs on its own now: no operation in flight ends the
                // way the engine expects, so it is rebuilt from the reports, carrying none.
                self.rebuild = true;
                self.reliable.clear();
            }
        } else {
            info!("Quorum Regained");
            self.maybe_ready(now, out);
        }
    }

    pub(super) fn on_group_view(
        &mut self,
        now: Millis,
        gv: GroupViewId,
        members: Vec<NodeId>,
        out: &mut Vec<Action>,
    ) {
        let members: BTreeSet<NodeId> = members.into_iter().collect();
        if !members.contains(&self.cfg.me) {
            return; // a view of the group without us: we left
        }
        let gone: Vec<NodeId> = self.members.difference(&members).copied().collect();
        // A leave ordered within a cmand view (seq > 0; not a view change): everything the
        // node sent before it is delivered to every member, so it decided nothing unseen.
        let orderly = gv.seq > 0;
        for &n in &gone {
            // What it held as it left: what it ran, and what it was receiving (a migration
            // that completed before it heard so: seed 108362).
            let said = self.latest.contains_key(&n);
            let mut ran = self.latest.remove(&n).unwrap_or_default();
            for s in self
                .unresolved
                .remove(&n)
                .into_iter()
                .chain(self.migrating.remove(&n))
                .flatten()
            {
                if !ran.contains(&s) {
                    ran.push(s);
                }
            }
            self.locked_nodes.remove(&n);
            self.left_since_decided.insert(n);
            self.local.peer_left(n, out, &mut self.msgs);
            if orderly {
                self.deciders.remove(&n);
            }
            // It announced its shutdown (and started nothing since) and runs nothing: a
            // clean leave, nothing to wait for.
            let clean = self.leaving_nodes.remove(&n) && said && ran.is_empty();
            if clean {
                info!(node = %n, "member left cleanly after handing its services over");
            }
            if self.synced && !clean {
                let incarnation = self.incarnations.get(&n).copied().unwrap_or(0);
                let p = self.pending.entry(n).or_insert(PendingFence {
                    incarnation,
                    cold: false,
                    running: Vec::new(),
                });
                for s in ran {
                    if !p.running.contains(&s) {
                        p.running.push(s);
                    }
                }
            }
        }
        if self.coordinator.is_some_and(|c| !members.contains(&c)) {
            self.change_coordinator(None, out);
        }
        if self.gv == Some(gv) {
            // The round of this view began with the cmand view (see `Input::ClusterView`):
            // keep its reports, drop those of members that left.
            self.reports.retain(|n, _| members.contains(n));
            self.members = members;
            if !self.finalized && self.members.iter().all(|n| self.reports.contains_key(n)) {
                self.finalize(now, out);
            }
            return;
        }
        if self.gv.is_some() && !self.finalized {
            // The round ends unfinalized here; a member that saw every report of it chose
            // a coordinator that may have decided (seed 5120: a partition cut the round).
            self.deciders.extend(self.members.iter().copied());
        }
        self.members = members;
        if let Some(old) = self.gv.replace(gv) {
            self.lineage = extend_lineage(self.lineage, old);
        }
        self.reports.clear();
        self.finalized = false;
        self.ready = false;
        // Decisions wait for this round's reports (and, after a merge, the rebuilt engine).
        self.pause_engine(now);
        self.local.round_started();
        self.report();
        let _ = now;
    }

    /// The round of the current group view starts over (same view, new reports).
    pub(super) fn restart_round(&mut self, now: Millis) {
        self.reports.clear();
        self.finalized = false;
        self.ready = false;
        self.pause_engine(now);
        self.report();
    }

    /// This node's report for the current round.
    pub(super) fn report(&mut self) {
        let Some(gv) = self.gv else {
            return;
        };
        self.msgs.push(Msg::Report {
            gv,
            lineage: self.lineage,
            incarnation: self.cfg.incarnation,
            locked: self.local.locked,
            leaving: self.announced,
            synced: self.synced,
            generation: self.generation,
            running: self.local.running(),
            incoming: self.local.incoming(),
            migrating: self.local.migrating(),
        });
    }

    /// The engine decides nothing (no starts, no failback) until the coordinator is ready
    /// again; operations in flight still end and stops still happen.
    pub(super) fn pause_engine(&mut self, now: Millis) {
        if let Some(e) = self.engine.as_mut() {
            if e.quorate() {
                let members = e.members().clone();
                let mut scratch = Vec::new();
                e.handle(
                    now,
                    engine::Input::View {
                        members,
                        quorate: false,
                    },
                    &mut scratch,
                );
            }
        }
    }

    pub(super) fn change_coordinator(&mut self, to: Option<NodeId>, out: &mut Vec<Action>) {
        if self.coordinator == to {
            return;
        }
        info!(from = ?self.coordinator, to = ?to, "coordinator changed");
        self.coordinator = to;
        if to != Some(self.cfg.me) {
            self.engine = None;
            self.rebuild = false;
            self.ready = false;
            self.fenced_sent.clear();
        }
        for id in std::mem::take(&mut self.requests) {
            out.push(Action::Reply {
                id,
                code: RG_EAGAIN,
            });
        }
    }

    /// Every member's report of this group view is in: the same point on every member.
    pub(super) fn finalize(&mut self, now: Millis, out: &mut Vec<Action>) {
        self.finalized = true;
        let migrating = &self.migrating;
        self.local.round_complete(
            |n, s| migrating.get(&n).is_some_and(|m| m.contains(&s)),
            out,
            &mut self.msgs,
        );
        // The newest table wins: a node that started cold on its own (never quorate) must
        // not replace what the others decided meanwhile.
        let newest = self
            .reports
            .values()
            .filter(|r| r.synced)
            .map(|r| r.generation)
            .max();
        let synced: BTreeSet<NodeId> = self
            .reports
            .iter()
            .filter(|(_, r)| r.synced && Some(r.generation) == newest)
            .map(|(n, _)| *n)
            .collect();
        let coordinator = match synced.first() {
            Some(&c) => c,
            None => {
                self.cold_start();
                self.members.first().copied().unwrap_or(self.cfg.me)
            }
        };
        if self.synced && self.deciders.iter().any(|c| !self.members.contains(c)) {
            // A node that was (or may have been) coordinator died: commands it delivered to
            // itself (or to other nodes that died with it) may never reach us, so any dead
            // node may run anything. Decide nothing until every dead node is fenced.
            for p in self.pending.values_mut() {
                p.cold = true;
            }
        }
        self.deciders = BTreeSet::from([coordinator]);
        self.change_coordinator(Some(coordinator), out);
        if coordinator == self.cfg.me {
            // Members that join may come from a partition that decided (or just changed
            // records) on its own: rebuild from what everyone reports, and send the table
            // to all so that the replicas agree again. A member that comes from another
            // group view than ours did not deliver what we sent at the end of ours (nor we
            // what it sent): it may have missed commands, we may have missed its results
            // (virtual synchrony only binds members that move between views together). A
            // node paused through its own expulsion comes back into the same membership.
            // A fresh joiner (no earlier view) missed nothing: the engine learns from its
            // report what it runs, as from any member's.
            let mine = self.lineage;
            let together: BTreeSet<NodeId> = self
                .reports
                .iter()
                .filter(|(_, r)| r.lineage != 0 && r.lineage == mine)
                .map(|(n, _)| *n)
                .collect();
            // Reliable since the engine was last built: through every round until then.
            self.reliable = if self.rebuild {
                &self.reliable & &together
            } else {
                together
            };
            let merge = self
                .reports
                .values()
                .any(|r| r.lineage != 0 && r.lineage != mine);
            if self.engine.is_none() || merge {
                info!(gv = ?self.gv, merge, "the engine is rebuilt from the table and the members' reports once migrations under way end");
                self.rebuild = true;
            }
            if merge
                || self
                    .reports
                    .values()
                    .any(|r| !r.synced || Some(r.generation) != newest)
            {
                let parts = self.table().split();
                self.msgs.extend(parts.into_iter().map(Msg::Table));
            }
            self.ask_all(out);
        }
        // Every member finalizes here, at the same point of the order: lineages restart.
        self.lineage = 0;
        self.maybe_ready(now, out);
    }

    /// Nobody holds the table: start from the configuration, and wait for every
    /// configured node that is not a member to be fenced (or to join).
    pub(super) fn cold_start(&mut self) {
        info!("no member holds the service table; starting from the configuration");
        self.generation = 0;
        self.records = vec![ServiceRecord::new(); self.cat.len()];
        self.intents = self
            .cat
            .indexes()
            .map(|s| Intent::initial(self.cat.service(s).autostart))
            .collect();
        self.migrations.clear();
        self.pending.clear();
        for &n in &self.cfg.nodes {
            if !self.members.contains(&n) {
                let incarnation = self.incarnations.get(&n).copied().unwrap_or(0);
                self.pending.insert(
                    n,
                    PendingFence {
                        incarnation,
                        cold: true,
                        running: Vec::new(),
                    },
                );
            }
        }
        self.synced = true;
    }

    /// Collects the parts of a table from `from`; the whole table once the last arrived.
    pub(super) fn assemble(&mut self, from: NodeId, part: Table) -> Option<Table> {
        if part.first == 0 {
            self.table_parts = Some((from, part));
        } else {
            let follows = match &mut self.table_parts {
                Some((f, acc)) if *f == from => acc.join(part),
                _ => false,
            };
            if !follows {
                warn!(node = %from, "a part of the service table out of order ignored");
                self.table_parts = None;
                return None;
            }
        }
        if self.table_parts.as_ref().is_some_and(|(_, t)| t.complete()) {
            self.table_parts.take().map(|(_, t)| t)
        } else {
            None
        }
    }

    pub(super) fn adopt_table(&mut self, t: Table, from: NodeId) {
        if t.records.len() != self.records.len() {
            warn!(node = %from, "table of another configuration ignored");
            return;
        }
        for (i, (r, intent)) in t.records.into_iter().enumerate() {
            self.records[i] = r;
            self.intents[i] = intent;
        }
        self.pending = t
            .pending
            .into_iter()
            .filter(|(n, _)| !self.members.contains(n))
            .collect();
        self.migrations = t
            .migrations
            .into_iter()
            .map(|(s, a, b)| (s, (a, b)))
            .collect();
        self.synced = true;
        self.generation = t.generation;
        self.deciders.insert(from);
        info!(node = %from, "service table received");
    }

    /// The table as decided so far: the engine's records (they include decisions not yet
    /// delivered back), the replica's fencing and migrations.
    pub(super) fn table(&self) -> Table {
        let records = self
            .cat
            .indexes()
            .map(|s| match &self.engine {
                Some(e) => (e.record(s).clone(), *e.intent(s)),
                None => (
                    self.records[s.0 as usize].clone(),
                    self.intents[s.0 as usize],
                ),
            })
            .collect();
        Table {
            generation: self.generation,
            total: u32::try_from(self.cat.len()).unwrap_or(u32::MAX),
            first: 0,
            gv: self.gv.unwrap_or(GroupViewId {
                view: ViewId {
                    epoch: 0,
                    coordinator: self.cfg.me,
                    incarnation: 0,
                },
                seq: 0,
            }),
            records,
            pending: self.pending.iter().map(|(n, p)| (*n, p.clone())).collect(),
            migrations: self
                .migrations
                .iter()
                .map(|(s, (a, b))| (*s, *a, *b))
                .collect(),
        }
    }
}
