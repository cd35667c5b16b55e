//! Publishing and delivering: everything a node sends to channels (HTTP API events, client events, member
//! events, terminations) goes out through [`Node::publish`], and everything that arrives for local
//! subscribers comes in through `deliver`. Laravel's payloads become Pusher frames here, with the
//! encryption policy for `private-encrypted-` channels, and cache channels keep their last event here.

use super::Node;
use crate::app::App;
use crate::backbone::BackboneError;
use crate::backend_events::Inbound;
use crate::client_event;
use crate::connection::ConnectionHandle;
use crate::console::{self, ConsoleEvent, CONSOLE_CHANNEL};
use crate::internal_channel::user_channel;
use crate::webhook::WebhookEvent;
use crate::Broadcast;
use herald_protocol::channel::is_cache;
use herald_protocol::frame;
use herald_protocol::laravel::LaravelBroadcast;
use herald_protocol::SocketId;
use std::time::Instant;

/// Where a broadcast came from (the `source` label of `herald_broadcasts_total`, in the order of
/// [`crate::metrics::BROADCAST_SOURCES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The Pusher HTTP API.
    Api,
    /// A client event (`client-*`) from a connection.
    ClientEvent,
    /// A member event.
    Presence,
    /// Laravel's RedisBroadcaster.
    Laravel,
}

impl Source {
    pub fn label(self) -> &'static str {
        // The variants are declared in the order of the labels.
        crate::metrics::BROADCAST_SOURCES[self as usize]
    }
}

impl Node {
    /// Publishes a broadcast to every subscriber of the channel on every node.
    pub async fn publish(
        &self,
        app: &App,
        channel: &str,
        broadcast: Broadcast,
        source: Source,
    ) -> Result<(), BackboneError> {
        app.metrics.broadcast(source);
        self.record(app, || broadcast_entry(source, channel, &broadcast.frame, None));
        self.backbone.publish(&app.config, channel, broadcast).await
    }

    /// An HTTP API event on one channel: kept as the last event of a cache channel, then published.
    pub async fn trigger(
        &self,
        app: &App,
        channel: &str,
        frame: Vec<u8>,
        except: Option<SocketId>,
    ) -> Result<(), BackboneError> {
        let broadcast = Broadcast::new(frame, except);
        if is_cache(channel) {
            self.cache
                .store(&app.config.id, channel, broadcast.frame.clone(), app.config.cache_ttl);
        }
        self.publish(app, channel, broadcast, Source::Api).await
    }

    /// A client event the rules allowed: relayed to the channel's other subscribers, and to the app's webhooks.
    pub async fn client_event(
        &self,
        app: &App,
        conn: &ConnectionHandle,
        channel: &str,
        event: &str,
        data: &str,
        user_id: Option<&str>,
    ) {
        let socket_id = conn.socket_id.as_str();
        let hook = WebhookEvent::client_event(channel, event, data, socket_id, user_id);
        self.emit_webhook(app, hook);
        app.metrics.client_events.inc();
        let frame = client_event::relay_frame(event, channel, data, user_id);
        let broadcast = Broadcast::new(frame, Some(conn.socket_id.clone()));
        if let Err(e) = self.publish(app, channel, broadcast, Source::ClientEvent).await {
            tracing::warn!(app = %app.config.id, channel, error = %e, "client event not published");
        }
    }

    /// Closes every connection signed in as `user_id`, on every node.
    pub async fn terminate_user(&self, app: &App, user_id: &str) -> Result<(), BackboneError> {
        let channel = user_channel(user_id);
        self.backbone
            .publish(&app.config, &channel, Broadcast::terminate())
            .await
    }

    /// A cache channel's last event right after `subscription_succeeded`, or `pusher:cache_miss` (and the
    /// `cache_miss` webhook) when there is none.
    pub async fn send_cached(&self, app: &App, conn: &ConnectionHandle, channel: &str) {
        match self.cache.last(&app.config.id, channel).await {
            Ok(Some(frame)) => {
                conn.send(frame);
            }
            Ok(None) => {
                conn.reply(frame::cache_miss(channel)).await;
                self.emit_webhook(app, WebhookEvent::cache_miss(channel));
            }
            Err(e) => tracing::warn!(app = %app.config.id, channel, error = %e, "cache channel's last event not read"),
        }
    }

    /// Something arrived for local subscribers of `channel`.
    pub(super) fn deliver(&self, app_id: &str, channel: &str, inbound: Inbound<'_>, received: Instant) {
        let apps = self.apps.load();
        let Some(app) = apps.by_id(app_id) else { return };
        match inbound {
            Inbound::Broadcast(broadcast) if channel == CONSOLE_CHANNEL => {
                // The console's own entries: to its watchers, outside the app's message metrics.
                app.channels.deliver(channel, &broadcast);
            }
            Inbound::Broadcast(broadcast) => {
                app.fan_out(channel, &broadcast, received);
            }
            Inbound::Laravel(payload) => {
                let Some(broadcast) = laravel_broadcast(app, channel, payload) else {
                    return;
                };
                app.metrics.broadcast(Source::Laravel);
                let delivery = app.fan_out(channel, &broadcast, received);
                self.record(app, || {
                    broadcast_entry(Source::Laravel, channel, &broadcast.frame, Some(delivery.sent))
                });
            }
        }
    }

    /// A Laravel broadcast on a cache channel: kept as the channel's last event.
    pub(super) fn keep_cache_event(&self, app_id: &str, channel: &str, payload: &[u8]) {
        let apps = self.apps.load();
        let Some(app) = apps.by_id(app_id) else { return };
        if let Some(broadcast) = laravel_broadcast(app, channel, payload) {
            self.cache
                .store(&app.config.id, channel, broadcast.frame, app.config.cache_ttl);
        }
    }
}

/// The console's account of a broadcast, read back from its frame (only while the console is watched).
fn broadcast_entry(source: Source, channel: &str, frame: &[u8], delivered_to: Option<usize>) -> ConsoleEvent {
    #[derive(serde::Deserialize)]
    struct Sent<'a> {
        #[serde(borrow)]
        event: std::borrow::Cow<'a, str>,
        #[serde(default)]
        data: Option<Box<serde_json::value::RawValue>>,
    }
    let (event, data) = match serde_json::from_slice::<Sent>(frame) {
        Ok(sent) => {
            let data = match sent.data {
                // A JSON string (what the protocol sends) is shown as its text.
                Some(raw) => serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_owned()),
                None => String::new(),
            };
            (sent.event.into_owned(), data)
        }
        Err(_) => (String::new(), String::new()),
    };
    ConsoleEvent::Broadcast {
        source: source.label(),
        channel: channel.to_owned(),
        event,
        size: data.len(),
        data: console::preview(&data),
        delivered_to,
    }
}

/// Turns a Laravel payload into the broadcast for `channel`: sealed for encrypted channels when the app has
/// a master key, refused (with a warning and a metric) when it has none, since pusher-js would drop the
/// plaintext silently.
fn laravel_broadcast(app: &App, channel: &str, payload: &[u8]) -> Option<Broadcast> {
    let parsed = match std::str::from_utf8(payload).ok().map(LaravelBroadcast::parse) {
        Some(Ok(b)) => b,
        _ => {
            tracing::warn!(app = %app.config.id, channel, "ignored a Redis message that is not a Laravel broadcast");
            app.metrics.dropped("not_laravel");
            return None;
        }
    };
    let frame = if channel.starts_with("private-encrypted-") {
        let Some(master) = &app.config.encryption_master_key else {
            tracing::warn!(
                app = %app.config.id,
                channel,
                "dropped a plaintext Laravel broadcast on an encrypted channel; configure the app's encryption_master_key"
            );
            app.metrics.dropped("encrypted_plaintext");
            return None;
        };
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce).ok()?;
        parsed.to_encrypted_frame(channel, master, nonce)
    } else {
        parsed.to_frame(channel)
    };
    let except = parsed.socket.as_deref().and_then(SocketId::parse_any);
    Some(Broadcast::new(frame, except))
}

#[cfg(test)]
mod tests {
    use super::Source;

    #[test]
    fn each_source_has_its_own_label() {
        let labels = [Source::Api, Source::ClientEvent, Source::Presence, Source::Laravel].map(Source::label);
        assert_eq!(labels, ["api", "client_event", "presence", "laravel"]);
    }
}
