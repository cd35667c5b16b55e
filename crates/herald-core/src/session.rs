//! A session: one client connection's protocol state (its subscriptions, presence memberships, sign-in and
//! rate limits) and the rules for every frame it sends. The server feeds it text frames; it answers
//! through the connection's queue. When the socket ends, [`Session::close`] undoes everything it joined.

use crate::app::App;
use crate::backbone::Broadcast;
use crate::client_event;
use crate::connection::ConnectionHandle;
use crate::node::Node;
use crate::presence;
use crate::presence_store::PresenceError;
use crate::rate_limit::RateLimiter;
use bytes::Bytes;
use herald_protocol::channel::validate_name;
use herald_protocol::frame::{self, ClientFrame, SigninData, SubscribeData, UnsubscribeData};
use herald_protocol::presence_data::Member;
use herald_protocol::{close_code, signature, ChannelKind};
use std::collections::HashMap;
use std::sync::Arc;

/// One subscription of this connection; presence ones remember the member they joined as.
#[derive(Debug)]
struct Subscription {
    member: Option<Member>,
}

/// The protocol state of one connection.
pub struct Session {
    node: Arc<Node>,
    app: Arc<App>,
    conn: Arc<ConnectionHandle>,
    subscriptions: HashMap<String, Subscription>,
    user: Option<Member>,
    messages: RateLimiter,
    client_events: RateLimiter,
}

impl Session {
    pub(crate) fn new(node: Arc<Node>, app: Arc<App>, conn: Arc<ConnectionHandle>) -> Self {
        let messages = RateLimiter::new(node.settings.message_rate, node.settings.message_burst);
        let rate = app.config.client_event_rate;
        Session {
            node,
            app,
            conn,
            subscriptions: HashMap::new(),
            user: None,
            messages,
            client_events: RateLimiter::new(rate, rate),
        }
    }

    pub fn connection(&self) -> &Arc<ConnectionHandle> {
        &self.conn
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Queues `pusher:connection_established`.
    pub fn established(&self) {
        let frame = frame::connection_established(
            self.conn.socket_id.as_str(),
            self.node.settings.activity_timeout.as_secs(),
        );
        self.conn.send_vec(frame);
    }

    async fn refuse(&self, channel: &str, kind: &str, message: &str, status: u16) {
        let reason = match kind {
            "AuthError" => "auth",
            "InvalidChannel" | "InvalidChannelData" => "invalid_channel",
            "LimitReached" if message.starts_with("Presence") => "member_limit",
            "LimitReached" => "limit",
            _ => "unavailable",
        };
        self.app.metrics.rejected(reason);
        tracing::debug!(socket_id = %self.conn.socket_id, channel, message, "subscription refused");
        self.conn
            .reply(frame::subscription_error(channel, kind, message, status))
            .await;
    }

    async fn error(&self, code: u16, message: &str) {
        self.conn.reply(frame::error(code, message)).await;
    }

    /// Handles one text frame from the client.
    pub async fn handle_text(&mut self, text: &str) {
        self.app.metrics.messages_received.inc();
        self.app.metrics.bytes_received.inc_by(text.len() as u64);
        if !self.messages.allow() {
            self.app.metrics.rate_limited("message");
            self.error(close_code::RATE_LIMITED, "Message rejected: too many messages a second")
                .await;
            return;
        }
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!(socket_id = %self.conn.socket_id, error = %e, "invalid client frame");
                self.error(close_code::INVALID_MESSAGE, &e.to_string()).await;
                return;
            }
        };
        let data = frame.data.map(|d| d.get()).unwrap_or("{}");
        match frame.event.as_ref() {
            "pusher:ping" => {
                self.conn.reply(frame::pong()).await;
            }
            "pusher:pong" => {}
            "pusher:subscribe" => match serde_json::from_str::<SubscribeData>(data) {
                Ok(sub) => self.subscribe(sub).await,
                Err(_) => {
                    self.error(
                        close_code::INVALID_MESSAGE,
                        "Invalid pusher:subscribe: data needs a \"channel\" string",
                    )
                    .await
                }
            },
            "pusher:unsubscribe" => match serde_json::from_str::<UnsubscribeData>(data) {
                Ok(unsub) => self.unsubscribe(&unsub.channel).await,
                Err(_) => {
                    self.error(
                        close_code::INVALID_MESSAGE,
                        "Invalid pusher:unsubscribe: data needs a \"channel\" string",
                    )
                    .await
                }
            },
            "pusher:signin" => match serde_json::from_str::<SigninData>(data) {
                Ok(signin) => self.signin(signin).await,
                Err(_) => {
                    self.error(
                        close_code::INVALID_MESSAGE,
                        "Invalid pusher:signin: data needs \"auth\" and \"user_data\"",
                    )
                    .await
                }
            },
            event if event.starts_with("client-") => {
                let channel = frame.channel.as_deref().unwrap_or("");
                self.client_event(event, channel, data).await;
            }
            other => {
                let message = format!("Unknown event {other:?}");
                self.error(close_code::INVALID_MESSAGE, &message).await;
            }
        }
    }

    async fn subscribe(&mut self, sub: SubscribeData<'_>) {
        let channel = sub.channel.as_ref();
        let kind = match validate_name(channel) {
            Ok(kind) => kind,
            Err(e) => return self.refuse(channel, "InvalidChannel", &e.to_string(), 400).await,
        };
        if self.subscriptions.contains_key(channel) {
            return self.resend_succeeded(channel).await;
        }
        if self.subscriptions.len() >= self.app.config.max_channels_per_connection {
            let message = format!(
                "Subscription limit reached: {} channels per connection",
                self.app.config.max_channels_per_connection
            );
            return self.refuse(channel, "LimitReached", &message, 403).await;
        }
        let config = &self.app.config;
        let socket_id = self.conn.socket_id.as_str();
        let mut member = None;
        match kind {
            ChannelKind::Public => {}
            ChannelKind::Private | ChannelKind::PrivateEncrypted => {
                let auth = sub.auth.as_deref().unwrap_or("");
                if !signature::verify_channel(&config.key, &config.secret, socket_id, channel, None, auth) {
                    return self
                        .refuse(
                            channel,
                            "AuthError",
                            "Invalid signature: the auth does not match this socket and channel",
                            401,
                        )
                        .await;
                }
            }
            ChannelKind::Presence => {
                let auth = sub.auth.as_deref().unwrap_or("");
                let parsed = match (sub.channel_data.as_deref(), &self.user) {
                    (Some(data), _) => {
                        if !signature::verify_channel(&config.key, &config.secret, socket_id, channel, Some(data), auth)
                        {
                            return self
                                .refuse(
                                    channel,
                                    "AuthError",
                                    "Invalid signature: the auth does not match this socket, channel and channel_data",
                                    401,
                                )
                                .await;
                        }
                        Member::from_channel_data(data, config.max_member_size)
                    }
                    (None, Some(user)) => {
                        // Signed in (pusher-js 8): the member is the signed-in user, and the app must still
                        // have authorised this socket for this channel.
                        if !signature::verify_channel(&config.key, &config.secret, socket_id, channel, None, auth) {
                            let message = "Invalid signature: the auth does not match this socket and channel";
                            return self.refuse(channel, "AuthError", message, 401).await;
                        }
                        Ok(user.clone())
                    }
                    (None, None) => {
                        return self
                            .refuse(
                                channel,
                                "AuthError",
                                "Presence channels need channel_data (or a signed-in connection)",
                                401,
                            )
                            .await
                    }
                };
                match parsed {
                    Ok(m) => member = Some(m),
                    Err(e) => return self.refuse(channel, "InvalidChannelData", &e.to_string(), 400).await,
                }
            }
            ChannelKind::ServerToUser => {
                let allowed = self
                    .user
                    .as_ref()
                    .is_some_and(|u| channel == format!("#server-to-user-{}", u.user_id));
                if !allowed {
                    return self
                        .refuse(
                            channel,
                            "AuthError",
                            "Only the connection signed in as this user may subscribe",
                            401,
                        )
                        .await;
                }
            }
        }

        // Presence first, then the channel: a connection must not hear member_added about its own user from
        // another tab of it that joins at the same moment (a joiner on another node within the backbone's
        // subscribe round trip may be missed instead; see docs/architecture.md).
        let presence_data = match &member {
            Some(m) => match presence::join(&self.node, &self.app, &self.conn, channel, m).await {
                Ok(data) => Some(data),
                Err(PresenceError::MemberLimit(n)) => {
                    let message = format!("Presence channel is full: {n} members");
                    return self.refuse(channel, "LimitReached", &message, 403).await;
                }
                Err(e) => {
                    tracing::warn!(channel, error = %e, "presence join failed");
                    return self
                        .refuse(channel, "ServiceUnavailable", "Presence is unavailable, try again", 503)
                        .await;
                }
            },
            None => None,
        };
        let (backbone, stats) = (&self.node.backbone, &self.node.stats);
        let metrics = &self.app.metrics;
        let ready = self.app.channels.add(channel, &self.conn, || {
            metrics.channels.inc();
            stats.local_transition(&config.id, channel, true);
            backbone.subscribe(config, channel)
        });
        metrics.subscriptions.inc();
        let counted = self.node.stats.subscriptions_changed(&config.id, channel, 1);
        tokio::join!(ready, counted);
        self.subscriptions.insert(channel.to_owned(), Subscription { member });
        let data = presence_data.as_deref().unwrap_or("{}");
        self.conn.reply(frame::subscription_succeeded(channel, data)).await;
        if herald_protocol::channel::is_cache(channel) {
            self.send_cached(channel).await;
        }
    }

    /// A cache channel's last event, or `pusher:cache_miss` (and the `cache_miss` webhook) when there is none.
    async fn send_cached(&self, channel: &str) {
        match self.node.cache.last(&self.app.config.id, channel).await {
            Ok(Some(frame)) => {
                self.conn.send(frame);
            }
            Ok(None) => {
                self.conn.reply(frame::cache_miss(channel)).await;
                self.node
                    .webhooks
                    .emit(&self.app, crate::webhook::WebhookEvent::cache_miss(channel));
            }
            Err(e) => tracing::warn!(channel, error = %e, "cache channel's last event not read"),
        }
    }

    async fn resend_succeeded(&self, channel: &str) {
        let data = match self.subscriptions.get(channel).and_then(|s| s.member.as_ref()) {
            Some(_) => match self.node.presence.members(&self.app.config.id, channel).await {
                Ok(members) => herald_protocol::presence_data::subscription_data(&members),
                Err(_) => return,
            },
            None => "{}".to_owned(),
        };
        self.conn.reply(frame::subscription_succeeded(channel, &data)).await;
    }

    async fn unsubscribe(&mut self, channel: &str) {
        if let Some(sub) = self.subscriptions.remove(channel) {
            self.leave(channel, sub).await;
        }
    }

    async fn leave(&self, channel: &str, sub: Subscription) {
        let (backbone, stats) = (&self.node.backbone, &self.node.stats);
        let config = &self.app.config;
        let metrics = &self.app.metrics;
        metrics.subscriptions.dec();
        self.app.channels.remove(channel, &self.conn.socket_id, || {
            metrics.channels.dec();
            stats.local_transition(&config.id, channel, false);
            backbone.unsubscribe(config, channel)
        });
        // Counted without waiting: an unsubscribe that arrives late only delays `channel_vacated`.
        drop(self.node.stats.subscriptions_changed(&config.id, channel, -1));
        if let Some(member) = sub.member {
            presence::leave(&self.node, &self.app, &self.conn, channel, &member.user_id).await;
        }
    }

    /// Takes the connection off its signed-in user's internal channel.
    fn leave_user_channel(&self) {
        if let Some(user) = &self.user {
            let channel = crate::backbone::user_channel(&user.user_id);
            let (backbone, config) = (&self.node.backbone, &self.app.config);
            self.app.channels.remove(&channel, &self.conn.socket_id, || {
                backbone.unsubscribe(config, &channel)
            });
        }
    }

    /// True once the connection signed in (`pusher:signin`).
    pub fn signed_in(&self) -> bool {
        self.user.is_some()
    }

    async fn signin(&mut self, signin: SigninData<'_>) {
        let config = &self.app.config;
        if !signature::verify_user(
            &config.key,
            &config.secret,
            self.conn.socket_id.as_str(),
            &signin.user_data,
            &signin.auth,
        ) {
            return self
                .error(close_code::UNAUTHORIZED, "Invalid signature for pusher:signin")
                .await;
        }
        match Member::from_user_data(&signin.user_data, config.max_member_size) {
            Ok(member) => {
                self.leave_user_channel();
                let channel = crate::backbone::user_channel(&member.user_id);
                let backbone = &self.node.backbone;
                self.app
                    .channels
                    .add(&channel, &self.conn, || backbone.subscribe(config, &channel))
                    .await;
                self.user = Some(member);
                self.conn.reply(frame::signin_success(&signin.user_data)).await;
            }
            Err(e) => {
                self.error(close_code::UNAUTHORIZED, &format!("Invalid user_data: {e}"))
                    .await
            }
        }
    }

    async fn client_event(&mut self, event: &str, channel: &str, data: &str) {
        let subscription = self.subscriptions.get(channel);
        if let Err(refusal) = client_event::check(self.app.config.client_events, channel, subscription.is_some()) {
            return self.error(refusal.code, &refusal.message).await;
        }
        if !self.client_events.allow() {
            self.app.metrics.rate_limited("client_event");
            let refusal = client_event::rate_limited(self.app.config.client_event_rate);
            return self.error(refusal.code, &refusal.message).await;
        }
        let user_id = subscription.and_then(|s| s.member.as_ref()).map(|m| m.user_id.as_str());
        let frame = client_event::relay_frame(event, channel, data, user_id);
        let broadcast = Broadcast {
            frame: Bytes::from(frame),
            except: Some(self.conn.socket_id.clone()),
        };
        let hook =
            crate::webhook::WebhookEvent::client_event(channel, event, data, self.conn.socket_id.as_str(), user_id);
        self.node.webhooks.emit(&self.app, hook);
        self.app.metrics.client_events.inc();
        self.app.metrics.broadcast("client_event");
        if let Err(e) = self.node.publish(&self.app, channel, broadcast).await {
            tracing::warn!(channel, error = %e, "client event not published");
        }
    }

    /// Ends the session of a node that is draining: the connection stops receiving at once, but its
    /// presence entries stay for `grace`, so a user who reconnects to another node meanwhile is never seen
    /// to leave and come back.
    pub async fn close_with_grace(mut self, grace: std::time::Duration) {
        self.leave_user_channel();
        let mut presence = Vec::new();
        for (channel, sub) in std::mem::take(&mut self.subscriptions) {
            let member = sub.member.clone();
            self.leave(&channel, Subscription { member: None }).await;
            if let Some(member) = member {
                presence.push((channel, member));
            }
        }
        if !presence.is_empty() {
            tokio::time::sleep(grace).await;
            for (channel, member) in presence {
                presence::leave(&self.node, &self.app, &self.conn, &channel, &member.user_id).await;
            }
        }
        self.node.disconnected(&self.app);
    }

    /// Ends the session: leaves every channel (presence included) and forgets the connection.
    pub async fn close(mut self) {
        self.leave_user_channel();
        let subscriptions: Vec<_> = self.subscriptions.drain().collect();
        for (channel, sub) in subscriptions {
            self.leave(&channel, sub).await;
        }
        self.node.disconnected(&self.app);
    }
}
