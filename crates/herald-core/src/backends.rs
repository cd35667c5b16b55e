//! The backends a node runs on, built together: embedded (`memory::backends`) or Redis
//! (`herald_redis::backends`). `main` picks one; nothing else in the node knows which.

use crate::backbone::Backbone;
use crate::cache_store::CacheStore;
use crate::cluster_stats::ClusterStats;
use crate::presence_store::PresenceStore;
use crate::webhook_outbox::WebhookOutbox;
use crate::BoxFuture;
use std::sync::Arc;

/// What a backend set must do when its node stops: stop its background work and give back whatever the node
/// still holds in shared state (for Redis: its lease, presence entries and counts).
pub trait Lifecycle: Send + Sync + 'static {
    fn retire(&self) -> BoxFuture<'_, ()>;
}

/// A lifecycle with nothing to give back (the embedded default).
pub struct NothingToRetire;

impl Lifecycle for NothingToRetire {
    fn retire(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The backends of one node.
pub struct Backends {
    /// How this node is known to the others (in console entries and Redis keys).
    pub node_id: String,
    pub backbone: Arc<dyn Backbone>,
    pub presence: Arc<dyn PresenceStore>,
    pub stats: Arc<dyn ClusterStats>,
    pub cache: Arc<dyn CacheStore>,
    pub webhooks: Arc<dyn WebhookOutbox>,
    pub lifecycle: Box<dyn Lifecycle>,
}
