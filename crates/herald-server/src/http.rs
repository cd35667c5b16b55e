//! The HTTP side of a node: one port for WebSocket upgrades (`/app/{key}`), the Pusher HTTP API
//! (`/apps/{id}/...`), and, unless `HERALD_METRICS_PORT` gives them a port of their own, the
//! Prometheus metrics (`/metrics`) and the health probes (`/livez`, `/readyz`).

use crate::api;
use crate::auth_proxy;
use crate::routes::{self, Matched, Route};
use crate::shutdown::Shutdown;
use crate::websocket;
use bytes::Bytes;
use herald_core::metrics::metrics;
use herald_core::metrics::{Histogram, IntCounter};
use herald_core::Node;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::sync::{Arc, OnceLock};

/// Largest HTTP API body read, in bytes (event data is limited separately, per app).
const MAX_BODY: usize = 256 * 1024;

/// A response body: whole (almost every answer) or streamed (the dashboard's console).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

pub type HttpResponse = Response<Body>;

/// A whole response body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    use http_body_util::BodyExt;
    Full::new(bytes.into()).boxed_unsync()
}

/// The state every request handler shares.
#[derive(Clone)]
pub struct Server {
    pub node: Arc<Node>,
    pub shutdown: Shutdown,
    /// Serve clients and the HTTP API on this listener.
    pub serves_clients: bool,
    /// Serve `/metrics`, `/livez` and `/readyz` on this listener.
    pub serves_probes: bool,
    pub drain: websocket::DrainPolicy,
    /// Reaches the apps' own auth endpoints.
    pub app_client: auth_proxy::AppClient,
    /// Reads HTTP API bodies (signed callers) within bounds of size, time and concurrency.
    pub api_bodies: crate::body_reader::BodyReader,
    /// Reads the auth endpoints' bodies (anonymous browsers), apart, so they can never starve the HTTP API.
    pub auth_bodies: crate::body_reader::BodyReader,
    /// The address this connection came from (the load balancer's, behind one).
    pub peer: Option<std::net::IpAddr>,
    /// The apps kept in Redis (`HERALD_REDIS_APPS`), for the admin endpoint and the dashboard.
    pub admin: Option<Arc<crate::app_admin::AppAdmin>>,
    /// The debug dashboard, when a token turns it on.
    pub dashboard: Option<Arc<crate::dashboard::Dashboard>>,
    /// Echo's socket.io broadcaster (laravel-echo-server's clients), unless turned off.
    pub socketio: Option<Arc<crate::socketio::SocketIo>>,
    /// Pings the node's quiet WebSocket clients and closes those that do not answer.
    pub keepalive: Arc<crate::keepalive::Keepalive>,
}

pub fn json(status: StatusCode, body: String) -> HttpResponse {
    // Built in place rather than through `Response::builder()`, whose checks this fixed header never needs:
    // every HTTP API call ends here.
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

pub fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(full(Bytes::from_static(body.as_bytes())))
        .expect("static response parts are valid")
}

pub fn error(status: u16, message: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    json(status, serde_json::json!({ "error": message }).to_string())
}

impl Server {
    /// Routes one request. The futures of the rare, large handlers (HTTP API, auth, dashboard, admin) are
    /// boxed: the connection's task keeps room for the largest one it may run, and after a WebSocket upgrade
    /// that task lives as long as the socket (measured: 1.4 KiB per idle connection, docs/benchmarks.md).
    pub async fn handle(&self, req: Request<Incoming>) -> Result<HttpResponse, std::convert::Infallible> {
        let started = std::time::Instant::now();
        if let Some(dashboard) = self.dashboard.clone().filter(|_| self.serves_clients) {
            if let Some(rest) = dashboard.under(req.uri().path()).map(str::to_owned) {
                let response = Box::pin(dashboard.handle(self, req, &rest)).await;
                return Ok(Self::measured("dashboard", started, response));
            }
        }
        if let Some(socketio) = self.socketio.clone().filter(|_| self.serves_clients) {
            if socketio.owns(req.uri().path()) {
                let response = Box::pin(socketio.handle(req)).await;
                return Ok(Self::measured("socketio", started, response));
            }
        }
        let matched = routes::find(req.uri().path()).filter(|m| match m.route {
            Route::Root => true,
            route if route.is_probe() => self.serves_probes,
            _ => self.serves_clients,
        });
        let Some(matched) = matched else {
            return Ok(Self::measured("other", started, error(404, "Not found")));
        };
        let route = matched.route;
        let method = req.method().clone();
        let response = match (route, &method) {
            (Route::Livez, &Method::GET) => text(StatusCode::OK, "ok"),
            (Route::Readyz, &Method::GET) => self.readyz(),
            (Route::Metrics, &Method::GET) => self.metrics(),
            (Route::Root, &Method::GET) => text(StatusCode::OK, "Herald"),
            (Route::WebSocket, &Method::GET) => self.upgrade(req, matched.param("key")).await,
            (Route::Auth, &Method::POST | &Method::OPTIONS) => {
                Box::pin(self.auth(req, matched.param("key"), auth_proxy::Kind::Channel)).await
            }
            (Route::UserAuth, &Method::POST | &Method::OPTIONS) => {
                Box::pin(self.auth(req, matched.param("key"), auth_proxy::Kind::User)).await
            }
            (route, _) if route.is_api() => Box::pin(self.api(req, &matched)).await,
            // Boxed: this future is rare and large, and the connection's task keeps room for the largest
            // request future it may run, for as long as the connection (a WebSocket's) lives.
            (Route::AdminApps | Route::AdminApp | Route::AdminRotate, _) => {
                Box::pin(crate::admin::handle(self, req, &matched)).await
            }
            _ => error(405, &format!("{method} is not allowed here")),
        };
        Ok(Self::measured_route(route, started, response))
    }

    /// Counts a request of a known route. Its successful requests' counter and histogram are resolved once
    /// (not looked up by label on every request): every HTTP API call ends here.
    fn measured_route(route: Route, started: std::time::Instant, response: HttpResponse) -> HttpResponse {
        static OK: [OnceLock<(IntCounter, Histogram)>; Route::COUNT] = [const { OnceLock::new() }; Route::COUNT];
        if response.status() != StatusCode::OK {
            return Self::measured(route.label(), started, response);
        }
        let (requests, duration) = OK[route as usize].get_or_init(|| {
            let m = metrics();
            (
                m.http_requests
                    .with_label_values(&[route.label(), StatusCode::OK.as_str()]),
                m.http_duration.with_label_values(&[route.label()]),
            )
        });
        requests.inc();
        duration.observe(started.elapsed().as_secs_f64());
        response
    }

    /// Counts a request in the HTTP metrics.
    fn measured(endpoint: &'static str, started: std::time::Instant, response: HttpResponse) -> HttpResponse {
        let m = metrics();
        m.http_requests
            .with_label_values(&[endpoint, response.status().as_str()])
            .inc();
        m.http_duration
            .with_label_values(&[endpoint])
            .observe(started.elapsed().as_secs_f64());
        response
    }

    /// Why the node is not ready, or None when it is.
    pub fn not_ready(&self) -> Option<&'static str> {
        if self.shutdown.is_draining() {
            Some("draining")
        } else {
            self.node.not_ready()
        }
    }

    fn readyz(&self) -> HttpResponse {
        match self.not_ready() {
            Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, why),
            None => text(StatusCode::OK, "ready"),
        }
    }

    fn metrics(&self) -> HttpResponse {
        let m = metrics();
        m.ready.set(self.not_ready().is_none() as i64);
        m.draining.set(self.shutdown.is_draining() as i64);
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/plain; version=0.0.4")
            .body(full(m.render()))
            .expect("static response parts are valid")
    }

    async fn upgrade(&self, mut req: Request<Incoming>, key: &str) -> HttpResponse {
        if !fastwebsockets::upgrade::is_upgrade_request(&req) {
            return error(400, "Expected a WebSocket upgrade");
        }
        let key = key.to_owned();
        let query = api::parse_query(req.uri().query().unwrap_or(""));
        let protocol = api::param(&query, "protocol").map(str::to_owned);
        let origin = req
            .headers()
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (response, upgrade) = match fastwebsockets::upgrade::upgrade(&mut req) {
            Ok(parts) => parts,
            Err(e) => return error(400, &format!("WebSocket upgrade failed: {e}")),
        };
        let node = self.node.clone();
        // A draining or isolated node takes no new connection: the client reconnects elsewhere after a back-off.
        let leaving = if self.shutdown.is_draining() {
            Some("Node is shutting down")
        } else if self.shutdown.is_isolated() && self.node.not_ready().is_some() {
            // (the watcher clears the flag on its next look; readiness says at once that the link is back)
            Some("Node has lost its link to Redis; reconnect to another node")
        } else {
            None
        };
        let drain = self.drain;
        let keepalive = self.keepalive.clone();
        let connections = self.shutdown.connections();
        tokio::spawn(async move {
            let ws = match upgrade.await {
                Ok(ws) => ws,
                Err(e) => return tracing::debug!(error = %e, "upgrade did not complete"),
            };
            let app = node.app_by_key(&key);
            if let Some(why) = leaving {
                return Box::pin(websocket::refuse(
                    ws,
                    herald_protocol::close_code::OVER_CAPACITY,
                    why.into(),
                ))
                .await;
            }
            match websocket::admission(&node, app.as_ref(), &key, protocol.as_deref(), origin.as_deref()).await {
                Err((code, message)) => {
                    if let Some(app) = &app {
                        node.connection_refused(app, code, &message);
                    }
                    Box::pin(websocket::refuse(ws, code, message)).await
                }
                Ok(seat) => {
                    // The connection's life runs in a task of its own, which holds only what serving needs:
                    // this task's room (the upgrade, the admission, the handshake's strings) is given back.
                    let app = app.expect("admission checked the app");
                    let watch = websocket::NodeWatch {
                        draining: connections.draining(),
                        isolated: connections.isolated(),
                        keepalive,
                        open: connections.enter(),
                    };
                    websocket::spawn(node, app, seat, ws.into_inner(), watch, drain);
                }
            }
        });
        let (parts, _) = response.into_parts();
        Response::from_parts(parts, full(Bytes::new()))
    }

    /// `POST /herald/auth/{key}` and `/herald/user-auth/{key}` (and their CORS preflight).
    async fn auth(&self, req: Request<Incoming>, key: &str, kind: auth_proxy::Kind) -> HttpResponse {
        let Some(app) = self.node.app_by_key(key) else {
            return error(404, &format!("Unknown app key {key:?}"));
        };
        if !app.config.enabled {
            return error(403, "App disabled");
        }
        let origin = req
            .headers()
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut response = if req.method() == Method::OPTIONS {
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            let h = r.headers_mut();
            h.insert(
                "access-control-allow-methods",
                hyper::header::HeaderValue::from_static("POST, OPTIONS"),
            );
            if let Some(asked) = req.headers().get("access-control-request-headers") {
                h.insert("access-control-allow-headers", asked.clone());
            }
            h.insert("access-control-max-age", hyper::header::HeaderValue::from_static("600"));
            r
        } else {
            let headers = req.headers().clone();
            let body = match self.auth_bodies.read(req, 16 * 1024).await {
                Ok(body) => body,
                Err(e) => return error(e.status(), &e.to_string()),
            };
            let (status, body) = auth_proxy::authorize(&self.app_client, &app, kind, &headers, body).await;
            if !status.is_success() {
                tracing::info!(app = %app.config.id, status = status.as_u16(), body, "auth endpoint refused");
            }
            json(status, body)
        };
        auth_proxy::cors(&app, origin.as_deref(), response.headers_mut());
        response
    }

    /// The 429 for an app over its `max_api_requests_per_second` (counted cluster-wide), if it is.
    async fn over_api_rate(&self, app: &herald_core::App) -> Option<HttpResponse> {
        let limit = app.config.max_api_requests_per_second?;
        match self.node.api_request(app).await {
            Ok(count) if count > limit => {
                tracing::info!(app = %app.config.id, limit, "HTTP API rate limit reached");
                Some(error(
                    429,
                    &format!("Over the limit of {limit} HTTP API requests a second"),
                ))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP API rate not checked");
                None
            }
        }
    }

    /// A call to laravel-echo-server's HTTP API (a client key, no Pusher signature): the key is checked
    /// before the body is read.
    async fn echo_server_api(
        &self,
        req: Request<Incoming>,
        matched: &Matched,
        app: Arc<herald_core::App>,
        query: &[api::Pair<'_>],
    ) -> HttpResponse {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        if let Err(e) = crate::echo_server_api::check(&app, query, req.headers()) {
            tracing::info!(app = %app.config.id, path, reason = e.message, "laravel-echo-server API call refused");
            return error(e.status, &e.message);
        }
        let body = match self.api_bodies.read(req, MAX_BODY).await {
            Ok(body) => body,
            Err(e) => return error(e.status(), &e.to_string()),
        };
        if let Some(over) = self.over_api_rate(&app).await {
            return over;
        }
        match crate::echo_server_api::call(&self.node, &app, &method, matched, query, &body).await {
            Ok(body) => json(StatusCode::OK, body),
            Err(e) => {
                tracing::info!(app = %app.config.id, path, status = e.status, reason = e.message, "laravel-echo-server API call failed");
                error(e.status, &e.message)
            }
        }
    }

    async fn api(&self, req: Request<Incoming>, matched: &Matched) -> HttpResponse {
        // The URI shares its bytes: the path and the query are read from it without copies.
        let uri = req.uri().clone();
        let path = uri.path();
        let query = api::parse_query(uri.query().unwrap_or(""));
        let method = req.method().clone();
        let app_id = matched.param("app_id");
        let Some(app) = self.node.app_by_id(app_id) else {
            tracing::info!(app_id, "HTTP API call for an unknown app");
            return error(404, &format!("Unknown app id {app_id:?}"));
        };
        if crate::echo_server_api::addressed(&query, req.headers()) {
            return Box::pin(self.echo_server_api(req, matched, app, &query)).await;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // The signature is checked before the body is read: an anonymous caller never gets a body read.
        if let Err(e) = api::check_request(&app, method.as_str(), path, &query, now) {
            tracing::info!(app = %app.config.id, path, reason = e.message, "HTTP API call refused");
            return error(e.status, &e.message);
        }
        let body = match self.api_bodies.read(req, MAX_BODY).await {
            Ok(body) => body,
            Err(e) => {
                tracing::info!(app = %app.config.id, path, reason = %e, "HTTP API body not read");
                return error(e.status(), &e.to_string());
            }
        };
        if let Err(e) = api::check_body(&query, &body) {
            tracing::info!(app = %app.config.id, path, reason = e.message, "HTTP API call refused");
            return error(e.status, &e.message);
        }
        if let Some(over) = self.over_api_rate(&app).await {
            return over;
        }
        let result = api::call(&self.node, &app, &method, matched, &query, &body).await;
        match result {
            Ok(body) => json(StatusCode::OK, body),
            Err(e) => {
                tracing::info!(app = %app.config.id, path, status = e.status, reason = e.message, "HTTP API call failed");
                error(e.status, &e.message)
            }
        }
    }
}
