//! A command connection to Redis shared by the backbone's publishes and the presence store: one
//! multiplexed connection, opened on first use, dropped on error and opened again on the next call, with
//! a timeout on every command so a hung Redis never hangs a client.

use herald_core::metrics::metrics;
use redis::aio::MultiplexedConnection;
use std::sync::Mutex;
use std::time::Duration;

/// Longest wait for one Redis command (or for connecting).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

pub struct RedisConnection {
    client: redis::Client,
    current: Mutex<Option<MultiplexedConnection>>,
}

impl RedisConnection {
    pub fn new(client: redis::Client) -> Self {
        RedisConnection {
            client,
            current: Mutex::new(None),
        }
    }

    async fn get(&self) -> Result<MultiplexedConnection, String> {
        if let Some(conn) = self.current.lock().expect("connection lock").clone() {
            return Ok(conn);
        }
        let conn = tokio::time::timeout(COMMAND_TIMEOUT, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "connecting to Redis timed out".to_string())?
            .map_err(|e| e.to_string())?;
        *self.current.lock().expect("connection lock") = Some(conn.clone());
        Ok(conn)
    }

    /// Runs a command with the timeout. A command that fails because the connection broke (Redis
    /// restarted, say) is tried once more on a fresh connection, so callers must pass idempotent work.
    pub async fn run<T, F, Fut>(&self, command: &'static str, f: F) -> Result<T, String>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.measured(command, self.run_retrying(&f)).await
    }

    /// Runs a command once, for work that must not be applied twice; the caller decides about retrying.
    pub async fn run_once_only<T, F, Fut>(&self, command: &'static str, f: F) -> Result<T, String>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.measured(command, async { self.run_once(&f).await.map_err(|(e, _)| e) })
            .await
    }

    async fn measured<T>(
        &self,
        command: &'static str,
        work: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        let started = std::time::Instant::now();
        let result = work.await;
        let m = metrics();
        m.redis_command_duration
            .with_label_values(&[command])
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            m.redis_errors.with_label_values(&[command]).inc();
        }
        result
    }

    async fn run_retrying<T, F, Fut>(&self, f: &F) -> Result<T, String>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match self.run_once(f).await {
            Err((e, true)) => {
                tracing::debug!(error = %e, "Redis connection broke; retrying once");
                self.run_once(f).await.map_err(|(e, _)| e)
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    /// One attempt; the error says whether the connection broke.
    async fn run_once<T, F, Fut>(&self, f: &F) -> Result<T, (String, bool)>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.get().await.map_err(|e| (e, false))?;
        match tokio::time::timeout(COMMAND_TIMEOUT, f(conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let broken =
                    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout();
                if broken {
                    self.current.lock().expect("connection lock").take();
                }
                Err((e.to_string(), broken))
            }
            Err(_) => {
                self.current.lock().expect("connection lock").take();
                Err(("Redis command timed out".into(), false))
            }
        }
    }
}
