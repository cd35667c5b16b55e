//! The HTTP side of a node: one port for WebSocket upgrades (`/app/{key}`), the Pusher HTTP API
//! (`/apps/{id}/...`) and the health probes (`/livez`, `/readyz`).

use crate::api;
use crate::shutdown::Shutdown;
use crate::websocket;
use bytes::Bytes;
use herald_core::Node;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// Largest HTTP API body read, in bytes (event data is limited separately, per app).
const MAX_BODY: usize = 256 * 1024;

pub type HttpResponse = Response<Full<Bytes>>;

/// The state every request handler shares.
#[derive(Clone)]
pub struct Server {
    pub node: Arc<Node>,
    pub shutdown: Shutdown,
}

fn json(status: StatusCode, body: String) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static response parts are valid")
}

fn error(status: u16, message: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    json(status, serde_json::json!({ "error": message }).to_string())
}

impl Server {
    /// Routes one request.
    pub async fn handle(
        self,
        req: Request<Incoming>,
    ) -> Result<HttpResponse, std::convert::Infallible> {
        let path = req.uri().path().to_owned();
        let response = match (req.method(), path.as_str()) {
            (&Method::GET, "/livez") => text(StatusCode::OK, "ok"),
            (&Method::GET, "/readyz") => self.readyz(),
            (&Method::GET, "/") => text(StatusCode::OK, "Herald"),
            (&Method::GET, p) if p.starts_with("/app/") => self.upgrade(req).await,
            (_, p) if p.starts_with("/apps/") => self.api(req).await,
            _ => error(404, "Not found"),
        };
        Ok(response)
    }

    fn readyz(&self) -> HttpResponse {
        if self.shutdown.is_draining() {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining")
        } else if !self.node.backbone.is_ready() {
            text(StatusCode::SERVICE_UNAVAILABLE, "backbone not ready")
        } else if !self.node.presence.is_ready() {
            text(StatusCode::SERVICE_UNAVAILABLE, "presence lease not held")
        } else {
            text(StatusCode::OK, "ready")
        }
    }

    async fn upgrade(self, mut req: Request<Incoming>) -> HttpResponse {
        if !fastwebsockets::upgrade::is_upgrade_request(&req) {
            return error(400, "Expected a WebSocket upgrade");
        }
        let key = req
            .uri()
            .path()
            .trim_start_matches("/app/")
            .trim_end_matches('/')
            .to_owned();
        let query = api::parse_query(req.uri().query().unwrap_or(""));
        let protocol = query
            .iter()
            .find(|(k, _)| k == "protocol")
            .map(|(_, v)| v.clone());
        let (response, upgrade) = match fastwebsockets::upgrade::upgrade(&mut req) {
            Ok(parts) => parts,
            Err(e) => return error(400, &format!("WebSocket upgrade failed: {e}")),
        };
        let node = self.node.clone();
        let draining = self.shutdown.is_draining();
        let connections = self.shutdown.connections();
        tokio::spawn(async move {
            let ws = match upgrade.await {
                Ok(ws) => ws,
                Err(e) => return tracing::debug!(error = %e, "upgrade did not complete"),
            };
            let app = node.apps.by_key(&key).cloned();
            if draining {
                return websocket::refuse(
                    ws,
                    herald_protocol::close_code::OVER_CAPACITY,
                    "Node is shutting down".into(),
                )
                .await;
            }
            match websocket::refusal(app.as_ref(), &key, protocol.as_deref()) {
                Some((code, message)) => websocket::refuse(ws, code, message).await,
                None => {
                    let _guard = connections.enter();
                    websocket::serve(
                        node,
                        app.expect("refusal checked the app"),
                        ws,
                        connections.draining(),
                    )
                    .await
                }
            }
        });
        let (parts, _) = response.into_parts();
        Response::from_parts(parts, Full::new(Bytes::new()))
    }

    async fn api(self, req: Request<Incoming>) -> HttpResponse {
        let path = req.uri().path().to_owned();
        let query = api::parse_query(req.uri().query().unwrap_or(""));
        let method = req.method().clone();
        let mut parts = path.trim_start_matches("/apps/").splitn(2, '/');
        let app_id = parts.next().unwrap_or("");
        let rest = parts.next().unwrap_or("");
        let Some(app) = self.node.apps.by_id(app_id).cloned() else {
            tracing::info!(app_id, "HTTP API call for an unknown app");
            return error(404, &format!("Unknown app id {app_id:?}"));
        };
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return error(413, &format!("Request body larger than {MAX_BODY} bytes")),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if let Err(e) = api::authenticate(&app, method.as_str(), &path, &query, &body, now) {
            tracing::info!(app = %app.config.id, path, reason = e.message, "HTTP API call refused");
            return error(e.status, &e.message);
        }
        let result = match (&method, rest) {
            (&Method::POST, "events") => api::trigger(&self.node, &app, &body).await,
            _ => Err(herald_protocol::api_event::ApiError::new(
                404,
                format!("No endpoint {method} {path}"),
            )),
        };
        match result {
            Ok(body) => json(StatusCode::OK, body),
            Err(e) => {
                tracing::info!(app = %app.config.id, path, status = e.status, reason = e.message, "HTTP API call failed");
                error(e.status, &e.message)
            }
        }
    }
}
