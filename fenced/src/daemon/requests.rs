//! Local requests: `fence_tool`, `fence_node`, `fence_ack_manual`, rgmanagerd.

use super::shell::Shell;
use clusterio::Incoming;
use libcluster::fence::{plan, Input};
use libcluster::ipc::fence::{FenceRequest, FenceResponse};
use libcluster::ipc::{ErrorCode, ErrorReply};
use libcluster::NodeId;

/// fenced's own error codes (after the common ones).
pub mod codes {
    use libcluster::ipc::ErrorCode;
    /// The node is not in cluster.conf.
    pub const UNKNOWN_NODE: ErrorCode = ErrorCode(1100);
    /// The node is not waiting to be fenced.
    pub const NOT_VICTIM: ErrorCode = ErrorCode(1101);
    /// This node is not a member of the fence domain.
    pub const NOT_MEMBER: ErrorCode = ErrorCode(1102);
}

impl Shell {
    /// A node named by cluster.conf name (or a spelling `fence_node` accepts) or decimal id.
    fn resolve(&self, node: &str) -> Result<(NodeId, String), ErrorReply> {
        if let Ok(id) = node.trim().parse::<u32>() {
            if let Some(n) = self.conf.node_by_id(NodeId(id)) {
                return Ok((n.nodeid, n.name.clone()));
            }
        }
        plan::lookup_node(&self.conf, node)
            .map(|n| (n.nodeid, n.name.clone()))
            .map_err(|e| {
                ErrorReply::new(
                    codes::UNKNOWN_NODE,
                    format!("{e} ({})", self.opts.config.display()),
                )
            })
    }

    /// Answers one request; changes go through the core.
    pub(super) async fn request(&mut self, inc: Incoming<FenceRequest, FenceResponse>) {
        let answer = match inc.request.clone() {
            FenceRequest::Join => {
                self.input(Input::Join).await;
                Ok(FenceResponse::Done)
            }
            FenceRequest::Leave => {
                self.input(Input::Leave).await;
                Ok(FenceResponse::Done)
            }
            FenceRequest::DomainInfo => Ok(FenceResponse::Domain(self.domain.domain_info())),
            FenceRequest::Nodes { node } => {
                let me = self.cman.me.id;
                let want = node.map(|n| if n == 0 { me } else { n });
                let rows = self
                    .domain
                    .nodes()
                    .into_iter()
                    .filter(|r| want.is_none_or(|w| r.node == w))
                    .collect();
                Ok(FenceResponse::Nodes(rows))
            }
            FenceRequest::Dump => Ok(FenceResponse::Dump(self.dump_lines())),
            FenceRequest::External {
                node,
                method,
                device,
            } => match self.resolve(&node) {
                Ok((id, name)) => {
                    self.log(format!("fence {name} done externally (fence_node)"));
                    self.input(Input::External {
                        node: id,
                        method,
                        device,
                    })
                    .await;
                    Ok(FenceResponse::Done)
                }
                Err(e) => Err(e),
            },
            FenceRequest::Acknowledge { node } => match self.resolve(&node) {
                Ok((id, name)) => {
                    if !self.domain.joined() {
                        Err(ErrorReply::new(
                            codes::NOT_MEMBER,
                            "this node is not a member of the fence domain; run fence_ack_manual on a member",
                        ))
                    } else if !self.domain.victims().iter().any(|(v, _)| *v == id) {
                        Err(ErrorReply::new(
                            codes::NOT_VICTIM,
                            format!("{name} is not waiting to be fenced"),
                        ))
                    } else {
                        self.log(format!(
                            "fence {name} acknowledged by an administrator (fence_ack_manual)"
                        ));
                        self.input(Input::Acknowledge { node: id }).await;
                        Ok(FenceResponse::Done)
                    }
                }
                Err(e) => Err(e),
            },
            FenceRequest::IsFenced { node, incarnation } => Ok(FenceResponse::Fenced(
                self.domain.is_fenced(NodeId(node), incarnation),
            )),
        };
        if let Err(e) = &answer {
            if e.code == ErrorCode::INTERNAL {
                tracing::warn!(message = %e.message, "request failed");
            }
        }
        inc.respond(answer);
    }
}
