//! Node liveness: every node holds a lease in Redis (`herald:nodes`) that it renews several times per lease.
//! Each round it also reaps the nodes whose lease expired (a SIGKILL, a partition): their presence entries
//! go, and `member_removed` goes out once for each user who had no connection left anywhere. A node that
//! finds Redis emptied puts its entries back silently; one that finds itself reaped puts them back and
//! announces its users again.

use crate::redis_presence::{LeaseStatus, RedisPresence};
use bytes::Bytes;
use herald_core::metrics::metrics;
use herald_core::{Broadcast, Node};
use herald_protocol::frame;
use std::sync::Arc;
use std::time::Duration;

/// Renews and reaps until the process ends; returns at once after spawning.
pub fn spawn(node: Arc<Node>, presence: Arc<RedisPresence>, lease: Duration) -> tokio::task::JoinHandle<()> {
    let every = (lease / 3).max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            round(&node, &presence).await;
        }
    })
}

/// One renewal and one reap.
pub async fn round(node: &Arc<Node>, presence: &Arc<RedisPresence>) {
    let renewed = presence.renew().await;
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
            tracing::warn!(
                ?status,
                node_id = presence.node_id(),
                "presence entries lost in Redis; registering them again"
            );
            reregister(node, presence, announce).await;
        }
        Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
    }
    let reaped = presence.reap().await;
    let result = if reaped.is_ok() { "ok" } else { "error" };
    metrics().presence_operations.with_label_values(&["reap", result]).inc();
    match reaped {
        Ok((nodes, removed)) => {
            if !nodes.is_empty() {
                tracing::warn!(
                    ?nodes,
                    members_removed = removed.len(),
                    "reaped nodes whose lease expired"
                );
            }
            for (app_id, channel, user_id) in removed {
                let Some(app) = node.apps.by_id(&app_id) else {
                    continue;
                };
                app.metrics.broadcast("presence");
                let broadcast = Broadcast {
                    frame: Bytes::from(frame::member_removed(&channel, &user_id)),
                    except: None,
                };
                if let Err(e) = node.publish(app, &channel, broadcast).await {
                    tracing::warn!(app = %app_id, channel, error = %e, "member_removed for a dead node not published");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "reaping dead nodes failed"),
    }
}

async fn reregister(node: &Arc<Node>, presence: &Arc<RedisPresence>, announce: bool) {
    for entry in presence.local_entries() {
        match presence.rejoin(&entry).await {
            Ok(joined) if announce && joined.first_for_user => {
                let Some(app) = node.apps.by_id(&entry.app_id) else {
                    continue;
                };
                let frame =
                    frame::member_added(&entry.channel, &entry.member.user_id, entry.member.user_info.as_deref());
                let broadcast = Broadcast {
                    frame: Bytes::from(frame),
                    except: Some(entry.socket_id.clone()),
                };
                let _ = node.publish(app, &entry.channel, broadcast).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "re-registering a presence entry failed"),
        }
    }
}
