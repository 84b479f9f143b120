//! The placement engine: the decision maker's table and one decision round per input.
//!
//! The engine holds the replicated records, the administrator intents and indexes (what
//! occupies each node, which services wait for which fencing), takes one [`Input`] at a
//! time and pushes the [`Action`]s of the decision round that follows. It assumes the
//! caller is the single decision maker (the coordinator, docs/placement.md); it never
//! reads a clock and never iterates a hash map.

use super::catalog::{Catalog, Dependency, ServiceIndex};
use super::domain::{Domain, DomainView, Load};
use super::recovery::RestartCounter;
use super::state::{Flags, Intent, ServiceRecord, ServiceState};
use crate::{Millis, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Why a start is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartCause {
    /// Automatic placement (`consider_start`, §2.5/§2.6).
    Auto,
    /// Recovery after a failure: a restart in place or a relocation (§3.3).
    Recovery,
    /// An administrator request (enable, relocate, restart).
    User,
    /// Failback to a more preferred node, for a service that cannot migrate (§2.7).
    Failback,
}

/// Why a stop is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopCause {
    /// Stop for recovery after a failed status check or start (state `recoverable`).
    Recovery,
    /// `clusvcadm -s`.
    User,
    /// `clusvcadm -d`, or a running service whose intent is disabled.
    Disable,
    /// `clusvcadm -r`: then start on the target, else on the best other node.
    Relocate {
        /// The administrator's preferred target.
        to: Option<NodeId>,
    },
    /// `clusvcadm -R`: then start on the same node.
    Restart,
    /// Failback of a service that cannot migrate: then start on `to`.
    Failback {
        /// The more preferred node.
        to: NodeId,
    },
    /// The service it depends on is no longer started (§2.10).
    DependencyMissing,
    /// It was reported running on a second node: stop that copy (R1).
    Duplicate,
}

/// What a node reports about an operation the engine asked of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// The start agent succeeded.
    Started,
    /// The start agent failed.
    StartFailed,
    /// The stop agent succeeded.
    Stopped,
    /// The stop agent failed.
    StopFailed,
    /// The live migration succeeded: it runs on the target.
    Migrated,
    /// The migration failed; `on_source` says whether it still runs on the source (vm.sh
    /// exit 150, 6 or 7) or not (any other error: the service becomes `failed`, §4.4).
    MigrateFailed {
        /// Still healthy on the source.
        on_source: bool,
    },
}

/// One input to the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The members (nodes in the quorate view running rgmanager) changed, or quorum did.
    View {
        /// Online members.
        members: BTreeSet<NodeId>,
        /// Whether the view is quorate. Without quorum nothing is decided.
        quorate: bool,
    },
    /// fenced says `node` was fenced (or acknowledged) since it left (`FenceState::Fenced`).
    Fenced {
        /// The node.
        node: NodeId,
    },
    /// A member's list of every service it runs (sent on each view change, R1).
    Report {
        /// The member.
        node: NodeId,
        /// The services it runs now.
        running: Vec<ServiceIndex>,
    },
    /// `node`'s rgmanagerd shuts down: its services are handed over, nothing new goes
    /// there, and it leaves once it runs nothing.
    Leaving {
        /// The member.
        node: NodeId,
    },
    /// `node` was locked or unlocked (`clusvcadm -l` / `-u` there): nothing starts on a
    /// locked node.
    Locked {
        /// The member.
        node: NodeId,
        /// Locked now.
        locked: bool,
    },
    /// A node finished an operation the engine asked for.
    Done {
        /// The service.
        service: ServiceIndex,
        /// The node that ran the operation.
        node: NodeId,
        /// How it went.
        result: OpResult,
    },
    /// The owner's status check of a started service failed (§3.2).
    StatusFailed {
        /// The service.
        service: ServiceIndex,
        /// The owner.
        node: NodeId,
    },
}

/// What the engine asks of the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run the start agent of `service` on `node`; answer with [`Input::Done`].
    Start {
        /// The service.
        service: ServiceIndex,
        /// Where.
        node: NodeId,
        /// Why.
        cause: StartCause,
    },
    /// Run the stop agent of `service` on `node`; answer with [`Input::Done`].
    Stop {
        /// The service.
        service: ServiceIndex,
        /// Where.
        node: NodeId,
        /// Why.
        cause: StopCause,
    },
    /// Live-migrate `service` from `from` to `to` (agent run on `from`); answer with
    /// [`Input::Done`] from `from`.
    Migrate {
        /// The service.
        service: ServiceIndex,
        /// The owner.
        from: NodeId,
        /// The target.
        to: NodeId,
    },
    /// The replicated record of `service` changed: publish it (the `RG_EVENT`).
    Record {
        /// The service.
        service: ServiceIndex,
        /// Its new record.
        record: ServiceRecord,
    },
    /// Services of the dead `node` wait until fenced confirms it is fenced (F1): ask fenced
    /// (`IsFenced`) and feed [`Input::Fenced`].
    AwaitFencing {
        /// The dead node.
        node: NodeId,
        /// How many services wait for it.
        services: usize,
    },
}

/// An operation in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Start { node: NodeId, cause: StartCause },
    Stop { node: NodeId, cause: StopCause },
    Migrate { from: NodeId, to: NodeId },
}

/// Where a recovery episode is (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Nothing tried yet: apply the policy.
    Fresh,
    /// Restarted in place; a failure now relocates.
    Restarting,
    /// Trying other nodes.
    Relocating,
    /// No other node was legal: restarted on the origin (#70); a failure now ends it.
    LastResort,
}

#[derive(Clone, Debug)]
pub(super) struct Episode {
    pub(super) origin: NodeId,
    pub(super) tried: BTreeSet<NodeId>,
    pub(super) phase: Phase,
}

/// Why a stopped service may not start yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Hold {
    /// Its last owner died and is not known to be fenced (F1).
    Fence(NodeId),
    /// It may have migrated to this node: wait for the node's report (R1).
    Report(NodeId),
}

#[derive(Clone, Debug, Default)]
pub(super) struct Work {
    pub(super) pending: Option<Op>,
    pub(super) holds: Vec<Hold>,
    pub(super) parked: bool,
    pub(super) episode: Option<Episode>,
    /// A stop failed on this node: the service may still hold resources there, so it keeps
    /// occupying the node and may start only there until a stop there succeeds.
    pub(super) stuck: Option<NodeId>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Slot {
    pub(super) services: BTreeSet<ServiceIndex>,
    pub(super) exclusive: u32,
}

/// rgmanager's decision core for a whole cluster (see the module doc of
/// [`crate::rgmanager`]).
#[derive(Clone, Debug)]
pub struct Engine {
    pub(super) cat: Catalog,
    pub(super) records: Vec<ServiceRecord>,
    pub(super) intents: Vec<Intent>,
    pub(super) counters: Vec<RestartCounter>,
    pub(super) work: Vec<Work>,
    pub(super) members: BTreeSet<NodeId>,
    pub(super) quorate: bool,
    /// Left nodes fenced since they left (forgotten when they rejoin).
    pub(super) fenced: BTreeSet<NodeId>,
    pub(super) holds: BTreeMap<Hold, BTreeSet<ServiceIndex>>,
    pub(super) placed: BTreeMap<NodeId, Slot>,
    /// Copies reported on a second node and being stopped there.
    pub(super) duplicates: BTreeSet<(ServiceIndex, NodeId)>,
    pub(super) dirty: BTreeSet<ServiceIndex>,
    pub(super) failback_due: bool,
    /// Members whose rgmanagerd shuts down.
    pub(super) leaving: BTreeSet<NodeId>,
    /// Members locked by `clusvcadm -l`.
    pub(super) locked: BTreeSet<NodeId>,
    /// Services busy when a node joined: their failback is judged when the operation ends.
    pub(super) failback_later: BTreeSet<ServiceIndex>,
    /// Smallest online priority per domain (see [`DomainView`]).
    pub(super) tops: Vec<Option<u32>>,
}

impl Engine {
    /// An engine for `catalog` with every record new (`stopped`, never started), intents
    /// from `autostart`, no members and no quorum.
    pub fn new(catalog: Catalog) -> Engine {
        let n = catalog.len();
        let intents = catalog
            .indexes()
            .map(|s| Intent::initial(catalog.service(s).autostart))
            .collect();
        let counters = catalog
            .indexes()
            .map(|s| {
                let d = catalog.service(s);
                RestartCounter::new(d.max_restarts, d.restart_expire_ms)
            })
            .collect();
        let tops = vec![None; catalog.domains().len()];
        Engine {
            records: vec![ServiceRecord::new(); n],
            intents,
            counters,
            work: vec![Work::default(); n],
            members: BTreeSet::new(),
            quorate: false,
            fenced: BTreeSet::new(),
            holds: BTreeMap::new(),
            placed: BTreeMap::new(),
            duplicates: BTreeSet::new(),
            dirty: catalog.indexes().collect(),
            failback_due: false,
            leaving: BTreeSet::new(),
            locked: BTreeSet::new(),
            failback_later: BTreeSet::new(),
            tops,
            cat: catalog,
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.cat
    }

    /// The record of `s`.
    pub fn record(&self, s: ServiceIndex) -> &ServiceRecord {
        &self.records[s.0 as usize]
    }

    /// The administrator intent of `s`.
    pub fn intent(&self, s: ServiceIndex) -> &Intent {
        &self.intents[s.0 as usize]
    }

    /// The online members.
    pub fn members(&self) -> &BTreeSet<NodeId> {
        &self.members
    }

    /// Whether the engine has quorum (decides anything).
    pub fn quorate(&self) -> bool {
        self.quorate
    }

    /// Whether an operation on `s` is in flight.
    pub fn busy(&self, s: ServiceIndex) -> bool {
        self.work[s.0 as usize].pending.is_some()
    }

    /// Whether `s` waits for a dead node's fencing (or a report) before it may start.
    pub fn held(&self, s: ServiceIndex) -> bool {
        !self.work[s.0 as usize].holds.is_empty()
    }

    /// What occupies `node`: services started, starting, stopping or migrating there.
    pub fn load(&self, node: NodeId) -> Load {
        self.placed.get(&node).map_or(Load::default(), |s| Load {
            services: s.services.len() as u32,
            exclusive: s.exclusive,
        })
    }

    /// The services occupying `node`, by index.
    pub fn on_node(&self, node: NodeId) -> impl Iterator<Item = ServiceIndex> + '_ {
        self.placed
            .get(&node)
            .into_iter()
            .flat_map(|s| s.services.iter().copied())
    }

    /// Takes over `s` from `old`, the engine this one replaces on the same decision maker:
    /// its record, its operation in flight, recovery episode and holds, the nodes it
    /// occupies. For an operation among members that moved between views with the decision
    /// maker, whose result will therefore arrive.
    pub fn carry(&mut self, old: &Engine, s: ServiceIndex) {
        if !self.cat.contains(s) || self.cat.len() != old.cat.len() {
            return;
        }
        let i = s.0 as usize;
        if let Some(o) = self.records[i].owner {
            self.vacate(s, o);
        }
        self.clear_holds(s);
        self.records[i] = old.records[i].clone();
        self.intents[i] = old.intents[i];
        let mut work = old.work[i].clone();
        let holds = std::mem::take(&mut work.holds);
        self.work[i] = work;
        for h in holds {
            self.add_hold(s, h);
        }
        for (&node, slot) in &old.placed {
            if slot.services.contains(&s) {
                self.occupy(s, node);
            }
        }
        self.duplicates
            .extend(old.duplicates.iter().filter(|(x, _)| *x == s).copied());
        self.dirty.insert(s);
    }

    /// Takes over `old`'s restart counters (the same decision maker rebuilding its engine
    /// keeps counting; a new decision maker starts afresh, as the original's recovering node
    /// kept them in memory).
    pub fn carry_counters(&mut self, old: &Engine) {
        if self.counters.len() == old.counters.len() {
            self.counters.clone_from(&old.counters);
        }
    }

    /// `s` may also run on the dead `node` (a restored table names it as a migration
    /// target): it starts nowhere until `node` is fenced (F1).
    pub fn hold_for_fencing(&mut self, s: ServiceIndex, node: NodeId) {
        if self.cat.contains(s) && !self.fenced.contains(&node) {
            self.add_hold(s, Hold::Fence(node));
        }
    }

    /// Whether services may start on `node`: an online member, not locked, not shutting
    /// down.
    pub fn startable(&self, node: NodeId) -> bool {
        self.members.contains(&node)
            && !self.leaving.contains(&node)
            && !self.locked.contains(&node)
    }

    pub(super) fn startable_members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().copied().filter(|n| self.startable(*n))
    }

    /// Whether the operation in flight on `s` (if any) involves only nodes of `nodes`.
    pub fn in_flight_among(&self, s: ServiceIndex, nodes: &BTreeSet<NodeId>) -> bool {
        match self.work.get(s.0 as usize).and_then(|w| w.pending) {
            Some(Op::Start { node, .. } | Op::Stop { node, .. }) => nodes.contains(&node),
            Some(Op::Migrate { from, to }) => nodes.contains(&from) && nodes.contains(&to),
            None => false,
        }
    }

    /// Whether a second copy of `s` is known and its stop has not ended: nothing may start
    /// `s` anywhere meanwhile (R1).
    pub fn copy_elsewhere(&self, s: ServiceIndex) -> bool {
        self.duplicates
            .range((s, NodeId(0))..=(s, NodeId(u32::MAX)))
            .next()
            .is_some()
    }

    /// Replaces the record and intent of `s` (a new decision maker installing the
    /// replicated table). Operations in flight are forgotten: the members' reports that
    /// follow say what runs.
    pub fn restore(&mut self, s: ServiceIndex, record: ServiceRecord, intent: Intent) {
        if !self.cat.contains(s) {
            return;
        }
        let i = s.0 as usize;
        if let Some(o) = self.records[i].owner {
            self.vacate(s, o);
        }
        self.work[i] = Work::default();
        let mut record = record;
        record.flags = record.flags.with_frozen(intent.frozen);
        if record.state.occupies_owner() {
            match record.owner {
                Some(o) => self.occupy(s, o),
                None => record.state = ServiceState::Stopped,
            }
        } else {
            record.owner = None;
        }
        self.records[i] = record;
        self.intents[i] = intent;
        self.dirty.insert(s);
    }

    /// Applies one input and runs the decision round that follows.
    pub fn handle(&mut self, now: Millis, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::View { members, quorate } => self.on_view(now, members, quorate, out),
            Input::Fenced { node } => self.on_fenced(node),
            Input::Leaving { node } => {
                if self.members.contains(&node) && self.leaving.insert(node) {
                    let here: Vec<ServiceIndex> = self.on_node(node).collect();
                    self.dirty.extend(here);
                }
            }
            Input::Locked { node, locked } => {
                if locked {
                    self.locked.insert(node);
                } else if self.locked.remove(&node) {
                    // Services that found no node may start there now.
                    for (i, r) in self.records.iter().enumerate() {
                        if matches!(r.state, ServiceState::Stopped | ServiceState::Uninitialized) {
                            self.work[i].parked = false;
                            self.dirty.insert(ServiceIndex(i as u32));
                        }
                    }
                }
            }
            Input::Report { node, running } => self.on_report(now, node, running, out),
            Input::Done {
                service,
                node,
                result,
            } => self.on_done(now, service, node, result, out),
            Input::StatusFailed { service, node } => self.on_status_failed(now, service, node, out),
        }
        self.decide(now, out);
    }

    // ---- helpers shared by the handlers ----

    pub(super) fn view(&self, s: ServiceIndex) -> Option<DomainView<'_>> {
        let d = self.cat.domain_of(s)?;
        let domain: &Domain = &self.cat.domains()[d];
        Some(DomainView {
            domain,
            top: self.tops[d],
        })
    }

    pub(super) fn dependency_met(&self, s: ServiceIndex) -> bool {
        match self.cat.dependency(s) {
            Dependency::None => true,
            Dependency::On(d) => self.records[d.0 as usize].state == ServiceState::Started,
            Dependency::Unknown(_) => false,
        }
    }

    pub(super) fn occupy(&mut self, s: ServiceIndex, node: NodeId) {
        let slot = self.placed.entry(node).or_default();
        if slot.services.insert(s) && self.cat.service(s).exclusive {
            slot.exclusive += 1;
        }
    }

    pub(super) fn vacate(&mut self, s: ServiceIndex, node: NodeId) {
        if let Some(slot) = self.placed.get_mut(&node) {
            if slot.services.remove(&s) && self.cat.service(s).exclusive {
                slot.exclusive -= 1;
            }
            if slot.services.is_empty() {
                self.placed.remove(&node);
            }
        }
    }

    /// Changes the record of `s`, publishes it, and wakes dependants whose dependency
    /// changed between started and not.
    pub(super) fn update(
        &mut self,
        s: ServiceIndex,
        out: &mut Vec<Action>,
        f: impl FnOnce(&mut ServiceRecord),
    ) {
        let i = s.0 as usize;
        let was_started = self.records[i].state == ServiceState::Started;
        f(&mut self.records[i]);
        let r = &mut self.records[i];
        r.flags = r.flags.with_frozen(self.intents[i].frozen);
        let is_started = r.state == ServiceState::Started;
        out.push(Action::Record {
            service: s,
            record: r.clone(),
        });
        if was_started != is_started {
            let deps = self.cat.dependants(s).to_vec();
            self.dirty.extend(deps);
        }
    }

    pub(super) fn start(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        node: NodeId,
        cause: StartCause,
        out: &mut Vec<Action>,
    ) {
        self.occupy(s, node);
        self.work[s.0 as usize].pending = Some(Op::Start { node, cause });
        self.update(s, out, |r| {
            if r.owner.is_some() && r.owner != Some(node) {
                r.last_owner = r.owner;
            }
            let from_recovering = r.state == ServiceState::Recovering;
            r.state = ServiceState::Starting;
            r.owner = Some(node);
            r.restarts = if from_recovering && cause == StartCause::Recovery {
                r.restarts.saturating_add(1)
            } else {
                0
            };
            r.transition = Some(now);
        });
        out.push(Action::Start {
            service: s,
            node,
            cause,
        });
    }

    pub(super) fn stop(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        node: NodeId,
        cause: StopCause,
        out: &mut Vec<Action>,
    ) {
        self.work[s.0 as usize].pending = Some(Op::Stop { node, cause });
        let state = if cause == StopCause::Recovery {
            ServiceState::Recoverable
        } else {
            ServiceState::Stopping
        };
        self.update(s, out, |r| {
            r.state = state;
            r.owner = Some(node);
            r.transition = Some(now);
        });
        out.push(Action::Stop {
            service: s,
            node,
            cause,
        });
    }

    /// Ends with `s` not running anywhere, in `state`, last run on `node`.
    pub(super) fn settle(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        node: Option<NodeId>,
        state: ServiceState,
        out: &mut Vec<Action>,
    ) {
        let i = s.0 as usize;
        if let Some(n) = node {
            if self.work[i].stuck != Some(n) {
                self.vacate(s, n);
            }
        }
        self.work[i].pending = None;
        if state != ServiceState::Recovering {
            self.work[i].episode = None;
        }
        self.update(s, out, |r| {
            r.state = state;
            if node.is_some() {
                r.last_owner = node;
            }
            r.owner = None;
            if state == ServiceState::Failed {
                r.restarts = 0;
            }
            // §1.4: a finished stop keeps only the frozen flag
            r.flags = Flags(r.flags.0 & Flags::FROZEN);
            r.transition = Some(now);
        });
        self.dirty.insert(s);
    }

    pub(super) fn add_hold(&mut self, s: ServiceIndex, h: Hold) {
        let w = &mut self.work[s.0 as usize];
        if !w.holds.contains(&h) {
            w.holds.push(h);
            self.holds.entry(h).or_default().insert(s);
        }
    }

    pub(super) fn release(&mut self, h: Hold) {
        if let Some(set) = self.holds.remove(&h) {
            for s in set {
                self.work[s.0 as usize].holds.retain(|x| *x != h);
                self.dirty.insert(s);
            }
        }
    }

    pub(super) fn clear_holds(&mut self, s: ServiceIndex) {
        let hs = std::mem::take(&mut self.work[s.0 as usize].holds);
        for h in hs {
            if let Some(set) = self.holds.get_mut(&h) {
                set.remove(&s);
                if set.is_empty() {
                    self.holds.remove(&h);
                }
            }
        }
    }
}
