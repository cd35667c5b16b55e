//! The facts backends report to the node. Backends store and carry; they never decide what a fact means for
//! clients, webhooks or metrics. The node implements [`BackendEvents`] and hands each backend a handle to it
//! when it starts (centrifuge's `BrokerEventHandler` is the model), so no backend ever reaches into the
//! core and every cluster-visible effect has one owner.

use crate::{BoxFuture, Broadcast};
use herald_protocol::presence_data::Member;
use herald_protocol::SocketId;
use std::sync::Arc;
use std::time::Instant;

/// What arrived on a channel with local subscribers.
#[derive(Debug)]
pub enum Inbound<'a> {
    /// A broadcast another node (or this one) published, frame already encoded.
    Broadcast(Broadcast),
    /// A payload from Laravel's RedisBroadcaster (`{"event","data","socket"}`), not yet a Pusher frame.
    Laravel(&'a [u8]),
}

/// A user who is no longer on a presence channel anywhere, because the node that held their last
/// connection died (its lease was reaped) or a leave that had failed was retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLeft {
    pub app_id: String,
    pub channel: String,
    pub user_id: String,
    /// The member-set version of the departure.
    pub version: u64,
    /// False when the user was only present through a join whose answer was lost (it timed out and ran
    /// late) and that was never announced: the clients still hear `member_removed` (a list that caught the
    /// stray entry is put right; pusher-js ignores an unknown member), the app gets no webhook.
    pub join_announced: bool,
}

/// A presence entry of this node put back after its state was taken away (the node was reaped while alive);
/// `first_for_user` says the user was gone from the channel meanwhile and must be announced again.
#[derive(Debug, Clone)]
pub struct MemberReturned {
    pub app_id: String,
    pub channel: String,
    pub socket_id: SocketId,
    pub member: Member,
    /// The member-set version of the return.
    pub version: u64,
}

/// A channel whose subscription count for the whole cluster crossed zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTransition {
    pub app_id: String,
    pub channel: String,
    /// True: the channel got its first subscriber anywhere; false: it lost its last one.
    pub occupied: bool,
}

/// The node's side of every backend.
pub trait BackendEvents: Send + Sync + 'static {
    /// Something arrived for `channel` of `app_id` (which has local subscribers); `received` is when.
    fn delivered(&self, app_id: &str, channel: &str, inbound: Inbound<'_>, received: Instant);
    /// A Laravel payload on a cache channel, seen whether or not anyone here is subscribed to it.
    fn cache_event(&self, app_id: &str, channel: &str, payload: &[u8]);
    /// Users gone from presence channels without a leave of this node's own; resolves once they are
    /// announced (published and queued for webhooks).
    fn members_left(&self, left: Vec<MemberLeft>) -> BoxFuture<'static, ()>;
    /// This node's presence entries that were put back and are new to their channel again; resolves once
    /// they are announced.
    fn members_returned(&self, returned: Vec<MemberReturned>) -> BoxFuture<'static, ()>;
    /// Channels whose cluster-wide subscription count crossed zero.
    fn channels_changed(&self, transitions: Vec<ChannelTransition>);
}

/// The handle a backend holds: it keeps no node alive and does nothing once the node is gone.
pub type Events = Arc<dyn BackendEvents>;
