//! Delivers the node's webhook queue: events are batched for up to 250 ms (as Pusher does), signed as
//! Pusher signs them (`X-Pusher-Key`, `X-Pusher-Signature`: hex HMAC-SHA256 of the body with the app
//! secret) and POSTed to each of the app's targets that wants them, retried with backoff for a bounded time.
//! Deliveries run apart from the sockets: a slow or dead endpoint never slows clients.

use crate::auth_proxy::AppClient;
use bytes::Bytes;
use herald_core::metrics::metrics;
use herald_core::webhook::WebhookEvent;
use herald_core::Node;
use herald_protocol::signature;
use http_body_util::Full;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long events wait to be batched.
const BATCH_WINDOW: Duration = Duration::from_millis(250);
/// Most events in one request.
const BATCH_MAX: usize = 100;
/// How long one request may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a batch is retried before it is given up.
const RETRY_FOR: Duration = Duration::from_secs(60);
/// Requests in flight at once (across targets).
const IN_FLIGHT: usize = 32;

/// Starts the delivery task (once per node).
pub fn spawn(node: Arc<Node>, client: AppClient) {
    let Some(mut rx) = node.webhooks().take_receiver() else {
        return;
    };
    tokio::spawn(async move {
        let gate = Arc::new(Semaphore::new(IN_FLIGHT));
        while let Some(first) = rx.recv().await {
            let mut batch: HashMap<Arc<str>, Vec<WebhookEvent>> = HashMap::new();
            batch.entry(first.0).or_default().push(first.1);
            let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
            let mut count = 1;
            while count < BATCH_MAX {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some((app, event))) => {
                        batch.entry(app).or_default().push(event);
                        count += 1;
                    }
                    _ => break,
                }
            }
            for (app_id, events) in batch {
                // The app's events stay pending until every target that wants them is done.
                let done = Done::new(&node, events.len());
                let Some(app) = node.app_by_id(&app_id).cloned() else {
                    continue;
                };
                for target in &app.config.webhooks {
                    let wanted: Vec<&WebhookEvent> = events.iter().filter(|e| target.wants(e)).collect();
                    if wanted.is_empty() {
                        continue;
                    }
                    let time_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    let body = serde_json::json!({ "time_ms": time_ms as u64, "events": wanted }).to_string();
                    let signature = signature::hmac_hex(&app.config.secret, body.as_bytes());
                    let (client, url, key, app_id) = (
                        client.clone(),
                        target.url.clone(),
                        app.config.key.clone(),
                        app.config.id.clone(),
                    );
                    let permit = gate.clone().acquire_owned().await.expect("the gate is never closed");
                    let n = wanted.len() as u64;
                    let done = done.clone();
                    tokio::spawn(async move {
                        let delivered = deliver(&client, &url, &key, &signature, Bytes::from(body)).await;
                        let result = if delivered { "sent" } else { "failed" };
                        metrics().webhooks.with_label_values(&[&app_id, result]).inc_by(n);
                        if !delivered {
                            tracing::warn!(app = %app_id, url, events = n, "webhook batch given up after retries");
                        }
                        drop(permit);
                        drop(done);
                    });
                }
            }
        }
    });
}

/// Marks a batch's events done (for a stopping node's wait) when the last delivery holding it drops it.
struct Done {
    webhooks: herald_core::webhook_queue::Webhooks,
    events: usize,
}

impl Done {
    fn new(node: &Node, events: usize) -> Arc<Self> {
        Arc::new(Done {
            webhooks: node.webhooks().clone(),
            events,
        })
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        self.webhooks.done(self.events);
    }
}

/// POSTs one batch, retrying with backoff; true once the endpoint answered 2xx.
async fn deliver(client: &AppClient, url: &str, key: &str, signature: &str, body: Bytes) -> bool {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(250);
    let mut first = true;
    loop {
        let request = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header("x-pusher-key", key)
            .header("x-pusher-signature", signature)
            .body(Full::new(body.clone()));
        let Ok(request) = request else { return false };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => return true,
            Ok(Ok(response)) => tracing::debug!(url, status = %response.status(), "webhook refused; retrying"),
            Ok(Err(e)) if first => {
                let error = crate::tls::cause(&e);
                tracing::warn!(url, error, "webhook not delivered; retrying");
            }
            Ok(Err(e)) => tracing::debug!(url, error = crate::tls::cause(&e), "webhook failed again; retrying"),
            Err(_) => tracing::debug!(url, "webhook timed out; retrying"),
        }
        first = false;
        if started.elapsed() + backoff > RETRY_FOR {
            return false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
