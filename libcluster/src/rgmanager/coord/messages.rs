//! What the group delivers: members' reports and results, the coordinator's decisions,
//! fencing confirmations, table parts, requests and replies.

use super::*;

impl Coordinator {
    pub(super) fn on_msg(&mut self, now: Millis, from: NodeId, m: Msg, out: &mut Vec<Action>) {
        let member = self.members.contains(&from);
        match m {
            Msg::Report {
                gv,
                lineage,
                incarnation,
                locked,
                leaving,
                synced,
                generation,
                running,
                incoming,
                migrating,
            } => {
                if !member {
                    return;
                }
                if self.foreign.remove(&from).is_some() && from != self.cfg.me {
                    // It runs our configuration now; what we reported meanwhile did not reach
                    // it.
                    self.report();
                }
                self.latest.insert(from, running);
                self.unresolved.insert(from, incoming);
                self.migrating.insert(from, migrating);
                self.note_lock(now, from, locked, out);
                if leaving {
                    self.note_leaving(now, from, out);
                }
                if Some(gv) != self.gv {
                    self.feed_report(now, from, out);
                    return;
                }
                self.learn_incarnation(from, incarnation);
                // It is alive and says what it runs: nothing of an earlier life waits.
                if self.pending.remove(&from).is_some() {
                    debug!(node = %from, "a departed node reported again");
                }
                self.reports.insert(
                    from,
                    RoundReport {
                        synced,
                        generation,
                        lineage,
                    },
                );
                if !self.finalized && self.members.iter().all(|n| self.reports.contains_key(n)) {
                    self.finalize(now, out);
                }
            }
            Msg::Done {
                service,
                result,
                running,
            } => {
                if !member || !self.cat.contains(service) {
                    return;
                }
                self.latest.insert(from, running);
                if let Some(&(src, to)) = self.migrations.get(&service) {
                    if src == from {
                        self.migrations.remove(&service);
                        // It arrived at the target: the target runs it now, as far as anyone
                        // knows until the target's own next message (which may never come:
                        // seed 108362), or until a target that left already is fenced
                        // (seed 2347).
                        if result == engine::OpResult::Migrated {
                            if let Some(p) = self.pending.get_mut(&to) {
                                if !p.running.contains(&service) {
                                    p.running.push(service);
                                }
                            } else if let Some(r) = self.latest.get_mut(&to) {
                                if !r.contains(&service) {
                                    r.push(service);
                                }
                            }
                        }
                    }
                }
                if let Some(m) = self.migrating.get_mut(&from) {
                    m.retain(|x| *x != service);
                }
                self.local
                    .peer_done(now, from, service, result, out, &mut self.msgs);
                self.feed(
                    now,
                    engine::Input::Done {
                        service,
                        node: from,
                        result,
                    },
                    out,
                );
                self.feed_report(now, from, out);
                self.maybe_ready(now, out);
            }
            Msg::StatusFailed { service, running } => {
                if !member || !self.cat.contains(service) {
                    return;
                }
                self.latest.insert(from, running);
                self.feed(
                    now,
                    engine::Input::StatusFailed {
                        service,
                        node: from,
                    },
                    out,
                );
                self.feed_report(now, from, out);
            }
            Msg::Running {
                running,
                incoming,
                migrating,
            } => {
                if !member {
                    return;
                }
                self.latest.insert(from, running);
                self.unresolved.insert(from, incoming);
                self.migrating.insert(from, migrating);
                self.feed_report(now, from, out);
                self.maybe_ready(now, out);
            }
            Msg::PrepareFailed {
                service,
                from: source,
                running,
            } => {
                if !member || !self.cat.contains(service) {
                    return;
                }
                self.latest.insert(from, running);
                if self.migrations.get(&service) == Some(&(source, from)) {
                    self.migrations.remove(&service);
                }
                if source == self.cfg.me {
                    self.local.prepare_failed(service, &mut self.msgs);
                }
                if let Some(m) = self.migrating.get_mut(&from) {
                    m.retain(|x| *x != service);
                }
                self.feed(
                    now,
                    engine::Input::Done {
                        service,
                        node: source,
                        result: engine::OpResult::MigrateFailed { on_source: true },
                    },
                    out,
                );
                self.feed_report(now, from, out);
            }
            Msg::Leaving { running } => {
                if member {
                    self.latest.insert(from, running);
                    self.note_leaving(now, from, out);
                    self.feed_report(now, from, out);
                }
            }
            Msg::Lock { locked } => {
                if member {
                    self.note_lock(now, from, locked, out);
                }
            }
            Msg::Ready {
                service,
                from: source,
                uri,
            } => {
                if !member || !self.cat.contains(service) {
                    return;
                }
                // The migration is under way from now on, whoever reported what before.
                let m = self.migrating.entry(from).or_default();
                if !m.contains(&service) {
                    m.push(service);
                }
                if from == self.cfg.me {
                    self.local.ready_delivered(service);
                } else if source == self.cfg.me {
                    self.local.ready(service, from, uri, out, &mut self.msgs);
                }
            }
            Msg::Decisions {
                generation,
                records,
                commands,
            } => {
                if !self.is_coordinator(from) {
                    debug!(node = %from, "decisions from a former coordinator ignored");
                    return;
                }
                self.generation = self.generation.max(generation);
                self.apply_decisions(now, records, commands, out);
            }
            Msg::Fenced { node, incarnation } => {
                if !self.is_coordinator(from) {
                    return;
                }
                self.fenced_sent.remove(&(node, incarnation));
                if self
                    .pending
                    .get(&node)
                    .is_some_and(|p| p.incarnation <= incarnation)
                {
                    self.pending.remove(&node);
                }
                self.feed(now, engine::Input::Fenced { node }, out);
                self.maybe_ready(now, out);
            }
            Msg::Table(part) => {
                if from == self.cfg.me || Some(part.gv) != self.gv || !member {
                    return;
                }
                if !self.is_coordinator(from) {
                    return;
                }
                if let Some(t) = self.assemble(from, part) {
                    self.adopt_table(t, from);
                    self.maybe_ready(now, out);
                }
            }
            Msg::Request {
                origin,
                id,
                service,
                request,
            } => self.on_request(now, origin, id, service, request, out),
            Msg::Reply { origin, id, code } => {
                if origin == self.cfg.me && self.requests.remove(&id) {
                    out.push(Action::Reply { id, code });
                }
            }
        }
    }

    pub(super) fn note_leaving(&mut self, now: Millis, node: NodeId, out: &mut Vec<Action>) {
        if self.leaving_nodes.insert(node) {
            info!(node = %node, "member shuts down; its services are handed over");
        }
        self.feed(now, engine::Input::Leaving { node }, out);
    }

    pub(super) fn note_lock(
        &mut self,
        now: Millis,
        node: NodeId,
        locked: bool,
        out: &mut Vec<Action>,
    ) {
        let changed = if locked {
            self.locked_nodes.insert(node)
        } else {
            self.locked_nodes.remove(&node)
        };
        if changed {
            self.feed(now, engine::Input::Locked { node, locked }, out);
        }
    }

    pub(super) fn apply_decisions(
        &mut self,
        now: Millis,
        records: Vec<RecordUpdate>,
        commands: Vec<Command>,
        out: &mut Vec<Action>,
    ) {
        let running = self.local.running();
        for u in records {
            let i = u.service.0 as usize;
            if i >= self.records.len() {
                continue;
            }
            // The table says it runs here but it does not: as a failed status check.
            if u.record.state == ServiceState::Started
                && u.record.owner == Some(self.cfg.me)
                && !running.contains(&u.service)
            {
                warn!(service = %u.service, "the table says this node runs it; it does not");
                self.msgs.push(Msg::StatusFailed {
                    service: u.service,
                    running: running.clone(),
                });
            }
            self.records[i] = u.record;
            self.intents[i] = u.intent;
        }
        for c in commands {
            if !self.cat.contains(c.service()) {
                continue;
            }
            match c {
                Command::Prepare {
                    service, from, to, ..
                } => {
                    self.migrations.insert(service, (from, to));
                    if from == self.cfg.me {
                        let member = self.members.contains(&to);
                        self.local.expect_ready(service, to, member, &mut self.msgs);
                    }
                }
                Command::Start { service, .. } | Command::Stop { service, .. } => {
                    self.migrations.remove(&service);
                }
            }
            let mine = match c {
                Command::Start { node, .. } | Command::Stop { node, .. } => node == self.cfg.me,
                Command::Prepare { to, .. } => to == self.cfg.me,
            };
            if mine {
                let q = self.quorate;
                self.local.command(now, c, q, out, &mut self.msgs);
            }
        }
    }
}
