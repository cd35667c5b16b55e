//! Webhooks: what Laravel apps hear about the socket side (a channel occupied or vacated, a member added or
//! removed, a client event, a cache miss), in Pusher's format, and which of an app's targets wants which.
//! The node decides *that* an event happened (once for the whole cluster) and queues it
//! ([`crate::webhook_queue`]); the server batches, signs and delivers the queue.

use serde::Serialize;

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
}
