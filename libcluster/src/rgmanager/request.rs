//! Administrator requests (`clusvcadm`, spec/rgmanager.md §2.11, §4.4, §5.1).

use super::catalog::ServiceIndex;
use super::domain::{exclusive_allows, score, Score};
use super::engine::{Action, Engine, StartCause, StopCause};
use super::state::ServiceState;
use crate::{Millis, NodeId};
use std::fmt;

/// What an administrator asks for one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `-e [-m NODE]`: enable and start. `target` is the node named with `-m`, or the node
    /// the request arrived on for a plain `-e`; `None` (`-F`) places by failover domain.
    Enable {
        /// Where to start it.
        target: Option<NodeId>,
    },
    /// `-d`: stop and disable.
    Disable,
    /// `-s`: stop; restarted at the next node event.
    Stop,
    /// `-r [-m NODE]`: stop, then start elsewhere.
    Relocate {
        /// The preferred target.
        target: Option<NodeId>,
    },
    /// `-M -m NODE`: live-migrate.
    Migrate {
        /// The target.
        target: NodeId,
    },
    /// `-R`: stop and start on the same node.
    Restart,
    /// `-Z`: freeze.
    Freeze,
    /// `-U`: unfreeze.
    Unfreeze,
}

/// Why a request was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// No such service (`RG_ENOSERVICE`).
    NoService {
        /// The index asked for.
        service: ServiceIndex,
    },
    /// The decision maker is not quorate (`RG_EQUORUM`).
    NoQuorum,
    /// The service is frozen (`RG_EFROZEN`).
    Frozen,
    /// An operation on it is in progress (`RG_EAGAIN`).
    Busy {
        /// Its state.
        state: ServiceState,
    },
    /// Not possible in its state: enabling a failed service, migrating a stopped one
    /// (`RG_EFAIL`).
    Refused {
        /// Its state.
        state: ServiceState,
    },
    /// It runs already (`RG_ERUN`; clusvcadm exits 0).
    AlreadyRunning {
        /// Where.
        node: NodeId,
    },
    /// The operation does not apply to it: migrating a non-migratory service, relocating a
    /// disabled one (`RG_EINVAL`).
    Invalid,
    /// The target is not an online member (`RG_ENODE`).
    NodeDown {
        /// The target.
        node: NodeId,
    },
    /// The target breaks the domain or exclusive rule, or a dependency is not running
    /// (`RG_EDEPEND`).
    Dependency,
    /// No node can run it (`RG_EFAIL` from a start that finds no target).
    NowhereToRun,
    /// Its last owner died and is not fenced yet (`RG_EFENCE`): starting it anywhere could
    /// run it twice (F1).
    FencePending,
    /// The target is locked by `clusvcadm -l` or its rgmanagerd shuts down (`RG_EAGAIN`).
    Locked {
        /// The target.
        node: NodeId,
    },
}

impl RequestError {
    /// The original's result code (negative `RG_E*`, spec §5.1).
    pub fn code(&self) -> i32 {
        match self {
            RequestError::NoService { .. } => -4,
            RequestError::NoQuorum => -9,
            RequestError::Frozen => -11,
            RequestError::Busy { .. } | RequestError::Locked { .. } => -6,
            RequestError::Refused { .. } | RequestError::NowhereToRun => -1,
            RequestError::AlreadyRunning { .. } => -10,
            RequestError::Invalid => -8,
            RequestError::NodeDown { .. } => -12,
            RequestError::Dependency => -7,
            RequestError::FencePending => -13,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NoService { service } => write!(f, "service {service} does not exist"),
            RequestError::NoQuorum => write!(f, "operation requires quorum"),
            RequestError::Frozen => write!(f, "service is frozen"),
            RequestError::Busy { state } => write!(f, "service is {state}; try again"),
            RequestError::Refused { state } => {
                write!(f, "not possible while the service is {state}")
            }
            RequestError::AlreadyRunning { node } => {
                write!(f, "service is already running on node {node}")
            }
            RequestError::Invalid => write!(f, "invalid operation for this service"),
            RequestError::NodeDown { node } => {
                write!(f, "target node {node} is not an online member")
            }
            RequestError::Dependency => write!(
                f,
                "operation violates a domain, exclusive or dependency rule"
            ),
            RequestError::NowhereToRun => write!(f, "no member can run the service"),
            RequestError::FencePending => {
                write!(f, "fencing of its last owner is pending; try again later")
            }
            RequestError::Locked { node } => {
                write!(
                    f,
                    "node {node} takes no services now (locked or shutting down); try again"
                )
            }
        }
    }
}

impl std::error::Error for RequestError {}

impl Engine {
    /// Carries out an administrator request on the decision maker: changes the intent and
    /// pushes the operations it needs (then a decision round). The outcome reaches the
    /// requester as [`Action::Record`]s.
    pub fn request(
        &mut self,
        now: Millis,
        s: ServiceIndex,
        req: Request,
        out: &mut Vec<Action>,
    ) -> Result<(), RequestError> {
        if !self.cat.contains(s) {
            return Err(RequestError::NoService { service: s });
        }
        if !self.quorate {
            return Err(RequestError::NoQuorum);
        }
        let i = s.0 as usize;
        let state = self.records[i].state;
        let owner = self.records[i].owner;
        let frozen = self.intents[i].frozen;
        if self.work[i].pending.is_some() && !matches!(req, Request::Freeze | Request::Unfreeze) {
            return Err(RequestError::Busy { state });
        }
        if frozen && !matches!(req, Request::Unfreeze | Request::Freeze) {
            return Err(RequestError::Frozen);
        }
        let starts = matches!(
            req,
            Request::Enable { .. } | Request::Relocate { .. } | Request::Restart
        );
        if starts && !self.work[i].holds.is_empty() {
            return Err(RequestError::FencePending);
        }
        if starts && self.copy_elsewhere(s) {
            return Err(RequestError::Busy { state });
        }
        let stuck = self.work[i].stuck;
        match req {
            Request::Freeze | Request::Unfreeze => {
                if !matches!(
                    state,
                    ServiceState::Stopped | ServiceState::Started | ServiceState::Disabled
                ) {
                    return Err(RequestError::Busy { state });
                }
                self.intents[i].frozen = req == Request::Freeze;
                self.update(s, out, |_| {});
                self.dirty.insert(s);
            }
            Request::Enable { target } => {
                if state == ServiceState::Failed {
                    return Err(RequestError::Refused { state });
                }
                if let (ServiceState::Started, Some(o)) = (state, owner) {
                    return Err(RequestError::AlreadyRunning { node: o });
                }
                if let Some(t) = target {
                    if !self.members.contains(&t) {
                        return Err(RequestError::NodeDown { node: t });
                    }
                    if !self.startable(t) {
                        return Err(RequestError::Locked { node: t });
                    }
                }
                if !self.dependency_met(s) {
                    return Err(RequestError::Dependency);
                }
                let node = match (stuck, target) {
                    (Some(n), _) => Some(n),
                    (None, Some(t)) => {
                        let dv = self.view(s);
                        if score(dv.as_ref(), t, true, None) == Score::Illegal {
                            return Err(RequestError::NowhereToRun);
                        }
                        // An exclusive conflict on the asked node relocates (§2.8).
                        self.user_target(s, Some(t), None)
                    }
                    (None, None) => self.user_target(s, None, None),
                };
                let Some(node) = node else {
                    return Err(RequestError::NowhereToRun);
                };
                self.intents[i].enabled = true;
                self.intents[i].target = target;
                self.work[i].parked = false;
                self.start(now, s, node, StartCause::User, out);
            }
            Request::Disable => {
                self.intents[i].enabled = false;
                match (state.occupies_owner(), owner) {
                    (true, Some(o)) => self.stop(now, s, o, StopCause::Disable, out),
                    (false, _) if stuck.is_some_and(|n| self.members.contains(&n)) => {
                        let n = stuck.unwrap_or(NodeId(0));
                        self.stop(now, s, n, StopCause::Disable, out)
                    }
                    _ => self.settle(now, s, None, ServiceState::Disabled, out),
                }
            }
            Request::Stop => match (state, owner) {
                (ServiceState::Started, Some(o)) => self.stop(now, s, o, StopCause::User, out),
                (ServiceState::Failed, _) => return Err(RequestError::Refused { state }),
                _ => {
                    self.settle(now, s, None, ServiceState::Stopped, out);
                    self.work[i].parked = true;
                }
            },
            Request::Relocate { target } => {
                if matches!(state, ServiceState::Disabled | ServiceState::Uninitialized) {
                    return Err(RequestError::Invalid);
                }
                if let Some(t) = target {
                    if !self.members.contains(&t) {
                        return Err(RequestError::NodeDown { node: t });
                    }
                    if Some(t) != owner && !self.startable(t) {
                        return Err(RequestError::Locked { node: t });
                    }
                    if Some(t) != owner && !self.legal(s, t) {
                        return Err(RequestError::Dependency);
                    }
                }
                self.intents[i].target = target;
                match (state, owner) {
                    (ServiceState::Started, Some(o)) => {
                        self.stop(now, s, o, StopCause::Relocate { to: target }, out)
                    }
                    (ServiceState::Failed, _) => return Err(RequestError::Refused { state }),
                    _ => {
                        let Some(t) = self.user_target(s, target, None) else {
                            return Err(RequestError::NowhereToRun);
                        };
                        self.work[i].parked = false;
                        self.start(now, s, t, StartCause::User, out);
                    }
                }
            }
            Request::Migrate { target } => {
                if !self.cat.service(s).migratory {
                    return Err(RequestError::Invalid);
                }
                if !self.members.contains(&target) {
                    return Err(RequestError::NodeDown { node: target });
                }
                if Some(target) != owner && !self.startable(target) {
                    return Err(RequestError::Locked { node: target });
                }
                let (ServiceState::Started, Some(o)) = (state, owner) else {
                    return Err(match state {
                        ServiceState::Recovering | ServiceState::Recoverable => {
                            RequestError::Busy { state }
                        }
                        _ => RequestError::Refused { state },
                    });
                };
                if o == target {
                    return Ok(());
                }
                let dv = self.view(s);
                let legal = score(dv.as_ref(), target, true, None) != Score::Illegal
                    && exclusive_allows(self.cat.service(s).exclusive, self.load(target));
                if !legal {
                    return Err(RequestError::Dependency);
                }
                self.intents[i].target = Some(target);
                self.migrate(now, s, o, target, out);
            }
            Request::Restart => match (state, owner) {
                (ServiceState::Started, Some(o)) => self.stop(now, s, o, StopCause::Restart, out),
                (ServiceState::Failed, _) => return Err(RequestError::Refused { state }),
                _ => {
                    let Some(t) = stuck.or_else(|| self.user_target(s, None, None)) else {
                        return Err(RequestError::NowhereToRun);
                    };
                    self.intents[i].enabled = true;
                    self.work[i].parked = false;
                    self.start(now, s, t, StartCause::User, out);
                }
            },
        }
        self.decide(now, out);
        Ok(())
    }
}
