//! Cache channels' last events in Redis (`herald:{app}:cache:{channel}`, with the app's expiry), so a late
//! subscriber on any node gets the current state. One writer task per node applies the stores in the order
//! they were made (several queued for one channel collapse to the newest): every node sees Laravel's events in
//! publish order and writes them in that order, so whichever node writes last, the newest event is kept.

use crate::connection::RedisConnection;
use crate::endpoint::Endpoint;
use crate::keys::Layout;
use bytes::Bytes;
use herald_core::cache_store::{CacheError, CacheStore};
use herald_core::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Stores queued before new ones are dropped (and logged).
const QUEUE: usize = 10_000;

struct Store {
    key: String,
    frame: Bytes,
    ttl_ms: u64,
}

pub struct RedisCache {
    conn: Arc<RedisConnection>,
    writes: mpsc::Sender<Store>,
}

impl RedisCache {
    pub fn new(client: impl Into<Endpoint>) -> Arc<Self> {
        let conn = Arc::new(RedisConnection::new(client));
        let (writes, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_in_order(conn.clone(), rx));
        Arc::new(RedisCache { conn, writes })
    }
}

/// The writer: takes every store queued, keeps the newest per key, and writes them in one pipeline before
/// looking at the queue again.
async fn write_in_order(conn: Arc<RedisConnection>, mut rx: mpsc::Receiver<Store>) {
    let mut batch: Vec<Store> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut seen = std::collections::HashSet::new();
        let mut newest: Vec<Store> = Vec::with_capacity(batch.len());
        for store in batch.drain(..).rev() {
            if seen.insert(store.key.clone()) {
                newest.push(store);
            }
        }
        newest.reverse();
        let stores = &newest;
        let written = if conn.layout() == Layout::Cluster {
            // Redis Cluster refuses a pipeline whose keys lie in different slots: one SET each, sent together.
            let each = stores.iter().map(|s| {
                conn.run("cache_set", move |mut c| async move {
                    set(s).query_async::<()>(&mut c).await
                })
            });
            let results = futures_util::future::join_all(each).await;
            results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
        } else {
            conn.run("cache_set", |mut c| async move {
                let mut pipe = redis::pipe();
                for s in stores {
                    pipe.add_command(set(s)).ignore();
                }
                pipe.query_async::<()>(&mut c).await
            })
            .await
        };
        if let Err(e) = written {
            tracing::warn!(stores = newest.len(), error = %e, "cache channel events not stored in Redis");
        }
    }
}

impl CacheStore for RedisCache {
    fn store(&self, app_id: &str, channel: &str, frame: Bytes, ttl: Duration) {
        let store = Store {
            key: self.conn.layout().cache(app_id, channel),
            frame,
            ttl_ms: ttl.as_millis().max(1) as u64,
        };
        if self.writes.try_send(store).is_err() {
            tracing::warn!(
                app = app_id,
                channel,
                "cache channel event not stored: too many stores queued"
            );
        }
    }

    fn last(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<Option<Bytes>, CacheError>> {
        let conn = self.conn.clone();
        let key = self.conn.layout().cache(app_id, channel);
        Box::pin(async move {
            let key = &key;
            let found: Option<Vec<u8>> = conn
                .run("cache_get", |mut c| async move {
                    redis::cmd("GET").arg(key).query_async(&mut c).await
                })
                .await
                .map_err(|e| CacheError(e.to_string()))?;
            Ok(found.map(Bytes::from))
        })
    }
}

/// `SET key frame PX ttl` for one store.
fn set(s: &Store) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(&s.key).arg(&s.frame[..]).arg("PX").arg(s.ttl_ms);
    cmd
}
