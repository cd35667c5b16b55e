//! A Redis Cluster as a node reaches it: the seed addresses of `redis+cluster://host1:7000,host2:7001`
//! (`rediss+cluster://` for TLS), the credentials and TLS settings every connection uses, and what the node
//! knows of the cluster's shape. redis-rs's cluster client follows slots by itself (MOVED, ASK, a refresh
//! after a connection breaks); this module adds what Herald needs on top: which primary holds each slot, read
//! once a second by the backbone, so that a shard's failover is seen (counted, logged, and handled by the
//! lease task like a Redis that may have lost writes), and the list of primaries the reaper scans.

use crate::endpoint::{parse_auth, parse_hosts, split_auth, TlsParams};
use herald_core::metrics::metrics;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{RedisError, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A `redis+cluster://` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    /// `host:port` of each seed node.
    pub seeds: Vec<String>,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl ClusterUrl {
    /// Parses `redis+cluster://[user:password@]host1:7000[,host2:7001...]` (or `rediss+cluster://`); None when
    /// the URL is not a cluster URL, an error naming what is wrong when it is one but malformed.
    pub fn parse(url: &str) -> Option<Result<ClusterUrl, String>> {
        let (tls, rest) = match url.strip_prefix("redis+cluster://") {
            Some(rest) => (false, rest),
            None => (true, url.strip_prefix("rediss+cluster://")?),
        };
        Some(Self::parse_rest(rest, tls))
    }

    fn parse_rest(rest: &str, tls: bool) -> Result<ClusterUrl, String> {
        let (auth, rest) = split_auth(rest);
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        if !path.is_empty() {
            return Err("Redis Cluster has one database: remove the /db after the hosts".into());
        }
        let seeds = parse_hosts(hosts, 6379)?;
        if seeds.is_empty() {
            return Err("no cluster node: expected redis+cluster://host1:7000,host2:7001".into());
        }
        let (username, password) = parse_auth(auth)?;
        Ok(ClusterUrl {
            seeds,
            tls,
            username,
            password,
        })
    }
}

/// A Redis Cluster, shared by all connections of a node.
pub struct ClusterNodes {
    url: ClusterUrl,
    tls: TlsParams,
    /// The primaries as last read (`host:port`), tried before the seeds for a plain connection.
    known: Mutex<Vec<String>>,
    /// Slot ranges and the id of the primary holding each, as last read; a change after the first read is a
    /// failover (or a slot migration finishing).
    shape: Mutex<Option<Vec<(u16, String)>>>,
    failovers: AtomicU64,
    /// When the cluster was first found failing (a node's connection broke) since the last change of shape.
    failing_since: Mutex<Option<Instant>>,
}

/// One primary of the cluster and the slot ranges it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primary {
    pub host: String,
    pub port: u16,
    pub id: String,
}

impl ClusterNodes {
    pub fn new(url: ClusterUrl, tls: TlsParams) -> Self {
        ClusterNodes {
            url,
            tls,
            known: Mutex::default(),
            shape: Mutex::new(None),
            failovers: AtomicU64::new(0),
            failing_since: Mutex::new(None),
        }
    }

    /// A client for the cluster. With `push`, the connection speaks RESP3 and hands everything Redis pushes
    /// (pub/sub messages, and redis-rs's own `Disconnection`) to it.
    pub fn client(
        &self,
        push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
    ) -> Result<ClusterClient, RedisError> {
        let scheme = if self.tls.on { "rediss" } else { "redis" };
        let mut seeds: Vec<String> = self.url.seeds.iter().map(|s| format!("{scheme}://{s}")).collect();
        if self.tls.on && self.tls.insecure {
            seeds.iter_mut().for_each(|s| s.push_str("/#insecure"));
        }
        let mut builder = ClusterClientBuilder::new(seeds)
            .connection_timeout(crate::connection::COMMAND_TIMEOUT)
            .response_timeout(crate::connection::COMMAND_TIMEOUT)
            .retries(2);
        if let Some(user) = &self.url.username {
            builder = builder.username(user.clone());
        }
        if let Some(password) = &self.url.password {
            builder = builder.password(password.clone());
        }
        if self.tls.on {
            builder = builder.tls(self.tls.mode());
            if let Some(certificates) = &self.tls.certificates {
                builder = builder.certs(certificates.clone());
            }
        }
        if let Some(push) = push {
            builder = builder.use_protocol(redis::ProtocolVersion::RESP3).push_sender(push);
        }
        builder.build()
    }

    /// A plain pub/sub connection to any one node of the cluster (the primaries last read first, then the
    /// seeds, from a random one on, so the nodes of a Herald cluster spread over them): classic pub/sub
    /// reaches every cluster node, so one is enough.
    pub async fn any_node_pubsub(&self) -> Result<redis::aio::PubSub, RedisError> {
        let mut candidates = self.known.lock().expect("cluster lock").clone();
        for seed in &self.url.seeds {
            if !candidates.contains(seed) {
                candidates.push(seed.clone());
            }
        }
        let start = crate::redis_backbone::rand_u64() as usize % candidates.len().max(1);
        candidates.rotate_left(start);
        let mut last = None;
        for candidate in candidates {
            let info = redis::ConnectionInfo {
                addr: self.tls.addr(&candidate, 6379),
                redis: redis::RedisConnectionInfo {
                    username: self.url.username.clone(),
                    password: self.url.password.clone(),
                    ..Default::default()
                },
            };
            let client = self.tls.apply(info);
            let connected = async { client?.get_async_pubsub().await };
            match tokio::time::timeout(crate::connection::COMMAND_TIMEOUT, connected).await {
                Ok(Ok(pubsub)) => return Ok(pubsub),
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(RedisError::from((redis::ErrorKind::IoError, "timed out"))),
            }
        }
        Err(last
            .unwrap_or_else(|| RedisError::from((redis::ErrorKind::IoError, "no Redis Cluster node to connect to"))))
    }

    /// The seed nodes, for log lines (never the password).
    pub fn address(&self) -> String {
        format!("Redis Cluster {}", self.url.seeds.join(","))
    }

    /// How many times a slot changed primary since the node started.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Acquire)
    }

    /// A connection to a cluster node broke: the start of a possible failover's gap.
    pub fn failing(&self) {
        self.failing_since
            .lock()
            .expect("cluster lock")
            .get_or_insert_with(Instant::now);
    }

    /// Reads which primary holds each slot (`CLUSTER SLOTS`). A new primary since the last read (a replica
    /// promoted) is a failover: counted, timed and logged, and the lease task then puts this node's state
    /// back, since the promoted replica may lack the last writes. Slots that merely moved between the same
    /// primaries (a migration, which loses no write) are only logged. Returns the primaries.
    pub async fn observe(&self, conn: &mut ClusterConnection) -> Result<Vec<Primary>, RedisError> {
        let reply: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
        let (shape, primaries) = parse_slots(&reply);
        if shape.is_empty() {
            return Err(RedisError::from((
                redis::ErrorKind::ClusterDown,
                "CLUSTER SLOTS named no slot",
            )));
        }
        let mut before = self.shape.lock().expect("cluster lock");
        let ids = |shape: &[(u16, String)]| {
            let mut ids: Vec<String> = shape.iter().map(|(_, id)| id.clone()).collect();
            ids.sort();
            ids.dedup();
            ids
        };
        match &*before {
            None => tracing::info!(
                primaries = primaries.len(),
                "Redis Cluster found: {}",
                describe(&primaries)
            ),
            Some(was) if ids(was) != ids(&shape) => {
                self.failovers.fetch_add(1, Ordering::AcqRel);
                metrics().redis_failovers.inc();
                let gap = self
                    .failing_since
                    .lock()
                    .expect("cluster lock")
                    .take()
                    .map(|t| t.elapsed());
                if let Some(gap) = gap {
                    metrics().redis_failover_gap.observe(gap.as_secs_f64());
                }
                tracing::warn!(
                    gap_ms = gap.map(|g| g.as_millis() as u64),
                    "Redis Cluster failed over: the primaries are now {}",
                    describe(&primaries)
                );
            }
            Some(was) if *was != shape => tracing::info!("Redis Cluster moved slots between its primaries"),
            Some(_) => {}
        }
        *before = Some(shape);
        metrics().redis_cluster_primaries.set(primaries.len() as i64);
        let now: Vec<String> = primaries.iter().map(|p| format!("{}:{}", p.host, p.port)).collect();
        let mut known = self.known.lock().expect("cluster lock");
        for gone in known.iter().filter(|a| !now.contains(a)) {
            metrics().redis_primary.with_label_values(&[gone]).set(0);
        }
        for address in &now {
            metrics().redis_primary.with_label_values(&[address]).set(1);
        }
        *known = now;
        Ok(primaries)
    }
}

/// Runs `cmd` on one given primary.
pub async fn on_node(conn: &mut ClusterConnection, primary: &Primary, cmd: &redis::Cmd) -> Result<Value, RedisError> {
    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
        host: primary.host.clone(),
        port: primary.port,
    });
    conn.route_command(cmd, routing).await
}

fn describe(primaries: &[Primary]) -> String {
    primaries
        .iter()
        .map(|p| format!("{}:{}", p.host, p.port))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CLUSTER SLOTS` as (range start, primary id) sorted, and the distinct primaries.
fn parse_slots(reply: &Value) -> (Vec<(u16, String)>, Vec<Primary>) {
    let mut shape = Vec::new();
    let mut primaries: Vec<Primary> = Vec::new();
    let Value::Array(ranges) = reply else {
        return (shape, primaries);
    };
    for range in ranges {
        let Value::Array(fields) = range else { continue };
        let (Some(Value::Int(start)), Some(Value::Array(primary))) = (fields.first(), fields.get(2)) else {
            continue;
        };
        let text = |v: Option<&Value>| match v {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            Some(Value::Int(i)) => i.to_string(),
            _ => String::new(),
        };
        let host = text(primary.first());
        let port = text(primary.get(1)).parse().unwrap_or(0);
        let id = text(primary.get(2));
        shape.push((*start as u16, id.clone()));
        let node = Primary { host, port, id };
        if !primaries.contains(&node) {
            primaries.push(node);
        }
    }
    shape.sort();
    (shape, primaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_parse() {
        let url = ClusterUrl::parse("redis+cluster://app:s%40cret@10.0.0.1:7000, 10.0.0.2:7001,redis-3")
            .unwrap()
            .unwrap();
        assert_eq!(url.seeds, vec!["10.0.0.1:7000", "10.0.0.2:7001", "redis-3:6379"]);
        assert!(!url.tls);
        assert_eq!(url.username.as_deref(), Some("app"));
        assert_eq!(url.password.as_deref(), Some("s@cret"));
        let tls = ClusterUrl::parse("rediss+cluster://:pw@h:7000/").unwrap().unwrap();
        assert!(tls.tls);
        assert_eq!((tls.username, tls.password.as_deref()), (None, Some("pw")));
        assert!(ClusterUrl::parse("redis://h:6379").is_none());
        for bad in [
            "redis+cluster://",
            "redis+cluster://h:x",
            "redis+cluster://:7000",
            "redis+cluster://h:7000/0",
        ] {
            assert!(ClusterUrl::parse(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_slots_give_the_shape_and_the_primaries() {
        let node = |host: &str, port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(host.into()),
                Value::Int(port),
                Value::BulkString(id.into()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("127.0.0.1", 7001, "b"),
                node("127.0.0.1", 7004, "e"),
            ]),
            Value::Array(vec![Value::Int(0), Value::Int(5460), node("127.0.0.1", 7000, "a")]),
        ]);
        let (shape, primaries) = parse_slots(&reply);
        assert_eq!(shape, vec![(0, "a".to_string()), (5461, "b".to_string())]);
        assert_eq!(primaries.len(), 2);
        assert_eq!((primaries[0].port, primaries[0].id.as_str()), (7001, "b"));
    }
}
