//! One socket.io client from connect to close: admitted like a pusher-js client (the app's origins and
//! connection quota, refused while the node drains), then its packets read in order and carried out through
//! the core's [`Session`], which owns the client's channels and presence and undoes them at the end.
//!
//! What Echo's socket.io connector sends, and what it means (laravel-echo-server's semantics):
//! - `subscribe` `{channel, auth: {headers}}`: public channels at once; `private-` and `presence-` channels
//!   after the app's auth URL says yes to a POST of `channel_name`, carrying the client's `Cookie` (from
//!   its handshake), the headers Echo passes in `auth.headers`, and `X-Requested-With: XMLHttpRequest`;
//!   only the app's `auth_headers` are passed on. A refusal is `subscription_error` `(channel, status)`.
//! - `unsubscribe` `{channel}`.
//! - `client event` `{channel, event, data}`: a whisper, under the same rules as pusher-js's.

use super::engine::Link;
use super::writer::{self, Shown, Stopped};
use super::Context;
use crate::auth_proxy;
use bytes::Bytes;
use engineioxide::socket::{DisconnectReason, Socket};
use engineioxide::{ProtocolVersion, Str};
use herald_core::connection::Protocol;
use herald_core::{App, Refusal, Session};
use herald_protocol::channel::{validate_name, ChannelKind};
use herald_protocol::presence_data::Member;
use herald_protocol::socketio::{self, ClientPacket};
use herald_protocol::SocketId;
use hyper::header::HeaderValue;
use hyper::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// `subscribe` and `unsubscribe`'s argument.
#[derive(Deserialize)]
struct ChannelRequest<'a> {
    #[serde(borrow)]
    channel: std::borrow::Cow<'a, str>,
    #[serde(default)]
    auth: Option<AuthOptions>,
}

#[derive(Deserialize, Default)]
struct AuthOptions {
    #[serde(default)]
    headers: std::collections::HashMap<String, serde_json::Value>,
}

/// `client event`'s argument.
#[derive(Deserialize)]
struct ClientEvent<'a> {
    #[serde(borrow)]
    channel: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// The socket.io side of a session.
struct Client {
    context: Context,
    socket: Arc<Socket<Link>>,
    session: Session,
    shown: Shown,
    /// The client joined the default namespace.
    joined: bool,
}

/// How long a socket.io 4.x client has to join the namespace after its Engine.IO handshake (socket.io's own
/// connect timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);

/// Why a client is being let go on the node's initiative.
#[derive(Debug, Clone, Copy)]
enum Leaving {
    Drain,
    Isolated,
}

/// Serves one socket.io client until it leaves, the node lets it go, or it falls behind.
pub async fn run(context: Context, socket: Arc<Socket<Link>>, mut inbox: mpsc::Receiver<Str>) {
    let Some(app) = admit(&context, &socket).await else {
        return;
    };
    let Some(seat) = context.node.take_seat(&app).await else {
        let message = format!(
            "Over the connection quota ({})",
            app.config.max_connections.unwrap_or(0)
        );
        context.node.connection_refused(&app, 4004, &message);
        return refuse(&socket, &message);
    };
    let socket_id = socket_id(&socket);
    let guard = context.connections.enter();
    let disabled = app.disabled();
    let (session, rx) = Session::open_speaking(context.node.clone(), app, seat, Protocol::SocketIo, socket_id.clone());
    // socket.io 2.x clients are joined to the default namespace unasked; later ones ask with `0`.
    if socket.protocol == ProtocolVersion::V3 {
        session.connection().reply("0").await;
    }
    let shown = Shown::default();
    let conn = session.connection().clone();
    let mut writer = tokio::spawn(writer::write(socket.clone(), conn, rx, shown.clone()));
    let mut client = Client {
        context: context.clone(),
        socket: socket.clone(),
        session,
        shown,
        // socket.io 2.x clients are joined unasked.
        joined: socket.protocol == ProtocolVersion::V3,
    };
    let mut draining = context.connections.draining();
    let mut isolated = context.connections.isolated();
    // When this client is to be let go, and why (spread over the drain window by its id, as WebSockets are).
    let spread = crate::websocket::drain_delay(socket_id.as_str(), context.drain.window);
    let mut leave_at: Option<(tokio::time::Instant, Leaving)> = None;
    if *isolated.borrow_and_update() {
        leave_at = Some((tokio::time::Instant::now() + spread, Leaving::Isolated));
    }
    if *disabled.borrow() {
        isolated.mark_changed();
    }
    let mut watching_isolation = true;
    let mut drained = false;
    let connect_by = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    let reason = loop {
        let wake_at = leave_at.map_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600), |(at, _)| at);
        tokio::select! {
            packet = inbox.recv() => match packet {
                Some(packet) => {
                    socket.data.taken(packet.as_str().len());
                    // Boxed: handling (an auth call among it) is large and brief; the idle client's task
                    // keeps no room for it.
                    if !Box::pin(client.handle(packet.as_str())).await {
                        break "client left";
                    }
                }
                None => break "closed",
            },
            stopped = &mut writer => {
                if let Ok(Stopped::TooSlow) = stopped {
                    client.session.app().metrics.slow_client_disconnects.inc();
                    tracing::debug!(sid = %socket.id, "socket.io client too slow; closed");
                    break "too slow: the queue filled";
                }
                break "closed";
            }
            _ = socket.closed() => break "closed",
            // A socket.io 4.x client joins the namespace at once; one that never does holds a seat for
            // nothing (or its transport died before Engine.IO could say so).
            _ = tokio::time::sleep_until(connect_by), if !client.joined => {
                break "no namespace join in time";
            }
            _ = async { drop(draining.wait_for(|d| *d).await) }, if !matches!(leave_at, Some((_, Leaving::Drain))) => {
                leave_at = Some((tokio::time::Instant::now() + spread, Leaving::Drain));
            }
            changed = isolated.changed(), if watching_isolation => {
                watching_isolation = changed.is_ok();
                // The same signal wakes the client when a reload disabled or removed its app.
                if *disabled.borrow() {
                    break "app disabled";
                }
                let now_isolated = *isolated.borrow_and_update();
                match leave_at {
                    None if now_isolated => leave_at = Some((tokio::time::Instant::now() + spread, Leaving::Isolated)),
                    Some((_, Leaving::Isolated)) if !now_isolated => leave_at = None,
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(wake_at), if leave_at.is_some() => {
                match leave_at {
                    Some((_, Leaving::Isolated)) if context.node.not_ready().is_none() => {
                        // The link came back just now: look again shortly.
                        leave_at = Some((tokio::time::Instant::now() + Duration::from_millis(200), Leaving::Isolated));
                    }
                    // Closing the transport makes socket.io clients reconnect, to another node.
                    Some((_, Leaving::Isolated)) => break "node isolated from Redis",
                    _ => {
                        drained = true;
                        break "node draining";
                    }
                }
            }
        }
    };
    socket.close(DisconnectReason::ClosingServer);
    if !writer.is_finished() {
        writer.abort();
    }
    match drained {
        true => client.session.close_with_grace(context.drain.grace, reason).await,
        false => client.session.close_because(reason).await,
    }
    drop(guard);
}

/// The id Echo's `socketId()` returns, and Laravel's `toOthers()` names. socket.io 2.x clients take the
/// Engine.IO session id; later ones get the id of the namespace join, which is made apart from it here, so
/// the one that opens the polling session is never handed to the app (and its logs and broadcasts).
fn socket_id(socket: &Socket<Link>) -> SocketId {
    use base64::Engine;
    let text = match socket.protocol {
        ProtocolVersion::V3 => socket.id.to_string(),
        ProtocolVersion::V4 => {
            let mut bytes = [0u8; 15];
            getrandom::getrandom(&mut bytes).expect("the system's random source");
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        }
    };
    SocketId::socketio(&text).expect("base64url ids are socket.io ids")
}

/// The app a new client belongs to, when it may connect; otherwise the client is told why and closed. (A
/// node that drains or lost Redis refuses the handshake itself, with 503, so the client retries elsewhere.)
async fn admit(context: &Context, socket: &Socket<Link>) -> Option<Arc<App>> {
    let Some(app) = context.node.app_by_id(&context.app_id) else {
        tracing::warn!(app_id = %context.app_id, "a socket.io client was refused: HERALD_SOCKETIO_APP names no configured app");
        refuse(socket, "No app serves socket.io here");
        return None;
    };
    if !app.config.enabled {
        refuse(socket, "App disabled");
        return None;
    }
    if app.config.signin_timeout.is_some() {
        let message = "This app requires sign-in (signin_timeout), which socket.io clients cannot do";
        context.node.connection_refused(&app, 4009, message);
        refuse(socket, message);
        return None;
    }
    let headers = &socket.req_parts.headers;
    let origin = headers.get("origin").and_then(|v| v.to_str().ok());
    if !super::origin_permitted(&app, origin, headers) {
        let message = format!("Origin {} not allowed", origin.unwrap_or("(none)"));
        tracing::info!(app = %app.config.id, origin, "socket.io client refused: list its site in allowed_origins (HERALD_ALLOWED_ORIGINS)");
        context.node.connection_refused(&app, 4009, &message);
        refuse(socket, &message);
        return None;
    }
    Some(app)
}

/// Tells a client why it cannot stay (socket.io's error packet), then closes it. socket.io 4.x clients do not
/// retry after this; refusals worth retrying are answered on the handshake instead (`SocketIo::refused`).
fn refuse(socket: &Socket<Link>, message: &str) {
    let modern = socket.protocol == ProtocolVersion::V4;
    let _ = socket.emit(Str::from(socketio::connect_error("/", modern, message)));
    socket.close(DisconnectReason::ClosingServer);
}

impl Client {
    /// Handles one packet; false when the client left.
    async fn handle(&mut self, text: &str) -> bool {
        if !self.session.message_in(text.len()) {
            tracing::debug!(sid = %self.socket.id, "socket.io packet dropped: over the message rate");
            return true;
        }
        let packet = match socketio::parse(text) {
            Ok(packet) => packet,
            Err(e) => {
                tracing::debug!(sid = %self.socket.id, error = %e, "socket.io packet ignored");
                return true;
            }
        };
        match packet {
            ClientPacket::Connect { namespace: "/" } => {
                self.joined = true;
                let conn = self.session.connection();
                conn.reply(socketio::connected(conn.socket_id.as_str())).await;
            }
            ClientPacket::Connect { namespace } => {
                let modern = self.socket.protocol == ProtocolVersion::V4;
                let message = "Only the default namespace \"/\" is served";
                let refused = socketio::connect_error(namespace, modern, message);
                self.session.connection().reply(refused).await;
            }
            ClientPacket::Disconnect => return false,
            ClientPacket::Event { name, args, ack } => {
                let arg = args.first().map(|a| a.get()).unwrap_or("null");
                match name.as_str() {
                    "subscribe" => self.subscribe(arg).await,
                    "unsubscribe" => {
                        if let Ok(request) = serde_json::from_str::<ChannelRequest>(arg) {
                            self.session.unsubscribe(&request.channel).await;
                            self.shown
                                .lock()
                                .expect("shown members")
                                .remove(request.channel.as_ref());
                        }
                    }
                    "client event" => self.client_event(arg).await,
                    other => tracing::debug!(sid = %self.socket.id, event = other, "socket.io event ignored"),
                }
                // Through the queue, after every answer the event caused.
                if let Some(id) = ack {
                    self.session.connection().reply(socketio::ack(id, "")).await;
                }
            }
            ClientPacket::Unsupported(kind) => {
                tracing::debug!(sid = %self.socket.id, kind = %kind, "socket.io packet type ignored")
            }
        }
        true
    }

    async fn subscribe(&mut self, arg: &str) {
        let Ok(request) = serde_json::from_str::<ChannelRequest>(arg) else {
            tracing::debug!(sid = %self.socket.id, "socket.io subscribe without a channel ignored");
            return;
        };
        let channel = request.channel.as_ref();
        if self.session.is_subscribed(channel) {
            return;
        }
        let kind = match validate_name(channel) {
            Ok(kind) => kind,
            Err(e) => return self.session.refuse(channel, Refusal::InvalidChannel(e)).await,
        };
        if let Some(refusal) = self.session.over_channel_limit() {
            return self.session.refuse(channel, refusal).await;
        }
        match kind {
            ChannelKind::Public => self.session.join(channel, None).await,
            ChannelKind::Private | ChannelKind::Presence => {
                if self.socket.is_closed() {
                    // Gone already: no call to the app for a subscription nobody will hold.
                    return;
                }
                let asked = self.ask_app(channel, request.auth.unwrap_or_default()).await;
                if self.socket.is_closed() {
                    // Gone while the app answered: joining now would only announce a member who left.
                    return;
                }
                match asked {
                    Ok(member) => self.session.join(channel, member).await,
                    Err(refusal) => self.session.refuse(channel, refusal).await,
                }
            }
            // A user's own channel needs pusher:signin, and encrypted channels a key Echo's socket.io
            // connector cannot use.
            _ => self.session.refuse(channel, Refusal::NotThisUser).await,
        }
    }

    /// Asks the app's auth URL whether this client may have `channel`, as laravel-echo-server did; the
    /// member it is there as on presence channels.
    async fn ask_app(&self, channel: &str, auth: AuthOptions) -> Result<Option<Member>, Refusal> {
        let app = self.session.app().clone();
        let Some(url) = app.config.auth_url.clone() else {
            tracing::warn!(app = %app.config.id, channel, "a socket.io client asked for a private channel, and no auth URL is configured: set HERALD_AUTH_URL (auth_url) to Laravel's /broadcasting/auth");
            return Err(Refusal::NoAuthUrl);
        };
        // What the browser sent on the handshake, which page script cannot forge, always wins; Echo's
        // `auth.headers` add to it (Authorization, X-CSRF-TOKEN; a Cookie only when the handshake had none).
        let mut headers = HeaderMap::new();
        for name in ["cookie", "user-agent", "origin", "referer"] {
            if let Some(value) = self.socket.req_parts.headers.get(name) {
                headers.insert(name, value.clone());
            }
        }
        for (name, value) in &auth.headers {
            let lower = name.to_ascii_lowercase();
            if headers.contains_key(lower.as_str())
                || matches!(
                    lower.as_str(),
                    "origin" | "referer" | "user-agent" | "host" | "x-socket-id"
                )
            {
                continue;
            }
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) else {
                continue;
            };
            headers.insert(name, value);
        }
        if let Ok(id) = HeaderValue::from_str(self.session.connection().socket_id.as_str()) {
            headers.insert("x-socket-id", id);
        }
        headers.insert("x-requested-with", HeaderValue::from_static("XMLHttpRequest"));
        headers.insert("accept", HeaderValue::from_static("application/json"));
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("channel_name", channel)
            .finish();
        let content_type = "application/x-www-form-urlencoded";
        let granted = auth_proxy::ask_app(
            &self.context.app_client,
            &app,
            &url,
            &headers,
            content_type,
            Bytes::from(body),
        )
        .await
        .map_err(|(status, _)| Refusal::AppRefused(status.as_u16()))?;
        grant(&app, channel, granted)
    }

    async fn client_event(&mut self, arg: &str) {
        let Ok(event) = serde_json::from_str::<ClientEvent>(arg) else {
            tracing::debug!(sid = %self.socket.id, "socket.io client event without channel and event ignored");
            return;
        };
        if !event.event.starts_with("client-") {
            tracing::debug!(sid = %self.socket.id, event = %event.event, "socket.io client event not named client-*; ignored");
            return;
        }
        let data = event.data.map(|d| d.get()).unwrap_or("null");
        self.session.client_event(&event.event, &event.channel, data).await;
    }
}

/// Reads the app's yes: `true` for a private channel, `{"channel_data": {user_id, user_info}}` (an object,
/// or a JSON string as the pusher driver sends it) for a presence channel.
fn grant(app: &App, channel: &str, granted: serde_json::Value) -> Result<Option<Member>, Refusal> {
    let presence = channel.starts_with("presence-");
    let channel_data = auth_proxy::channel_data(&granted);
    let yes = granted == serde_json::Value::Bool(true) || granted.get("auth").is_some() || channel_data.is_some();
    if !yes {
        return Err(Refusal::AppRefused(403));
    }
    if !presence {
        return Ok(None);
    }
    let Some(data) = channel_data else {
        return Err(Refusal::NoChannelData);
    };
    Member::from_channel_data(&data, app.config.max_member_size)
        .map(Some)
        .map_err(Refusal::InvalidChannelData)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_apps_yes_as_laravel_gives_it() {
        let app = App::new(herald_core::AppConfig::new("a", "k", "s"));
        assert_eq!(grant(&app, "private-a", serde_json::json!(true)), Ok(None));
        assert_eq!(
            grant(&app, "private-a", serde_json::json!(false)),
            Err(Refusal::AppRefused(403))
        );
        let member = grant(
            &app,
            "presence-a",
            serde_json::json!({"channel_data": {"user_id": 7, "user_info": {"name": "Ada"}}}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(member.user_id, "7");
        let member = grant(
            &app,
            "presence-a",
            serde_json::json!({"auth": "k:x", "channel_data": "{\"user_id\":\"8\"}"}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(member.user_id, "8");
        assert_eq!(
            grant(&app, "presence-a", serde_json::json!(true)),
            Err(Refusal::NoChannelData)
        );
    }
}
