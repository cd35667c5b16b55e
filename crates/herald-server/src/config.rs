//! Configuration: a TOML file, environment variables and flags, in rising order of precedence, with
//! defaults that run at once. Laravel's own `PUSHER_APP_*` / `REVERB_APP_*` names are accepted for the
//! default app. A bad value fails the start with a message naming the key.

use crate::laravel_env;
use clap::Parser;
use herald_core::webhook::WebhookTarget;
use herald_core::{AppConfig, NodeSettings};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Command-line flags; each has an environment variable.
#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "A horizontally scalable Pusher-protocol WebSocket server for Laravel"
)]
pub struct Flags {
    /// TOML configuration file.
    #[arg(long, env = "HERALD_CONFIG")]
    pub config: Option<PathBuf>,
    /// laravel-echo-server's laravel-echo-server.json, read for the settings nothing else gives.
    #[arg(long, env = "HERALD_ECHO_SERVER_CONFIG")]
    pub echo_server_config: Option<PathBuf>,
    /// What the settings came from, said at start (filled while loading).
    #[arg(skip)]
    pub notes: Vec<String>,
    /// Address to listen on [default: 0.0.0.0; else REVERB_SERVER_HOST].
    #[arg(long, env = "HERALD_HOST")]
    pub host: Option<String>,
    /// Port for WebSocket clients and the HTTP API [default: 6001; else REVERB_SERVER_PORT].
    #[arg(long, env = "HERALD_PORT")]
    pub port: Option<u16>,
    /// Redis URL: redis://host:6379/0, rediss:// for TLS, redis+sentinel://h1:26379,h2:26379/mymaster. Else
    /// Laravel's REDIS_URL, or REDIS_HOST/REDIS_PORT/REDIS_USERNAME/REDIS_PASSWORD/REDIS_DB; none: one node,
    /// all in memory.
    #[arg(long, env = "HERALD_REDIS_URL")]
    pub redis_url: Option<String>,
    /// PEM CA bundle that signs Redis's certificate (rediss://), when it is not in the system's roots.
    #[arg(long, env = "HERALD_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// PEM client certificate for Redis mutual TLS.
    #[arg(long, env = "HERALD_REDIS_CLIENT_CERT_FILE")]
    pub redis_client_cert_file: Option<PathBuf>,
    /// PEM key of the Redis client certificate.
    #[arg(long, env = "HERALD_REDIS_CLIENT_KEY_FILE")]
    pub redis_client_key_file: Option<PathBuf>,
    /// Accept any certificate from Redis (self-signed test setups only; logged loudly).
    #[arg(long, env = "HERALD_REDIS_TLS_INSECURE")]
    pub redis_tls_insecure: Option<bool>,
    /// PEM certificate (a chain is allowed) to serve wss:// and https:// on the main port.
    #[arg(long, env = "HERALD_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "HERALD_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA bundle trusted, besides the system's roots, for the app's https:// auth URLs and webhooks.
    #[arg(long, env = "HERALD_APP_CA_FILE")]
    pub app_ca_file: Option<PathBuf>,
    /// Prefix(es) of Laravel's Redis channels, comma-separated; may be empty [default: Laravel's REDIS_PREFIX,
    /// else APP_NAME as a slug + _database_, else laravel_database_].
    #[arg(long, env = "HERALD_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// The default app's id [else PUSHER_APP_ID, REVERB_APP_ID; none of them: the development app app-id].
    #[arg(long, env = "HERALD_APP_ID")]
    pub app_id: Option<String>,
    /// The default app's key [else PUSHER_APP_KEY, REVERB_APP_KEY].
    #[arg(long, env = "HERALD_APP_KEY")]
    pub app_key: Option<String>,
    /// The default app's secret [else PUSHER_APP_SECRET, REVERB_APP_SECRET].
    #[arg(long, env = "HERALD_APP_SECRET")]
    pub app_secret: Option<String>,
    /// Settings of the default app (the one configured by environment or flags).
    #[command(flatten)]
    pub default_app: DefaultAppFlags,
    /// Client events on the default app (true/false) [default: true].
    #[arg(long, env = "HERALD_CLIENT_EVENTS")]
    pub client_events: Option<bool>,
    /// Seconds of client silence before the server pings it (advertised to clients) [default: 30].
    #[arg(long, env = "HERALD_ACTIVITY_TIMEOUT_SECS")]
    pub activity_timeout_secs: Option<u64>,
    /// Deprecated name of HERALD_ACTIVITY_TIMEOUT_SECS.
    #[arg(long = "activity-timeout", env = "HERALD_ACTIVITY_TIMEOUT", hide = true)]
    pub activity_timeout_old: Option<u64>,
    /// Seconds a pinged client has to answer [default: 30].
    #[arg(long, env = "HERALD_PONG_TIMEOUT_SECS")]
    pub pong_timeout_secs: Option<u64>,
    /// Deprecated name of HERALD_PONG_TIMEOUT_SECS.
    #[arg(long = "pong-timeout", env = "HERALD_PONG_TIMEOUT", hide = true)]
    pub pong_timeout_old: Option<u64>,
    /// Largest message a client may send, in bytes [default: 16384].
    #[arg(long, env = "HERALD_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,
    /// Frames queued per connection before a slow client is closed [default: 1024].
    #[arg(long, env = "HERALD_MAX_OUTBOUND_QUEUE")]
    pub max_outbound_queue: Option<usize>,
    /// Milliseconds a node's lease in Redis lasts; a node silent this long is reaped (presence cleaned up)
    /// [default: 2000].
    #[arg(long, env = "HERALD_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// Milliseconds a node may be cut off from Redis before it lets its clients go (0: never) [default: 10000].
    #[arg(long, env = "HERALD_ISOLATION_TIMEOUT_MS")]
    pub isolation_timeout_ms: Option<u64>,
    /// Milliseconds a client has to send a request body (HTTP API, auth endpoints) once its headers are in
    /// [default: 10000].
    #[arg(long, env = "HERALD_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u64>,
    /// Serve /metrics, /livez and /readyz on this port instead of the main one.
    #[arg(long, env = "HERALD_METRICS_PORT")]
    pub metrics_port: Option<u16>,
    /// Turns on the debug dashboard for every app: the token that opens it (at least 16 characters).
    #[arg(long, env = "HERALD_DASHBOARD_TOKEN", hide_env_values = true)]
    pub dashboard_token: Option<String>,
    /// Also keep apps in Redis, managed with `herald apps` (every node follows changes within a second)
    #[arg(long, env = "HERALD_REDIS_APPS")]
    pub redis_apps: Option<bool>,
    /// Turns on the admin HTTP endpoint (/herald/admin/apps) for apps kept in Redis: the token requests are
    /// signed with (at least 16 characters)
    #[arg(long, env = "HERALD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Seconds a replaced app secret stays accepted after a reload [default: 300]
    #[arg(long, env = "HERALD_SECRET_OVERLAP_SECS")]
    pub secret_overlap_secs: Option<u64>,
    /// Where the dashboard is served [default: /herald/dashboard]
    #[arg(long, env = "HERALD_DASHBOARD_PATH")]
    pub dashboard_path: Option<String>,
    /// Where Echo's socket.io broadcaster (laravel-echo-server's clients) connects; "off" turns it off
    /// [default: /socket.io].
    #[arg(long, env = "HERALD_SOCKETIO_PATH")]
    pub socketio_path: Option<String>,
    /// The id of the app socket.io clients belong to [default: the first app].
    #[arg(long, env = "HERALD_SOCKETIO_APP")]
    pub socketio_app: Option<String>,
    /// socket.io clients one node holds at most, polling sessions included [default: 20000].
    #[arg(long, env = "HERALD_SOCKETIO_MAX_CLIENTS")]
    pub socketio_max_clients: Option<usize>,
    /// Seconds over which a draining node closes its connections (SIGTERM) [default: 10].
    #[arg(long, env = "HERALD_DRAIN_SECS")]
    pub drain_secs: Option<u64>,
    /// Deprecated name of HERALD_DRAIN_SECS.
    #[arg(long = "drain-seconds", env = "HERALD_DRAIN_SECONDS", hide = true)]
    pub drain_seconds_old: Option<u64>,
    /// Milliseconds a drained connection's presence outlives it, so a reconnect elsewhere causes no flap
    /// [default: 5000].
    #[arg(long, env = "HERALD_PRESENCE_GRACE_MS")]
    pub presence_grace_ms: Option<u64>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "HERALD_LOG_FORMAT")]
    pub log_format: Option<String>,
}

/// Policies of the default app, by flag or environment (apps in the file set them with their own keys).
#[derive(Debug, clap::Args)]
pub struct DefaultAppFlags {
    /// Connections the default app may hold across the cluster.
    #[arg(long, env = "HERALD_MAX_CONNECTIONS")]
    pub max_connections: Option<u64>,
    /// HTTP API requests a second the default app may make across the cluster.
    #[arg(long, env = "HERALD_MAX_API_REQUESTS_PER_SECOND")]
    pub max_api_requests_per_second: Option<u64>,
    /// Origins allowed to connect and to use the auth endpoints, comma-separated: full origins
    /// (https://shop.example.com) or host names as Reverb takes them (shop.example.com, *.example.com)
    /// [default: any origin for WebSockets, same-origin for the auth endpoints].
    #[arg(long, env = "HERALD_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Seconds a connection has to sign in before it is closed (unset: sign-in not required).
    #[arg(long, env = "HERALD_SIGNIN_TIMEOUT_SECS")]
    pub signin_timeout_secs: Option<u64>,
    /// Deprecated name of HERALD_SIGNIN_TIMEOUT_SECS.
    #[arg(long = "signin-timeout", env = "HERALD_SIGNIN_TIMEOUT", hide = true)]
    pub signin_timeout_old: Option<u64>,
    /// The Laravel app's /broadcasting/auth, for Herald's auth endpoint (BROADCAST_DRIVER=redis).
    #[arg(long, env = "HERALD_AUTH_URL")]
    pub auth_url: Option<String>,
    /// The Laravel app's /broadcasting/user-auth, for Herald's user-auth endpoint.
    #[arg(long, env = "HERALD_USER_AUTH_URL")]
    pub user_auth_url: Option<String>,
    /// Base64 32-byte master key for private-encrypted- channels.
    #[arg(long, env = "HERALD_ENCRYPTION_MASTER_KEY")]
    pub encryption_master_key: Option<String>,
    /// Where the default app's webhooks go (http://...).
    #[arg(long, env = "HERALD_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Which webhook events to send, comma-separated (default: all).
    #[arg(long, env = "HERALD_WEBHOOK_EVENTS")]
    pub webhook_events: Option<String>,
    /// Keys of laravel-echo-server's HTTP API clients (its `clients[].key`), comma-separated: turns on that
    /// API for the default app.
    #[arg(long, env = "HERALD_ECHO_CLIENT_KEYS", hide_env_values = true)]
    pub echo_client_keys: Option<String>,
}

/// A setting that was renamed: the new name wins; the old one still works, with a warning naming the new one.
fn renamed<T>(new: Option<T>, old: Option<T>, old_name: &str, new_name: &str, warnings: &mut Vec<String>) -> Option<T> {
    if old.is_some() {
        warnings.push(format!(
            "{old_name} is deprecated; use {new_name} (same value, same unit)"
        ));
    }
    new.or(old)
}

impl DefaultAppFlags {
    fn apply(&self, config: &mut AppConfig, warnings: &mut Vec<String>) -> Result<(), String> {
        let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        config.max_connections = self.max_connections.or(config.max_connections);
        config.max_api_requests_per_second = self.max_api_requests_per_second.or(config.max_api_requests_per_second);
        if let Some(origins) = given(&self.allowed_origins) {
            config.allowed_origins = origins
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect();
        }
        let signin_timeout = renamed(
            self.signin_timeout_secs,
            self.signin_timeout_old,
            "HERALD_SIGNIN_TIMEOUT",
            "HERALD_SIGNIN_TIMEOUT_SECS",
            warnings,
        );
        if let Some(secs) = signin_timeout {
            positive(secs, "HERALD_SIGNIN_TIMEOUT_SECS")?;
            config.signin_timeout = Some(Duration::from_secs(secs));
        }
        if let Some(keys) = given(&self.echo_client_keys) {
            config.echo_client_keys = echo_client_keys(keys.split(','), "HERALD_ECHO_CLIENT_KEYS")?;
        }
        config.auth_url = given(&self.auth_url).or(config.auth_url.take());
        config.user_auth_url = given(&self.user_auth_url).or(config.user_auth_url.take());
        if let Some(key) = given(&self.encryption_master_key) {
            config.encryption_master_key = Some(master_key(&key, "HERALD_ENCRYPTION_MASTER_KEY")?);
        }
        if self.webhook_events.is_some() && given(&self.webhook_url).is_none() {
            return Err("HERALD_WEBHOOK_EVENTS is set but HERALD_WEBHOOK_URL is not".into());
        }
        if let Some(url) = given(&self.webhook_url) {
            let events = given(&self.webhook_events)
                .map(|e| {
                    e.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            config
                .webhooks
                .push(webhook_target(url, events, None, "HERALD_WEBHOOK_URL")?);
        }
        Ok(())
    }
}

/// laravel-echo-server's client keys: each at least 16 characters (they open the HTTP API).
fn echo_client_keys<'a>(keys: impl Iterator<Item = &'a str>, at: &str) -> Result<Vec<String>, String> {
    let keys: Vec<String> = keys.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect();
    if let Some(i) = keys.iter().position(|k| k.chars().count() < 16) {
        return Err(format!(
            "{at}: key number {} is shorter than 16 characters; laravel-echo-server client keys open the HTTP API, use `openssl rand -hex 16`",
            i + 1
        ));
    }
    Ok(keys)
}

fn master_key(base64_key: &str, at: &str) -> Result<[u8; 32], String> {
    herald_protocol::encryption::parse_master_key(base64_key).map_err(|e| format!("{at}: {e}"))
}

/// The file, all keys optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<String>,
    port: Option<u16>,
    activity_timeout_secs: Option<u64>,
    /// Deprecated name of `activity_timeout_secs`.
    activity_timeout: Option<u64>,
    pong_timeout_secs: Option<u64>,
    /// Deprecated name of `pong_timeout_secs`.
    pong_timeout: Option<u64>,
    max_message_size: Option<usize>,
    max_outbound_queue: Option<usize>,
    log_format: Option<String>,
    lease_ms: Option<u64>,
    isolation_timeout_ms: Option<u64>,
    metrics_port: Option<u16>,
    drain_secs: Option<u64>,
    body_timeout_ms: Option<u64>,
    /// Deprecated name of `drain_secs`.
    drain_seconds: Option<u64>,
    presence_grace_ms: Option<u64>,
    redis: Option<FileRedis>,
    tls: Option<FileTls>,
    dashboard: Option<FileDashboard>,
    secret_overlap_secs: Option<u64>,
    admin_token: Option<String>,
    app_ca_file: Option<PathBuf>,
    socketio_path: Option<String>,
    socketio_app: Option<String>,
    socketio_max_clients: Option<usize>,
    #[serde(default)]
    apps: Vec<FileApp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDashboard {
    token: Option<String>,
    path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRedis {
    url: Option<String>,
    /// Apps also kept in Redis (`herald apps`).
    apps: Option<bool>,
    prefix: Option<Prefixes>,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    tls_insecure: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Prefixes {
    One(String),
    Many(Vec<String>),
}

impl Prefixes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Prefixes::One(s) => split_prefixes(&s),
            Prefixes::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApp {
    id: String,
    key: String,
    secret: String,
    client_events: Option<bool>,
    client_event_rate: Option<u32>,
    max_channels_per_connection: Option<usize>,
    max_presence_members: Option<usize>,
    max_member_size: Option<usize>,
    max_event_data_size: Option<usize>,
    redis_prefix: Option<Prefixes>,
    max_connections: Option<u64>,
    max_api_requests_per_second: Option<u64>,
    allowed_origins: Option<Vec<String>>,
    signin_timeout_secs: Option<u64>,
    auth_url: Option<String>,
    user_auth_url: Option<String>,
    auth_timeout_ms: Option<u64>,
    auth_headers: Option<Vec<String>>,
    encryption_master_key: Option<String>,
    webhooks: Option<Vec<FileWebhook>>,
    cache_ttl_secs: Option<u64>,
    /// Opens the dashboard for this app only.
    dashboard_token: Option<String>,
    /// false: connections closed with 4003, new ones and HTTP API calls refused.
    enabled: Option<bool>,
    /// laravel-echo-server's HTTP API client keys.
    echo_client_keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebhook {
    url: String,
    #[serde(default)]
    events: Vec<String>,
    channel_prefix: Option<String>,
}

/// Webhook event names Herald sends.
const WEBHOOK_EVENTS: &[&str] = &herald_core::webhook::NAMES;

fn webhook_target(
    url: String,
    events: Vec<String>,
    channel_prefix: Option<String>,
    at: &str,
) -> Result<WebhookTarget, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.parse::<hyper::Uri>().is_err() {
        return Err(format!("{at}.url {url:?} must be an http:// or https:// URL"));
    }
    if let Some(bad) = events.iter().find(|e| !WEBHOOK_EVENTS.contains(&e.as_str())) {
        return Err(format!(
            "{at}.events: unknown event {bad:?} (known: {})",
            WEBHOOK_EVENTS.join(", ")
        ));
    }
    Ok(WebhookTarget {
        url,
        events,
        channel_prefix,
    })
}

/// The file's text as settings: TOML, with `${NAME}` in any string value replaced by the environment
/// variable NAME, so secrets can stay out of the file (a Kubernetes Secret in an env var, say). The
/// replacement happens after parsing, so a value can never change the file's structure.
fn parse_file(text: &str) -> Result<FileConfig, String> {
    let mut value: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
    expand_env(&mut value, "")?;
    FileConfig::deserialize(value).map_err(|e| e.to_string())
}

fn expand_env(value: &mut toml::Value, at: &str) -> Result<(), String> {
    match value {
        toml::Value::String(s) => *s = expand_string(s, at)?,
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_env(item, &format!("{at}[{i}]"))?;
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let at = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                expand_env(item, &at)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `s` with each `${NAME}` (NAME of capitals, digits and `_`) replaced; anything else stays as written.
fn expand_string(s: &str, at: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with('}') {
            out.push_str("${");
            rest = after;
            continue;
        }
        let name = &after[..name_len];
        match std::env::var(name) {
            Ok(v) => out.push_str(&v),
            Err(_) => {
                return Err(format!(
                    "{at} uses ${{{name}}}, but the environment variable {name} is not set"
                ))
            }
        }
        rest = &after[name_len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One `[[apps]]` table (from the file, or an app kept in Redis) as an app's settings, checked; `at` names it
/// in errors. Also returns its own dashboard token.
fn file_app(app: FileApp, at: &str, global_prefixes: &[String]) -> Result<(AppConfig, Option<String>), String> {
    let mut config = AppConfig::new(app.id, app.key, app.secret);
    let defaults = config.clone();
    config.client_events = app.client_events.unwrap_or(defaults.client_events);
    config.client_event_rate = app.client_event_rate.unwrap_or(defaults.client_event_rate);
    config.max_channels_per_connection = app
        .max_channels_per_connection
        .unwrap_or(defaults.max_channels_per_connection);
    config.max_presence_members = app.max_presence_members.unwrap_or(defaults.max_presence_members);
    config.max_member_size = app.max_member_size.unwrap_or(defaults.max_member_size);
    config.max_event_data_size = app.max_event_data_size.unwrap_or(defaults.max_event_data_size);
    config.redis_prefixes = app
        .redis_prefix
        .map(Prefixes::into_vec)
        .unwrap_or_else(|| global_prefixes.to_vec());
    config.max_connections = app.max_connections;
    config.max_api_requests_per_second = app.max_api_requests_per_second;
    config.allowed_origins = app.allowed_origins.unwrap_or_default();
    if app.signin_timeout_secs == Some(0) {
        return Err(format!("{at}.signin_timeout_secs must be greater than 0"));
    }
    config.signin_timeout = app.signin_timeout_secs.map(Duration::from_secs);
    config.auth_url = app.auth_url;
    config.user_auth_url = app.user_auth_url;
    if let Some(ms) = app.auth_timeout_ms {
        config.auth_timeout = Duration::from_millis(ms);
    }
    if let Some(headers) = app.auth_headers {
        config.auth_headers = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    }
    for (j, hook) in app.webhooks.unwrap_or_default().into_iter().enumerate() {
        let target = webhook_target(
            hook.url,
            hook.events,
            hook.channel_prefix,
            &format!("{at}.webhooks[{j}]"),
        )?;
        config.webhooks.push(target);
    }
    if let Some(secs) = app.cache_ttl_secs {
        config.cache_ttl = Duration::from_secs(secs);
    }
    config.enabled = app.enabled.unwrap_or(true);
    if let Some(keys) = &app.echo_client_keys {
        config.echo_client_keys = echo_client_keys(keys.iter().map(String::as_str), &format!("{at}.echo_client_keys"))?;
    }
    if let Some(key) = app.encryption_master_key {
        config.encryption_master_key = Some(master_key(&key, &format!("{at}.encryption_master_key"))?);
    }
    validate_app(&config, at)?;
    let token = match app.dashboard_token {
        Some(token) => Some(strong_token(token, &format!("{at}.dashboard_token"))?),
        None => None,
    };
    Ok((config, token))
}

/// The log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub redis_url: Option<String>,
    pub apps: Vec<AppConfig>,
    pub settings: NodeSettings,
    pub log_format: LogFormat,
    /// How long a node's lease in Redis lasts.
    pub lease: Duration,
    /// A separate port for metrics and probes.
    pub metrics_port: Option<u16>,
    /// The drain window.
    pub drain_window: Duration,
    /// How long presence outlives a drained connection.
    pub presence_grace: Duration,
    /// True when no app was configured and the development app is in use.
    pub dev_app: bool,
    /// Settings given under an old name, to be logged once logging is up.
    pub deprecations: Vec<String>,
    /// TLS towards Redis (rediss://).
    pub redis_tls: herald_redis::RedisTls,
    /// The listener's certificate and key files: the main port serves TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// A CA bundle for the app's https:// endpoints.
    pub app_ca_file: Option<PathBuf>,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// How long the node may be cut off from Redis before it lets its clients go (zero: never).
    pub isolation_timeout: Duration,
    /// Settings taken from Laravel's own variables, said at start (`port 8080 from REVERB_SERVER_PORT`).
    pub sources: Vec<String>,
    /// The debug dashboard (off unless a token is set).
    pub dashboard: DashboardConfig,
    /// The config file, re-read on SIGHUP and when it changes.
    pub file: Option<PathBuf>,
    /// How long a secret replaced by a reload stays accepted.
    pub secret_overlap: Duration,
    /// Apps are also kept in Redis (`herald apps`).
    pub redis_apps: bool,
    /// How many of `apps` come from the config file.
    pub file_apps: usize,
    /// Signs the admin HTTP endpoint's requests (None: the endpoint is off).
    pub admin_token: Option<String>,
    /// The Redis prefixes of apps that name none.
    pub default_prefixes: Vec<String>,
    /// Echo's socket.io broadcaster (None: off).
    pub socketio: Option<SocketIoConfig>,
}

/// Where the socket.io endpoint is and which app its clients belong to (laravel-echo-server served one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketIoConfig {
    /// The path, without a trailing slash (`/socket.io`).
    pub path: String,
    /// The id of the app socket.io clients connect to.
    pub app_id: String,
    /// Clients one node holds at most (an Engine.IO handshake over the limit is answered 503).
    pub max_clients: usize,
}

/// The debug dashboard: where it is served and the tokens that open it.
#[derive(Debug, Clone, Default)]
pub struct DashboardConfig {
    /// The path it is served under, without a trailing slash.
    pub path: String,
    /// Opens every app (`HERALD_DASHBOARD_TOKEN`).
    pub token: Option<String>,
    /// (app id, token) pairs that open one app each (`dashboard_token` of an app in the file).
    pub app_tokens: Vec<(String, String)>,
}

impl Config {
    /// The host a client on this machine reaches the node at (a wildcard listen address means loopback).
    pub fn local_host(&self) -> &str {
        match self.host.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
            other => other,
        }
    }

    /// How to reach Redis (None: embedded mode, no Redis).
    pub fn redis_settings(&self) -> Option<herald_redis::RedisSettings> {
        Some(herald_redis::RedisSettings {
            url: self.redis_url.clone()?,
            lease: self.lease,
            tls: self.redis_tls.clone(),
        })
    }

    /// `http://` or `https://` (with TLS), the local host and the port: where the subcommands find a node.
    pub fn local_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.local_host(), self.port)
    }
}

impl Config {
    /// Apps kept in Redis (id, JSON of an `[[apps]]` table), checked like the file's; a record that does
    /// not pass is left out and named in the second list.
    pub fn apps_from_store(&self, records: &[(String, String)]) -> (Vec<AppConfig>, Vec<String>) {
        let mut apps = Vec::new();
        let mut errors = Vec::new();
        for (id, json) in records {
            let at = format!("app {id:?} in Redis");
            let parsed = serde_json::from_str::<FileApp>(json).map_err(|e| format!("{at}: {e}"));
            match parsed.and_then(|app| file_app(app, &at, &self.default_prefixes)) {
                Ok((app, _)) if &app.id != id => errors.push(format!("{at}: its id says {:?}", app.id)),
                Ok((app, _)) => apps.push(app),
                Err(e) => errors.push(e),
            }
        }
        (apps, errors)
    }

    /// This configuration's apps with those kept in Redis (an id in both: this configuration's), checked
    /// together (ids, keys and Redis prefixes of their own).
    pub fn with_stored_apps(&self, stored: Vec<AppConfig>) -> Result<Vec<AppConfig>, String> {
        let mut apps = self.apps.clone();
        for app in stored {
            if !apps.iter().any(|a| a.id == app.id) {
                apps.push(app);
            }
        }
        check_unique(&apps, self.redis_url.is_some())?;
        Ok(apps)
    }
}

impl DashboardConfig {
    pub fn enabled(&self) -> bool {
        self.token.is_some() || !self.app_tokens.is_empty()
    }
}

/// A dashboard or admin token, refused when it is too short to keep out a guesser.
fn strong_token(token: String, at: &str) -> Result<String, String> {
    if token.chars().count() < 16 {
        return Err(format!(
            "{at} must be at least 16 characters long; generate one with: openssl rand -hex 24"
        ));
    }
    Ok(token)
}

fn dashboard_path(path: String, at: &str) -> Result<String, String> {
    let path = path.trim_end_matches('/').to_owned();
    let reserved = [
        "/app",
        "/apps",
        "/herald/auth",
        "/herald/user-auth",
        "/livez",
        "/readyz",
        "/metrics",
        "/socket.io",
    ];
    own_path(path, &reserved, &format!("{at} {{path:?}}"), "/herald/dashboard")
}

/// A path an endpoint may take: plain characters, and neither inside one of Herald's `reserved` paths nor
/// above one (`/herald` would take the auth endpoints). `setting` names it in the error (`{path:?}` is
/// replaced by the path).
fn own_path(path: String, reserved: &[&str], setting: &str, example: &str) -> Result<String, String> {
    let clashes = reserved
        .iter()
        .any(|r| path == *r || path.starts_with(&format!("{r}/")) || r.starts_with(&format!("{path}/")));
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    if !path.starts_with('/') || path.len() < 2 || clashes || !plain || path.contains("//") {
        let setting = setting.replace("{path:?}", &format!("{path:?}"));
        return Err(format!(
            "{setting} must be a path of its own made of letters, digits, '-', '_', '.' and '/', starting with /, such as {example}"
        ));
    }
    Ok(path)
}

fn split_prefixes(s: &str) -> Vec<String> {
    s.split(',').map(|p| p.trim().to_owned()).collect()
}

/// A value clap refused, named as the user set it: the environment variable when that is where it came
/// from (clap would name the `--flag`), with the value and the reason.
fn flag_error(e: &clap::Error) -> String {
    use clap::error::ContextKind;
    let context = |kind| e.get(kind).map(|v| v.to_string());
    let (Some(arg), Some(value)) = (context(ContextKind::InvalidArg), context(ContextKind::InvalidValue)) else {
        return e.to_string();
    };
    let long = arg.split_whitespace().next().unwrap_or("").trim_start_matches("--");
    let reason = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "not a valid value".into());
    let command = <Flags as clap::CommandFactory>::command();
    let env = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|name| std::env::var(name).is_ok_and(|v| v == value));
    match env {
        Some(name) => format!("{name}={value:?} is not valid: {reason}; see herald --help for {name}"),
        None => format!("--{long} {value:?} is not valid: {reason}; see herald --help"),
    }
}

impl Config {
    /// Reads flags from `args` (the program name first), then the environment and the file.
    pub fn load_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Config, String> {
        let flags = match Flags::try_parse_from(args) {
            Ok(flags) => flags,
            Err(e)
                if !matches!(
                    e.kind(),
                    clap::error::ErrorKind::InvalidValue | clap::error::ErrorKind::ValueValidation
                ) =>
            {
                e.exit()
            }
            Err(e) => return Err(flag_error(&e)),
        };
        Config::from_flags(flags)
    }

    pub fn from_flags(mut flags: Flags) -> Result<Config, String> {
        let file = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("config file {}: {e}", path.display()))?;
                parse_file(&text).map_err(|e| format!("config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        // laravel-echo-server.json is the lowest layer: it fills what neither flags nor the TOML file give.
        if let Some(path) = flags.echo_server_config.clone() {
            let redis = file.redis.as_ref();
            let given = crate::echo_server_config::GivenElsewhere {
                host: file.host.is_some(),
                port: file.port.is_some(),
                redis_url: redis.is_some_and(|r| r.url.is_some()),
                redis_prefix: redis.is_some_and(|r| r.prefix.is_some()),
                tls: file.tls.is_some(),
                socketio_path: file.socketio_path.is_some(),
                apps: !file.apps.is_empty(),
            };
            flags.notes = crate::echo_server_config::fill(&mut flags, &path, given)?;
        }
        Config::build(flags, file)
    }

    /// A configuration from the text of a TOML file and no flags (the environment still applies): what the
    /// config fuzz target feeds.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let file = parse_file(text).map_err(|e| format!("config file: {e}"))?;
        let flags = Flags::try_parse_from(["herald"]).map_err(|e| e.to_string())?;
        Config::build(flags, file)
    }

    fn build(mut flags: Flags, file: FileConfig) -> Result<Config, String> {
        let config_path = flags.config.clone();
        let file_redis = file.redis.unwrap_or_default();
        let mut sources = std::mem::take(&mut flags.notes);
        let redis_url = match (
            flags.redis_url.filter(|u| !u.is_empty()),
            file_redis.url.filter(|u| !u.is_empty()),
        ) {
            (Some(url), _) => Some((url, "HERALD_REDIS_URL")),
            (None, Some(url)) => Some((url, "[redis] url")),
            // HERALD_REDIS_URL set but empty: embedded on purpose, even with Laravel's REDIS_HOST in the
            // environment (Laravel's default .env always has one).
            (None, None) if std::env::var_os("HERALD_REDIS_URL").is_some() => None,
            (None, None) => laravel_env::redis_url()?,
        };
        if let Some((url, from)) = &redis_url {
            herald_redis::check_url(url).map_err(|why| format!("{from}: {why}"))?;
            if !from.starts_with("HERALD") && !from.starts_with('[') {
                sources.push(format!("Redis from {from}"));
            }
        }
        let redis_url = redis_url.map(|(url, _)| url);
        let global_prefixes = match (flags.redis_prefix, file_redis.prefix) {
            (Some(p), _) => split_prefixes(&p),
            (None, Some(p)) => p.into_vec(),
            (None, None) => match laravel_env::redis_prefixes() {
                Some((prefixes, from)) => {
                    sources.push(format!("Laravel's Redis prefix {} from {from}", prefixes.join(" and ")));
                    prefixes
                }
                None => vec!["laravel_database_".into()],
            },
        };

        let redis_apps = flags.redis_apps.or(file_redis.apps).unwrap_or(false);
        if redis_apps && redis_url.is_none() {
            return Err("HERALD_REDIS_APPS ([redis] apps) keeps apps in Redis: set HERALD_REDIS_URL too".into());
        }
        let default_prefixes = global_prefixes.clone();
        let mut warnings = Vec::new();
        let mut apps = Vec::new();
        let mut app_tokens = Vec::new();
        for (i, app) in file.apps.into_iter().enumerate() {
            let (config, token) = file_app(app, &format!("apps[{i}]"), &global_prefixes)?;
            if let Some(token) = token {
                app_tokens.push((config.id.clone(), token));
            }
            apps.push(config);
        }

        let file_apps = apps.len();
        let given = |v: Option<String>| v.filter(|s| !s.is_empty());
        let mut from_laravel = Vec::new();
        let mut fallback = |flag: Option<String>, names: &[&'static str]| {
            given(flag).or_else(|| {
                laravel_env::first_set(names).map(|(value, name)| {
                    from_laravel.push(name);
                    value
                })
            })
        };
        let id = fallback(flags.app_id, &laravel_env::APP_ID);
        let key = fallback(flags.app_key, &laravel_env::APP_KEY);
        let secret = fallback(flags.app_secret, &laravel_env::APP_SECRET);
        if let (Some(id), Some(key), false) = (&id, &key, from_laravel.is_empty()) {
            sources.push(format!("app {id} (key {key}) from {}", from_laravel.join(", ")));
        }
        let mut dev_app = false;
        let mut env_app = false;
        match (id, key, secret) {
            (Some(id), Some(key), Some(secret)) => {
                apps.retain(|a| a.id != id);
                let mut config = AppConfig::new(id, key, secret);
                config.redis_prefixes = global_prefixes.clone();
                flags.default_app.apply(&mut config, &mut warnings)?;
                validate_app(&config, "HERALD_APP_ID/HERALD_APP_KEY/HERALD_APP_SECRET")?;
                apps.push(config);
                env_app = true;
            }
            (None, None, None) => {}
            _ => return Err("HERALD_APP_ID, HERALD_APP_KEY and HERALD_APP_SECRET must be set together".into()),
        }
        // With apps in Redis, no app in the file or the environment is fine: no development app then.
        if apps.is_empty() && !redis_apps {
            dev_app = true;
            let mut config = AppConfig::new("app-id", "app-key", "app-secret");
            config.redis_prefixes = global_prefixes;
            flags.default_app.apply(&mut config, &mut warnings)?;
            validate_app(&config, "the development app")?;
            apps.push(config);
        }
        if let Some(enabled) = flags.client_events {
            // The flag is for the app configured by flags or environment (or the development app); apps in
            // the file say it with their own `client_events` key.
            if let Some(app) = apps.last_mut().filter(|_| env_app || dev_app) {
                app.client_events = enabled;
            }
        }
        check_unique(&apps, redis_url.is_some())?;

        let mut settings = NodeSettings::default();
        let w = &mut warnings;
        let activity = renamed(
            flags.activity_timeout_secs,
            flags.activity_timeout_old,
            "HERALD_ACTIVITY_TIMEOUT",
            "HERALD_ACTIVITY_TIMEOUT_SECS",
            w,
        )
        .or(renamed(
            file.activity_timeout_secs,
            file.activity_timeout,
            "activity_timeout",
            "activity_timeout_secs",
            w,
        ));
        if let Some(s) = activity {
            positive(s, "activity_timeout_secs (HERALD_ACTIVITY_TIMEOUT_SECS)")?;
            settings.activity_timeout = Duration::from_secs(s);
        }
        let pong = renamed(
            flags.pong_timeout_secs,
            flags.pong_timeout_old,
            "HERALD_PONG_TIMEOUT",
            "HERALD_PONG_TIMEOUT_SECS",
            w,
        )
        .or(renamed(
            file.pong_timeout_secs,
            file.pong_timeout,
            "pong_timeout",
            "pong_timeout_secs",
            w,
        ));
        if let Some(s) = pong {
            positive(s, "pong_timeout_secs (HERALD_PONG_TIMEOUT_SECS)")?;
            settings.pong_timeout = Duration::from_secs(s);
        }
        let drain_secs = renamed(
            flags.drain_secs,
            flags.drain_seconds_old,
            "HERALD_DRAIN_SECONDS",
            "HERALD_DRAIN_SECS",
            w,
        )
        .or(renamed(
            file.drain_secs,
            file.drain_seconds,
            "drain_seconds",
            "drain_secs",
            w,
        ))
        .unwrap_or(10);
        if let Some(n) = flags.max_message_size.or(file.max_message_size) {
            positive(n as u64, "max_message_size (HERALD_MAX_MESSAGE_SIZE)")?;
            settings.max_message_size = n;
        }
        if let Some(n) = flags.max_outbound_queue.or(file.max_outbound_queue) {
            positive(n as u64, "max_outbound_queue (HERALD_MAX_OUTBOUND_QUEUE)")?;
            settings.outbound_queue = n;
        }
        let lease_ms = flags.lease_ms.or(file.lease_ms).unwrap_or(2000);
        if lease_ms < 300 {
            return Err(format!(
                "lease_ms (HERALD_LEASE_MS) is {lease_ms}; it must be at least 300"
            ));
        }
        let log_format = match flags.log_format.or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(format!(
                    "log_format (HERALD_LOG_FORMAT): {other:?} is neither \"text\" nor \"json\""
                ))
            }
        };
        let read = |path: Option<PathBuf>, key: &str| -> Result<Option<Vec<u8>>, String> {
            path.map(|p| std::fs::read(&p).map_err(|e| format!("{key} {}: {e}", p.display())))
                .transpose()
        };
        let redis_tls = herald_redis::RedisTls {
            ca: read(
                flags.redis_ca_file.or(file_redis.ca_file),
                "[redis] ca_file (HERALD_REDIS_CA_FILE)",
            )?,
            client_cert: read(
                flags.redis_client_cert_file.or(file_redis.client_cert_file),
                "[redis] client_cert_file (HERALD_REDIS_CLIENT_CERT_FILE)",
            )?,
            client_key: read(
                flags.redis_client_key_file.or(file_redis.client_key_file),
                "[redis] client_key_file (HERALD_REDIS_CLIENT_KEY_FILE)",
            )?,
            insecure: flags.redis_tls_insecure.or(file_redis.tls_insecure).unwrap_or(false),
        };
        if let Some(ca) = &redis_tls.ca {
            let parsed = rustls_pemfile::certs(&mut ca.as_slice()).collect::<Result<Vec<_>, _>>();
            if !parsed.is_ok_and(|certs| !certs.is_empty()) {
                return Err("[redis] ca_file (HERALD_REDIS_CA_FILE) holds no PEM certificate".into());
            }
        }
        if redis_tls.client_cert.is_some() != redis_tls.client_key.is_some() {
            return Err(
                "HERALD_REDIS_CLIENT_CERT_FILE and HERALD_REDIS_CLIENT_KEY_FILE go together: set both or neither"
                    .into(),
            );
        }
        if redis_tls.is_set()
            && !redis_url.as_deref().is_some_and(|u| {
                ["rediss://", "rediss+sentinel://", "rediss+cluster://"]
                    .iter()
                    .any(|s| u.starts_with(s))
            })
        {
            return Err(
                "Redis TLS settings (HERALD_REDIS_CA_FILE, HERALD_REDIS_CLIENT_CERT_FILE, HERALD_REDIS_TLS_INSECURE) need a rediss:// (or rediss+sentinel://, rediss+cluster://) HERALD_REDIS_URL, e.g. rediss://user:pass@redis.example:6380/0"
                    .into(),
            );
        }
        let file_tls = file.tls.unwrap_or_default();
        let tls = match (flags.tls_cert_file.or(file_tls.cert_file), flags.tls_key_file.or(file_tls.key_file)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(
                    "HERALD_TLS_CERT_FILE and HERALD_TLS_KEY_FILE ([tls] cert_file, key_file) go together: set both or neither"
                        .into(),
                )
            }
        };
        let host = match flags.host.or(file.host) {
            Some(host) => host,
            None => match laravel_env::host() {
                Some((host, from)) => {
                    sources.push(format!("host {host} from {from}"));
                    host
                }
                None => "0.0.0.0".into(),
            },
        };
        let port = match flags.port.or(file.port) {
            Some(port) => port,
            None => match laravel_env::port()? {
                Some((port, from)) => {
                    sources.push(format!("port {port} from {from}"));
                    port
                }
                None => 6001,
            },
        };
        let file_dashboard = file.dashboard.unwrap_or_default();
        let dashboard = DashboardConfig {
            path: match (flags.dashboard_path, file_dashboard.path) {
                (Some(path), _) => dashboard_path(path, "HERALD_DASHBOARD_PATH")?,
                (None, Some(path)) => dashboard_path(path, "[dashboard] path")?,
                (None, None) => "/herald/dashboard".into(),
            },
            token: match (flags.dashboard_token.filter(|t| !t.is_empty()), file_dashboard.token) {
                (Some(token), _) => Some(strong_token(token, "HERALD_DASHBOARD_TOKEN")?),
                (None, Some(token)) => Some(strong_token(token, "[dashboard] token")?),
                (None, None) => None,
            },
            app_tokens,
        };
        let secret_overlap_secs = flags.secret_overlap_secs.or(file.secret_overlap_secs).unwrap_or(300);
        if secret_overlap_secs > 7 * 24 * 3600 {
            return Err(format!(
                "secret_overlap_secs (HERALD_SECRET_OVERLAP_SECS) is {secret_overlap_secs}; it must be at most 604800 (a week)"
            ));
        }
        let admin_token = match (flags.admin_token.filter(|t| !t.is_empty()), file.admin_token) {
            (Some(token), _) => Some(strong_token(token, "HERALD_ADMIN_TOKEN")?),
            (None, Some(token)) => Some(strong_token(token, "admin_token")?),
            (None, None) => None,
        };
        if admin_token.is_some() && !redis_apps {
            return Err(
                "HERALD_ADMIN_TOKEN (admin_token) manages apps kept in Redis: set HERALD_REDIS_APPS=true too".into(),
            );
        }
        let socketio = socketio_config(
            flags.socketio_path.or(file.socketio_path),
            flags.socketio_app.or(file.socketio_app),
            &apps,
            redis_apps,
            &dashboard.path,
        )?
        .map(|mut socketio| {
            socketio.max_clients = flags
                .socketio_max_clients
                .or(file.socketio_max_clients)
                .unwrap_or(20_000);
            socketio
        });
        Ok(Config {
            socketio,
            admin_token,
            redis_apps,
            file_apps,
            default_prefixes,
            file: config_path,
            secret_overlap: Duration::from_secs(secret_overlap_secs),
            dashboard,
            host,
            port,
            sources,
            redis_url,
            apps,
            settings,
            log_format,
            lease: Duration::from_millis(lease_ms),
            metrics_port: flags.metrics_port.or(file.metrics_port),
            drain_window: Duration::from_secs(drain_secs),
            presence_grace: Duration::from_millis(flags.presence_grace_ms.or(file.presence_grace_ms).unwrap_or(5000)),
            dev_app,
            deprecations: warnings,
            redis_tls,
            tls,
            app_ca_file: flags.app_ca_file.or(file.app_ca_file),
            body_timeout: Duration::from_millis(
                flags.body_timeout_ms.or(file.body_timeout_ms).unwrap_or(10_000).max(1),
            ),
            isolation_timeout: Duration::from_millis(
                flags
                    .isolation_timeout_ms
                    .or(file.isolation_timeout_ms)
                    .unwrap_or(10_000),
            ),
        })
    }
}

/// The socket.io endpoint: on by default at `/socket.io` for the first app.
fn socketio_config(
    path: Option<String>,
    app: Option<String>,
    apps: &[AppConfig],
    redis_apps: bool,
    dashboard: &str,
) -> Result<Option<SocketIoConfig>, String> {
    let path = path.unwrap_or_else(|| "/socket.io".into());
    if path.is_empty() || path.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let path = path.trim_end_matches('/').to_owned();
    let reserved = ["/app", "/apps", "/herald", "/livez", "/readyz", "/metrics", dashboard];
    let path = own_path(
        path,
        &reserved,
        "HERALD_SOCKETIO_PATH (socketio_path) {path:?}",
        "/socket.io (or \"off\")",
    )?;
    let app_id = match app {
        Some(id) => {
            if !redis_apps && !apps.iter().any(|a| a.id == id) {
                return Err(format!(
                    "HERALD_SOCKETIO_APP (socketio_app) is {id:?}, which is not the id of a configured app"
                ));
            }
            id
        }
        None => match apps.first() {
            Some(app) => app.id.clone(),
            None => return Ok(None),
        },
    };
    Ok(Some(SocketIoConfig {
        path,
        app_id,
        max_clients: 20_000,
    }))
}

fn positive(n: u64, key: &str) -> Result<(), String> {
    if n == 0 {
        return Err(format!("{key} must be greater than 0"));
    }
    Ok(())
}

fn validate_app(app: &AppConfig, at: &str) -> Result<(), String> {
    for (name, value) in [("id", &app.id), ("key", &app.key), ("secret", &app.secret)] {
        if value.is_empty() {
            return Err(format!("{at}.{name} is empty"));
        }
    }
    if !app
        .id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "{at}.id {:?} may only hold letters, digits, '-', '_' and '.'",
            app.id
        ));
    }
    if app.key.contains(['/', '?', '#', ':']) {
        return Err(format!("{at}.key {:?} may not hold '/', '?', '#' or ':'", app.key));
    }
    for (name, url) in [("auth_url", &app.auth_url), ("user_auth_url", &app.user_auth_url)] {
        if let Some(url) = url {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.parse::<hyper::Uri>().is_err() {
                return Err(format!(
                    "{at}.{name} {url:?} must be an http:// or https:// URL, e.g. https://shop.example.com/broadcasting/auth"
                ));
            }
        }
    }
    if app.client_event_rate == 0 {
        return Err(format!("{at}.client_event_rate must be greater than 0"));
    }
    Ok(())
}

fn check_unique(apps: &[AppConfig], redis: bool) -> Result<(), String> {
    for (i, a) in apps.iter().enumerate() {
        for b in &apps[..i] {
            if a.id == b.id {
                return Err(format!("apps: the id {:?} is used twice", a.id));
            }
            if a.key == b.key {
                return Err(format!(
                    "apps: the key {:?} is used by apps {:?} and {:?}",
                    a.key, b.id, a.id
                ));
            }
            if redis {
                let overlap = a.redis_prefixes.iter().find_map(|p| {
                    b.redis_prefixes
                        .iter()
                        .find(|q| p.starts_with(q.as_str()) || q.starts_with(p.as_str()))
                        .map(|q| (p, q))
                });
                if let Some((p, q)) = overlap {
                    return Err(format!(
                        "apps: the redis_prefix {q:?} of app {:?} and {p:?} of app {:?} overlap (one starts with the other); on one Redis each app needs a prefix of its own (Laravel's REDIS_PREFIX), or one app's Laravel broadcasts would reach the other's clients; an app that does not use BROADCAST_DRIVER=redis takes redis_prefix = []",
                        b.id, a.id
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::parse_from(std::iter::once("herald").chain(args.iter().copied()))
    }

    #[test]
    fn old_names_of_timeouts_still_work_and_say_what_replaced_them() {
        let c = Config::from_flags(flags(&[
            "--activity-timeout",
            "7",
            "--drain-seconds",
            "3",
            "--pong-timeout",
            "4",
        ]))
        .unwrap();
        assert_eq!(c.settings.activity_timeout, Duration::from_secs(7));
        assert_eq!(c.settings.pong_timeout, Duration::from_secs(4));
        assert_eq!(c.drain_window, Duration::from_secs(3));
        assert!(c
            .deprecations
            .iter()
            .any(|w| w
                == "HERALD_ACTIVITY_TIMEOUT is deprecated; use HERALD_ACTIVITY_TIMEOUT_SECS (same value, same unit)"));
        assert!(c.deprecations.iter().any(|w| w.contains("use HERALD_DRAIN_SECS")));
        let new = Config::from_flags(flags(&["--activity-timeout-secs", "9", "--drain-secs", "2"])).unwrap();
        assert_eq!(new.settings.activity_timeout, Duration::from_secs(9));
        assert_eq!(new.drain_window, Duration::from_secs(2));
        assert!(new.deprecations.is_empty());
    }

    #[test]
    fn the_dashboard_is_off_without_a_token_and_refuses_short_tokens_and_taken_paths() {
        let off = Config::from_flags(flags(&[])).unwrap();
        assert!(!off.dashboard.enabled());
        assert_eq!(off.dashboard.path, "/herald/dashboard");
        let on = Config::from_flags(flags(&[
            "--dashboard-token",
            "0123456789abcdef",
            "--dashboard-path",
            "/debug/",
        ]))
        .unwrap();
        assert!(on.dashboard.enabled());
        assert_eq!(on.dashboard.path, "/debug");
        let short = Config::from_flags(flags(&["--dashboard-token", "short"])).unwrap_err();
        assert_eq!(
            short,
            "HERALD_DASHBOARD_TOKEN must be at least 16 characters long; generate one with: openssl rand -hex 24"
        );
        for taken in [
            "/apps",
            "/app/x",
            "/herald/auth",
            "/herald",
            "/",
            "relative",
            "/a;b",
            "/dash board",
        ] {
            let e = Config::from_flags(flags(&["--dashboard-path", taken])).unwrap_err();
            assert!(e.starts_with("HERALD_DASHBOARD_PATH"), "{taken}: {e}");
        }
    }

    #[test]
    fn file_values_take_environment_variables() {
        std::env::set_var("HERALD_TEST_EXPANDED_SECRET", "s3cr\"et ] = x");
        let file = parse_file(
            "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"${HERALD_TEST_EXPANDED_SECRET}\"\nallowed_origins = [\"$x ${ not a name\"]\n",
        )
        .unwrap();
        assert_eq!(
            file.apps[0].secret, "s3cr\"et ] = x",
            "a value cannot change the file's structure"
        );
        assert_eq!(file.apps[0].allowed_origins.as_ref().unwrap()[0], "$x ${ not a name");
        let missing = parse_file("[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"${HERALD_TEST_UNSET_1}\"\n");
        assert_eq!(
            missing.unwrap_err(),
            "apps[0].secret uses ${HERALD_TEST_UNSET_1}, but the environment variable HERALD_TEST_UNSET_1 is not set"
        );
    }

    #[test]
    fn defaults_run_at_once() {
        let c = Config::from_flags(flags(&[])).unwrap();
        assert_eq!(c.port, 6001);
        assert!(c.redis_url.is_none());
        assert!(c.dev_app);
        assert_eq!(c.apps[0].key, "app-key");
        assert_eq!(c.apps[0].redis_prefixes, vec!["laravel_database_"]);
    }

    #[test]
    fn prefix_lists_and_the_default_app() {
        let c = Config::from_flags(flags(&[
            "--redis-prefix",
            "laravel_database_,laravel-database-",
            "--app-id",
            "1",
            "--app-key",
            "k",
            "--app-secret",
            "s",
        ]))
        .unwrap();
        assert!(!c.dev_app);
        assert_eq!(c.apps[0].redis_prefixes, vec!["laravel_database_", "laravel-database-"]);
        let c = Config::from_flags(flags(&["--redis-prefix", ""])).unwrap();
        assert_eq!(c.apps[0].redis_prefixes, vec![""]);
    }

    #[test]
    fn errors_name_the_key() {
        let err = Config::from_flags(flags(&["--app-id", "1"])).unwrap_err();
        assert!(err.contains("HERALD_APP_KEY"), "{err}");
        let err = Config::from_flags(flags(&["--activity-timeout", "0"])).unwrap_err();
        assert!(err.contains("activity_timeout"), "{err}");
        let dir = std::env::temp_dir().join(format!("herald-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "port = 1\nbogus = 2\n").unwrap();
        let err = Config::from_flags(flags(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(err.contains("bogus"), "{err}");
        std::fs::write(
            &path,
            "[redis]\nurl = \"redis://x\"\n[[apps]]\nid = \"a\"\nkey = \"ka\"\nsecret = \"s\"\n[[apps]]\nid = \"b\"\nkey = \"kb\"\nsecret = \"s\"\n",
        )
        .unwrap();
        let err = Config::from_flags(flags(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(err.contains("redis_prefix"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
