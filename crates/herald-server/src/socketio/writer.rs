//! Sends what the node queues for a socket.io client. Broadcasts arrive already in socket.io's form, built
//! once per broadcast ([`herald_core::Broadcast::for_protocol`]) and shared; the answers the node builds for
//! one connection (the member list, a refusal, a cache channel's last event) arrive as Pusher frames and are
//! translated here. The writer also keeps the members of each presence channel the client is on, because
//! Echo's `leaving` callback reads the leaving member's `user_info`, which a member event does not carry.

use super::engine::Link;
use bytes::Bytes;
use engineioxide::socket::{DisconnectReason, Socket};
use engineioxide::Str;
use herald_core::{ConnectionHandle, Outbound};
use herald_protocol::socketio::{self, Translated};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The members a client was shown, per presence channel: user id to the member object it got.
pub type Shown = Arc<Mutex<HashMap<String, HashMap<String, String>>>>;

/// Why the writer stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The socket closed, or the node asked for it to close.
    Closed,
    /// The client did not keep up: its queue or Engine.IO's buffer filled.
    TooSlow,
}

/// Drains the connection's queue into the socket until either ends.
pub async fn write(
    socket: Arc<Socket<Link>>,
    conn: Arc<ConnectionHandle>,
    mut rx: herald_core::outbound_queue::Receiver,
    shown: Shown,
) -> Stopped {
    loop {
        // The overflow first: a connection marked as overflowed also has a close queued, which must not be
        // taken for the node's own close.
        let out = tokio::select! {
            biased;
            _ = conn.overflow() => return Stopped::TooSlow,
            out = rx.recv() => out,
            _ = socket.closed() => return Stopped::Closed,
        };
        let sent = match out {
            None => return Stopped::Closed,
            Some(Outbound::Frame(bytes)) => send_frame(&socket, bytes, &shown),
            Some(Outbound::Pong(_)) => Ok(()),
            Some(Outbound::Close(_, reason)) => {
                tracing::debug!(sid = %socket.id, reason, "socket.io client closed by the node");
                socket.close(DisconnectReason::ClosingServer);
                return Stopped::Closed;
            }
        };
        if let Err(stopped) = sent {
            return stopped;
        }
    }
}

fn send_frame(socket: &Socket<Link>, bytes: Bytes, shown: &Shown) -> Result<(), Stopped> {
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        // A packet in socket.io's form (a broadcast, or an answer of the session's); member events keep the
        // client's list of members. Pusher frames start with `{`.
        if let Some(change) = socketio::presence_change(&bytes) {
            // Only for channels the client is on (an event queued before it left finds none).
            let mut shown = shown.lock().expect("shown members");
            let members = shown.get_mut(&change.channel);
            if change.joined {
                if let Some(members) = members {
                    members.insert(change.user_id, change.member);
                }
            } else {
                let member = members.and_then(|m| m.remove(&change.user_id)).unwrap_or(change.member);
                drop(shown);
                return emit(socket, socketio::leaving(&change.channel, &member));
            }
        }
        return emit_shared(socket, bytes);
    }
    match socketio::from_pusher(&bytes) {
        Translated::Packet(packet) => emit(socket, packet),
        Translated::Subscribed { channel, members } => {
            let packet = socketio::subscribed(&channel, members.iter().map(|(_, m)| m.as_str()));
            shown
                .lock()
                .expect("shown members")
                .insert(channel, members.into_iter().collect());
            emit(socket, packet)
        }
        Translated::Nothing => Ok(()),
    }
}

fn emit(socket: &Socket<Link>, packet: Vec<u8>) -> Result<(), Stopped> {
    match String::from_utf8(packet) {
        Ok(text) => check(socket.emit(Str::from(text))),
        Err(_) => Ok(()),
    }
}

/// Sends shared bytes without copying them.
fn emit_shared(socket: &Socket<Link>, bytes: Bytes) -> Result<(), Stopped> {
    if std::str::from_utf8(&bytes).is_err() {
        return Ok(());
    }
    // SAFETY: checked just above to be UTF-8.
    let text = unsafe { Str::from_bytes_unchecked(bytes) };
    check(socket.emit(text))
}

fn check<T>(sent: Result<(), tokio::sync::mpsc::error::TrySendError<T>>) -> Result<(), Stopped> {
    use tokio::sync::mpsc::error::TrySendError;
    match sent {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => Err(Stopped::TooSlow),
        Err(TrySendError::Closed(_)) => Err(Stopped::Closed),
    }
}
