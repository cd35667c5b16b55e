//! The node core: everything a Herald node decides, with no sockets and no Redis in sight. The [`Node`]
//! owns every effect the cluster sees (subscriptions, member events, occupied/vacated, webhooks, metrics);
//! a [`Session`] applies the Pusher rules to what one client sends and calls the node. Other nodes and
//! shared state are reached only through four backend traits ([`Backbone`], [`PresenceStore`],
//! [`ClusterStats`], [`CacheStore`]), with in-memory implementations in [`memory`] (the embedded default)
//! and Redis ones in `herald-redis`; backends report what they observe through [`BackendEvents`].

pub mod app;
pub mod authorize;
pub mod backbone;
pub mod backend_events;
pub mod backends;
pub mod broadcast;
pub mod cache_store;
pub mod channel_index;
pub mod client_event;
pub mod cluster_stats;
pub mod connection;
pub mod console;
pub mod internal_channel;
pub mod member_event;
pub mod memory;
pub mod metrics;
pub mod node;
pub mod outbound_queue;
pub mod presence_store;
pub mod rate_limit;
pub mod refusal;
pub mod session;
pub mod socket_ids;
pub mod testing;
pub mod webhook;
pub mod webhook_outbox;

pub use app::{App, AppConfig, AppRegistry};
pub use backbone::{Backbone, BackboneError};
pub use backend_events::{BackendEvents, Events};
pub use backends::Backends;
pub use broadcast::Broadcast;
pub use cache_store::CacheStore;
pub use cluster_stats::ClusterStats;
pub use connection::{ConnectionHandle, Outbound};
pub use node::{ConsoleWatch, Node, NodeSettings, Seat, Source};
pub use presence_store::PresenceStore;
pub use refusal::Refusal;
pub use session::Session;

/// A boxed future, so the backend traits stay object safe.
pub use futures_util::future::BoxFuture;
