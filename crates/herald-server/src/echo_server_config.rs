//! laravel-echo-server.json as a configuration source (`HERALD_ECHO_SERVER_CONFIG`), so a team moving off
//! laravel-echo-server points Herald at the file it already has. Each of its settings fills the Herald
//! setting that means the same, unless that setting is given (flags, environment and the TOML file win);
//! what Herald has no use for is said at start. The mapping is in docs/migrating-from-laravel-echo-server.md.

use crate::config::Flags;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct EchoServerFile {
    auth_host: Option<String>,
    auth_endpoint: Option<String>,
    clients: Vec<Client>,
    database: Option<String>,
    database_config: DatabaseConfig,
    host: Option<String>,
    port: Option<serde_json::Value>,
    protocol: Option<String>,
    ssl_cert_path: Option<String>,
    ssl_key_path: Option<String>,
    ssl_cert_chain_path: Option<String>,
    socketio: Option<serde_json::Value>,
    dev_mode: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Client {
    app_id: String,
    key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DatabaseConfig {
    redis: Option<RedisOptions>,
}

/// ioredis's connection options, as laravel-echo-server passes them on.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RedisOptions {
    host: Option<String>,
    port: Option<serde_json::Value>,
    username: Option<serde_json::Value>,
    password: Option<serde_json::Value>,
    db: Option<serde_json::Value>,
    key_prefix: Option<String>,
    tls: Option<serde_json::Value>,
    path: Option<String>,
}

/// What the TOML file (`HERALD_CONFIG`) gives already: the JSON file only fills what neither the flags, the
/// environment nor the TOML file set.
#[derive(Debug, Default, Clone, Copy)]
pub struct GivenElsewhere {
    pub host: bool,
    pub port: bool,
    pub redis_url: bool,
    pub redis_prefix: bool,
    pub tls: bool,
    pub socketio_path: bool,
    /// The TOML file describes apps: the JSON file's app (id, keys, auth URL) is left to it.
    pub apps: bool,
}

/// Reads `path` and fills the settings of `flags` it gives that nothing else sets; returns what it set and
/// what it left out, in words for the start-up log (never a value: keys and passwords are in the file).
pub fn fill(flags: &mut Flags, path: &Path, given: GivenElsewhere) -> Result<Vec<String>, String> {
    let at = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("HERALD_ECHO_SERVER_CONFIG {at}: {e}"))?;
    // serde's message may quote a value (a password typed as a number): say where, not what.
    let file: EchoServerFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "HERALD_ECHO_SERVER_CONFIG {at}: not laravel-echo-server's JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    let mut said = Vec::new();
    let mut left_out = Vec::new();
    // A setting given anywhere else, even empty (`HERALD_REDIS_URL=` is embedded on purpose), wins.
    let mut set = |what: &str, slot: &mut Option<String>, elsewhere: bool, value: Option<String>| {
        if let (None, false, Some(value)) = (slot.as_ref(), elsewhere, value.filter(|v| !v.is_empty())) {
            said.push(format!("{what} from {at}"));
            *slot = Some(value);
        }
    };
    set("host", &mut flags.host, given.host, file.host.clone());
    let mut port = flags.port.map(|p| p.to_string());
    set("port", &mut port, given.port, file.port.as_ref().map(number_or_text));
    flags.port = match port {
        Some(p) => Some(
            p.parse()
                .map_err(|_| format!("{at}: port {p:?} is not a port number"))?,
        ),
        None => None,
    };
    if given.apps {
        left_out.push(format!(
            "the app of {at} (clients, authHost) left out: the TOML file describes the apps; give that app auth_url and echo_client_keys there"
        ));
    } else {
        let auth_url = match (&file.auth_host, &file.auth_endpoint) {
            (None, None) => None,
            (host, endpoint) => Some(format!(
                "{}{}",
                host.as_deref().unwrap_or("http://localhost").trim_end_matches('/'),
                endpoint.as_deref().unwrap_or("/broadcasting/auth")
            )),
        };
        set(
            "auth URL (authHost + authEndpoint)",
            &mut flags.default_app.auth_url,
            false,
            auth_url,
        );
        if let Some(first) = file.clients.first() {
            set(
                "app id (clients[0].appId)",
                &mut flags.app_id,
                false,
                Some(first.app_id.clone()),
            );
            let id = flags.app_id.clone().unwrap_or_default();
            let keys: Vec<&str> = file
                .clients
                .iter()
                .filter(|c| c.app_id == id)
                .map(|c| c.key.as_str())
                .collect();
            set(
                "HTTP API client keys (clients[].key)",
                &mut flags.default_app.echo_client_keys,
                false,
                Some(keys.join(",")),
            );
            // laravel-echo-server had no Pusher key and secret. The app id is public and makes the key; the
            // secret must not be anything a client of the HTTP API holds, so one no one knows is drawn:
            // pusher-js clients get public channels, and the Pusher HTTP API stays closed until
            // HERALD_APP_SECRET is set (the same on every node).
            if flags.app_key.is_none() && flags.app_secret.is_none() {
                flags.app_key = Some(id);
                flags.app_secret = Some(random_secret());
                left_out.push(
                    "no Pusher secret: set HERALD_APP_KEY and HERALD_APP_SECRET (the same on every node) for pusher-js private channels and the Pusher HTTP API"
                        .to_owned(),
                );
            }
        }
    }
    match (file.database.as_deref().unwrap_or("redis"), &file.database_config.redis) {
        ("redis", Some(redis)) => {
            if redis.path.is_some() {
                left_out.push(format!(
                    "the Redis unix socket (path) of {at} left out: set HERALD_REDIS_URL"
                ));
            } else {
                set("Redis (databaseConfig.redis)", &mut flags.redis_url, given.redis_url, Some(redis_url(redis)));
            }
            if redis.tls.as_ref().is_some_and(|t| t.is_object()) {
                left_out.push(format!(
                    "the TLS options of databaseConfig.redis.tls in {at} left out: a private CA goes in HERALD_REDIS_CA_FILE"
                ));
            }
            set(
                "Laravel's Redis prefix (keyPrefix)",
                &mut flags.redis_prefix,
                given.redis_prefix,
                redis.key_prefix.clone(),
            );
        }
        ("redis", None) => {}
        (other, _) => left_out.push(format!(
            "database {other:?} in {at} left out: Herald keeps presence in Redis (HERALD_REDIS_URL) or, alone, in memory"
        )),
    }
    if file.protocol.as_deref() == Some("https") {
        let mut cert = flags.tls_cert_file.as_ref().map(|p| p.display().to_string());
        let mut key = flags.tls_key_file.as_ref().map(|p| p.display().to_string());
        set(
            "TLS certificate (sslCertPath)",
            &mut cert,
            given.tls,
            file.ssl_cert_path,
        );
        set("TLS key (sslKeyPath)", &mut key, given.tls, file.ssl_key_path);
        flags.tls_cert_file = cert.map(Into::into);
        flags.tls_key_file = key.map(Into::into);
        if file.ssl_cert_chain_path.is_some_and(|p| !p.is_empty()) {
            left_out.push(format!(
                "sslCertChainPath in {at} left out: put the chain after the certificate in one PEM file (HERALD_TLS_CERT_FILE)"
            ));
        }
    }
    let socketio_path = file
        .socketio
        .as_ref()
        .and_then(|s| s.get("path"))
        .and_then(|p| p.as_str())
        .map(str::to_owned);
    set(
        "socket.io path (socketio.path)",
        &mut flags.socketio_path,
        given.socketio_path,
        socketio_path,
    );
    if file.dev_mode == Some(true) {
        left_out.push(format!(
            "devMode in {at} left out: set RUST_LOG=debug for the same detail"
        ));
    }
    said.extend(left_out);
    Ok(said)
}

/// 32 random hex digits.
fn random_secret() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn number_or_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// ioredis's options as a Redis URL (`rediss://` when they ask for TLS).
fn redis_url(redis: &RedisOptions) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let scheme = if redis.tls.as_ref().is_some_and(|t| !t.is_null() && *t != false) {
        "rediss"
    } else {
        "redis"
    };
    let text = |v: &Option<serde_json::Value>| v.as_ref().map(number_or_text).unwrap_or_default();
    let credentials = match (&redis.username, &redis.password) {
        (None, None) => String::new(),
        (user, password) => format!(
            "{}:{}@",
            utf8_percent_encode(&text(user), NON_ALPHANUMERIC),
            utf8_percent_encode(&text(password), NON_ALPHANUMERIC)
        ),
    };
    let host = match redis.host.as_deref().unwrap_or("127.0.0.1") {
        v6 if v6.contains(':') && !v6.starts_with('[') => format!("[{v6}]"),
        host => host.to_owned(),
    };
    let port = redis.port.as_ref().map(number_or_text).unwrap_or_else(|| "6379".into());
    let db = redis.db.as_ref().map(number_or_text).unwrap_or_else(|| "0".into());
    format!("{scheme}://{credentials}{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// What `laravel-echo-server init` writes, with a password and a prefix.
    const FILE: &str = r#"{
        "authHost": "http://app.test",
        "authEndpoint": "/broadcasting/auth",
        "clients": [{"appId": "2d5b6e2ff1e4b7a0", "key": "8c3bdc8b1f5a2b7de1e4d0c9a7f6e5d4"}],
        "database": "redis",
        "databaseConfig": {"redis": {"host": "redis.internal", "port": "6380", "password": "p@ss", "keyPrefix": "shop_database_"},
                           "sqlite": {"databasePath": "/database/laravel-echo-server.sqlite"}},
        "devMode": true,
        "host": null,
        "port": "6001",
        "protocol": "http",
        "socketio": {},
        "sslCertPath": "",
        "sslKeyPath": "",
        "sslCertChainPath": "",
        "sslPassphrase": "",
        "subscribers": {"http": true, "redis": true},
        "apiOriginAllow": {"allowCors": false, "allowOrigin": "", "allowMethods": "", "allowHeaders": ""}
    }"#;

    fn flags() -> Flags {
        Flags::try_parse_from(["herald"]).unwrap()
    }

    #[test]
    fn maps_what_init_writes() {
        let dir = std::env::temp_dir().join(format!("herald-les-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("laravel-echo-server.json");
        std::fs::write(&path, FILE).unwrap();
        let mut f = flags();
        f.port = None;
        f.redis_url = None;
        f.redis_prefix = None;
        f.app_id = None;
        f.app_key = None;
        f.app_secret = None;
        f.default_app.auth_url = None;
        f.default_app.echo_client_keys = None;
        let said = fill(&mut f, &path, GivenElsewhere::default()).unwrap();
        assert_eq!(f.port, Some(6001));
        assert_eq!(
            f.default_app.auth_url.as_deref(),
            Some("http://app.test/broadcasting/auth")
        );
        assert_eq!(f.app_id.as_deref(), Some("2d5b6e2ff1e4b7a0"));
        assert_eq!(f.app_key.as_deref(), Some("2d5b6e2ff1e4b7a0"));
        let secret = f.app_secret.clone().unwrap();
        assert_eq!(secret.len(), 32);
        assert!(!FILE.contains(&secret), "the Pusher secret is nothing the file holds");
        assert!(
            !said.iter().any(|s| s.contains("8c3bdc8b") || s.contains("p@ss")),
            "no value is said: {said:?}"
        );
        assert_eq!(
            f.default_app.echo_client_keys.as_deref(),
            Some("8c3bdc8b1f5a2b7de1e4d0c9a7f6e5d4")
        );
        assert_eq!(f.redis_url.as_deref(), Some("redis://:p%40ss@redis.internal:6380/0"));
        assert_eq!(f.redis_prefix.as_deref(), Some("shop_database_"));
        assert!(said.iter().any(|s| s.starts_with("devMode")), "{said:?}");
        // what is set already wins: a flag, or the TOML file
        let mut f = flags();
        f.port = Some(7000);
        fill(&mut f, &path, GivenElsewhere::default()).unwrap();
        assert_eq!(f.port, Some(7000));
        let mut f = flags();
        f.port = None;
        f.redis_url = None;
        f.app_id = None;
        let toml = GivenElsewhere {
            port: true,
            redis_url: true,
            apps: true,
            ..GivenElsewhere::default()
        };
        fill(&mut f, &path, toml).unwrap();
        assert_eq!((f.port, f.redis_url, f.app_id), (None, None, None));
        // an empty value given on purpose (HERALD_REDIS_URL= : embedded) stays
        let mut f = flags();
        f.redis_url = Some(String::new());
        fill(&mut f, &path, GivenElsewhere::default()).unwrap();
        assert_eq!(f.redis_url.as_deref(), Some(""));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
