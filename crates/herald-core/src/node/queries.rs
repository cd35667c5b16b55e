//! Cluster-wide answers for the HTTP API and for limits: counts and members from the shared stores, with
//! the cluster's own channels left out of anything the app sees.

use super::Node;
use crate::app::App;
use crate::cluster_stats::StatsError;
use crate::presence_store::PresenceError;
use herald_protocol::channel::is_internal;
use herald_protocol::presence_data::Member;

impl Node {
    /// Open connections to the app on every node.
    pub async fn connection_count(&self, app: &App) -> Result<u64, StatsError> {
        self.stats.connection_count(&app.config.id).await
    }

    /// Subscriptions to a channel on every node.
    pub async fn subscription_count(&self, app: &App, channel: &str) -> Result<u64, StatsError> {
        self.stats.subscription_count(&app.config.id, channel).await
    }

    /// The app's occupied channels on every node, with their subscription counts, sorted by name.
    pub async fn channels(&self, app: &App) -> Result<Vec<(String, u64)>, StatsError> {
        let mut listed = self.stats.channels(&app.config.id).await?;
        listed.retain(|(name, n)| *n > 0 && !is_internal(name));
        listed.sort();
        Ok(listed)
    }

    /// The members of a presence channel.
    pub async fn members(&self, app: &App, channel: &str) -> Result<Vec<Member>, PresenceError> {
        self.presence.members(&app.config.id, channel).await
    }

    /// Counts one HTTP API request; returns the app's requests in the current second, cluster-wide.
    pub async fn api_request(&self, app: &App) -> Result<u64, StatsError> {
        self.stats.api_request(&app.config.id).await
    }
}
