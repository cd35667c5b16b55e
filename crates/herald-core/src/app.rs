//! Apps: the tenants of a node. Each has its credentials, its policies and its own channel index, so two
//! apps can never see each other's channels. An app's settings can change while it runs (a reload, see
//! [`Node::reload`](crate::Node::reload)): the changed app is a new [`App`] that shares the old one's
//! channels, metrics, console and connections, so nobody connected notices anything but the new settings.

use crate::channel_index::{ChannelIndex, Delivery};
use crate::metrics::{metrics, AppMetrics};
use std::collections::HashMap;
use std::sync::Arc;

/// One app's settings, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    pub id: String,
    pub key: String,
    pub secret: String,
    /// Client events (`client-*`) are relayed.
    pub client_events: bool,
    /// Client events a connection may send each second.
    pub client_event_rate: u32,
    /// Channels one connection may be subscribed to at once.
    pub max_channels_per_connection: usize,
    /// Distinct users on one presence channel.
    pub max_presence_members: usize,
    /// Bytes of presence `channel_data`.
    pub max_member_size: usize,
    /// Bytes of `data` in one HTTP API event.
    pub max_event_data_size: usize,
    /// Prefixes of Laravel's Redis channels for this app (`<prefix><channel>`); empty string allowed.
    pub redis_prefixes: Vec<String>,
    /// Open connections allowed across the cluster (None: no limit).
    pub max_connections: Option<u64>,
    /// HTTP API requests allowed each second across the cluster (None: no limit).
    pub max_api_requests_per_second: Option<u64>,
    /// Origins allowed to open WebSockets and call the auth endpoints (`https://app.example.com`,
    /// `*.example.com`); empty: any.
    pub allowed_origins: Vec<String>,
    /// A connection must sign in (`pusher:signin`) within this time, or it is closed (None: not required).
    pub signin_timeout: Option<std::time::Duration>,
    /// The app's own `/broadcasting/auth`, for the auth endpoint Herald offers apps on the redis driver.
    pub auth_url: Option<String>,
    /// The app's own `/broadcasting/user-auth`, likewise for sign-in.
    pub user_auth_url: Option<String>,
    /// How long the app's auth endpoint may take.
    pub auth_timeout: std::time::Duration,
    /// Request headers passed on to the app's auth endpoint (lower case).
    pub auth_headers: Vec<String>,
    /// The 32-byte master key of encrypted channels, when Herald signs their auth.
    pub encryption_master_key: Option<[u8; 32]>,
    /// Where webhooks go (none: no webhooks).
    pub webhooks: Vec<crate::webhook::WebhookTarget>,
    /// How long the last event of a cache channel is kept.
    pub cache_ttl: std::time::Duration,
    /// False: the app's connections are closed with 4003 and new ones refused, its HTTP API answers 403.
    pub enabled: bool,
    /// The keys of laravel-echo-server's HTTP API clients (its `clients[].key`): a request to `/apps/{id}/…`
    /// that carries one as `auth_key` or `Authorization: Bearer`, and no Pusher signature, is answered
    /// the way laravel-echo-server answered it. Empty: that API is off.
    pub echo_client_keys: Vec<String>,
    /// Secrets a reload replaced, still accepted until their time is up, so signatures made with the old
    /// secret keep working while every Laravel server moves to the new one.
    pub retired_secrets: Vec<(String, std::time::Instant)>,
}

/// Headers the auth endpoint passes on by default: what Laravel needs to find the session and check CSRF.
pub const DEFAULT_AUTH_HEADERS: &[&str] = &[
    "cookie",
    "authorization",
    "x-csrf-token",
    "x-xsrf-token",
    "x-socket-id",
    "x-requested-with",
    "accept",
    "user-agent",
    "origin",
    "referer",
];

impl AppConfig {
    /// True when both have the same settings (secrets still in their overlap left aside).
    pub fn same_settings(&self, other: &AppConfig) -> bool {
        let strip = |c: &AppConfig| AppConfig {
            retired_secrets: Vec::new(),
            ..c.clone()
        };
        strip(self) == strip(other)
    }

    /// The secret webhooks are signed with: during an overlap the replaced one, which the app still holds
    /// until it moves to the new one (see docs/configuration.md, reloading).
    pub fn signing_secret(&self) -> &str {
        let now = std::time::Instant::now();
        self.retired_secrets
            .iter()
            .find(|(_, until)| now < *until)
            .map_or(self.secret.as_str(), |(s, _)| s.as_str())
    }

    /// Every secret a signature may be made with now: the current one, then retired ones still in their
    /// overlap.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.secret.as_str()).chain(self.retired_secrets_in_overlap())
    }

    /// The retired secrets a signature may still be made with (their overlap has not ended).
    pub fn retired_secrets_in_overlap(&self) -> impl Iterator<Item = &str> {
        let now = (!self.retired_secrets.is_empty()).then(std::time::Instant::now);
        self.retired_secrets
            .iter()
            .filter(move |(_, until)| now.is_some_and(|now| now < *until))
            .map(|(s, _)| s.as_str())
    }

    /// True when `origin` may connect. No list: every origin. Otherwise an entry matches when it is:
    /// `*` (any origin); a full origin with its scheme (`https://app.example.com`, compared exactly); or, as
    /// Reverb writes them, a host name without scheme (`app.example.com`, any scheme and port) where `*`
    /// stands for any run of characters (`*.example.com`, which also matches `example.com` itself). A
    /// request without an `Origin` header is allowed: browsers always send one, and the list exists to stop
    /// other sites' pages; a non-browser client could send any.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        if self.allowed_origins.is_empty() {
            return true;
        }
        let Some(origin) = origin else { return true };
        let authority = origin.split_once("://").map_or(origin, |(_, h)| h);
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        };
        self.allowed_origins.iter().any(|allowed| {
            if allowed == "*" {
                true
            } else if allowed.contains("://") {
                // A full origin; `https://*.example.com` as soketi and laravel-websockets users write it.
                wildcard(allowed, origin)
            } else if let Some(domain) = allowed.strip_prefix("*.") {
                host.eq_ignore_ascii_case(domain) || wildcard(allowed, host)
            } else {
                wildcard(allowed, host)
            }
        })
    }
}

/// `pattern` matches `text` (ASCII case-insensitive), `*` standing for any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

impl AppConfig {
    /// An app with Pusher's default limits.
    pub fn new(id: impl Into<String>, key: impl Into<String>, secret: impl Into<String>) -> Self {
        AppConfig {
            id: id.into(),
            key: key.into(),
            secret: secret.into(),
            client_events: true,
            client_event_rate: 10,
            max_channels_per_connection: 100,
            max_presence_members: 100,
            max_member_size: herald_protocol::presence_data::DEFAULT_MAX_MEMBER_SIZE,
            max_event_data_size: herald_protocol::api_event::DEFAULT_MAX_DATA_SIZE,
            redis_prefixes: vec!["laravel_database_".into()],
            max_connections: None,
            max_api_requests_per_second: None,
            allowed_origins: Vec::new(),
            signin_timeout: None,
            auth_url: None,
            user_auth_url: None,
            auth_timeout: std::time::Duration::from_secs(5),
            auth_headers: DEFAULT_AUTH_HEADERS.iter().map(|h| h.to_string()).collect(),
            encryption_master_key: None,
            webhooks: Vec::new(),
            cache_ttl: std::time::Duration::from_secs(30 * 60),
            enabled: true,
            echo_client_keys: Vec::new(),
            retired_secrets: Vec::new(),
        }
    }
}

/// An app at run time: its settings and its channels on this node.
pub struct App {
    pub config: AppConfig,
    pub channels: Arc<ChannelIndex>,
    pub metrics: AppMetrics,
    /// Whether the app's console is watched, and its cap on this node.
    pub console: Arc<crate::console::ConsoleGate>,
    /// True once the app is disabled or removed: every connection to it closes (4003).
    disabled: Arc<tokio::sync::watch::Sender<bool>>,
    /// The current secret, ready to check HTTP API signatures (every API request checks one).
    pub api_key: herald_protocol::signature::SigningKey,
}

impl App {
    pub fn new(config: AppConfig) -> Self {
        let metrics = AppMetrics::new(&config.id);
        let disabled = Arc::new(tokio::sync::watch::Sender::new(!config.enabled));
        App {
            api_key: herald_protocol::signature::SigningKey::new(&config.secret),
            config,
            channels: Default::default(),
            metrics,
            console: Default::default(),
            disabled,
        }
    }

    /// The same app with new settings: the same channels, metrics, console and connections. Its connections
    /// hear of a change of `enabled` from [`App::apply_enabled`], once the new settings are in place.
    pub fn reconfigured(&self, config: AppConfig) -> Self {
        App {
            api_key: herald_protocol::signature::SigningKey::new(&config.secret),
            config,
            channels: self.channels.clone(),
            metrics: self.metrics.clone(),
            console: self.console.clone(),
            disabled: self.disabled.clone(),
        }
    }

    /// Changes to true when the app is disabled or removed (a connection closes with 4003 then).
    pub fn disabled(&self) -> tokio::sync::watch::Receiver<bool> {
        self.disabled.subscribe()
    }

    /// Closes every connection to the app (it was removed).
    pub fn disable(&self) {
        self.disabled.send_if_modified(|d| !std::mem::replace(d, true));
    }

    /// Tells the app's connections whether it is enabled now (only when that changed).
    pub fn apply_enabled(&self) {
        let disabled = !self.config.enabled;
        self.disabled
            .send_if_modified(|d| std::mem::replace(d, disabled) != disabled);
    }

    /// Delivers a broadcast to this node's subscribers of `channel` and records the fan-out;
    /// `started` is when the broadcast entered the node.
    pub fn fan_out(&self, channel: &str, broadcast: &crate::Broadcast, started: std::time::Instant) -> Delivery {
        let delivery = self.channels.deliver(channel, broadcast);
        if delivery.sent > 0 {
            self.metrics.messages_sent.inc_by(delivery.sent as u64);
            self.metrics
                .bytes_sent
                .inc_by((delivery.sent * broadcast.frame.len()) as u64);
        }
        let m = metrics();
        m.fanout.observe(delivery.sent as f64);
        m.broadcast_latency.observe(started.elapsed().as_secs_f64());
        delivery
    }
}

/// Every app of the node, found by key (WebSocket) or id (HTTP API).
#[derive(Default)]
pub struct AppRegistry {
    by_key: HashMap<String, Arc<App>>,
    by_id: HashMap<String, Arc<App>>,
}

impl AppRegistry {
    pub fn new(configs: Vec<AppConfig>) -> Self {
        Self::of(configs.into_iter().map(|c| Arc::new(App::new(c))))
    }

    /// A registry of apps already running.
    pub fn of(apps: impl IntoIterator<Item = Arc<App>>) -> Self {
        let mut registry = AppRegistry::default();
        for app in apps {
            registry.by_key.insert(app.config.key.clone(), app.clone());
            registry.by_id.insert(app.config.id.clone(), app);
        }
        registry
    }

    pub fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.by_key.get(key)
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.by_id.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let mut app = AppConfig::new("a", "k", "s");
        assert!(app.origin_allowed(None));
        app.allowed_origins = vec!["https://app.example.com".into(), "*.shop.test".into()];
        assert!(app.origin_allowed(Some("https://app.example.com")));
        assert!(!app.origin_allowed(Some("http://app.example.com")));
        assert!(app.origin_allowed(Some("https://eu.shop.test")));
        assert!(app.origin_allowed(Some("http://shop.test:8080")));
        assert!(!app.origin_allowed(Some("https://evilshop.test")));
        assert!(!app.origin_allowed(Some("https://shop.test.evil.com")));
        assert!(app.origin_allowed(None), "no Origin header: not a browser");
    }

    #[test]
    fn reverb_style_host_only_and_wildcard_origins() {
        let mut app = AppConfig::new("a", "k", "s");
        app.allowed_origins = vec![
            "shop.example.com".into(),
            "*.staging.test".into(),
            "admin-*.corp.test".into(),
        ];
        assert!(app.origin_allowed(Some("https://shop.example.com")));
        assert!(app.origin_allowed(Some("http://Shop.Example.com:8000")));
        assert!(!app.origin_allowed(Some("https://shop.example.com.evil.test")));
        assert!(!app.origin_allowed(Some("https://evilshop.example.com")));
        assert!(app.origin_allowed(Some("https://a.b.staging.test")));
        assert!(app.origin_allowed(Some("https://staging.test")));
        assert!(app.origin_allowed(Some("https://admin-eu.corp.test")));
        assert!(!app.origin_allowed(Some("https://admin.corp.test")));
        assert!(!app.origin_allowed(Some("null")));
        app.allowed_origins = vec!["https://*.example.com".into()];
        assert!(app.origin_allowed(Some("https://eu.example.com")));
        assert!(!app.origin_allowed(Some("http://eu.example.com")));
        app.allowed_origins = vec!["*".into()];
        assert!(app.origin_allowed(Some("null")));
    }
}
