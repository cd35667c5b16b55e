//! Cache channels' last events for the embedded default, in memory, expiring lazily.

use crate::cache_store::CacheError;
use crate::cache_store::CacheStore;
use crate::BoxFuture;
use bytes::Bytes;
use dashmap::DashMap;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct MemoryCache {
    events: DashMap<(String, String), (Bytes, Instant)>,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }
}

impl CacheStore for MemoryCache {
    fn store(&self, app_id: &str, channel: &str, frame: Bytes, ttl: Duration) {
        let now = Instant::now();
        if self.events.len() > 10_000 {
            self.events.retain(|_, (_, until)| *until > now);
        }
        self.events
            .insert((app_id.to_owned(), channel.to_owned()), (frame, now + ttl));
    }

    fn last(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<Option<Bytes>, CacheError>> {
        let key = (app_id.to_owned(), channel.to_owned());
        let found = self
            .events
            .get(&key)
            .filter(|e| e.1 > Instant::now())
            .map(|e| e.0.clone());
        Box::pin(async move { Ok(found) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_event_until_it_expires() {
        let cache = MemoryCache::new();
        assert_eq!(cache.last("a", "cache-x").await.unwrap(), None);
        cache.store("a", "cache-x", Bytes::from_static(b"1"), Duration::from_secs(60));
        cache.store("a", "cache-x", Bytes::from_static(b"2"), Duration::from_secs(60));
        assert_eq!(cache.last("a", "cache-x").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(cache.last("b", "cache-x").await.unwrap(), None, "apps are separate");
        cache.store("a", "cache-y", Bytes::from_static(b"3"), Duration::from_millis(1));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(cache.last("a", "cache-y").await.unwrap(), None);
    }
}
