//! Where cache channels keep their last event: shared by the cluster (Redis) or this node's memory, with
//! an expiry, so a client that subscribes late gets the current state right after
//! `subscription_succeeded`, on any node.

use crate::BoxFuture;
use bytes::Bytes;
use std::time::Duration;

pub trait CacheStore: Send + Sync + 'static {
    /// Keeps `frame` as the channel's last event for `ttl`. Never waits.
    fn store(&self, app_id: &str, channel: &str, frame: Bytes, ttl: Duration);
    /// The channel's last event, if any is still kept.
    fn last(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<Option<Bytes>, String>>;
}
