//! The connection to the local cmand: one subscription for its events, one connection for
//! calls (group join/leave/send, kill, status).

use super::DaemonError;
use clusterio::{ClientError, IpcClient, Subscription};
use libcluster::fence::Input;
use libcluster::ipc::cman::{
    CmanEvent, CmanRequest, CmanResponse, MembershipState, NodeState, DAEMON,
};
use libcluster::NodeId;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one call to cmand may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// This node as cmand knows it.
#[derive(Clone, Debug)]
pub struct Me {
    /// Node id.
    pub id: u32,
    /// cluster.conf name.
    pub name: String,
}

/// Both connections to cmand.
pub struct Cman {
    /// This node.
    pub me: Me,
    /// cmand's events, in its order.
    pub events: Subscription<CmanEvent>,
    calls: Option<IpcClient<CmanRequest, CmanResponse, CmanEvent>>,
    socket: PathBuf,
}

impl Cman {
    /// Connects, waiting for cmand to come up (a log line every 10 s): subscribes first, so
    /// no event after the status snapshot is missed.
    pub async fn connect(runtime_dir: &Path) -> Result<Cman, DaemonError> {
        let socket = clusterio::socket_path(runtime_dir, DAEMON);
        let mut waited = 0u32;
        loop {
            match Cman::try_connect(&socket).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    if waited % 10 == 0 {
                        tracing::info!(socket = %socket.display(), error = %e, "waiting for cmand");
                    }
                    waited = waited.saturating_add(1);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn try_connect(socket: &Path) -> Result<Cman, String> {
        let sub = IpcClient::<CmanRequest, CmanResponse, CmanEvent>::connect(socket)
            .await
            .map_err(|e| e.to_string())?;
        let events = sub
            .subscribe(CALL_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let mut calls = IpcClient::connect(socket)
            .await
            .map_err(|e| e.to_string())?;
        let status = match calls.call(&CmanRequest::Status, CALL_TIMEOUT).await {
            Ok(CmanResponse::Status(s)) => s,
            Ok(other) => return Err(format!("unexpected answer to status: {other:?}")),
            Err(e) => return Err(e.to_string()),
        };
        if status.node_id == 0 {
            return Err("cmand does not know this node's id yet".into());
        }
        Ok(Cman {
            me: Me {
                id: status.node_id,
                name: status.node_name.clone(),
            },
            events,
            calls: Some(calls),
            socket: socket.to_path_buf(),
        })
    }

    /// One call; a broken connection is replaced once.
    pub async fn call(&mut self, request: &CmanRequest) -> Result<CmanResponse, ClientError> {
        for _ in 0..2 {
            if self.calls.is_none() {
                self.calls = Some(IpcClient::connect(&self.socket).await?);
            }
            let Some(c) = self.calls.as_mut() else {
                continue;
            };
            match c.call(request, CALL_TIMEOUT).await {
                Err(ClientError::Torn | ClientError::Closed | ClientError::Io(_)) => {
                    self.calls = None;
                }
                other => return other,
            }
        }
        Err(ClientError::Closed)
    }

    /// The inputs that describe cmand's current state: the installed view (if this node is
    /// a member) and quorum.
    pub async fn snapshot(&mut self) -> Result<Vec<Input>, ClientError> {
        let CmanResponse::Status(status) = self.call(&CmanRequest::Status).await? else {
            return Ok(Vec::new());
        };
        if status.state != MembershipState::ClusterMember {
            return Ok(Vec::new());
        }
        let CmanResponse::Nodes(nodes) = self.call(&CmanRequest::Nodes).await? else {
            return Ok(Vec::new());
        };
        let members = nodes
            .iter()
            .filter(|n| n.id != 0 && n.state == NodeState::Member)
            .map(|n| (NodeId(n.id), n.incarnation))
            .collect();
        Ok(vec![
            Input::ClusterView {
                generation: status.generation,
                members,
            },
            Input::Quorum {
                quorate: status.quorate,
            },
        ])
    }
}
