//! Cluster-wide counts in Redis. Changes are queued without waiting, coalesced, and applied in batches by
//! one task through `count.lua`, which also keeps each node's share so that reaping a dead node takes it
//! back. Queries are one command each.

use crate::connection::RedisConnection;
use crate::keys;
use herald_core::app::AppRegistry;
use herald_core::cluster_stats::{ClusterStats, StatsError};
use herald_core::webhook::{WebhookEvent, Webhooks};
use herald_core::BoxFuture;
use redis::Script;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, oneshot};

/// Most changes applied in one script call.
const BATCH: usize = 512;

pub struct RedisStats {
    me: Weak<RedisStats>,
    conn: RedisConnection,
    changes: mpsc::UnboundedSender<Change>,
}

impl RedisStats {
    /// Counts in Redis; cluster-wide transitions of a channel (first subscriber anywhere, last one anywhere)
    /// raise the `channel_occupied` / `channel_vacated` webhooks of `apps`.
    pub fn new(
        url: &str,
        node_id: &str,
        apps: Arc<AppRegistry>,
        webhooks: Webhooks,
    ) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let (changes, rx) = mpsc::unbounded_channel();
        let conn = RedisConnection::new(client.clone());
        let stats = Arc::new_cyclic(|me| RedisStats {
            me: me.clone(),
            conn,
            changes,
        });
        let applier = Applier {
            conn: RedisConnection::new(client),
            node_key: keys::node_counts(node_id),
            apps,
            webhooks,
        };
        tokio::spawn(applier.run(rx));
        Ok(stats)
    }

    fn me(&self) -> Arc<Self> {
        self.me.upgrade().expect("the stats outlive their calls")
    }

    /// Queues absolute counts again (after Redis lost them, or this node was reaped).
    pub fn restore(&self, connections: &[(String, u64)], subscriptions: &[(String, String, u64)]) {
        let _ = self.changes.send(Change {
            field: String::new(),
            delta: 0,
            applied: None,
        });
        for (app, n) in connections {
            self.connections_changed(app, *n as i64);
        }
        for (app, channel, n) in subscriptions {
            drop(self.subscriptions_changed(app, channel, *n as i64));
        }
    }
}

/// One queued change; `applied` is told once it is in Redis (or failed and was kept for the next batch).
struct Change {
    field: String,
    delta: i64,
    applied: Option<oneshot::Sender<()>>,
}

/// The task that applies queued changes in batches.
struct Applier {
    conn: RedisConnection,
    node_key: String,
    apps: Arc<AppRegistry>,
    webhooks: Webhooks,
}

impl Applier {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Change>) {
        let Applier {
            conn,
            node_key,
            apps,
            webhooks,
        } = self;
        let script = Script::new(include_str!("lua/count.lua"));
        let mut pending: HashMap<String, i64> = HashMap::new();
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        // Batch numbers rise from the clock; count.lua applies each number once, so a batch that timed out
        // (and may have been applied) is retried as it was, never counted twice.
        let mut seq: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        let mut failed: Option<Vec<(String, i64)>> = None;
        loop {
            if failed.is_none() {
                let Some(first) = rx.recv().await else { return };
                let mut next = Some(first);
                while let Some(change) = next.take() {
                    if change.field.is_empty() {
                        // A reset before a restore from this node's own state, which already holds all this.
                        pending.clear();
                    }
                    *pending.entry(change.field).or_default() += change.delta;
                    waiters.extend(change.applied);
                    if pending.len() < BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                pending.retain(|_, d| *d != 0);
                if pending.is_empty() {
                    waiters.drain(..).for_each(|w| {
                        let _ = w.send(());
                    });
                    continue;
                }
                seq += 1;
            }
            let batch: Vec<(String, i64)> = failed.take().unwrap_or_else(|| pending.drain().collect());
            let (script, node_key, batch_ref) = (&script, &node_key, &batch);
            let result = conn
                .run_once_only("counts", |mut c| async move {
                    let mut invocation = script.key(node_key);
                    invocation.arg(seq);
                    for (field, delta) in batch_ref {
                        invocation.arg(field).arg(delta);
                    }
                    invocation.invoke_async::<Vec<String>>(&mut c).await
                })
                .await;
            waiters.drain(..).for_each(|w| {
                let _ = w.send(());
            });
            match result {
                Ok(transitions) => {
                    for t in transitions.chunks_exact(3) {
                        let Some(app) = apps.by_id(&t[0]) else { continue };
                        if t[1].starts_with('#') {
                            continue;
                        }
                        let event = if t[2] == "occupied" {
                            WebhookEvent::channel_occupied(&t[1])
                        } else {
                            WebhookEvent::channel_vacated(&t[1])
                        };
                        webhooks.emit(app, event);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, changes = batch.len(), "cluster counts not updated; retrying");
                    failed = Some(batch);
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
    }
}

fn map_err(e: String) -> StatsError {
    StatsError(e)
}

impl ClusterStats for RedisStats {
    fn connections_changed(&self, app_id: &str, delta: i64) {
        let _ = self.changes.send(Change {
            field: format!("c|{app_id}"),
            delta,
            applied: None,
        });
    }

    fn subscriptions_changed(&self, app_id: &str, channel: &str, delta: i64) -> BoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        let change = Change {
            field: format!("s|{app_id}|{channel}"),
            delta,
            applied: Some(tx),
        };
        let _ = self.changes.send(change);
        Box::pin(async move {
            let _ = tokio::time::timeout(crate::connection::COMMAND_TIMEOUT, rx).await;
        })
    }

    fn connection_count(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let (this, key) = (self.me(), keys::app_connections(app_id));
        Box::pin(async move {
            let key = &key;
            let n: Option<i64> = this
                .conn
                .run("stats_get", |mut c| async move {
                    redis::cmd("GET").arg(key).query_async(&mut c).await
                })
                .await
                .map_err(map_err)?;
            Ok(n.unwrap_or(0).max(0) as u64)
        })
    }

    fn subscription_count(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let (this, key, channel) = (self.me(), keys::app_channels(app_id), channel.to_owned());
        Box::pin(async move {
            let (key, channel) = (&key, &channel);
            let n: Option<i64> = this
                .conn
                .run("stats_hget", |mut c| async move {
                    redis::cmd("HGET").arg(key).arg(channel).query_async(&mut c).await
                })
                .await
                .map_err(map_err)?;
            Ok(n.unwrap_or(0).max(0) as u64)
        })
    }

    fn api_request(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (this, key) = (self.me(), keys::api_requests(app_id, now));
        Box::pin(async move {
            let key = &key;
            let (count,): (u64,) = this
                .conn
                .run("api_rate", |mut c| async move {
                    redis::pipe()
                        .incr(key, 1)
                        .expire(key, 2)
                        .ignore()
                        .query_async(&mut c)
                        .await
                })
                .await
                .map_err(map_err)?;
            Ok(count)
        })
    }

    fn channels(&self, app_id: &str) -> BoxFuture<'static, Result<Vec<(String, u64)>, StatsError>> {
        let (this, key) = (self.me(), keys::app_channels(app_id));
        Box::pin(async move {
            let key = &key;
            let all: HashMap<String, i64> = this
                .conn
                .run("stats_hgetall", |mut c| async move {
                    redis::cmd("HGETALL").arg(key).query_async(&mut c).await
                })
                .await
                .map_err(map_err)?;
            Ok(all
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(c, n)| (c, n as u64))
                .collect())
        })
    }
}
