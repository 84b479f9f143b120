//! What the shell and the local administrator ask of this node: `clusvcadm` requests (sent
//! to the coordinator through the group, answered from it), `clusvcadm -l`, the shutdown
//! (hand-over, then [`Action::Exit`]) and the VMs adopted at start-up.

use super::*;

impl Coordinator {
    /// Whether this node is locked (`clusvcadm -l`).
    pub fn locked(&self) -> bool {
        self.local.locked
    }

    /// Whether rgmanagerd shuts down here.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// VMs found running here when rgmanagerd started: they are this node's again (reported,
    /// checked, stopped when told) instead of being started a second time. Call before
    /// [`Coordinator::start`].
    pub fn adopt_running(&mut self, now: Millis, services: &[ServiceIndex]) {
        for &s in services {
            if self.cat.contains(s) {
                info!(service = %self.cat.service(s).name, "running here: adopted");
                self.local.adopt(now, s);
            }
        }
    }

    pub(super) fn frozen(&self, s: ServiceIndex) -> bool {
        self.synced && self.intents.get(s.0 as usize).is_some_and(|i| i.frozen)
    }

    pub(super) fn on_shutdown(&mut self, now: Millis, hand_off: bool, out: &mut Vec<Action>) {
        if self.exited {
            return;
        }
        self.shutting_down = true;
        self.local.leaving = true;
        if hand_off && self.quorate && self.synced && self.coordinator.is_some() {
            if !self.announced {
                info!("shutting down: handing the services of this node over");
                self.announced = true;
                self.msgs.push(Msg::Leaving {
                    running: self.local.running(),
                });
            }
            return;
        }
        warn!("shutting down: stopping the services of this node (frozen ones stay)");
        let intents = self.intents.clone();
        let synced = self.synced;
        let frozen =
            move |s: ServiceIndex| synced && intents.get(s.0 as usize).is_some_and(|i| i.frozen);
        self.local.stop_all_but(now, frozen, out, &mut self.msgs);
    }

    pub(super) fn check_exit(&mut self, out: &mut Vec<Action>) {
        if !self.shutting_down || self.exited {
            return;
        }
        let idle = {
            let frozen = |s: ServiceIndex| self.frozen(s);
            self.local.idle_but(frozen)
        };
        if idle {
            info!("nothing left to hand over or stop here; leaving the group");
            self.exited = true;
            out.push(Action::Exit);
        }
    }

    pub(super) fn on_admin(
        &mut self,
        id: u64,
        service: ServiceIndex,
        request: Request,
        out: &mut Vec<Action>,
    ) {
        if !self.cat.contains(service) {
            out.push(Action::Reply {
                id,
                code: RG_ENOSERVICE,
            });
            return;
        }
        if !self.quorate {
            out.push(Action::Reply {
                id,
                code: RG_EQUORUM,
            });
            return;
        }
        if !self.synced || self.coordinator.is_none() || !self.requests.insert(id) {
            out.push(Action::Reply {
                id,
                code: RG_EAGAIN,
            });
            return;
        }
        self.msgs.push(Msg::Request {
            origin: self.cfg.me,
            id,
            service,
            request: request.into(),
        });
    }

    pub(super) fn on_request(
        &mut self,
        now: Millis,
        origin: NodeId,
        id: u64,
        service: ServiceIndex,
        request: AdminRequest,
        out: &mut Vec<Action>,
    ) {
        if self.coordinator.is_none() && origin == self.cfg.me && self.requests.remove(&id) {
            out.push(Action::Reply {
                id,
                code: RG_EAGAIN,
            });
            return;
        }
        if self.coordinator != Some(self.cfg.me) {
            return;
        }
        let code = match (self.ready, self.engine.as_mut()) {
            (true, Some(e)) => {
                let mut acts = Vec::new();
                let r = e.request(now, service, request.into(), &mut acts);
                self.publish(acts, out);
                match r {
                    Ok(()) => 0,
                    Err(err) => {
                        debug!(error = %err, "request refused");
                        err.code()
                    }
                }
            }
            _ => RG_EAGAIN,
        };
        self.msgs.push(Msg::Reply { origin, id, code });
    }
}
