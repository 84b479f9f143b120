//! Local requests: `clustat` (status, from this node's replica of the table) and
//! `clusvcadm` (actions, through the coordinator).

use super::shell::Shell;
use clusterio::Incoming;
use libcluster::ipc::cman::NodeState;
use libcluster::ipc::rgmanager::{
    RgMember, RgRequest, RgResponse, RgService, RgStatus, RG_EINVAL, RG_ENOSERVICE,
};
use libcluster::rgmanager::coord::Input;
use libcluster::rgmanager::{Intent, ServiceRecord};

impl Shell {
    /// Answers one request; actions are answered when the coordinator replies.
    pub(super) async fn request(&mut self, inc: Incoming<RgRequest, RgResponse>) {
        match inc.request.clone() {
            RgRequest::Status => {
                let status = self.status().await;
                inc.respond(Ok(RgResponse::Status(Box::new(status))));
            }
            RgRequest::Service { name } => {
                let found = self
                    .services()
                    .into_iter()
                    .find(|s| s.name == name)
                    .map(Box::new);
                inc.respond(Ok(RgResponse::Service(found)));
            }
            RgRequest::Action {
                service, request, ..
            } => {
                let Some(s) = self.core.catalog().lookup(&service) else {
                    inc.respond(Ok(RgResponse::ActionResult {
                        code: RG_ENOSERVICE,
                        owner_after: None,
                    }));
                    return;
                };
                self.next_admin += 1;
                let id = self.next_admin;
                self.waiting.insert(
                    id,
                    super::shell::Pending {
                        call: inc,
                        service,
                        request,
                    },
                );
                self.input(Input::Admin {
                    id,
                    service: s,
                    request,
                })
                .await;
            }
            RgRequest::Lock | RgRequest::Unlock => {
                let locked = matches!(inc.request, RgRequest::Lock);
                self.input(Input::Lock { locked }).await;
                inc.respond(Ok(RgResponse::Locked(self.core.locked())));
            }
            RgRequest::QueryLock => inc.respond(Ok(RgResponse::Locked(self.core.locked()))),
            RgRequest::Convalesce { .. } => inc.respond(Ok(RgResponse::ActionResult {
                code: RG_EINVAL,
                owner_after: None,
            })),
        }
    }

    /// Every service with this node's replica of its record and intent.
    fn services(&self) -> Vec<RgService> {
        let c = self.core.catalog();
        c.indexes()
            .map(|s| {
                let def = c.service(s);
                RgService {
                    name: def.name.clone(),
                    record: self
                        .core
                        .record(s)
                        .cloned()
                        .unwrap_or_else(ServiceRecord::new),
                    intent: self
                        .core
                        .intent(s)
                        .cloned()
                        .unwrap_or_else(|| Intent::initial(def.autostart)),
                    last_transition_unix_s: None,
                }
            })
            .collect()
    }

    /// What clustat shows: cmand's members with our flags, and the services.
    async fn status(&mut self) -> RgStatus {
        let st = self.cman.status().await;
        let nodes = self.cman.nodes().await;
        let master = self.core.coordinator().map(|n| n.0);
        let me = self.cman.me.id;
        let mut members: Vec<RgMember> = nodes
            .iter()
            .map(|n| RgMember {
                name: n.name.clone(),
                id: n.id,
                online: n.state == NodeState::Member,
                local: n.id == me,
                rgmanager: n.id != 0 && self.group_members.contains(&n.id),
                master: n.id != 0 && Some(n.id) == master,
                qdisk: n.id == 0,
                estranged: n.id != 0 && self.conf.node_by_id(libcluster::NodeId(n.id)).is_none(),
            })
            .collect();
        members.sort_by_key(|m| (m.id == 0, m.id));
        RgStatus {
            cluster_name: self.conf.name.clone(),
            cluster_id: st.as_ref().map_or(0, |s| s.cluster_id),
            generation: st.as_ref().map_or(0, |s| s.generation),
            quorate: st.as_ref().is_some_and(|s| s.quorate),
            local_node_id: me,
            locked: self.core.locked(),
            members,
            services: self.services(),
        }
    }
}
