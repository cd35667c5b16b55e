//! The admin HTTP endpoint: the `herald apps` operations for automation (a deploy pipeline, a SaaS backend
//! that adds a tenant), on every node, off unless `HERALD_ADMIN_TOKEN` is set (with apps kept in Redis).
//! Requests are signed the way the Pusher HTTP API signs them, with the admin token as the secret:
//! `auth_timestamp`, `auth_version=1.0`, `body_md5` for a body, and `auth_signature`, the hex HMAC-SHA256
//! of `METHOD\nPATH\nsorted query`. The signature is checked before the body is read.
//!
//! | request | answer |
//! |---|---|
//! | `GET /herald/admin/apps` | `{"apps": [...]}` (secrets masked) |
//! | `POST /herald/admin/apps` with settings (any per-app key; id, key and secret generated when absent) | 201 `{"app": {...}}` with its secret |
//! | `GET /herald/admin/apps/{id}` | `{"app": {...}}` (secrets masked) |
//! | `PATCH /herald/admin/apps/{id}` with settings to change (`{"enabled": false}` disables it) | `{"app": {...}}` |
//! | `POST /herald/admin/apps/{id}/rotate-secret` | `{"secret": "...", "overlap_secs": 300}` |
//! | `DELETE /herald/admin/apps/{id}` | `{}` |

use crate::app_admin::{masked, AdminError};
use crate::http::{error, json, HttpResponse, Server};
use crate::routes::{Matched, Route};
use herald_protocol::signature;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Map, Value};

fn answer(result: Result<Value, AdminError>, created: bool) -> HttpResponse {
    match result {
        Ok(body) if created => json(StatusCode::CREATED, body.to_string()),
        Ok(body) => json(StatusCode::OK, body.to_string()),
        Err(e) => error(e.status(), &e.to_string()),
    }
}

pub async fn handle(server: &Server, req: Request<Incoming>, matched: &Matched) -> HttpResponse {
    let Some((admin, token)) = server.admin.as_ref().and_then(|a| Some((a, a.admin_token()?))) else {
        return error(404, "Not found");
    };
    let uri = req.uri().clone();
    let path = uri.path();
    let query = crate::api::parse_query(uri.query().unwrap_or(""));
    let method = req.method().clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let get = |name: &str| crate::api::param(&query, name);
    let fresh = get("auth_timestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|t| (now - t).abs() <= crate::api::TIMESTAMP_WINDOW_SECS);
    let params = query.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
    let signed =
        get("auth_signature").is_some_and(|sig| signature::verify_api(token, method.as_str(), path, params, sig));
    if !fresh || !signed {
        tracing::info!(
            path,
            "admin request refused: not signed with HERALD_ADMIN_TOKEN, or auth_timestamp not within 600 s"
        );
        return error(
            401,
            "Not signed with the admin token (or auth_timestamp is more than 600 s off)",
        );
    }
    let body = match server.api_bodies.read(req, 64 * 1024).await {
        Ok(body) => body,
        Err(e) => return error(e.status(), &e.to_string()),
    };
    if let Err(e) = crate::api::check_body(&query, &body) {
        return error(e.status, &e.message);
    }
    let fields = || -> Result<Map<String, Value>, AdminError> {
        match serde_json::from_slice(&body) {
            Ok(Value::Object(fields)) => Ok(fields),
            _ => Err(AdminError::Invalid(
                "the body must be a JSON object of app settings".into(),
            )),
        }
    };
    let id = matched.param("app_id");
    let app = |record: Map<String, Value>| serde_json::json!({ "app": masked(record) });
    let response = match (matched.route, &method) {
        (Route::AdminApps, &Method::GET) => answer(
            admin
                .list()
                .await
                .map(|apps| serde_json::json!({ "apps": apps.into_iter().map(masked).collect::<Vec<_>>() })),
            false,
        ),
        (Route::AdminApps, &Method::POST) => {
            let created = match fields() {
                Ok(fields) => admin.create(fields).await,
                Err(e) => Err(e),
            };
            answer(created.map(|record| serde_json::json!({ "app": record })), true)
        }
        (Route::AdminApp, &Method::GET) => answer(admin.get(id).await.map(app), false),
        (Route::AdminApp, &Method::PATCH) => {
            let updated = match fields() {
                Ok(fields) => admin.update(id, fields).await,
                Err(e) => Err(e),
            };
            answer(updated.map(app), false)
        }
        (Route::AdminApp, &Method::DELETE) => answer(admin.delete(id).await.map(|()| serde_json::json!({})), false),
        (Route::AdminRotate, &Method::POST) => answer(
            admin
                .rotate_secret(id)
                .await
                .map(|secret| serde_json::json!({ "secret": secret, "overlap_secs": admin.secret_overlap_secs() })),
            false,
        ),
        _ => return error(405, &format!("{method} is not allowed here")),
    };
    tracing::info!(%method, path, status = response.status().as_u16(), "admin request");
    response
}
