//! Cluster-wide counts in Redis. Changes are queued without waiting, coalesced, and applied in batches by
//! one task through `count.lua`, which also keeps each node's share so that reaping a dead node takes it
//! back. The task also keeps this node's own totals, so after Redis lost them (or the node was reaped) it
//! sets its share back to exactly those totals, whatever batches failed or landed late meanwhile. Channels
//! whose cluster-wide count crosses zero are reported to the node. Queries are one command each.

use crate::connection::{RedisConnection, COMMAND_TIMEOUT};
use crate::endpoint::Endpoint;
use crate::keys::Layout;
use herald_core::backend_events::{ChannelTransition, Events};
use herald_core::cluster_stats::{Admission, ClusterStats, StatsError};
use herald_core::BoxFuture;
use redis::Script;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most changes applied in one script call.
const BATCH: usize = 512;

pub struct RedisStats {
    conn: Arc<RedisConnection>,
    changes: mpsc::UnboundedSender<Change>,
}

/// One queued request to the applier.
enum Change {
    /// A field changed by a delta; `applied` is told once the change is in Redis (or failed).
    Delta {
        field: String,
        delta: i64,
        applied: Option<oneshot::Sender<()>>,
    },
    /// This node's share in Redis is gone or wrong: set it to the node's own totals.
    Reset,
    /// The node retires: apply what is queued (one attempt), answer, and take no more changes, so nothing
    /// lands after the node's share was taken back.
    Retire(oneshot::Sender<()>),
    /// A new connection of an app with a quota: admitted and counted in one step (`admit.lua`), in order with
    /// every other change of this node's share.
    Admit {
        app_id: String,
        limit: u64,
        reply: oneshot::Sender<Admission>,
    },
}

impl RedisStats {
    /// Counts in Redis; cluster-wide transitions of a channel are reported to `events`.
    pub fn new(client: impl Into<Endpoint>, node_id: &str, events: Events) -> Arc<Self> {
        let client: Endpoint = client.into();
        let (changes, rx) = mpsc::unbounded_channel();
        let applier = Applier {
            conn: RedisConnection::new(client.clone()),
            node_id: node_id.to_owned(),
            events,
            own: HashMap::new(),
            apps_counted: HashSet::new(),
        };
        tokio::spawn(applier.run(rx));
        Arc::new(RedisStats {
            conn: Arc::new(RedisConnection::new(client)),
            changes,
        })
    }

    /// Sets this node's share back to its own totals (after Redis lost them, or the node was reaped).
    pub fn reset(&self) {
        let _ = self.changes.send(Change::Reset);
    }

    /// Applies what is queued and stops counting (a clean shutdown, before the node's share is taken back).
    pub async fn retire(&self) {
        let (done, applied) = oneshot::channel();
        if self.changes.send(Change::Retire(done)).is_ok() {
            let _ = tokio::time::timeout(COMMAND_TIMEOUT * 2, applied).await;
        }
    }
}

/// What the next script call applies.
enum Batch {
    Delta(Vec<(String, i64)>),
    Set(Vec<(String, i64)>),
}

/// The task that applies queued changes in batches.
struct Applier {
    conn: RedisConnection,
    node_id: String,
    events: Events,
    /// This node's totals per field, as every change received so far makes them.
    own: HashMap<String, i64>,
    /// Every app this node has counted anything for: on Redis Cluster a reset sets each one's share.
    apps_counted: HashSet<String>,
}

impl Applier {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Change>) {
        let script = Script::new(include_str!("lua/count.lua"));
        let admit = Script::new(include_str!("lua/admit.lua"));
        let mut admissions: Vec<(String, u64, oneshot::Sender<Admission>)> = Vec::new();
        let mut pending: HashMap<String, i64> = HashMap::new();
        // Subscribes waiting for their change: released once the batch holding it was tried.
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut retiring: Option<oneshot::Sender<()>> = None;
        // Batch numbers rise from the clock; count.lua applies each number once, so a batch that timed out
        // (and may have been applied) is retried as it was, never counted twice.
        let mut seq: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        let mut failed: Option<Batch> = None;
        let mut reset = false;
        loop {
            if let Some(done) = retiring.take().filter(|_| failed.is_none() && pending.is_empty()) {
                release(&mut waiters);
                let _ = done.send(());
                return;
            }
            // Admissions run once what was queued before them is applied, so they see an exact total; while
            // Redis is not taking batches they are answered at once (let in unchecked).
            if !admissions.is_empty() && (failed.is_some() || (pending.is_empty() && !reset)) {
                let mut redis_failing = failed.is_some();
                for (app_id, limit, reply) in admissions.drain(..) {
                    let admission = self
                        .admit(&admit, &app_id, limit, &mut redis_failing, &mut pending, &mut reset)
                        .await;
                    let _ = reply.send(admission);
                }
                continue;
            }
            // Take what is queued (waiting only when there is nothing to do).
            let mut next = if failed.is_none() && !reset && pending.is_empty() && admissions.is_empty() {
                match rx.recv().await {
                    Some(change) => Some(change),
                    None => return,
                }
            } else {
                rx.try_recv().ok()
            };
            while let Some(change) = next.take() {
                match change {
                    Change::Delta { field, delta, applied } => {
                        self.own_changed(&field, delta);
                        *pending.entry(field).or_default() += delta;
                        waiters.extend(applied);
                    }
                    Change::Admit { app_id, limit, reply } => {
                        admissions.push((app_id, limit, reply));
                        // Answer it soon: stop taking more and apply what came before it.
                        break;
                    }
                    Change::Retire(done) => {
                        // One last attempt for what is queued; a failed batch is given up.
                        failed = None;
                        retiring = Some(done);
                    }
                    // The share is set from `own`, which holds everything: what failed or is pending is moot.
                    Change::Reset => {
                        reset = true;
                        failed = None;
                        pending.clear();
                    }
                }
                if pending.len() < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            // The waiters of this attempt: those whose change it holds (none when it retries an older batch).
            let mut batch_waiters = Vec::new();
            let batch = if let Some(batch) = failed.take() {
                batch
            } else if reset {
                reset = false;
                seq += 1;
                batch_waiters = std::mem::take(&mut waiters);
                Batch::Set(self.own.iter().map(|(f, n)| (f.clone(), *n)).collect())
            } else {
                pending.retain(|_, d| *d != 0);
                batch_waiters = std::mem::take(&mut waiters);
                if pending.is_empty() {
                    release(&mut batch_waiters);
                    continue;
                }
                seq += 1;
                Batch::Delta(pending.drain().collect())
            };
            let (transitions, failure) = self.apply(&script, seq, &batch).await;
            release(&mut batch_waiters);
            let transitions = transitions
                .chunks_exact(3)
                .map(|t| ChannelTransition {
                    app_id: t[0].clone(),
                    channel: t[1].clone(),
                    occupied: t[2] == "occupied",
                })
                .collect::<Vec<_>>();
            if !transitions.is_empty() {
                self.events.channels_changed(transitions);
            }
            match failure {
                None => {}
                Some(e) => {
                    let changes = match &batch {
                        Batch::Delta(f) | Batch::Set(f) => f.len(),
                    };
                    if retiring.is_some() {
                        tracing::warn!(error = %e, changes, "cluster counts not updated in Redis at shutdown; the node's share is taken back anyway");
                        continue;
                    }
                    tracing::warn!(error = %e, changes, "cluster counts not updated in Redis; retrying");
                    failed = Some(batch);
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
    }
}

impl Applier {
    /// Runs `count.lua` for a batch: once on one Redis; once per app on Redis Cluster (each app's share and
    /// totals are one slot), with the same batch number, so a batch retried after a partial failure skips
    /// the apps it reached. A reset (`set`) always reaches the whole share, even with no field (every count
    /// the share still holds goes to 0). Returns the transitions, flat, with what failed: those of the apps
    /// reached before a failure are reported all the same (their webhooks are due; the retry skips them).
    async fn apply(&self, script: &Script, seq: u64, batch: &Batch) -> (Vec<String>, Option<redis::RedisError>) {
        let layout = self.conn.layout();
        let (mode, fields) = match batch {
            Batch::Delta(f) => ("delta", f),
            Batch::Set(f) => ("set", f),
        };
        let mut per_share: HashMap<String, Vec<&(String, i64)>> = HashMap::new();
        match layout {
            Layout::Single => {
                per_share.insert(layout.node_counts(&self.node_id, ""), fields.iter().collect());
            }
            Layout::Cluster => {
                if mode == "set" {
                    for app in &self.apps_counted {
                        per_share.entry(layout.node_counts(&self.node_id, app)).or_default();
                    }
                }
                for field in fields {
                    per_share
                        .entry(layout.node_counts(&self.node_id, field_app(&field.0)))
                        .or_default()
                        .push(field);
                }
            }
        }
        let [_, connections, channels] = layout.script_formats();
        let mut transitions = Vec::new();
        for (key, fields) in &per_share {
            let applied = self
                .conn
                .run_once_only("counts", |mut c| async move {
                    let mut invocation = script.key(key);
                    invocation.arg(seq).arg(mode).arg(connections).arg(channels);
                    for (field, value) in fields {
                        invocation.arg(field).arg(value);
                    }
                    invocation.invoke_async::<Vec<String>>(&mut c).await
                })
                .await;
            match applied {
                Ok(more) => transitions.extend(more),
                Err(e) => return (transitions, Some(e)),
            }
        }
        (transitions, None)
    }

    /// This node's own total of `field` changed by `delta` (an entry at zero goes, so the map holds only what
    /// the node has).
    fn own_changed(&mut self, field: &str, delta: i64) {
        if self.conn.layout() == Layout::Cluster {
            let app = field_app(field);
            if !self.apps_counted.contains(app) {
                self.apps_counted.insert(app.to_owned());
            }
        }
        let own = self.own.entry(field.to_owned()).or_default();
        *own += delta;
        if *own == 0 {
            self.own.remove(field);
        }
    }

    /// Admits one connection of `app_id` under `limit` with `admit.lua`, counting it in this node's own
    /// totals when admitted. Once Redis failed (`redis_failing`), connections are let in unchecked and counted
    /// the ordinary way (a queued delta); a timed-out admission may have run, so the share is reset from the
    /// node's own totals instead.
    async fn admit(
        &mut self,
        script: &Script,
        app_id: &str,
        limit: u64,
        redis_failing: &mut bool,
        pending: &mut HashMap<String, i64>,
        reset: &mut bool,
    ) -> Admission {
        let field = connections_field(app_id);
        if *redis_failing {
            self.own_changed(&field, 1);
            *pending.entry(field).or_default() += 1;
            return Admission::Unchecked(StatsError("cluster counts unavailable".into()));
        }
        let layout = self.conn.layout();
        let (node_key, total) = (
            layout.node_counts(&self.node_id, app_id),
            layout.app_connections(app_id),
        );
        let (node_key, total) = (&node_key, &total);
        let answer = self
            .conn
            .run_once_only("admit", |mut c| async move {
                script
                    .key(node_key)
                    .key(total)
                    .arg(app_id)
                    .arg(limit)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        match answer {
            Ok(1) => {
                self.own_changed(&field, 1);
                Admission::Admitted
            }
            Ok(_) => Admission::Full,
            Err(e) => {
                // The rest of this burst is let in without asking a Redis that just failed.
                *redis_failing = true;
                self.own_changed(&field, 1);
                if e.is_timeout() {
                    *reset = true;
                } else {
                    *pending.entry(field).or_default() += 1;
                }
                Admission::Unchecked(unavailable(e))
            }
        }
    }
}

/// Tells every waiting subscribe that the batch holding its change was tried.
fn release(waiters: &mut Vec<oneshot::Sender<()>>) {
    waiters.drain(..).for_each(|w| {
        let _ = w.send(());
    });
}

/// The app a count field belongs to (`c|{app}` or `s|{app}|{channel}`).
fn field_app(field: &str) -> &str {
    field.split('|').nth(1).unwrap_or("")
}

/// The field of an app's connections in the count hashes (`count.lua`, `admit.lua`).
fn connections_field(app_id: &str) -> String {
    format!("c|{app_id}")
}

fn unavailable(e: redis::RedisError) -> StatsError {
    StatsError(e.to_string())
}

impl ClusterStats for RedisStats {
    fn admit(&self, app_id: &str, limit: u64) -> BoxFuture<'static, Admission> {
        let (reply, answer) = oneshot::channel();
        let sent = self.changes.send(Change::Admit {
            app_id: app_id.to_owned(),
            limit,
            reply,
        });
        Box::pin(async move {
            if sent.is_err() {
                return Admission::NotCounted(StatsError("the node is stopping".into()));
            }
            // The count task always answers, within its commands' timeouts; a dropped answer means it stopped.
            answer
                .await
                .unwrap_or_else(|_| Admission::NotCounted(StatsError("the count task stopped".into())))
        })
    }

    fn connections_changed(&self, app_id: &str, delta: i64) {
        let _ = self.changes.send(Change::Delta {
            field: connections_field(app_id),
            delta,
            applied: None,
        });
    }

    fn subscriptions_changed(&self, app_id: &str, channel: &str, delta: i64) -> BoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.changes.send(Change::Delta {
            field: format!("s|{app_id}|{channel}"),
            delta,
            applied: Some(tx),
        });
        Box::pin(async move {
            let _ = tokio::time::timeout(COMMAND_TIMEOUT, rx).await;
        })
    }

    fn connection_count(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let (conn, key) = (self.conn.clone(), self.conn.layout().app_connections(app_id));
        Box::pin(async move {
            let key = &key;
            let n: Option<i64> = conn
                .run("stats_get", |mut c| async move {
                    redis::cmd("GET").arg(key).query_async(&mut c).await
                })
                .await
                .map_err(unavailable)?;
            Ok(n.unwrap_or(0).max(0) as u64)
        })
    }

    fn subscription_count(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let (conn, key, channel) = (
            self.conn.clone(),
            self.conn.layout().app_channels(app_id),
            channel.to_owned(),
        );
        Box::pin(async move {
            let (key, channel) = (&key, &channel);
            let n: Option<i64> = conn
                .run("stats_hget", |mut c| async move {
                    redis::cmd("HGET").arg(key).arg(channel).query_async(&mut c).await
                })
                .await
                .map_err(unavailable)?;
            Ok(n.unwrap_or(0).max(0) as u64)
        })
    }

    fn api_request(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (conn, key) = (self.conn.clone(), self.conn.layout().api_requests(app_id, now));
        Box::pin(async move {
            let key = &key;
            let (count,): (u64,) = conn
                .run("api_rate", |mut c| async move {
                    redis::pipe()
                        .incr(key, 1)
                        .expire(key, 2)
                        .ignore()
                        .query_async(&mut c)
                        .await
                })
                .await
                .map_err(unavailable)?;
            Ok(count)
        })
    }

    fn channels(&self, app_id: &str) -> BoxFuture<'static, Result<Vec<(String, u64)>, StatsError>> {
        let (conn, key) = (self.conn.clone(), self.conn.layout().app_channels(app_id));
        Box::pin(async move {
            let key = &key;
            let all: HashMap<String, i64> = conn
                .run("stats_hgetall", |mut c| async move {
                    redis::cmd("HGETALL").arg(key).query_async(&mut c).await
                })
                .await
                .map_err(unavailable)?;
            Ok(all
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(c, n)| (c, n as u64))
                .collect())
        })
    }
}
