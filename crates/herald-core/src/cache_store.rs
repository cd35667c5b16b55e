//! Where cache channels keep their last event: shared by the cluster (Redis) or this node's memory, with
//! an expiry, so a client that subscribes late gets the current state right after
//! `subscription_succeeded`, on any node. Stores from one node are applied in the order they were made,
//! so the last event published is the one kept.

use crate::BoxFuture;
use bytes::Bytes;
use std::time::Duration;

/// Why a cache channel's last event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache channel store unavailable: {0}")]
pub struct CacheError(pub String);

pub trait CacheStore: Send + Sync + 'static {
    /// Keeps `frame` as the channel's last event for `ttl`. Never waits; calls are applied in order.
    fn store(&self, app_id: &str, channel: &str, frame: Bytes, ttl: Duration);
    /// The channel's last event, if any is still kept.
    fn last(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<Option<Bytes>, CacheError>>;
}
