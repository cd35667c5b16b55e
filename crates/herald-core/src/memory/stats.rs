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
    /// Per app, per channel: subscriptions. Keyed app first so that a count is found from the names as they
    /// are (`&str`): every subscribe and unsubscribe changes one, and a key built for each look-up cost more
    /// than the rest of the change.
    subscriptions: DashMap<Box<str>, DashMap<Box<str>, i64>>,
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

    /// The app's connection count, locked for a change; the key is allocated only on the app's first use.
    fn connections_of(&self, app_id: &str) -> dashmap::mapref::one::RefMut<'_, String, i64> {
        match self.connections.get_mut(app_id) {
            Some(count) => count,
            None => self.connections.entry(app_id.to_owned()).or_default(),
        }
    }

    /// The app's channel counts, made on the app's first subscription.
    fn channels_of(&self, app_id: &str) -> dashmap::mapref::one::Ref<'_, Box<str>, DashMap<Box<str>, i64>> {
        match self.subscriptions.get(app_id) {
            Some(channels) => channels,
            None => self.subscriptions.entry(app_id.into()).or_default().downgrade(),
        }
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(async move { value })
}

impl ClusterStats for MemoryStats {
    fn admit(&self, app_id: &str, limit: u64) -> BoxFuture<'static, Admission> {
        let mut open = self.connections_of(app_id);
        let admission = if *open >= limit as i64 {
            Admission::Full
        } else {
            *open += 1;
            Admission::Admitted
        };
        ready(admission)
    }

    fn connections_changed(&self, app_id: &str, delta: i64) {
        *self.connections_of(app_id) += delta;
    }

    fn subscriptions_changed(&self, app_id: &str, channel: &str, delta: i64) -> BoxFuture<'static, ()> {
        let channels = self.channels_of(app_id);
        let mut entry = match channels.get_mut(channel) {
            Some(count) => count,
            None => channels.entry(channel.into()).or_default(),
        };
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
            channels.remove_if(channel, |_, n| *n <= 0);
        }
        ready(())
    }

    fn connection_count(&self, app_id: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let n = self.connections.get(app_id).map_or(0, |n| (*n).max(0) as u64);
        ready(Ok(n))
    }

    fn subscription_count(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<u64, StatsError>> {
        let n = self
            .subscriptions
            .get(app_id)
            .and_then(|channels| channels.get(channel).map(|n| (*n).max(0) as u64))
            .unwrap_or(0);
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
        let list = self.subscriptions.get(app_id).map_or_else(Vec::new, |channels| {
            channels
                .iter()
                .filter(|e| *e.value() > 0)
                .map(|e| (e.key().to_string(), *e.value() as u64))
                .collect()
        });
        ready(Ok(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend_events::{BackendEvents, Inbound, MemberLeft, MemberReturned};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// Keeps the channel transitions it is told of.
    #[derive(Default)]
    struct Transitions(Mutex<Vec<(String, String, bool)>>);

    impl BackendEvents for Transitions {
        fn delivered(&self, _: &str, _: &str, _: Inbound<'_>, _: Instant) {}
        fn cache_event(&self, _: &str, _: &str, _: &[u8]) {}
        fn members_left(&self, _: Vec<MemberLeft>) -> BoxFuture<'static, ()> {
            ready(())
        }
        fn members_returned(&self, _: Vec<MemberReturned>) -> BoxFuture<'static, ()> {
            ready(())
        }
        fn channels_changed(&self, transitions: Vec<ChannelTransition>) {
            let mut seen = self.0.lock().unwrap();
            seen.extend(transitions.into_iter().map(|t| (t.app_id, t.channel, t.occupied)));
        }
    }

    /// Counts are per app and channel (the same channel name in two apps is two channels), a channel is
    /// reported occupied and vacated once each way, and a vacated channel is forgotten.
    #[tokio::test]
    async fn counts_per_app_and_channel_and_crossings_of_zero() {
        let seen = Arc::new(Transitions::default());
        let stats = MemoryStats::new(seen.clone());
        for _ in 0..2 {
            stats.subscriptions_changed("a", "orders", 1).await;
        }
        stats.subscriptions_changed("b", "orders", 1).await;
        assert_eq!(stats.subscription_count("a", "orders").await.unwrap(), 2);
        assert_eq!(stats.subscription_count("b", "orders").await.unwrap(), 1);
        assert_eq!(stats.subscription_count("c", "orders").await.unwrap(), 0);
        assert_eq!(stats.channels("a").await.unwrap(), vec![("orders".to_string(), 2)]);
        for _ in 0..2 {
            stats.subscriptions_changed("a", "orders", -1).await;
        }
        assert_eq!(stats.subscription_count("a", "orders").await.unwrap(), 0);
        assert!(stats.channels("a").await.unwrap().is_empty());
        let expected = [("a", true), ("b", true), ("a", false)]
            .map(|(app, occupied)| (app.to_string(), "orders".to_string(), occupied));
        assert_eq!(*seen.0.lock().unwrap(), expected);

        stats.connections_changed("a", 1);
        assert_eq!(stats.connection_count("a").await.unwrap(), 1);
        assert!(matches!(stats.admit("a", 1).await, Admission::Full));
        assert!(matches!(stats.admit("b", 1).await, Admission::Admitted));
    }
}
