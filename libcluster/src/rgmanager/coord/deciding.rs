//! The coordinator's engine at work: it decides once ready (quorate, no cold fencing
//! pending, no migration under way when rebuilt), is fed every input, and its decisions are
//! published; fenced is asked about departed members.

use super::*;

impl Coordinator {
    pub(super) fn maybe_ready(&mut self, now: Millis, out: &mut Vec<Action>) {
        if self.ready
            || (self.engine.is_none() && !self.rebuild)
            || !self.quorate
            || !self.finalized
            || self.pending.values().any(|p| p.cold)
            || self.unresolved.values().any(|v| !v.is_empty())
        {
            return;
        }
        // A rebuilt engine knows no operation in flight but those it carries over: let
        // migrations between live members end first (their messages say where the VM is).
        if self.rebuild && self.migrating.values().any(|v| !v.is_empty()) {
            return;
        }
        let republish = std::mem::take(&mut self.rebuild);
        if republish {
            info!(gv = ?self.gv, reliable = ?self.reliable, "building the engine from the table and the members' latest reports");
            self.engine = Some(self.build_engine(now));
        }
        self.ready = true;
        self.generation += 1;
        info!(
            members = self.members.len(),
            generation = self.generation,
            "coordinator deciding"
        );
        // Every owner checks a restored table against what it runs; every member learns
        // the new generation.
        let records = match &self.engine {
            Some(e) if republish => self
                .cat
                .indexes()
                .map(|s| RecordUpdate {
                    service: s,
                    record: e.record(s).clone(),
                    intent: *e.intent(s),
                })
                .collect(),
            _ => Vec::new(),
        };
        self.msgs
            .extend(Msg::decisions(self.generation, records, Vec::new()));
        let members = self.members.clone();
        // A member that restarted since the engine last saw it (no view of the engine went
        // without it: seed 24328) lost whatever ran there: the engine sees it leave first.
        // So does one whose rgmanagerd left the group and came back meanwhile (seed 104783):
        // commands the engine sent to its former life went nowhere.
        let left = std::mem::take(&mut self.left_since_decided);
        let restarted: BTreeSet<NodeId> = members
            .iter()
            .copied()
            .filter(|n| {
                left.contains(n)
                    || self
                        .engine_incarnations
                        .get(n)
                        .is_some_and(|i| Some(i) != self.incarnations.get(n))
            })
            .collect();
        if !restarted.is_empty() {
            info!(nodes = ?restarted, "members restarted since the last decisions");
            let without = &members - &restarted;
            self.feed(
                now,
                engine::Input::View {
                    members: without,
                    quorate: false,
                },
                out,
            );
        }
        self.feed(
            now,
            engine::Input::View {
                members: members.clone(),
                quorate: true,
            },
            out,
        );
        self.engine_incarnations = members
            .iter()
            .map(|n| (*n, self.incarnations.get(n).copied().unwrap_or(0)))
            .collect();
        // What every member said of itself, for an engine that may be new.
        for node in self.locked_nodes.clone() {
            self.feed(now, engine::Input::Locked { node, locked: true }, out);
        }
        for node in self.leaving_nodes.clone() {
            self.feed(now, engine::Input::Leaving { node }, out);
        }
        for n in members {
            self.feed_report(now, n, out);
        }
        self.ask_all(out);
    }

    pub(super) fn feed_report(&mut self, now: Millis, node: NodeId, out: &mut Vec<Action>) {
        if !self.ready {
            return;
        }
        let running = self.latest.get(&node).cloned().unwrap_or_default();
        self.feed(now, engine::Input::Report { node, running }, out);
    }

    /// Feeds the engine (when this node is the coordinator) and publishes its decisions.
    pub(super) fn feed(&mut self, now: Millis, input: engine::Input, out: &mut Vec<Action>) {
        let Some(e) = self.engine.as_mut() else {
            return;
        };
        let mut acts = Vec::new();
        e.handle(now, input, &mut acts);
        self.publish(acts, out);
    }

    pub(super) fn publish(&mut self, acts: Vec<engine::Action>, out: &mut Vec<Action>) {
        let Some(e) = self.engine.as_ref() else {
            return;
        };
        let mut records = Vec::new();
        let mut commands = Vec::new();
        let mut ask = Vec::new();
        for a in acts {
            match a {
                engine::Action::Record { service, record } => records.push(RecordUpdate {
                    service,
                    record,
                    intent: *e.intent(service),
                }),
                engine::Action::Start { service, node, .. } => {
                    commands.push(Command::Start { service, node })
                }
                engine::Action::Stop { service, node, .. } => {
                    commands.push(Command::Stop { service, node })
                }
                engine::Action::Migrate { service, from, to } => {
                    commands.push(Command::Prepare { service, from, to })
                }
                engine::Action::AwaitFencing { node, .. } => ask.push(node),
            }
        }
        if !records.is_empty() || !commands.is_empty() {
            self.msgs
                .extend(Msg::decisions(self.generation, records, commands));
        }
        for n in ask {
            self.ask(n, out);
        }
    }

    pub(super) fn ask(&self, node: NodeId, out: &mut Vec<Action>) {
        let incarnation = match self.pending.get(&node) {
            Some(p) => p.incarnation,
            None => self.incarnations.get(&node).copied().unwrap_or(0),
        };
        out.push(Action::IsFenced { node, incarnation });
    }

    pub(super) fn ask_all(&mut self, out: &mut Vec<Action>) {
        if self.coordinator != Some(self.cfg.me) || !self.finalized {
            return;
        }
        let nodes: Vec<NodeId> = self.pending.keys().copied().collect();
        for n in nodes {
            self.ask(n, out);
        }
    }

    pub(super) fn on_fence_answer(
        &mut self,
        now: Millis,
        node: NodeId,
        incarnation: u64,
        fenced: bool,
        out: &mut Vec<Action>,
    ) {
        if !fenced || self.coordinator != Some(self.cfg.me) || self.members.contains(&node) {
            return;
        }
        match self.pending.get(&node) {
            Some(p) if p.incarnation <= incarnation => {
                if self.fenced_sent.insert((node, incarnation)) {
                    self.msgs.push(Msg::Fenced { node, incarnation });
                }
            }
            Some(_) => {}
            // Already cleared in the table: the engine may still wait (a restored hold).
            None => self.feed(now, engine::Input::Fenced { node }, out),
        }
    }
}
