//! A connection as the core sees it: its socket id and a bounded outbound queue. Fan-out only ever does a
//! non-blocking push of shared bytes; a client whose queue is full is marked for closing (4100) instead of
//! slowing anyone else down or growing memory.

use crate::outbound_queue::{self, PushError, Receiver, Sender};
use bytes::Bytes;
use herald_protocol::{close_code, SocketId};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// What the socket writer is asked to do.
#[derive(Debug)]
pub enum Outbound {
    /// A text frame; the bytes may be shared with other connections.
    Frame(Bytes),
    /// Answer a WebSocket ping, echoing its payload (at most 125 bytes, as every control frame).
    Pong(Bytes),
    /// Send a close frame with this code and reason, then stop.
    Close(u16, String),
}

/// What a connection's client speaks, which decides the form of the frames it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The Pusher Channels protocol (pusher-js, Echo's `pusher` / `reverb` broadcasters).
    Pusher,
    /// Echo's `socket.io` broadcaster, as laravel-echo-server served it: broadcasts are queued in
    /// socket.io's form ([`crate::Broadcast::for_protocol`]), everything else as Pusher frames its socket
    /// writer translates.
    SocketIo,
}

impl Protocol {
    /// The `protocol` label of the connection metrics.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Pusher => "pusher",
            Protocol::SocketIo => "socketio",
        }
    }
}

/// The core's handle on one client connection.
#[derive(Debug)]
pub struct ConnectionHandle {
    pub socket_id: SocketId,
    pub protocol: Protocol,
    tx: Sender,
    overflowed: AtomicBool,
    closed: Notify,
}

impl ConnectionHandle {
    /// A handle and the receiving end of its queue (for the socket writer).
    pub fn new(socket_id: SocketId, queue: usize) -> (Self, Receiver) {
        Self::speaking(Protocol::Pusher, socket_id, queue)
    }

    /// A handle for a client that speaks `protocol`.
    pub fn speaking(protocol: Protocol, socket_id: SocketId, queue: usize) -> (Self, Receiver) {
        let (tx, rx) = outbound_queue::channel(queue);
        (
            ConnectionHandle {
                socket_id,
                protocol,
                tx,
                overflowed: AtomicBool::new(false),
                closed: Notify::new(),
            },
            rx,
        )
    }

    /// Queues a frame without waiting. Returns false, and marks the connection for closing, when the
    /// client is not keeping up.
    pub fn send(&self, frame: Bytes) -> bool {
        match self.tx.try_send(Outbound::Frame(frame)) {
            Ok(()) => true,
            Err(PushError::Full) => {
                self.mark_overflowed();
                false
            }
            Err(PushError::Closed) => false,
        }
    }

    /// Queues a frame if there is room, and leaves a full queue alone: for what can wait for a later chance
    /// (a keepalive ping to a client that has traffic queued is not a reason to close it as slow).
    pub fn offer(&self, frame: Bytes) -> bool {
        self.tx.try_send(Outbound::Frame(frame)).is_ok()
    }

    /// Queues a frame built for this connection only.
    pub fn send_vec(&self, frame: Vec<u8>) -> bool {
        self.send(Bytes::from(frame))
    }

    /// Queues a reply to the client's own request, waiting for room: a client that sends faster than it
    /// reads is slowed down (its reads stop), rather than closed as a slow consumer of broadcasts.
    pub async fn reply(&self, frame: impl Into<Bytes>) -> bool {
        self.tx.send(Outbound::Frame(frame.into())).await.is_ok()
    }

    /// Queues the answer to a WebSocket ping with the ping's payload (dropped when the queue is full: the
    /// client is not reading).
    pub fn pong(&self, payload: Bytes) {
        let _ = self.tx.try_send(Outbound::Pong(payload));
    }

    /// Queues a close after what is already queued. On a full queue the client is not keeping up, and it is
    /// closed at once with [`close_code::OVER_CAPACITY`] instead. When the writer is gone there is nobody left
    /// to close.
    pub fn close(&self, code: u16, reason: &str) {
        if let Err(PushError::Full) = self.tx.try_send(Outbound::Close(code, reason.to_owned())) {
            self.mark_overflowed();
        }
    }

    /// The client is not keeping up: the connection is to be closed at once. Its writer may have emptied the
    /// queue between the refused push and this mark, and would then wait for a frame that never comes, so
    /// a close is queued past the bound (once per connection) to wake it; it closes on seeing the mark.
    fn mark_overflowed(&self) {
        if !self.overflowed.swap(true, Ordering::AcqRel) {
            tracing::debug!(socket_id = %self.socket_id, "outbound queue full; closing the slow client");
            self.closed.notify_one();
            self.tx
                .push_past_bound(Outbound::Close(Self::OVERFLOW_CODE, OVERFLOW_REASON.into()));
        }
    }

    /// True once the queue overflowed: the writer must stop and close with [`close_code::OVER_CAPACITY`].
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Resolves when the connection overflowed and must be closed at once.
    pub async fn overflow(&self) {
        while !self.overflowed() {
            self.closed.notified().await;
        }
    }

    /// The close code for a connection that overflowed.
    pub const OVERFLOW_CODE: u16 = close_code::OVER_CAPACITY;
}

/// The close reason for a connection that overflowed.
pub const OVERFLOW_REASON: &str = "Client too slow: outbound queue full";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_marks_the_connection() {
        let (conn, mut rx) = ConnectionHandle::new(SocketId::new(1, 1), 2);
        assert!(conn.send(Bytes::from_static(b"a")));
        assert!(conn.send(Bytes::from_static(b"b")));
        assert!(!conn.overflowed());
        assert!(!conn.send(Bytes::from_static(b"c")));
        assert!(conn.overflowed());
        conn.overflow().await;
        assert!(matches!(rx.recv().await, Some(Outbound::Frame(b)) if &b[..] == b"a"));
    }

    /// A writer that emptied the queue before the connection was marked still hears of it: it does not wait
    /// for a next frame, or for the activity timeout, to close the slow client.
    #[tokio::test]
    async fn an_overflow_wakes_a_writer_that_emptied_the_queue() {
        let (conn, mut rx) = ConnectionHandle::new(SocketId::new(1, 1), 1);
        assert!(conn.send(Bytes::from_static(b"a")));
        assert!(!conn.send(Bytes::from_static(b"b")));
        assert!(
            !conn.send(Bytes::from_static(b"c")),
            "still full: the close went past the bound"
        );
        assert!(matches!(rx.recv().await, Some(Outbound::Frame(b)) if &b[..] == b"a"));
        let next = tokio::time::timeout(std::time::Duration::from_secs(2), rx.recv()).await;
        assert!(
            matches!(next, Ok(Some(Outbound::Close(ConnectionHandle::OVERFLOW_CODE, _)))),
            "the writer is woken with the overflow's close: {next:?}"
        );
        assert!(
            rx.try_recv().is_none(),
            "one close past the bound, not one per refused frame"
        );
    }
}
