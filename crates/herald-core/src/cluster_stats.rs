//! Cluster-wide counts: connections per app and subscriptions per channel, for the HTTP API's channel
//! queries, per-app connection limits and webhooks. Nodes report changes without waiting; queries are
//! answered from the shared store in one round trip, never by asking every node. When a channel's count for
//! the whole cluster crosses zero, the store reports it to the node's handler (`channels_changed`), which
//! raises `channel_occupied` / `channel_vacated`.

use crate::BoxFuture;

/// Why a count could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster counts unavailable: {0}")]
pub struct StatsError(pub String);

/// The answer to a new connection of an app with a connection quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Under the quota: the connection is counted already (do not count it again).
    Admitted,
    /// The app has its quota of connections across the cluster.
    Full,
    /// The count could not be read (Redis unreachable): the connection is let in, and counted.
    Unchecked(StatsError),
    /// The count could not be read and the connection is not counted: the caller counts it as usual.
    NotCounted(StatsError),
}

/// Counts for the whole cluster.
pub trait ClusterStats: Send + Sync + 'static {
    /// A new connection of an app with a quota of `limit` connections: counted and admitted in one atomic
    /// step while the cluster is under the limit, so a burst of connections on many nodes cannot pass it.
    fn admit(&self, app_id: &str, limit: u64) -> BoxFuture<'static, Admission>;
    /// Connections to `app` on this node changed by `delta`. Never waits.
    fn connections_changed(&self, app_id: &str, delta: i64);
    /// Subscriptions to `channel` on this node changed by `delta`. The change is queued at once; the future
    /// resolves when it counts for the cluster. A subscribe awaits it before the client hears
    /// `subscription_succeeded`, so a subscription that overlaps another on another node is never seen as
    /// the channel emptying in between; an unsubscribe need not wait.
    fn subscriptions_changed(&self, app_id: &str, channel: &str, delta: i64) -> BoxFuture<'static, ()>;
    /// Open connections to `app` on every node.
    fn connection_count(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>>;
    /// Subscriptions to `channel` on every node.
    fn subscription_count(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<u64, StatsError>>;
    /// Counts one HTTP API request of `app`; returns the requests counted in the current second, cluster-wide.
    fn api_request(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>>;
    /// Every channel of `app` with at least one subscriber anywhere, with its subscription count.
    fn channels(&self, app_id: &str) -> BoxFuture<'static, Result<Vec<(String, u64)>, StatsError>>;
}
