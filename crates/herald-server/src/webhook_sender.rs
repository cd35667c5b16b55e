//! Delivers the node's webhook outbox: events are batched for up to 250 ms (as Pusher does), signed as
//! Pusher signs them (`X-Pusher-Key`, `X-Pusher-Signature`: hex HMAC-SHA256 of the body with the app
//! secret) and POSTed to each of the app's targets that wants them, retried with backoff for a bounded time.
//! Deliveries run apart from the sockets: a slow or dead endpoint never slows clients. A batch leaves the
//! outbox only once delivered or given up, so on Redis a node killed meanwhile leaves it to a survivor.

use crate::auth_proxy::AppClient;
use bytes::Bytes;
use herald_core::webhook::WebhookEvent;
use herald_core::webhook_outbox::{Pending, PendingId, WebhookOutbox};
use herald_core::Node;
use herald_protocol::signature;
use http_body_util::Full;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Most events in one request.
const BATCH_MAX: usize = 100;
/// How long one request may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a batch is retried before it is given up.
const RETRY_FOR: Duration = Duration::from_secs(60);
/// Requests in flight at once (across targets).
const IN_FLIGHT: usize = 32;

/// Starts the delivery task (once per node): batches from the node's outbox, each finished once every
/// target that wants its events has answered 2xx or was given up.
pub fn spawn(node: Arc<Node>, client: AppClient) {
    tokio::spawn(async move {
        let outbox = node.webhooks().clone();
        let gate = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            let batch = outbox.next(BATCH_MAX).await;
            let mut by_app: HashMap<Arc<str>, Vec<Pending>> = HashMap::new();
            for pending in batch {
                by_app.entry(pending.app_id.clone()).or_default().push(pending);
            }
            for (app_id, pending) in by_app {
                // The app's events stay in the outbox until every target that wants them is done.
                let done = Done::new(&outbox, pending.iter().map(|p| p.id.clone()).collect());
                let Some(app) = node.app_by_id(&app_id) else {
                    tracing::warn!(app = %app_id, events = pending.len(), "webhooks of an app that is no longer configured dropped");
                    continue;
                };
                for target in &app.config.webhooks {
                    let wanted: Vec<&WebhookEvent> =
                        pending.iter().map(|p| &p.event).filter(|e| target.wants(e)).collect();
                    if wanted.is_empty() {
                        continue;
                    }
                    let time_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    let body = serde_json::json!({ "time_ms": time_ms as u64, "events": wanted }).to_string();
                    let signature = signature::hmac_hex(app.config.signing_secret(), body.as_bytes());
                    let (client, url, key, app_id) = (
                        client.clone(),
                        target.url.clone(),
                        app.config.key.clone(),
                        app.config.id.clone(),
                    );
                    let permit = gate.clone().acquire_owned().await.expect("the gate is never closed");
                    let names: Vec<&'static str> = wanted.iter().map(|e| e.name).collect();
                    let (done, node, app) = (done.clone(), node.clone(), app.clone());
                    tokio::spawn(async move {
                        let result = deliver(&client, &url, &key, &signature, Bytes::from(body)).await;
                        if let Err(why) = &result {
                            let events = names.len();
                            tracing::warn!(app = %app_id, url, events, why, "webhook batch given up after retries");
                        }
                        node.webhook_delivered(&app, &names, &url, result);
                        drop(permit);
                        drop(done);
                    });
                }
            }
        }
    });
}

/// Marks a batch's events finished in the outbox when the last delivery holding it drops it.
struct Done {
    outbox: Arc<dyn WebhookOutbox>,
    ids: Vec<PendingId>,
}

impl Done {
    fn new(outbox: &Arc<dyn WebhookOutbox>, ids: Vec<PendingId>) -> Arc<Self> {
        Arc::new(Done {
            outbox: outbox.clone(),
            ids,
        })
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        let (outbox, ids) = (self.outbox.clone(), std::mem::take(&mut self.ids));
        tokio::spawn(async move { outbox.finished(ids).await });
    }
}

/// POSTs one batch, retrying with backoff; Ok once the endpoint answered 2xx, or what went wrong last.
async fn deliver(client: &AppClient, url: &str, key: &str, signature: &str, body: Bytes) -> Result<(), String> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(250);
    let mut first = true;
    loop {
        let request = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header("x-pusher-key", key)
            .header("x-pusher-signature", signature)
            .body(Full::new(body.clone()));
        let request = request.map_err(|e| format!("not a valid request: {e}"))?;
        let failed = match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => return Ok(()),
            Ok(Ok(response)) => {
                tracing::debug!(url, status = %response.status(), "webhook refused; retrying");
                format!("answered {}", response.status())
            }
            Ok(Err(e)) => {
                let error = crate::tls::cause(&e);
                if first {
                    tracing::warn!(url, error, "webhook not delivered; retrying");
                } else {
                    tracing::debug!(url, error, "webhook failed again; retrying");
                }
                error
            }
            Err(_) => {
                tracing::debug!(url, "webhook timed out; retrying");
                format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())
            }
        };
        first = false;
        if started.elapsed() + backoff > RETRY_FOR {
            return Err(failed);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
