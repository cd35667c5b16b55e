//! Publishing both ways a Laravel app does: the signed Pusher HTTP API (`BROADCAST_DRIVER=pusher`/`reverb`)
//! and Laravel's Redis format (`BROADCAST_DRIVER=redis`). Each payload carries its send time and a
//! sequence number, so receivers measure latency and detect loss and duplicates.

use bytes::Bytes;
use herald_protocol::signature;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How events are published.
#[derive(Clone)]
pub enum Publisher {
    Api {
        client: Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>,
        base: String,
        app_id: String,
        key: String,
        secret: String,
    },
    Redis {
        conn: redis::aio::MultiplexedConnection,
        prefix: String,
    },
}

/// The event payload: send time (µs since the epoch) and sequence number.
pub fn payload(seq: u64, pad: usize) -> String {
    let t = crate::latency::now_micros();
    if pad == 0 {
        format!("{{\"t\":{t},\"s\":{seq}}}")
    } else {
        format!("{{\"t\":{t},\"s\":{seq},\"p\":\"{}\"}}", "x".repeat(pad))
    }
}

/// Reads `t` and `s` back from a delivered frame (the data is a JSON string inside the frame, so the
/// quotes are escaped); no full JSON parse on the hot path.
pub fn parse_delivery(frame: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(frame).ok()?;
    let number_after = |marker: &str| -> Option<u64> {
        let start = text.find(marker)? + marker.len();
        let digits: String = text[start..].chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    };
    // Pusher frames carry the data as an escaped JSON string; socket.io packets carry the JSON itself.
    let escaped = || Some((number_after("t\\\":")?, number_after("s\\\":")?));
    escaped().or_else(|| Some((number_after("\"t\":")?, number_after("\"s\":")?)))
}

impl Publisher {
    /// The HTTP API at `base` (`http://` or, with `tls`, `https://`).
    pub fn api(
        base: &str,
        app_id: &str,
        key: &str,
        secret: &str,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Self {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let connector = match tls {
            Some(config) => builder.with_tls_config((*config).clone()),
            None => builder.with_tls_config(
                rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            ),
        }
        .https_or_http()
        .enable_http1()
        .build();
        Publisher::Api {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: base.trim_end_matches('/').to_owned(),
            app_id: app_id.to_owned(),
            key: key.to_owned(),
            secret: secret.to_owned(),
        }
    }

    pub async fn redis(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Publisher::Redis {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// Publishes one event on `channel`.
    pub async fn publish(&self, channel: &str, event: &str, data: &str) -> Result<(), String> {
        match self {
            Publisher::Api {
                client,
                base,
                app_id,
                key,
                secret,
            } => {
                let body = serde_json::json!({ "name": event, "channel": channel, "data": data }).to_string();
                let path = format!("/apps/{app_id}/events");
                let ts = (crate::latency::now_micros() / 1_000_000).to_string();
                let md5 = signature::body_md5(body.as_bytes());
                let params = [
                    ("auth_key", key.as_str()),
                    ("auth_timestamp", ts.as_str()),
                    ("auth_version", "1.0"),
                    ("body_md5", md5.as_str()),
                ];
                let sig = signature::sign_api(secret, "POST", &path, params);
                let uri = format!("{base}{path}?auth_key={key}&auth_timestamp={ts}&auth_version=1.0&body_md5={md5}&auth_signature={sig}");
                let request = hyper::Request::post(uri)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("HTTP API answered {}", response.status()));
                }
                let _ = http_body_util::BodyExt::collect(response.into_body()).await;
                Ok(())
            }
            Publisher::Redis { conn, prefix } => {
                let raw: serde_json::Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
                let message = serde_json::json!({ "event": event, "data": raw, "socket": null }).to_string();
                let mut conn = conn.clone();
                redis::cmd("PUBLISH")
                    .arg(format!("{prefix}{channel}"))
                    .arg(message)
                    .query_async::<i64>(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timestamp_survives_the_frame() {
        let data = payload(42, 0);
        let frame =
            herald_protocol::frame::encode("load", Some("c"), herald_protocol::frame::Data::AsString(&data), None);
        let (t, s) = parse_delivery(&frame).unwrap();
        assert_eq!(s, 42);
        assert!(t > 1_600_000_000_000_000);
    }
}
