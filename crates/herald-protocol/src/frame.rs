//! Frames on the socket. Client frames are parsed without copying their `data`; server frames are encoded
//! straight to bytes, once, so a broadcast's bytes can be shared by every recipient.

use serde::Deserialize;
use serde_json::value::RawValue;

/// A frame from a client: `{"event", "channel"?, "data"?}`. `data` stays raw JSON.
#[derive(Debug, Deserialize)]
pub struct ClientFrame<'a> {
    #[serde(borrow)]
    pub event: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    pub channel: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
}

/// Why a client frame could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    NotJson,
    NoEvent,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::NotJson => f.write_str("Invalid message: not a JSON object"),
            FrameError::NoEvent => f.write_str("Invalid message: no \"event\" string"),
        }
    }
}

impl<'a> ClientFrame<'a> {
    pub fn parse(text: &'a str) -> Result<Self, FrameError> {
        if !text.trim_start().starts_with('{') {
            return Err(FrameError::NotJson);
        }
        match serde_json::from_str::<ClientFrame<'a>>(text) {
            Ok(frame) => Ok(frame),
            Err(_) => match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
                Ok(_) => Err(FrameError::NoEvent),
                Err(_) => Err(FrameError::NotJson),
            },
        }
    }
}

/// `data` of `pusher:subscribe`. `channel_data` is kept as the exact string that was signed.
#[derive(Debug, Deserialize)]
pub struct SubscribeData<'a> {
    #[serde(borrow)]
    pub channel: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    pub auth: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub channel_data: Option<std::borrow::Cow<'a, str>>,
}

/// `data` of `pusher:unsubscribe`.
#[derive(Debug, Deserialize)]
pub struct UnsubscribeData<'a> {
    #[serde(borrow)]
    pub channel: std::borrow::Cow<'a, str>,
}

/// `data` of `pusher:signin`.
#[derive(Debug, Deserialize)]
pub struct SigninData<'a> {
    #[serde(borrow)]
    pub auth: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub user_data: std::borrow::Cow<'a, str>,
}

/// How a server frame carries its `data`.
#[derive(Clone, Copy)]
pub enum Data<'a> {
    /// The text becomes a JSON string (`"data":"{\"a\":1}"`): what the Pusher protocol sends.
    AsString(&'a str),
    /// Already valid JSON, written as it is (client events relay the sender's object).
    Raw(&'a str),
}

/// Encodes a server frame `{"event","channel"?,"data","user_id"?}`.
pub fn encode(event: &str, channel: Option<&str>, data: Data<'_>, user_id: Option<&str>) -> Vec<u8> {
    // Room for the frame without growing it: the fixed parts (`{"event":"","channel":"","data":}` is 33
    // bytes), the names, and a string's escapes (JSON in `data` escapes every quote: one byte in four).
    let data_len = match data {
        Data::AsString(s) => s.len() + s.len() / 4 + 2,
        Data::Raw(s) => s.len(),
    };
    let names = event.len() + channel.map_or(0, str::len) + user_id.map_or(0, |u| u.len() + 14);
    let mut out = Vec::with_capacity(40 + names + data_len);
    out.extend_from_slice(b"{\"event\":");
    push_json_string(&mut out, event);
    if let Some(channel) = channel {
        out.extend_from_slice(b",\"channel\":");
        push_json_string(&mut out, channel);
    }
    out.extend_from_slice(b",\"data\":");
    match data {
        Data::AsString(s) => push_json_string(&mut out, s),
        Data::Raw(s) => out.extend_from_slice(s.as_bytes()),
    }
    if let Some(user_id) = user_id {
        out.extend_from_slice(b",\"user_id\":");
        push_json_string(&mut out, user_id);
    }
    out.push(b'}');
    out
}

/// Appends `s` as a JSON string literal.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    String::from_utf8(out).expect("escaping keeps UTF-8")
}

/// `pusher:connection_established`.
pub fn connection_established(socket_id: &str, activity_timeout_secs: u64) -> Vec<u8> {
    let data = format!(
        "{{\"socket_id\":{},\"activity_timeout\":{activity_timeout_secs}}}",
        json_string(socket_id)
    );
    encode("pusher:connection_established", None, Data::AsString(&data), None)
}

/// `pusher:error` with a code (data as an object; pusher-js accepts both forms).
pub fn error(code: u16, message: &str) -> Vec<u8> {
    let data = format!("{{\"code\":{code},\"message\":{}}}", json_string(message));
    encode("pusher:error", None, Data::Raw(&data), None)
}

/// `pusher:pong`, the answer to a client's `pusher:ping`.
pub fn pong() -> Vec<u8> {
    encode("pusher:pong", None, Data::AsString("{}"), None)
}

/// `pusher:ping`, sent to a silent client.
pub fn ping() -> Vec<u8> {
    encode("pusher:ping", None, Data::AsString("{}"), None)
}

/// `pusher_internal:subscription_succeeded`; `data` is `{}` or the presence payload.
pub fn subscription_succeeded(channel: &str, data: &str) -> Vec<u8> {
    encode(
        "pusher_internal:subscription_succeeded",
        Some(channel),
        Data::AsString(data),
        None,
    )
}

/// `pusher:subscription_error` with the HTTP-like status pusher-js passes to the app.
pub fn subscription_error(channel: &str, kind: &str, message: &str, status: u16) -> Vec<u8> {
    let data = format!(
        "{{\"type\":{},\"error\":{},\"status\":{status}}}",
        json_string(kind),
        json_string(message)
    );
    encode("pusher:subscription_error", Some(channel), Data::Raw(&data), None)
}

/// `pusher_internal:member_added`; `user_info` is raw JSON (or absent).
pub fn member_added(channel: &str, user_id: &str, user_info: Option<&str>) -> Vec<u8> {
    let data = match user_info {
        Some(info) => format!("{{\"user_id\":{},\"user_info\":{info}}}", json_string(user_id)),
        None => format!("{{\"user_id\":{}}}", json_string(user_id)),
    };
    encode(
        "pusher_internal:member_added",
        Some(channel),
        Data::AsString(&data),
        None,
    )
}

/// `pusher_internal:member_removed`.
pub fn member_removed(channel: &str, user_id: &str) -> Vec<u8> {
    let data = format!("{{\"user_id\":{}}}", json_string(user_id));
    encode(
        "pusher_internal:member_removed",
        Some(channel),
        Data::AsString(&data),
        None,
    )
}

/// `pusher:cache_miss`: a cache channel has no last event to give a new subscriber.
pub fn cache_miss(channel: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + channel.len());
    out.extend_from_slice(b"{\"event\":\"pusher:cache_miss\",\"channel\":");
    push_json_string(&mut out, channel);
    out.push(b'}');
    out
}

/// `pusher:signin_success`, echoing the signed `user_data`.
pub fn signin_success(user_data: &str) -> Vec<u8> {
    let data = format!("{{\"user_data\":{}}}", json_string(user_data));
    encode("pusher:signin_success", None, Data::Raw(&data), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn parses_client_frames() {
        let f = ClientFrame::parse(r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"orders"}}"#).unwrap();
        assert_eq!(f.event, "pusher:subscribe");
        let sub: SubscribeData = serde_json::from_str(f.data.unwrap().get()).unwrap();
        assert_eq!(sub.channel, "orders");
        assert_eq!(ClientFrame::parse("nope").unwrap_err(), FrameError::NotJson);
        assert_eq!(ClientFrame::parse("[1]").unwrap_err(), FrameError::NotJson);
        assert_eq!(ClientFrame::parse(r#"{"data":{}}"#).unwrap_err(), FrameError::NoEvent);
        assert_eq!(ClientFrame::parse(r#"{"event":3}"#).unwrap_err(), FrameError::NoEvent);
    }

    #[test]
    fn channel_data_is_kept_byte_for_byte() {
        let text = r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\"user_id\":\"42\"}","channel":"presence-a"}}"#;
        let f = ClientFrame::parse(text).unwrap();
        let sub: SubscribeData = serde_json::from_str(f.data.unwrap().get()).unwrap();
        assert_eq!(sub.channel_data.as_deref(), Some(r#"{"user_id":"42"}"#));
    }

    #[test]
    fn encodes_server_frames_with_string_data() {
        let v = json(&connection_established("1.2", 30));
        assert_eq!(v["event"], "pusher:connection_established");
        let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["socket_id"], "1.2");
        assert_eq!(data["activity_timeout"], 30);

        let v = json(&encode(
            "App\\Events\\X",
            Some("orders"),
            Data::AsString("{\"a\":\"\\n\"}"),
            None,
        ));
        assert_eq!(v["event"], "App\\Events\\X");
        assert_eq!(v["channel"], "orders");
        assert_eq!(v["data"], "{\"a\":\"\\n\"}");

        let v = json(&encode(
            "client-typing",
            Some("presence-a"),
            Data::Raw("{\"x\":1}"),
            Some("7"),
        ));
        assert_eq!(v["data"]["x"], 1);
        assert_eq!(v["user_id"], "7");
    }

    #[test]
    fn escapes_control_characters() {
        let mut out = Vec::new();
        push_json_string(&mut out, "a\u{1}b\"c\\é");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\u{1}b\"c\\é");
    }

    #[test]
    fn error_frames() {
        let v = json(&error(4001, "App key x does not exist"));
        assert_eq!(v["data"]["code"], 4001);
        let v = json(&subscription_error("private-x", "AuthError", "bad", 401));
        assert_eq!(v["data"]["status"], 401);
        assert_eq!(v["channel"], "private-x");
        let v = json(&member_added("presence-a", "7", Some("{\"name\":\"B\"}")));
        let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["user_id"], "7");
        assert_eq!(data["user_info"]["name"], "B");
    }
}
