//! Redis as the cluster's shared state, behind the core's four backend traits: the backbone (Laravel's
//! RedisBroadcaster channels in, Herald's own channels both ways), presence in hashes changed by Lua scripts,
//! cluster counts, and cache channels' last events; plus node leases and reaping (`liveness`). Every adapter
//! stores and carries only: what it observes goes to the node through `BackendEvents`.
//!
//! [`node`] builds a node on Redis the way `Node::embedded` builds one in memory.

pub mod app_store;
pub mod cluster_topology;
pub mod connection;
pub mod endpoint;
pub mod envelope;
pub mod keys;
pub mod liveness;
pub mod member_cache;
pub mod redis_backbone;
pub mod redis_cache;
pub mod redis_presence;
pub mod redis_stats;
pub mod redis_webhook_outbox;
pub mod subscription_link;

pub use app_store::AppStore;
pub use cluster_topology::ClusterUrl;
pub use endpoint::{Endpoint, SentinelUrl, TlsParams};
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
    /// `redis://[user:password@]host:port/db`, `rediss://` for TLS, `redis+sentinel://…` or
    /// `redis+cluster://host1:7000,host2:7001` (`rediss+cluster://` for TLS).
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

    /// The CA bundle and client certificate for redis-rs, when either is set.
    fn certificates(&self) -> Option<redis::TlsCertificates> {
        if self.ca.is_none() && self.client_cert.is_none() {
            return None;
        }
        let client_tls = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
            _ => None,
        };
        Some(redis::TlsCertificates {
            client_tls,
            root_cert: self.ca.clone(),
        })
    }
}

/// The forms a Redis URL may take, for error messages.
const URL_FORMS: &str = "expected redis://[user:password@]host:6379[/db], rediss://… for TLS, redis+sentinel://host1:26379,host2:26379/mymaster[/db], or redis+cluster://host1:7000,host2:7001 (rediss+sentinel:// and rediss+cluster:// for TLS)";

/// Checks a Redis URL's form before anything connects (the scheme, the host, the port); the error shows the
/// URL with its password masked, says what is wrong, and shows the expected forms.
pub fn check_url(url: &str) -> Result<(), String> {
    let shown = masked(url);
    if let Some(parsed) = SentinelUrl::parse(url) {
        return parsed
            .map(|_| ())
            .map_err(|why| format!("{shown:?}: {why}; {URL_FORMS}"));
    }
    if let Some(parsed) = ClusterUrl::parse(url) {
        return parsed
            .map(|_| ())
            .map_err(|why| format!("{shown:?}: {why}; {URL_FORMS}"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{shown:?} has no scheme; {URL_FORMS}"));
    };
    if !matches!(scheme, "redis" | "rediss" | "unix" | "redis+unix") {
        return Err(format!("{shown:?}: {scheme}:// is not a Redis scheme; {URL_FORMS}"));
    }
    if matches!(scheme, "redis" | "rediss") {
        // The user information ends at the last `@` (a password may hold `/` or `?`); the host at `/?#`.
        let after_auth = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host_port = after_auth.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((_, port)) = host_port.rsplit_once(':').filter(|_| !host_port.ends_with(']')) {
            if port.parse::<u16>().is_err() {
                return Err(format!("{shown:?}: the port {port:?} is not a number; {URL_FORMS}"));
            }
        }
        if host_port.is_empty() || host_port.starts_with(':') {
            return Err(format!("{shown:?} names no host; {URL_FORMS}"));
        }
    }
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| format!("{shown:?} cannot be used ({e}); {URL_FORMS}"))
}

/// The URL with any password replaced by `***`, for messages: everything between `://` and the last `@`
/// is the user information, whatever characters the password holds.
pub fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let secret = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{secret}@{host}")
        }
        None => url.to_owned(),
    }
}

/// Where Redis is for `settings`: a Sentinel-named primary, or one address with its TLS settings applied.
fn endpoint(settings: &RedisSettings) -> Result<Endpoint, RedisConfigError> {
    let bad = |reason: String| RedisConfigError {
        url: settings.url.clone(),
        reason,
    };
    // TLS for the Sentinel and Cluster forms: on with their `rediss+` scheme, which the TLS settings need.
    let tls_params = |on: bool, scheme: &str| {
        let tls = &settings.tls;
        if !on && tls.is_set() {
            return Err(bad(format!("the Redis TLS settings (HERALD_REDIS_CA_FILE, HERALD_REDIS_CLIENT_CERT_FILE, HERALD_REDIS_TLS_INSECURE) need {scheme}")));
        }
        if tls.insecure {
            warn_insecure();
        }
        Ok(TlsParams {
            on,
            certificates: tls.certificates(),
            insecure: tls.insecure,
        })
    };
    if let Some(parsed) = SentinelUrl::parse(&settings.url) {
        let url = parsed.map_err(bad)?;
        let tls = tls_params(url.tls, "rediss+sentinel://")?;
        return Ok(Endpoint::sentinel(url, tls));
    }
    if let Some(parsed) = ClusterUrl::parse(&settings.url) {
        let url = parsed.map_err(bad)?;
        let tls = tls_params(url.tls, "rediss+cluster://")?;
        return Ok(Endpoint::cluster(cluster_topology::ClusterNodes::new(url, tls)));
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
        warn_insecure();
        if !url.contains('#') {
            url.push_str("#insecure");
        }
    }
    match tls.certificates() {
        None => redis::Client::open(url.as_str()).map_err(|e| bad(e.to_string())),
        Some(certs) => redis::Client::build_with_tls(url.as_str(), certs).map_err(|e| bad(e.to_string())),
    }
}

fn warn_insecure() {
    tracing::warn!("HERALD_REDIS_TLS_INSECURE is on: Redis's certificate is NOT verified; anyone between Herald and Redis can read and change everything");
}

/// Why Redis cannot be used as configured.
#[derive(Debug, thiserror::Error)]
#[error(
    "Redis URL {:?} cannot be used ({reason}); expected redis://host:6379/0 or rediss://user:pass@redis.example:6380/0",
    masked(url)
)]
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
    if client.layout() == keys::Layout::Cluster {
        // An app id becomes part of a hash tag on Redis Cluster: a brace in it would move the tag.
        if let Some(app) = apps.iter().find(|a| a.id.contains(['{', '}'])) {
            return Err(RedisConfigError {
                url: redis.url.clone(),
                reason: format!(
                    "app id {:?} has a brace, which Redis Cluster's key names cannot carry; rename the app",
                    app.id
                ),
            });
        }
    }
    let node_id = format!("{:016x}", redis_backbone::rand_u64());
    let lease = redis.lease;
    tracing::info!(node_id, lease_ms = lease.as_millis() as u64, "cluster mode");
    let configs = apps.clone();
    Ok(Node::start(apps, settings, move |events| {
        backends(client, &configs, node_id, lease, events)
    }))
}

/// What `herald check` reports about Redis: reached within `timeout` (through the sentinels when the URL
/// names them), with its version and role, or why not, in words with the address tried.
pub async fn probe(settings: &RedisSettings, timeout: Duration) -> Result<String, String> {
    let endpoint = endpoint(settings).map_err(|e| e.to_string())?;
    let address = endpoint.address();
    if let Some(cluster) = endpoint.cluster_nodes() {
        let asked = async {
            let mut conn = cluster.client(None)?.get_async_connection().await?;
            let primaries = cluster.observe(&mut conn).await?;
            // INFO goes to every node unless routed: one primary answers for the version.
            let first = primaries
                .first()
                .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::ClusterDown, "no primary")))?;
            let info: String = redis::from_redis_value(
                &cluster_topology::on_node(&mut conn, first, redis::cmd("INFO").arg("server")).await?,
            )?;
            Ok::<_, redis::RedisError>((info, primaries.len()))
        };
        return match tokio::time::timeout(timeout, asked).await {
            Ok(Ok((info, primaries))) => Ok(format!(
                "{address}: Redis {}, {primaries} primaries",
                redis_version(&info)
            )),
            Ok(Err(e)) => Err(format!("{address}: {e}")),
            Err(_) => Err(format!("{address}: no answer within {} s", timeout.as_secs())),
        };
    }
    let asked = async {
        let client = endpoint.client().await?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut conn).await?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
        Ok::<_, redis::RedisError>((info, role))
    };
    let (info, role) = match tokio::time::timeout(timeout, asked).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(format!("{address}: {e}")),
        Err(_) => return Err(format!("{address}: no answer within {} s", timeout.as_secs())),
    };
    let version = redis_version(&info);
    let role = match role.first() {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s.clone(),
        _ => "?".into(),
    };
    if role != "master" {
        return Err(format!(
            "{address} is a {role}, not a primary: Herald writes presence and counts, so point it at the primary (or at the sentinels)"
        ));
    }
    Ok(format!("{address}: Redis {version}, primary"))
}

/// The `redis_version` line of `INFO server`.
fn redis_version(info: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned()
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
        node_id,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_say_what_is_wrong_and_hide_the_password() {
        for good in [
            "redis://127.0.0.1:6379/0",
            "rediss://u:p@redis.example:6380",
            "redis://[::1]:6379",
            "redis+sentinel://h:26379/m",
            "rediss+sentinel://h:26379/m?sentinel_password=x",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        let cases = [
            ("127.0.0.1:6379", "has no scheme"),
            ("http://127.0.0.1:6379", "http:// is not a Redis scheme"),
            ("redis://127.0.0.1:abc", "the port \"abc\" is not a number"),
            ("redis://:secret@:6379", "names no host"),
            ("redis+sentinel://h:1", "no master name"),
        ];
        for (url, why) in cases {
            let e = check_url(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
            assert!(e.contains("expected redis://"), "{url}: {e}");
        }
        let e = check_url("http://user:hunter2@h:1").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("user:***@h:1"), "{e}");
        let e = check_url("redis://:abc/def@h:x").unwrap_err();
        assert!(!e.contains("abc/def"), "a password with a slash is masked too: {e}");
        for good in ["redis://h:6379?protocol=resp3", "rediss://h:6380#insecure"] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
    }
}
