//! Cache channels' last events in Redis (`herald:{app}:cache:{channel}`, with the app's expiry), so a late
//! subscriber on any node gets the current state.

use crate::connection::RedisConnection;
use crate::keys;
use bytes::Bytes;
use herald_core::cache_store::CacheStore;
use herald_core::BoxFuture;
use std::sync::{Arc, Weak};
use std::time::Duration;

pub struct RedisCache {
    me: Weak<RedisCache>,
    conn: RedisConnection,
}

impl RedisCache {
    pub fn new(url: &str) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        Ok(Arc::new_cyclic(|me| RedisCache {
            me: me.clone(),
            conn: RedisConnection::new(client),
        }))
    }
}

impl CacheStore for RedisCache {
    fn store(&self, app_id: &str, channel: &str, frame: Bytes, ttl: Duration) {
        let Some(this) = self.me.upgrade() else { return };
        let key = keys::cache(app_id, channel);
        let ttl_ms = ttl.as_millis().max(1) as u64;
        tokio::spawn(async move {
            let (key, frame) = (&key, &frame);
            let stored = this
                .conn
                .run("cache_set", |mut c| async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(&frame[..])
                        .arg("PX")
                        .arg(ttl_ms)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
            if let Err(e) = stored {
                tracing::warn!(key, error = %e, "cache channel event not stored");
            }
        });
    }

    fn last(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<Option<Bytes>, String>> {
        let this = self.me.upgrade();
        let key = keys::cache(app_id, channel);
        Box::pin(async move {
            let this = this.ok_or("shutting down")?;
            let key = &key;
            let found: Option<Vec<u8>> = this
                .conn
                .run("cache_get", |mut c| async move {
                    redis::cmd("GET").arg(key).query_async(&mut c).await
                })
                .await?;
            Ok(found.map(Bytes::from))
        })
    }
}
