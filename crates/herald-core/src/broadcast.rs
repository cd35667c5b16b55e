//! A broadcast: one frame, encoded once, on its way to every subscriber of a channel on every node. Recipients
//! share its bytes; the two exclusions say who must not get it.

use crate::connection::Protocol;
use crate::member_event::MemberEvent;
use bytes::Bytes;
use herald_protocol::SocketId;
use std::sync::OnceLock;

/// One broadcast on one channel.
#[derive(Debug, Clone)]
pub struct Broadcast {
    /// The Pusher frame exactly as recipients get it.
    pub frame: Bytes,
    /// The connection that sent it and must not hear it back (`toOthers()`, client events).
    pub except: Option<SocketId>,
    /// Set on member events: who joined or left (see [`crate::member_event`] for how they are delivered).
    pub member: Option<MemberEvent>,
    /// The same broadcast for socket.io clients, built by the first of them it reaches (None: nothing they
    /// are sent, such as an encrypted channel's sealed payload).
    socketio: OnceLock<Option<Bytes>>,
}

impl Broadcast {
    /// A frame for everyone on the channel but `except`.
    pub fn new(frame: impl Into<Bytes>, except: Option<SocketId>) -> Self {
        Broadcast {
            frame: frame.into(),
            except,
            member: None,
            socketio: OnceLock::new(),
        }
    }

    /// The bytes a client speaking `protocol` gets, encoded once per broadcast and shared (None: this
    /// broadcast is not for such clients).
    pub fn for_protocol(&self, protocol: Protocol) -> Option<&Bytes> {
        match protocol {
            Protocol::Pusher => Some(&self.frame),
            Protocol::SocketIo => self
                .socketio
                .get_or_init(|| herald_protocol::socketio::broadcast_packet(&self.frame).map(Bytes::from))
                .as_ref(),
        }
    }

    /// A broadcast that closes its recipients instead of sending them a frame (the HTTP API's
    /// `terminate_connections`). It travels like any broadcast; its frame is empty, which no real frame is.
    pub fn terminate() -> Self {
        Broadcast::new(Bytes::new(), None)
    }

    pub fn is_terminate(&self) -> bool {
        self.frame.is_empty()
    }
}
