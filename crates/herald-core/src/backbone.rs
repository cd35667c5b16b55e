//! The backbone: how a broadcast reaches every node, this one included. The node tells it which channels
//! have local subscribers; it reports what arrives on them to the node's [`BackendEvents`] handler. In
//! memory it is a direct call; over Redis it is pub/sub (`herald-redis`).
//!
//! [`BackendEvents`]: crate::backend_events::BackendEvents

use crate::{AppConfig, BoxFuture, Broadcast};

/// Why a publish did not go out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackboneError {
    /// Redis did not take the message (unreachable, timed out, refused).
    #[error("Redis did not take the message: {0}")]
    Unavailable(String),
    /// The node is stopping and no longer publishes.
    #[error("the node is shutting down")]
    ShuttingDown,
}

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
