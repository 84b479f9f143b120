//! The loop: cmand and fenced events, local requests, VM results and the core's timer go
//! into the coordinator core; its actions come out as group messages, VM tasks, fenced
//! questions and replies.

use super::exec::{Exec, ExecDone};
use super::links::Fenced;
use super::{load_config, DaemonError, Options};
use clusterio::cmanlink::CmanLink;
use clusterio::history::History;
use clusterio::{EventPublisher, Incoming};
use libcluster::config::ClusterConf;
use libcluster::history::Event;
use libcluster::ipc::cman::CmanEvent;
use libcluster::ipc::rgmanager::{RgEvent, RgRequest, RgResponse};
use libcluster::membership::ViewId;
use libcluster::rgmanager::coord::{Action, CoordConfig, Coordinator, Input, GROUP};
use libcluster::rgmanager::{Catalog, ServiceIndex};
use libcluster::{Millis, NodeId};
use rgmanagerd::driver::AnyDriver;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// A started VM is checked this often (vm.sh's depth-0 status: 30 s; ours is faster
/// because the check is a QMP query).
const STATUS_INTERVAL_MS: u64 = 5000;

/// How long a SIGTERM waits for the services of this node to be handed over (live
/// migrations, relocations) before it stops them here (`RGMANAGER_HANDOFF_TIMEOUT`, s).
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(120);
/// And how long stopping them here may take after that before rgmanagerd exits anyway
/// (the VMs that did not stop keep running; a restarted rgmanagerd adopts them).
const STOP_TIMEOUT: Duration = Duration::from_secs(150);

/// A clusvcadm call in progress.
pub struct Pending {
    /// The call, answered once.
    pub call: Incoming<RgRequest, RgResponse>,
    /// The service it is about.
    pub service: String,
    /// What it asked.
    pub request: libcluster::rgmanager::Request,
}

/// The daemon's state around the core.
pub struct Shell {
    pub(super) opts: Options,
    pub(super) conf: Arc<ClusterConf>,
    pub(super) cman: CmanLink,
    fenced: Fenced,
    pub(super) core: Coordinator,
    exec: Exec,
    done_rx: Option<mpsc::Receiver<ExecDone>>,
    pub(super) events: EventPublisher<RgEvent>,
    history: Option<History>,
    started: Instant,
    out: Vec<Action>,
    /// Members of the rgmanager group.
    pub(super) group_members: Vec<u32>,
    pub(super) quorate: bool,
    /// Local clusvcadm calls waiting for the core's reply: id → the call.
    pub(super) waiting: BTreeMap<u64, Pending>,
    /// Accepted calls waiting for their service to reach the state the action leads to
    /// (clusvcadm answers when the action is done, as the original did).
    settling: Vec<(Pending, Instant)>,
    pub(super) next_admin: u64,
    /// When SIGTERM came (the shutdown's clock), and whether the hand-over was given up.
    shutdown: Option<(Instant, bool)>,
    /// The core said Exit: the group is left, the loop ends.
    exit: bool,
    /// What subscribers were last told, per service.
    published: BTreeMap<String, libcluster::rgmanager::ServiceRecord>,
}

impl Shell {
    /// A shell around a fresh core.
    pub fn new(
        opts: Options,
        conf: ClusterConf,
        cman: CmanLink,
        events: EventPublisher<RgEvent>,
        history: Option<History>,
        driver: AnyDriver,
    ) -> Shell {
        let conf = Arc::new(conf);
        let catalog = Catalog::from_config(&conf);
        let nodes = conf.clusternodes.iter().map(|n| n.nodeid).collect();
        let core = Coordinator::new(
            CoordConfig {
                me: NodeId(cman.me.id),
                incarnation: cman.me.incarnation,
                nodes,
                status_interval_ms: STATUS_INTERVAL_MS,
            },
            catalog,
        );
        let (tx, rx) = mpsc::channel(64);
        let listen: IpAddr = cman
            .me
            .address
            .parse()
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let exec = Exec::new(driver, Arc::clone(&conf), listen, tx);
        let fenced = Fenced::new(&opts.runtime_dir);
        Shell {
            opts,
            conf,
            cman,
            fenced,
            core,
            exec,
            done_rx: Some(rx),
            events,
            history,
            started: Instant::now(),
            out: Vec::new(),
            group_members: Vec::new(),
            quorate: false,
            waiting: BTreeMap::new(),
            next_admin: 0,
            shutdown: None,
            exit: false,
            published: BTreeMap::new(),
            settling: Vec::new(),
        }
    }

    pub(super) fn now(&self) -> Millis {
        Millis(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn record(&mut self, event: Event) {
        if let Some(h) = &mut self.history {
            h.record(event);
        }
    }

    fn service_name(&self, s: libcluster::rgmanager::ServiceIndex) -> String {
        let c = self.core.catalog();
        if c.contains(s) {
            c.service(s).name.clone()
        } else {
            format!("#{}", s.0)
        }
    }

    /// Feeds one input to the core and carries out what it asks.
    pub(super) async fn input(&mut self, input: Input) {
        let now = self.now();
        self.core.handle(now, input, &mut self.out);
        let mut actions = std::mem::take(&mut self.out);
        while !actions.is_empty() {
            for a in std::mem::take(&mut actions) {
                self.act(a).await;
            }
            // Answers produced synchronously (fenced questions) feed more actions.
            actions = std::mem::take(&mut self.out);
        }
        self.publish_changes();
        self.settle();
    }

    /// Answers a clusvcadm call with `code` and the service's owner now.
    fn answer(&self, p: Pending, code: i32) {
        let owner_after = self
            .core
            .catalog()
            .lookup(&p.service)
            .and_then(|s| self.core.record(s))
            .and_then(|r| r.owner)
            .and_then(|o| self.conf.node_by_id(o))
            .map(|n| n.name.clone());
        p.call
            .respond(Ok(RgResponse::ActionResult { code, owner_after }));
    }

    /// Answers the accepted calls whose action finished: the service reached the state the
    /// action leads to (`RG_ESUCCESS`), or failed (`RG_EFAIL`), or 10 minutes passed.
    fn settle(&mut self) {
        use libcluster::rgmanager::{Request, ServiceState as S};
        let mut still = Vec::new();
        for (p, since) in std::mem::take(&mut self.settling) {
            let rec = self
                .core
                .catalog()
                .lookup(&p.service)
                .and_then(|s| self.core.record(s))
                .cloned();
            let Some(rec) = rec else {
                self.answer(p, 0);
                continue;
            };
            let done = match &p.request {
                Request::Enable { .. } | Request::Relocate { .. } | Request::Restart => {
                    rec.state == S::Started
                }
                Request::Migrate { target } => {
                    rec.state == S::Started && rec.owner == Some(*target)
                }
                Request::Disable => rec.state == S::Disabled,
                Request::Stop => rec.state == S::Stopped,
                Request::Freeze | Request::Unfreeze => true,
            };
            // A migration that left the VM started where it was failed (spec §4.4).
            let stayed = matches!(p.request, Request::Migrate { .. })
                && rec.state == S::Started
                && since.elapsed() > Duration::from_secs(2);
            if done {
                self.answer(p, 0);
            } else if stayed {
                self.answer(p, libcluster::ipc::rgmanager::RG_ERELO);
            } else if rec.state == S::Failed {
                self.answer(p, libcluster::ipc::rgmanager::RG_EFAIL);
            } else if since.elapsed() > Duration::from_secs(600) {
                self.answer(p, libcluster::ipc::rgmanager::RG_EAGAIN);
            } else {
                still.push((p, since));
            }
        }
        self.settling = still;
    }

    /// Tells subscribers (`clustat -i`, scripts) about every service whose record changed.
    fn publish_changes(&mut self) {
        let c = self.core.catalog();
        let mut changed = Vec::new();
        for s in c.indexes() {
            let Some(r) = self.core.record(s) else {
                continue;
            };
            let name = &c.service(s).name;
            if self.published.get(name) != Some(r) {
                changed.push((name.clone(), r.clone(), self.core.intent(s).cloned()));
            }
        }
        for (name, record, intent) in changed {
            self.published.insert(name.clone(), record.clone());
            let ev = RgEvent::Service(Box::new(libcluster::ipc::rgmanager::RgService {
                name,
                record,
                intent: intent.unwrap_or_else(|| libcluster::rgmanager::Intent::initial(true)),
                last_transition_unix_s: None,
            }));
            if let Err(e) = self.events.publish(&ev) {
                warn!(error = %e, "cannot publish a service event");
            }
        }
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::JoinGroup => {
                if let Err(e) = self.cman.group_join(GROUP).await {
                    warn!(error = %e, "gave up joining the rgmanager group");
                }
            }
            Action::Send(payload) => {
                if let Err(e) = self.cman.group_send(GROUP, payload).await {
                    warn!(error = %e, "cannot send to the rgmanager group");
                }
            }
            Action::StartVm { service } => {
                let name = self.service_name(service);
                info!(service = %name, "starting");
                self.exec.start(service, name);
            }
            Action::StopVm { service } => {
                let name = self.service_name(service);
                info!(service = %name, "stopping");
                self.exec.stop(service, name);
            }
            Action::PrepareIncoming { service, from } => {
                let name = self.service_name(service);
                self.exec.prepare_incoming(service, name, from);
            }
            Action::AbortIncoming { service } => {
                let name = self.service_name(service);
                self.exec.abort_incoming(name);
            }
            Action::MigrateOut { service, to, uri } => {
                let name = self.service_name(service);
                info!(service = %name, to = to.0, %uri, "migrating");
                self.exec.migrate_out(service, name, to, uri);
            }
            Action::CheckStatus { service } => {
                let name = self.service_name(service);
                self.exec.check_status(service, name);
            }
            Action::IsFenced { node, incarnation } => {
                let fenced = self.fenced.is_fenced(node.0, incarnation).await;
                debug!(node = node.0, incarnation, fenced, "asked fenced");
                let now = self.now();
                self.core.handle(
                    now,
                    Input::FenceAnswer {
                        node,
                        incarnation,
                        fenced,
                    },
                    &mut self.out,
                );
            }
            Action::Exit => {
                if let Err(e) = self.cman.group_leave(GROUP).await {
                    warn!(error = %e, "cannot leave the rgmanager group; exiting anyway");
                }
                info!("services handed over or stopped; rgmanagerd exits");
                self.exit = true;
            }
            Action::Reply { id, code } => {
                if let Some(p) = self.waiting.remove(&id) {
                    if code == 0 {
                        self.settling.push((p, Instant::now()));
                    } else {
                        self.answer(p, code);
                    }
                }
            }
        }
    }

    /// The index a finished operation's service has now (a new configuration may have moved
    /// it, or dropped the service).
    fn index_now(&self, was: ServiceIndex, name: &str) -> Option<ServiceIndex> {
        let c = self.core.catalog();
        if c.contains(was) && c.service(was).name == name {
            return Some(was);
        }
        let now = c.lookup(name);
        if now.is_none() {
            debug!(service = %name, "result for a service no longer configured");
        }
        now
    }

    async fn exec_done(&mut self, d: ExecDone) {
        match d {
            ExecDone::Vm {
                service,
                name,
                result,
                record,
            } => {
                self.record(record);
                if let Some(service) = self.index_now(service, &name) {
                    self.input(Input::VmDone { service, result }).await;
                }
            }
            ExecDone::Status {
                service,
                name,
                running,
            } => {
                // The core says whether that is a failure (a sweep for VMs it does not hold
                // expects most of them not to run here).
                if !running {
                    debug!(service = %name, "status check: not running here");
                }
                if let Some(service) = self.index_now(service, &name) {
                    self.input(Input::Status { service, running }).await;
                }
            }
        }
    }

    async fn cman_event(&mut self, ev: CmanEvent) -> Result<(), DaemonError> {
        let input = match ev {
            CmanEvent::View {
                generation,
                coordinator,
                members,
            } => {
                let inc = members
                    .iter()
                    .find(|(id, _)| *id == coordinator)
                    .map_or(0, |(_, i)| *i);
                Input::ViewInstalled {
                    view: ViewId {
                        epoch: generation,
                        coordinator: NodeId(coordinator),
                        incarnation: inc,
                    },
                    members: members.into_iter().map(|(n, i)| (NodeId(n), i)).collect(),
                }
            }
            CmanEvent::Quorum { quorate, .. } => {
                if quorate != self.quorate {
                    info!(quorate, "quorum changed");
                }
                self.quorate = quorate;
                Input::Quorum { quorate }
            }
            CmanEvent::GroupView {
                group,
                generation,
                members,
                coordinator,
                coordinator_incarnation,
                seq,
                ..
            } if group == GROUP => {
                self.group_members = members.clone();
                Input::GroupView {
                    view: ViewId {
                        epoch: generation,
                        coordinator: NodeId(coordinator),
                        incarnation: coordinator_incarnation,
                    },
                    seq,
                    members: members.into_iter().map(NodeId).collect(),
                }
            }
            CmanEvent::Deliver {
                group,
                from,
                payload,
                ..
            } if group == GROUP => Input::Deliver {
                from: NodeId(from),
                payload,
            },
            CmanEvent::ConfigChanged { version } => match load_config(&self.opts.config) {
                // At this point of cmand's order on every node: the services carry over by
                // name, new ones start as configured, removed ones are left alone.
                Ok(conf) => {
                    info!(
                        version,
                        "cluster.conf reloaded: services, domains, VM definitions"
                    );
                    let conf = Arc::new(conf);
                    self.exec.set_config(Arc::clone(&conf));
                    let catalog = Catalog::from_config(&conf);
                    self.conf = conf;
                    Input::Reconfigure { catalog }
                }
                Err(e) => {
                    warn!(error = %e, "cannot reload cluster.conf; the services keep the configuration they had");
                    return Ok(());
                }
            },
            CmanEvent::Shutdown { reason } => {
                return Err(DaemonError::Cman(format!(
                    "cmand is shutting down: {reason}"
                )))
            }
            _ => return Ok(()),
        };
        let view = matches!(input, Input::ViewInstalled { .. });
        self.input(input).await;
        if view {
            self.learn_incarnations().await;
        }
        Ok(())
    }

    /// Tells the core the latest incarnation cmand knows of every node, members or not: a
    /// cold start waits for absent nodes to be fenced in *that* life.
    async fn learn_incarnations(&mut self) {
        let nodes = self
            .cman
            .nodes()
            .await
            .into_iter()
            .filter(|n| n.id != 0 && n.incarnation > 0)
            .map(|n| (NodeId(n.id), n.incarnation))
            .collect();
        self.input(Input::Incarnations { nodes }).await;
    }

    /// Runs until SIGTERM/SIGINT or until cmand goes away.
    pub async fn run(
        &mut self,
        mut requests: mpsc::Receiver<Incoming<RgRequest, RgResponse>>,
    ) -> Result<(), DaemonError> {
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| DaemonError::Cman(e.to_string()))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| DaemonError::Cman(e.to_string()))?;
        let mut done_rx = self
            .done_rx
            .take()
            .ok_or(DaemonError::Cman("loop ran twice".into()))?;
        self.record(Event::Start);
        if let Some(st) = self.cman.status().await {
            self.quorate = st.quorate;
            self.learn_incarnations().await;
            let nodes = self.cman.nodes().await;
            let members: Vec<(NodeId, u64)> = nodes
                .iter()
                .filter(|n| n.id != 0 && n.state == libcluster::ipc::cman::NodeState::Member)
                .map(|n| (NodeId(n.id), n.incarnation))
                .collect();
            let coordinator = st.coordinator.unwrap_or(0);
            let incarnation = members
                .iter()
                .find(|(n, _)| n.0 == coordinator)
                .map_or(0, |(_, i)| *i);
            self.input(Input::ViewInstalled {
                view: ViewId {
                    epoch: st.generation,
                    coordinator: NodeId(coordinator),
                    incarnation,
                },
                members,
            })
            .await;
            self.input(Input::Quorum {
                quorate: st.quorate,
            })
            .await;
        }
        self.adopt().await;
        let mut out = Vec::new();
        self.core.start(&mut out);
        for a in out {
            self.act(a).await;
        }
        self.fenced.ensure_subscribed().await;
        let mut fence_poll = tokio::time::interval(Duration::from_secs(2));
        loop {
            let wake = self
                .core
                .next_deadline()
                .map(|d| Duration::from_millis(d.0.saturating_sub(self.now().0)))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            let fence_event = async {
                match self.fenced.events.as_mut() {
                    Some(s) => s.next_event().await.ok().flatten().is_some(),
                    None => std::future::pending::<bool>().await,
                }
            };
            tokio::select! {
                ev = self.cman.events.next_event() => match ev {
                    Ok(Some(ev)) => self.cman_event(ev.body).await?,
                    Ok(None) => return Err(DaemonError::Cman("cmand closed the event stream".into())),
                    Err(e) => return Err(DaemonError::Cman(format!("event stream: {e}"))),
                },
                Some(inc) = requests.recv() => self.request(inc).await,
                Some(d) = done_rx.recv() => self.exec_done(d).await,
                got = fence_event => {
                    if !got {
                        self.fenced.events = None;
                    }
                    self.input(Input::FenceEvent).await;
                }
                _ = fence_poll.tick() => {
                    self.fenced.ensure_subscribed().await;
                    self.input(Input::FenceEvent).await;
                }
                _ = tokio::time::sleep(wake) => {
                    self.input(Input::Tick).await;
                    if self.shutdown_overdue() {
                        return Ok(());
                    }
                }
                _ = term.recv() => self.signalled().await,
                _ = int.recv() => self.signalled().await,
            }
            if self.exit {
                return Ok(());
            }
        }
    }

    /// VMs and services found running here at start-up are this node's again: reported,
    /// checked, stopped when told, never started a second time (a VM that ran on while
    /// rgmanagerd was down or restarting must not also start elsewhere).
    async fn adopt(&mut self) {
        let catalog = self.core.catalog().clone();
        let mut adopted = Vec::new();
        for s in catalog.indexes() {
            let name = catalog.service(s).name.clone();
            if self.exec.probe_service(&name).await {
                info!(service = %name, "already running here; adopted");
                adopted.push(s);
            }
        }
        let now = self.now();
        self.core.adopt_running(now, &adopted);
    }

    /// SIGTERM/SIGINT: hand the services over (VMs migrate live), or, at a second signal,
    /// stop them here.
    async fn signalled(&mut self) {
        let hand_off = match self.shutdown {
            None => {
                info!("SIGTERM: handing the services of this node over before exiting");
                self.shutdown = Some((Instant::now(), false));
                true
            }
            Some((since, _)) => {
                warn!("signalled again: stopping the services of this node here");
                self.shutdown = Some((since, true));
                false
            }
        };
        self.input(Input::Shutdown { hand_off }).await;
    }

    /// The shutdown's patience: after the hand-over timeout the services are stopped
    /// here; after the stop timeout rgmanagerd exits whatever still runs.
    fn shutdown_overdue(&mut self) -> bool {
        let Some((since, given_up)) = self.shutdown else {
            return false;
        };
        let handoff = std::env::var("RGMANAGER_HANDOFF_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(HANDOFF_TIMEOUT, Duration::from_secs);
        if since.elapsed() > handoff + STOP_TIMEOUT {
            warn!("services still running after the stop timeout; exiting (a restarted rgmanagerd adopts them)");
            return true;
        }
        if !given_up && since.elapsed() > handoff {
            warn!(
                timeout_s = handoff.as_secs(),
                "hand-over timed out; stopping the services here"
            );
            self.shutdown = Some((since, true));
            let now = self.now();
            self.core
                .handle(now, Input::Shutdown { hand_off: false }, &mut self.out);
        }
        false
    }

    /// After the loop: record the exit.
    pub fn finish(&mut self, result: &Result<(), DaemonError>) {
        let reason = match result {
            Ok(()) => "stopped".to_string(),
            Err(e) => e.to_string(),
        };
        self.record(Event::Shutdown { reason });
    }
}
