//! laravel-echo-server's clients on Herald: Echo's `broadcaster: 'socket.io'` served on the same port
//! (`/socket.io/`, `HERALD_SOCKETIO_PATH`), so a team on `BROADCAST_DRIVER=redis` can switch servers first
//! and change its frontend later, or never.
//!
//! Engine.IO (polling, the upgrade to WebSocket, heartbeats; protocol 3 for socket.io 2.x clients, 4 for
//! 3.x/4.x) is engineioxide's. On top of it this module speaks the little of socket.io that Echo uses, on
//! the default namespace, with laravel-echo-server's meaning: `subscribe` (private and presence channels
//! authorised by asking the app's auth URL with the client's cookies and headers), `unsubscribe`,
//! `client event`, and events sent as `(event, channel, data)` with `presence:subscribed` / `joining` /
//! `leaving`. Every effect goes through the [`Node`], as for pusher-js clients: the two kinds of client
//! share channels, presence and broadcasts.
//!
//! `engine.rs` takes Engine.IO's callbacks and starts a session per client; `session.rs` is the client's
//! protocol state; `writer.rs` sends what the node queues, in socket.io's form.

mod engine;
mod session;
mod writer;

use crate::auth_proxy::AppClient;
use crate::http::{Body, HttpResponse};
use crate::shutdown::Connections;
use crate::websocket::DrainPolicy;
use engine::Handler;
use engineioxide::config::EngineIoConfig;
use engineioxide::service::EngineIoService;
use herald_core::Node;
use herald_server::config::SocketIoConfig;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::service::Service;
use hyper::Request;
use std::sync::Arc;

/// What a socket.io session needs from the server.
#[derive(Clone)]
pub struct Context {
    pub node: Arc<Node>,
    pub app_id: String,
    pub app_client: AppClient,
    pub connections: Connections,
    pub drain: DrainPolicy,
}

/// The socket.io endpoint of one node.
pub struct SocketIo {
    service: EngineIoService<Handler>,
    handler: Arc<Handler>,
    path: String,
    node: Arc<Node>,
    app_id: String,
    connections: Connections,
    max_clients: usize,
}

/// Request headers an Engine.IO request may carry, in bytes: engineioxide keeps a session's handshake
/// headers for its life (the cookie Herald passes to the app's auth URL is among them), so an anonymous
/// client cannot make it hold much.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Whether a page on `origin` may use the socket.io endpoint: one of the app's `allowed_origins`, or, when
/// it lists none, a page on the same host as the endpoint (any port: Echo's usual `host: hostname + ':6001'`)
/// or no `Origin` at all (not a browser page). Cookies are passed to the app's auth URL, so a page on another
/// site must be listed.
pub fn origin_permitted(app: &herald_core::App, origin: Option<&str>, headers: &hyper::HeaderMap) -> bool {
    let Some(origin) = origin else { return true };
    if !app.config.allowed_origins.is_empty() {
        return app.config.origin_allowed(Some(origin));
    }
    let host_of = |authority: &str| -> String {
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or("").to_ascii_lowercase(),
            None => authority.split(':').next().unwrap_or("").to_ascii_lowercase(),
        }
    };
    let origin_host = host_of(origin.split_once("://").map_or(origin, |(_, rest)| rest));
    ["x-forwarded-host", "host"]
        .iter()
        .filter_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .any(|host| !origin_host.is_empty() && host_of(host) == origin_host)
}

impl SocketIo {
    pub fn new(config: &SocketIoConfig, context: Context) -> Self {
        let settings = context.node.settings().clone();
        let engine = EngineIoConfig::builder()
            .req_path(format!("{}/", config.path))
            .max_buffer_size(settings.outbound_queue)
            // A polling request's body, and a polling answer's batch (more waits for the next poll).
            .max_payload((settings.max_message_size as u64 + 1024).max(64 * 1024))
            .ws_max_message_size(settings.max_message_size)
            .ws_max_frame_size(settings.max_message_size)
            .ws_read_buffer_size(1024)
            .build();
        let handler = Arc::new(Handler::new(context.clone()));
        SocketIo {
            node: context.node.clone(),
            app_id: context.app_id.clone(),
            connections: context.connections.clone(),
            service: EngineIoService::with_config(handler.clone(), engine),
            handler,
            path: config.path.clone(),
            max_clients: config.max_clients,
        }
    }

    /// True for the requests this endpoint answers (its path and below).
    pub fn owns(&self, path: &str) -> bool {
        path.strip_prefix(self.path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Answers an Engine.IO request: a polling exchange, or the upgrade to WebSocket; with CORS for the
    /// pages the app allows.
    pub async fn handle(&self, req: Request<Incoming>) -> HttpResponse {
        let origin = req.headers().get("origin").cloned();
        let mut hosts = hyper::HeaderMap::new();
        for name in [
            hyper::header::HOST,
            hyper::header::HeaderName::from_static("x-forwarded-host"),
        ] {
            if let Some(value) = req.headers().get(&name) {
                hosts.insert(name, value.clone());
            }
        }
        let mut response = if let Some(refused) = self.refused(&req) {
            refused
        } else if req.method() == hyper::Method::OPTIONS {
            let mut response = HttpResponse::new(crate::http::full(bytes::Bytes::new()));
            *response.status_mut() = hyper::StatusCode::NO_CONTENT;
            let headers = response.headers_mut();
            headers.insert("access-control-allow-methods", HeaderValue::from_static("GET, POST"));
            if let Some(asked) = req.headers().get("access-control-request-headers") {
                headers.insert("access-control-allow-headers", asked.clone());
            }
            headers.insert("access-control-max-age", HeaderValue::from_static("600"));
            response
        } else {
            self.engine(req).await
        };
        self.cors(origin, &hosts, response.headers_mut());
        response
    }

    /// The answer for a request that must not reach Engine.IO: headers too large (431), or a new session
    /// (no `sid`) while the node drains, has lost Redis, or holds its most clients (503: the client retries,
    /// to another node behind a load balancer).
    fn refused(&self, req: &Request<Incoming>) -> Option<HttpResponse> {
        let header_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
        if header_bytes > MAX_HEADER_BYTES {
            return Some(crate::http::error(431, "Request headers too large"));
        }
        let handshake = !req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .any(|p| p.starts_with("sid="));
        if !handshake {
            return None;
        }
        let why = if *self.connections.draining().borrow() {
            "Node is shutting down; reconnect"
        } else if *self.connections.isolated().borrow() && self.node.not_ready().is_some() {
            "Node has lost its link to Redis; reconnect to another node"
        } else if self.handler.clients() >= self.max_clients {
            static FULL_LOGGED: crate::log_every::LogEvery = crate::log_every::LogEvery::new();
            if FULL_LOGGED.allow() {
                tracing::warn!(
                    max = self.max_clients,
                    "socket.io clients refused: the node holds HERALD_SOCKETIO_MAX_CLIENTS of them; raise it or add nodes"
                );
            }
            "Node is full; reconnect"
        } else {
            return None;
        };
        Some(crate::http::error(503, why))
    }

    /// The CORS headers socket.io's polling needs from a page on another origin, as laravel-echo-server
    /// answered them: the page's origin and credentials, when [`origin_permitted`] (a client from an origin
    /// that is not is refused anyway).
    fn cors(&self, origin: Option<HeaderValue>, request: &hyper::HeaderMap, headers: &mut hyper::HeaderMap) {
        let Some(origin) = origin else { return };
        let Some(app) = self.node.app_by_id(&self.app_id) else {
            return;
        };
        if !origin_permitted(&app, origin.to_str().ok(), request) {
            return;
        }
        headers.insert("access-control-allow-origin", origin);
        headers.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
        headers.append("vary", HeaderValue::from_static("Origin"));
    }

    async fn engine(&self, mut req: Request<Incoming>) -> HttpResponse {
        // `/socket.io` and `/socket.io/` are the same endpoint to every client.
        if req.uri().path() == self.path {
            let fixed = format!(
                "{}/{}",
                self.path,
                req.uri().query().map(|q| format!("?{q}")).unwrap_or_default()
            );
            if let Ok(uri) = fixed.parse() {
                *req.uri_mut() = uri;
            }
        }
        let response = match self.service.call(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        response.map(|body| -> Body { body.boxed_unsync() })
    }
}
