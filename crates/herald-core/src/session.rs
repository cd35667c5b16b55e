//! A session: one client connection's protocol state (its subscriptions, presence memberships, sign-in and
//! rate limits). It parses what the client sends, applies the pure rules (`authorize`, `client_event`), and
//! asks the [`Node`] to carry them out; it answers the client through the connection's queue. When the
//! socket ends, [`Session::close`] undoes everything it joined.

use crate::app::App;
use crate::authorize::authorize;
use crate::client_event;
use crate::connection::{ConnectionHandle, Protocol};
use crate::node::{Node, Seat};
use crate::rate_limit::RateLimiter;
use crate::refusal::Refusal;
use herald_protocol::frame::{self, ClientFrame, SigninData, SubscribeData, UnsubscribeData};
use herald_protocol::presence_data::Member;
use herald_protocol::{close_code, signature, SocketId};
use std::collections::HashMap;
use std::sync::Arc;

/// The protocol state of one connection.
pub struct Session {
    node: Arc<Node>,
    app: Arc<App>,
    conn: Arc<ConnectionHandle>,
    /// Channel name to the presence member this connection joined it as (None off presence channels).
    /// Channel -> the member it is there as (presence). Boxed: most connections hold one or two public
    /// channels, and each slot of the table is paid for by every connection.
    subscriptions: HashMap<Box<str>, Option<Box<Member>>>,
    user: Option<Member>,
    messages: RateLimiter,
    client_events: RateLimiter,
    /// The node's reload count when `app` was last looked up.
    generation: u64,
}

impl Session {
    /// A new connection to `app` in its `seat` (see [`Node::take_seat`]): its session and the queue its
    /// socket writer drains.
    pub fn open(node: Arc<Node>, app: Arc<App>, seat: Seat) -> (Session, crate::outbound_queue::Receiver) {
        let (conn, rx) = node.connect(&app, seat);
        Self::with_connection(node, app, conn, rx)
    }

    /// A session for a client speaking `protocol` as `socket_id` (a socket.io client: see
    /// [`Node::connect_speaking`]). Its answers are queued as Pusher frames, which its writer translates.
    pub fn open_speaking(
        node: Arc<Node>,
        app: Arc<App>,
        seat: Seat,
        protocol: Protocol,
        socket_id: SocketId,
    ) -> (Session, crate::outbound_queue::Receiver) {
        let (conn, rx) = node.connect_speaking(&app, seat, protocol, socket_id);
        Self::with_connection(node, app, conn, rx)
    }

    fn with_connection(
        node: Arc<Node>,
        app: Arc<App>,
        conn: Arc<ConnectionHandle>,
        rx: crate::outbound_queue::Receiver,
    ) -> (Session, crate::outbound_queue::Receiver) {
        let settings = node.settings();
        let messages = RateLimiter::new(settings.message_rate, settings.message_burst);
        let rate = app.config.client_event_rate;
        let generation = node.generation();
        let session = Session {
            generation,
            node,
            app,
            conn,
            subscriptions: HashMap::new(),
            user: None,
            messages,
            client_events: RateLimiter::new(rate, rate),
        };
        (session, rx)
    }

    pub fn connection(&self) -> &Arc<ConnectionHandle> {
        &self.conn
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// After a reload, the app's current settings (same channels and connections); a removed app keeps its
    /// last settings until the connection closes.
    fn follow_reload(&mut self) {
        let generation = self.node.generation();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        // Only the same app with new settings (the same channels); an app removed and added again is
        // another app, which this connection never joined.
        let Some(app) = self
            .node
            .app_by_id(&self.app.config.id)
            .filter(|app| Arc::ptr_eq(&app.channels, &self.app.channels))
        else {
            return;
        };
        if app.config.client_event_rate != self.app.config.client_event_rate {
            let rate = app.config.client_event_rate;
            self.client_events = RateLimiter::new(rate, rate);
        }
        self.app = app;
    }

    /// Queues `pusher:connection_established`.
    pub fn established(&self) {
        let frame = frame::connection_established(
            self.conn.socket_id.as_str(),
            self.node.settings().activity_timeout.as_secs(),
        );
        self.conn.send_vec(frame);
    }

    /// Refuses a subscription: counted, shown in the console, and `pusher:subscription_error` to the client.
    pub async fn refuse(&self, channel: &str, refusal: Refusal) {
        self.node.subscription_refused(&self.app, &self.conn, channel, &refusal);
        let message = refusal.to_string();
        tracing::debug!(socket_id = %self.conn.socket_id, channel, message, "subscription refused");
        let frame = frame::subscription_error(channel, refusal.error_type(), &message, refusal.status());
        self.conn.reply(frame).await;
    }

    async fn error(&self, code: u16, message: &str) {
        self.conn.reply(frame::error(code, message)).await;
    }

    /// Counts a message of `len` bytes from the client; false when it is over its message rate (counted).
    pub fn message_in(&mut self, len: usize) -> bool {
        self.follow_reload();
        self.app.metrics.messages_received.inc();
        self.app.metrics.bytes_received.inc_by(len as u64);
        if !self.messages.allow() {
            self.app.metrics.rate_limited("message");
            return false;
        }
        true
    }

    /// Handles one text frame from the client.
    pub async fn handle_text(&mut self, text: &str) {
        if !self.message_in(text.len()) {
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
        if self.subscriptions.contains_key(channel) {
            return self.resend_succeeded(channel).await;
        }
        let socket_id = self.conn.socket_id.as_str();
        let authorized = match authorize(&self.app.config, socket_id, self.user.as_ref(), &sub) {
            Ok(authorized) => authorized,
            Err(refusal) => return self.refuse(channel, refusal).await,
        };
        self.join(channel, authorized.member).await
    }

    /// The refusal for one more channel when the connection is on as many as the app allows.
    pub fn over_channel_limit(&self) -> Option<Refusal> {
        let limit = self.app.config.max_channels_per_connection;
        (self.subscriptions.len() >= limit).then_some(Refusal::TooManyChannels(limit))
    }

    /// True when the connection is on `channel`.
    pub fn is_subscribed(&self, channel: &str) -> bool {
        self.subscriptions.contains_key(channel)
    }

    /// Subscribes to `channel`, authorised already (on presence channels as `member`), within the
    /// connection's channel limit; the client hears `subscription_succeeded` or the refusal.
    pub async fn join(&mut self, channel: &str, member: Option<Member>) {
        if let Some(refusal) = self.over_channel_limit() {
            return self.refuse(channel, refusal).await;
        }
        let subscribed = self.node.subscribe(&self.app, &self.conn, channel, member.as_ref());
        if let Err(refusal) = subscribed.await {
            return self.refuse(channel, refusal).await;
        }
        self.subscriptions.insert(channel.into(), member.map(Box::new));
        if herald_protocol::channel::is_cache(channel) {
            self.node.send_cached(&self.app, &self.conn, channel).await;
        }
    }

    /// A repeated subscribe to a channel the connection is on: `subscription_succeeded` again, as Pusher does.
    async fn resend_succeeded(&self, channel: &str) {
        let data = match self.subscriptions.get(channel) {
            Some(Some(_)) => match self.node.members(&self.app, channel).await {
                Ok(members) => herald_protocol::presence_data::subscription_data(&members),
                Err(_) => return,
            },
            _ => "{}".to_owned(),
        };
        self.conn.reply(frame::subscription_succeeded(channel, &data)).await;
    }

    /// Leaves `channel` (and its presence) when the connection is on it.
    pub async fn unsubscribe(&mut self, channel: &str) {
        if let Some(member) = self.subscriptions.remove(channel) {
            self.node
                .unsubscribe(&self.app, &self.conn, channel, member.as_deref())
                .await;
        }
    }

    /// True once the connection signed in (`pusher:signin`).
    pub fn signed_in(&self) -> bool {
        self.user.is_some()
    }

    async fn signin(&mut self, signin: SigninData<'_>) {
        let config = &self.app.config;
        let socket_id = self.conn.socket_id.as_str();
        let signed = config
            .secrets()
            .any(|secret| signature::verify_user(&config.key, secret, socket_id, &signin.user_data, &signin.auth));
        if !signed {
            return self
                .error(close_code::UNAUTHORIZED, "Invalid signature for pusher:signin")
                .await;
        }
        let member = match Member::from_user_data(&signin.user_data, config.max_member_size) {
            Ok(member) => member,
            Err(e) => {
                return self
                    .error(close_code::UNAUTHORIZED, &format!("Invalid user_data: {e}"))
                    .await
            }
        };
        if let Some(previous) = self.sign_out() {
            // Signed in as someone else now: the previous user's own channel is not this connection's any more.
            if previous.user_id != member.user_id {
                let stale = format!("#server-to-user-{}", previous.user_id);
                self.unsubscribe(&stale).await;
            }
        }
        self.node.signed_in(&self.app, &self.conn, &member).await;
        self.user = Some(member);
        self.conn.reply(frame::signin_success(&signin.user_data)).await;
    }

    /// Takes the connection off its signed-in user's internal channel; returns the user it was signed in as.
    fn sign_out(&mut self) -> Option<Member> {
        let user = self.user.take()?;
        self.node.signed_out(&self.app, &self.conn, &user);
        Some(user)
    }

    /// A client event (`client-*`) on `channel`; `data` is raw JSON. Refusals are `pusher:error` frames.
    pub async fn client_event(&mut self, event: &str, channel: &str, data: &str) {
        let subscription = self.subscriptions.get(channel);
        if let Err(refusal) = client_event::check(self.app.config.client_events, channel, subscription.is_some()) {
            return self.error(refusal.code, &refusal.message).await;
        }
        if !self.client_events.allow() {
            self.app.metrics.rate_limited("client_event");
            let refusal = client_event::rate_limited(self.app.config.client_event_rate);
            return self.error(refusal.code, &refusal.message).await;
        }
        let user_id = subscription.and_then(|m| m.as_deref()).map(|m| m.user_id.as_str());
        self.node
            .client_event(&self.app, &self.conn, channel, event, data, user_id)
            .await;
    }

    /// Ends the session of a node that is draining: the connection stops receiving at once, but its
    /// presence entries stay for `grace`, so a user who reconnects to another node meanwhile is never seen
    /// to leave and come back.
    pub async fn close_with_grace(mut self, grace: std::time::Duration, reason: &str) {
        self.sign_out();
        let mut presence = Vec::new();
        for (channel, member) in std::mem::take(&mut self.subscriptions) {
            self.node.leave_channel(&self.app, &self.conn, &channel);
            if let Some(member) = member {
                presence.push((channel, member));
            }
        }
        if !presence.is_empty() {
            tokio::time::sleep(grace).await;
            for (channel, member) in presence {
                self.node
                    .leave_presence(&self.app, &self.conn, &channel, &member.user_id)
                    .await;
            }
        }
        self.node.disconnected(&self.app, &self.conn, reason);
    }

    /// Ends the session: leaves every channel (presence included) and forgets the connection.
    pub async fn close(self) {
        self.close_because("closed").await
    }

    /// [`Session::close`], saying why the connection ended (shown in the console).
    pub async fn close_because(mut self, reason: &str) {
        self.sign_out();
        for (channel, member) in std::mem::take(&mut self.subscriptions) {
            self.node
                .unsubscribe(&self.app, &self.conn, &channel, member.as_deref())
                .await;
        }
        self.node.disconnected(&self.app, &self.conn, reason);
    }
}
