//! The node: the one owner of everything the cluster sees from this process. Subscriptions and the channel
//! index, member events, `channel_occupied`/`vacated`, webhooks and metrics are changed only through its
//! methods; its backends (backbone, presence store, cluster counts, cache) store and carry, and report what
//! they observe back through [`BackendEvents`](crate::backend_events::BackendEvents), which the node
//! implements (in `events.rs`). Sessions parse and authorise, then call the node.
//!
//! The methods are grouped by concern: `subscriptions.rs` (joining and leaving channels), `presence.rs`
//! (member events), `broadcasts.rs` (publishing and delivering), `events.rs` (facts from the backends),
//! `queries.rs` (cluster-wide counts for the HTTP API and limits).

mod broadcasts;
mod console;
mod events;
mod presence;
mod queries;
mod reload;
mod subscriptions;

pub use broadcasts::Source;
pub use console::ConsoleWatch;
pub use reload::Reloaded;

use crate::app::{App, AppRegistry};
use crate::backbone::Backbone;
use crate::backend_events::Events;
use crate::backends::{Backends, Lifecycle};
use crate::cache_store::CacheStore;
use crate::cluster_stats::{Admission, ClusterStats};
use crate::connection::{ConnectionHandle, Protocol};
use crate::console::ConsoleEvent;
use crate::presence_store::PresenceStore;
use crate::socket_ids::SocketIdGenerator;
use crate::webhook::WebhookEvent;
use crate::webhook_outbox::WebhookOutbox;
use crate::AppConfig;
use herald_protocol::SocketId;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// A connection's place under its app's quota, from [`Node::take_seat`].
#[derive(Debug)]
pub struct Seat {
    /// The admission counted the connection already.
    counted: bool,
}

/// Everything the connections of one node share, and the only way to change what the cluster sees.
pub struct Node {
    node_id: String,
    /// Swapped whole by a reload; read without a lock.
    apps: arc_swap::ArcSwap<AppRegistry>,
    /// Counts reloads, so a session notices that its app's settings may have changed.
    generation: std::sync::atomic::AtomicU64,
    backbone: Arc<dyn Backbone>,
    presence: Arc<dyn PresenceStore>,
    stats: Arc<dyn ClusterStats>,
    cache: Arc<dyn CacheStore>,
    lifecycle: Box<dyn Lifecycle>,
    webhooks: Arc<dyn WebhookOutbox>,
    settings: NodeSettings,
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
    /// Starts a node: `backends` builds its backends around the handle they report to.
    pub fn start(apps: Vec<AppConfig>, settings: NodeSettings, backends: impl FnOnce(Events) -> Backends) -> Arc<Self> {
        Arc::new_cyclic(|me| {
            let events: Events = Arc::new(events::NodeEvents::new(me.clone()));
            let Backends {
                node_id,
                backbone,
                presence,
                stats,
                cache,
                webhooks,
                lifecycle,
            } = backends(events);
            Node {
                node_id,
                apps: arc_swap::ArcSwap::from_pointee(AppRegistry::new(apps)),
                generation: Default::default(),
                backbone,
                presence,
                stats,
                cache,
                lifecycle,
                webhooks,
                settings,
                socket_ids: SocketIdGenerator::random(),
                connections: AtomicUsize::new(0),
            }
        })
    }

    /// A node on the embedded default: one process, everything in memory.
    pub fn embedded(apps: Vec<AppConfig>, settings: NodeSettings) -> Arc<Self> {
        Node::start(apps, settings, crate::memory::backends)
    }

    /// How this node is known to the others.
    pub fn id(&self) -> &str {
        &self.node_id
    }

    pub fn settings(&self) -> &NodeSettings {
        &self.settings
    }

    /// The app a WebSocket or auth request names by key.
    pub fn app_by_key(&self, key: &str) -> Option<Arc<App>> {
        self.apps.load().by_key(key).cloned()
    }

    /// The app an HTTP API request names by id.
    pub fn app_by_id(&self, id: &str) -> Option<Arc<App>> {
        self.apps.load().by_id(id).cloned()
    }

    pub fn apps(&self) -> Vec<Arc<App>> {
        self.apps.load().iter().cloned().collect()
    }

    /// The webhook outbox, for the task that delivers it.
    pub fn webhooks(&self) -> &Arc<dyn WebhookOutbox> {
        &self.webhooks
    }

    /// Puts `event` in the outbox when one of `app`'s targets wants it; never waits (a full outbox drops
    /// the event and counts it).
    pub(crate) fn emit_webhook(&self, app: &App, event: WebhookEvent) {
        if !app.config.webhooks.iter().any(|t| t.wants(&event)) {
            return;
        }
        if !self.webhooks.put(&app.config.id, event) {
            crate::metrics::metrics()
                .webhooks
                .with_label_values(&[&app.config.id, "dropped"])
                .inc();
        }
    }

    /// One of `app`'s webhook requests finished: delivered, or given up with the last error.
    pub fn webhook_delivered(&self, app: &App, events: &[&'static str], url: &str, result: Result<(), String>) {
        let label = if result.is_ok() { "sent" } else { "failed" };
        crate::metrics::metrics()
            .webhooks
            .with_label_values(&[&app.config.id, label])
            .inc_by(events.len() as u64);
        self.record(app, || ConsoleEvent::Webhook {
            events: events.iter().map(|e| e.to_string()).collect(),
            url: crate::console::without_credentials(url),
            result: result.err().unwrap_or_else(|| "ok".to_owned()),
        });
    }

    /// A place for a new connection to `app`: under the app's connection quota (counted for the whole
    /// cluster in one atomic step), or None when the app has its quota. Apps without a quota always get one.
    pub async fn take_seat(&self, app: &App) -> Option<Seat> {
        let Some(limit) = app.config.max_connections else {
            return Some(Seat { counted: false });
        };
        match self.stats.admit(&app.config.id, limit).await {
            Admission::Admitted => Some(Seat { counted: true }),
            Admission::Full => None,
            Admission::Unchecked(e) => {
                tracing::warn!(app = %app.config.id, error = %e, "connection quota not checked; the connection is let in");
                Some(Seat { counted: true })
            }
            Admission::NotCounted(e) => {
                tracing::warn!(app = %app.config.id, error = %e, "connection quota not checked; the connection is let in");
                Some(Seat { counted: false })
            }
        }
    }

    /// A new connection to `app` in `seat`, and the queue its socket writer drains.
    pub fn connect(&self, app: &App, seat: Seat) -> (Arc<ConnectionHandle>, crate::outbound_queue::Receiver) {
        self.connect_speaking(app, seat, Protocol::Pusher, self.socket_ids.next())
    }

    /// A new connection to `app` in `seat` from a client speaking `protocol`, known as `socket_id` (a
    /// socket.io client keeps the id its transport gave it, which is the one Echo sends as `X-Socket-ID`).
    pub fn connect_speaking(
        &self,
        app: &App,
        seat: Seat,
        protocol: Protocol,
        socket_id: SocketId,
    ) -> (Arc<ConnectionHandle>, crate::outbound_queue::Receiver) {
        let (conn, rx) = ConnectionHandle::speaking(protocol, socket_id, self.settings.outbound_queue);
        self.connections.fetch_add(1, Ordering::Relaxed);
        app.metrics.opened(protocol);
        if !seat.counted {
            self.stats.connections_changed(&app.config.id, 1);
        }
        self.record(app, || ConsoleEvent::Connected {
            socket_id: conn.socket_id.to_string(),
            protocol: protocol.label(),
        });
        (Arc::new(conn), rx)
    }

    /// A connection to a known app refused before it got a socket id (close `code`, `reason` as sent).
    pub fn connection_refused(&self, app: &App, code: u16, reason: &str) {
        self.record(app, || ConsoleEvent::ConnectionRefused {
            code,
            reason: reason.to_owned(),
        });
    }

    /// A connection ended (after it left every channel); `reason` says why, in words.
    pub fn disconnected(&self, app: &App, conn: &ConnectionHandle, reason: &str) {
        self.record(app, || ConsoleEvent::Disconnected {
            socket_id: conn.socket_id.to_string(),
            reason: reason.to_owned(),
        });
        app.metrics.closed(conn.protocol);
        self.stats.connections_changed(&app.config.id, -1);
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Open connections on this node.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Why the node cannot serve correctly right now, in words an operator reads; None when it can.
    pub fn not_ready(&self) -> Option<&'static str> {
        if !self.backbone.is_ready() {
            Some("Redis subscription not live")
        } else if !self.presence.is_ready() {
            Some("presence lease in Redis not held")
        } else {
            None
        }
    }

    /// Gives back what this node holds in shared state, at the end of a clean shutdown.
    pub async fn retire(&self) {
        self.lifecycle.retire().await;
    }
}
