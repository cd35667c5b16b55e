//! Webhooks: what Laravel apps hear about the socket side (a channel occupied or vacated, a member added or
//! removed, a client event, a cache miss), in Pusher's format, and which of an app's targets wants which.
//! The node decides *that* an event happened (once for the whole cluster) and queues it
//! in its outbox ([`crate::webhook_outbox`]); the server batches, signs and delivers what the outbox holds.

use serde::{Deserialize, Serialize};

/// One event, in Pusher's webhook format.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WebhookEvent {
    pub name: &'static str,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<String>,
}

impl WebhookEvent {
    fn of(name: &'static str, channel: &str) -> Self {
        WebhookEvent {
            name,
            channel: channel.to_owned(),
            user_id: None,
            event: None,
            data: None,
            socket_id: None,
        }
    }

    pub fn channel_occupied(channel: &str) -> Self {
        Self::of("channel_occupied", channel)
    }

    pub fn channel_vacated(channel: &str) -> Self {
        Self::of("channel_vacated", channel)
    }

    pub fn member_added(channel: &str, user_id: &str) -> Self {
        WebhookEvent {
            user_id: Some(user_id.to_owned()),
            ..Self::of("member_added", channel)
        }
    }

    pub fn member_removed(channel: &str, user_id: &str) -> Self {
        WebhookEvent {
            user_id: Some(user_id.to_owned()),
            ..Self::of("member_removed", channel)
        }
    }

    pub fn client_event(channel: &str, event: &str, data: &str, socket_id: &str, user_id: Option<&str>) -> Self {
        WebhookEvent {
            event: Some(event.to_owned()),
            data: Some(data.to_owned()),
            socket_id: Some(socket_id.to_owned()),
            user_id: user_id.map(str::to_owned),
            ..Self::of("client_event", channel)
        }
    }

    pub fn cache_miss(channel: &str) -> Self {
        Self::of("cache_miss", channel)
    }
}

/// Every event name Herald sends.
pub const NAMES: [&str; 6] = [
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
    "cache_miss",
];

/// An event as stored in a durable outbox (the same JSON as sent), read back.
#[derive(Deserialize)]
struct Stored {
    name: String,
    channel: String,
    user_id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    socket_id: Option<String>,
}

impl WebhookEvent {
    /// The event as JSON, in Pusher's format (also how a durable outbox stores it).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a webhook event always serialises")
    }

    /// An event stored with [`to_json`](Self::to_json); None for anything else.
    pub fn from_json(json: &str) -> Option<Self> {
        let stored: Stored = serde_json::from_str(json).ok()?;
        let name = NAMES.iter().find(|n| **n == stored.name)?;
        Some(WebhookEvent {
            name,
            channel: stored.channel,
            user_id: stored.user_id,
            event: stored.event,
            data: stored.data,
            socket_id: stored.socket_id,
        })
    }
}

/// Where an app's webhooks go, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    /// Event names sent (empty: all).
    pub events: Vec<String>,
    /// Only channels starting with this prefix (None: all).
    pub channel_prefix: Option<String>,
}

impl WebhookTarget {
    pub fn wants(&self, event: &WebhookEvent) -> bool {
        (self.events.is_empty() || self.events.iter().any(|e| e == event.name))
            && self
                .channel_prefix
                .as_deref()
                .is_none_or(|p| event.channel.starts_with(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_filter_by_event_and_prefix() {
        let all = WebhookTarget {
            url: "http://x".into(),
            events: vec![],
            channel_prefix: None,
        };
        let some = WebhookTarget {
            url: "http://x".into(),
            events: vec!["member_added".into()],
            channel_prefix: Some("presence-".into()),
        };
        let added = WebhookEvent::member_added("presence-a", "1");
        assert!(all.wants(&added) && some.wants(&added));
        assert!(!some.wants(&WebhookEvent::channel_occupied("presence-a")));
        assert!(!some.wants(&WebhookEvent::member_added("presence2-a", "1")));
        let json =
            serde_json::to_value(WebhookEvent::client_event("private-a", "client-x", "{}", "1.2", None)).unwrap();
        assert_eq!(json["name"], "client_event");
        assert!(json.get("user_id").is_none());
    }

    #[test]
    fn stored_events_read_back_the_same() {
        for event in [
            WebhookEvent::client_event("private-a", "client-x", "{\"a\":1}", "1.2", Some("7")),
            WebhookEvent::member_removed("presence-a", "9"),
            WebhookEvent::cache_miss("cache-x"),
        ] {
            assert_eq!(WebhookEvent::from_json(&event.to_json()), Some(event));
        }
        assert_eq!(WebhookEvent::from_json(r#"{"name":"other","channel":"a"}"#), None);
        assert_eq!(WebhookEvent::from_json("not json"), None);
    }
}
