//! The command connection every Redis adapter of a node uses: redis-rs's `ConnectionManager` (one
//! multiplexed connection that reconnects by itself, with a response timeout on every command so a hung
//! Redis never hangs a client), created on first use so a node starts while Redis is still down, and
//! measured (`herald_redis_command_duration_seconds`, `herald_redis_errors_total`). Behind Sentinel, a
//! failure that may mean the primary changed drops the manager, so the next command connects to the
//! primary the sentinels name then ([`Endpoint`]). On Redis Cluster it is redis-rs's cluster connection
//! (one multiplexed connection per cluster node, commands routed by their keys' slot), behind the same
//! [`Conn`] type.

use crate::endpoint::Endpoint;
use herald_core::metrics::metrics;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use std::sync::Mutex;
use std::time::Duration;

/// Longest wait for one Redis command (or for connecting).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

pub struct RedisConnection {
    endpoint: Endpoint,
    /// The manager, and the endpoint's failover count when it was made: after a failover, a manager made
    /// for the old primary is replaced even if none of its own commands failed (they may have timed out).
    manager: Mutex<Option<(Conn, u64)>>,
    /// One connection attempt at a time.
    connecting: tokio::sync::Mutex<()>,
}

impl RedisConnection {
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        RedisConnection {
            endpoint: endpoint.into(),
            manager: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// The key layout of the Redis this connection goes to.
    pub fn layout(&self) -> crate::keys::Layout {
        self.endpoint.layout()
    }

    /// The endpoint this connection goes to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Where this connection goes (`host:port`, never the password), for log lines.
    pub fn address(&self) -> String {
        self.endpoint.address()
    }

    /// The manager in use, unless it was made before the last failover.
    fn current(&self) -> Option<Conn> {
        let mut manager = self.manager.lock().expect("connection lock");
        match &*manager {
            Some((m, made_at)) if *made_at == self.endpoint.failovers() => Some(m.clone()),
            Some(_) => {
                *manager = None;
                None
            }
            None => None,
        }
    }

    async fn get(&self) -> Result<Conn, RedisError> {
        if let Some(manager) = self.current() {
            return Ok(manager);
        }
        let _one = self.connecting.lock().await;
        if let Some(manager) = self.current() {
            return Ok(manager);
        }
        if let Some(cluster) = self.endpoint.cluster_nodes() {
            // Made again after the cluster changed primaries, so it starts from the cluster's new shape.
            let made_at = self.endpoint.failovers();
            let conn = Conn::Cluster(cluster.client(None)?.get_async_connection().await?);
            *self.manager.lock().expect("connection lock") = Some((conn.clone(), made_at));
            return Ok(conn);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(COMMAND_TIMEOUT)
            .set_response_timeout(COMMAND_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        // Read before asking: if a failover is found meanwhile, this manager counts as older and is replaced.
        let made_at = self.endpoint.failovers();
        let client = self.endpoint.client().await?;
        let manager = Conn::Single(ConnectionManager::new_with_config(client, config).await?);
        *self.manager.lock().expect("connection lock") = Some((manager.clone(), made_at));
        Ok(manager)
    }

    /// The cluster connection, for work routed to given cluster nodes (a scan of every primary).
    pub async fn cluster_connection(&self) -> Result<ClusterConnection, RedisError> {
        match self.get().await? {
            Conn::Cluster(c) => Ok(c),
            Conn::Single(_) => Err(RedisError::from((redis::ErrorKind::ClientError, "not a Redis Cluster"))),
        }
    }

    /// A command failed: behind Sentinel, a failure that may mean the primary changed drops the manager.
    fn failed(&self, e: &RedisError) {
        if let Some(cluster) = self.endpoint.cluster_nodes() {
            if may_have_moved(e) {
                cluster.failing();
            }
        }
        if self.endpoint.failovers_possible() && may_have_moved(e) {
            self.endpoint.failed();
            self.manager.lock().expect("connection lock").take();
        }
    }

    /// Runs idempotent work; one that failed because the connection broke (Redis restarted, say) is tried
    /// once more on the connection the manager re-established. Work whose second run would answer
    /// differently (presence scripts, reaps, count batches) uses [`run_once_only`](Self::run_once_only).
    pub async fn run<T, F, Fut>(&self, command: &'static str, f: F) -> Result<T, RedisError>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.measured(command, async {
            match self.run_once(&f).await {
                Err(e) if broken(&e) => {
                    tracing::debug!(error = %e, "Redis connection broke; retrying once");
                    self.run_once(&f).await
                }
                other => other,
            }
        })
        .await
    }

    /// Runs work that must not be applied twice, once; the caller decides about retrying.
    pub async fn run_once_only<T, F, Fut>(&self, command: &'static str, f: F) -> Result<T, RedisError>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.measured(command, self.run_once(&f)).await
    }

    async fn run_once<T, F, Fut>(&self, f: &F) -> Result<T, RedisError>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        f(self.get().await?).await
    }

    async fn measured<T>(
        &self,
        command: &'static str,
        work: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        let started = std::time::Instant::now();
        let result = work.await;
        if let Err(e) = &result {
            self.failed(e);
        }
        let m = metrics();
        m.redis_command_duration
            .with_label_values(&[command])
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            m.redis_errors.with_label_values(&[command]).inc();
        }
        result
    }
}

/// A connection to Redis as the node's adapters use it: one Redis (or the Sentinel-named primary) through
/// redis-rs's `ConnectionManager`, or a Redis Cluster through its cluster connection. Cheap to clone.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// True when the error may mean the primary is gone or is a replica now.
fn may_have_moved(e: &RedisError) -> bool {
    // Not a plain timeout: the command may still run on this connection, and what follows it (a presence
    // join's take-back) must run behind it on the same one. A primary that stops answering is found by the
    // subscription's heartbeat, whose reconnection asks the sentinels.
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.code() == Some("READONLY")
}

/// True when the error means the connection broke before the command could run, rather than that Redis
/// refused it or was slow to answer: a command that timed out may still run when Redis wakes up, so it is
/// never sent again.
fn broken(e: &RedisError) -> bool {
    !e.is_timeout() && (e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal())
}
