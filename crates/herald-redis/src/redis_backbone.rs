//! The Redis backbone: one pub/sub connection that follows the channels with local subscribers, one
//! multiplexed connection for publishing, and a heartbeat through Redis that proves the subscription is
//! alive. Losing Redis turns the node unready; on reconnect every channel is subscribed again. On Redis
//! Cluster, Herald's own channels travel on sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), so their traffic is
//! spread over the shards; Laravel's stay classic ([`crate::subscription_link`]).

use crate::connection::{RedisConnection, COMMAND_TIMEOUT};
use crate::endpoint::Endpoint;
use crate::envelope::Envelope;
use crate::keys::{self, Layout};
use crate::subscription_link::{Arrival, Link, LinkError, Wanted};
use herald_core::backbone::{Backbone, BackboneError};
use herald_core::backend_events::{Events, Inbound};
use herald_core::metrics::metrics;
use herald_core::{AppConfig, BoxFuture, Broadcast};
use herald_protocol::channel::is_internal;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often the node publishes to its heartbeat channel.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A subscription that has not seen its own heartbeat for this long is considered dead.
const HEARTBEAT_DEADLINE: Duration = Duration::from_secs(5);
/// Redis Cluster: how long the sharded channels of a failed-over shard may stay unsubscribed before the whole
/// link is connected afresh.
const REPAIR_DEADLINE: Duration = Duration::from_secs(30);
/// Redis Cluster: the pause between two attempts to subscribe the sharded channels again.
const REPAIR_RETRY: Duration = Duration::from_millis(250);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

enum Command {
    Subscribe {
        app: AppConfig,
        channel: String,
        ack: oneshot::Sender<()>,
    },
    Unsubscribe {
        app: AppConfig,
        channel: String,
    },
}

/// Where a message on a Redis channel goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Laravel's RedisBroadcaster payload.
    Laravel,
    /// Herald's own envelope.
    Herald,
}

#[derive(Debug, Clone)]
struct Route {
    app_id: String,
    channel: String,
    source: Source,
}

/// The backbone over one Redis server (or one Redis Cluster).
pub struct RedisBackbone {
    me: Weak<RedisBackbone>,
    layout: Layout,
    ready: Arc<AtomicBool>,
    commands: mpsc::UnboundedSender<Command>,
    publisher: RedisConnection,
    reconnects: Arc<std::sync::atomic::AtomicU64>,
}

impl RedisBackbone {
    /// Starts the backbone's tasks; what arrives is reported to `events`. An unreachable Redis is retried,
    /// and the node stays unready until it answers. `apps` gives the Laravel prefixes of every app, for the
    /// cache-channel patterns every node listens to.
    pub fn start(client: impl Into<Endpoint>, apps: &[AppConfig], node_id: &str, events: Events) -> Arc<Self> {
        let client: Endpoint = client.into();
        let layout = client.layout();
        let (commands, rx) = mpsc::unbounded_channel();
        let backbone = Arc::new_cyclic(|me| RedisBackbone {
            me: me.clone(),
            layout,
            ready: Arc::new(AtomicBool::new(false)),
            commands,
            publisher: RedisConnection::new(client.clone()),
            reconnects: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        });
        let subscriber = Subscriber {
            client,
            apps: apps.to_vec(),
            events,
            ready: backbone.ready.clone(),
            reconnects: backbone.reconnects.clone(),
            heartbeat: layout.heartbeat_channel(node_id),
            classic_heartbeat: layout.classic_heartbeat_channel(node_id),
            routes: HashMap::new(),
        };
        tokio::spawn(subscriber.run(rx));
        let weak = Arc::downgrade(&backbone);
        let heartbeat = layout.heartbeat_channel(node_id);
        let classic_heartbeat = layout.classic_heartbeat_channel(node_id);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            loop {
                tick.tick().await;
                let Some(backbone) = weak.upgrade() else {
                    return;
                };
                let _ = backbone.raw_publish(heartbeat.clone(), b"1".to_vec(), true).await;
                if let Some(classic) = &classic_heartbeat {
                    let _ = backbone.raw_publish(classic.clone(), b"1".to_vec(), false).await;
                }
            }
        });
        backbone
    }

    /// Times the pub/sub connection was re-established.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Publishes on `channel`; Herald's own channels (`sharded`) are sharded on Redis Cluster.
    async fn raw_publish(&self, channel: String, payload: Vec<u8>, sharded: bool) -> Result<(), BackboneError> {
        let (channel, payload) = (&channel, &payload);
        let command = match self.layout {
            Layout::Cluster if sharded => "SPUBLISH",
            _ => "PUBLISH",
        };
        self.publisher
            .run("publish", |mut conn| async move {
                redis::cmd(command)
                    .arg(channel)
                    .arg(payload)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(|_| ())
            .map_err(|e| BackboneError::Unavailable(e.to_string()))
    }
}

impl Backbone for RedisBackbone {
    fn subscribe(&self, app: &AppConfig, channel: &str) -> BoxFuture<'static, ()> {
        let (ack, done) = oneshot::channel();
        let _ = self.commands.send(Command::Subscribe {
            app: app.clone(),
            channel: channel.to_owned(),
            ack,
        });
        Box::pin(async move {
            let _ = tokio::time::timeout(COMMAND_TIMEOUT, done).await;
        })
    }

    fn unsubscribe(&self, app: &AppConfig, channel: &str) {
        let _ = self.commands.send(Command::Unsubscribe {
            app: app.clone(),
            channel: channel.to_owned(),
        });
    }

    fn publish(
        &self,
        app: &AppConfig,
        channel: &str,
        broadcast: Broadcast,
    ) -> BoxFuture<'static, Result<(), BackboneError>> {
        let key = self.layout.broadcast_channel(&app.id, channel);
        let payload = Envelope::of(&broadcast).encode();
        let this = self.me.upgrade();
        Box::pin(async move {
            match this {
                Some(this) => this.raw_publish(key, payload, true).await,
                None => Err(BackboneError::ShuttingDown),
            }
        })
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// A random 64-bit number (node ids, epochs).
pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// The task that owns the pub/sub connection.
struct Subscriber {
    client: Endpoint,
    /// Every app's settings, for its Laravel prefixes.
    apps: Vec<AppConfig>,
    /// The node, which gets everything that arrives.
    events: Events,
    ready: Arc<AtomicBool>,
    reconnects: Arc<std::sync::atomic::AtomicU64>,
    heartbeat: String,
    /// Redis Cluster: the heartbeat on classic pub/sub, which proves the connection Laravel's channels arrive
    /// on (the other heartbeat is sharded).
    classic_heartbeat: Option<String>,
    /// Redis channel to the app channels it feeds.
    routes: HashMap<String, Vec<Route>>,
}

impl Subscriber {
    /// Applies a command to the wanted subscriptions; returns the Redis channels to subscribe to or
    /// unsubscribe from, each marked when it is Herald's own.
    fn apply(&mut self, command: &Command) -> (Vec<Wanted>, Vec<Wanted>) {
        let layout = self.client.layout();
        let (mut add, mut remove) = (Vec::new(), Vec::new());
        match command {
            Command::Subscribe { app, channel, .. } => {
                for (redis_channel, source) in redis_channels(layout, app, channel) {
                    let routes = self.routes.entry(redis_channel.clone()).or_default();
                    if routes.is_empty() {
                        add.push((redis_channel, source == Source::Herald));
                    }
                    routes.push(Route {
                        app_id: app.id.clone(),
                        channel: channel.clone(),
                        source,
                    });
                }
            }
            Command::Unsubscribe { app, channel } => {
                for (redis_channel, source) in redis_channels(layout, app, channel) {
                    if let Some(routes) = self.routes.get_mut(&redis_channel) {
                        routes.retain(|r| !(r.app_id == app.id && &r.channel == channel));
                        if routes.is_empty() {
                            self.routes.remove(&redis_channel);
                            remove.push((redis_channel, source == Source::Herald));
                        }
                    }
                }
            }
        }
        (add, remove)
    }

    /// Every Redis channel wanted now, the heartbeat included.
    fn wanted(&self) -> Vec<Wanted> {
        let mut all: Vec<Wanted> = self
            .routes
            .iter()
            .map(|(c, routes)| (c.clone(), routes.iter().any(|r| r.source == Source::Herald)))
            .collect();
        all.push((self.heartbeat.clone(), true));
        if let Some(classic) = &self.classic_heartbeat {
            all.push((classic.clone(), false));
        }
        all
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut backoff = BACKOFF_MIN;
        let mut first = true;
        // When the subscription was last known good, while it is down: the start of a loss window.
        let mut down_since: Option<Instant> = None;
        // A shard's failover leaves its slots unserved for a few seconds: retry soon enough to follow it.
        let backoff_max = match self.client.layout() {
            Layout::Single => BACKOFF_MAX,
            Layout::Cluster => Duration::from_secs(1),
        };
        loop {
            let endpoint = self.client.clone();
            let connect = async move { Link::connect(&endpoint).await };
            tokio::pin!(connect);
            let result = loop {
                tokio::select! {
                    r = tokio::time::timeout(COMMAND_TIMEOUT, &mut connect) => break r.unwrap_or_else(|_| Err(timeout_error())),
                    Some(command) = commands.recv() => self.apply_offline(command),
                }
            };
            let mut link = match result {
                Ok(link) => link,
                Err(e) => {
                    self.client.failed();
                    let redis = self.client.address();
                    tracing::warn!(redis, error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot connect to Redis for pub/sub; check HERALD_REDIS_URL and Redis's TLS and ACL settings");
                    backoff = self.back_off(backoff, backoff_max, &mut commands).await;
                    continue;
                }
            };
            let all = self.wanted();
            let mut ok = true;
            for chunk in all.chunks(1000) {
                if !matches!(
                    tokio::time::timeout(COMMAND_TIMEOUT, link.subscribe(chunk)).await,
                    Ok(Ok(()))
                ) {
                    ok = false;
                    break;
                }
            }
            let patterns = cache_patterns(&self.apps);
            if ok && !patterns.is_empty() {
                ok = matches!(
                    tokio::time::timeout(COMMAND_TIMEOUT, link.psubscribe(&patterns)).await,
                    Ok(Ok(()))
                );
            }
            if !ok {
                tracing::warn!(
                    retry_in_ms = backoff.as_millis() as u64,
                    "Redis subscriber could not resubscribe; reconnecting"
                );
                drop(link);
                backoff = self.back_off(backoff, backoff_max, &mut commands).await;
                continue;
            }
            backoff = BACKOFF_MIN;
            if !first {
                self.reconnects.fetch_add(1, Ordering::Relaxed);
                metrics().redis_reconnects.inc();
            }
            first = false;
            if let Some(since) = down_since.take() {
                let gap = since.elapsed();
                metrics().redis_subscription_gaps.observe(gap.as_secs_f64());
                tracing::warn!(
                    gap_ms = gap.as_millis() as u64,
                    "Redis subscription was down: broadcasts published on Redis in that window did not reach this node's clients (Redis pub/sub does not replay them)"
                );
            }
            tracing::info!(channels = all.len() - 1, "Redis subscription live");
            self.set_live(true);
            let mut last_beat = Instant::now();
            let mut last_check = Instant::now();
            let mut check = tokio::time::interval(HEARTBEAT_EVERY);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Redis Cluster: sharded subscriptions to subscribe again (a shard's connection closed, a slot
            // moved, a subscribe failed), since when, and the attempt running.
            let mut repair_since: Option<Instant> = None;
            let mut repair: Option<BoxFuture<'static, Result<(), redis::RedisError>>> = None;
            // Whether the attempt running covers every sharded channel (after a lost connection), and the
            // channels Redis dropped while an attempt ran, for the next one.
            let mut repairing_all = false;
            let mut repair_again = false;
            let mut dropped_meanwhile: Vec<String> = Vec::new();
            // Redis Cluster: the classic connection's own heartbeat, and the read of the cluster's slots running.
            let mut last_classic_beat = Instant::now();
            let mut observing: Option<BoxFuture<'static, ()>> = None;
            let mut failovers_seen = self.client.failovers();
            let why = loop {
                tokio::select! {
                    // Messages first: after a pause (SIGSTOP, a stall) what already sits in the socket is read
                    // before the heartbeat deadline is checked.
                    biased;
                    arrival = link.next() => match arrival {
                        Arrival::Message(msg) => {
                            let started = Instant::now();
                            if msg.channel() == self.heartbeat {
                                last_beat = Instant::now();
                            } else if self.classic_heartbeat.as_deref() == Some(msg.channel()) {
                                last_classic_beat = Instant::now();
                            } else if msg.from_pattern() {
                                self.cache_event(msg.channel(), msg.payload());
                            } else {
                                self.route(msg.channel(), msg.payload(), started);
                            }
                        }
                        Arrival::Dropped(channel) => {
                            // Redis Cluster moved the channel's slot to another shard (or confirms an
                            // unsubscribe of a channel wanted again since): subscribe it again where it lives
                            // now, if it is still wanted.
                            if channel == self.heartbeat || self.routes.contains_key(&channel) {
                                tracing::debug!(redis_channel = channel, "sharded subscription ended by Redis; subscribing where the slot lives now");
                                if repair.is_none() {
                                    repair_since = Some(Instant::now());
                                    repair = self.repair(&link, Duration::ZERO, Some(vec![channel]));
                                } else {
                                    dropped_meanwhile.push(channel);
                                }
                            }
                        }
                        Arrival::ShardLost => {
                            if repairing_all {
                                repair_again = true;
                            } else {
                                tracing::warn!("a Redis Cluster node's connection closed; subscribing Herald's channels again where their slots live now");
                                repair_since = Some(Instant::now());
                                repairing_all = true;
                                self.set_live(false);
                                repair = self.repair(&link, Duration::ZERO, None);
                            }
                        }
                        Arrival::Nothing => {}
                        Arrival::Broken(why) => break why,
                    },
                    done = async { repair.as_mut().expect("guarded").await }, if repair.is_some() => {
                        repair = None;
                        match done {
                            Ok(()) if std::mem::take(&mut repair_again) => {
                                // Something broke while it ran: every channel once more, the new ones included.
                                dropped_meanwhile.clear();
                                repair = self.repair(&link, Duration::ZERO, None);
                            }
                            Ok(()) => {
                                let since = repair_since.take().expect("a repair has a start");
                                last_beat = Instant::now();
                                last_classic_beat = Instant::now();
                                if std::mem::take(&mut repairing_all) {
                                    self.set_live(true);
                                    // A window in which broadcasts on the failed shard's channels did not reach
                                    // this node, counted as any loss of the subscription is.
                                    let gap = since.elapsed();
                                    metrics().redis_subscription_repairs.inc();
                                    metrics().redis_subscription_gaps.observe(gap.as_secs_f64());
                                    tracing::warn!(gap_ms = gap.as_millis() as u64, "Herald's sharded channels subscribed again: broadcasts published on the failed shard in that window did not reach this node's clients (Redis pub/sub does not replay them)");
                                }
                                if !dropped_meanwhile.is_empty() {
                                    repair_since = Some(Instant::now());
                                    repair = self.repair(&link, Duration::ZERO, Some(std::mem::take(&mut dropped_meanwhile)));
                                }
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "sharded channels not subscribed again yet; retrying");
                                repairing_all = true;
                                self.set_live(false);
                                repair_again = false;
                                dropped_meanwhile.clear();
                                repair = self.repair(&link, REPAIR_RETRY, None);
                            }
                        }
                    }
                    Some(command) = commands.recv() => {
                        let (add, remove) = self.apply(&command);
                        let mut result = Ok(());
                        if !add.is_empty() {
                            result = link.subscribe(&add).await;
                        }
                        if result.is_ok() && !remove.is_empty() {
                            result = link.unsubscribe(&remove).await;
                        }
                        if let Command::Subscribe { ack, .. } = command {
                            let _ = ack.send(());
                        }
                        match result {
                            Ok(()) => {}
                            Err(LinkError::Classic(_)) => break "SUBSCRIBE failed",
                            Err(LinkError::Sharded(e)) => {
                                // A shard is failing over: its channels are subscribed again once it answers.
                                tracing::debug!(error = %e, "SSUBSCRIBE failed; subscribing again once the shard answers");
                                repair_since.get_or_insert_with(Instant::now);
                                if repairing_all {
                                    repair_again = true;
                                } else {
                                    repairing_all = true;
                                    self.set_live(false);
                                    repair = self.repair(&link, REPAIR_RETRY, None);
                                }
                            }
                        }
                    }
                    _ = check.tick() => {
                        let since_check = last_check.elapsed();
                        last_check = Instant::now();
                        if since_check > HEARTBEAT_EVERY * 3 {
                            // This process did not run for a while (SIGSTOP, a paused VM, a starved CPU): what
                            // Redis sent meanwhile, heartbeats included, still sits in the socket, read by the
                            // connection's own task. Give the heartbeat a fresh deadline instead of dropping
                            // the connection and the messages with it.
                            tracing::warn!(paused_ms = since_check.as_millis() as u64, "this process did not run for a while; reading what Redis sent meanwhile");
                            last_beat = Instant::now();
                            last_classic_beat = Instant::now();
                        } else if let Some(since) = repair_since {
                            // The heartbeats' own shard may be the one failing over: their deadlines wait for
                            // the repair, which has its own.
                            if since.elapsed() > REPAIR_DEADLINE {
                                break "Herald's sharded channels could not be subscribed again";
                            }
                        } else if last_beat.elapsed() > HEARTBEAT_DEADLINE {
                            break "no heartbeat through Redis";
                        } else if self.classic_heartbeat.is_some() && last_classic_beat.elapsed() > HEARTBEAT_DEADLINE {
                            break "no heartbeat through Redis Cluster's classic pub/sub (Laravel's channels)";
                        }
                        if let (Some(_), Some(conn), None) = (self.client.cluster_nodes(), link.sharded(), &observing) {
                            // A shard's failover shows as a change of primaries (read apart from this loop, so
                            // a slow answer never holds the messages up).
                            let endpoint = self.client.clone();
                            observing = Some(Box::pin(async move {
                                let mut conn = conn;
                                let cluster = endpoint.cluster_nodes().expect("a cluster endpoint");
                                if let Ok(Err(e)) = tokio::time::timeout(COMMAND_TIMEOUT, cluster.observe(&mut conn)).await {
                                    tracing::debug!(error = %e, "Redis Cluster's slots not read");
                                }
                            }));
                        }
                    }
                    () = async { observing.as_mut().expect("guarded").await }, if observing.is_some() => {
                        observing = None;
                        // The lease task handles a failover like a Redis that may have lost writes; a repair
                        // waiting on the old primary starts again at once towards the new one.
                        let failovers = self.client.failovers();
                        if failovers != failovers_seen && repairing_all {
                            repair_again = false;
                            repair = self.repair(&link, Duration::ZERO, None);
                        }
                        failovers_seen = failovers;
                    }
                }
            };
            self.set_live(false);
            // Behind Sentinel the primary may have changed: ask again before reconnecting.
            self.client.failed();
            if let Some(cluster) = self.client.cluster_nodes() {
                cluster.failing();
            }
            // The window opens at the last heartbeat seen: what came after it may not have been delivered.
            down_since = Some(last_beat);
            tracing::warn!(reason = why, "Redis subscription lost; reconnecting");
        }
    }

    /// Whether every wanted channel is subscribed: the node's readiness and `herald_redis_subscription_up`.
    /// On Redis Cluster it is false while the sharded channels of a lost shard are being subscribed again, as
    /// it is on one Redis while the subscription reconnects: broadcasts on those channels would not arrive.
    fn set_live(&self, live: bool) {
        self.ready.store(live, Ordering::Release);
        metrics().redis_subscription_up.set(i64::from(live));
    }

    /// Redis Cluster: subscribes sharded channels again: `only` those (a slot moved), or every wanted one after
    /// a lost connection (those still subscribed are unchanged; those of a failed-over shard go where their
    /// slot lives now). Starts after `delay`, bounded in time. After a lost connection it goes ahead only once
    /// every primary the cluster names answers, so that a shard still failing over costs one failed `PING`,
    /// not one failed `SSUBSCRIBE` per channel.
    fn repair(
        &self,
        link: &Link,
        delay: Duration,
        only: Option<Vec<String>>,
    ) -> Option<BoxFuture<'static, Result<(), redis::RedisError>>> {
        let mut conn = link.sharded()?;
        let cluster = self.client.clone();
        let after_loss = only.is_none();
        let channels: Vec<String> =
            only.unwrap_or_else(|| self.wanted().into_iter().filter(|(_, s)| *s).map(|(c, _)| c).collect());
        Some(Box::pin(async move {
            tokio::time::sleep(delay).await;
            let attempt = async {
                if let Some(cluster) = cluster.cluster_nodes().filter(|_| after_loss) {
                    for primary in cluster.observe(&mut conn).await? {
                        crate::cluster_topology::on_node(&mut conn, &primary, &redis::cmd("PING")).await?;
                    }
                }
                let names: Vec<&str> = channels.iter().map(String::as_str).collect();
                crate::subscription_link::ssubscribe(conn.clone(), &names).await
            };
            tokio::time::timeout(COMMAND_TIMEOUT, attempt)
                .await
                .unwrap_or_else(|_| Err(timeout_error()))
        }))
    }

    /// Waits `backoff` before the next connection attempt, still taking (and acknowledging) subscribe
    /// commands meanwhile; returns the next, doubled backoff.
    async fn back_off(
        &mut self,
        backoff: Duration,
        max: Duration,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Duration {
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                Some(command) = commands.recv() => self.apply_offline(command),
            }
        }
        (backoff * 2).min(max)
    }

    fn apply_offline(&mut self, command: Command) {
        self.apply(&command);
        if let Command::Subscribe { ack, .. } = command {
            let _ = ack.send(());
        }
    }

    fn route(&self, redis_channel: &str, payload: &[u8], started: Instant) {
        let Some(routes) = self.routes.get(redis_channel) else {
            return;
        };
        for route in routes {
            let inbound = match route.source {
                Source::Laravel => Inbound::Laravel(payload),
                Source::Herald => match Envelope::decode(payload) {
                    Some(e) => Inbound::Broadcast(e.into_broadcast()),
                    None => {
                        tracing::warn!(redis_channel, "ignored a malformed Herald envelope");
                        continue;
                    }
                },
            };
            self.events.delivered(&route.app_id, &route.channel, inbound, started);
        }
    }

    /// A message on one of the cache patterns every node listens to (whether or not anyone here is
    /// subscribed): reported for each app and prefix it belongs to.
    fn cache_event(&self, redis_channel: &str, payload: &[u8]) {
        for app in &self.apps {
            for prefix in &app.redis_prefixes {
                let Some(channel) = redis_channel.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                if herald_protocol::channel::is_cache(channel) {
                    self.events.cache_event(&app.id, channel, payload);
                }
            }
        }
    }
}

/// The patterns of the cache channels of every app: `<prefix>cache-*`, `<prefix>private-cache-*`, ...
fn cache_patterns(apps: &[AppConfig]) -> Vec<String> {
    let escape = |p: &str| {
        p.chars().fold(String::new(), |mut out, c| {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
            out
        })
    };
    let mut patterns = Vec::new();
    for app in apps {
        for prefix in &app.redis_prefixes {
            for kind in [
                "cache-",
                "private-cache-",
                "presence-cache-",
                "private-encrypted-cache-",
            ] {
                patterns.push(format!("{}{kind}*", escape(prefix)));
            }
        }
    }
    patterns.sort();
    patterns.dedup();
    patterns
}

fn redis_channels(layout: Layout, app: &AppConfig, channel: &str) -> Vec<(String, Source)> {
    // The cluster's own channels never come from Laravel.
    let laravel = if is_internal(channel) {
        &[][..]
    } else {
        &app.redis_prefixes[..]
    };
    let mut out: Vec<(String, Source)> = keys::laravel_channels(laravel, channel)
        // With prefixes like "" and "laravel_database_", a channel named "laravel_database_private-a" would,
        // through the empty prefix, be Laravel's `private-a` under the longer prefix: a public name reading a
        // private channel. A Redis name that a longer prefix of the app claims belongs to that prefix only.
        .filter(|(redis_channel, prefix_len)| {
            !app.redis_prefixes
                .iter()
                .any(|q| q.len() > *prefix_len && redis_channel.starts_with(q.as_str()))
        })
        .map(|(c, _)| (c, Source::Laravel))
        .collect();
    out.push((layout.broadcast_channel(&app.id, channel), Source::Herald));
    out
}

fn timeout_error() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, "timed out"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::AppConfig;

    #[test]
    fn cache_patterns_cover_every_prefix_and_kind_with_globs_escaped() {
        let mut a = AppConfig::new("a", "ka", "s");
        a.redis_prefixes = vec!["laravel_database_".into(), String::new()];
        let mut b = AppConfig::new("b", "kb", "s");
        b.redis_prefixes = vec!["odd*[x]_".into()];
        let patterns = cache_patterns(&[a, b]);
        assert!(patterns.contains(&"laravel_database_cache-*".to_string()));
        assert!(patterns.contains(&"private-encrypted-cache-*".to_string()));
        assert!(patterns.contains(&"odd\\*\\[x\\]_presence-cache-*".to_string()));
        assert_eq!(patterns.len(), 12);
    }

    #[test]
    fn a_public_name_never_maps_onto_another_prefix_channel() {
        let mut app = AppConfig::new("a", "k", "s");
        app.redis_prefixes = vec!["laravel_database_".into(), String::new()];
        let names = |channel: &str| -> Vec<String> {
            redis_channels(Layout::Single, &app, channel)
                .into_iter()
                .filter(|(_, s)| *s == Source::Laravel)
                .map(|(c, _)| c)
                .collect()
        };
        assert_eq!(
            names("private-orders.1"),
            vec!["laravel_database_private-orders.1", "private-orders.1"]
        );
        // through "" this would be Laravel's private-orders.1 under "laravel_database_": not subscribed
        assert_eq!(
            names("laravel_database_private-orders.1"),
            vec!["laravel_database_laravel_database_private-orders.1"]
        );
    }
}
