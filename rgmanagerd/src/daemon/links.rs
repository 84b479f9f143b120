//! The connections to the local cmand and fenced.

use super::DaemonError;
use clusterio::{ClientError, IpcClient, Subscription};
use libcluster::ipc::cman::{
    CmanEvent, CmanNode, CmanRequest, CmanResponse, CmanStatus, DAEMON as CMAND,
};
use libcluster::ipc::fence::{
    FenceEvent, FenceRequest, FenceResponse, FenceState, DAEMON as FENCED,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// This node as cmand knows it.
#[derive(Clone, Debug)]
pub struct Me {
    /// Node id.
    pub id: u32,
    /// cluster.conf name.
    pub name: String,
    /// cmand's incarnation.
    pub incarnation: u64,
    /// The address peers reach this node at (for incoming migrations).
    pub address: String,
}

/// Both connections to cmand.
pub struct Cman {
    /// This node.
    pub me: Me,
    /// cmand's events.
    pub events: Subscription<CmanEvent>,
    calls: Option<IpcClient<CmanRequest, CmanResponse, CmanEvent>>,
    socket: PathBuf,
}

impl Cman {
    /// Connects, waiting for cmand (and for this node to be a member, so its incarnation
    /// and address are known).
    pub async fn connect(runtime_dir: &Path) -> Result<Cman, DaemonError> {
        let socket = clusterio::socket_path(runtime_dir, CMAND);
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
        if status.node_id == 0 || status.incarnation == 0 {
            return Err("cmand does not know this node yet".into());
        }
        let address = status
            .node_addresses
            .first()
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".into());
        // "10.0.0.1:5405" or a bare address: keep the host part.
        let address = address
            .rsplit_once(':')
            .filter(|(host, port)| port.chars().all(|c| c.is_ascii_digit()) && !host.is_empty())
            .map_or(address.clone(), |(host, _)| host.to_string());
        Ok(Cman {
            me: Me {
                id: status.node_id,
                name: status.node_name.clone(),
                incarnation: status.incarnation,
                address,
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

    /// cmand's status.
    pub async fn status(&mut self) -> Option<CmanStatus> {
        match self.call(&CmanRequest::Status).await {
            Ok(CmanResponse::Status(s)) => Some(*s),
            _ => None,
        }
    }

    /// cmand's node list.
    pub async fn nodes(&mut self) -> Vec<CmanNode> {
        match self.call(&CmanRequest::Nodes).await {
            Ok(CmanResponse::Nodes(n)) => n,
            _ => Vec::new(),
        }
    }
}

/// The connection to fenced: calls, and a subscription so a fencing result wakes us.
/// fenced may start after us or restart: both are re-made when missing.
pub struct Fenced {
    socket: PathBuf,
    calls: Option<IpcClient<FenceRequest, FenceResponse, FenceEvent>>,
    /// fenced's events, when subscribed.
    pub events: Option<Subscription<FenceEvent>>,
}

impl Fenced {
    /// Not connected yet.
    pub fn new(runtime_dir: &Path) -> Fenced {
        Fenced {
            socket: clusterio::socket_path(runtime_dir, FENCED),
            calls: None,
            events: None,
        }
    }

    /// Subscribes if not subscribed.
    pub async fn ensure_subscribed(&mut self) {
        if self.events.is_some() {
            return;
        }
        if let Ok(c) =
            IpcClient::<FenceRequest, FenceResponse, FenceEvent>::connect(&self.socket).await
        {
            self.events = c.subscribe(CALL_TIMEOUT).await.ok();
        }
    }

    /// Has `node`, last seen as `incarnation`, been fenced since? `false` when fenced cannot
    /// say (not running): recovery waits.
    pub async fn is_fenced(&mut self, node: u32, incarnation: u64) -> bool {
        let req = FenceRequest::IsFenced { node, incarnation };
        for _ in 0..2 {
            if self.calls.is_none() {
                match IpcClient::connect(&self.socket).await {
                    Ok(c) => self.calls = Some(c),
                    Err(_) => return false,
                }
            }
            let Some(c) = self.calls.as_mut() else {
                return false;
            };
            match c.call(&req, CALL_TIMEOUT).await {
                Ok(FenceResponse::Fenced(FenceState::Fenced(_))) => return true,
                Ok(_) => return false,
                Err(_) => self.calls = None,
            }
        }
        false
    }
}
