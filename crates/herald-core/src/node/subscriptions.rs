//! Joining and leaving channels: the one place where a connection enters or leaves the channel index, the
//! backbone hears of a channel's first and last local subscriber, and the cluster counts change.

use super::Node;
use crate::app::App;
use crate::connection::ConnectionHandle;
use crate::console::ConsoleEvent;
use crate::internal_channel::user_channel;
use crate::refusal::Refusal;
use herald_protocol::frame;
use herald_protocol::presence_data::Member;
use std::sync::Arc;

impl Node {
    /// Subscribes `conn` to `channel` (authorised already; on presence channels as `member`) and queues its
    /// `subscription_succeeded`. The channel first: once it is live for this node and counted for the
    /// cluster, the presence join runs, so a member who joins anywhere after it is heard as `member_added`,
    /// and one who joined before is in the list it returns. Member events that arrive while the join is in
    /// flight are held and follow `subscription_succeeded`, merged with that list (see
    /// [`crate::member_event`]).
    pub async fn subscribe(
        &self,
        app: &App,
        conn: &Arc<ConnectionHandle>,
        channel: &str,
        member: Option<&Member>,
    ) -> Result<(), Refusal> {
        let user = member.map(|m| Arc::<str>::from(m.user_id.as_str()));
        let ready = app.channels.add(channel, conn, user, || {
            app.metrics.channels.inc();
            self.backbone.subscribe(&app.config, channel)
        });
        app.metrics.subscriptions.inc();
        let counted = self.stats.subscriptions_changed(&app.config.id, channel, 1);
        tokio::join!(ready, counted);
        let Some(member) = member else {
            conn.reply(frame::subscription_succeeded(channel, "{}")).await;
            self.record_subscribed(app, conn, channel, None);
            return Ok(());
        };
        match self.join_presence(app, conn, channel, member).await {
            Ok((members, version)) => {
                conn.reply(members.subscription_succeeded(channel)).await;
                app.channels.joined(channel, &conn.socket_id, version);
                self.record_subscribed(app, conn, channel, Some(&member.user_id));
                Ok(())
            }
            Err(refusal) => {
                self.leave_channel(app, conn, channel);
                Err(refusal)
            }
        }
    }

    fn record_subscribed(&self, app: &App, conn: &ConnectionHandle, channel: &str, user_id: Option<&str>) {
        self.record(app, || ConsoleEvent::Subscribed {
            socket_id: conn.socket_id.to_string(),
            channel: channel.to_owned(),
            user_id: user_id.map(str::to_owned),
        });
    }

    /// A subscription refused: counted, and shown in the console with the message the client gets.
    pub fn subscription_refused(&self, app: &App, conn: &ConnectionHandle, channel: &str, refusal: &Refusal) {
        app.metrics.rejected(refusal.reason());
        self.record(app, || ConsoleEvent::SubscriptionRefused {
            socket_id: conn.socket_id.to_string(),
            channel: channel.to_owned(),
            reason: refusal.to_string(),
        });
    }

    /// Takes `conn` off `channel` and, when it joined as a member, off the channel's presence.
    pub async fn unsubscribe(&self, app: &App, conn: &ConnectionHandle, channel: &str, member: Option<&Member>) {
        self.leave_channel(app, conn, channel);
        self.record(app, || ConsoleEvent::Unsubscribed {
            socket_id: conn.socket_id.to_string(),
            channel: channel.to_owned(),
        });
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
