//! Node liveness: every node holds a lease in Redis (`herald:nodes`) that it renews several times per lease.
//! Each round it also reaps the nodes whose lease expired (a SIGKILL, a partition): their presence entries
//! and counts go, and `member_removed` goes out once for each user who had no connection left anywhere.
//! A node that finds Redis emptied puts its entries and counts back silently; one that finds itself reaped
//! puts them back and announces its users again.

use crate::redis_presence::{LeaseStatus, Reaped, RedisPresence};
use crate::redis_stats::RedisStats;
use bytes::Bytes;
use herald_core::metrics::metrics;
use herald_core::webhook::WebhookEvent;
use herald_core::{Broadcast, Node};
use herald_protocol::frame;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What keeps this node's share of Redis state alive.
#[derive(Clone)]
pub struct Liveness {
    pub node: Arc<Node>,
    pub presence: Arc<RedisPresence>,
    pub stats: Arc<RedisStats>,
}

/// The liveness tasks of a node; stopped before the node gives its lease up.
pub struct Running(Vec<tokio::task::JoinHandle<()>>);

impl Running {
    pub fn stop(&self) {
        self.0.iter().for_each(|t| t.abort());
    }
}

impl Liveness {
    /// Starts renewing (every lease/4, each attempt bounded to lease/3, on a task of its own so nothing
    /// else can make it late) and reaping (every lease/4). A node reaps only after its own renewals have
    /// succeeded for a whole lease: after a Redis stall every lease has expired, and the first node back must
    /// not reap the others before they had their turn to renew.
    pub fn spawn(self, lease: Duration) -> Running {
        let every = (lease / 4).max(Duration::from_millis(50));
        let started = std::time::Instant::now();
        // Milliseconds since `started` at which the renewals became healthy; u64::MAX while they are not.
        let healthy_since = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
        let renewing = {
            let (this, healthy_since) = (self.clone(), healthy_since.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let ok = matches!(tokio::time::timeout(lease / 3, this.renew()).await, Ok(true));
                    let now = started.elapsed().as_millis() as u64;
                    if !ok {
                        healthy_since.store(u64::MAX, Ordering::Release);
                    } else if healthy_since.load(Ordering::Acquire) == u64::MAX {
                        healthy_since.store(now, Ordering::Release);
                    }
                }
            })
        };
        let reaping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let since = healthy_since.load(Ordering::Acquire);
                let now = started.elapsed().as_millis() as u64;
                if since != u64::MAX && now.saturating_sub(since) >= lease.as_millis() as u64 {
                    self.reap_round().await;
                }
            }
        });
        Running(vec![renewing, reaping])
    }

    /// One renewal (and the re-registration it may call for); true when the lease is held.
    async fn renew(&self) -> bool {
        let renewed = self.presence.renew().await;
        let result = match &renewed {
            Ok(LeaseStatus::Ok) => "ok",
            Ok(LeaseStatus::Lost) => "lost",
            Ok(LeaseStatus::Reaped) => "reaped",
            Err(_) => "error",
        };
        metrics().lease_renewals.with_label_values(&[result]).inc();
        match renewed {
            Ok(LeaseStatus::Ok) => true,
            Ok(status) => {
                let announce = status == LeaseStatus::Reaped;
                let node_id = self.presence.node_id();
                tracing::warn!(
                    ?status,
                    node_id,
                    "this node's state was lost in Redis; registering it again"
                );
                let this = self.clone();
                // Re-registration may take a while; the lease is held again already.
                tokio::spawn(async move { this.reregister(announce).await });
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal failed");
                false
            }
        }
    }

    /// Retries failed leaves and reaps dead nodes.
    async fn reap_round(&self) {
        let retried = self.presence.retry_leaves().await;
        self.announce_removed(retried).await;
        let reaped = self.presence.reap().await;
        let result = if reaped.is_ok() { "ok" } else { "error" };
        metrics().presence_operations.with_label_values(&["reap", result]).inc();
        match reaped {
            Ok(reaped) => {
                if !reaped.nodes.is_empty() {
                    let (nodes, members_removed) = (&reaped.nodes, reaped.removed.len());
                    tracing::warn!(?nodes, members_removed, "reaped nodes whose lease expired");
                }
                self.announce(reaped).await;
            }
            Err(e) => tracing::warn!(error = %e, "reaping dead nodes failed"),
        }
    }

    /// Gives the lease up at the end of a clean shutdown.
    pub async fn retire(&self) {
        match self.presence.retire().await {
            Ok(reaped) => self.announce(reaped).await,
            Err(e) => tracing::warn!(error = %e, "could not give the lease up; other nodes will reap it"),
        }
    }

    /// Tells clients and webhooks what reaping took back.
    async fn announce(&self, reaped: Reaped) {
        self.announce_removed(reaped.removed).await;
        for (app_id, channel) in reaped.vacated {
            if channel.starts_with('#') {
                continue;
            }
            if let Some(app) = self.node.apps.by_id(&app_id) {
                self.node.webhooks.emit(app, WebhookEvent::channel_vacated(&channel));
            }
        }
    }

    async fn announce_removed(&self, removed: Vec<(String, String, String)>) {
        for (app_id, channel, user_id) in removed {
            let Some(app) = self.node.apps.by_id(&app_id) else {
                continue;
            };
            app.metrics.broadcast("presence");
            self.node
                .webhooks
                .emit(app, WebhookEvent::member_removed(&channel, &user_id));
            let broadcast = Broadcast {
                frame: Bytes::from(frame::member_removed(&channel, &user_id)),
                except: None,
            };
            if let Err(e) = self.node.publish(app, &channel, broadcast).await {
                tracing::warn!(app = %app_id, channel, error = %e, "member_removed not published");
            }
        }
    }

    async fn reregister(&self, announce: bool) {
        let mut connections = Vec::new();
        let mut subscriptions = Vec::new();
        for app in self.node.apps.iter() {
            connections.push((app.config.id.clone(), app.connection_count() as u64));
            for (channel, n) in app.channels.counts().into_iter().filter(|(c, _)| !c.starts_with('#')) {
                subscriptions.push((app.config.id.clone(), channel, n));
            }
        }
        self.stats.restore(&connections, &subscriptions);
        for entry in self.presence.local_entries() {
            match self.presence.rejoin(&entry).await {
                Ok(joined) if announce && joined.first_for_user => {
                    let Some(app) = self.node.apps.by_id(&entry.app_id) else {
                        continue;
                    };
                    let member = &entry.member;
                    self.node
                        .webhooks
                        .emit(app, WebhookEvent::member_added(&entry.channel, &member.user_id));
                    let frame = frame::member_added(&entry.channel, &member.user_id, member.user_info.as_deref());
                    let broadcast = Broadcast {
                        frame: Bytes::from(frame),
                        except: Some(entry.socket_id.clone()),
                    };
                    let _ = self.node.publish(app, &entry.channel, broadcast).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "re-registering a presence entry failed"),
            }
        }
    }
}
