//! The Jepsen runner's client workload: ordered group messages through cmand.
//!
//! One client task per node (tokio, inside the runner's process) talks to that node's
//! cmand socket: it subscribes to events, joins group [`GROUP`], waits to see its own join
//! in a `GroupView`, then sends one numbered message per tick. The client survives its
//! daemon: a killed cmand closes the connections and the client reconnects (polling the
//! socket) and joins again with the new incarnation; a paused cmand makes calls time out.
//!
//! ```text
//!   connect ─► Status (incarnation) ─► subscribe ─► GroupJoin ─► GroupView(joined me)
//!      ▲                                                              │
//!      └────────── connection lost (daemon killed) ◄── send loop ◄────┘
//! ```
//!
//! Every message has a run-wide unique id (one counter shared by all clients), and its
//! payload is `"jepsen-msg:"` followed by the id as 4 big-endian bytes. Payloads of one
//! length that differ only in 4 consecutive bytes have distinct crc32s (the difference is
//! a non-zero polynomial of degree < 32, which the CRC polynomial cannot divide), so the
//! crc that cmand's history records for a delivery names exactly one message.
//!
//! Outcomes of a send: `acked` (GroupSend answered Done: the message is in the node's
//! queue for ordering), `refused` (an error answer: it was not queued), `unknown` (timeout
//! or connection lost: it may or may not have been queued). `busy` answers are retried
//! with the same id at the next tick and counted apart.

use clusterio::{ClientError, IpcClient};
use libcluster::ipc::cman::{CmanEvent, CmanRequest, CmanResponse};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The group every client joins.
pub const GROUP: &str = "jepsen";

const PREFIX: &[u8] = b"jepsen-msg:";

/// The payload of message `id`.
pub fn payload(id: u32) -> Vec<u8> {
    let mut p = PREFIX.to_vec();
    p.extend_from_slice(&id.to_be_bytes());
    p
}

/// The id of a workload payload, if it is one.
pub fn message_id(payload: &[u8]) -> Option<u32> {
    let rest = payload.strip_prefix(PREFIX)?;
    Some(u32::from_be_bytes(rest.try_into().ok()?))
}

/// The crc32 cmand records for the delivery of message `id`.
pub fn message_crc(id: u32) -> u32 {
    crc32fast::hash(&payload(id))
}

/// What became of one send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// GroupSend answered Done: queued for ordered delivery.
    Acked,
    /// An error answer other than busy: not queued.
    Refused,
    /// No answer (timeout, connection lost): maybe queued.
    Unknown,
}

/// One message a client tried to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The message id (see [`payload`]).
    pub id: u32,
    /// The sending node's id.
    pub node: u32,
    /// The incarnation of the cmand it was sent to.
    pub incarnation: u64,
    /// What became of it.
    pub outcome: Outcome,
}

/// A join the client saw confirmed: its node appeared in a `GroupView` of [`GROUP`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The cmand incarnation.
    pub incarnation: u64,
    /// The view epoch the GroupView was emitted in.
    pub generation: u64,
}

/// Everything one client did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientLog {
    /// Node name.
    pub node: String,
    /// Node id.
    pub nodeid: u32,
    /// Confirmed joins, one per daemon incarnation the client joined in.
    pub joins: Vec<Join>,
    /// Every send, in order.
    pub ops: Vec<Op>,
    /// Busy answers (each retried).
    pub busy: u64,
    /// Connections (re)established.
    pub connects: u64,
    /// The client's own messages it saw delivered back to it.
    pub self_delivered: u64,
    /// Deliveries of the group it saw, from every sender.
    pub delivered: u64,
}

/// The whole workload's record: `DIR/workload.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadLog {
    /// The group used.
    pub group: String,
    /// One log per node.
    pub clients: Vec<ClientLog>,
    /// node id → cmand incarnation of the converged final view (the survivors).
    pub final_incarnations: BTreeMap<u32, u64>,
}

impl WorkloadLog {
    /// The file name inside a lab directory.
    pub const FILE: &'static str = "workload.json";

    /// Every op of every client.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.clients.iter().flat_map(|c| c.ops.iter())
    }

    /// Reads `dir/workload.json`.
    pub fn load(dir: &std::path::Path) -> Result<WorkloadLog, String> {
        let path = dir.join(Self::FILE);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes `dir/workload.json`.
    pub fn save(&self, dir: &std::path::Path) -> Result<(), String> {
        let path = dir.join(Self::FILE);
        let text = serde_json::to_string(self).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Where a client connects.
#[derive(Clone, Debug)]
pub struct Target {
    /// Node name.
    pub name: String,
    /// Node id.
    pub nodeid: u32,
    /// cmand's socket.
    pub socket: PathBuf,
}

/// Pace and patience of the clients.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Time between two sends of one client.
    pub interval: Duration,
    /// Bound on one call.
    pub call_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            interval: Duration::from_millis(50),
            call_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Send,
    Drain,
    Finish,
}

/// Per client: the acked messages of its current incarnation not yet delivered back to it.
#[derive(Debug, Default)]
struct Progress {
    incarnation: u64,
    unconfirmed: BTreeSet<u32>,
}

/// The running workload.
pub struct Workload {
    phase: watch::Sender<Phase>,
    clients: Vec<JoinHandle<ClientLog>>,
    progress: Vec<Arc<Mutex<Progress>>>,
}

impl Workload {
    /// Starts one client per target on the current tokio runtime.
    pub fn start(handle: &tokio::runtime::Handle, targets: &[Target], opts: Options) -> Workload {
        let (phase, rx) = watch::channel(Phase::Send);
        let ids = Arc::new(AtomicU32::new(1));
        let mut clients = Vec::new();
        let mut progress = Vec::new();
        for t in targets {
            let p = Arc::new(Mutex::new(Progress::default()));
            progress.push(p.clone());
            let c = Client {
                target: t.clone(),
                opts,
                ids: ids.clone(),
                phase: rx.clone(),
                progress: p,
                log: ClientLog {
                    node: t.name.clone(),
                    nodeid: t.nodeid,
                    ..ClientLog::default()
                },
            };
            clients.push(handle.spawn(c.run()));
        }
        Workload {
            phase,
            clients,
            progress,
        }
    }

    /// Stops sending; clients keep reading deliveries.
    pub fn stop_sending(&self) {
        let _ = self.phase.send(Phase::Drain);
    }

    /// How many acked messages of current incarnations have not come back to their sender.
    pub fn unconfirmed(&self) -> usize {
        self.progress
            .iter()
            .map(|p| p.lock().map(|p| p.unconfirmed.len()).unwrap_or(0))
            .sum()
    }

    /// Stops every client and collects their logs.
    pub async fn finish(self) -> Vec<ClientLog> {
        let _ = self.phase.send(Phase::Finish);
        let mut logs = Vec::new();
        for c in self.clients {
            if let Ok(log) = c.await {
                logs.push(log);
            }
        }
        logs
    }
}

struct Client {
    target: Target,
    opts: Options,
    ids: Arc<AtomicU32>,
    phase: watch::Receiver<Phase>,
    progress: Arc<Mutex<Progress>>,
    log: ClientLog,
}

type Conn = IpcClient<CmanRequest, CmanResponse, CmanEvent>;

/// Why a session ended.
enum End {
    Lost,
    Finish,
}

impl Client {
    async fn run(mut self) -> ClientLog {
        // A message refused as busy is retried with the same id, across reconnects too.
        let mut retry: Option<u32> = None;
        loop {
            if *self.phase.borrow() == Phase::Finish {
                break;
            }
            match self.session(&mut retry).await {
                Ok(End::Finish) => break,
                Ok(End::Lost) | Err(_) => {
                    let _ = tokio::time::timeout(
                        Duration::from_millis(200),
                        self.phase.wait_for(|p| *p == Phase::Finish),
                    )
                    .await;
                }
            }
        }
        if let Some(id) = retry {
            self.record(id, 0, Outcome::Refused);
        }
        self.log
    }

    fn record(&mut self, id: u32, incarnation: u64, outcome: Outcome) {
        self.log.ops.push(Op {
            id,
            node: self.target.nodeid,
            incarnation,
            outcome,
        });
    }

    /// One connection to one daemon incarnation.
    async fn session(&mut self, retry: &mut Option<u32>) -> Result<End, ClientError> {
        let timeout = self.opts.call_timeout;
        let mut conn = Conn::connect(&self.target.socket).await?;
        let status = match conn.call(&CmanRequest::Status, timeout).await? {
            CmanResponse::Status(s) => s,
            _ => return Ok(End::Lost),
        };
        let (me, incarnation) = (status.node_id, status.incarnation);
        let sub = Conn::connect(&self.target.socket)
            .await?
            .subscribe(timeout)
            .await?;
        self.log.connects += 1;
        if let Ok(mut p) = self.progress.lock() {
            if p.incarnation != incarnation {
                p.incarnation = incarnation;
                p.unconfirmed.clear();
            }
        }
        let (tx, mut events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_events(sub, tx));
        let result = self
            .joined_session(&mut conn, &mut events, me, incarnation, retry)
            .await;
        reader.abort();
        result
    }

    async fn joined_session(
        &mut self,
        conn: &mut Conn,
        events: &mut mpsc::UnboundedReceiver<CmanEvent>,
        me: u32,
        incarnation: u64,
        retry: &mut Option<u32>,
    ) -> Result<End, ClientError> {
        let timeout = self.opts.call_timeout;
        let mut joined = false;
        let mut join_asked = false;
        let mut tick = tokio::time::interval(self.opts.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut phase = self.phase.clone();
        loop {
            let sending = *phase.borrow() == Phase::Send;
            tokio::select! {
                ev = events.recv() => match ev {
                    None => return Ok(End::Lost),
                    Some(ev) => {
                        if self.on_event(ev, me, incarnation) {
                            joined = true;
                        }
                    }
                },
                _ = tick.tick() => {
                    if !join_asked {
                        let join = CmanRequest::GroupJoin { group: GROUP.into() };
                        match conn.call(&join, timeout).await {
                            Ok(_) => join_asked = true,
                            // Already joined: this process holds the group from an earlier
                            // connection to the same daemon.
                            Err(ClientError::Daemon { code, .. }) if code == cmand::codes::GROUP => {
                                join_asked = true;
                                joined = true;
                            }
                            Err(ClientError::Daemon { .. } | ClientError::Timeout { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    } else if joined && sending && !self.send_one(conn, incarnation, retry).await? {
                        // The daemon says we hold no group: join again.
                        (join_asked, joined) = (false, false);
                    }
                },
                r = phase.changed() => {
                    if r.is_err() || *phase.borrow() == Phase::Finish {
                        return Ok(End::Finish);
                    }
                }
            }
        }
    }

    /// Handles one event; true when it confirms our join.
    fn on_event(&mut self, ev: CmanEvent, me: u32, incarnation: u64) -> bool {
        match ev {
            CmanEvent::GroupView {
                group,
                generation,
                joined,
                ..
            } if group == GROUP && joined.contains(&me) => {
                self.log.joins.push(Join {
                    incarnation,
                    generation,
                });
                true
            }
            CmanEvent::Deliver {
                group,
                from,
                payload,
                ..
            } if group == GROUP => {
                self.log.delivered += 1;
                if from == me {
                    self.log.self_delivered += 1;
                    if let (Some(id), Ok(mut p)) = (message_id(&payload), self.progress.lock()) {
                        p.unconfirmed.remove(&id);
                    }
                }
                false
            }
            _ => false,
        }
    }

    async fn send_one(
        &mut self,
        conn: &mut Conn,
        incarnation: u64,
        retry: &mut Option<u32>,
    ) -> Result<bool, ClientError> {
        let id = retry
            .take()
            .unwrap_or_else(|| self.ids.fetch_add(1, Ordering::Relaxed));
        let send = CmanRequest::GroupSend {
            group: GROUP.into(),
            payload: payload(id),
        };
        match conn.call(&send, self.opts.call_timeout).await {
            Ok(_) => {
                self.record(id, incarnation, Outcome::Acked);
                if let Ok(mut p) = self.progress.lock() {
                    p.unconfirmed.insert(id);
                }
                Ok(true)
            }
            Err(ClientError::Daemon { code, .. }) if code == cmand::codes::IN_USE => {
                self.log.busy += 1;
                *retry = Some(id);
                Ok(true)
            }
            Err(ClientError::Daemon { code, .. }) => {
                self.record(id, incarnation, Outcome::Refused);
                Ok(code != cmand::codes::GROUP)
            }
            Err(ClientError::Denied { .. }) => {
                self.record(id, incarnation, Outcome::Refused);
                Ok(true)
            }
            // Still usable: the late answer is skipped by the next call.
            Err(ClientError::Timeout { .. }) => {
                self.record(id, incarnation, Outcome::Unknown);
                Ok(true)
            }
            Err(e) => {
                self.record(id, incarnation, Outcome::Unknown);
                Err(e)
            }
        }
    }
}

async fn read_events(
    mut sub: clusterio::Subscription<CmanEvent>,
    tx: mpsc::UnboundedSender<CmanEvent>,
) {
    while let Ok(Some(ev)) = sub.next_event().await {
        if tx.send(ev.body).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_roundtrip_and_have_distinct_crcs() {
        assert_eq!(message_id(&payload(0x0102_0304)), Some(0x0102_0304));
        assert_eq!(message_id(b"other"), None);
        assert_eq!(message_id(b"jepsen-msg:123"), None);
        let crcs: BTreeSet<u32> = (0..100_000).map(message_crc).collect();
        assert_eq!(crcs.len(), 100_000);
    }
}
