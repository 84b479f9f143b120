//! The network side of the shell: sealing and sending, opening and checking received
//! datagrams (envelope, body, kind, sender, source address), drop counters, and the
//! re-resolution of node names that had no address at start.

use crate::frames;
use crate::shell::{Shell, RERESOLVE_EVERY};
use libcluster::membership::{Input, Msg};
use libcluster::NodeId;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, info, warn};

impl Shell {
    /// Seals `msg` and sends it to `to`. Failures are counted, never fatal: UDP may lose
    /// the datagram anyway, and the core resends what matters.
    pub(crate) fn send(&mut self, to: NodeId, msg: &Msg) {
        let Some(addr) = self.nodes.get(&to).and_then(|n| n.addr) else {
            self.bump("tx_unresolved");
            return;
        };
        let frame = match frames::seal(msg, self.sender, &self.key) {
            Ok(f) => f,
            Err(e) => {
                self.bump("tx_too_large");
                warn!(peer = %to, kind = msg.kind(), error = %e, "message too large to send");
                return;
            }
        };
        match self.send_sock.send_to(&frame, addr) {
            Ok(_) => self.bump("tx_frames"),
            Err(e) => {
                self.bump("tx_errors");
                debug!(peer = %to, %addr, error = %e, "send failed");
            }
        }
    }

    /// Checks a received datagram from the outside in and hands what passes to the core.
    pub(crate) fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        self.bump("rx_frames");
        let (h, msg) = match frames::open(data, self.sender.cluster_id, &self.key) {
            Ok(opened) => opened,
            Err(d) => return self.dropped(d.counter_name(), from, &d),
        };
        if h.sender == self.sender.me {
            return self.dropped("own_id", from, &"a frame carrying this node's own id");
        }
        let Some(node) = self.nodes.get(&h.sender) else {
            let why = format!("sender {} is not a configured node", h.sender);
            return self.dropped("unknown_sender", from, &why);
        };
        if node.addr != Some(from) {
            let why = format!(
                "node {} sends from {from}, not its address {}",
                h.sender,
                node.addr
                    .map_or("(unresolved)".to_string(), |a| a.to_string())
            );
            return self.dropped("wrong_address", from, &why);
        }
        self.last_heard
            .insert(h.sender, (h.incarnation, Instant::now()));
        self.input(Input::Message {
            from: h.sender,
            incarnation: h.incarnation,
            msg,
        });
    }

    fn dropped(&mut self, reason: &str, from: SocketAddr, detail: &dyn std::fmt::Display) {
        self.bump(&format!("drop_{reason}"));
        self.drops_unlogged += 1;
        let now = Instant::now();
        if self
            .last_drop_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            debug!(reason, %from, detail = %detail, dropped = self.drops_unlogged,
                   "dropped frames (first reason of the burst shown)");
            self.last_drop_log = Some(now);
            self.drops_unlogged = 0;
        }
    }

    /// cman's "disallowed": a node the cluster expelled that is still (or again) sending
    /// at the expelled incarnation (heard within two heartbeat periods: a live node beats
    /// every period). An expelled node that went quiet is simply dead.
    pub(crate) fn is_disallowed(&self, id: NodeId) -> bool {
        let recent = Duration::from_millis(2 * self.core.timing().heartbeat_ms);
        self.core.expelled().iter().any(|(n, inc)| {
            *n == id
                && self
                    .last_heard
                    .get(&id)
                    .is_some_and(|(heard, at)| heard <= inc && at.elapsed() < recent)
        })
    }

    pub(crate) fn on_resolved(&mut self, found: BTreeMap<String, IpAddr>) {
        self.resolving = false;
        let port = self.port;
        for node in self.nodes.values_mut() {
            if node.addr.is_none() {
                if let Some(ip) = found.get(&node.name) {
                    node.addr = Some(SocketAddr::new(*ip, port));
                    info!(peer = %node.name, addr = %ip, "node address resolved");
                }
            }
        }
    }

    /// Tries unresolved node names again every few housekeeping ticks, off the loop.
    pub(crate) fn reresolve(&mut self) {
        self.resolve_ticks += 1;
        let unresolved: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.addr.is_none())
            .map(|n| n.name.clone())
            .collect();
        if unresolved.is_empty() || self.resolving || self.resolve_ticks < RERESOLVE_EVERY {
            return;
        }
        self.resolve_ticks = 0;
        self.resolving = true;
        let resolver = self.resolver.clone();
        let tx = self.resolved_tx.clone();
        // getaddrinfo blocks: keep it off the loop.
        tokio::task::spawn_blocking(move || {
            let found = resolver.resolve_all(&unresolved).unwrap_or_else(|e| {
                debug!(error = %e, "name resolution failed");
                BTreeMap::new()
            });
            let _loop_gone = tx.blocking_send(found);
        });
    }
}
