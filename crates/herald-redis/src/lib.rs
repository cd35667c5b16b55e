//! Redis as the cluster's shared state, behind the core's four backend traits: the backbone (Laravel's
//! RedisBroadcaster channels in, Herald's own channels both ways), presence in hashes changed by Lua scripts,
//! cluster counts, and cache channels' last events; plus node leases and reaping (`liveness`). Every adapter
//! stores and carries only: what it observes goes to the node through `BackendEvents`.
//!
//! [`node`] builds a node on Redis the way `Node::embedded` builds one in memory.

pub mod connection;
pub mod endpoint;
pub mod envelope;
pub mod keys;
pub mod liveness;
pub mod redis_backbone;
pub mod redis_cache;
pub mod redis_presence;
pub mod redis_stats;
pub mod redis_webhook_outbox;

pub use endpoint::{Endpoint, SentinelUrl};
pub use redis_backbone::RedisBackbone;
pub use redis_cache::RedisCache;
pub use redis_presence::RedisPresence;
pub use redis_stats::RedisStats;
pub use redis_webhook_outbox::RedisWebhookOutbox;

use herald_core::backends::{Backends, Lifecycle};
use herald_core::{AppConfig, BoxFuture, Events, Node, NodeSettings};
use std::sync::Arc;
use std::time::Duration;

/// How a node uses Redis.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port/db`, or `rediss://` for TLS.
    pub url: String,
    /// How long a node's lease lasts; a node silent longer is reaped (its members leave).
    pub lease: Duration,
    /// TLS settings for `rediss://`.
    pub tls: RedisTls,
}

/// TLS towards Redis: a CA bundle when Redis's certificate is not signed by a system root, a client
/// certificate for mutual TLS, and, for self-signed test setups only, no verification at all.
#[derive(Debug, Clone, Default)]
pub struct RedisTls {
    /// PEM CA bundle.
    pub ca: Option<Vec<u8>>,
    /// PEM client certificate and key.
    pub client_cert: Option<Vec<u8>>,
    pub client_key: Option<Vec<u8>>,
    /// Accept any certificate (logged as a warning at every start).
    pub insecure: bool,
}

impl RedisTls {
    /// True when anything is set.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.client_cert.is_some() || self.insecure
    }
}

/// Where Redis is for `settings`: a Sentinel-named primary, or one address with its TLS settings applied.
fn endpoint(settings: &RedisSettings) -> Result<Endpoint, RedisConfigError> {
    let bad = |reason: String| RedisConfigError {
        url: settings.url.clone(),
        reason,
    };
    if settings.url.starts_with("rediss+sentinel://") {
        return Err(bad("TLS through Sentinel is not supported yet; use redis+sentinel:// on a private network, or rediss:// to one address".into()));
    }
    if let Some(parsed) = SentinelUrl::parse(&settings.url) {
        if settings.tls.is_set() {
            return Err(bad("the Redis TLS settings (HERALD_REDIS_CA_FILE, HERALD_REDIS_CLIENT_CERT_FILE, HERALD_REDIS_TLS_INSECURE) do not apply to redis+sentinel://".into()));
        }
        return parsed.map(Endpoint::sentinel).map_err(bad);
    }
    client(settings).map(Endpoint::direct)
}

/// The Redis client for one address, with its TLS settings applied.
fn client(settings: &RedisSettings) -> Result<redis::Client, RedisConfigError> {
    let bad = |reason: String| RedisConfigError {
        url: settings.url.clone(),
        reason,
    };
    let tls = &settings.tls;
    let mut url = settings.url.clone();
    if tls.insecure {
        tracing::warn!("HERALD_REDIS_TLS_INSECURE is on: Redis's certificate is NOT verified; anyone between Herald and Redis can read and change everything");
        if !url.contains('#') {
            url.push_str("#insecure");
        }
    }
    if tls.ca.is_none() && tls.client_cert.is_none() {
        return redis::Client::open(url.as_str()).map_err(|e| bad(e.to_string()));
    }
    let client_tls = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.clone(),
        }),
        _ => None,
    };
    let certs = redis::TlsCertificates {
        client_tls,
        root_cert: tls.ca.clone(),
    };
    redis::Client::build_with_tls(url.as_str(), certs).map_err(|e| bad(e.to_string()))
}

/// Why Redis cannot be used as configured.
#[derive(Debug, thiserror::Error)]
#[error("HERALD_REDIS_URL {url:?} cannot be used ({reason}); expected redis://host:6379/0 or rediss://user:pass@redis.example:6380/0")]
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
    let client = endpoint(redis)?;
    let node_id = format!("{:016x}", redis_backbone::rand_u64());
    let lease = redis.lease;
    tracing::info!(node_id, lease_ms = lease.as_millis() as u64, "cluster mode");
    let configs = apps.clone();
    Ok(Node::start(apps, settings, move |events| {
        backends(client, &configs, node_id, lease, events)
    }))
}

/// The Redis backends of one node, reporting to `events`.
fn backends(client: Endpoint, apps: &[AppConfig], node_id: String, lease: Duration, events: Events) -> Backends {
    let backbone = RedisBackbone::start(client.clone(), apps, &node_id, events.clone());
    let presence = RedisPresence::new(client.clone(), node_id.clone(), lease);
    let stats = RedisStats::new(client.clone(), &node_id, events.clone());
    let webhooks = RedisWebhookOutbox::new(client.clone(), &node_id, lease);
    let cache = RedisCache::new(client.clone());
    let liveness = liveness::Liveness::new(presence.clone(), stats.clone(), events, client);
    let running = liveness.clone().spawn(lease);
    Backends {
        backbone,
        presence,
        stats,
        cache,
        webhooks,
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
