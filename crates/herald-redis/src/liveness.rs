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
use std::sync::Arc;
use std::time::Duration;

/// What keeps this node's share of Redis state alive.
#[derive(Clone)]
pub struct Liveness {
    pub node: Arc<Node>,
    pub presence: Arc<RedisPresence>,
    pub stats: Arc<RedisStats>,
}

impl Liveness {
    /// Renews and reaps until the process ends; returns at once after spawning.
    pub fn spawn(self, lease: Duration) -> tokio::task::JoinHandle<()> {
        let every = (lease / 3).max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.round().await;
            }
        })
    }

    /// One renewal and one reap.
    pub async fn round(&self) {
        let renewed = self.presence.renew().await;
        let result = match &renewed {
            Ok(LeaseStatus::Ok) => "ok",
            Ok(LeaseStatus::Lost) => "lost",
            Ok(LeaseStatus::Reaped) => "reaped",
            Err(_) => "error",
        };
        metrics().lease_renewals.with_label_values(&[result]).inc();
        match renewed {
            Ok(LeaseStatus::Ok) => {}
            Ok(status) => {
                let announce = status == LeaseStatus::Reaped;
                let node_id = self.presence.node_id();
                tracing::warn!(
                    ?status,
                    node_id,
                    "this node's state was lost in Redis; registering it again"
                );
                self.reregister(announce).await;
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
        }
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
            for (channel, n) in app.channels.counts() {
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
