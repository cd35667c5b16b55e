//! Cluster counts for the embedded default: the cluster is this node, so the counts are its own.

use crate::app::AppRegistry;
use crate::cluster_stats::{ClusterStats, StatsError};
use crate::BoxFuture;
use std::sync::{Arc, OnceLock};

#[derive(Default)]
pub struct MemoryStats {
    apps: OnceLock<Arc<AppRegistry>>,
    webhooks: OnceLock<crate::webhook::Webhooks>,
    /// Per app: the current second and the API requests counted in it.
    api: dashmap::DashMap<String, (u64, u64)>,
}

impl MemoryStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects the counts to the apps they read and the webhooks their transitions raise (once, when
    /// the node is built).
    pub fn attach(&self, apps: Arc<AppRegistry>, webhooks: crate::webhook::Webhooks) {
        let _ = self.apps.set(apps);
        let _ = self.webhooks.set(webhooks);
    }

    fn app(&self, app_id: &str) -> Option<Arc<crate::App>> {
        self.apps.get().and_then(|apps| apps.by_id(app_id).cloned())
    }
}

impl ClusterStats for MemoryStats {
    fn connections_changed(&self, _app_id: &str, _delta: i64) {}

    fn subscriptions_changed(&self, _app_id: &str, _channel: &str, _delta: i64) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    /// This node is the cluster: its first subscriber occupies the channel and its last one vacates it.
    fn local_transition(&self, app_id: &str, channel: &str, occupied: bool) {
        let (Some(app), Some(webhooks)) = (self.app(app_id), self.webhooks.get()) else {
            return;
        };
        if channel.starts_with('#') {
            return;
        }
        let event = if occupied {
            crate::webhook::WebhookEvent::channel_occupied(channel)
        } else {
            crate::webhook::WebhookEvent::channel_vacated(channel)
        };
        webhooks.emit(&app, event);
    }

    fn connection_count(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let count = self.app(app_id).map_or(0, |app| app.connection_count() as u64);
        Box::pin(async move { Ok(count) })
    }

    fn subscription_count(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let count = self
            .app(app_id)
            .map_or(0, |app| app.channels.subscriber_count(channel) as u64);
        Box::pin(async move { Ok(count) })
    }

    fn api_request(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut entry = self.api.entry(app_id.to_owned()).or_insert((now, 0));
        if entry.0 != now {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let count = entry.1;
        Box::pin(async move { Ok(count) })
    }

    fn channels(&self, app_id: &str) -> BoxFuture<'static, Result<Vec<(String, u64)>, StatsError>> {
        let list = self.app(app_id).map_or_else(Vec::new, |app| app.channels.counts());
        Box::pin(async move { Ok(list) })
    }
}
