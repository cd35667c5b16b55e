//! Herald's own per-user channel: every connection signed in as a user is on it, so the HTTP API's
//! `terminate_connections` reaches that user on every node.

/// The internal channel every connection signed in as `user_id` is on. Clients cannot subscribe to it:
/// `#` starts no channel name they may use but `#server-to-user-`.
pub fn user_channel(user_id: &str) -> String {
    format!("#herald-user-{user_id}")
}
