//! Names of the Redis channels Herald uses (documented in docs/redis.md).

/// Herald's broadcast channel for one app channel: `herald:{app_id}:c:{channel}`.
pub fn broadcast_channel(app_id: &str, channel: &str) -> String {
    format!("herald:{app_id}:c:{channel}")
}

/// A node's heartbeat channel, which it publishes to and subscribes to in order to prove its subscription
/// works end to end: `herald:node:{node_id}:heartbeat`.
pub fn heartbeat_channel(node_id: &str) -> String {
    format!("herald:node:{node_id}:heartbeat")
}

/// The Laravel channels for one app channel: `<prefix><channel>` for each configured prefix.
pub fn laravel_channels<'a>(prefixes: &'a [String], channel: &'a str) -> impl Iterator<Item = String> + 'a {
    prefixes.iter().map(move |p| format!("{p}{channel}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(broadcast_channel("app-1", "private-a"), "herald:app-1:c:private-a");
        let prefixes = vec!["laravel_database_".to_string(), String::new()];
        let all: Vec<_> = laravel_channels(&prefixes, "orders").collect();
        assert_eq!(all, vec!["laravel_database_orders", "orders"]);
    }
}
