//! The node's listening sockets, with an accept queue deep enough for a reconnect storm.
//!
//! Why it exists: `TcpListener::bind` asks the kernel for a queue of 128 connections waiting to be accepted.
//! When a node goes away, its clients all reconnect to the others within moments; past 128 handshakes
//! waiting, the kernel drops the next SYNs, and each of those clients waits for its SYN to be sent again
//! (1 s, then 2 s, ...) before it even reaches Herald. The kernel caps the queue at `net.core.somaxconn`
//! (4096 on current kernels).

use std::io;
use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel may hold completed for the node before it accepts them.
pub const ACCEPT_BACKLOG: u32 = 4096;

/// Listens on `addr` ("host:port"; a name is resolved and its addresses tried in turn, as
/// `TcpListener::bind` does), with an accept queue of [`ACCEPT_BACKLOG`].
pub async fn listen(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As `TcpListener::bind`: a restarted node can listen again while its old connections linger.
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(ACCEPT_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the address resolved to nothing")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 600 clients connect at once to a listener that accepts none of them yet: every handshake completes
    /// in the kernel's queue, none waits for a SYN to be sent again (with `TcpListener::bind`'s queue of 128,
    /// 471 of them did, a second each). Fewer where the kernel caps the queue lower (`net.core.somaxconn`).
    #[tokio::test]
    async fn a_burst_of_connections_is_queued_not_dropped() {
        let cap = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(600);
        let burst = cap.min(600);
        let listener = listen("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = (0..burst).map(|_| {
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_millis(800), tokio::net::TcpStream::connect(addr)).await
            })
        });
        let mut established = Vec::new();
        for connect in connects.collect::<Vec<_>>() {
            if let Ok(Ok(stream)) = connect.await.unwrap() {
                established.push(stream);
            }
        }
        assert_eq!(
            established.len(),
            burst,
            "connections that waited for a SYN to be sent again"
        );
        drop(listener);
    }

    #[tokio::test]
    async fn names_are_resolved_and_bad_addresses_refused() {
        let listener = listen("localhost:0").await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
        assert!(listen("127.0.0.1:notaport").await.is_err());
    }
}
