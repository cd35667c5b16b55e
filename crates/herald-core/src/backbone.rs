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
