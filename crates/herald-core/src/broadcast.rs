//! A broadcast: one frame, encoded once, on its way to every subscriber of a channel on every node. Recipients
//! share its bytes; the two exclusions say who must not get it.

use crate::member_event::MemberEvent;
use bytes::Bytes;
use herald_protocol::SocketId;

/// One broadcast on one channel.
#[derive(Debug, Clone)]
pub struct Broadcast {
    /// The Pusher frame exactly as recipients get it.
    pub frame: Bytes,
    /// The connection that sent it and must not hear it back (`toOthers()`, client events).
    pub except: Option<SocketId>,
    /// Set on member events: who joined or left (see [`crate::member_event`] for how they are delivered).
    pub member: Option<MemberEvent>,
}

impl Broadcast {
    /// A frame for everyone on the channel but `except`.
    pub fn new(frame: impl Into<Bytes>, except: Option<SocketId>) -> Self {
        Broadcast {
            frame: frame.into(),
            except,
            member: None,
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
