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
    path: String,
    node: Arc<Node>,
    app_id: String,
}

impl SocketIo {
    pub fn new(config: &SocketIoConfig, context: Context) -> Self {
        let settings = context.node.settings().clone();
        let engine = EngineIoConfig::builder()
            .req_path(format!("{}/", config.path))
            .max_buffer_size(settings.outbound_queue)
            .max_payload(settings.max_message_size as u64 + 1024)
            .ws_max_message_size(settings.max_message_size)
            .ws_max_frame_size(settings.max_message_size)
            .build();
        SocketIo {
            node: context.node.clone(),
            app_id: context.app_id.clone(),
            service: EngineIoService::with_config(Arc::new(Handler::new(context)), engine),
            path: config.path.clone(),
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
        let mut response = if req.method() == hyper::Method::OPTIONS {
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
        self.cors(origin, response.headers_mut());
        response
    }

    /// The CORS headers socket.io's polling needs from a page on another origin, as laravel-echo-server
    /// answered them: the page's origin and credentials, when the app allows that origin (any, when its
    /// `allowed_origins` is empty; a connection from an origin it does not list is refused anyway).
    fn cors(&self, origin: Option<HeaderValue>, headers: &mut hyper::HeaderMap) {
        let Some(origin) = origin else { return };
        let Some(app) = self.node.app_by_id(&self.app_id) else {
            return;
        };
        if !app.config.origin_allowed(origin.to_str().ok()) {
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
