//! Cluster counts for the embedded default: the cluster is this node, so the counts are its own. A channel's
//! count crossing zero is reported to the node under the count's lock, so occupied and vacated for one
//! channel are reported in the order they happened.

use crate::backend_events::{ChannelTransition, Events};
use crate::cluster_stats::{Admission, ClusterStats, StatsError};
use crate::BoxFuture;
use dashmap::DashMap;

pub struct MemoryStats {
    events: Events,
    connections: DashMap<String, i64>,
    /// Per app and channel: subscriptions.
    subscriptions: DashMap<(String, String), i64>,
    /// Per app: the current second and the API requests counted in it.
    api: DashMap<String, (u64, u64)>,
}

impl MemoryStats {
    pub fn new(events: Events) -> Self {
        MemoryStats {
            events,
            connections: DashMap::new(),
            subscriptions: DashMap::new(),
            api: DashMap::new(),
        }
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(async move { value })
}

impl ClusterStats for MemoryStats {
    fn admit(&self, app_id: &str, limit: u64) -> BoxFuture<'static, Admission> {
        let mut open = self.connections.entry(app_id.to_owned()).or_default();
        let admission = if *open >= limit as i64 {
            Admission::Full
        } else {
            *open += 1;
            Admission::Admitted
        };
        ready(admission)
    }

    fn connections_changed(&self, app_id: &str, delta: i64) {
        *self.connections.entry(app_id.to_owned()).or_default() += delta;
    }

    fn subscriptions_changed(&self, app_id: &str, channel: &str, delta: i64) -> BoxFuture<'static, ()> {
        let key = (app_id.to_owned(), channel.to_owned());
        let mut entry = self.subscriptions.entry(key).or_default();
        let before = *entry;
        *entry += delta;
        let after = *entry;
        if (before <= 0) != (after <= 0) {
            self.events.channels_changed(vec![ChannelTransition {
                app_id: app_id.to_owned(),
                channel: channel.to_owned(),
                occupied: after > 0,
            }]);
        }
        drop(entry);
        if after <= 0 {
            self.subscriptions
                .remove_if(&(app_id.to_owned(), channel.to_owned()), |_, n| *n <= 0);
        }
        ready(())
    }

    fn connection_count(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let n = self.connections.get(app_id).map_or(0, |n| (*n).max(0) as u64);
        ready(Ok(n))
    }

    fn subscription_count(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let key = (app_id.to_owned(), channel.to_owned());
        let n = self.subscriptions.get(&key).map_or(0, |n| (*n).max(0) as u64);
        ready(Ok(n))
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
        ready(Ok(entry.1))
    }

    fn channels(&self, app_id: &str) -> BoxFuture<'static, Result<Vec<(String, u64)>, StatsError>> {
        let list = self
            .subscriptions
            .iter()
            .filter(|e| e.key().0 == app_id && *e.value() > 0)
            .map(|e| (e.key().1.clone(), *e.value() as u64))
            .collect();
        ready(Ok(list))
    }
}
