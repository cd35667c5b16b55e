//! The payload Laravel's `RedisBroadcaster` publishes: `{"event","data","socket"}` on `<prefix><channel>`.
//! It becomes the Pusher frame `{"event","channel","data":"<data as a JSON string>"}`, sent to every
//! subscriber except the connection whose socket id is `socket` (`toOthers()`).

use crate::frame::{self, Data};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A broadcast read from Redis.
#[derive(Debug)]
pub struct LaravelBroadcast<'a> {
    pub event: std::borrow::Cow<'a, str>,
    /// `data` as raw JSON (an object from Laravel; a string when another publisher pre-encoded it).
    pub data: &'a RawValue,
    /// The sender's socket id when the app used `toOthers()`.
    pub socket: Option<std::borrow::Cow<'a, str>>,
}

/// Why a Redis message was not a Laravel broadcast.
#[derive(Debug, PartialEq, Eq)]
pub enum PayloadError {
    NotJson,
    NoEvent,
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::NotJson => f.write_str("payload is not a JSON object"),
            PayloadError::NoEvent => f.write_str("payload has no \"event\" string"),
        }
    }
}

impl<'a> LaravelBroadcast<'a> {
    pub fn parse(payload: &'a str) -> Result<Self, PayloadError> {
        #[derive(Deserialize)]
        struct Wire<'b> {
            #[serde(borrow)]
            event: Option<std::borrow::Cow<'b, str>>,
            #[serde(borrow)]
            data: Option<&'b RawValue>,
            #[serde(borrow, default)]
            socket: Option<std::borrow::Cow<'b, str>>,
        }
        let wire: Wire = serde_json::from_str(payload).map_err(|_| PayloadError::NotJson)?;
        let event = wire.event.filter(|e| !e.is_empty()).ok_or(PayloadError::NoEvent)?;
        const NULL: &str = "null";
        let data = match wire.data {
            Some(d) => d,
            None => serde_json::from_str::<&RawValue>(NULL).expect("null is JSON"),
        };
        Ok(LaravelBroadcast {
            event,
            data,
            socket: wire.socket.filter(|s| !s.is_empty()),
        })
    }

    /// The Pusher frame for `channel`, encoded once for every recipient.
    pub fn to_frame(&self, channel: &str) -> Vec<u8> {
        let raw = self.data.get();
        if raw.starts_with('"') {
            // Already a string: the publisher encoded the data itself (as the HTTP API does).
            let text: String = serde_json::from_str(raw).unwrap_or_default();
            frame::encode(&self.event, Some(channel), Data::AsString(&text), None)
        } else {
            frame::encode(&self.event, Some(channel), Data::AsString(raw), None)
        }
    }
}

impl LaravelBroadcast<'_> {
    /// The frame for an encrypted channel: the data sealed with the channel's shared secret, since
    /// Laravel's RedisBroadcaster publishes it in the clear and pusher-js only accepts it sealed.
    pub fn to_encrypted_frame(&self, channel: &str, master_key: &[u8; 32], nonce: [u8; 24]) -> Vec<u8> {
        let raw = self.data.get();
        let plaintext = if raw.starts_with('"') {
            serde_json::from_str::<String>(raw).unwrap_or_default()
        } else {
            raw.to_owned()
        };
        let sealed = crate::encryption::encrypt(channel, master_key, plaintext.as_bytes(), nonce);
        frame::encode(&self.event, Some(channel), Data::AsString(&sealed), None)
    }
}

/// The Pusher channel name inside a Redis channel name, for the first of `prefixes` that matches.
pub fn strip_prefix<'a>(redis_channel: &'a str, prefixes: &[String]) -> Option<&'a str> {
    prefixes.iter().find_map(|p| redis_channel.strip_prefix(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn laravel_payload_becomes_a_pusher_frame() {
        let payload = r#"{"event":"App\\Events\\OrderShipped","data":{"order":{"id":1,"total":9.5},"url":"a\/b","socket":null},"socket":null}"#;
        let b = LaravelBroadcast::parse(payload).unwrap();
        assert_eq!(b.event, "App\\Events\\OrderShipped");
        assert!(b.socket.is_none());
        let frame: Value = serde_json::from_slice(&b.to_frame("private-orders.1")).unwrap();
        assert_eq!(frame["event"], "App\\Events\\OrderShipped");
        assert_eq!(frame["channel"], "private-orders.1");
        let data: Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["order"]["total"], 9.5);
        assert_eq!(data["url"], "a/b");
    }

    #[test]
    fn to_others_socket_is_read() {
        let b =
            LaravelBroadcast::parse(r#"{"event":"message.sent","data":{"text":"hi"},"socket":"1234.5678"}"#).unwrap();
        assert_eq!(b.socket.as_deref(), Some("1234.5678"));
    }

    #[test]
    fn string_data_is_not_encoded_twice() {
        let b = LaravelBroadcast::parse(r#"{"event":"e","data":"{\"a\":1}"}"#).unwrap();
        let frame: Value = serde_json::from_slice(&b.to_frame("c")).unwrap();
        assert_eq!(frame["data"], "{\"a\":1}");
    }

    #[test]
    fn bad_payloads() {
        assert_eq!(LaravelBroadcast::parse("x").unwrap_err(), PayloadError::NotJson);
        assert_eq!(
            LaravelBroadcast::parse(r#"{"data":{}}"#).unwrap_err(),
            PayloadError::NoEvent
        );
    }

    #[test]
    fn prefixes() {
        let p = vec!["laravel_database_".to_string(), "laravel-database-".to_string()];
        assert_eq!(strip_prefix("laravel_database_private-a", &p), Some("private-a"));
        assert_eq!(strip_prefix("laravel-database-a", &p), Some("a"));
        assert_eq!(strip_prefix("other_a", &p), None);
        assert_eq!(strip_prefix("a", &[String::new()]), Some("a"));
    }
}
