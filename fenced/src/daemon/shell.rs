//! The loop: cmand events, local requests, agent results and the core's timer go into the
//! domain core; its actions come out as group messages, agent runs, events and log lines.

use super::{domain_settings, load_config, DaemonError, Options};
use clusterio::cmanlink::CmanLink;
use clusterio::history::History;
use clusterio::{EventPublisher, Incoming};
use fenced::runner::{self, Cancel, RunnerConfig, SearchPath};
use libcluster::config::ClusterConf;
use libcluster::fence::{plan, Action, AttemptOutcome, Domain, Input};
use libcluster::history::Event;
use libcluster::ipc::cman::{CmanEvent, CmanRequest};
use libcluster::ipc::fence::{FenceEvent, FenceHow, FenceRequest, FenceResponse, DOMAIN_GROUP};
use libcluster::{Millis, NodeId};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// Lines `fence_tool dump` returns.
const DUMP_LINES: usize = 5000;
/// How long a leave on SIGTERM may take before fenced exits anyway.
const LEAVE_GRACE: Duration = Duration::from_secs(3);

/// An agent attempt's result on its way back to the loop.
struct Done {
    victim: NodeId,
    attempt: u64,
    outcome: runner::AttemptOutcome,
}

/// The daemon's state around the core.
pub struct Shell {
    pub(super) opts: Options,
    pub(super) conf: ClusterConf,
    pub(super) cman: CmanLink,
    pub(super) domain: Domain,
    events: EventPublisher<FenceEvent>,
    history: Option<History>,
    dump: VecDeque<String>,
    started: Instant,
    runner: RunnerConfig,
    running: BTreeMap<u64, watch::Sender<bool>>,
    done_tx: mpsc::Sender<Done>,
    done_rx: Option<mpsc::Receiver<Done>>,
    out: Vec<Action>,
    leaving: Option<Instant>,
    left: bool,
}

impl Shell {
    /// A shell around a fresh core.
    pub fn new(
        opts: Options,
        conf: ClusterConf,
        cman: CmanLink,
        events: EventPublisher<FenceEvent>,
        history: Option<History>,
    ) -> Shell {
        let (nodes, settings) = domain_settings(&conf, &opts);
        let domain = Domain::new(NodeId(cman.me.id), nodes, settings);
        let mut runner = RunnerConfig::new(SearchPath::from_env());
        runner.timeout = opts.agent_timeout;
        let (done_tx, done_rx) = mpsc::channel(16);
        Shell {
            opts,
            conf,
            cman,
            domain,
            events,
            history,
            dump: VecDeque::new(),
            started: Instant::now(),
            runner,
            running: BTreeMap::new(),
            done_tx,
            done_rx: Some(done_rx),
            out: Vec::new(),
            leaving: None,
            left: false,
        }
    }

    fn now(&self) -> Millis {
        Millis(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn unix_s() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// Feeds one input to the core and carries out what it asks.
    pub(super) async fn input(&mut self, input: Input) {
        debug!(?input, "input");
        let now = self.now();
        self.domain
            .handle(now, Self::unix_s(), input, &mut self.out);
        let actions = std::mem::take(&mut self.out);
        for a in actions {
            self.act(a).await;
        }
    }

    /// Writes a history record, if the lab asked for them.
    fn record(&mut self, event: Event) {
        if let Some(h) = &mut self.history {
            h.record(event);
        }
    }

    /// A line for the log and for `fence_tool dump`.
    pub(super) fn log(&mut self, line: String) {
        info!("{line}");
        if self.dump.len() == DUMP_LINES {
            self.dump.pop_front();
        }
        self.dump.push_back(format!("{} {line}", Self::unix_s()));
    }

    /// The dump buffer, oldest first.
    pub(super) fn dump_lines(&self) -> Vec<String> {
        self.dump.iter().cloned().collect()
    }

    fn publish(&mut self, event: FenceEvent) {
        if let Err(e) = self.events.publish(&event) {
            warn!(error = %e, "cannot publish an event");
        }
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::Send(payload) => {
                if let Err(e) = self.cman.group_send(DOMAIN_GROUP, payload).await {
                    warn!(error = %e, "cannot send to the fence domain");
                }
            }
            Action::JoinGroup => self.join_group().await,
            Action::LeaveGroup => {
                let req = CmanRequest::GroupLeave {
                    group: DOMAIN_GROUP.into(),
                };
                if let Err(e) = self.cman.call(&req).await {
                    warn!(error = %e, "cannot leave the fence domain group");
                }
            }
            Action::Fence {
                victim,
                name,
                attempt,
            } => self.start_fencing(victim, name, attempt),
            Action::CancelFence { attempt, .. } => {
                if let Some(tx) = self.running.remove(&attempt) {
                    let _ = tx.send(true);
                }
            }
            Action::KillNode { node } => {
                self.log(format!("killing node {} (its fenced died)", node.0));
                let req = CmanRequest::Kill {
                    node: node.0.to_string(),
                };
                if let Err(e) = self.cman.call(&req).await {
                    warn!(error = %e, node = node.0, "cman kill failed");
                }
            }
            Action::Victim { node, incarnation } => {
                self.publish(FenceEvent::Victim {
                    node: node.0,
                    incarnation,
                });
            }
            Action::Fenced(record) => {
                if record.master == self.cman.me.id {
                    self.record(Event::Fenced {
                        victim: record.node,
                        victim_incarnation: record.incarnation,
                        how: record.how.as_str().to_string(),
                        method: record.method.clone(),
                        device: record.device.clone(),
                    });
                }
                if record.how == FenceHow::Override {
                    debug!(node = record.node, "acknowledged by an administrator");
                }
                self.publish(FenceEvent::Fenced(record));
            }
            Action::DomainChanged(info) => self.publish(FenceEvent::Domain(info)),
            Action::Log(line) => self.log(line),
            Action::Joined => debug!("domain joined"),
            Action::Left => {
                debug!("domain left");
                self.left = true;
            }
        }
    }

    async fn join_group(&mut self) {
        if let Err(e) = self.cman.group_join(DOMAIN_GROUP).await {
            warn!(error = %e, "gave up joining the fence domain group; `fence_tool join` retries");
        }
    }

    /// Runs the victim's methods once in a task; the result comes back as `Done`.
    fn start_fencing(&mut self, victim: NodeId, name: String, attempt: u64) {
        let incarnation = self
            .domain
            .victims()
            .into_iter()
            .find(|(n, _)| *n == victim)
            .map_or(0, |(_, inc)| inc);
        self.record(Event::FenceStart {
            victim: victim.0,
            victim_incarnation: incarnation,
        });
        let plan = plan::fence_plan(&self.conf, &name);
        let (cancel_tx, cancel_rx) = watch::channel(false);
        self.running.insert(attempt, cancel_tx);
        let runner = self.runner.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let mut cancel = Cancel::new(cancel_rx);
            let outcome = match plan {
                Ok(plan) => runner::fence_once(&name, &plan, &runner, &mut cancel).await,
                Err(e) => {
                    warn!(victim = %name, error = %e, "no fence plan");
                    runner::fence_once(&name, &[], &runner, &mut cancel).await
                }
            };
            let _ = done
                .send(Done {
                    victim,
                    attempt,
                    outcome,
                })
                .await;
        });
    }

    async fn fence_done(&mut self, d: Done) {
        self.running.remove(&d.attempt);
        for line in d.outcome.lines() {
            self.log(line);
        }
        let incarnation = self
            .domain
            .victims()
            .into_iter()
            .find(|(n, _)| *n == d.victim)
            .map_or(0, |(_, inc)| inc);
        self.record(Event::FenceAttempt {
            victim: d.victim.0,
            victim_incarnation: incarnation,
            success: d.outcome.success && !d.outcome.cancelled,
        });
        let outcome = AttemptOutcome {
            success: d.outcome.success && !d.outcome.cancelled,
            method: d.outcome.method.clone(),
            device: d.outcome.device.clone(),
        };
        self.input(Input::FenceDone {
            victim: d.victim,
            attempt: d.attempt,
            outcome,
        })
        .await;
    }

    /// cmand's event, as the core's input (events of other groups are dropped).
    async fn cman_event(&mut self, ev: CmanEvent) -> Result<(), DaemonError> {
        let input = match ev {
            CmanEvent::View {
                generation,
                members,
                ..
            } => Input::ClusterView {
                generation,
                members: members.into_iter().map(|(n, i)| (NodeId(n), i)).collect(),
            },
            CmanEvent::Quorum { quorate, .. } => Input::Quorum { quorate },
            CmanEvent::GroupView {
                group,
                generation,
                members,
                joined,
                left,
                ..
            } if group == DOMAIN_GROUP => {
                let ids = |v: Vec<u32>| v.into_iter().map(NodeId).collect();
                Input::GroupView {
                    generation,
                    members: ids(members),
                    joined: ids(joined),
                    left: ids(left),
                }
            }
            CmanEvent::Deliver {
                group,
                from,
                payload,
                ..
            } if group == DOMAIN_GROUP => Input::Deliver {
                from: NodeId(from),
                payload,
            },
            CmanEvent::ConfigChanged { version } => match load_config(&self.opts.config) {
                Ok(conf) => {
                    self.log(format!("cluster.conf version {version}: reloaded"));
                    let (nodes, settings) = domain_settings(&conf, &self.opts);
                    self.conf = conf;
                    Input::Reconfigure { nodes, settings }
                }
                Err(e) => {
                    warn!(error = %e, "cannot reload cluster.conf; keeping the old one");
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
        self.input(input).await;
        Ok(())
    }

    /// Runs until a leave completes (SIGTERM/SIGINT) or cmand goes away.
    pub async fn run(
        &mut self,
        mut requests: mpsc::Receiver<Incoming<FenceRequest, FenceResponse>>,
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
        match super::cman::snapshot(&mut self.cman).await {
            Ok(inputs) => {
                for i in inputs {
                    self.input(i).await;
                }
            }
            Err(e) => return Err(DaemonError::Cman(e.to_string())),
        }
        if self.opts.join {
            self.input(Input::Join).await;
        }
        loop {
            if self.left && self.leaving.is_some() {
                return Ok(());
            }
            if self.leaving.is_some_and(|t| t.elapsed() > LEAVE_GRACE) {
                warn!("leaving the fence domain took too long; exiting anyway");
                return Ok(());
            }
            let wake = self
                .domain
                .next_deadline()
                .map(|d| Duration::from_millis(d.0.saturating_sub(self.now().0)))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            tokio::select! {
                ev = self.cman.events.next_event() => match ev {
                    Ok(Some(ev)) => self.cman_event(ev.body).await?,
                    Ok(None) => return Err(DaemonError::Cman("cmand closed the event stream".into())),
                    Err(e) => return Err(DaemonError::Cman(format!("event stream: {e}"))),
                },
                Some(inc) = requests.recv() => self.request(inc).await,
                Some(d) = done_rx.recv() => self.fence_done(d).await,
                _ = tokio::time::sleep(wake) => self.input(Input::Tick).await,
                _ = term.recv() => self.begin_leave().await,
                _ = int.recv() => self.begin_leave().await,
            }
        }
    }

    async fn begin_leave(&mut self) {
        if self.leaving.is_some() {
            return;
        }
        self.leaving = Some(Instant::now());
        if self.domain.joined() {
            info!("signalled: leaving the fence domain");
            self.input(Input::Leave).await;
        } else {
            self.left = true;
        }
    }

    /// After the loop: stop running agents, record the exit.
    pub fn finish(&mut self, result: &Result<(), DaemonError>) {
        for (_, tx) in std::mem::take(&mut self.running) {
            let _ = tx.send(true);
        }
        let reason = match result {
            Ok(()) => "left the fence domain".to_string(),
            Err(e) => e.to_string(),
        };
        self.record(Event::Shutdown { reason });
    }
}
