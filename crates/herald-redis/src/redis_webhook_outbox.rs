//! The webhook outbox in Redis: every node stores the webhook events it decided on in a stream of its own
//! (`herald:node:{id}:webhooks`, consumer group `deliver`) before delivering them, and removes each once its
//! batch was delivered or given up. A node killed while its endpoint was failing leaves its events in Redis;
//! once its lease is gone a surviving node takes them over and delivers them, once.
//!
//! Exactly once per cluster: a batch is stored under a per-node batch number (`outbox_store.lua`), so a
//! store retried after a lost reply is not stored twice; each stream entry goes to one consumer of the
//! group; a survivor claims only entries held by consumers whose lease is gone, and only once they sat idle
//! for a lease, so two survivors never both take one. A node reaped while alive (a long stall) may see a
//! survivor deliver an entry it is still retrying: the one case with a duplicate (documented).

use crate::connection::RedisConnection;
use crate::endpoint::Endpoint;
use herald_core::metrics::metrics;
use herald_core::webhook::WebhookEvent;
use herald_core::webhook_outbox::{Inflow, Intake, Pending, PendingId, WebhookOutbox, BATCH_WINDOW};
use herald_core::BoxFuture;
use redis::streams::{
    StreamClaimReply, StreamId, StreamInfoConsumersReply, StreamPendingCountReply, StreamPendingId, StreamReadReply,
};
use redis::{AsyncCommands, Script};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Events taken in and not yet stored in Redis before new ones are dropped (and counted).
const QUEUE: usize = 10_000;
/// Events stored in one script call.
const STORE_BATCH: usize = 100;
/// A node's outbox stream is capped near this length (a safety valve while every endpoint fails).
const STREAM_CAP: usize = 100_000;
/// The consumer group every node's outbox is read through.
const GROUP: &str = "deliver";
/// An entry held by this node but not being delivered by it (the reply that handed it over was lost) is
/// taken back once it sat this long.
const STUCK_AFTER: Duration = Duration::from_secs(1);

pub struct RedisWebhookOutbox {
    conn: Arc<RedisConnection>,
    node_id: String,
    stream: Arc<str>,
    lease: Duration,
    inflow: Inflow,
    /// Woken when the writer stored something.
    stored: Arc<Notify>,
    /// Finished entries whose acknowledgement failed; sent again before the next read.
    unacked: Mutex<Vec<PendingId>>,
    /// Entries handed to the deliverer and not finished yet: never taken back as stuck.
    in_flight: Mutex<std::collections::HashSet<(Arc<str>, String)>>,
    orphans: Script,
}

impl RedisWebhookOutbox {
    /// The outbox of `node_id`; its writer starts at once and stores whatever is put in, in order.
    pub fn new(client: impl Into<Endpoint>, node_id: &str, lease: Duration) -> Arc<Self> {
        let conn = Arc::new(RedisConnection::new(client));
        let (inflow, rx) = Inflow::new(QUEUE);
        let stored = Arc::new(Notify::new());
        let stream: Arc<str> = Arc::from(conn.layout().node_webhooks(node_id));
        tokio::spawn(store_in_order(
            conn.clone(),
            node_id.to_owned(),
            stream.clone(),
            rx,
            stored.clone(),
        ));
        Arc::new(RedisWebhookOutbox {
            conn,
            node_id: node_id.to_owned(),
            stream,
            lease,
            inflow,
            stored,
            unacked: Mutex::default(),
            in_flight: Mutex::default(),
            orphans: Script::new(include_str!("lua/outbox_orphans.lua")),
        })
    }

    /// Up to `max` entries of a stream not yet given to any consumer.
    async fn read_new(&self, stream: &str, max: usize) -> Result<Vec<Pending>, redis::RedisError> {
        let me = self.node_id.as_str();
        let reply: Option<StreamReadReply> = self
            .conn
            .run_once_only("outbox_read", |mut c| async move {
                let options = redis::streams::StreamReadOptions::default().group(GROUP, me).count(max);
                c.xread_options(&[stream], &[">"], &options).await
            })
            .await
            .or_else(no_group)?;
        let entries = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        Ok(self.pending_entries(stream, entries))
    }

    /// Entries of `stream` held by consumers that are no longer in the node set (nor this one), idle for a
    /// lease.
    async fn claim_from_dead(
        &self,
        stream: &str,
        known: &[String],
        max: usize,
    ) -> Result<Vec<Pending>, redis::RedisError> {
        let consumers: StreamInfoConsumersReply = self
            .conn
            .run("outbox_consumers", |mut c| async move {
                c.xinfo_consumers(stream, GROUP).await
            })
            .await
            .or_else(no_group)?;
        let mut claimed = Vec::new();
        for consumer in consumers.consumers {
            if consumer.pending == 0 || consumer.name == self.node_id || known.contains(&consumer.name) {
                continue;
            }
            let ids: Vec<String> = self
                .held_by(stream, &consumer.name, max)
                .await?
                .into_iter()
                .map(|p| p.id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            claimed.extend(self.claim(stream, &ids, self.lease).await?);
        }
        Ok(claimed)
    }

    /// Up to `max` entries of `stream` that `consumer` holds (read and not acknowledged); none when the
    /// stream or its group is gone.
    async fn held_by(
        &self,
        stream: &str,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<StreamPendingId>, redis::RedisError> {
        let held: StreamPendingCountReply = self
            .conn
            .run("outbox_pending", |mut c| async move {
                c.xpending_consumer_count(stream, GROUP, "-", "+", max, consumer).await
            })
            .await
            .or_else(no_group)?;
        Ok(held.ids)
    }

    /// Claims `ids` of `stream` for this node, those idle at least `min_idle`.
    async fn claim(&self, stream: &str, ids: &[String], min_idle: Duration) -> Result<Vec<Pending>, redis::RedisError> {
        let me = self.node_id.as_str();
        let idle = min_idle.as_millis() as usize;
        let reply: StreamClaimReply = self
            .conn
            .run_once_only("outbox_claim", |mut c| async move {
                c.xclaim(stream, GROUP, me, idle, ids).await
            })
            .await?;
        Ok(self.pending_entries(stream, reply.ids))
    }

    /// Takes over what dead nodes left in their outboxes, and the entries this node holds but lost track of.
    /// Whatever was claimed is returned even when a later step fails (it is this node's to deliver now).
    async fn take_over(&self, max: usize) -> Vec<Pending> {
        let mut taken = Vec::new();
        if let Err(e) = self.take_over_into(&mut taken, max).await {
            tracing::debug!(error = %e, "webhook outboxes of dead nodes not all checked; retried next round");
        }
        taken
    }

    async fn take_over_into(&self, taken: &mut Vec<Pending>, max: usize) -> Result<(), redis::RedisError> {
        let layout = self.conn.layout();
        let (outboxes, nodes, format) = (layout.webhook_outboxes(), layout.nodes(), layout.webhooks_format());
        let (outboxes, nodes, format) = (&outboxes, &nodes, &format);
        let (orphans, known): (Vec<String>, Vec<String>) = self
            .conn
            .run("outbox_orphans", |mut c| async move {
                self.orphans
                    .key(outboxes)
                    .key(nodes)
                    .arg(&self.node_id)
                    .arg(format)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        // This node's own stream first: what it lost track of was counted when it was put in.
        let own = self.stuck(&self.stream, max).await?;
        taken.extend(own);
        for node in orphans {
            let stream = layout.node_webhooks(&node);
            let before = taken.len();
            let steps = async {
                let stuck = self.stuck(&stream, max.saturating_sub(taken.len())).await?;
                taken.extend(stuck);
                let dead = self
                    .claim_from_dead(&stream, &known, max.saturating_sub(taken.len()))
                    .await?;
                taken.extend(dead);
                let room = max.saturating_sub(taken.len());
                if room > 0 {
                    let fresh = self.read_new(&stream, room).await?;
                    taken.extend(fresh);
                }
                Ok::<_, redis::RedisError>(())
            }
            .await;
            let adopted = &taken[before..];
            if !adopted.is_empty() {
                tracing::warn!(
                    node,
                    events = adopted.len(),
                    "taking over webhooks that a node which died had not delivered"
                );
                for event in adopted {
                    metrics()
                        .webhooks
                        .with_label_values(&[&event.app_id, "taken_over"])
                        .inc();
                }
                self.inflow.adopted(adopted.len());
            }
            steps?;
            if taken.len() >= max {
                break;
            }
        }
        Ok(())
    }

    /// Entries of `stream` that this node holds but is not delivering (the reply that handed them over was
    /// lost, or a take-over step failed after claiming them).
    async fn stuck(&self, stream: &str, max: usize) -> Result<Vec<Pending>, redis::RedisError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let held = self.held_by(stream, &self.node_id, max).await?;
        let lost: Vec<String> = {
            let in_flight = self.in_flight.lock().expect("outbox lock");
            held.into_iter()
                .filter(|p| p.last_delivered_ms as u128 >= STUCK_AFTER.as_millis())
                .filter(|p| !in_flight.contains(&(Arc::from(stream), p.id.clone())))
                .map(|p| p.id)
                .collect()
        };
        if lost.is_empty() {
            return Ok(Vec::new());
        }
        self.claim(stream, &lost, STUCK_AFTER).await
    }

    /// Acknowledges and deletes finished entries, per stream; what fails is kept for the next try.
    async fn acknowledge(&self, ids: Vec<PendingId>) {
        let mut by_stream: Vec<(Arc<str>, Vec<String>)> = Vec::new();
        for id in ids {
            match by_stream.iter_mut().find(|(s, _)| *s == id.store) {
                Some((_, entries)) => entries.push(id.entry),
                None => by_stream.push((id.store, vec![id.entry])),
            }
        }
        for (stream, entries) in by_stream {
            let done = self
                .conn
                .run("outbox_ack", |mut c| {
                    let (stream, entries) = (stream.clone(), entries.clone());
                    async move {
                        redis::pipe()
                            .xack(&*stream, GROUP, &entries)
                            .xdel(&*stream, &entries)
                            .query_async::<()>(&mut c)
                            .await
                    }
                })
                .await;
            if let Err(e) = done {
                tracing::warn!(error = %e, "webhook outbox entries not acknowledged in Redis; retrying");
                let mut unacked = self.unacked.lock().expect("outbox lock");
                unacked.extend(entries.into_iter().map(|entry| PendingId {
                    store: stream.clone(),
                    entry,
                }));
            }
        }
    }

    /// The entries of a stream as pending events; an entry that does not read back is logged and removed.
    fn pending_entries(&self, stream: &str, entries: impl IntoIterator<Item = StreamId>) -> Vec<Pending> {
        let store: Arc<str> = Arc::from(stream);
        let mut out = Vec::new();
        for entry in entries {
            let app: Option<String> = entry.get("app");
            let event = entry
                .get::<String>("event")
                .and_then(|json| WebhookEvent::from_json(&json));
            let id = PendingId {
                store: store.clone(),
                entry: entry.id,
            };
            match (app, event) {
                (Some(app), Some(event)) => out.push(Pending {
                    id,
                    app_id: Arc::from(app),
                    event,
                }),
                _ => {
                    tracing::warn!(stream, entry = id.entry, "webhook outbox entry unreadable; removed");
                    if stream == &*self.stream {
                        // It was counted when it was put in; it will never be delivered.
                        self.inflow.finished(1);
                    }
                    self.unacked.lock().expect("outbox lock").push(id);
                }
            }
        }
        out
    }
}

impl WebhookOutbox for RedisWebhookOutbox {
    fn put(&self, app_id: &str, event: WebhookEvent) -> bool {
        self.inflow.put(app_id, event)
    }

    fn next(&self, max: usize) -> BoxFuture<'_, Vec<Pending>> {
        Box::pin(async move {
            let mut take_over_at = tokio::time::Instant::now();
            loop {
                let retry = std::mem::take(&mut *self.unacked.lock().expect("outbox lock"));
                if !retry.is_empty() {
                    self.acknowledge(retry).await;
                }
                let mut batch = Vec::new();
                if tokio::time::Instant::now() >= take_over_at {
                    take_over_at = tokio::time::Instant::now() + self.lease;
                    batch = self.take_over(max).await;
                }
                let notified = self.stored.notified();
                if batch.len() < max {
                    match self.read_new(&self.stream, max - batch.len()).await {
                        Ok(found) => batch.extend(found),
                        Err(e) => tracing::debug!(error = %e, "webhook outbox not read; retried"),
                    }
                }
                if !batch.is_empty() {
                    // Gather what arrives within the batch window, as Pusher batches.
                    tokio::time::sleep(BATCH_WINDOW).await;
                    if batch.len() < max {
                        batch.extend(self.read_new(&self.stream, max - batch.len()).await.unwrap_or_default());
                    }
                    let mut in_flight = self.in_flight.lock().expect("outbox lock");
                    in_flight.extend(batch.iter().map(|p| (p.id.store.clone(), p.id.entry.clone())));
                    return batch;
                }
                let _ = tokio::time::timeout_at(take_over_at, notified).await;
            }
        })
    }

    fn finished(&self, ids: Vec<PendingId>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let n = ids.len();
            {
                let mut in_flight = self.in_flight.lock().expect("outbox lock");
                for id in &ids {
                    in_flight.remove(&(id.store.clone(), id.entry.clone()));
                }
            }
            // Counted as pending until acknowledged (or kept for a retry, which pending() counts): a
            // stopping node does not leave its last batch to be delivered again by a survivor.
            self.acknowledge(ids).await;
            self.inflow.finished(n);
        })
    }

    fn pending(&self) -> usize {
        self.inflow.pending() + self.unacked.lock().expect("outbox lock").len()
    }
}

/// The writer: stores what the node put in, in order, in batches numbered so a retried one is stored once;
/// while Redis is down the events wait in the queue (a full queue drops new ones, counted by the node).
async fn store_in_order(
    conn: Arc<RedisConnection>,
    node_id: String,
    stream: Arc<str>,
    mut rx: Intake,
    stored: Arc<Notify>,
) {
    let script = Script::new(include_str!("lua/outbox_store.lua"));
    let seq_key = format!("{stream}:seq");
    let outboxes = conn.layout().webhook_outboxes();
    let mut seq: u64 = 0;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < STORE_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        seq += 1;
        let mut backoff = Duration::from_millis(100);
        let mut warned = false;
        loop {
            let (script, stream, seq_key, node_id, batch) = (&script, &*stream, &seq_key, &node_id, &batch);
            let outboxes = &outboxes;
            let result = conn
                .run_once_only("outbox_store", |mut c| async move {
                    let mut call = script.key(stream);
                    call.key(seq_key).key(outboxes).arg(node_id).arg(seq).arg(STREAM_CAP);
                    for (app, event) in batch {
                        call.arg(&**app).arg(event.to_json());
                    }
                    call.invoke_async::<i64>(&mut c).await
                })
                .await;
            match result {
                Ok(_) => break,
                Err(e) => {
                    if !warned {
                        let redis = conn.address();
                        tracing::warn!(redis, error = %e, events = batch.len(), "webhook events not yet stored in Redis; they wait in memory and are retried");
                        warned = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        stored.notify_one();
    }
}

/// A stream or group that does not exist (Redis lost its data, or nothing was stored yet) reads as empty.
fn no_group<T: Default>(e: redis::RedisError) -> Result<T, redis::RedisError> {
    if e.code() == Some("NOGROUP") || e.to_string().contains("no such key") {
        Ok(T::default())
    } else {
        Err(e)
    }
}
