//! The debug dashboard, for the Laravel developer whose browser "receives nothing": per app and for the
//! whole cluster, the connections and message rates, the nodes, the channels and their members, a live
//! console of what happens (from every node), and an event creator that sends through the HTTP API path.
//! Served by every node under one path (`HERALD_DASHBOARD_PATH`), off unless a token is configured.
//!
//! The page and its script are static files embedded in the binary (no CDN: it works offline). Every data
//! endpoint answers 401 without a session (`access.rs`); the console is a Server-Sent Events stream
//! (`console_stream.rs`) that `herald tail` reads too, with a bearer token.

mod access;
mod console_stream;

use crate::app_admin::{masked, AdminError};
use crate::http::{error, full, json, HttpResponse, Server};
use access::{Access, Proof, Refused, Scope};
use bytes::Bytes;
use herald_core::App;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use std::sync::Arc;

/// What both pages have in their `<head>`.
const HEAD_HTML: &str = include_str!("assets/head.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const INDEX_HTML: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// Where the pages may load from and send to: this origin only, and never inside a frame.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard of one node.
pub struct Dashboard {
    base: String,
    access: Access,
    /// Cookies only over https (the listener has TLS).
    secure: bool,
}

impl Dashboard {
    pub fn new(config: &herald_server::config::DashboardConfig, tls: bool) -> Self {
        Dashboard {
            base: config.path.clone(),
            access: Access::new(config),
            secure: tls,
        }
    }

    /// The part of `path` under the dashboard ("" for the dashboard itself), or None when it is not.
    pub fn under<'a>(&self, path: &'a str) -> Option<&'a str> {
        path.strip_prefix(self.base.as_str())
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    pub async fn handle(&self, server: &Server, req: Request<Incoming>, rest: &str) -> HttpResponse {
        let segments: Vec<String> = rest
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = req.method().clone();
        match (&method, segments.as_slice()) {
            (&Method::GET, []) => self.page(req.headers(), server.peer),
            (&Method::POST, ["login"]) => self.login(server, req).await,
            (&Method::POST, ["logout"]) => self.logout(req.headers()),
            (&Method::GET, ["assets", "dashboard.js"]) => asset(SCRIPT, "text/javascript; charset=utf-8"),
            (&Method::GET, ["assets", "dashboard.css"]) => asset(STYLE, "text/css; charset=utf-8"),
            (_, ["api", rest @ ..]) => match self.access.check(req.headers(), server.peer) {
                Ok((scope, proof)) => no_store(self.api(server, req, &scope, proof, rest).await),
                Err(Refused::TooMany) => too_many(error(429, "Too many wrong tokens from this address; wait a minute")),
                Err(Refused::Unauthenticated) => no_store(error(
                    401,
                    "Log in to the dashboard first (or send Authorization: Bearer <token>)",
                )),
            },
            (_, []) | (_, ["login" | "logout"]) => error(405, &format!("{method} is not allowed here")),
            _ => error(404, "Not found"),
        }
    }

    /// The dashboard, or the login form without a session.
    fn page(&self, headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> HttpResponse {
        match self.access.check(headers, peer) {
            Ok(_) => self.html(StatusCode::OK, INDEX_HTML, ""),
            Err(_) => self.html(StatusCode::OK, LOGIN_HTML, ""),
        }
    }

    fn html(&self, status: StatusCode, template: &str, message: &str) -> HttpResponse {
        let page = template
            .replace("{{HEAD}}", HEAD_HTML)
            .replace("{{BASE}}", &escape(&self.base))
            .replace("{{MESSAGE}}", &escape(message));
        let mut r = Response::new(full(page));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert("content-security-policy", HeaderValue::from_static(CSP));
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
        h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    /// `POST {base}/login` with the form field `token`: a session cookie and back to the dashboard.
    async fn login(&self, server: &Server, req: Request<Incoming>) -> HttpResponse {
        if !same_origin(req.headers()) {
            return error(403, "The login form must be sent from the dashboard's own page");
        }
        let peer = server.peer;
        if !self.access.may_try(peer) {
            tracing::info!(
                ?peer,
                "dashboard login refused: too many wrong tokens from this address"
            );
            let r = self.html(
                StatusCode::TOO_MANY_REQUESTS,
                LOGIN_HTML,
                "Too many wrong tokens; wait a minute and try again.",
            );
            return too_many(r);
        }
        // Behind a proxy that terminates TLS, the cookie is still only for https.
        let secure = self.secure
            || req
                .headers()
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        let body = match server.auth_bodies.read(req, 4096).await {
            Ok(body) => body,
            Err(e) => return error(e.status(), &e.to_string()),
        };
        let token = form_urlencoded::parse(&body)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let Some(scope) = self.access.scope_of_token(token.trim()) else {
            self.access.failed(peer);
            tracing::info!(
                ?peer,
                "dashboard login refused: wrong token (HERALD_DASHBOARD_TOKEN or an app's dashboard_token)"
            );
            return self.html(
                StatusCode::UNAUTHORIZED,
                LOGIN_HTML,
                "That token does not open this dashboard.",
            );
        };
        let cookie = format!(
            "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Strict{}",
            access::COOKIE,
            self.access.cookie_value(&scope),
            self.base,
            access::SESSION.as_secs(),
            if secure { "; Secure" } else { "" }
        );
        self.redirect(Some(cookie))
    }

    fn logout(&self, headers: &HeaderMap) -> HttpResponse {
        if !same_origin(headers) {
            return error(403, "Log out from the dashboard's own page");
        }
        let cookie = format!(
            "{}=; Path={}; Max-Age=0; HttpOnly; SameSite=Strict",
            access::COOKIE,
            self.base
        );
        self.redirect(Some(cookie))
    }

    fn redirect(&self, cookie: Option<String>) -> HttpResponse {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::SEE_OTHER;
        let h = r.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&format!("{}/", self.base)) {
            h.insert(LOCATION, location);
        }
        if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(SET_COOKIE, cookie);
        }
        r
    }

    /// The data endpoints, for a caller whose scope is known.
    async fn api(
        &self,
        server: &Server,
        req: Request<Incoming>,
        scope: &Scope,
        proof: Proof,
        rest: &[&str],
    ) -> HttpResponse {
        let node = &server.node;
        if let ["admin", "apps", tail @ ..] = rest {
            return self.manage_apps(server, req, scope, proof, tail).await;
        }
        if let ["apps"] = rest {
            let apps: Vec<_> = node
                .apps()
                .into_iter()
                .filter(|a| scope.covers(&a.config.id))
                .map(|a| serde_json::json!({ "id": a.config.id, "key": a.config.key }))
                .collect();
            // Whether this session may manage the apps kept in Redis (the page shows that part only then).
            let manage_apps = server.admin.is_some() && *scope == Scope::All;
            let body = serde_json::json!({ "apps": apps, "node": node.id(), "manage_apps": manage_apps });
            return json(StatusCode::OK, body.to_string());
        }
        let ["apps", app_id, what] = rest else {
            return error(404, "Not found");
        };
        // An app outside the caller's scope is as unknown as one that does not exist.
        let Some(app) = node.app_by_id(app_id).filter(|a| scope.covers(&a.config.id)) else {
            return error(404, &format!("Unknown app id {app_id:?}"));
        };
        match (req.method(), *what) {
            (&Method::GET, "overview") => overview(server, &app).await,
            (&Method::GET, "members") => {
                let query = crate::api::parse_query(req.uri().query().unwrap_or(""));
                let channel = crate::api::param(&query, "channel").unwrap_or("");
                members(server, &app, channel).await
            }
            (&Method::GET, "console") => {
                let watch = node.watch(&app).await;
                tracing::info!(app = %app.config.id, "dashboard console opened");
                let mut r = Response::new(console_stream::body(watch));
                let h = r.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                h.insert("x-accel-buffering", HeaderValue::from_static("no"));
                r
            }
            (&Method::POST, "events") => self.send_event(server, req, &app, proof).await,
            _ => error(405, "Not allowed here"),
        }
    }

    /// `POST .../events`: the event creator. The body is an HTTP API event (`name`, `channel` or
    /// `channels`, `data`), published exactly as `POST /apps/{id}/events` would.
    async fn send_event(&self, server: &Server, req: Request<Incoming>, app: &Arc<App>, proof: Proof) -> HttpResponse {
        // A form on another site cannot set this header, and the cookie is SameSite=Strict besides.
        let from_page = req.headers().contains_key("x-herald-dashboard") && same_origin(req.headers());
        if proof == Proof::Cookie && !from_page {
            return error(403, "Send events from the dashboard's own page");
        }
        let body = match server.api_bodies.read(req, 256 * 1024).await {
            Ok(body) => body,
            Err(e) => return error(e.status(), &e.to_string()),
        };
        match crate::api::trigger(&server.node, app, &body).await {
            Ok(answer) => {
                tracing::info!(app = %app.config.id, "event sent from the dashboard");
                json(StatusCode::OK, answer)
            }
            Err(e) => error(e.status, &e.message),
        }
    }
}

impl Dashboard {
    /// `{base}/api/admin/apps…`: the apps kept in Redis, managed from the page (the `herald apps`
    /// operations), for a session that opens every app; changes only from the page itself.
    async fn manage_apps(
        &self,
        server: &Server,
        req: Request<Incoming>,
        scope: &Scope,
        proof: Proof,
        tail: &[&str],
    ) -> HttpResponse {
        let Some(admin) = server.admin.clone() else {
            return error(404, "Apps are not kept in Redis on this cluster (HERALD_REDIS_APPS)");
        };
        if *scope != Scope::All {
            return error(
                403,
                "Managing apps takes the dashboard token of every app (HERALD_DASHBOARD_TOKEN)",
            );
        }
        let method = req.method().clone();
        let from_page = req.headers().contains_key("x-herald-dashboard") && same_origin(req.headers());
        if method != Method::GET && proof == Proof::Cookie && !from_page {
            return error(403, "Change apps from the dashboard's own page");
        }
        let body = match server.api_bodies.read(req, 64 * 1024).await {
            Ok(body) => body,
            Err(e) => return error(e.status(), &e.to_string()),
        };
        let fields = || match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(fields)) => Ok(fields),
            _ => Err(AdminError::Invalid("send a JSON object of app settings".into())),
        };
        let result = match (&method, tail) {
            (&Method::GET, []) => admin.list().await.map(|apps| {
                let apps: Vec<_> = apps.into_iter().map(masked).collect();
                serde_json::json!({ "apps": apps })
            }),
            (&Method::POST, []) => match fields() {
                Ok(fields) => admin.create(fields).await.map(|app| serde_json::json!({ "app": app })),
                Err(e) => Err(e),
            },
            (&Method::PATCH, [id]) => match fields() {
                Ok(fields) => admin
                    .update(id, fields)
                    .await
                    .map(|app| serde_json::json!({ "app": masked(app) })),
                Err(e) => Err(e),
            },
            (&Method::DELETE, [id]) => admin.delete(id).await.map(|()| serde_json::json!({})),
            (&Method::POST, [id, "rotate-secret"]) => admin
                .rotate_secret(id)
                .await
                .map(|secret| serde_json::json!({ "secret": secret, "overlap_secs": admin.secret_overlap_secs() })),
            _ => return error(405, "Not allowed here"),
        };
        match result {
            Ok(body) => {
                if method != Method::GET {
                    tracing::info!(%method, app = tail.first().copied().unwrap_or("(new)"), "app changed from the dashboard");
                }
                json(StatusCode::OK, body.to_string())
            }
            Err(e) => error(e.status(), &e.to_string()),
        }
    }
}

/// Connections and occupied channels of the app, cluster-wide.
async fn overview(server: &Server, app: &App) -> HttpResponse {
    let node = &server.node;
    let (connections, channels) = tokio::join!(node.connection_count(app), node.channels(app));
    let (Ok(connections), Ok(channels)) = (connections, channels) else {
        return error(503, "Redis is unavailable; the counts cannot be read right now");
    };
    let channels: Vec<_> = channels
        .into_iter()
        .map(|(name, subscribers)| {
            let kind = channel_kind(&name);
            serde_json::json!({ "name": name, "kind": kind, "subscribers": subscribers })
        })
        .collect();
    let body = serde_json::json!({
        "app": app.config.id,
        "node": node.id(),
        "connections": connections,
        "channels": channels,
    });
    json(StatusCode::OK, body.to_string())
}

async fn members(server: &Server, app: &App, channel: &str) -> HttpResponse {
    if !channel.starts_with("presence-") {
        return error(400, "Members are listed for presence channels only");
    }
    match server.node.members(app, channel).await {
        Ok(members) => {
            let list: Vec<_> = members
                .iter()
                .map(|m| {
                    let info = m
                        .user_info
                        .as_deref()
                        .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok());
                    serde_json::json!({ "id": m.user_id, "info": info })
                })
                .collect();
            json(StatusCode::OK, serde_json::json!({ "members": list }).to_string())
        }
        Err(_) => error(503, "Redis is unavailable; the members cannot be read right now"),
    }
}

fn channel_kind(name: &str) -> &'static str {
    let name = name.strip_prefix("private-encrypted-").map_or(name, |_| "encrypted-");
    if name.starts_with("encrypted-") {
        "encrypted"
    } else if name.starts_with("presence-") || name.starts_with("presence-cache-") {
        "presence"
    } else if name.starts_with("private-") {
        "private"
    } else if name.starts_with("cache-") {
        "cache"
    } else {
        "public"
    }
}

/// True unless the browser says the request came from another origin (`Origin` names a host other than
/// the one asked). Requests without `Origin` come from tools, not from another site's page.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(hyper::header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(hyper::header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    let mut r = Response::new(full(Bytes::from_static(body.as_bytes())));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn too_many(mut r: HttpResponse) -> HttpResponse {
    r.headers_mut().insert("retry-after", HeaderValue::from_static("60"));
    r
}

fn no_store(mut r: HttpResponse) -> HttpResponse {
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_kinds() {
        assert_eq!(channel_kind("presence-room"), "presence");
        assert_eq!(channel_kind("private-encrypted-x"), "encrypted");
        assert_eq!(channel_kind("private-orders.1"), "private");
        assert_eq!(channel_kind("cache-news"), "cache");
        assert_eq!(channel_kind("news"), "public");
    }

    #[test]
    fn cross_origin_posts_are_told_apart() {
        let mut h = HeaderMap::new();
        h.insert("host", "herald.example:6001".parse().unwrap());
        assert!(same_origin(&h));
        h.insert("origin", "https://herald.example:6001".parse().unwrap());
        assert!(same_origin(&h));
        h.insert("origin", "https://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
