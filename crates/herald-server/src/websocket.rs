//! One WebSocket connection: the handshake checks (app key, protocol version), then a reader that feeds the
//! session and a writer that drains the connection's bounded queue (where the node's keepalive sweep,
//! `keepalive.rs`, queues its pings). Whatever ends first ends both, and the session then leaves every channel.

use crate::frame_writer::{self, FrameWriter};
use crate::keepalive::{Activity, Keepalive};
use crate::log_every::LogEvery;
use bytes::Bytes;
use fastwebsockets::{Frame, Payload, WebSocket};
use herald_core::connection::{ConnectionHandle, Outbound, OVERFLOW_REASON};
use herald_core::{App, Node, Seat};
use herald_protocol::{close_code, frame};
use herald_server::frame_reader::{FrameReader, Message, ReadError};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;

type Socket = WebSocket<TokioIo<Upgraded>>;

/// RFC 6455 close codes for a broken protocol and for a text message that is not UTF-8.
const PROTOCOL_ERROR: u16 = 1002;
const INVALID_PAYLOAD: u16 = 1007;

/// Longest time one frame may take to reach a client before it is dropped as stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Protocol versions pusher-js and the other Pusher clients speak that Herald serves.
const PROTOCOLS: std::ops::RangeInclusive<u32> = 5..=7;

/// Whether a new connection may stay: the app exists, the protocol version is spoken, the origin is allowed
/// and the app is under its connection limit. Pusher reports refusals as a `pusher:error` and a close code;
/// every one of these codes tells pusher-js not to retry at once.
pub async fn admission(
    node: &Node,
    app: Option<&Arc<App>>,
    key: &str,
    protocol: Option<&str>,
    origin: Option<&str>,
) -> Result<Seat, (u16, String)> {
    let Some(app) = app else {
        return Err((close_code::APP_NOT_FOUND, format!("App key {key} does not exist")));
    };
    if !app.config.enabled {
        return Err((close_code::APP_DISABLED, "App disabled".into()));
    }
    match protocol.map(str::parse::<u32>) {
        None => return Err((close_code::NO_PROTOCOL, "No protocol version given".into())),
        Some(Ok(v)) if PROTOCOLS.contains(&v) => {}
        Some(_) => {
            let message = format!("Unsupported protocol version {}", protocol.unwrap_or(""));
            return Err((close_code::UNSUPPORTED_PROTOCOL, message));
        }
    }
    if !app.config.origin_allowed(origin) {
        let origin = origin.unwrap_or("(none)");
        if ORIGIN_REFUSALS_LOGGED.allow() {
            tracing::warn!(
                app = %app.config.id,
                origin,
                allowed = ?app.config.allowed_origins,
                "WebSocket refused with 4009: its Origin is not in the app's allowed_origins (HERALD_ALLOWED_ORIGINS); add the site's host name (shop.example.com) or full origin (https://shop.example.com) if it is yours"
            );
        }
        return Err((close_code::UNAUTHORIZED, format!("Origin {origin} is not allowed")));
    }
    // Last, so that only a connection that passed every other check takes a place under the quota.
    node.take_seat(app).await.ok_or_else(|| {
        let limit = app.config.max_connections.unwrap_or(0);
        (
            close_code::OVER_CONNECTION_QUOTA,
            format!("Over the connection quota of {limit}"),
        )
    })
}

/// At most one origin-refusal log line a second, so a hostile page cannot flood the log.
static ORIGIN_REFUSALS_LOGGED: LogEvery = LogEvery::new();

/// Sends the refusal and closes.
pub async fn refuse(mut ws: Socket, code: u16, message: String) {
    tracing::debug!(code, message, "handshake refused");
    let _ = ws
        .write_frame(Frame::text(Payload::Owned(frame::error(code, &message))))
        .await;
    let _ = ws.write_frame(Frame::close(code, message.as_bytes())).await;
}

/// What a connection watches of its node: the drain signal, the isolation from Redis, and the keepalive sweep.
pub struct NodeWatch {
    pub draining: tokio::sync::watch::Receiver<bool>,
    pub isolated: tokio::sync::watch::Receiver<bool>,
    pub keepalive: Arc<Keepalive>,
    /// Counts the connection as open (a drain waits for it) until it ends.
    pub open: crate::shutdown::ConnectionGuard,
}

/// How a node drains: connections are closed at a point spread over `window`, so clients reconnect to
/// the other nodes gradually; presence entries outlive a drained connection by `grace`.
#[derive(Debug, Clone, Copy)]
pub struct DrainPolicy {
    pub window: Duration,
    pub grace: Duration,
}

/// Why a connection is being let go.
#[derive(Debug, Clone, Copy)]
enum Leaving {
    Drain,
    Isolated,
}

/// Where in the drain window this connection closes: spread evenly by its socket id.
pub(crate) fn drain_delay(socket_id: &str, window: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    socket_id.hash(&mut h);
    let millis = window.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % millis)
}

/// Serves an admitted connection in a task of its own. A plain TCP connection is taken back out of hyper's
/// upgrade and split into owned halves, so that every frame goes straight to the socket: not through the
/// upgrade's boxed stream, two adapters and a split's lock, three more objects touched per delivery
/// (docs/benchmarks.md, performance round seven). The write half shuts the socket's sending side (a FIN)
/// when the writer ends (after a close frame, a failed write, its queue closing, or its abort): a client sees
/// its TCP close right after the close frame, even while the session stays for a drain's presence grace. A TLS
/// connection keeps the upgraded stream, split with `tokio::io::split`, whose write half sends nothing when
/// dropped: its TCP close comes when the connection's task ends.
pub fn spawn(node: Arc<Node>, app: Arc<App>, seat: Seat, io: TokioIo<Upgraded>, watch: NodeWatch, drain: DrainPolicy) {
    match io.into_inner().downcast::<TokioIo<tokio::net::TcpStream>>() {
        Ok(parts) => {
            // What the client sent right after its handshake, before the upgrade was done, is read first.
            let (read, write) = parts.io.into_inner().into_split();
            let reader = FrameReader::after(node.settings().max_message_size, parts.read_buf);
            tokio::spawn(serve(node, app, seat, (read, reader, write), watch, drain));
        }
        Err(upgraded) => {
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            let reader = FrameReader::new(node.settings().max_message_size);
            tokio::spawn(serve(node, app, seat, (read, reader, write), watch, drain));
        }
    }
}

/// Sets up one accepted connection to `app` (its session, keepalive entry and writer) at once, and returns
/// what serves it until either side ends it; `halves` are the stream's two sides and the reader for the
/// first. Not an `async fn`: the future
/// returned holds only what the connection's life needs, not also the arguments it was set up from (an
/// `async fn` keeps room for those for its whole life), so every idle connection's task is smaller and the
/// task moved on spawn is too (docs/benchmarks.md, performance round five).
fn serve<R, W>(
    node: Arc<Node>,
    app: Arc<App>,
    seat: Seat,
    (mut read_half, mut reader, write_half): (R, FrameReader, W),
    watch: NodeWatch,
    drain: DrainPolicy,
) -> impl std::future::Future<Output = ()> + Send + 'static
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let NodeWatch {
        mut draining,
        mut isolated,
        keepalive,
        open,
    } = watch;
    let disabled = app.disabled();
    let (mut session, rx) = herald_core::Session::open(node.clone(), app, seat);
    let conn = session.connection().clone();
    let socket_id = conn.socket_id.clone();
    tracing::debug!(%socket_id, app = %session.app().config.id, "connected");
    let activity = Arc::new(Activity::new());
    let kept_alive = keepalive.watch(conn.clone(), activity.clone());
    // fastwebsockets did the upgrade (it read nothing after it); reading and writing are ours: the reader
    // holds no buffer while the client is quiet, and the writer coalesces queued frames.
    let write = FrameWriter::new(write_half);
    session.established();
    let mut writer = tokio::spawn(write_loop(write, rx, conn.clone()));

    let max = node.settings().max_message_size;
    // When this connection is to be let go, and why: the node drains (4200, presence outlives it for the
    // grace period) or is isolated from Redis (4100; cancelled if the link comes back first).
    let mut close_at: Option<(tokio::time::Instant, Leaving)> = None;
    let spread = drain_delay(socket_id.as_str(), drain.window);
    if *isolated.borrow_and_update() {
        close_at = Some((tokio::time::Instant::now() + spread, Leaving::Isolated));
    }
    if *disabled.borrow() {
        // Disabled between admission and now: the wake-up may have come before this connection listened.
        isolated.mark_changed();
    }
    let signin_by = session
        .app()
        .config
        .signin_timeout
        .map(|t| tokio::time::Instant::now() + t);
    let grace = drain.grace;
    async move {
        // Held, not used: the connection stays watched by the keepalive and counted as open until it ends.
        let _ = (&kept_alive, &open);
        let mut watching_isolation = true;
        let mut drained = false;
        let reason = loop {
            let signin_due = signin_by.filter(|_| !session.signed_in());
            let wake_at = match (signin_due, close_at) {
                (Some(a), Some((b, _))) => Some(a.min(b)),
                (a, b) => a.or(b.map(|(at, _)| at)),
            };
            let read = tokio::select! {
                message = reader.next(&mut read_half) => message,
                _ = &mut writer => break "writer ended",
                _ = draining.wait_for(|d| *d), if !matches!(close_at, Some((_, Leaving::Drain))) => {
                    close_at = Some((tokio::time::Instant::now() + spread, Leaving::Drain));
                    continue;
                }
                changed = isolated.changed(), if watching_isolation => {
                    watching_isolation = changed.is_ok();
                    // The same signal wakes the connection when a reload disabled or removed an app.
                    if *disabled.borrow() {
                        conn.close(close_code::APP_DISABLED, "App disabled");
                        break "app disabled";
                    }
                    let now_isolated = *isolated.borrow_and_update();
                    match close_at {
                        None if now_isolated => close_at = Some((tokio::time::Instant::now() + spread, Leaving::Isolated)),
                        Some((_, Leaving::Isolated)) if !now_isolated => close_at = None,
                        _ => {}
                    }
                    continue;
                }
                // One timer for both deadlines (each timer takes room in every idle connection).
                _ = tokio::time::sleep_until(wake_at.unwrap_or_else(tokio::time::Instant::now)), if wake_at.is_some() => {
                    if signin_due.is_some_and(|at| at <= tokio::time::Instant::now()) {
                        conn.close(close_code::UNAUTHORIZED, "Sign-in required: no pusher:signin in time");
                        break "no sign-in in time";
                    }
                    if close_at.is_none_or(|(at, _)| at > tokio::time::Instant::now()) {
                        continue;
                    }
                    if let Some((_, Leaving::Isolated)) = close_at {
                        if node.not_ready().is_none() {
                            // The link came back just now: look again shortly. The watcher clears the flag on its
                            // next look (and this wait with it); if the link drops again first, this closes then.
                            close_at = Some((tokio::time::Instant::now() + Duration::from_millis(200), Leaving::Isolated));
                            continue;
                        }
                        conn.close(close_code::OVER_CAPACITY, "Node lost its link to Redis; reconnect to another node");
                        break "node isolated from Redis";
                    }
                    conn.close(close_code::GENERIC_RECONNECT, "Node is shutting down; reconnect");
                    drained = true;
                    break "node draining";
                }
            };
            let message = match read {
                Ok(message) => message,
                Err(ReadError::TooLarge(_)) => {
                    conn.close(
                        close_code::MESSAGE_TOO_LARGE,
                        &format!("Message larger than {max} bytes"),
                    );
                    break "message too large";
                }
                Err(ReadError::InvalidUtf8) => {
                    // RFC 6455 8.1: a text message that is not UTF-8 fails the connection with 1007.
                    conn.close(INVALID_PAYLOAD, "Text message is not valid UTF-8");
                    break "invalid UTF-8";
                }
                Err(ReadError::Protocol(why)) => {
                    // RFC 6455: a frame that breaks the protocol (reserved bits or opcodes, an unmasked frame, a
                    // fragmented or oversized control frame, a bad continuation) ends the connection with 1002.
                    conn.close(PROTOCOL_ERROR, why);
                    break "protocol error";
                }
                Err(ReadError::Io(_)) => break "read error",
            };
            activity.touch();
            match message {
                Message::Close(code) => {
                    // RFC 6455 5.5.1: echo the client's code (1000 when it gave none).
                    conn.close(code.unwrap_or(1000), "");
                    break "client closed";
                }
                Message::Ping(payload) => conn.pong(Bytes::from(payload)),
                Message::Pong => {}
                // Boxed: a request's future (subscribe, presence join, auth) lives on the heap while it runs,
                // instead of taking room in every idle connection's task.
                Message::Text(text) => Box::pin(session.handle_text(&text)).await,
                Message::Binary => {
                    let message = "Binary messages are not supported; send JSON text";
                    conn.reply(frame::error(close_code::INVALID_MESSAGE, message)).await;
                }
            }
        };
        tracing::debug!(%socket_id, reason, "disconnected");
        if conn.overflowed() {
            session.app().metrics.slow_client_disconnects.inc();
        }
        // Boxed: the closing futures live on the heap only while a connection closes, not in every idle one.
        Box::pin(finish(session, conn, writer, drained.then_some(grace), reason)).await
    }
}

/// Ends a connection: the session leaves its channels (after `grace` for presence when the node drains) and
/// the writer gets up to 2 s to send what is queued.
async fn finish(
    session: herald_core::Session,
    conn: Arc<ConnectionHandle>,
    mut writer: tokio::task::JoinHandle<()>,
    grace: Option<Duration>,
    reason: &'static str,
) {
    if let Some(grace) = grace {
        let end = async move {
            if !writer.is_finished() && tokio::time::timeout(Duration::from_secs(2), &mut writer).await.is_err() {
                writer.abort();
            }
        };
        tokio::join!(session.close_with_grace(grace, reason), end);
        return;
    }
    session.close_because(reason).await;
    if !writer.is_finished() {
        conn.close(1000, "");
        if tokio::time::timeout(Duration::from_secs(2), &mut writer).await.is_err() {
            writer.abort();
        }
    }
}

/// Writes what the connection's queue holds. Pings and the pong timeout come through the queue too, from
/// the node's keepalive sweep (`keepalive.rs`): the writer keeps no timer of its own.
async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
    mut write: FrameWriter<W>,
    mut rx: herald_core::outbound_queue::Receiver,
    conn: Arc<ConnectionHandle>,
) {
    loop {
        // A connection marked as overflowed always has something queued (the mark queues a close past the
        // bound), so the wait below returns at once, and the connection is closed without writing its backlog.
        let Some((first, more)) = rx.recv_noting_more().await else {
            return;
        };
        let first = match conn.overflowed() {
            true => Outbound::Close(ConnectionHandle::OVERFLOW_CODE, OVERFLOW_REASON.into()),
            false => first,
        };
        // A frame alone in the queue goes out straight from its shared bytes.
        if let Outbound::Frame(bytes) = &first {
            if !more && write.batch_len() == 0 {
                let written = crate::deadline::within(WRITE_TIMEOUT, write.text_alone(bytes)).await;
                if !matches!(written, Ok(Ok(()))) {
                    return;
                }
                continue;
            }
        }
        let mut next = Some(first);
        // Everything already queued goes out in the same write.
        let mut closing = None;
        while let Some(message) = next.take() {
            match message {
                Outbound::Frame(bytes) => write.text(&bytes),
                Outbound::Pong(payload) => write.pong(&payload),
                Outbound::Close(code, reason) => {
                    closing = Some((code, reason));
                    break;
                }
            }
            if write.batch_len() < frame_writer::BATCH_BYTES {
                next = rx.try_recv();
            }
        }
        if conn.overflowed() && closing.is_none() {
            closing = Some((ConnectionHandle::OVERFLOW_CODE, OVERFLOW_REASON.into()));
        }
        if let Some((code, reason)) = &closing {
            write.close(*code, reason);
        }
        let written = crate::deadline::within(WRITE_TIMEOUT, write.flush()).await;
        if closing.is_some() || !matches!(written, Ok(Ok(()))) {
            return;
        }
    }
}
