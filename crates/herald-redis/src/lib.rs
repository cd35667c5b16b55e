//! Redis as the cluster's shared state, behind the core's four backend traits: the backbone (Laravel's
//! RedisBroadcaster channels in, Herald's own channels both ways), presence in hashes changed by Lua scripts,
//! cluster counts, and cache channels' last events; plus node leases and reaping (`liveness`). Every adapter
//! stores and carries only: what it observes goes to the node through `BackendEvents`.
//!
//! [`node`] builds a node on Redis the way `Node::embedded` builds one in memory.

pub mod connection;
pub mod envelope;
pub mod keys;
pub mod liveness;
pub mod redis_backbone;
pub mod redis_cache;
pub mod redis_presence;
pub mod redis_stats;

pub use redis_backbone::RedisBackbone;
pub use redis_cache::RedisCache;
pub use redis_presence::RedisPresence;
pub use redis_stats::RedisStats;

use herald_core::backends::{Backends, Lifecycle};
use herald_core::{AppConfig, BoxFuture, Events, Node, NodeSettings};
use std::sync::Arc;
use std::time::Duration;

/// How a node uses Redis.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port/db`.
    pub url: String,
    /// How long a node's lease lasts; a node silent longer is reaped (its members leave).
    pub lease: Duration,
}

/// Why Redis cannot be used as configured.
#[derive(Debug, thiserror::Error)]
#[error("HERALD_REDIS_URL {url:?} is not a Redis URL ({reason}); expected redis://host:6379/0")]
pub struct RedisConfigError {
    pub url: String,
    pub reason: String,
}

/// A node on Redis: the counterpart of `Node::embedded`. Starts at once; until Redis answers the node is
/// unready and retries.
pub fn node(
    apps: Vec<AppConfig>,
    settings: NodeSettings,
    redis: &RedisSettings,
) -> Result<Arc<Node>, RedisConfigError> {
    let client = redis::Client::open(redis.url.as_str()).map_err(|e| RedisConfigError {
        url: redis.url.clone(),
        reason: e.to_string(),
    })?;
    let node_id = format!("{:016x}", redis_backbone::rand_u64());
    let lease = redis.lease;
    tracing::info!(node_id, lease_ms = lease.as_millis() as u64, "cluster mode");
    let configs = apps.clone();
    Ok(Node::start(apps, settings, move |events| {
        backends(client, &configs, node_id, lease, events)
    }))
}

/// The Redis backends of one node, reporting to `events`.
fn backends(client: redis::Client, apps: &[AppConfig], node_id: String, lease: Duration, events: Events) -> Backends {
    let backbone = RedisBackbone::start(client.clone(), apps, &node_id, events.clone());
    let presence = RedisPresence::new(client.clone(), node_id.clone(), lease);
    let stats = RedisStats::new(client.clone(), &node_id, events.clone());
    let cache = RedisCache::new(client);
    let liveness = liveness::Liveness::new(presence.clone(), stats.clone(), events);
    let running = liveness.clone().spawn(lease);
    Backends {
        backbone,
        presence,
        stats,
        cache,
        lifecycle: Box::new(Leased { liveness, running }),
    }
}

/// The lease a Redis node holds, given back when it stops.
struct Leased {
    liveness: liveness::Liveness,
    running: liveness::Running,
}

impl Lifecycle for Leased {
    fn retire(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.liveness.retire(&self.running))
    }
}
