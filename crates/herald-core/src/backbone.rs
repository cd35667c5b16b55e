//! The backbone: how a broadcast reaches every node, this one included. The node tells it which channels
//! have local subscribers; it delivers what is published on those channels to [`AppRegistry`] fan-out.
//! In memory it is a direct call; over Redis it is pub/sub (`herald-redis`).

use crate::{AppConfig, BoxFuture};
use bytes::Bytes;
use herald_protocol::SocketId;

/// One broadcast on one channel: the frame, encoded once, and the connection to skip (`toOthers()`).
#[derive(Debug, Clone)]
pub struct Broadcast {
    pub frame: Bytes,
    pub except: Option<SocketId>,
}

impl Broadcast {
    /// A broadcast that closes its recipients instead of sending them a frame (the HTTP API's
    /// `terminate_connections`). It travels like any broadcast; its frame is empty, which no real frame is.
    pub fn terminate() -> Self {
        Broadcast {
            frame: Bytes::new(),
            except: None,
        }
    }

    pub fn is_terminate(&self) -> bool {
        self.frame.is_empty()
    }
}

/// The internal channel every connection signed in as `user_id` is on, so the user can be reached on
/// every node. Clients cannot subscribe to it: `#` starts no channel name they may use but `#server-to-user-`.
pub fn user_channel(user_id: &str) -> String {
    format!("#herald-user-{user_id}")
}

/// Why a publish did not go out.
#[derive(Debug)]
pub struct BackboneError(pub String);

impl std::fmt::Display for BackboneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "backbone unavailable: {}", self.0)
    }
}

impl std::error::Error for BackboneError {}

/// Cluster-wide delivery. `subscribe` and `unsubscribe` are called in order, once per transition of a
/// channel between "no local subscriber" and "some"; the future `subscribe` returns resolves once
/// messages published from then on will be delivered.
pub trait Backbone: Send + Sync + 'static {
    fn subscribe(&self, app: &AppConfig, channel: &str) -> BoxFuture<'static, ()>;
    fn unsubscribe(&self, app: &AppConfig, channel: &str);
    fn publish(
        &self,
        app: &AppConfig,
        channel: &str,
        broadcast: Broadcast,
    ) -> BoxFuture<'static, Result<(), BackboneError>>;
    /// True while messages from other publishers are being received.
    fn is_ready(&self) -> bool;
}
