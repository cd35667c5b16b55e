//! The Pusher HTTP API: `POST /apps/{id}/events`, what Laravel's `pusher` and `reverb` broadcasters call.
//! Requests are signed (auth_key, auth_timestamp within 600 s, body_md5, auth_signature) and checked in
//! constant time; each event is encoded once per channel and published through the backbone.

use crate::routes::{Matched, Route};
use herald_core::{App, Node};
use herald_protocol::api_event::{
    check_channel_query, check_channels_query, parse_batch, ApiError, InfoAttributes, TriggerEvent,
};
use herald_protocol::frame::{self, Data};
use herald_protocol::{signature, SocketId};
use std::borrow::Cow;
use std::sync::Arc;

/// How far a request's `auth_timestamp` may be from the server clock, in seconds.
pub const TIMESTAMP_WINDOW_SECS: i64 = 600;

/// One decoded query parameter, borrowed from the request unless decoding changed it.
pub type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// A decoded query string (or form body), in order: `+` is a space here, as HTML forms and the Pusher
/// SDKs encode it. Parts that need no decoding (all a Pusher SDK sends) are borrowed, not decoded: on the
/// HTTP API's path a query is read on every request.
pub fn parse_query(query: &str) -> Vec<Pair<'_>> {
    fn decoded(part: &str) -> Cow<'_, str> {
        if !part.bytes().any(|b| b == b'%' || b == b'+') {
            return Cow::Borrowed(part);
        }
        let spaced = part.replace('+', " ");
        Cow::Owned(
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8_lossy()
                .into_owned(),
        )
    }
    // One look at the whole query decides whether any part needs decoding (none does from a Pusher SDK), and
    // the pairs are split on bytes: both separators are ASCII, so every piece is still valid UTF-8.
    let needs_decoding = memchr::memchr2(b'%', b'+', query.as_bytes()).is_some();
    // (sized for what a caller sends; a query of nothing but `&` reserves no more than this before the check)
    let mut pairs = Vec::with_capacity((memchr::memchr_iter(b'&', query.as_bytes()).count() + 1).min(16));
    let mut rest = query;
    while !rest.is_empty() {
        let (pair, next) = match memchr::memchr(b'&', rest.as_bytes()) {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, ""),
        };
        rest = next;
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match memchr::memchr(b'=', pair.as_bytes()) {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, ""),
        };
        pairs.push(match needs_decoding {
            true => (decoded(name), decoded(value)),
            false => (Cow::Borrowed(name), Cow::Borrowed(value)),
        });
    }
    pairs
}

/// The first value of the query parameter `name`.
pub fn param<'q>(query: &'q [Pair<'_>], name: &str) -> Option<&'q str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
}

/// Everything that can be checked before the body is read: the key is the app's, the timestamp is fresh, and
/// the signature, which covers the method, the path and the query (`body_md5` included), is the app secret's.
/// So an anonymous caller never gets a body read.
pub fn check_request(app: &App, method: &str, path: &str, query: &[Pair<'_>], now_secs: i64) -> Result<(), ApiError> {
    let get = |name: &str| param(query, name);
    let unauthorized = |m: &str| Err(ApiError::new(401, m));
    let Some(key) = get("auth_key") else {
        return unauthorized("Missing auth_key");
    };
    if key != app.config.key {
        return unauthorized("Unknown auth_key for this app");
    }
    let Some(ts) = get("auth_timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return unauthorized("Missing or invalid auth_timestamp");
    };
    if (now_secs - ts).abs() > TIMESTAMP_WINDOW_SECS {
        return unauthorized("auth_timestamp is more than 600 seconds from the server time; check the clock");
    }
    let Some(sig) = get("auth_signature") else {
        return unauthorized("Missing auth_signature");
    };
    let params = || query.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
    // The current secret first, kept hashed; then any retired one still in its overlap.
    let signed = app.api_key.verify_api(method, path, params(), sig)
        || app
            .config
            .retired_secrets_in_overlap()
            .any(|secret| signature::verify_api(secret, method, path, params(), sig));
    if !signed {
        return unauthorized("Invalid signature: check the app secret");
    }
    if !app.config.enabled {
        return Err(ApiError::new(403, "App disabled"));
    }
    Ok(())
}

/// The body is the one the signature's `body_md5` names.
pub fn check_body(query: &[Pair<'_>], body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    match param(query, "body_md5") {
        Some(md5) if signature::body_md5_is(body, md5) => Ok(()),
        _ => Err(ApiError::new(401, "body_md5 does not match the body")),
    }
}

/// Answers a signed HTTP API call to `route` (the route table matched the path).
pub async fn call(
    node: &Arc<Node>,
    app: &Arc<App>,
    method: &hyper::Method,
    matched: &Matched,
    query: &[Pair<'_>],
    body: &[u8],
) -> Result<String, ApiError> {
    let get = |name: &str| param(query, name);
    use hyper::Method;
    match (method, matched.route) {
        (&Method::POST, Route::ApiEvents) => trigger(node, app, body).await,
        (&Method::POST, Route::ApiBatchEvents) => batch(node, app, body).await,
        (&Method::GET, Route::ApiChannels) => channels(node, app, get("filter_by_prefix"), get("info")).await,
        (&Method::GET, Route::ApiChannel) => channel_state(node, app, matched.param("channel"), get("info")).await,
        (&Method::GET, Route::ApiChannelUsers) => users(node, app, matched.param("channel")).await,
        (&Method::POST, Route::ApiTerminate) => terminate(node, app, matched.param("user_id")).await,
        (method, route) => Err(ApiError::new(
            404,
            format!("No endpoint {method} for {} of app {}", route.label(), app.config.id),
        )),
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "HTTP API call could not be answered");
    ApiError::new(503, "Redis is unavailable; retry")
}

async fn publish(node: &Arc<Node>, app: &Arc<App>, event: &TriggerEvent) -> Result<(), ApiError> {
    let except = event.socket_id.as_deref().and_then(SocketId::parse);
    let data = Data::Raw(&event.data_json);
    publish_to(node, app, &event.name, &event.channels, data, except).await
}

/// Publishes one event (its data a string, as Pusher frames carry it) to each of `channels`, encoded once
/// per channel; 503 when the backbone cannot take it. Also laravel-echo-server's `POST /apps/{id}/events`.
pub async fn publish_to(
    node: &Arc<Node>,
    app: &Arc<App>,
    name: &str,
    channels: &[String],
    data: Data<'_>,
    except: Option<SocketId>,
) -> Result<(), ApiError> {
    for channel in channels {
        let frame = frame::encode(name, Some(channel), data, None);
        node.trigger(app, channel, frame, except.clone()).await.map_err(|e| {
            tracing::warn!(app = %app.config.id, channel, error = %e, "HTTP API event not published");
            ApiError::new(503, "Redis is unavailable; the event was not sent, retry")
        })?;
    }
    Ok(())
}

/// `POST /apps/{id}/events`: publishes the event to each channel; answers `{}` or the channel info asked for.
pub async fn trigger(node: &Arc<Node>, app: &Arc<App>, body: &[u8]) -> Result<String, ApiError> {
    let event = TriggerEvent::parse(body, app.config.max_event_data_size)?;
    publish(node, app, &event).await?;
    let info = InfoAttributes::parse(event.info.as_deref());
    if !info.any() {
        return Ok("{}".into());
    }
    let mut channels = serde_json::Map::new();
    for channel in &event.channels {
        channels.insert(channel.clone(), attributes(node, app, channel, info).await?.into());
    }
    Ok(serde_json::json!({ "channels": channels }).to_string())
}

/// `POST /apps/{id}/batch_events`: up to 10 events, each on one channel, all checked before any is sent.
async fn batch(node: &Arc<Node>, app: &Arc<App>, body: &[u8]) -> Result<String, ApiError> {
    let events = parse_batch(body, app.config.max_event_data_size)?;
    for event in &events {
        publish(node, app, event).await?;
    }
    if !events.iter().any(|e| InfoAttributes::parse(e.info.as_deref()).any()) {
        return Ok("{}".into());
    }
    let mut out = Vec::with_capacity(events.len());
    for event in &events {
        let info = InfoAttributes::parse(event.info.as_deref());
        out.push(serde_json::Value::Object(
            attributes(node, app, &event.channels[0], info).await?,
        ));
    }
    Ok(serde_json::json!({ "batch": out }).to_string())
}

/// The attributes `info` asks for, for the whole cluster.
async fn attributes(
    node: &Arc<Node>,
    app: &Arc<App>,
    channel: &str,
    info: InfoAttributes,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let mut attrs = serde_json::Map::new();
    if info.user_count && channel.starts_with("presence-") {
        let members = node.members(app, channel).await.map_err(unavailable)?;
        attrs.insert("user_count".into(), members.len().into());
    }
    if info.subscription_count {
        let n = node.subscription_count(app, channel).await.map_err(unavailable)?;
        attrs.insert("subscription_count".into(), n.into());
    }
    Ok(attrs)
}

/// `GET /apps/{id}/channels`: the occupied channels, optionally filtered by prefix.
async fn channels(
    node: &Arc<Node>,
    app: &Arc<App>,
    prefix: Option<&str>,
    info: Option<&str>,
) -> Result<String, ApiError> {
    let info = InfoAttributes::parse(info);
    check_channels_query(prefix, info)?;
    let mut listed = node.channels(app).await.map_err(unavailable)?;
    listed.retain(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)));
    let mut out = serde_json::Map::new();
    for (name, _) in listed {
        let attrs = attributes(
            node,
            app,
            &name,
            InfoAttributes {
                user_count: info.user_count,
                subscription_count: false,
            },
        )
        .await?;
        out.insert(name, attrs.into());
    }
    Ok(serde_json::json!({ "channels": out }).to_string())
}

/// `GET /apps/{id}/channels/{name}`: whether it is occupied, and the counts asked for.
async fn channel_state(
    node: &Arc<Node>,
    app: &Arc<App>,
    channel: &str,
    info: Option<&str>,
) -> Result<String, ApiError> {
    let info = InfoAttributes::parse(info);
    check_channel_query(channel, info)?;
    let subscriptions = node.subscription_count(app, channel).await.map_err(unavailable)?;
    let mut out = attributes(
        node,
        app,
        channel,
        InfoAttributes {
            user_count: info.user_count,
            subscription_count: false,
        },
    )
    .await?;
    out.insert("occupied".into(), (subscriptions > 0).into());
    if info.subscription_count {
        out.insert("subscription_count".into(), subscriptions.into());
    }
    Ok(serde_json::Value::Object(out).to_string())
}

/// `GET /apps/{id}/channels/{name}/users`: the members of a presence channel.
async fn users(node: &Arc<Node>, app: &Arc<App>, channel: &str) -> Result<String, ApiError> {
    if !channel.starts_with("presence-") {
        return Err(ApiError::new(400, "Users can only be listed for presence channels"));
    }
    check_channel_query(channel, InfoAttributes::default())?;
    let members = node.members(app, channel).await.map_err(unavailable)?;
    let users: Vec<_> = members.iter().map(|m| serde_json::json!({ "id": m.user_id })).collect();
    Ok(serde_json::json!({ "users": users }).to_string())
}

/// `POST /apps/{id}/users/{user_id}/terminate_connections`: closes the user's signed-in connections on
/// every node.
async fn terminate(node: &Arc<Node>, app: &Arc<App>, user_id: &str) -> Result<String, ApiError> {
    if user_id.is_empty() || user_id.chars().count() > herald_protocol::presence_data::MAX_USER_ID_LEN {
        return Err(ApiError::new(400, "Invalid user id"));
    }
    node.terminate_user(app, user_id).await.map_err(unavailable)?;
    tracing::info!(app = %app.config.id, user_id, "terminated the user's connections");
    Ok("{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::AppConfig;

    /// A whole request, checked as the server checks it: signature first, then the body.
    fn authenticate(
        app: &App,
        method: &str,
        path: &str,
        query: &[Pair<'_>],
        body: &[u8],
        now_secs: i64,
    ) -> Result<(), ApiError> {
        check_request(app, method, path, query, now_secs)?;
        check_body(query, body)
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("a=1&b=x%20y&c=%2Fp&d=+&e");
        assert_eq!(q[1].1, "x y");
        assert_eq!(q[2].1, "/p");
        assert_eq!(q[3].1, " ");
        assert_eq!(q[4], ("e".into(), "".into()));
        assert_eq!(parse_query("a=%")[0].1, "%");
        assert_eq!(parse_query("&a=1&&b=%E2%82%AC+x&"), parse_query("a=1&b=€ x"));
        assert_eq!(parse_query("k%3D=v=w")[0], ("k=".into(), "v=w".into()));
        assert_eq!(parse_query("bad=%FF")[0].1, "\u{FFFD}");
        for query in ["a=1&b=x%20y&c=%2Fp&d=+&e", "&&x==%41+%zz&%C3%A9=%e2%82", "a+b=c%2Bd"] {
            let reference: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let ours: Vec<(String, String)> = parse_query(query)
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(ours, reference, "{query}");
        }
    }

    #[test]
    fn signed_requests_pass_and_others_fail() {
        let registry = herald_core::AppRegistry::new(vec![AppConfig::new(
            "3",
            "278d425bdf160c739803",
            "7ad3773142a6692b25b8",
        )]);
        let app = registry.by_id("3").unwrap();
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let query = parse_query(
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
        );
        assert!(authenticate(app, "POST", "/apps/3/events", &query, body, 1353088179).is_ok());
        let late = authenticate(app, "POST", "/apps/3/events", &query, body, 1353088179 + 601).unwrap_err();
        assert_eq!(late.status, 401);
        let tampered = authenticate(app, "POST", "/apps/3/events", &query, b"{}", 1353088179).unwrap_err();
        assert_eq!(tampered.status, 401);
        let other_path = authenticate(app, "POST", "/apps/4/events", &query, body, 1353088179).unwrap_err();
        assert_eq!(other_path.status, 401);
    }
}
