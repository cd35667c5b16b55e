//! Cluster-wide counts: connections per app and subscriptions per channel, for the HTTP API's channel
//! queries, per-app connection limits and webhooks. Nodes report changes without waiting; queries are
//! answered from the shared store in one round trip, never by asking every node.

use crate::BoxFuture;

/// Why a count could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsError(pub String);

impl std::fmt::Display for StatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cluster counts unavailable: {}", self.0)
    }
}

/// Counts for the whole cluster.
pub trait ClusterStats: Send + Sync + 'static {
    /// Connections to `app` on this node changed by `delta`. Never waits.
    fn connections_changed(&self, app_id: &str, delta: i64);
    /// Subscriptions to `channel` on this node changed by `delta`. The change is queued at once; the future
    /// resolves when it counts for the cluster. A subscribe awaits it before the client hears
    /// `subscription_succeeded`, so a subscription that overlaps another on another node is never seen as
    /// the channel emptying in between; an unsubscribe need not wait.
    fn subscriptions_changed(&self, app_id: &str, channel: &str, delta: i64) -> BoxFuture<'static, ()>;
    /// The channel got its first subscriber on this node (`occupied`) or lost its last one; called under the
    /// channel index's lock, so calls for one channel come in order. A store that is the whole cluster (the
    /// embedded default) raises `channel_occupied` / `channel_vacated` here. Never waits.
    fn local_transition(&self, _app_id: &str, _channel: &str, _occupied: bool) {}
    /// Open connections to `app` on every node.
    fn connection_count(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>>;
    /// Subscriptions to `channel` on every node.
    fn subscription_count(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<u64, StatsError>>;
    /// Counts one HTTP API request of `app`; returns the requests counted in the current second, cluster-wide.
    fn api_request(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>>;
    /// Every channel of `app` with at least one subscriber anywhere, with its subscription count.
    fn channels(&self, app_id: &str) -> BoxFuture<'static, Result<Vec<(String, u64)>, StatsError>>;
}
