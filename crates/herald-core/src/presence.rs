//! Presence rules on top of the store: who the member is (channel data, or the signed-in user), what the
//! joining connection is told, and when the others hear `member_added` / `member_removed` (a user's first
//! connection in, last connection out, across every node the store spans).

use crate::app::App;
use crate::backbone::Broadcast;
use crate::connection::ConnectionHandle;
use crate::metrics::metrics;
use crate::node::Node;
use crate::presence_store::PresenceError;
use bytes::Bytes;
use herald_protocol::frame;
use herald_protocol::presence_data::{self, Member};

/// Joins `member` to the channel; returns the `subscription_succeeded` data for the joining connection.
/// The others on the channel hear `member_added` when this is the user's first connection.
pub async fn join(
    node: &Node,
    app: &App,
    conn: &ConnectionHandle,
    channel: &str,
    member: &Member,
) -> Result<String, PresenceError> {
    let max = app.config.max_presence_members;
    let joined = node
        .presence
        .join(&app.config.id, channel, &conn.socket_id, member, max)
        .await;
    let result = match &joined {
        Ok(_) => "ok",
        Err(PresenceError::MemberLimit(_)) => "limit",
        Err(PresenceError::Unavailable(_)) => "error",
    };
    metrics().presence_operations.with_label_values(&["join", result]).inc();
    let joined = joined?;
    if joined.first_for_user {
        node.webhooks.emit(
            app,
            crate::webhook::WebhookEvent::member_added(channel, &member.user_id),
        );
        app.metrics.broadcast("presence");
        let frame = frame::member_added(channel, &member.user_id, member.user_info.as_deref());
        let broadcast = Broadcast {
            frame: Bytes::from(frame),
            except: Some(conn.socket_id.clone()),
        };
        if let Err(e) = node.publish(app, channel, broadcast).await {
            tracing::warn!(app = %app.config.id, channel, error = %e, "member_added not published");
        }
    }
    Ok(presence_data::subscription_data(&joined.members))
}

/// Removes the connection from the channel; the others hear `member_removed` when it was the user's last.
pub async fn leave(node: &Node, app: &App, conn: &ConnectionHandle, channel: &str, user_id: &str) {
    let left = node
        .presence
        .leave(&app.config.id, channel, &conn.socket_id, user_id)
        .await;
    let result = if left.is_ok() { "ok" } else { "error" };
    metrics()
        .presence_operations
        .with_label_values(&["leave", result])
        .inc();
    match left {
        Ok(left) if left.last_for_user => {
            node.webhooks
                .emit(app, crate::webhook::WebhookEvent::member_removed(channel, user_id));
            app.metrics.broadcast("presence");
            let broadcast = Broadcast {
                frame: Bytes::from(frame::member_removed(channel, user_id)),
                except: None,
            };
            if let Err(e) = node.publish(app, channel, broadcast).await {
                tracing::warn!(app = %app.config.id, channel, error = %e, "member_removed not published");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(app = %app.config.id, channel, error = %e, "presence leave failed"),
    }
}
