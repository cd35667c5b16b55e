//! laravel-echo-server's HTTP API, for the apps and scripts that call it: `GET /apps/{id}/status`,
//! `/channels`, `/channels/{name}`, `/channels/{name}/users`, and `POST /apps/{id}/events`. Its paths are the
//! Pusher HTTP API's; a request is laravel-echo-server's when it carries a client key (`?auth_key=` or
//! `Authorization: Bearer`) and no Pusher signature. The key must be one of the app's `echo_client_keys`
//! (compared in constant time); answers have laravel-echo-server's shapes, with the cluster's counts.

use crate::routes::{Matched, Route};
use herald_core::{App, Node};
use herald_protocol::api_event::ApiError;
use herald_protocol::channel::validate_name;
use herald_protocol::SocketId;
use hyper::{HeaderMap, Method};
use std::sync::Arc;

/// True for a request meant for laravel-echo-server's API rather than Pusher's.
pub fn addressed(query: &[crate::api::Pair<'_>], headers: &HeaderMap) -> bool {
    let signed = crate::api::param(query, "auth_signature").is_some();
    !signed && client_key(query, headers).is_some()
}

fn client_key<'a>(query: &'a [crate::api::Pair<'_>], headers: &'a HeaderMap) -> Option<&'a str> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| crate::api::param(query, "auth_key"))
}

/// The key is one of the app's laravel-echo-server client keys (403 otherwise, as laravel-echo-server answered).
pub fn check(app: &App, query: &[crate::api::Pair<'_>], headers: &HeaderMap) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;
    let given = client_key(query, headers).unwrap_or("");
    let known = app
        .config
        .echo_client_keys
        .iter()
        .fold(subtle::Choice::from(0), |found, key| {
            found | key.as_bytes().ct_eq(given.as_bytes())
        });
    if !bool::from(known) {
        if app.config.echo_client_keys.is_empty() {
            tracing::info!(app = %app.config.id, "a laravel-echo-server API call was refused: this app has no echo_client_keys (HERALD_ECHO_CLIENT_KEYS)");
        }
        return Err(ApiError::new(403, "Unauthorized"));
    }
    if !app.config.enabled {
        return Err(ApiError::new(403, "App disabled"));
    }
    Ok(())
}

/// Answers an authorised call.
pub async fn call(
    node: &Arc<Node>,
    app: &Arc<App>,
    method: &Method,
    matched: &Matched,
    query: &[crate::api::Pair<'_>],
    body: &[u8],
) -> Result<String, ApiError> {
    match (method, matched.route) {
        (&Method::GET, Route::ApiStatus) => status(node, app).await,
        (&Method::GET, Route::ApiChannels) => channels(node, app, crate::api::param(query, "filter_by_prefix")).await,
        (&Method::GET, Route::ApiChannel) => channel(node, app, matched.param("channel")).await,
        (&Method::GET, Route::ApiChannelUsers) => users(node, app, matched.param("channel")).await,
        (&Method::POST, Route::ApiEvents) => events(node, app, body).await,
        (method, route) => Err(ApiError::new(
            404,
            format!("laravel-echo-server's API has no {method} for {}", route.label()),
        )),
    }
}

/// A channel of the app's own: a valid name, and not one of the cluster's (`#server-to-user-…`), which
/// laravel-echo-server never had.
fn app_channel(channel: &str) -> Result<(), ApiError> {
    validate_name(channel).map_err(|e| ApiError::new(400, e.to_string()))?;
    if herald_protocol::channel::is_internal(channel) {
        return Err(ApiError::new(400, format!("{channel:?} is not a channel of the app")));
    }
    Ok(())
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "laravel-echo-server API call could not be answered");
    ApiError::new(503, "Redis is unavailable; retry")
}

/// `{subscription_count, uptime, memory_usage}`: the app's connections across the cluster, this process's
/// uptime in seconds and resident memory.
async fn status(node: &Arc<Node>, app: &Arc<App>) -> Result<String, ApiError> {
    let connections = node.connection_count(app).await.map_err(unavailable)?;
    let uptime = started().elapsed().as_secs_f64();
    let rss = resident_bytes();
    Ok(serde_json::json!({
        "subscription_count": connections,
        "uptime": uptime,
        "memory_usage": { "rss": rss },
    })
    .to_string())
}

fn started() -> std::time::Instant {
    static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(std::time::Instant::now)
}

/// Starts the uptime clock (called at start-up).
pub fn start_clock() {
    started();
}

fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * 4096
}

/// `{channels: {name: {subscription_count, occupied: true}}}`.
async fn channels(node: &Arc<Node>, app: &Arc<App>, prefix: Option<&str>) -> Result<String, ApiError> {
    let mut listed = node.channels(app).await.map_err(unavailable)?;
    listed.retain(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)));
    let mut out = serde_json::Map::new();
    for (name, count) in listed {
        out.insert(
            name,
            serde_json::json!({ "subscription_count": count, "occupied": true }),
        );
    }
    Ok(serde_json::json!({ "channels": out }).to_string())
}

/// `{subscription_count, occupied}`, and `user_count` on presence channels.
async fn channel(node: &Arc<Node>, app: &Arc<App>, channel: &str) -> Result<String, ApiError> {
    app_channel(channel)?;
    let count = node.subscription_count(app, channel).await.map_err(unavailable)?;
    let mut out = serde_json::json!({ "subscription_count": count, "occupied": count > 0 });
    if channel.starts_with("presence-") {
        let members = node.members(app, channel).await.map_err(unavailable)?;
        out["user_count"] = members.len().into();
    }
    Ok(out.to_string())
}

/// `{users: [{id, user_info}]}`, one per user.
async fn users(node: &Arc<Node>, app: &Arc<App>, channel: &str) -> Result<String, ApiError> {
    if !channel.starts_with("presence-") {
        return Err(ApiError::new(400, "User list is only possible for Presence Channels"));
    }
    app_channel(channel)?;
    let members = node.members(app, channel).await.map_err(unavailable)?;
    let users: Vec<_> = members
        .iter()
        .map(|m| {
            let info = m
                .user_info
                .as_deref()
                .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
                .unwrap_or(serde_json::Value::Null);
            serde_json::json!({ "id": m.user_id, "user_info": info })
        })
        .collect();
    Ok(serde_json::json!({ "users": users }).to_string())
}

/// `{channel | channels, name, data, socket_id}`: published to each channel; `data` as given (a string is
/// sent as the event's data string, anything else as its JSON).
async fn events(node: &Arc<Node>, app: &Arc<App>, body: &[u8]) -> Result<String, ApiError> {
    #[derive(serde::Deserialize)]
    struct Event {
        channel: Option<String>,
        channels: Option<Vec<String>>,
        name: Option<String>,
        data: Option<serde_json::Value>,
        socket_id: Option<String>,
    }
    let bad = || ApiError::new(400, "Event must include channel, event name and data");
    let event: Event = serde_json::from_slice(body).map_err(|_| bad())?;
    let channels = match (event.channels, event.channel) {
        (Some(list), _) if !list.is_empty() => list,
        (_, Some(one)) => vec![one],
        _ => return Err(bad()),
    };
    let (Some(name), Some(data)) = (event.name, event.data) else {
        return Err(bad());
    };
    if channels.len() > 100 {
        return Err(ApiError::new(400, "At most 100 channels per event"));
    }
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::new(400, "The event name must be 1 to 200 characters"));
    }
    let data = match data {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    if data.len() > app.config.max_event_data_size {
        return Err(ApiError::new(
            413,
            format!("Event data is over {} bytes", app.config.max_event_data_size),
        ));
    }
    for channel in &channels {
        app_channel(channel)?;
    }
    let except = event.socket_id.as_deref().and_then(SocketId::parse_any);
    let data = herald_protocol::frame::Data::AsString(&data);
    crate::api::publish_to(node, app, &name, &channels, data, except).await?;
    Ok(serde_json::json!({ "message": "ok" }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(bearer: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(b) = bearer {
            h.insert("authorization", format!("Bearer {b}").parse().unwrap());
        }
        h
    }

    #[test]
    fn only_unsigned_calls_with_a_client_key_are_laravel_echo_servers() {
        let q = crate::api::parse_query;
        assert!(addressed(&q("auth_key=abc"), &headers(None)));
        assert!(addressed(&q(""), &headers(Some("abc"))));
        assert!(!addressed(&q("auth_key=abc&auth_signature=x"), &headers(None)));
        assert!(!addressed(&q(""), &headers(None)));
    }

    #[test]
    fn the_key_must_be_one_of_the_apps() {
        let mut config = herald_core::AppConfig::new("a", "k", "s");
        let app = App::new(config.clone());
        let q = crate::api::parse_query("auth_key=0123456789abcdef");
        assert_eq!(check(&app, &q, &headers(None)).unwrap_err().status, 403);
        config.echo_client_keys = vec!["0123456789abcdef".into()];
        let app = App::new(config);
        assert!(check(&app, &q, &headers(None)).is_ok());
        assert!(check(&app, &[], &headers(Some("0123456789abcdef"))).is_ok());
        assert_eq!(
            check(&app, &[], &headers(Some("0123456789abcdeX"))).unwrap_err().status,
            403
        );
    }
}
