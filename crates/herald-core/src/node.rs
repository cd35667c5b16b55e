//! The node: the apps, the backbone, the presence store and the settings every connection shares.
//! The server builds one at start and hands each new WebSocket a [`Session`] from it.

use crate::app::{App, AppRegistry};
use crate::backbone::{Backbone, BackboneError, Broadcast};
use crate::cluster_stats::ClusterStats;
use crate::connection::{ConnectionHandle, Outbound};
use crate::presence_store::PresenceStore;
use crate::session::Session;
use crate::socket_ids::SocketIdGenerator;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Per-connection limits and timers, the same for every app.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// Advertised in `connection_established`; a client silent this long is pinged.
    pub activity_timeout: Duration,
    /// How long a pinged client has to answer before it is closed with 4201.
    pub pong_timeout: Duration,
    /// Largest WebSocket message accepted from a client, in bytes.
    pub max_message_size: usize,
    /// Frames a connection may have queued before it is closed as too slow (4100).
    pub outbound_queue: usize,
    /// Messages a client may send each second, on average, and in a burst.
    pub message_rate: u32,
    pub message_burst: u32,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            activity_timeout: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(30),
            max_message_size: 16 * 1024,
            outbound_queue: 1024,
            message_rate: 100,
            message_burst: 200,
        }
    }
}

/// Everything the connections of one node share.
pub struct Node {
    pub apps: Arc<AppRegistry>,
    pub backbone: Arc<dyn Backbone>,
    pub presence: Arc<dyn PresenceStore>,
    pub stats: Arc<dyn ClusterStats>,
    pub webhooks: crate::webhook::Webhooks,
    pub cache: Arc<dyn crate::cache_store::CacheStore>,
    pub settings: NodeSettings,
    socket_ids: SocketIdGenerator,
    connections: AtomicUsize,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl Node {
    pub fn new(
        apps: Arc<AppRegistry>,
        backbone: Arc<dyn Backbone>,
        presence: Arc<dyn PresenceStore>,
        stats: Arc<dyn ClusterStats>,
        webhooks: crate::webhook::Webhooks,
        cache: Arc<dyn crate::cache_store::CacheStore>,
        settings: NodeSettings,
    ) -> Arc<Self> {
        Arc::new(Node {
            apps,
            backbone,
            presence,
            stats,
            webhooks,
            cache,
            settings,
            socket_ids: SocketIdGenerator::random(),
            connections: AtomicUsize::new(0),
        })
    }

    /// A node on the embedded default: in-memory backbone and presence.
    pub fn embedded(apps: Vec<crate::AppConfig>, settings: NodeSettings) -> Arc<Self> {
        let apps = Arc::new(AppRegistry::new(apps));
        let backbone = Arc::new(crate::memory_backbone::MemoryBackbone::new());
        backbone.attach(apps.clone());
        let webhooks = crate::webhook::Webhooks::default();
        let stats = Arc::new(crate::memory_stats::MemoryStats::new());
        stats.attach(apps.clone(), webhooks.clone());
        let presence = Arc::new(crate::memory_presence::MemoryPresence::new());
        let cache = Arc::new(crate::memory_cache::MemoryCache::new());
        Node::new(apps, backbone, presence, stats, webhooks, cache, settings)
    }

    /// A new connection to `app`: its session and the queue its socket writer drains.
    pub fn connect(self: &Arc<Self>, app: Arc<App>) -> (Session, mpsc::Receiver<Outbound>) {
        let (conn, rx) = ConnectionHandle::new(self.socket_ids.next(), self.settings.outbound_queue);
        self.connections.fetch_add(1, Ordering::Relaxed);
        app.metrics.connections.inc();
        app.metrics.connections_opened.inc();
        app.connection_delta(1);
        self.stats.connections_changed(&app.config.id, 1);
        (Session::new(self.clone(), app, Arc::new(conn)), rx)
    }

    pub(crate) fn disconnected(&self, app: &App) {
        app.metrics.connections.dec();
        app.connection_delta(-1);
        self.stats.connections_changed(&app.config.id, -1);
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Open connections on this node.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Publishes a broadcast to every subscriber of the channel on every node.
    pub async fn publish(&self, app: &App, channel: &str, broadcast: Broadcast) -> Result<(), BackboneError> {
        self.backbone.publish(&app.config, channel, broadcast).await
    }
}
