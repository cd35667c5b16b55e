//! Engine.IO's callbacks: a client connected (start its session), sent a packet (pass it to the session, in
//! order), or is gone (the session sees the socket close). Engine.IO calls these synchronously, so nothing
//! here waits: packets go to the session through a bounded inbox, and a client that fills it is closed.

use super::session;
use super::Context;
use engineioxide::handler::EngineIoHandler;
use engineioxide::socket::{DisconnectReason, Socket};
use engineioxide::Str;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Packets, and bytes, a client may have waiting for its session before it is closed as flooding (a page
/// subscribing to many private channels waits on the app's auth URL for each, in order).
const INBOX: usize = 256;
const INBOX_BYTES: usize = 256 * 1024;

impl Link {
    /// The session took a packet of `len` bytes out of the inbox.
    pub fn taken(&self, len: usize) {
        self.inbox_bytes.fetch_sub(len, Ordering::Relaxed);
    }
}

/// What Engine.IO keeps for each socket: the way to its session.
#[derive(Debug, Default)]
pub struct Link {
    inbox: OnceLock<mpsc::Sender<Str>>,
    /// Bytes of the packets waiting in the inbox.
    inbox_bytes: AtomicUsize,
    /// Set once the client filled its inbox and is being closed.
    flooded: AtomicBool,
}

/// Engine.IO's handler for Herald's socket.io endpoint.
pub struct Handler {
    context: Context,
    /// Engine.IO sessions open on this node (polling ones included).
    clients: AtomicUsize,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler").finish_non_exhaustive()
    }
}

impl Handler {
    pub fn new(context: Context) -> Self {
        Handler {
            context,
            clients: AtomicUsize::new(0),
        }
    }

    /// Engine.IO sessions open on this node.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }
}

impl EngineIoHandler for Handler {
    type Data = Link;

    fn on_connect(self: Arc<Self>, socket: Arc<Socket<Link>>) {
        self.clients.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(INBOX);
        let _ = socket.data.inbox.set(tx);
        tokio::spawn(session::run(self.context.clone(), socket, rx));
    }

    fn on_disconnect(&self, socket: Arc<Socket<Link>>, reason: DisconnectReason) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(sid = %socket.id, ?reason, "socket.io client gone");
    }

    fn on_message(self: &Arc<Self>, msg: Str, socket: Arc<Socket<Link>>) {
        let Some(inbox) = socket.data.inbox.get() else { return };
        let len = msg.as_str().len();
        let over = socket.data.inbox_bytes.fetch_add(len, Ordering::Relaxed) + len > INBOX_BYTES;
        let sent = match over {
            true => Err(()),
            false => inbox.try_send(msg).map_err(|_| ()),
        };
        if sent.is_err() {
            socket.data.inbox_bytes.fetch_sub(len, Ordering::Relaxed);
            // Once per client (the rest of a polling batch arrives after the close), once a second at most.
            if !socket.data.flooded.swap(true, Ordering::Relaxed) {
                static FLOODS_LOGGED: crate::log_every::LogEvery = crate::log_every::LogEvery::new();
                if FLOODS_LOGGED.allow() {
                    tracing::info!(sid = %socket.id, "socket.io client closed: it sent {INBOX} packets faster than they could be handled");
                }
                socket.close(DisconnectReason::PacketParsingError);
            }
        }
    }

    fn on_binary(self: &Arc<Self>, _data: bytes::Bytes, socket: Arc<Socket<Link>>) {
        tracing::debug!(sid = %socket.id, "socket.io client sent binary data, which Echo never does; ignored");
    }
}
