//! The membership socket: one UDP socket bound to this node's own address and port.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Receive buffer asked of the kernel: room for a burst of full-size frames (flushes after
/// a view change) while the loop is busy. The kernel may grant less (`net.core.rmem_max`).
pub const RECV_BUFFER_BYTES: usize = 1 << 20;

/// The membership socket, twice: tokio's half receives, a plain non-blocking duplicate of the
/// same socket sends. Sending through the duplicate never waits and never depends on
/// tokio's readiness state (tokio's `try_send_to` refuses until the reactor has seen the
/// socket writable once); a full send buffer simply drops the datagram, as UDP may.
#[derive(Debug)]
pub struct MembershipSocket {
    /// Receives (registered with the runtime).
    pub recv: tokio::net::UdpSocket,
    /// Sends (non-blocking, the same socket).
    pub send: std::net::UdpSocket,
}

/// Binds `addr` for the membership protocol: no `SO_REUSEADDR` (a second daemon on the same
/// address must fail, not share the port), a 1 MiB receive buffer, non-blocking, handed to
/// tokio. Must be called inside a tokio runtime.
pub fn bind(addr: SocketAddr) -> io::Result<MembershipSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(false)?;
    if let Err(e) = sock.set_recv_buffer_size(RECV_BUFFER_BYTES) {
        tracing::warn!(error = %e, bytes = RECV_BUFFER_BYTES, "cannot enlarge the receive buffer");
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    let std_sock: std::net::UdpSocket = sock.into();
    let send = std_sock.try_clone()?;
    Ok(MembershipSocket {
        recv: tokio::net::UdpSocket::from_std(std_sock)?,
        send,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_bind_of_the_same_address_fails_and_sends_need_no_readiness() {
        let a = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.recv.local_addr().unwrap();
        assert!(bind(addr).is_err());
        let b = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // The very first send goes out at once, before any readiness was observed.
        assert_eq!(b.send.send_to(b"ping", addr).unwrap(), 4);
        let mut buf = [0u8; 8];
        let (n, from) = a.recv.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"ping"[..], b.send.local_addr().unwrap())
        );
    }
}
