//! Where a node's Redis is: one address (`redis://`, `rediss://`), a primary that Sentinel names
//! (`redis+sentinel://host1:26379,host2:26379/mymaster[/db]`), or a Redis Cluster
//! (`redis+cluster://host1:7000,host2:7001`, `rediss+cluster://` with TLS). Every connection of the node asks its
//! endpoint for a client when it connects; with Sentinel the endpoint asks the sentinels for the current
//! primary (redis-rs's `Sentinel`, which checks that the address it returns answers `ROLE` as a master, so a
//! node never writes to a replica) and, when a connection to it breaks or Redis answers `READONLY` (the old
//! primary came back as a replica), forgets it so the next connection asks again. Each switch to a new
//! primary is a failover: counted, timed, and seen by the lease task, which puts this node's presence
//! entries and counts back in case the promoted replica had not received the last writes. On Redis Cluster,
//! redis-rs follows the slots (MOVED, ASK, a shard's failover) by itself; the endpoint watches which primary
//! holds each slot, and a change is a failover too (`crate::cluster_topology`).

use herald_core::metrics::metrics;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, RedisError, TlsMode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A node's Redis, shared by all its connections.
#[derive(Clone)]
pub struct Endpoint(Arc<Inner>);

enum Inner {
    Direct(redis::Client),
    Sentinel(Box<SentinelPrimary>),
    Cluster(Box<crate::cluster_topology::ClusterNodes>),
}

/// What TLS every connection of a Sentinel- or Cluster-reached Redis uses, from `rediss+sentinel://` or
/// `rediss+cluster://` and the Redis TLS settings.
#[derive(Clone, Default)]
pub struct TlsParams {
    /// The URL asked for TLS.
    pub on: bool,
    /// The CA bundle and client certificate, when set.
    pub certificates: Option<redis::TlsCertificates>,
    /// Accept any certificate (`HERALD_REDIS_TLS_INSECURE`).
    pub insecure: bool,
}

impl TlsParams {
    /// How redis-rs checks the server's certificate.
    pub fn mode(&self) -> TlsMode {
        if self.insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        }
    }

    /// The address of `host:port` (`default_port` when none is given), over TLS when it is on.
    pub fn addr(&self, host_port: &str, default_port: u16) -> ConnectionAddr {
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(default_port)),
            None => (host_port.to_owned(), default_port),
        };
        if self.on {
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: self.insecure,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        }
    }

    /// `client` with the CA bundle and client certificate added, when TLS is on and they are set (redis-rs's
    /// clients made from an address alone trust the system's roots).
    pub fn apply(&self, info: redis::ConnectionInfo) -> Result<redis::Client, RedisError> {
        match &self.certificates {
            Some(certificates) if self.on => redis::Client::build_with_tls(info, certificates.clone()),
            _ => redis::Client::open(info),
        }
    }
}

/// A primary found through Sentinel.
pub struct SentinelPrimary {
    sentinels: Vec<String>,
    master: String,
    url: SentinelUrl,
    tls: TlsParams,
    /// The primary in use, when known, and when it was first found failing.
    current: Mutex<Current>,
    /// One question to the sentinels at a time; the others wait for its answer.
    asking: tokio::sync::Mutex<()>,
    /// Incremented whenever the primary in use changes after the first one.
    failovers: AtomicU64,
}

#[derive(Default)]
struct Current {
    client: Option<redis::Client>,
    address: Option<String>,
    failing_since: Option<Instant>,
    /// The last unanswered question to the sentinels: when, and why; asked again no sooner than
    /// [`ASK_AGAIN_AFTER`], and logged once per failure.
    unanswered: Option<(Instant, String)>,
}

/// How soon the sentinels are asked again after they named no reachable primary.
const ASK_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// A `redis+sentinel://` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// `host:port` of each sentinel.
    pub sentinels: Vec<String>,
    pub master: String,
    pub db: i64,
    /// The primary's user and password.
    pub username: Option<String>,
    pub password: Option<String>,
    /// `rediss+sentinel://`: TLS to the sentinels and to the primary.
    pub tls: bool,
    /// The sentinels' own user and password (`?sentinel_username=…&sentinel_password=…`), when they ask for
    /// one.
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
}

impl SentinelUrl {
    /// Parses `redis+sentinel://[user:password@]host1:26379[,host2:26379...]/master[/db][?sentinel_password=…]`
    /// (`rediss+sentinel://` for TLS); None when the URL is not a Sentinel URL, an error naming what is wrong
    /// when it is one but malformed.
    pub fn parse(url: &str) -> Option<Result<SentinelUrl, String>> {
        let (tls, rest) = match url.strip_prefix("redis+sentinel://") {
            Some(rest) => (false, rest),
            None => (true, url.strip_prefix("rediss+sentinel://")?),
        };
        Some(Self::parse_rest(rest).map(|parsed| SentinelUrl { tls, ..parsed }))
    }

    fn parse_rest(rest: &str) -> Result<SentinelUrl, String> {
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut sentinel_username, mut sentinel_password) = (None, None);
        for (name, value) in form_urlencoded_pairs(query) {
            match name.as_str() {
                "sentinel_username" => sentinel_username = Some(value),
                "sentinel_password" => sentinel_password = Some(value),
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}: expected sentinel_username or sentinel_password"
                    ))
                }
            }
        }
        let (auth, rest) = split_auth(rest);
        let (hosts, path) = rest
            .split_once('/')
            .ok_or("no master name: expected redis+sentinel://host:26379/mymaster")?;
        let sentinels = parse_hosts(hosts, 26379)?;
        if sentinels.is_empty() {
            return Err("no sentinel host".into());
        }
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let master = segments.next().ok_or("no master name after the hosts")?.to_owned();
        let db = match segments.next() {
            Some(db) => db.parse().map_err(|_| format!("bad database number {db:?}"))?,
            None => 0,
        };
        let (username, password) = parse_auth(auth)?;
        Ok(SentinelUrl {
            sentinels,
            master,
            db,
            username,
            password,
            tls: false,
            sentinel_username,
            sentinel_password,
        })
    }
}

/// The `name=value` pairs of a URL query, percent-decoded.
fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(name), decode(value))
        })
        .collect()
}

/// Splits `[user:password@]rest` at the last `@` (a password may hold `@`).
pub(crate) fn split_auth(rest: &str) -> (Option<&str>, &str) {
    match rest.rsplit_once('@') {
        Some((auth, rest)) => (Some(auth), rest),
        None => (None, rest),
    }
}

/// `host1:port1,host2,…` as `host:port` each, `default_port` where none is given.
pub(crate) fn parse_hosts(hosts: &str, default_port: u16) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for host in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) => (name, port.parse::<u16>().map_err(|_| format!("bad port in {host:?}"))?),
            None => (host, default_port),
        };
        if name.is_empty() {
            return Err(format!("no host in {host:?}"));
        }
        out.push(format!("{name}:{port}"));
    }
    Ok(out)
}

/// The user and password of `user:password`, `:password` or `user`, percent-decoded.
pub(crate) fn parse_auth(auth: Option<&str>) -> Result<(Option<String>, Option<String>), String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| "credentials are not UTF-8".to_string())
    };
    Ok(match auth {
        None => (None, None),
        Some(auth) => match auth.split_once(':') {
            Some((user, pass)) => (
                (!user.is_empty()).then(|| decode(user)).transpose()?,
                Some(decode(pass)?),
            ),
            None => (Some(decode(auth)?), None),
        },
    })
}

impl From<redis::Client> for Endpoint {
    fn from(client: redis::Client) -> Self {
        Endpoint::direct(client)
    }
}

impl Endpoint {
    /// One Redis at one address.
    pub fn direct(client: redis::Client) -> Self {
        let address = client.get_connection_info().addr.to_string();
        metrics().redis_primary.with_label_values(&[&address]).set(1);
        Endpoint(Arc::new(Inner::Direct(client)))
    }

    /// The primary the sentinels of `url` name, with `tls` for the sentinels and the primary.
    pub fn sentinel(url: SentinelUrl, tls: TlsParams) -> Self {
        Endpoint(Arc::new(Inner::Sentinel(Box::new(SentinelPrimary {
            sentinels: url.sentinels.clone(),
            master: url.master.clone(),
            url,
            tls,
            current: Mutex::default(),
            asking: tokio::sync::Mutex::new(()),
            failovers: AtomicU64::new(0),
        }))))
    }

    /// A Redis Cluster, reached first through `nodes`.
    pub fn cluster(nodes: crate::cluster_topology::ClusterNodes) -> Self {
        Endpoint(Arc::new(Inner::Cluster(Box::new(nodes))))
    }

    /// A client for Redis: the one address, or the primary the sentinels name now. On Redis Cluster, use
    /// [`cluster_nodes`](Self::cluster_nodes).
    pub async fn client(&self) -> Result<redis::Client, RedisError> {
        match &*self.0 {
            Inner::Direct(client) => Ok(client.clone()),
            Inner::Sentinel(primary) => primary.client().await,
            Inner::Cluster(_) => Err(RedisError::from((
                redis::ErrorKind::ClientError,
                "a Redis Cluster has no single client",
            ))),
        }
    }

    /// The cluster's nodes, when Redis is a Redis Cluster.
    pub fn cluster_nodes(&self) -> Option<&crate::cluster_topology::ClusterNodes> {
        match &*self.0 {
            Inner::Cluster(nodes) => Some(nodes),
            _ => None,
        }
    }

    /// The key layout for this topology.
    pub fn layout(&self) -> crate::keys::Layout {
        match &*self.0 {
            Inner::Cluster(_) => crate::keys::Layout::Cluster,
            _ => crate::keys::Layout::Single,
        }
    }

    /// True when the primary can change under the node (Sentinel).
    pub fn failovers_possible(&self) -> bool {
        matches!(&*self.0, Inner::Sentinel(_))
    }

    /// A connection to the current primary failed in a way that may mean it is no longer the primary (it
    /// broke, was refused, or answered `READONLY`): the next connection asks the sentinels again.
    pub fn failed(&self) {
        if let Inner::Sentinel(primary) = &*self.0 {
            tracing::debug!("Redis primary failing; asking the sentinels again at the next connection");
            primary.forget();
        }
    }

    /// Where Redis is, for log lines (never the password).
    pub fn address(&self) -> String {
        match &*self.0 {
            Inner::Direct(client) => client.get_connection_info().addr.to_string(),
            Inner::Sentinel(primary) => {
                let current = primary.current.lock().expect("endpoint lock");
                let sentinels = primary.sentinels.join(",");
                match &current.address {
                    Some(address) => format!("{address} (primary {:?} from sentinels {sentinels})", primary.master),
                    None => format!("primary {:?} from sentinels {sentinels}", primary.master),
                }
            }
            Inner::Cluster(nodes) => nodes.address(),
        }
    }

    /// How many times the primary changed since the node started (0 without Sentinel).
    pub fn failovers(&self) -> u64 {
        match &*self.0 {
            Inner::Direct(_) => 0,
            Inner::Sentinel(primary) => primary.failovers.load(Ordering::Acquire),
            Inner::Cluster(nodes) => nodes.failovers(),
        }
    }
}

impl SentinelPrimary {
    async fn client(&self) -> Result<redis::Client, RedisError> {
        if let Some(client) = self.known()? {
            return Ok(client);
        }
        let _asking = self.asking.lock().await;
        if let Some(client) = self.known()? {
            return Ok(client);
        }
        let mut sentinel = self.sentinel_client()?;
        // redis-rs puts no timeout on the sentinels' answer nor on the ROLE check of the primary they name (a
        // frozen host would hold every connection of the node here): bounded like any command.
        let asked = tokio::time::timeout(crate::connection::COMMAND_TIMEOUT, async {
            let client = sentinel.async_get_client().await?;
            // The client redis-rs returns has the primary's address but not the CA bundle.
            self.tls.apply(client.get_connection_info().clone())
        })
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from((
                redis::ErrorKind::IoError,
                "the sentinels or the primary they name did not answer in time",
            )))
        });
        let client = match asked {
            Ok(client) => client,
            Err(e) => {
                let mut current = self.current.lock().expect("endpoint lock");
                if current.unanswered.is_none() {
                    tracing::warn!(master = self.master, sentinels = ?self.sentinels, error = %e, "the sentinels name no reachable Redis primary yet; asking again every 250 ms");
                }
                current.unanswered = Some((Instant::now(), e.to_string()));
                return Err(e);
            }
        };
        let address = client.get_connection_info().addr.to_string();
        let mut current = self.current.lock().expect("endpoint lock");
        current.unanswered = None;
        if current.address.as_deref() != Some(address.as_str()) {
            metrics().redis_primary.with_label_values(&[&address]).set(1);
            if let Some(old) = current.address.replace(address.clone()) {
                metrics().redis_primary.with_label_values(&[&old]).set(0);
                self.failovers.fetch_add(1, Ordering::AcqRel);
                metrics().redis_failovers.inc();
                let gap = current.failing_since.take().map(|t| t.elapsed());
                if let Some(gap) = gap {
                    metrics().redis_failover_gap.observe(gap.as_secs_f64());
                }
                tracing::warn!(
                    from = old,
                    to = address,
                    gap_ms = gap.map(|g| g.as_millis() as u64),
                    "Redis failed over: following the new primary"
                );
            } else {
                tracing::info!(
                    primary = address,
                    master = self.master,
                    "Redis primary found through Sentinel"
                );
            }
        }
        current.failing_since = None;
        current.client = Some(client.clone());
        Ok(client)
    }

    /// A client of the sentinels, with what the node sends them and the primary: TLS, credentials, database.
    fn sentinel_client(&self) -> Result<SentinelClient, RedisError> {
        let url = &self.url;
        let sentinels = url.sentinels.iter().map(|s| self.tls.addr(s, 26379));
        let mut builder = SentinelClientBuilder::new(sentinels, url.master.clone(), SentinelServerType::Master)?
            .set_client_to_redis_db(url.db);
        if let Some(user) = &url.username {
            builder = builder.set_client_to_redis_username(user.clone());
        }
        if let Some(password) = &url.password {
            builder = builder.set_client_to_redis_password(password.clone());
        }
        if let Some(user) = &url.sentinel_username {
            builder = builder.set_client_to_sentinel_username(user.clone());
        }
        if let Some(password) = &url.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password.clone());
        }
        if self.tls.on {
            builder = builder
                .set_client_to_redis_tls_mode(self.tls.mode())
                .set_client_to_sentinel_tls_mode(self.tls.mode());
            if let Some(certificates) = &self.tls.certificates {
                builder = builder
                    .set_client_to_redis_certificates(certificates.clone())
                    .set_client_to_sentinel_certificates(certificates.clone());
            }
        }
        builder.build()
    }

    /// The primary in use, if known; an error when the sentinels were asked moments ago without an answer.
    fn known(&self) -> Result<Option<redis::Client>, RedisError> {
        let current = self.current.lock().expect("endpoint lock");
        if let Some(client) = &current.client {
            return Ok(Some(client.clone()));
        }
        match &current.unanswered {
            Some((at, why)) if at.elapsed() < ASK_AGAIN_AFTER => Err(RedisError::from((
                redis::ErrorKind::IoError,
                "no Redis primary named by the sentinels yet",
                why.clone(),
            ))),
            _ => Ok(None),
        }
    }

    fn forget(&self) {
        let mut current = self.current.lock().expect("endpoint lock");
        current.client = None;
        current.failing_since.get_or_insert_with(Instant::now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_parse() {
        let url = SentinelUrl::parse("redis+sentinel://app:s%40cret@10.0.0.1:26379,sentinel-2,  /mymaster/2")
            .unwrap()
            .unwrap();
        assert_eq!(url.sentinels, vec!["10.0.0.1:26379", "sentinel-2:26379"]);
        assert_eq!(url.master, "mymaster");
        assert_eq!(url.db, 2);
        assert_eq!(url.username.as_deref(), Some("app"));
        assert_eq!(url.password.as_deref(), Some("s@cret"));
        let plain = SentinelUrl::parse("redis+sentinel://h:1/m").unwrap().unwrap();
        assert_eq!(
            (plain.db, plain.username, plain.password, plain.tls),
            (0, None, None, false)
        );
        let tls = SentinelUrl::parse("rediss+sentinel://:pw@h:1/m/0?sentinel_password=s%26cret&sentinel_username=ops")
            .unwrap()
            .unwrap();
        assert!(tls.tls);
        assert_eq!(tls.password.as_deref(), Some("pw"));
        assert_eq!(tls.sentinel_password.as_deref(), Some("s&cret"));
        assert_eq!(tls.sentinel_username.as_deref(), Some("ops"));
        assert!(SentinelUrl::parse("redis+sentinel://h:1/m?password=x")
            .unwrap()
            .is_err());
        assert!(SentinelUrl::parse("redis://h:6379").is_none());
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel:///m",
            "redis+sentinel://h:x/m",
            "redis+sentinel://h/m/x",
        ] {
            assert!(SentinelUrl::parse(bad).unwrap().is_err(), "{bad}");
        }
    }
}
