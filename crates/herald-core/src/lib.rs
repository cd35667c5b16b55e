//! The node core: everything a Herald node decides, with no sockets and no Redis in sight. Connections are
//! handles with a bounded outbound queue; the channel index fans a broadcast's shared bytes out to them; the
//! session applies the Pusher rules to what a client sends. Other nodes and shared presence state are reached
//! only through the [`Backbone`] and [`PresenceStore`] traits, each with an in-memory implementation here
//! (the embedded default) and a Redis one in `herald-redis`.

pub mod app;
pub mod backbone;
pub mod cache_store;
pub mod channel_index;
pub mod client_event;
pub mod cluster_stats;
pub mod connection;
pub mod memory_backbone;
pub mod memory_cache;
pub mod memory_presence;
pub mod memory_stats;
pub mod metrics;
pub mod node;
pub mod presence;
pub mod presence_store;
pub mod rate_limit;
pub mod session;
pub mod socket_ids;
pub mod webhook;

pub use app::{App, AppConfig, AppRegistry};
pub use backbone::{user_channel, Backbone, BackboneError, Broadcast};
pub use cluster_stats::ClusterStats;
pub use connection::{ConnectionHandle, Outbound};
pub use node::{Node, NodeSettings};
pub use presence_store::PresenceStore;
pub use session::Session;

/// A boxed future, so the backbone and presence-store traits stay object safe.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
