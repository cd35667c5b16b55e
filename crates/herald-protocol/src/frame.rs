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

/// Appends `s` as a JSON string literal. Every publish escapes its payload, channel and event name, and every
/// presence join its member list, so the bytes that need no escape (all but `"`, `\` and control bytes) are
/// found eight at a time and copied in runs.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    loop {
        i += plain_run(&bytes[i..]);
        let Some(&b) = bytes.get(i) else { break };
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]);
            }
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// How many bytes at the start of `bytes` go into a JSON string as they are.
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH_BITS: u64 = ONES * 0x80;
    // A lane below `n` (for n <= 0x80) leaves its high bit set in `(x - n) & !x`, and only such a lane can
    // make the whole word non-zero: a test for "any lane", exact, with no false alarms.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH_BITS;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        if below(x, 0x20) | below(x ^ (ONES * u64::from(b'"')), 1) | below(x ^ (ONES * u64::from(b'\\')), 1) != 0 {
            break;
        }
        i += 8;
    }
    while bytes.get(i).is_some_and(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        i += 1;
    }
    i
}

/// `s` as a JSON string literal, quotes included, escaped as every frame escapes text.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    String::from_utf8(out).expect("escaping keeps UTF-8")
}

/// `pusher:connection_established`. Sent once per connection, so it is written straight into the frame: a
/// socket id (digits and a dot, or a socket.io id's letters, digits, `-` and `_`) needs no escaping at either
/// level of JSON.
pub fn connection_established(socket_id: &str, activity_timeout_secs: u64) -> Vec<u8> {
    if !socket_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return connection_established_escaped(socket_id, activity_timeout_secs);
    }
    const HEAD: &[u8] = br#"{"event":"pusher:connection_established","data":"{\"socket_id\":\""#;
    const MIDDLE: &[u8] = br#"\",\"activity_timeout\":"#;
    let mut timeout = itoa::Buffer::new();
    let timeout = timeout.format(activity_timeout_secs).as_bytes();
    let mut out = Vec::with_capacity(HEAD.len() + socket_id.len() + MIDDLE.len() + timeout.len() + 3);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(socket_id.as_bytes());
    out.extend_from_slice(MIDDLE);
    out.extend_from_slice(timeout);
    out.extend_from_slice(br#"}"}"#);
    out
}

/// `pusher:connection_established` through the general encoder, for an id that would need escaping.
fn connection_established_escaped(socket_id: &str, activity_timeout_secs: u64) -> Vec<u8> {
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

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        push_json_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    /// The escaping as it was written before the word-at-a-time scan, one byte at a time: the reference the
    /// scan must match byte for byte.
    fn escaped_one_byte_at_a_time(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{0}'..='\u{1f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
                _ => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn strings_are_escaped_as_json_wherever_the_escapes_fall() {
        assert_eq!(escaped(""), r#""""#);
        assert_eq!(escaped("orders.1"), r#""orders.1""#);
        assert_eq!(
            escaped("a\"b\\c\nd\re\tf\u{1}g\u{1f}"),
            r#""a\"b\\c\nd\re\tf\u0001g\u001f""#
        );
        // Every ASCII byte, and characters of two, three and four bytes, at every offset of the 8-byte words
        // the scan reads, each read back by a JSON parser.
        let specials = [
            "\"", "\\", "\n", "\u{0}", "\u{1f}", " ", "\u{7f}", "é", "日", "🎉", "~", "!",
        ];
        for special in specials.iter().copied().chain(
            (0u8..0x80)
                .map(|b| std::str::from_utf8(&[b]).unwrap().to_owned())
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        ) {
            for offset in 0..20 {
                let s = format!("{}{special}{}", "x".repeat(offset), "y".repeat(19 - offset));
                assert_eq!(escaped(&s), escaped_one_byte_at_a_time(&s), "{s:?}");
                let back: String = serde_json::from_str(&escaped(&s)).unwrap();
                assert_eq!(back, s, "{s:?}");
            }
        }
        // A fixed pseudo-random mix of them, long enough to span several words with more than one escape each.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..500 {
            let s: String = (0..40)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    specials[(seed % specials.len() as u64) as usize]
                })
                .collect();
            assert_eq!(escaped(&s), escaped_one_byte_at_a_time(&s), "{s:?}");
            let back: String = serde_json::from_str(&escaped(&s)).unwrap();
            assert_eq!(back, s, "{s:?}");
        }
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

    /// The frame written directly is the one the general encoder makes, byte for byte, for Pusher and socket.io
    /// ids; an id that would need escaping goes through the encoder.
    #[test]
    fn connection_established_matches_the_general_encoder() {
        for (id, timeout) in [
            ("1.2", 30),
            ("123456789.98765432109", 120),
            ("Ab-_9xYz", 0),
            ("a\"b\\c", 7),
        ] {
            assert_eq!(
                String::from_utf8(connection_established(id, timeout)).unwrap(),
                String::from_utf8(connection_established_escaped(id, timeout)).unwrap(),
                "{id:?}"
            );
        }
        let v = json(&connection_established("a\"b", 1));
        let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["socket_id"], "a\"b");
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
