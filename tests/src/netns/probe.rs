//! Probes: sockets opened inside a node's namespace, to check what the network lets through.
//!
//! A thread that calls setns(2) with a network namespace creates its sockets there, and a
//! socket stays in the namespace it was created in whichever thread later uses it. So
//! [`in_netns`] runs a closure on a short-lived thread that entered the namespace, and the
//! probes then drive the sockets from the calling thread. Probes only ever send to the
//! lab's own addresses, a bounded number of datagrams.

use super::{LabNet, NetError};
use crate::nemesis::HOST_ID;
use nix::sched::{setns, CloneFlags};
use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a probe resends while it waits.
const RESEND: Duration = Duration::from_millis(100);

/// Runs `f` on a new thread inside the named network namespace `ns` and returns its result.
/// Sockets `f` creates belong to that namespace.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let enter = std::fs::File::open(&path)
                .and_then(|fd| setns(&fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from));
            match enter {
                Ok(()) => Ok(f()),
                Err(source) => Err(NetError::Setns {
                    ns: ns.to_string(),
                    source,
                }),
            }
        });
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn probe_err(what: String) -> impl FnOnce(io::Error) -> NetError {
    move |source| NetError::Probe { what, source }
}

/// A token no other probe (of this or another process) sends.
fn token(kind: &str) -> Vec<u8> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("clusterlab {kind} probe {} {seq}", std::process::id()).into_bytes()
}

impl LabNet {
    /// Runs `f` where endpoint `id` lives: inside its namespace, or in the root namespace
    /// for the lab host ([`HOST_ID`]).
    fn in_endpoint<T: Send>(&self, id: u32, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
        if id == HOST_ID {
            return Ok(std::thread::scope(|s| s.spawn(f).join())
                .unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        in_netns(&self.node(id)?.ns, f)
    }

    /// A UDP socket bound to endpoint `id`'s address (port chosen by the kernel), created in
    /// its namespace.
    pub fn udp_socket(&self, id: u32) -> Result<UdpSocket, NetError> {
        let addr = self.addr(id)?;
        self.in_endpoint(id, || UdpSocket::bind((addr, 0)))?
            .map_err(probe_err(format!("binding {addr}")))
    }

    /// Whether a datagram from `from` reaches `to` (node ids, or [`HOST_ID`]) within
    /// `timeout`: resends every 100 ms and returns true at the first arrival, false at the
    /// deadline. Use a generous timeout when expecting true; false always takes `timeout`.
    pub fn udp_probe(&self, from: u32, to: u32, timeout: Duration) -> Result<bool, NetError> {
        let rx = self.udp_socket(to)?;
        let tx = self.udp_socket(from)?;
        let dest = rx.local_addr().map_err(probe_err("local address".into()))?;
        let src = tx.local_addr().map_err(probe_err("local address".into()))?;
        let token = token("udp");
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 128];
        loop {
            // An output drop rule makes the send fail (EPERM): that is a lost datagram.
            let _ = tx.send_to(&token, dest);
            let round_end = (Instant::now() + RESEND).min(deadline);
            while let Some(left) = round_end.checked_duration_since(Instant::now()) {
                if left.is_zero() {
                    break;
                }
                rx.set_read_timeout(Some(left))
                    .map_err(probe_err("timeout".into()))?;
                match rx.recv_from(&mut buf) {
                    Ok((n, peer)) if peer == src && buf[..n] == token[..] => return Ok(true),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(probe_err(format!("receiving at {dest}"))(e)),
                }
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// Sends to multicast `group`:`port` from node `from` (TTL 1, from a socket bound to no
    /// address, so the namespace's multicast route must pick eth0) and returns the other
    /// nodes that received it within `timeout` (returns as soon as all did). Each receiver
    /// binds `port` in its namespace and joins the group on its lab address.
    pub fn multicast_probe(
        &self,
        from: u32,
        group: Ipv4Addr,
        port: u16,
        timeout: Duration,
    ) -> Result<BTreeSet<u32>, NetError> {
        let mut receivers = Vec::new();
        for n in self.nodes().iter().filter(|n| n.id != from) {
            let addr = n.addr;
            let sock = super::in_netns(&n.ns, || {
                let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
                s.join_multicast_v4(&group, &addr)?;
                s.set_nonblocking(true)?;
                Ok::<_, io::Error>(s)
            })?
            .map_err(probe_err(format!("joining {group} on {addr}")))?;
            receivers.push((n.id, sock));
        }
        // Bound to no address, so the namespace's multicast route has to pick the interface.
        let from_ns = &self.node(from)?.ns;
        let tx = super::in_netns(from_ns, || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))?
            .map_err(probe_err(format!("binding a socket in {from_ns}")))?;
        let tx_port = tx
            .local_addr()
            .map_err(probe_err("local address".into()))?
            .port();
        let src = std::net::SocketAddr::from((self.addr(from)?, tx_port));
        tx.set_multicast_ttl_v4(1)
            .and_then(|_| tx.set_multicast_loop_v4(false))
            .map_err(probe_err("multicast options".into()))?;
        let token = token("multicast");
        let deadline = Instant::now() + timeout;
        let mut heard = BTreeSet::new();
        let mut buf = [0u8; 128];
        while heard.len() < receivers.len() && Instant::now() < deadline {
            let _ = tx.send_to(&token, SocketAddrV4::new(group, port));
            std::thread::sleep(RESEND.min(deadline.saturating_duration_since(Instant::now())));
            for (id, sock) in &receivers {
                while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                    if peer == src && buf[..n] == token[..] {
                        heard.insert(*id);
                    }
                }
            }
        }
        Ok(heard)
    }

    /// What the kernel of node `id` says to a UDP connect() to `dest`: None when it has a
    /// route, or the error (ENETUNREACH without one). connect() on a UDP socket sends no
    /// packet, so this is safe to ask about any address.
    pub fn route_error(&self, id: u32, dest: Ipv4Addr) -> Result<Option<io::Error>, NetError> {
        let sock = self.udp_socket(id)?;
        Ok(sock.connect(SocketAddrV4::new(dest, 9)).err())
    }
}
