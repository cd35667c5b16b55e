//! The embedded default's webhook outbox: a bounded queue in this process. Events are lost if the process
//! dies before delivering them (a node that runs alone has nobody to hand them to).

use crate::webhook::WebhookEvent;
use crate::webhook_outbox::{Inflow, Intake, Pending, PendingId, WebhookOutbox, BATCH_WINDOW};
use crate::BoxFuture;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Events queued before new ones are dropped (and counted).
pub const QUEUE: usize = 10_000;

pub struct MemoryOutbox {
    inflow: Inflow,
    rx: Mutex<Intake>,
}

impl Default for MemoryOutbox {
    fn default() -> Self {
        let (inflow, rx) = Inflow::new(QUEUE);
        MemoryOutbox {
            inflow,
            rx: Mutex::new(rx),
        }
    }
}

fn pending(app_id: Arc<str>, event: WebhookEvent) -> Pending {
    let id = PendingId {
        store: Arc::from(""),
        entry: String::new(),
    };
    Pending { id, app_id, event }
}

impl WebhookOutbox for MemoryOutbox {
    fn put(&self, app_id: &str, event: WebhookEvent) -> bool {
        self.inflow.put(app_id, event)
    }

    fn next(&self, max: usize) -> BoxFuture<'_, Vec<Pending>> {
        Box::pin(async move {
            let mut rx = self.rx.lock().await;
            let Some((app, event)) = rx.recv().await else {
                return Vec::new();
            };
            let mut batch = vec![pending(app, event)];
            let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
            while batch.len() < max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some((app, event))) => batch.push(pending(app, event)),
                    _ => break,
                }
            }
            batch
        })
    }

    fn finished(&self, ids: Vec<PendingId>) -> BoxFuture<'_, ()> {
        self.inflow.finished(ids.len());
        Box::pin(async {})
    }

    fn pending(&self) -> usize {
        self.inflow.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_outbox_refuses_instead_of_waiting() {
        let outbox = MemoryOutbox::default();
        let mut refused = 0;
        for i in 0..QUEUE + 5 {
            if !outbox.put("a", WebhookEvent::channel_occupied(&format!("c{i}"))) {
                refused += 1;
            }
        }
        assert_eq!(refused, 5);
        assert_eq!(outbox.pending(), QUEUE);
        let batch = outbox.next(100).await;
        assert_eq!(batch.len(), 100);
        assert_eq!(batch[0].event.channel, "c0");
        outbox.finished(batch.into_iter().map(|p| p.id).collect()).await;
        assert_eq!(outbox.pending(), QUEUE - 100);
    }
}
