//! The node's side of the console (see [`crate::console`]): recording what happens while someone watches,
//! the watchers this node serves, and the once-a-second look at whether anyone watches anywhere.

use super::Node;
use crate::app::App;
use crate::connection::{ConnectionHandle, Outbound};
use crate::console::{ConsoleEntry, ConsoleEvent, CONSOLE_CHANNEL, NODE_REPORT_EVERY};
use crate::Broadcast;
use std::sync::Arc;

/// Entries a watcher may have waiting before its stream is ended as too slow (it reconnects).
const WATCHER_QUEUE: usize = 1024;

impl Node {
    /// Records what happened in `app` when its console is watched; `event` is only built then. Never waits.
    pub(crate) fn record(&self, app: &App, event: impl FnOnce() -> ConsoleEvent) {
        if !app.console.is_watched() {
            return;
        }
        let Some(skipped) = app.console.admit() else {
            crate::metrics::metrics().console_skipped.inc();
            return;
        };
        let mut entry = ConsoleEntry::now(&self.node_id, event());
        entry.skipped = skipped;
        self.publish_entry(app, &entry);
    }

    fn publish_entry(&self, app: &App, entry: &ConsoleEntry) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let publish = self
            .backbone
            .publish(&app.config, CONSOLE_CHANNEL, Broadcast::new(entry.to_frame(), None));
        runtime.spawn(async move {
            if let Err(e) = publish.await {
                tracing::debug!(error = %e, "console entry not published");
            }
        });
    }

    /// Starts watching `app`'s console from this node: entries from every node arrive on the returned
    /// watch until it is dropped. The watch is built before anything is awaited, so a caller that goes away
    /// meanwhile still takes it back off the channel and the counts.
    pub async fn watch(self: &Arc<Self>, app: &Arc<App>) -> ConsoleWatch {
        let (conn, rx) = ConnectionHandle::new(self.socket_ids.next(), WATCHER_QUEUE);
        let conn = Arc::new(conn);
        let ready = app.channels.add(CONSOLE_CHANNEL, &conn, None, || {
            self.backbone.subscribe(&app.config, CONSOLE_CHANNEL)
        });
        let counted = self.stats.subscriptions_changed(&app.config.id, CONSOLE_CHANNEL, 1);
        app.console.local_watcher(true);
        crate::metrics::metrics().console_watchers.inc();
        let watch = ConsoleWatch {
            node: self.clone(),
            app: app.clone(),
            conn,
            rx,
        };
        tokio::join!(ready, counted);
        watch
    }

    /// Looks once a second at which apps are watched anywhere in the cluster (every app's count asked at
    /// once), and while one is, reports this node's state for it (`address` is how an operator reaches this
    /// node). Started only on nodes with the dashboard on; runs until the node is gone.
    pub async fn run_console(node: std::sync::Weak<Self>, address: String) {
        let mut tick = tokio::time::interval(NODE_REPORT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: std::collections::HashMap<String, (u64, u64)> = Default::default();
        loop {
            tick.tick().await;
            let Some(node) = node.upgrade() else { return };
            let apps = node.apps();
            let counts = apps
                .iter()
                .map(|app| node.stats.subscription_count(&app.config.id, CONSOLE_CHANNEL));
            let counts = futures_util::future::join_all(counts).await;
            for (app, watchers) in apps.into_iter().zip(counts) {
                if let Ok(watchers) = watchers {
                    app.console.set_watched(watchers > 0);
                }
                let counts = (app.metrics.messages_received.get(), app.metrics.messages_sent.get());
                let before = last.insert(app.config.id.clone(), counts).unwrap_or(counts);
                if !app.console.is_watched() {
                    continue;
                }
                let report = ConsoleEvent::Node {
                    address: address.clone(),
                    ready: node.not_ready().is_none(),
                    connections: app.metrics.open_connections(),
                    messages_in: counts.0.saturating_sub(before.0),
                    messages_out: counts.1.saturating_sub(before.1),
                };
                // Outside the cap: a busy app must not make the nodes seem to vanish from the dashboard.
                node.publish_entry(&app, &ConsoleEntry::now(&node.node_id, report));
            }
        }
    }
}

/// A watcher of one app's console on this node. Dropping it stops the watch.
pub struct ConsoleWatch {
    node: Arc<Node>,
    app: Arc<App>,
    conn: Arc<ConnectionHandle>,
    rx: crate::outbound_queue::Receiver,
}

impl ConsoleWatch {
    /// The next entry's JSON; None when the watch ended because the watcher fell too far behind (entries
    /// were lost: the reader reconnects rather than see a gap it cannot tell).
    pub async fn next(&mut self) -> Option<String> {
        loop {
            if self.conn.overflowed() {
                return None;
            }
            match self.rx.recv().await? {
                Outbound::Frame(frame) => {
                    if let Some(json) = ConsoleEntry::json_from_frame(&frame) {
                        return Some(json);
                    }
                }
                Outbound::Close(..) => return None,
                Outbound::Pong(_) => {}
            }
        }
    }
}

impl Drop for ConsoleWatch {
    fn drop(&mut self) {
        let (node, app) = (&self.node, &self.app);
        app.channels.remove(CONSOLE_CHANNEL, &self.conn.socket_id, || {
            node.backbone.unsubscribe(&app.config, CONSOLE_CHANNEL)
        });
        drop(node.stats.subscriptions_changed(&app.config.id, CONSOLE_CHANNEL, -1));
        app.console.local_watcher(false);
        crate::metrics::metrics().console_watchers.dec();
    }
}
