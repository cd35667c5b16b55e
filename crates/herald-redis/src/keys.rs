//! Names of every Redis key and channel Herald uses (documented in docs/redis.md). Everything an app owns is
//! under `herald:{app_id}:`, so two apps on one Redis never meet.

/// Herald's broadcast channel for one app channel: `herald:{app_id}:c:{channel}`.
pub fn broadcast_channel(app_id: &str, channel: &str) -> String {
    format!("herald:{app_id}:c:{channel}")
}

/// A node's heartbeat channel, which it publishes to and subscribes to in order to prove its subscription
/// works end to end: `herald:node:{node_id}:heartbeat`.
pub fn heartbeat_channel(node_id: &str) -> String {
    format!("herald:node:{node_id}:heartbeat")
}

/// The Laravel channels for one app channel: `<prefix><channel>` for each configured prefix, with the
/// length of the prefix used.
pub fn laravel_channels<'a>(prefixes: &'a [String], channel: &'a str) -> impl Iterator<Item = (String, usize)> + 'a {
    prefixes.iter().map(move |p| (format!("{p}{channel}"), p.len()))
}

/// Presence of one channel: `{base}:conns` (socket id -> user id), `{base}:users` (user id -> connection
/// count), `{base}:info` (user id -> user_info JSON). The base is `herald:{app_id}:presence:{channel}`.
pub fn presence_base(app_id: &str, channel: &str) -> String {
    format!("herald:{app_id}:presence:{channel}")
}

/// The set of presence entries a node holds (`app|channel|socket|user`), reaped when its lease expires.
pub fn node_presence(node_id: &str) -> String {
    format!("herald:node:{node_id}:presence")
}

/// A node's share of the cluster counts (`c|{app}` and `s|{app}|{channel}` -> count), taken back when
/// it is reaped: `herald:node:{node_id}:counts`.
pub fn node_counts(node_id: &str) -> String {
    format!("herald:node:{node_id}:counts")
}

/// Set when a node is reaped and kept until the node has put its state back (or a day passed), so the node
/// learns it was reaped from a lasting marker rather than from one reply: `herald:node:{node_id}:reaped`.
pub fn node_reaped(node_id: &str) -> String {
    format!("herald:node:{node_id}:reaped")
}

/// Open connections to an app across the cluster: `herald:{app_id}:connections`.
pub fn app_connections(app_id: &str) -> String {
    format!("herald:{app_id}:connections")
}

/// Subscriptions per channel across the cluster (channel -> count): `herald:{app_id}:channels`.
pub fn app_channels(app_id: &str) -> String {
    format!("herald:{app_id}:channels")
}

/// HTTP API requests of an app in one second (a counter that expires after 2 s):
/// `herald:{app_id}:api:{unix_second}`.
pub fn api_requests(app_id: &str, second: u64) -> String {
    format!("herald:{app_id}:api:{second}")
}

/// The last event of a cache channel (the frame as sent), with the app's expiry: `herald:{app_id}:cache:{channel}`.
pub fn cache(app_id: &str, channel: &str) -> String {
    format!("herald:{app_id}:cache:{channel}")
}

/// Sorted set of live nodes, scored by lease expiry (Redis server time, milliseconds).
pub const NODES: &str = "herald:nodes";

/// A node's webhook outbox, a stream read by the consumer group `deliver`: `herald:node:{node_id}:webhooks`.
/// Its last stored batch number is at `{stream}:seq`.
pub fn node_webhooks(node_id: &str) -> String {
    format!("herald:node:{node_id}:webhooks")
}

/// The ids of the nodes that have a webhook outbox stream, so survivors find a dead node's.
pub const WEBHOOK_OUTBOXES: &str = "herald:webhook_outboxes";

/// Apps kept in Redis (`herald apps`): app id -> the app's settings as JSON.
pub const APPS: &str = "herald:apps";

/// Replaced by a new random value with every change of [`APPS`].
pub const APPS_VERSION: &str = "herald:apps:version";

/// A random value set once per Redis dataset; when it changes or disappears, Redis lost its data.
pub const EPOCH: &str = "herald:epoch";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(broadcast_channel("app-1", "private-a"), "herald:app-1:c:private-a");
        let prefixes = vec!["laravel_database_".to_string(), String::new()];
        let all: Vec<_> = laravel_channels(&prefixes, "orders").map(|(c, _)| c).collect();
        assert_eq!(all, vec!["laravel_database_orders", "orders"]);
        assert_eq!(presence_base("a", "presence-x"), "herald:a:presence:presence-x");
    }
}
