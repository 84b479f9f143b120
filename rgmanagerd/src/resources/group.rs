//! One resource group: start, stop, status and the start-up probe over its compiled tree.
//!
//! ```text
//!   start:  r1 → r2 → … → rn      first failure ends it: GroupError::Start names the resource;
//!                                 the caller stops the whole group to recover (rgmanager's way)
//!   stop:   rn → … → r2 → r1      every resource is tried; fails if any failed
//!   status: r1 → … → rn           per resource the deepest due check, else its last result
//!   probe:  every resource's shallowest check → Running (all up) | Stopped (none) | Partial
//! ```

use std::time::Instant;

use libcluster::config::{Rm, Service};
use tracing::{debug, info, warn};

use super::agent::{Agent, Invocation, Op};
use super::error::{AgentError, GroupError, ResourceError};
use super::schedule::{run_limit, StatusAction, StatusSchedule};
use super::tree::{self, CompiledResource};
use super::AgentConfig;

/// What a probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Every resource passed its status check (and there is at least one).
    Running,
    /// No resource is up (or the group has none).
    Stopped,
    /// Some are up, some are not.
    Partial,
}

/// Per-resource state kept between operations.
#[derive(Clone, Debug)]
struct Slot {
    /// Started (or adopted) here and not stopped since.
    started: bool,
    schedule: StatusSchedule,
}

/// A compiled `<service>` and the state of its resources on this node.
#[derive(Clone, Debug)]
pub struct ResourceGroup {
    service: String,
    resources: Vec<CompiledResource>,
    slots: Vec<Slot>,
    agents: AgentConfig,
    /// For a group without resources: whether it was started here.
    running: bool,
}

impl ResourceGroup {
    /// Compiles `service` (see [`tree`]); nothing runs.
    pub fn compile(
        service: &Service,
        rm: &Rm,
        agents: &AgentConfig,
    ) -> Result<ResourceGroup, ResourceError> {
        let resources = tree::compile(service, rm, agents)?;
        let slots = resources
            .iter()
            .map(|r| Slot {
                started: false,
                schedule: StatusSchedule::new(&r.actions.status),
            })
            .collect();
        Ok(ResourceGroup {
            service: service.id(),
            resources,
            slots,
            agents: agents.clone(),
            running: false,
        })
    }

    /// `service:NAME`.
    pub fn name(&self) -> &str {
        &self.service
    }

    /// The resources in start order.
    pub fn resources(&self) -> &[CompiledResource] {
        &self.resources
    }

    /// Resource names (`type:primary`) in start order.
    pub fn start_order(&self) -> Vec<&str> {
        self.resources.iter().map(|r| r.name.as_str()).collect()
    }

    /// Resource names in stop order: the exact reverse.
    pub fn stop_order(&self) -> Vec<&str> {
        self.resources
            .iter()
            .rev()
            .map(|r| r.name.as_str())
            .collect()
    }

    /// Starts every resource in order; stops at the first failure.
    pub async fn start(&mut self) -> Result<(), GroupError> {
        info!(service = %self.service, resources = self.resources.len(), "starting resource group");
        self.running = true;
        for i in 0..self.resources.len() {
            let timeout = self.resources[i].actions.start_timeout;
            if let Err(source) = self.run(i, Op::Start, 0, timeout).await {
                let resource = self.resources[i].name.clone();
                warn!(service = %self.service, %resource, error = %source, "start failed");
                return Err(GroupError::Start {
                    service: self.service.clone(),
                    resource,
                    source,
                });
            }
            let slot = &mut self.slots[i];
            slot.started = true;
            slot.schedule.reset(Instant::now());
            info!(service = %self.service, resource = %self.resources[i].name, "started");
        }
        Ok(())
    }

    /// Stops every resource in reverse order, trying each even after a failure.
    pub async fn stop(&mut self) -> Result<(), GroupError> {
        info!(service = %self.service, resources = self.resources.len(), "stopping resource group");
        self.running = false;
        let mut failures = Vec::new();
        for i in (0..self.resources.len()).rev() {
            let timeout = self.resources[i].actions.stop_timeout;
            match self.run(i, Op::Stop, 0, timeout).await {
                Ok(()) => {
                    self.slots[i].started = false;
                    info!(service = %self.service, resource = %self.resources[i].name, "stopped");
                }
                Err(e) => {
                    warn!(service = %self.service, resource = %self.resources[i].name, error = %e, "stop failed");
                    failures.push((self.resources[i].name.clone(), e));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(GroupError::Stop {
                service: self.service.clone(),
                failures,
            })
        }
    }

    /// The status check of spec §3.1, now.
    pub async fn status(&mut self) -> Result<(), GroupError> {
        self.status_at(Instant::now()).await
    }

    /// The status check at `now`: per resource in start order, the deepest due check runs
    /// (its result is remembered); with none due, the last result stands (a failure is
    /// sticky until the group restarts). The first failure ends the check.
    pub async fn status_at(&mut self, now: Instant) -> Result<(), GroupError> {
        if self.resources.is_empty() {
            return if self.running {
                Ok(())
            } else {
                Err(GroupError::NotStarted {
                    service: self.service.clone(),
                })
            };
        }
        for i in 0..self.resources.len() {
            let due = self.slots[i].schedule.due(now);
            if let Some(action) = due {
                let result = self.check(i, action).await;
                let failure = result.err().map(|e| e.to_string());
                self.slots[i].schedule.ran(action, now, failure);
            }
            if let Some(last) = self.slots[i].schedule.last() {
                if let Some(reason) = &last.failure {
                    return Err(GroupError::Status {
                        service: self.service.clone(),
                        resource: self.resources[i].name.clone(),
                        depth: last.depth,
                        reason: reason.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs every resource's shallowest check, whatever its schedule, to learn whether the
    /// group is up here (daemon start-up). A `Running` group is adopted: marked started,
    /// with fresh schedules.
    pub async fn probe(&mut self) -> Probe {
        let mut up = 0;
        for i in 0..self.resources.len() {
            let action = self.slots[i].schedule.shallowest();
            match self.check(i, action).await {
                Ok(()) => up += 1,
                Err(e) => {
                    debug!(service = %self.service, resource = %self.resources[i].name, error = %e, "probe: not up")
                }
            }
        }
        let found = match up {
            0 => Probe::Stopped,
            n if n == self.resources.len() => Probe::Running,
            _ => Probe::Partial,
        };
        if found == Probe::Running {
            let now = Instant::now();
            self.running = true;
            for s in &mut self.slots {
                s.started = true;
                s.schedule.reset(now);
            }
        }
        info!(service = %self.service, ?found, up, of = self.resources.len(), "probed resource group");
        found
    }

    async fn check(&self, i: usize, action: StatusAction) -> Result<(), AgentError> {
        let r = self.run(i, Op::Status, action.depth, action.timeout).await;
        if let Err(e) = &r {
            debug!(service = %self.service, resource = %self.resources[i].name, depth = action.depth, error = %e, "status check failed");
        }
        r
    }

    /// One agent operation under its bound (spec §3.1 timeouts; see [`run_limit`]).
    async fn run(
        &self,
        i: usize,
        op: Op,
        depth: u32,
        timeout: std::time::Duration,
    ) -> Result<(), AgentError> {
        let r = &self.resources[i];
        let (limit, meta_timeout_s, enforced) =
            run_limit(timeout, r.enforce_timeouts, self.agents.safety_timeout);
        let inv = Invocation {
            resource: r.name.clone(),
            op,
            depth,
            limit,
            enforced,
            env: ocf_env(r, &self.agents, depth, meta_timeout_s),
            started: self.slots[i].started,
        };
        let work = async {
            match op {
                Op::Start => r.agent.start(&inv).await,
                Op::Stop => r.agent.stop(&inv).await,
                Op::Status => r.agent.status(depth, &inv).await,
            }
        };
        // Native agents run several commands; this bounds them as a whole, and dropping
        // the future kills whatever it was running.
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err(AgentError::TimedOut {
                what: r.name.clone(),
                op: op.as_str(),
                after: limit,
                enforced,
            }),
        }
    }
}

/// The environment an agent program gets (spec/rgmanager.md §3.1).
pub fn ocf_env(
    r: &CompiledResource,
    agents: &AgentConfig,
    depth: u32,
    meta_timeout_s: u64,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = r
        .attrs
        .iter()
        .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.clone()))
        .collect();
    env.extend([
        ("OCF_RA_VERSION_MAJOR".to_string(), "1".to_string()),
        ("OCF_RA_VERSION_MINOR".to_string(), "0".to_string()),
        (
            "OCF_ROOT".to_string(),
            agents.ocf_root.display().to_string(),
        ),
        ("OCF_RESOURCE_INSTANCE".to_string(), r.name.clone()),
        ("OCF_RESOURCE_TYPE".to_string(), r.kind.clone()),
        ("OCF_CHECK_LEVEL".to_string(), depth.to_string()),
        (
            "OCF_RESKEY_RGMANAGER_meta_refcnt".to_string(),
            r.refcnt.to_string(),
        ),
        (
            "OCF_RESKEY_RGMANAGER_meta_timeout".to_string(),
            meta_timeout_s.to_string(),
        ),
    ]);
    env
}
