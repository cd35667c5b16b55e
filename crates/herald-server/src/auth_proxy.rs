//! Auth for apps on `BROADCAST_DRIVER=redis`. Under that driver Laravel's `/broadcasting/auth` says yes
//! (`true`, or `{"channel_data": {...}}`) without a signature, which pusher-js cannot use. Echo's
//! `authEndpoint` points here instead: Herald passes the browser's request (cookies, `Authorization`, CSRF,
//! `X-Socket-ID`) to the app's own endpoint and, when the app says yes, answers with a body signed with the
//! app secret. It signs exactly the `socket_id` and `channel_name` the app was shown, and only when the
//! app granted them.

use bytes::Bytes;
use herald_core::App;
use herald_protocol::channel::{validate_name, ChannelKind};
use herald_protocol::{encryption, signature, socket_id};
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::client::legacy::Client;
use std::sync::Arc;

/// The HTTP client that reaches the apps' auth endpoints and webhooks (built in `tls.rs`).
pub type AppClient =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

/// Which of Herald's auth endpoints was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/broadcasting/auth`: a channel subscription.
    Channel,
    /// `/broadcasting/user-auth`: `pusher:signin`.
    User,
}

/// An answer: status, JSON body.
pub type Answer = (StatusCode, String);

fn fail(status: StatusCode, message: &str) -> Answer {
    (status, serde_json::json!({ "error": message }).to_string())
}

/// What the browser asked for, read the way Laravel reads it. Anything Laravel could read differently
/// (a repeated field, a key PHP would turn into `channel_name`) is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthRequest {
    pub socket_id: String,
    pub channel_name: Option<String>,
}

/// PHP turns `.`, ` ` and `[` in form keys into `_`: `channel.name` also sets `channel_name`.
fn php_key(key: &str) -> String {
    key.chars()
        .map(|c| if matches!(c, '.' | ' ' | '[') { '_' } else { c })
        .collect()
}

pub fn parse_request(content_type: &str, body: &[u8]) -> Result<AuthRequest, String> {
    let content_type = content_type.to_ascii_lowercase();
    let (mut socket_id, mut channel_name) = (None, None);
    if content_type.starts_with("application/json") {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Json {
            socket_id: String,
            channel_name: Option<String>,
        }
        let json: Json = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        socket_id = Some(json.socket_id);
        channel_name = json.channel_name;
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
        for (key, value) in crate::api::parse_query(text) {
            let slot = match php_key(&key).as_str() {
                k if k.starts_with("socket_id") => &mut socket_id,
                k if k.starts_with("channel_name") => &mut channel_name,
                _ => continue,
            };
            if key != "socket_id" && key != "channel_name" {
                return Err(format!("ambiguous field {key:?}"));
            }
            if slot.replace(value.into_owned()).is_some() {
                return Err(format!("repeated field {key:?}"));
            }
        }
    } else {
        return Err("send application/x-www-form-urlencoded or application/json".into());
    }
    let socket_id = socket_id.ok_or("no socket_id")?;
    if !socket_id::is_valid(&socket_id) {
        return Err(format!("invalid socket_id {socket_id:?}"));
    }
    Ok(AuthRequest {
        socket_id,
        channel_name,
    })
}

/// The CORS headers for `origin`, when the app allows it.
/// CORS for the auth endpoints: only for the app's configured `allowed_origins`. With none configured there is
/// no cross-origin access at all (a page on the same origin needs none), so no other site can have a browser
/// send its cookies here and read the answer.
pub fn cors(app: &App, origin: Option<&str>, headers: &mut HeaderMap) {
    if app.config.allowed_origins.is_empty() {
        return;
    }
    if let Some(origin) = origin.filter(|o| app.config.origin_allowed(Some(o))) {
        if let Ok(value) = HeaderValue::from_str(origin) {
            headers.insert("access-control-allow-origin", value);
            headers.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
            headers.insert("vary", HeaderValue::from_static("Origin"));
        }
    }
}

/// Whether a browser request from `origin` may use the auth endpoints: one of the app's `allowed_origins`, or,
/// when it lists none, only the page's own origin: the browser says so (`Sec-Fetch-Site: same-origin`, which no
/// page can forge), or `Origin`'s host is the request's `Host` (or `X-Forwarded-Host` behind a proxy). A request
/// without `Origin` is not from a cross-site page.
fn origin_permitted(config: &herald_core::AppConfig, origin: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(origin) = origin else { return true };
    if !config.allowed_origins.is_empty() {
        return config.origin_allowed(Some(origin));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site") == Some("same-origin") {
        return true;
    }
    let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    [header("x-forwarded-host"), header("host")]
        .into_iter()
        .flatten()
        .any(|host| host.eq_ignore_ascii_case(authority))
}

/// Handles one call: asks the app, signs what it granted.
/// At most one "refused without credentials" hint a second.
static REFUSALS_LOGGED: crate::log_every::LogEvery = crate::log_every::LogEvery::new();

pub async fn authorize(client: &AppClient, app: &Arc<App>, kind: Kind, incoming: &HeaderMap, body: Bytes) -> Answer {
    let config = &app.config;
    let url = match kind {
        Kind::Channel => config.auth_url.as_deref(),
        Kind::User => config.user_auth_url.as_deref(),
    };
    let Some(url) = url else {
        let message = match kind {
            Kind::Channel => "This app has no auth URL configured for Herald's auth endpoint: set auth_url (HERALD_AUTH_URL) to Laravel's /broadcasting/auth",
            Kind::User => "This app has no user auth URL configured for Herald's user-auth endpoint: set user_auth_url (HERALD_USER_AUTH_URL) to Laravel's /broadcasting/user-auth",
        };
        return fail(StatusCode::NOT_FOUND, message);
    };
    let origin = incoming.get("origin").and_then(|v| v.to_str().ok());
    if !origin_permitted(config, origin, incoming) {
        tracing::info!(
            app = %config.id,
            origin,
            "auth request from another site refused; list the site in allowed_origins (HERALD_ALLOWED_ORIGINS) if it is yours"
        );
        return fail(StatusCode::FORBIDDEN, "Origin not allowed");
    }
    let content_type = incoming.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let request = match parse_request(content_type, &body) {
        Ok(r) => r,
        Err(e) => return fail(StatusCode::BAD_REQUEST, &e),
    };
    let channel = match (kind, &request.channel_name) {
        (Kind::User, _) => None,
        (Kind::Channel, Some(channel)) => match validate_name(channel) {
            Ok(k) if k.requires_auth() => Some((channel.as_str(), k)),
            Ok(_) => return fail(StatusCode::BAD_REQUEST, "Only private and presence channels need auth"),
            Err(e) => return fail(StatusCode::BAD_REQUEST, &e.to_string()),
        },
        (Kind::Channel, None) => return fail(StatusCode::BAD_REQUEST, "no channel_name"),
    };

    let granted = match ask_app(client, app, url, incoming, content_type, body).await {
        Ok(granted) => granted,
        Err(answer) => return answer,
    };
    match kind {
        Kind::Channel => {
            let (channel, channel_kind) = channel.expect("checked above");
            sign_channel(app, &request.socket_id, channel, channel_kind, granted)
        }
        Kind::User => sign_user(app, &request.socket_id, granted),
    }
}

/// Passes a request to the app's auth endpoint `url` with the client's `incoming` headers (only the app's
/// `auth_headers`), and reads its yes: the JSON it answered with a 2xx status. Anything else is the answer
/// for the client (the app's 4xx status passed on; 502 or 504 when the app is unreachable, slow or odd).
pub async fn ask_app(
    client: &AppClient,
    app: &App,
    url: &str,
    incoming: &HeaderMap,
    content_type: &str,
    body: Bytes,
) -> Result<serde_json::Value, Answer> {
    let config = &app.config;
    let mut forward = Request::post(url);
    for name in &config.auth_headers {
        for value in incoming.get_all(name.as_str()) {
            forward = forward.header(name.as_str(), value);
        }
    }
    let forward = match forward.header("content-type", content_type).body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => return Err(fail(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
    };
    // One deadline for the whole answer, body included: an app that sends its headers and stalls holds
    // nobody's subscription for longer.
    let exchange = async {
        let response = client.request(forward).await.map_err(|e| {
            let error = crate::tls::cause(&e);
            tracing::warn!(app = %config.id, url, error, "the app's auth endpoint is unreachable");
            fail(StatusCode::BAD_GATEWAY, "The app's auth endpoint is unreachable")
        })?;
        let status = response.status();
        let limited = http_body_util::Limited::new(response.into_body(), 64 * 1024);
        match http_body_util::BodyExt::collect(limited).await {
            Ok(b) => Ok((status, b.to_bytes())),
            Err(_) => Err(fail(
                StatusCode::BAD_GATEWAY,
                "The app's auth answer is too large or cut short",
            )),
        }
    };
    let (status, answer) = match tokio::time::timeout(config.auth_timeout, exchange).await {
        Ok(result) => result?,
        Err(_) => {
            tracing::warn!(app = %config.id, url, "the app's auth endpoint timed out");
            return Err(fail(StatusCode::GATEWAY_TIMEOUT, "The app's auth endpoint timed out"));
        }
    };
    if !status.is_success() {
        let credentials = ["cookie", "authorization"].iter().any(|h| incoming.contains_key(*h));
        if matches!(status.as_u16(), 401 | 403 | 419) && !credentials && REFUSALS_LOGGED.allow() {
            tracing::warn!(
                app = %config.id,
                url,
                status = status.as_u16(),
                "the app refused an auth request that carried no Cookie and no Authorization header: a browser on another origin sends its session cookie only with credentials on (Echo: auth: {{ withCredentials: true }} or a custom channelAuthorization) and the site in allowed_origins; see docs/laravel.md, cross-origin auth"
            );
        }
        let status = if status.is_client_error() {
            status
        } else {
            StatusCode::BAD_GATEWAY
        };
        return Err(fail(status, "The app refused"));
    }
    serde_json::from_slice(&answer).map_err(|_| fail(StatusCode::BAD_GATEWAY, "The app's auth answer is not JSON"))
}

/// The `channel_data` of the app's yes, as text: Laravel's RedisBroadcaster gives an object, the pusher
/// driver a JSON string.
pub fn channel_data(granted: &serde_json::Value) -> Option<String> {
    match granted.get("channel_data") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(v @ serde_json::Value::Object(_)) => Some(v.to_string()),
        _ => None,
    }
}

fn sign_channel(app: &App, socket_id: &str, channel: &str, kind: ChannelKind, granted: serde_json::Value) -> Answer {
    let config = &app.config;
    if granted.get("auth").is_some() {
        // The app signs itself (it also has a pusher-driver connection): pass its answer on.
        return (StatusCode::OK, granted.to_string());
    }
    // Only an explicit yes grants: Laravel's RedisBroadcaster answers `true` (private) or channel_data.
    let yes = granted == serde_json::Value::Bool(true) || granted.get("channel_data").is_some();
    if !yes {
        return fail(StatusCode::FORBIDDEN, "The app did not grant this channel");
    }
    let mut out = serde_json::Map::new();
    if kind == ChannelKind::Presence {
        let Some(channel_data) = channel_data(&granted) else {
            return fail(
                StatusCode::BAD_GATEWAY,
                "The app granted a presence channel without channel_data",
            );
        };
        let auth = signature::sign_channel(&config.key, &config.secret, socket_id, channel, Some(&channel_data));
        out.insert("auth".into(), auth.into());
        out.insert("channel_data".into(), channel_data.into());
    } else {
        out.insert(
            "auth".into(),
            signature::sign_channel(&config.key, &config.secret, socket_id, channel, None).into(),
        );
        if kind == ChannelKind::PrivateEncrypted {
            let Some(master) = &config.encryption_master_key else {
                return fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Encrypted channels need the app's encryption_master_key",
                );
            };
            out.insert(
                "shared_secret".into(),
                encryption::shared_secret(channel, master).into(),
            );
        }
    }
    (StatusCode::OK, serde_json::Value::Object(out).to_string())
}

fn sign_user(app: &App, socket_id: &str, granted: serde_json::Value) -> Answer {
    if granted.get("auth").is_some() {
        return (StatusCode::OK, granted.to_string());
    }
    let serde_json::Value::Object(mut user) = granted else {
        return fail(StatusCode::FORBIDDEN, "The app refused");
    };
    // pusher-js wants `id` as a non-empty string; Laravel passes numeric ids through as numbers.
    match user.get("id") {
        Some(serde_json::Value::Number(n)) => {
            let id = n.to_string();
            user.insert("id".into(), id.into());
        }
        Some(serde_json::Value::String(s)) if !s.is_empty() => {}
        _ => return fail(StatusCode::BAD_GATEWAY, "The app's user has no id"),
    }
    let user_data = serde_json::Value::Object(user).to_string();
    let auth = signature::sign_user(&app.config.key, &app.config.secret, socket_id, &user_data);
    (
        StatusCode::OK,
        serde_json::json!({ "auth": auth, "user_data": user_data }).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = "application/x-www-form-urlencoded; charset=UTF-8";

    #[tokio::test]
    async fn an_app_that_stalls_after_its_headers_is_given_up_on_in_time() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/broadcasting/auth", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            // Headers announce a body that never comes.
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\ntr")
                .await;
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        });
        let mut config = herald_core::AppConfig::new("a", "key", "secret");
        config.auth_timeout = std::time::Duration::from_millis(300);
        let app = App::new(config);
        let client = crate::tls::app_client(None).unwrap();
        let started = std::time::Instant::now();
        let headers = HeaderMap::new();
        let asked = ask_app(
            &client,
            &app,
            &url,
            &headers,
            FORM,
            Bytes::from_static(b"channel_name=private-a"),
        );
        let (status, _) = tokio::time::timeout(std::time::Duration::from_secs(5), asked)
            .await
            .expect("the deadline covers the body")
            .unwrap_err();
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn reads_what_echo_sends() {
        let r = parse_request(FORM, b"socket_id=1.2&channel_name=private-orders.1").unwrap();
        assert_eq!(
            r,
            AuthRequest {
                socket_id: "1.2".into(),
                channel_name: Some("private-orders.1".into())
            }
        );
        let r = parse_request(
            "application/json",
            br#"{"socket_id":"1.2","channel_name":"presence-a"}"#,
        )
        .unwrap();
        assert_eq!(r.channel_name.as_deref(), Some("presence-a"));
        let r = parse_request(FORM, b"socket_id=1.2").unwrap();
        assert_eq!(r.channel_name, None);
    }

    #[test]
    fn refuses_what_laravel_could_read_differently() {
        for body in [
            "socket_id=1.2&channel_name=private-a&channel_name=private-b",
            "socket_id=1.2&channel_name=private-a&channel.name=private-b",
            "socket_id=1.2&channel_name=private-a&channel_name[]=private-b",
            "socket_id=1.2&channel%5Fname=private-a&channel name=private-b",
            "socket_id=1.2&socket_id=3.4&channel_name=private-a",
            "socket_id=x&channel_name=private-a",
        ] {
            assert!(parse_request(FORM, body.as_bytes()).is_err(), "{body}");
        }
        assert!(parse_request("application/json", br#"{"socket_id":"1.2","channel_name":"a","x":1}"#).is_err());
        assert!(parse_request("text/plain", b"socket_id=1.2").is_err());
    }

    #[test]
    fn signs_only_what_was_granted() {
        let mut config = herald_core::AppConfig::new("a", "key", "secret");
        config.encryption_master_key = Some([7; 32]);
        let app = App::new(config);
        let (status, body) = sign_channel(&app, "1.2", "private-a", ChannelKind::Private, serde_json::json!(true));
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(signature::verify_channel(
            "key",
            "secret",
            "1.2",
            "private-a",
            None,
            v["auth"].as_str().unwrap()
        ));
        for no in [
            serde_json::json!(false),
            serde_json::json!({}),
            serde_json::json!({"error": "x"}),
            serde_json::json!(null),
        ] {
            let (status, _) = sign_channel(&app, "1.2", "private-a", ChannelKind::Private, no);
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
        let granted = serde_json::json!({"channel_data": {"user_id": 42, "user_info": {"name": "Ada"}}});
        let (_, body) = sign_channel(&app, "1.2", "presence-a", ChannelKind::Presence, granted);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let data = v["channel_data"].as_str().unwrap();
        assert!(signature::verify_channel(
            "key",
            "secret",
            "1.2",
            "presence-a",
            Some(data),
            v["auth"].as_str().unwrap()
        ));
        let (_, body) = sign_channel(
            &app,
            "1.2",
            "private-encrypted-a",
            ChannelKind::PrivateEncrypted,
            serde_json::json!(true),
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["shared_secret"],
            encryption::shared_secret("private-encrypted-a", &[7; 32])
        );
        let (_, body) = sign_user(&app, "1.2", serde_json::json!({"id": 5, "name": "Ada"}));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let user_data = v["user_data"].as_str().unwrap();
        assert!(user_data.contains("\"id\":\"5\""));
        assert!(signature::verify_user(
            "key",
            "secret",
            "1.2",
            user_data,
            v["auth"].as_str().unwrap()
        ));
    }
}
