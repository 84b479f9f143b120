//! This node's resource groups, one slot per service: what the daemon's executor calls.
//!
//! Operations on one service are serialized (rgmanager ran one thread per service): a
//! status check never overlaps the stop that recovers it. A start compiles the group afresh
//! from the cluster.conf it is given, and later stops and checks use that same tree, so a
//! configuration change never makes a stop miss what the start brought up; a service this
//! daemon has not started (a stop after a restart, a probe) is compiled on first use.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use libcluster::config::Rm;

use super::error::{GroupError, ResourceError};
use super::group::{Probe, ResourceGroup};
use super::AgentConfig;

type SlotRef = Arc<tokio::sync::Mutex<Option<ResourceGroup>>>;

/// The resource groups of this node.
#[derive(Debug, Default)]
pub struct ServiceGroups {
    agents: AgentConfig,
    slots: Mutex<BTreeMap<String, SlotRef>>,
}

impl ServiceGroups {
    /// No groups yet; agents found and bounded by `agents`.
    pub fn new(agents: AgentConfig) -> ServiceGroups {
        ServiceGroups {
            agents,
            slots: Mutex::new(BTreeMap::new()),
        }
    }

    /// The agent configuration.
    pub fn agents(&self) -> &AgentConfig {
        &self.agents
    }

    fn slot(&self, id: &str) -> SlotRef {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(slots.entry(id.to_string()).or_default())
    }

    fn compile(&self, rm: &Rm, id: &str) -> Result<ResourceGroup, GroupError> {
        let service = rm.services.iter().find(|s| s.id() == id).ok_or_else(|| {
            GroupError::Config(ResourceError::NoSuchService {
                service: id.to_string(),
            })
        })?;
        ResourceGroup::compile(service, rm, &self.agents).map_err(GroupError::Config)
    }

    /// Starts service `id` (`service:NAME`) from `rm`'s definition.
    pub async fn start(&self, rm: &Rm, id: &str) -> Result<(), GroupError> {
        let slot = self.slot(id);
        let mut g = slot.lock().await;
        g.insert(self.compile(rm, id)?).start().await
    }

    /// Stops service `id`: the tree it was started with, else `rm`'s definition.
    pub async fn stop(&self, rm: &Rm, id: &str) -> Result<(), GroupError> {
        let slot = self.slot(id);
        let mut g = slot.lock().await;
        let group = match &mut *g {
            Some(group) => group,
            empty => empty.insert(self.compile(rm, id)?),
        };
        group.stop().await
    }

    /// Checks service `id` (spec §3.1 scheduling).
    pub async fn status(&self, rm: &Rm, id: &str) -> Result<(), GroupError> {
        let slot = self.slot(id);
        let mut g = slot.lock().await;
        let group = match &mut *g {
            Some(group) => group,
            empty => empty.insert(self.compile(rm, id)?),
        };
        group.status().await
    }

    /// Probes service `id` at start-up (compiled afresh from `rm`).
    pub async fn probe(&self, rm: &Rm, id: &str) -> Result<Probe, GroupError> {
        let slot = self.slot(id);
        let mut g = slot.lock().await;
        Ok(g.insert(self.compile(rm, id)?).probe().await)
    }
}
