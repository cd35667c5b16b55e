//! The webhook outbox: where the events the node decided on wait until the server has delivered them. The
//! node puts events in (never waiting: a full outbox drops the event and the node counts it); the server's
//! deliverer takes batches out, POSTs them and marks them finished. On the embedded default the outbox is
//! a queue in memory (`memory::MemoryOutbox`); on Redis it is a stream per node that survives the node
//! (herald-redis's `RedisWebhookOutbox`), so a webhook accepted by a node that is then killed is still
//! delivered, once, by a surviving node.

use crate::webhook::WebhookEvent;
use crate::BoxFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Which stored event a [`Pending`] is, for marking it finished. Opaque outside the outbox that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingId {
    /// The store the event sits in (Redis: the stream's key; memory: empty).
    pub store: Arc<str>,
    /// The event's place in it (Redis: the stream entry id).
    pub entry: String,
}

/// An event waiting for delivery.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: PendingId,
    pub app_id: Arc<str>,
    pub event: WebhookEvent,
}

/// Where webhook events wait until they are delivered.
pub trait WebhookOutbox: Send + Sync + 'static {
    /// Takes `event` of `app_id` in; never waits. False when the outbox is full (the event is dropped).
    fn put(&self, app_id: &str, event: WebhookEvent) -> bool;
    /// The next events to deliver, at most `max`, gathered for a short window after the first arrives;
    /// waits for the first.
    fn next(&self, max: usize) -> BoxFuture<'_, Vec<Pending>>;
    /// These events were delivered, or given up after retries: they leave the outbox.
    fn finished(&self, ids: Vec<PendingId>) -> BoxFuture<'_, ()>;
    /// Events this node took in or took over and has not finished; a stopping node waits for them.
    fn pending(&self) -> usize;
}

/// How long the outbox gathers events after the first before handing a batch over (as Pusher batches).
pub const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(250);

/// Events waiting to enter an outbox: the node puts them in without waiting.
pub type Intake = mpsc::Receiver<(Arc<str>, WebhookEvent)>;

/// The side every outbox shares: a bounded queue the node puts events into without waiting, and the count
/// of events this node has yet to finish.
pub struct Inflow {
    tx: mpsc::Sender<(Arc<str>, WebhookEvent)>,
    pending: AtomicUsize,
}

impl Inflow {
    /// An inflow of at most `capacity` waiting events, and the receiving end the outbox drains.
    pub fn new(capacity: usize) -> (Self, Intake) {
        let (tx, rx) = mpsc::channel(capacity);
        let inflow = Inflow {
            tx,
            pending: AtomicUsize::new(0),
        };
        (inflow, rx)
    }

    /// See [`WebhookOutbox::put`].
    pub fn put(&self, app_id: &str, event: WebhookEvent) -> bool {
        let accepted = self.tx.try_send((Arc::from(app_id), event)).is_ok();
        if accepted {
            self.pending.fetch_add(1, Ordering::AcqRel);
        }
        accepted
    }

    /// `n` events this node did not put in became its to finish (taken over from another node).
    pub fn adopted(&self, n: usize) {
        self.pending.fetch_add(n, Ordering::AcqRel);
    }

    /// `n` events were finished.
    pub fn finished(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::AcqRel);
    }

    /// See [`WebhookOutbox::pending`].
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}
