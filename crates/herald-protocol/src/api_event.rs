//! The body of `POST /apps/{id}/events` (what Laravel's pusher and reverb drivers send), with Pusher's
//! limits. Each refusal carries the HTTP status Pusher answers with.

use crate::channel::validate_name;
use crate::socket_id;
use serde::Deserialize;

/// Most channels one event may name.
pub const MAX_CHANNELS_PER_EVENT: usize = 100;
/// Longest event name.
pub const MAX_EVENT_NAME_LEN: usize = 200;
/// Most events in one `batch_events` call.
pub const MAX_BATCH_SIZE: usize = 10;
/// Default largest `data`, in bytes.
pub const DEFAULT_MAX_DATA_SIZE: usize = 10 * 1024;

/// A validated trigger request.
#[derive(Debug)]
pub struct TriggerEvent {
    pub name: String,
    /// The event's `data` as a JSON string, quotes included, ready for a frame's `"data":` (written with
    /// [`crate::frame::Data::Raw`]): the string the caller sent, kept as written (its escapes included), so
    /// that it is neither decoded nor encoded again on every publish. [`TriggerEvent::data`] decodes it.
    pub data_json: String,
    pub channels: Vec<String>,
    pub socket_id: Option<String>,
    pub info: Option<String>,
}

/// A refusal: the HTTP status and the message for the JSON error body.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

#[derive(Deserialize)]
struct Wire<'a> {
    name: Option<String>,
    #[serde(borrow)]
    data: Option<&'a serde_json::value::RawValue>,
    channels: Option<Vec<String>>,
    channel: Option<String>,
    socket_id: Option<String>,
    info: Option<String>,
}

/// True when a JSON string literal has an escape `\uD...` (a surrogate among them; a few others, and an
/// escaped backslash before a `u`, are decoded for nothing).
fn may_hold_a_surrogate(literal: &str) -> bool {
    memchr::memmem::find_iter(literal.as_bytes(), b"\\u")
        .any(|at| matches!(literal.as_bytes().get(at + 2), Some(b'd' | b'D')))
}

/// Reads and checks a `batch_events` body: `{"batch":[{channel,name,data,socket_id?,info?}, ...]}`.
pub fn parse_batch(body: &[u8], max_data_size: usize) -> Result<Vec<TriggerEvent>, ApiError> {
    #[derive(Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        batch: Vec<Wire<'a>>,
    }
    let batch: Batch =
        serde_json::from_slice(body).map_err(|e| ApiError::new(400, format!("Invalid batch body: {e}")))?;
    if batch.batch.is_empty() {
        return Err(ApiError::new(400, "The batch is empty"));
    }
    if batch.batch.len() > MAX_BATCH_SIZE {
        return Err(ApiError::new(
            400,
            format!("More than {MAX_BATCH_SIZE} events in one batch"),
        ));
    }
    batch
        .batch
        .into_iter()
        .map(|wire| TriggerEvent::from_wire(wire, max_data_size))
        .collect()
}

/// Which attributes an `info` parameter asks for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InfoAttributes {
    pub user_count: bool,
    pub subscription_count: bool,
}

impl InfoAttributes {
    pub fn parse(info: Option<&str>) -> Self {
        let mut attrs = InfoAttributes::default();
        for a in info.unwrap_or("").split(',').map(str::trim) {
            match a {
                "user_count" => attrs.user_count = true,
                "subscription_count" => attrs.subscription_count = true,
                _ => {}
            }
        }
        attrs
    }

    pub fn any(self) -> bool {
        self.user_count || self.subscription_count
    }
}

/// Pusher's rule for `GET /channels`: `user_count` needs a `presence-` filter.
pub fn check_channels_query(filter_by_prefix: Option<&str>, info: InfoAttributes) -> Result<(), ApiError> {
    if info.user_count && !filter_by_prefix.is_some_and(|p| p.starts_with("presence-")) {
        return Err(ApiError::new(400, "info=user_count needs filter_by_prefix=presence-"));
    }
    Ok(())
}

/// Pusher's rule for `GET /channels/{name}`: `user_count` only on presence channels.
pub fn check_channel_query(channel: &str, info: InfoAttributes) -> Result<(), ApiError> {
    validate_name(channel).map_err(|e| ApiError::new(400, format!("Invalid channel {channel:?}: {e}")))?;
    if info.user_count && !channel.starts_with("presence-") {
        return Err(ApiError::new(400, "info=user_count is only for presence channels"));
    }
    Ok(())
}

impl TriggerEvent {
    /// Reads and checks a trigger body against Pusher's rules.
    pub fn parse(body: &[u8], max_data_size: usize) -> Result<TriggerEvent, ApiError> {
        let wire: Wire =
            serde_json::from_slice(body).map_err(|e| ApiError::new(400, format!("Invalid JSON body: {e}")))?;
        Self::from_wire(wire, max_data_size)
    }

    /// The event's data, decoded (None only for a `data_json` not made by the parser: the parser takes only
    /// strings a strict JSON parser decodes).
    pub fn data(&self) -> Option<String> {
        serde_json::from_str(&self.data_json).ok()
    }

    fn from_wire(wire: Wire<'_>, max_data_size: usize) -> Result<TriggerEvent, ApiError> {
        let name = wire
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::new(400, "Missing event name: \"name\""))?;
        if name.chars().count() > MAX_EVENT_NAME_LEN {
            return Err(ApiError::new(
                400,
                format!("Event name is longer than {MAX_EVENT_NAME_LEN} characters"),
            ));
        }
        let too_large = || ApiError::new(413, format!("Event data is larger than {max_data_size} bytes"));
        let invalid = |e: serde_json::Error| ApiError::new(400, format!("Invalid \"data\": {e}"));
        let written = wire.data.ok_or_else(|| ApiError::new(400, "Missing \"data\""))?.get();
        let data_json = if written.starts_with('"') {
            // A string, as Pusher's API has it, kept as written. The limit is on the decoded text, which is
            // never longer than what was written, so only a string written longer than the limit is decoded to
            // be measured; and one with an escape that may be half of a surrogate pair (`\uD8..`-`\uDF..`),
            // which is refused unless it is whole, as decoding always did: a frame is never sent that a strict
            // JSON parser would refuse.
            if written.len() - 2 > max_data_size || may_hold_a_surrogate(written) {
                let decoded: String = serde_json::from_str(written).map_err(invalid)?;
                if decoded.len() > max_data_size {
                    return Err(too_large());
                }
            }
            written.to_owned()
        } else {
            // Anything else is sent as its compact JSON text, in a string (escaped as every frame's data).
            let value: serde_json::Value = serde_json::from_str(written).map_err(invalid)?;
            let text = value.to_string();
            if text.len() > max_data_size {
                return Err(too_large());
            }
            crate::frame::json_string(&text)
        };
        let channels = match (wire.channels, wire.channel) {
            (Some(list), _) if !list.is_empty() => list,
            (_, Some(one)) => vec![one],
            _ => return Err(ApiError::new(400, "Missing \"channels\" or \"channel\"")),
        };
        if channels.len() > MAX_CHANNELS_PER_EVENT {
            return Err(ApiError::new(
                400,
                format!("More than {MAX_CHANNELS_PER_EVENT} channels"),
            ));
        }
        for channel in &channels {
            validate_name(channel).map_err(|e| ApiError::new(400, format!("Invalid channel {channel:?}: {e}")))?;
        }
        if channels.len() > 1 && channels.iter().any(|c| c.starts_with("private-encrypted-")) {
            return Err(ApiError::new(
                400,
                "An event on an encrypted channel must name only that channel",
            ));
        }
        let socket_id = wire.socket_id.filter(|s| !s.is_empty());
        if let Some(s) = &socket_id {
            if !socket_id::is_valid(s) {
                return Err(ApiError::new(400, format!("Invalid socket_id {s:?}")));
            }
        }
        Ok(TriggerEvent {
            name,
            data_json,
            channels,
            socket_id,
            info: wire.info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_laravel_trigger() {
        let e = TriggerEvent::parse(
            br#"{"name":"App\\Events\\X","data":"{\"a\":1}","channels":["private-a","b"],"socket_id":"1.2"}"#,
            10240,
        )
        .unwrap();
        assert_eq!(e.channels, vec!["private-a", "b"]);
        assert_eq!(e.data().unwrap(), "{\"a\":1}");
        assert_eq!(e.data_json, r#""{\"a\":1}""#, "kept as written");
        assert_eq!(e.socket_id.as_deref(), Some("1.2"));
        let e = TriggerEvent::parse(br#"{"name":"x","data":"d","channel":"c"}"#, 10240).unwrap();
        assert_eq!(e.channels, vec!["c"]);
    }

    /// The data string goes into the frame as the caller wrote it, escapes and all, and clients read the
    /// text that was sent; the size limit is on the decoded text, however it was written; data that is not a
    /// string is sent as its compact JSON text.
    #[test]
    fn data_is_kept_as_written_and_measured_decoded() {
        use crate::frame::{encode, Data};
        let body = r#"{"name":"x","channel":"c","data":"{\"q\":\"\u00e9\\n\/\ud83d\ude00\"}"}"#;
        let e = TriggerEvent::parse(body.as_bytes(), 100).unwrap();
        let frame: serde_json::Value =
            serde_json::from_slice(&encode("x", Some("c"), Data::Raw(&e.data_json), None)).unwrap();
        assert_eq!(frame["data"], "{\"q\":\"\u{e9}\\n/\u{1f600}\"}");
        assert_eq!(frame["data"].as_str(), e.data().as_deref());
        // Written in 6 bytes an escape, 1 byte decoded: within a limit of 4 decoded bytes, not of 4 written.
        let escaped = r#"{"name":"x","channel":"c","data":"\u0041\u0042\u0043\u0044"}"#;
        assert_eq!(
            TriggerEvent::parse(escaped.as_bytes(), 4).unwrap().data().unwrap(),
            "ABCD"
        );
        assert_eq!(TriggerEvent::parse(escaped.as_bytes(), 3).unwrap_err().status, 413);
        let object = r#"{"name":"x","channel":"c","data":{ "a" : [1, 2] }}"#;
        let e = TriggerEvent::parse(object.as_bytes(), 100).unwrap();
        assert_eq!(e.data().unwrap(), r#"{"a":[1,2]}"#);
        assert_eq!(TriggerEvent::parse(object.as_bytes(), 5).unwrap_err().status, 413);
    }

    /// Half a surrogate pair is refused (400) whatever the data's size, as decoding always did; a whole pair
    /// passes as written.
    #[test]
    fn half_a_surrogate_pair_is_refused_whatever_the_size() {
        let parse = |data: &str, limit| {
            let body = format!(r#"{{"name":"x","channel":"c","data":"{data}"}}"#);
            TriggerEvent::parse(body.as_bytes(), limit).map(|e| e.data_json)
        };
        for limit in [100, 4] {
            assert_eq!(parse(r"ab\ud800", limit).unwrap_err().status, 400, "limit {limit}");
            assert_eq!(parse(r"\ud83d\ud83d", limit).unwrap_err().status, 400, "limit {limit}");
        }
        assert_eq!(parse(r"\ud83d\ude00", 4).unwrap(), r#""\ud83d\ude00""#);
        assert_eq!(parse(r"\ud83d\ude00", 3).unwrap_err().status, 413);
        assert_eq!(
            parse(r"\\ud800", 100).unwrap(),
            r#""\\ud800""#,
            "an escaped backslash, then text"
        );
    }

    #[test]
    fn batches() {
        let ok = br#"{"batch":[{"channel":"a","name":"x","data":"1"},{"channel":"private-b","name":"y","data":"2","socket_id":"1.2"}]}"#;
        let events = parse_batch(ok, 100).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].channels, vec!["private-b"]);
        let eleven: Vec<_> = (0..11)
            .map(|i| serde_json::json!({"channel":"a","name":"x","data":i.to_string()}))
            .collect();
        let body = serde_json::json!({ "batch": eleven }).to_string();
        assert_eq!(parse_batch(body.as_bytes(), 100).unwrap_err().status, 400);
        assert_eq!(parse_batch(br#"{"batch":[]}"#, 100).unwrap_err().status, 400);
        assert_eq!(
            parse_batch(br#"{"batch":[{"channel":"a","name":"x","data":"0123"}]}"#, 2)
                .unwrap_err()
                .status,
            413
        );
    }

    #[test]
    fn channel_query_rules() {
        let user_count = InfoAttributes::parse(Some("user_count"));
        assert!(user_count.user_count && !user_count.subscription_count);
        assert_eq!(check_channels_query(None, user_count).unwrap_err().status, 400);
        assert!(check_channels_query(Some("presence-"), user_count).is_ok());
        assert!(check_channels_query(None, InfoAttributes::default()).is_ok());
        assert_eq!(check_channel_query("private-a", user_count).unwrap_err().status, 400);
        assert!(check_channel_query("presence-a", user_count).is_ok());
        assert_eq!(
            check_channel_query("a b", InfoAttributes::default())
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn pusher_limits() {
        let status = |body: &str| TriggerEvent::parse(body.as_bytes(), 16).unwrap_err().status;
        assert_eq!(status("nope"), 400);
        assert_eq!(status(r#"{"data":"d","channel":"c"}"#), 400);
        assert_eq!(
            status(r#"{"name":"x","data":"01234567890123456789","channel":"c"}"#),
            413
        );
        assert_eq!(status(r#"{"name":"x","data":"d","channel":"a b"}"#), 400);
        assert_eq!(
            status(r#"{"name":"x","data":"d","channel":"c","socket_id":"abc"}"#),
            400
        );
        let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
        let body = serde_json::json!({"name":"x","data":"d","channels":many}).to_string();
        assert_eq!(status(&body), 400);
        assert_eq!(
            status(r#"{"name":"x","data":"d","channels":["private-encrypted-a","b"]}"#),
            400
        );
    }
}
