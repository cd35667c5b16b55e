//! Joining and leaving channels: the one place where a connection enters or leaves the channel index, the
//! backbone hears of a channel's first and last local subscriber, and the cluster counts change.

use super::Node;
use crate::app::App;
use crate::connection::ConnectionHandle;
use crate::internal_channel::user_channel;
use crate::refusal::Refusal;
use herald_protocol::presence_data::Member;
use std::sync::Arc;

/// A subscription the node carried out: the data of `pusher_internal:subscription_succeeded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    pub data: String,
}

impl Node {
    /// Subscribes `conn` to `channel` (authorised already; on presence channels as `member`). Presence is
    /// joined first, then the channel: the others hear `member_added` once per user, and a member event about
    /// this connection's own user is never delivered to it (the index skips it). Resolves once the channel is
    /// live for this node and the subscription counts for the cluster.
    pub async fn subscribe(
        &self,
        app: &App,
        conn: &Arc<ConnectionHandle>,
        channel: &str,
        member: Option<&Member>,
    ) -> Result<Subscribed, Refusal> {
        let data = match member {
            Some(member) => self.join_presence(app, conn, channel, member).await?,
            None => "{}".to_owned(),
        };
        let user = member.map(|m| Arc::<str>::from(m.user_id.as_str()));
        let ready = app.channels.add(channel, conn, user, || {
            app.metrics.channels.inc();
            self.backbone.subscribe(&app.config, channel)
        });
        app.metrics.subscriptions.inc();
        let counted = self.stats.subscriptions_changed(&app.config.id, channel, 1);
        tokio::join!(ready, counted);
        Ok(Subscribed { data })
    }

    /// Takes `conn` off `channel` and, when it joined as a member, off the channel's presence.
    pub async fn unsubscribe(&self, app: &App, conn: &ConnectionHandle, channel: &str, member: Option<&Member>) {
        self.leave_channel(app, conn, channel);
        if let Some(member) = member {
            self.leave_presence(app, conn, channel, &member.user_id).await;
        }
    }

    /// Takes `conn` off `channel` at once (index, backbone, counts), leaving any presence entry to the
    /// caller: a draining node keeps it for a grace period.
    pub fn leave_channel(&self, app: &App, conn: &ConnectionHandle, channel: &str) {
        app.metrics.subscriptions.dec();
        app.channels.remove(channel, &conn.socket_id, || {
            app.metrics.channels.dec();
            self.backbone.unsubscribe(&app.config, channel)
        });
        // Counted without waiting: an unsubscribe that arrives late only delays `channel_vacated`.
        drop(self.stats.subscriptions_changed(&app.config.id, channel, -1));
    }

    /// Puts a signed-in connection on its user's internal channel, so the user can be reached on every node.
    pub async fn signed_in(&self, app: &App, conn: &Arc<ConnectionHandle>, user: &Member) {
        let channel = user_channel(&user.user_id);
        app.channels
            .add(&channel, conn, None, || self.backbone.subscribe(&app.config, &channel))
            .await;
    }

    /// Takes a connection off its (former) user's internal channel.
    pub fn signed_out(&self, app: &App, conn: &ConnectionHandle, user: &Member) {
        let channel = user_channel(&user.user_id);
        app.channels.remove(&channel, &conn.socket_id, || {
            self.backbone.unsubscribe(&app.config, &channel)
        });
    }
}
