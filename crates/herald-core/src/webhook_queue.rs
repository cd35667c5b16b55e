//! The node's webhook queue: events of every app, in order, taken by the one task that delivers them. Emitting
//! never waits: a full queue drops the event and counts it, so a slow or dead endpoint never slows clients.

use crate::app::App;
use crate::metrics::metrics;
use crate::webhook::WebhookEvent;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Events queued per node before new ones are dropped (and counted).
pub const QUEUE: usize = 10_000;

/// A queued event and the id of its app.
pub type Queued = (Arc<str>, WebhookEvent);

/// The node's webhook queue: events of every app, in order.
#[derive(Clone)]
pub struct Webhooks {
    tx: mpsc::Sender<Queued>,
    rx: Arc<Mutex<Option<mpsc::Receiver<Queued>>>>,
    /// Events queued or being delivered, so a stopping node can wait for them.
    pending: Arc<std::sync::atomic::AtomicUsize>,
}

impl Default for Webhooks {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Webhooks {
            tx,
            rx: Arc::new(Mutex::new(Some(rx))),
            pending: Arc::default(),
        }
    }
}

impl Webhooks {
    /// Queues `event` for `app` when one of its targets wants it; never waits.
    pub(crate) fn emit(&self, app: &App, event: WebhookEvent) {
        if !app.config.webhooks.iter().any(|t| t.wants(&event)) {
            return;
        }
        self.pending.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if self.tx.try_send((Arc::from(app.config.id.as_str()), event)).is_err() {
            self.done(1);
            metrics().webhooks.with_label_values(&[&app.config.id, "dropped"]).inc();
        }
    }

    /// The deliverer finished with `n` events (sent or given up).
    pub fn done(&self, n: usize) {
        self.pending.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }

    /// Events queued or being delivered.
    pub fn pending(&self) -> usize {
        self.pending.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The queue's receiving end, for the one task that delivers (None after the first call).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<Queued>> {
        self.rx.lock().expect("webhook lock").take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::WebhookTarget;

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_waiting() {
        let mut config = crate::AppConfig::new("a", "k", "s");
        config.webhooks = vec![WebhookTarget {
            url: "http://x".into(),
            events: vec![],
            channel_prefix: None,
        }];
        let app = App::new(config);
        let hooks = Webhooks::default();
        for i in 0..QUEUE + 5 {
            hooks.emit(&app, WebhookEvent::channel_occupied(&format!("c{i}")));
        }
        let mut rx = hooks.take_receiver().unwrap();
        assert_eq!(rx.recv().await.unwrap().1.channel, "c0");
        assert!(hooks.take_receiver().is_none());
    }
}
