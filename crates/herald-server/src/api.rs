//! The Pusher HTTP API: `POST /apps/{id}/events`, what Laravel's `pusher` and `reverb` broadcasters call.
//! Requests are signed (auth_key, auth_timestamp within 600 s, body_md5, auth_signature) and checked in
//! constant time; each event is encoded once per channel and published through the backbone.

use bytes::Bytes;
use herald_core::{App, Broadcast, Node};
use herald_protocol::api_event::{ApiError, TriggerEvent};
use herald_protocol::frame::{self, Data};
use herald_protocol::{signature, SocketId};
use std::collections::HashMap;
use std::sync::Arc;

/// How far a request's `auth_timestamp` may be from the server clock, in seconds.
pub const TIMESTAMP_WINDOW_SECS: i64 = 600;

/// A decoded query string, in order.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a request's signature against the app's secret.
pub fn authenticate(
    app: &App,
    method: &str,
    path: &str,
    query: &[(String, String)],
    body: &[u8],
    now_secs: i64,
) -> Result<(), ApiError> {
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
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
    if !body.is_empty() {
        match get("body_md5") {
            Some(md5) if md5 == signature::body_md5(body) => {}
            _ => return unauthorized("body_md5 does not match the body"),
        }
    }
    let Some(sig) = get("auth_signature") else {
        return unauthorized("Missing auth_signature");
    };
    let params = query.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if !signature::verify_api(&app.config.secret, method, path, params, sig) {
        return unauthorized("Invalid signature: check the app secret");
    }
    Ok(())
}

/// `POST /apps/{id}/events`: publishes the event to each channel; answers `{}` or the channel info asked for.
pub async fn trigger(node: &Arc<Node>, app: &Arc<App>, body: &[u8]) -> Result<String, ApiError> {
    let event = TriggerEvent::parse(body, app.config.max_event_data_size)?;
    let except = event.socket_id.as_deref().and_then(SocketId::parse);
    for channel in &event.channels {
        let frame = frame::encode(&event.name, Some(channel), Data::AsString(&event.data), None);
        app.metrics.broadcast("api");
        let broadcast = Broadcast {
            frame: Bytes::from(frame),
            except: except.clone(),
        };
        node.publish(app, channel, broadcast).await.map_err(|e| {
            tracing::warn!(app = %app.config.id, channel, error = %e, "HTTP API event not published");
            ApiError::new(503, "The backbone is unavailable; retry")
        })?;
    }
    match event.info.as_deref() {
        Some(info) if !info.is_empty() => channel_info(node, app, &event.channels, info).await,
        _ => Ok("{}".into()),
    }
}

async fn channel_info(node: &Arc<Node>, app: &Arc<App>, channels: &[String], info: &str) -> Result<String, ApiError> {
    let wants = |attr: &str| info.split(',').any(|a| a.trim() == attr);
    let mut out: HashMap<&str, serde_json::Map<String, serde_json::Value>> = HashMap::new();
    for channel in channels {
        let mut attrs = serde_json::Map::new();
        if wants("subscription_count") {
            attrs.insert(
                "subscription_count".into(),
                app.channels.subscriber_count(channel).into(),
            );
        }
        if wants("user_count") && channel.starts_with("presence-") {
            let members = node
                .presence
                .members(&app.config.id, channel)
                .await
                .map_err(|e| ApiError::new(503, e.to_string()))?;
            attrs.insert("user_count".into(), members.len().into());
        }
        out.insert(channel, attrs);
    }
    Ok(serde_json::json!({ "channels": out }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::AppConfig;

    #[test]
    fn query_decoding() {
        let q = parse_query("a=1&b=x%20y&c=%2Fp&d=+&e");
        assert_eq!(q[1].1, "x y");
        assert_eq!(q[2].1, "/p");
        assert_eq!(q[3].1, " ");
        assert_eq!(q[4], ("e".into(), "".into()));
        assert_eq!(parse_query("a=%")[0].1, "%");
        assert_eq!(parse_query("a=%4")[0].1, "%4");
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
