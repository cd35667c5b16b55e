//! Names of every Redis key and channel Herald uses (documented in docs/redis.md), for each topology.
//!
//! On one Redis (or a Sentinel-named primary) everything an app owns is under `herald:{app_id}:`, so two apps
//! on one Redis never meet, and the names are those every earlier Herald used. On Redis Cluster every Lua
//! script must touch keys of one hash slot only, so the names carry hash tags (the part in literal braces
//! decides the slot): a presence channel's keys share the tag `{app:channel}`, an app's counts the tag `{app}`,
//! and the node set, leases, reaped markers and webhook outboxes the tag `{cluster}`. What spans slots (reaping
//! a dead node's presence in every channel) is done one slot at a time.

/// The key layout of one topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One Redis: the names every earlier Herald used.
    Single,
    /// Redis Cluster: hash-tagged names, one slot per script.
    Cluster,
}

impl Layout {
    /// Herald's broadcast channel for one app channel: `herald:{app_id}:c:{channel}` (on Redis Cluster a
    /// sharded channel, spread over the shards by its name).
    pub fn broadcast_channel(self, app_id: &str, channel: &str) -> String {
        format!("herald:{app_id}:c:{channel}")
    }

    /// A node's heartbeat channel, which it publishes to and subscribes to in order to prove its subscription
    /// works end to end: `herald:node:{node_id}:heartbeat`.
    pub fn heartbeat_channel(self, node_id: &str) -> String {
        format!("herald:node:{node_id}:heartbeat")
    }

    /// Redis Cluster: a node's second heartbeat channel, on classic pub/sub, which proves the connection
    /// Laravel's channels arrive on: `herald:node:{node_id}:heartbeat:classic`. None on one Redis, where every
    /// channel is classic.
    pub fn classic_heartbeat_channel(self, node_id: &str) -> Option<String> {
        match self {
            Layout::Single => None,
            Layout::Cluster => Some(format!("herald:node:{node_id}:heartbeat:classic")),
        }
    }

    /// Presence of one channel: `{base}:conns` (socket id -> user id), `{base}:users` (user id -> connection
    /// count), `{base}:info` (user id -> user_info JSON), `{base}:version`, `{base}:log`.
    pub fn presence_base(self, app_id: &str, channel: &str) -> String {
        format!("{}", PresenceBase(self, app_id, channel))
    }

    /// Where a node's presence entries (`app|channel|socket|user`) are kept, so they can be taken back when
    /// its lease expires: one set for the whole node on one Redis; one per channel (in the channel's slot) on
    /// Redis Cluster.
    pub fn node_presence(self, node_id: &str, app_id: &str, channel: &str) -> String {
        match self {
            Layout::Single => format!("herald:node:{node_id}:presence"),
            Layout::Cluster => format!("{}:node:{node_id}", PresenceBase(self, app_id, channel)),
        }
    }

    /// A node's share of the cluster counts (`c|{app}` and `s|{app}|{channel}` -> count), taken back when it
    /// is reaped: one hash for the whole node on one Redis; one per app (in the app's slot) on Redis Cluster.
    pub fn node_counts(self, node_id: &str, app_id: &str) -> String {
        match self {
            Layout::Single => format!("herald:node:{node_id}:counts"),
            Layout::Cluster => format!("herald:{{{app_id}}}:node:{node_id}:counts"),
        }
    }

    /// The patterns the reaper scans for on Redis Cluster to find a dead node's presence sets and count
    /// shares in every slot.
    pub fn node_scan_patterns(self, node_id: &str) -> [String; 2] {
        [
            format!("herald:{{*}}:presence:node:{node_id}"),
            format!("herald:{{*}}:node:{node_id}:counts"),
        ]
    }

    /// Set when a node is reaped and kept until the node has put its state back (or a day passed), so the
    /// node learns it was reaped from a lasting marker rather than from one reply.
    pub fn node_reaped(self, node_id: &str) -> String {
        format!("{}:node:{node_id}:reaped", self.cluster_prefix())
    }

    /// Open connections to an app across the cluster.
    pub fn app_connections(self, app_id: &str) -> String {
        format!("{}:connections", self.app_prefix(app_id))
    }

    /// Subscriptions per channel across the cluster (channel -> count).
    pub fn app_channels(self, app_id: &str) -> String {
        format!("{}:channels", self.app_prefix(app_id))
    }

    /// HTTP API requests of an app in one second (a counter that expires after 2 s).
    pub fn api_requests(self, app_id: &str, second: u64) -> String {
        format!("{}:api:{second}", self.app_prefix(app_id))
    }

    /// The last event of a cache channel (the frame as sent), with the app's expiry:
    /// `herald:{app_id}:cache:{channel}`. Untagged on Redis Cluster too, so cache keys spread over the shards.
    pub fn cache(self, app_id: &str, channel: &str) -> String {
        format!("herald:{app_id}:cache:{channel}")
    }

    /// Sorted set of live nodes, scored by lease expiry (Redis server time, milliseconds).
    pub fn nodes(self) -> String {
        match self {
            Layout::Single => "herald:nodes".into(),
            Layout::Cluster => "herald:{cluster}:nodes".into(),
        }
    }

    /// The nodes reaped whose presence and counts are still being taken back, slot by slot (Redis Cluster
    /// only: on one Redis a reap is one script).
    pub fn reaping(self) -> String {
        "herald:{cluster}:reaping".into()
    }

    /// Redis Cluster: which node is taking back the state of reaped node `node_id` (one at a time), with an
    /// expiry the worker extends as it goes.
    pub fn reaping_claim(self, node_id: &str) -> String {
        format!("herald:{{cluster}}:reaping:{node_id}")
    }

    /// A node's webhook outbox, a stream read by the consumer group `deliver`; its last stored batch number
    /// is at `{stream}:seq`.
    pub fn node_webhooks(self, node_id: &str) -> String {
        format!("{}:node:{node_id}:webhooks", self.cluster_prefix())
    }

    /// The ids of the nodes that have a webhook outbox stream, so survivors find a dead node's.
    pub fn webhook_outboxes(self) -> String {
        format!("{}:webhook_outboxes", self.cluster_prefix())
    }

    /// Apps kept in Redis (`herald apps`): app id -> the app's settings as JSON.
    pub fn apps(self) -> String {
        match self {
            Layout::Single => "herald:apps".into(),
            Layout::Cluster => "herald:{apps}".into(),
        }
    }

    /// Replaced by a new random value with every change of [`apps`](Self::apps).
    pub fn apps_version(self) -> String {
        format!("{}:version", self.apps())
    }

    /// A random value set once per Redis dataset; when it changes or disappears, Redis lost its data.
    pub fn epoch(self) -> String {
        match self {
            Layout::Single => "herald:epoch".into(),
            Layout::Cluster => "herald:{cluster}:epoch".into(),
        }
    }

    /// The Lua `string.format` patterns the scripts build key names with, for names they find in an entry
    /// rather than in KEYS: (presence base from app and channel, an app's connections, an app's channels).
    pub fn script_formats(self) -> [&'static str; 3] {
        match self {
            Layout::Single => ["herald:%s:presence:%s", "herald:%s:connections", "herald:%s:channels"],
            Layout::Cluster => [
                "herald:{%s:%s}:presence",
                "herald:{%s}:connections",
                "herald:{%s}:channels",
            ],
        }
    }

    /// The Lua `string.format` pattern of a node's webhook outbox stream.
    pub fn webhooks_format(self) -> String {
        format!("{}:node:%s:webhooks", self.cluster_prefix())
    }

    fn cluster_prefix(self) -> &'static str {
        match self {
            Layout::Single => "herald",
            Layout::Cluster => "herald:{cluster}",
        }
    }

    fn app_prefix(self, app_id: &str) -> String {
        match self {
            Layout::Single => format!("herald:{app_id}"),
            Layout::Cluster => format!("herald:{{{app_id}}}"),
        }
    }
}

/// The base name of a presence channel's keys.
struct PresenceBase<'a>(Layout, &'a str, &'a str);

impl std::fmt::Display for PresenceBase<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let PresenceBase(layout, app, channel) = self;
        match layout {
            Layout::Single => write!(f, "herald:{app}:presence:{channel}"),
            Layout::Cluster => write!(f, "herald:{{{app}:{channel}}}:presence"),
        }
    }
}

/// The Laravel channels for one app channel: `<prefix><channel>` for each configured prefix, with the
/// length of the prefix used.
pub fn laravel_channels<'a>(prefixes: &'a [String], channel: &'a str) -> impl Iterator<Item = (String, usize)> + 'a {
    prefixes.iter().map(move |p| (format!("{p}{channel}"), p.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis Cluster's hash slot of a key: CRC16 (XMODEM) of the key, or of its first non-empty `{…}`
    /// tag, mod 16384.
    fn slot(key: &str) -> u16 {
        let mut hashed = key.as_bytes();
        if let Some(open) = key.find('{') {
            if let Some(len) = key[open + 1..].find('}').filter(|&len| len > 0) {
                hashed = &key.as_bytes()[open + 1..open + 1 + len];
            }
        }
        crc16::State::<crc16::XMODEM>::calculate(hashed) % 16384
    }

    #[test]
    fn names() {
        let single = Layout::Single;
        assert_eq!(
            single.broadcast_channel("app-1", "private-a"),
            "herald:app-1:c:private-a"
        );
        let prefixes = vec!["laravel_database_".to_string(), String::new()];
        let all: Vec<_> = laravel_channels(&prefixes, "orders").map(|(c, _)| c).collect();
        assert_eq!(all, vec!["laravel_database_orders", "orders"]);
        assert_eq!(single.presence_base("a", "presence-x"), "herald:a:presence:presence-x");
        assert_eq!(single.node_presence("n1", "a", "presence-x"), "herald:node:n1:presence");
        assert_eq!(single.nodes(), "herald:nodes");
        assert_eq!(single.app_connections("a"), "herald:a:connections");
        assert_eq!(single.node_webhooks("n1"), "herald:node:n1:webhooks");
        assert_eq!(single.apps_version(), "herald:apps:version");
    }

    #[test]
    fn every_script_touches_one_slot_on_redis_cluster() {
        let c = Layout::Cluster;
        let base = c.presence_base("shop", "presence-chat.1");
        assert_eq!(base, "herald:{shop:presence-chat.1}:presence");
        // join.lua / leave.lua / the per-channel reap
        let node_set = c.node_presence("n1", "shop", "presence-chat.1");
        for key in [format!("{base}:conns"), format!("{base}:log"), node_set] {
            assert_eq!(slot(&key), slot(&base), "{key}");
        }
        // count.lua / admit.lua
        for key in [c.app_channels("shop"), c.node_counts("n1", "shop")] {
            assert_eq!(slot(&key), slot(&c.app_connections("shop")), "{key}");
        }
        // renew.lua / reap.lua / outbox scripts
        for key in [
            c.epoch(),
            c.node_reaped("n1"),
            c.reaping(),
            c.reaping_claim("n1"),
            c.node_webhooks("n1"),
            format!("{}:seq", c.node_webhooks("n1")),
            c.webhook_outboxes(),
        ] {
            assert_eq!(slot(&key), slot(&c.nodes()), "{key}");
        }
        assert_eq!(slot(&c.apps_version()), slot(&c.apps()));
        // The formats the scripts use name the same keys.
        let [presence, connections, channels] = c.script_formats();
        assert_eq!(
            presence.replacen("%s", "shop", 1).replacen("%s", "presence-chat.1", 1),
            base
        );
        assert_eq!(connections.replace("%s", "shop"), c.app_connections("shop"));
        assert_eq!(channels.replace("%s", "shop"), c.app_channels("shop"));
        assert_eq!(c.webhooks_format().replace("%s", "n1"), c.node_webhooks("n1"));
        let [presence, connections, channels] = Layout::Single.script_formats();
        assert_eq!(
            presence.replacen("%s", "a", 1).replacen("%s", "presence-x", 1),
            Layout::Single.presence_base("a", "presence-x")
        );
        assert_eq!(connections.replace("%s", "a"), Layout::Single.app_connections("a"));
        assert_eq!(channels.replace("%s", "a"), Layout::Single.app_channels("a"));
        assert_eq!(
            Layout::Single.webhooks_format().replace("%s", "n1"),
            Layout::Single.node_webhooks("n1")
        );
        // The reaper's scan patterns match the names.
        let [p, counts] = c.node_scan_patterns("n1");
        assert_eq!(
            p.replace('*', "shop:presence-chat.1"),
            c.node_presence("n1", "shop", "presence-chat.1")
        );
        assert_eq!(counts.replace('*', "shop"), c.node_counts("n1", "shop"));
    }
}
