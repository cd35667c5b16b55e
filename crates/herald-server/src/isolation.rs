//! Isolation: a node whose Redis link has been down longer than `HERALD_ISOLATION_TIMEOUT_MS` can no longer
//! deliver what the rest of the cluster publishes, and the healthy nodes have already announced its users
//! gone (its lease expired). It lets its clients go, spread over the drain window with a 4100 close so
//! pusher-js backs off and reconnects through the load balancer to a healthy node, and refuses new
//! WebSockets until the link is back. Shorter blips keep every client.
//!
//! This watcher decides when the node is isolated; the connections act on it (`websocket.rs`).

use crate::shutdown::Shutdown;
use herald_core::metrics::metrics;
use herald_core::Node;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the watcher looks at the node's readiness.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Watches the node's Redis link; `timeout` zero never isolates.
pub fn spawn(node: Arc<Node>, shutdown: Shutdown, timeout: Duration) {
    if timeout.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut down_since: Option<Instant> = None;
        loop {
            tick.tick().await;
            let why = node.not_ready();
            match (why, down_since) {
                (Some(_), None) => down_since = Some(Instant::now()),
                (Some(why), Some(since)) if since.elapsed() >= timeout && !shutdown.is_draining() => {
                    if shutdown.set_isolated(true) {
                        metrics().isolated.set(1);
                        metrics().isolations.inc();
                        tracing::warn!(
                            why,
                            down_ms = since.elapsed().as_millis() as u64,
                            connections = node.connections(),
                            "cut off from Redis longer than HERALD_ISOLATION_TIMEOUT_MS: closing this node's \
                             connections over the drain window (4100, clients reconnect to healthy nodes) and \
                             refusing new ones until Redis is back; check the network between this node and Redis"
                        );
                    }
                }
                (Some(_), Some(_)) => {}
                (None, _) => {
                    down_since = None;
                    if shutdown.set_isolated(false) {
                        metrics().isolated.set(0);
                        tracing::info!("Redis link is back: accepting connections again");
                    }
                }
            }
        }
    });
}
