//! What laravel-echo-server's clients speak: Echo's `broadcaster: 'socket.io'` over socket.io's packet
//! format (protocol 4, socket.io 2.x, and protocol 5, socket.io 3/4). Engine.IO (the transport under it:
//! polling, upgrade, heartbeats) is not here; this is the thin text layer on top, for the default namespace:
//! reading the client's packets, and writing events in the shape Echo reads them, `(event, channel, data)`.
//! It also turns the Pusher frames the node builds into that shape, so a broadcast is translated once per
//! broadcast, not once per recipient.

use crate::frame::push_json_string;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A packet a client sent, as far as Herald acts on it.
#[derive(Debug)]
pub enum ClientPacket<'a> {
    /// `0`: join a namespace (protocol 5 clients ask; protocol 4 clients are joined to `/` unasked).
    Connect { namespace: &'a str },
    /// `1`: leave the namespace.
    Disconnect,
    /// `2`: an event with its arguments (raw JSON each), and the ack id when the client wants an answer.
    Event {
        name: String,
        args: Vec<&'a RawValue>,
        ack: Option<u64>,
    },
    /// Any other packet (acks, binary events): nothing Echo sends.
    Unsupported(char),
}

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("empty packet")]
    Empty,
    #[error("the event is not a JSON array starting with the event name")]
    BadEvent,
    #[error("namespace {0:?} is not served: Echo connects to \"/\"")]
    Namespace(String),
}

/// Reads one text packet: `<type>[/<namespace>,][<ack id>][<json>]`.
pub fn parse(text: &str) -> Result<ClientPacket<'_>, PacketError> {
    let mut chars = text.char_indices();
    let (_, kind) = chars.next().ok_or(PacketError::Empty)?;
    let mut rest = &text[kind.len_utf8()..];
    let mut namespace = "/";
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        namespace = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
    }
    match kind {
        '0' => Ok(ClientPacket::Connect { namespace }),
        // Leaving another namespace (which was never joined) is not leaving the connection.
        '1' if namespace == "/" => Ok(ClientPacket::Disconnect),
        '1' => Ok(ClientPacket::Unsupported('1')),
        '2' => {
            if namespace != "/" {
                return Err(PacketError::Namespace(namespace.to_owned()));
            }
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let ack = if digits > 0 {
                Some(rest[..digits].parse().map_err(|_| PacketError::BadEvent)?)
            } else {
                None
            };
            let args: Vec<&RawValue> = serde_json::from_str(&rest[digits..]).map_err(|_| PacketError::BadEvent)?;
            let (first, args) = args.split_first().ok_or(PacketError::BadEvent)?;
            let name: String = serde_json::from_str(first.get()).map_err(|_| PacketError::BadEvent)?;
            Ok(ClientPacket::Event {
                name,
                args: args.to_vec(),
                ack,
            })
        }
        other => Ok(ClientPacket::Unsupported(other)),
    }
}

/// The answer to a protocol 5 client's `0`: joined, with the socket's id.
pub fn connected(sid: &str) -> String {
    let mut out = Vec::with_capacity(12 + sid.len());
    out.extend_from_slice(b"0{\"sid\":");
    push_json_string(&mut out, sid);
    out.push(b'}');
    String::from_utf8(out).expect("JSON built from text is text")
}

/// A refused namespace (protocol 5's CONNECT_ERROR, protocol 4's ERROR).
pub fn connect_error(namespace: &str, modern: bool, message: &str) -> String {
    let mut out = Vec::new();
    out.push(b'4');
    if namespace != "/" {
        out.extend_from_slice(namespace.as_bytes());
        out.push(b',');
    }
    if modern {
        out.extend_from_slice(b"{\"message\":");
        push_json_string(&mut out, message);
        out.push(b'}');
    } else {
        push_json_string(&mut out, message);
    }
    String::from_utf8(out).expect("JSON built from text is text")
}

/// `2["<event>","<channel>",<data>]`: an event the way Echo's socket.io channels read it; `data` is raw JSON.
/// (Engine.IO adds its own `4`, "message", in front of every socket.io packet.)
pub fn event(event: &str, channel: &str, data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + event.len() + channel.len() + data.len());
    out.extend_from_slice(b"2[");
    push_json_string(&mut out, event);
    out.push(b',');
    push_json_string(&mut out, channel);
    out.push(b',');
    out.extend_from_slice(data.as_bytes());
    out.push(b']');
    out
}

/// The answer to an event the client asked an ack for: `3<id>[<args>]`.
pub fn ack(id: u64, args: &str) -> String {
    format!("3{id}[{args}]")
}

/// A Pusher frame as the node builds it: event, channel, and data (a JSON string, or raw JSON).
#[derive(Deserialize)]
struct PusherFrame<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    channel: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// The data of a Pusher frame as socket.io sends it: Pusher carries event data as a JSON string holding
/// JSON; Echo's socket.io channels get the JSON itself (what Laravel broadcast). Text that is not JSON
/// stays a string.
fn unwrap_data(raw: Option<&RawValue>) -> String {
    let Some(raw) = raw else { return "null".into() };
    match serde_json::from_str::<std::borrow::Cow<str>>(raw.get()) {
        Ok(text) => match serde_json::from_str::<&RawValue>(&text) {
            Ok(json) => json.get().to_owned(),
            Err(_) => raw.get().to_owned(),
        },
        Err(_) => raw.get().to_owned(),
    }
}

/// What a Pusher frame the node built becomes for a socket.io client.
#[derive(Debug, PartialEq, Eq)]
pub enum Translated {
    /// Send this packet.
    Packet(Vec<u8>),
    /// The full member list of a presence channel this connection joined (`presence:subscribed`): the
    /// members, in order, as `(user_id, member JSON)`.
    Subscribed {
        channel: String,
        members: Vec<(String, String)>,
    },
    /// Nothing to send (protocol chatter Echo has no use for).
    Nothing,
}

/// Translates one Pusher frame (a broadcast or an answer the node queued) for a socket.io client.
pub fn from_pusher(frame: &[u8]) -> Translated {
    let Ok(parsed) = serde_json::from_slice::<PusherFrame>(frame) else {
        return Translated::Nothing;
    };
    let channel = parsed.channel.as_deref().unwrap_or("");
    if channel.starts_with("private-encrypted-") {
        // Sealed for pusher-js; Echo's socket.io connector has no key to open it.
        return Translated::Nothing;
    }
    match parsed.event.as_ref() {
        "pusher_internal:member_added" => {
            let member = unwrap_data(parsed.data);
            Translated::Packet(event("presence:joining", channel, &member))
        }
        "pusher_internal:member_removed" => {
            let member = unwrap_data(parsed.data);
            Translated::Packet(event("presence:leaving", channel, &member))
        }
        "pusher_internal:subscription_succeeded" => {
            let data = unwrap_data(parsed.data);
            match presence_members(&data) {
                Some(members) => Translated::Subscribed {
                    channel: channel.to_owned(),
                    members,
                },
                None => Translated::Nothing,
            }
        }
        "pusher:subscription_error" => {
            #[derive(Deserialize)]
            struct Refused {
                status: u16,
            }
            let status = serde_json::from_str::<Refused>(&unwrap_data(parsed.data))
                .map(|r| r.status)
                .unwrap_or(403);
            Translated::Packet(event("subscription_error", channel, &status.to_string()))
        }
        name if name.starts_with("pusher:") || name.starts_with("pusher_internal:") => Translated::Nothing,
        name => {
            if parsed.channel.is_none() {
                return Translated::Nothing;
            }
            Translated::Packet(event(name, channel, &unwrap_data(parsed.data)))
        }
    }
}

/// The broadcast form of a Pusher frame for socket.io clients (events, `presence:joining` and
/// `presence:leaving`), or None when the frame is nothing they are sent.
pub fn broadcast_packet(frame: &[u8]) -> Option<Vec<u8>> {
    match from_pusher(frame) {
        Translated::Packet(packet) => Some(packet),
        _ => None,
    }
}

/// A member event in socket.io form, read back by the connection it is queued for.
#[derive(Debug, PartialEq, Eq)]
pub struct PresenceChange {
    pub joined: bool,
    pub channel: String,
    pub user_id: String,
    /// The member object as sent (`{"user_id":..,"user_info":..}`).
    pub member: String,
}

/// Reads a queued socket.io packet back when it is `presence:joining` or `presence:leaving`. Echo's `leaving`
/// callback reads the member's `user_info`, which Pusher's `member_removed` does not carry: the connection
/// keeps the members it was shown and sends the leaving one whole.
pub fn presence_change(packet: &[u8]) -> Option<PresenceChange> {
    let joined = if packet.starts_with(b"2[\"presence:joining\",") {
        true
    } else if packet.starts_with(b"2[\"presence:leaving\",") {
        false
    } else {
        return None;
    };
    let (_, channel, member): (&str, String, &RawValue) = serde_json::from_slice(&packet[1..]).ok()?;
    let member = member.get().to_owned();
    Some(PresenceChange {
        joined,
        channel,
        user_id: member_id(&member),
        member,
    })
}

/// The `user_id` of a member object, as text (Laravel's ids are often numbers).
fn member_id(member: &str) -> String {
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        user_id: Option<&'a RawValue>,
    }
    let Ok(Id { user_id: Some(raw) }) = serde_json::from_str::<Id>(member) else {
        return String::new();
    };
    serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_owned())
}

/// `{"presence":{"ids":[...],"hash":{...}}}` as `(user_id, {"user_id":..,"user_info":..})` pairs, in order.
fn presence_members(data: &str) -> Option<Vec<(String, String)>> {
    #[derive(Deserialize)]
    struct Data<'a> {
        #[serde(borrow)]
        presence: Presence<'a>,
    }
    #[derive(Deserialize)]
    struct Presence<'a> {
        ids: Vec<String>,
        #[serde(borrow)]
        hash: std::collections::HashMap<String, &'a RawValue>,
    }
    let data: Data = serde_json::from_str(data).ok()?;
    let members = data
        .presence
        .ids
        .into_iter()
        .map(|id| {
            let member = member_json(&id, data.presence.hash.get(&id).map(|r| r.get()));
            (id, member)
        })
        .collect();
    Some(members)
}

/// `{"user_id":"<id>","user_info":<info>}` (no `user_info` when there is none).
pub fn member_json(user_id: &str, user_info: Option<&str>) -> String {
    let mut out = Vec::with_capacity(32 + user_id.len() + user_info.map_or(0, str::len));
    out.extend_from_slice(b"{\"user_id\":");
    push_json_string(&mut out, user_id);
    if let Some(info) = user_info.filter(|i| *i != "null") {
        out.extend_from_slice(b",\"user_info\":");
        out.extend_from_slice(info.as_bytes());
    }
    out.push(b'}');
    String::from_utf8(out).expect("JSON built from text is text")
}

/// `presence:subscribed` with the channel's members, as a JSON array of member objects.
pub fn subscribed<'a>(channel: &str, members: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut list = String::from("[");
    for (i, member) in members.enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(member);
    }
    list.push(']');
    event("presence:subscribed", channel, &list)
}

/// `presence:leaving` with the member that left (its `user_info` when the connection knew it).
pub fn leaving(channel: &str, member: &str) -> Vec<u8> {
    event("presence:leaving", channel, member)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    #[test]
    fn reads_what_echo_sends() {
        let p = parse(r#"2["subscribe",{"channel":"private-a","auth":{"headers":{"X-CSRF-TOKEN":"t"}}}]"#).unwrap();
        let ClientPacket::Event { name, args, ack } = p else {
            panic!("{p:?}")
        };
        assert_eq!(name, "subscribe");
        assert_eq!(args.len(), 1);
        assert!(args[0].get().contains("private-a"));
        assert_eq!(ack, None);
        let p = parse(r#"212["client event",{"channel":"private-a","event":"client-typing","data":{}}]"#).unwrap();
        assert!(matches!(p, ClientPacket::Event { ack: Some(12), .. }));
        assert!(matches!(parse("0").unwrap(), ClientPacket::Connect { namespace: "/" }));
        assert!(matches!(
            parse("0/admin,").unwrap(),
            ClientPacket::Connect { namespace: "/admin" }
        ));
        assert!(matches!(
            parse(r#"0{"token":"x"}"#).unwrap(),
            ClientPacket::Connect { namespace: "/" }
        ));
        assert!(matches!(parse("1").unwrap(), ClientPacket::Disconnect));
        assert!(matches!(parse("1/admin,").unwrap(), ClientPacket::Unsupported('1')));
        assert!(matches!(parse("3[]").unwrap(), ClientPacket::Unsupported('3')));
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        for bad in [
            "",
            "2",
            "2{}",
            "2[]",
            "2[1]",
            "2[\"a\"",
            "299999999999999999999999[\"a\"]",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse(r#"2/admin,["x"]"#).unwrap_err(),
            PacketError::Namespace("/admin".into())
        );
    }

    #[test]
    fn broadcasts_carry_the_json_laravel_sent() {
        let pusher = frame::encode(
            "App\\Events\\OrderShipped",
            Some("orders"),
            frame::Data::AsString(r#"{"id":1}"#),
            None,
        );
        let packet = broadcast_packet(&pusher).unwrap();
        assert_eq!(
            String::from_utf8(packet).unwrap(),
            r#"2["App\\Events\\OrderShipped","orders",{"id":1}]"#
        );
        let text = frame::encode("e", Some("c"), frame::Data::AsString("not json"), None);
        assert_eq!(
            String::from_utf8(broadcast_packet(&text).unwrap()).unwrap(),
            r#"2["e","c","not json"]"#
        );
        assert_eq!(broadcast_packet(&frame::pong()), None);
    }

    #[test]
    fn member_events_become_echos_presence_events() {
        let added = frame::member_added("presence-a", "7", Some(r#"{"name":"Ada"}"#));
        let packet = broadcast_packet(&added).unwrap();
        assert_eq!(
            String::from_utf8(packet.clone()).unwrap(),
            r#"2["presence:joining","presence-a",{"user_id":"7","user_info":{"name":"Ada"}}]"#
        );
        assert_eq!(
            presence_change(&packet),
            Some(PresenceChange {
                joined: true,
                channel: "presence-a".into(),
                user_id: "7".into(),
                member: r#"{"user_id":"7","user_info":{"name":"Ada"}}"#.into()
            })
        );
        let removed = broadcast_packet(&frame::member_removed("presence-a", "7")).unwrap();
        let change = presence_change(&removed).unwrap();
        assert!(!change.joined);
        assert_eq!(change.user_id, "7");
        assert_eq!(presence_change(b"2[\"presence:joining\" nope"), None);
        assert_eq!(presence_change(&event("x", "c", "1")), None);
        let data = r#"{"presence":{"ids":["1","2"],"hash":{"1":{"n":1},"2":null},"count":2}}"#;
        let Translated::Subscribed { members, .. } = from_pusher(&frame::subscription_succeeded("presence-a", data))
        else {
            panic!()
        };
        assert_eq!(
            members,
            vec![
                ("1".to_owned(), r#"{"user_id":"1","user_info":{"n":1}}"#.to_owned()),
                ("2".to_owned(), r#"{"user_id":"2"}"#.to_owned())
            ]
        );
        assert_eq!(
            from_pusher(&frame::subscription_succeeded("private-a", "{}")),
            Translated::Nothing
        );
        let refused = frame::subscription_error("private-a", "AuthError", "no", 403);
        assert_eq!(
            from_pusher(&refused),
            Translated::Packet(event("subscription_error", "private-a", "403"))
        );
    }

    #[test]
    fn acks_and_connects() {
        assert_eq!(connected("abc"), r#"0{"sid":"abc"}"#);
        assert_eq!(ack(3, "true"), "33[true]");
        assert_eq!(connect_error("/admin", true, "no"), r#"4/admin,{"message":"no"}"#);
    }
}
