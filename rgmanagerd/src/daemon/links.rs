//! The connection to the local fenced (cmand's is clusterio's CmanLink).

use clusterio::{IpcClient, Subscription};
use libcluster::ipc::fence::{
    FenceEvent, FenceRequest, FenceResponse, FenceState, DAEMON as FENCED,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

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
