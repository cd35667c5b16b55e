//! Member events: when the others on a presence channel hear `member_added` / `member_removed` (a user's
//! first connection in, last one out, across every node the store spans), with the webhooks and metrics
//! that go with them. Whether it was the first or last is the store's answer; what it means is decided here.

use super::{Node, Source};
use crate::app::App;
use crate::connection::ConnectionHandle;
use crate::member_event::MemberEvent;
use crate::metrics::metrics;
use crate::presence_store::PresenceError;
use crate::refusal::Refusal;
use crate::webhook::WebhookEvent;
use crate::Broadcast;
use herald_protocol::frame;
use herald_protocol::member_list::MemberList;
use herald_protocol::presence_data::Member;
use herald_protocol::SocketId;
use std::sync::Arc;

impl Node {
    /// Joins `member` to the channel's presence; returns every member now on it, and the version the list shows.
    pub(super) async fn join_presence(
        &self,
        app: &App,
        conn: &ConnectionHandle,
        channel: &str,
        member: &Member,
    ) -> Result<(Arc<MemberList>, u64), Refusal> {
        let max = app.config.max_presence_members;
        let joined = self
            .presence
            .join(&app.config.id, channel, &conn.socket_id, member, max)
            .await;
        let result = match &joined {
            Ok(_) => "ok",
            Err(PresenceError::MemberLimit(_)) => "limit",
            Err(PresenceError::Unavailable(_)) => "error",
        };
        metrics().presence_operations.with_label_values(&["join", result]).inc();
        match joined {
            Ok(joined) => {
                if joined.first_for_user {
                    let except = Some(conn.socket_id.clone());
                    self.member_added(app, channel, member, except, joined.version).await;
                }
                Ok((joined.members, joined.members_version))
            }
            Err(PresenceError::MemberLimit(n)) => Err(Refusal::MemberLimit(n)),
            Err(PresenceError::Unavailable(e)) => {
                tracing::warn!(app = %app.config.id, channel, error = %e, "presence join failed; the client may retry");
                Err(Refusal::PresenceUnavailable)
            }
        }
    }

    /// Takes `conn` off the channel's presence; the others hear `member_removed` when it was the user's last.
    pub async fn leave_presence(&self, app: &App, conn: &ConnectionHandle, channel: &str, user_id: &str) {
        let left = self
            .presence
            .leave(&app.config.id, channel, &conn.socket_id, user_id)
            .await;
        let result = if left.is_ok() { "ok" } else { "error" };
        metrics()
            .presence_operations
            .with_label_values(&["leave", result])
            .inc();
        match left {
            Ok(left) if left.last_for_user => self.member_removed(app, channel, user_id, left.version, true).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(app = %app.config.id, channel, error = %e, "presence leave failed; retried later"),
        }
    }

    /// The user is on the channel now: tell the others (never the user's own tabs) and the app.
    pub(super) async fn member_added(
        &self,
        app: &App,
        channel: &str,
        member: &Member,
        except: Option<SocketId>,
        version: u64,
    ) {
        self.emit_webhook(app, WebhookEvent::member_added(channel, &member.user_id));
        let frame = frame::member_added(channel, &member.user_id, member.user_info.as_deref());
        let event = MemberEvent {
            user_id: Arc::from(member.user_id.as_str()),
            joined: true,
            version,
        };
        self.publish_member_event(app, channel, frame, except, event).await;
    }

    /// The user is gone from the channel: tell the others, and the app when it heard of the join.
    pub(super) async fn member_removed(
        &self,
        app: &App,
        channel: &str,
        user_id: &str,
        version: u64,
        join_announced: bool,
    ) {
        if join_announced {
            self.emit_webhook(app, WebhookEvent::member_removed(channel, user_id));
        }
        let frame = frame::member_removed(channel, user_id);
        let event = MemberEvent {
            user_id: Arc::from(user_id),
            joined: false,
            version,
        };
        self.publish_member_event(app, channel, frame, None, event).await;
    }

    /// Publishes a member event's frame, marked with who joined or left and the member-set version, so every
    /// recipient can apply the rules of [`crate::member_event`].
    async fn publish_member_event(
        &self,
        app: &App,
        channel: &str,
        frame: Vec<u8>,
        except: Option<SocketId>,
        event: MemberEvent,
    ) {
        let name = if event.joined { "member_added" } else { "member_removed" };
        let mut broadcast = Broadcast::new(frame, except);
        broadcast.member = Some(event);
        if let Err(e) = self.publish(app, channel, broadcast, Source::Presence).await {
            tracing::warn!(app = %app.config.id, channel, error = %e, event = name, "member event not published");
        }
    }
}
