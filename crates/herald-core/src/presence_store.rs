//! Where presence membership lives. Entries are per connection, so a user with several tabs (on any nodes)
//! is one member: `join` reports whether this was the user's first connection and `leave` whether it was
//! the last. Every change of a channel's member set gets a version, rising per channel, so a member event
//! can be told apart from what a member list already shows. The store only stores and answers; the node
//! decides what a join or a leave means (`member_added`, `member_removed`, webhooks). In memory for one node;
//! in Redis hashes for a cluster.

use crate::BoxFuture;
use herald_protocol::member_list::MemberList;
use herald_protocol::presence_data::Member;
use herald_protocol::SocketId;
use std::sync::Arc;

/// The result of a join: whether it added a user, and every member now on the channel.
#[derive(Debug, Clone)]
pub struct Joined {
    pub first_for_user: bool,
    /// The channel's member-set version after the join: when `first_for_user`, the version of this user's
    /// arrival.
    pub version: u64,
    /// The member list to give the joining connection (it includes the joining user), shared with every
    /// join that gets the same state of the list.
    pub members: Arc<MemberList>,
    /// The version `members` shows: `version`, or a later one when the store's copy of the list had already
    /// moved past it (it then shows every change up to that version).
    pub members_version: u64,
}

/// The result of a leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub last_for_user: bool,
    /// When `last_for_user`: the version of this user's departure.
    pub version: u64,
}

/// Why a join or a read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    /// The channel already has the app's maximum number of users.
    #[error("presence channel is full ({0} members)")]
    MemberLimit(usize),
    /// The store could not be reached.
    #[error("presence store unavailable: {0}")]
    Unavailable(String),
}

/// Presence membership, per app and channel, with one entry per connection.
pub trait PresenceStore: Send + Sync + 'static {
    fn join(
        &self,
        app_id: &str,
        channel: &str,
        socket_id: &SocketId,
        member: &Member,
        max_members: usize,
    ) -> BoxFuture<'static, Result<Joined, PresenceError>>;

    fn leave(
        &self,
        app_id: &str,
        channel: &str,
        socket_id: &SocketId,
        user_id: &str,
    ) -> BoxFuture<'static, Result<Left, PresenceError>>;

    fn members(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<Vec<Member>, PresenceError>>;

    /// True while the store can vouch for this node's entries (for Redis: the node's lease is held).
    fn is_ready(&self) -> bool {
        true
    }
}
