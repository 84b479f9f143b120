//! A daemon's link to the local cmand: one subscription for its events, one connection for
//! calls, re-made when it breaks. fenced and rgmanagerd (and later qdiskd) use it.

use crate::{ClientError, IpcClient, Subscription};
use libcluster::ipc::cman::{
    CmanEvent, CmanNode, CmanRequest, CmanResponse, CmanStatus, DAEMON, ERR_IN_USE,
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
    /// The address peers reach this node at (the host part of cmand's first address).
    pub address: String,
}

/// Both connections to cmand.
pub struct CmanLink {
    /// This node.
    pub me: Me,
    /// cmand's events, in its order.
    pub events: Subscription<CmanEvent>,
    calls: Option<IpcClient<CmanRequest, CmanResponse, CmanEvent>>,
    socket: PathBuf,
}

impl CmanLink {
    /// Connects to the cmand of `runtime_dir`, waiting for it to run and know this node
    /// (a log line every 10 s). Subscribes first, so no event after the first status is lost.
    pub async fn connect(runtime_dir: &Path) -> CmanLink {
        let socket = crate::socket_path(runtime_dir, DAEMON);
        let mut waited = 0u32;
        loop {
            match CmanLink::try_connect(&socket).await {
                Ok(c) => return c,
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

    async fn try_connect(socket: &Path) -> Result<CmanLink, String> {
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
        let first = status
            .node_addresses
            .first()
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".into());
        Ok(CmanLink {
            me: Me {
                id: status.node_id,
                name: status.node_name.clone(),
                incarnation: status.incarnation,
                address: host_part(&first),
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

    /// cmand's status, if it answers.
    pub async fn status(&mut self) -> Option<CmanStatus> {
        match self.call(&CmanRequest::Status).await {
            Ok(CmanResponse::Status(s)) => Some(*s),
            _ => None,
        }
    }

    /// cmand's node list (empty if it does not answer).
    pub async fn nodes(&mut self) -> Vec<CmanNode> {
        match self.call(&CmanRequest::Nodes).await {
            Ok(CmanResponse::Nodes(n)) => n,
            _ => Vec::new(),
        }
    }

    /// Joins `group`. A daemon restarted within a second finds its old membership still held
    /// by cmand for the dead process (left within a second), so a refusal is retried for 5 s.
    pub async fn group_join(&mut self, group: &str) -> Result<(), ClientError> {
        let req = CmanRequest::GroupJoin {
            group: group.to_string(),
        };
        let mut last = Ok(());
        for i in 0..20 {
            match self.call(&req).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    if i % 5 == 0 {
                        tracing::warn!(group, error = %e, "cannot join the group yet");
                    }
                    last = Err(e);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        last
    }

    /// Leaves `group` (ordered after everything this daemon sent to it).
    pub async fn group_leave(&mut self, group: &str) -> Result<(), ClientError> {
        let req = CmanRequest::GroupLeave {
            group: group.to_string(),
        };
        self.call(&req).await.map(drop)
    }

    /// Sends `payload` to `group`. cmand's send queue is bounded (`<cman max_queued>`): a
    /// full queue is "busy", not a loss, so the message waits its turn (at most 10 s).
    pub async fn group_send(&mut self, group: &str, payload: Vec<u8>) -> Result<(), ClientError> {
        let req = CmanRequest::GroupSend {
            group: group.to_string(),
            payload,
        };
        for _ in 0..499 {
            match self.call(&req).await {
                Err(ClientError::Daemon { code, .. }) if code == ERR_IN_USE => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other.map(drop),
            }
        }
        self.call(&req).await.map(drop)
    }
}

/// `10.0.0.1:5405` → `10.0.0.1`; a bare address stays as it is.
fn host_part(address: &str) -> String {
    address
        .rsplit_once(':')
        .filter(|(host, port)| !host.is_empty() && port.chars().all(|c| c.is_ascii_digit()))
        .map_or_else(|| address.to_string(), |(host, _)| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::host_part;

    #[test]
    fn the_host_part_drops_a_port_and_keeps_a_bare_address() {
        assert_eq!(host_part("10.250.1.2:5405"), "10.250.1.2");
        assert_eq!(host_part("10.250.1.2"), "10.250.1.2");
        assert_eq!(host_part("n1.example.com"), "n1.example.com");
    }
}
