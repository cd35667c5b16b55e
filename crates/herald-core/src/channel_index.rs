//! The channel index: which local connections are subscribed to which channel of one app. It is sharded
//! (DashMap), so fan-out on one channel never waits on a lock held for another, and a broadcast costs one
//! lookup plus a non-blocking queue push per recipient, with no allocation. Presence subscribers carry their
//! [`PresenceSubscriber`] state, which applies the member-event rules.

use crate::connection::ConnectionHandle;
use crate::member_event::PresenceSubscriber;
use crate::{BoxFuture, Broadcast};
use dashmap::DashMap;
use futures_util::future::{FutureExt, Shared};
use herald_protocol::SocketId;
use std::collections::HashMap;
use std::sync::Arc;

/// One local subscriber of a channel.
struct Subscriber {
    conn: Arc<ConnectionHandle>,
    /// On presence channels: the user it is there as, and its held member events.
    presence: Option<PresenceSubscriber>,
}

/// The local subscribers of one channel, by socket id.
type Subscribers = HashMap<SocketId, Subscriber>;

/// Resolves once the backbone delivers the channel to this node; shared by every subscriber that joins
/// while the first one's backbone subscribe is still on its way, so none is told "subscribed" too early.
pub type Ready = Shared<BoxFuture<'static, ()>>;

struct Channel {
    subscribers: Subscribers,
    ready: Ready,
}

/// Channel name to local subscribers, for one app.
#[derive(Default)]
pub struct ChannelIndex {
    channels: DashMap<Box<str>, Channel>,
}

/// What a fan-out did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Frames queued.
    pub sent: usize,
    /// Recipients whose queue was full (they are being closed).
    pub dropped: usize,
}

impl ChannelIndex {
    /// Adds a subscriber (on presence channels, as `user`, holding member events until
    /// [`joined`](Self::joined)). `on_first` runs, under the channel's lock, when it is the channel's first
    /// one here (so backbone subscribe and unsubscribe calls for a channel are made in order) and returns the
    /// backbone's readiness; every subscriber gets that readiness to await.
    pub fn add(
        &self,
        channel: &str,
        conn: &Arc<ConnectionHandle>,
        user: Option<Arc<str>>,
        on_first: impl FnOnce() -> BoxFuture<'static, ()>,
    ) -> Ready {
        let mut entry = self.channels.entry(channel.into()).or_insert_with(|| Channel {
            subscribers: HashMap::new(),
            ready: on_first().shared(),
        });
        let subscriber = Subscriber {
            conn: conn.clone(),
            presence: user.map(PresenceSubscriber::joining),
        };
        entry.subscribers.insert(conn.socket_id.clone(), subscriber);
        entry.ready.clone()
    }

    /// A presence subscriber's `subscription_succeeded` is queued, with the member list of `version`: its
    /// held member events that are newer follow.
    pub fn joined(&self, channel: &str, socket_id: &SocketId, version: u64) {
        if let Some(entry) = self.channels.get(channel) {
            if let Some(sub) = entry.subscribers.get(socket_id) {
                if let Some(presence) = &sub.presence {
                    presence.release(&sub.conn, version);
                }
            }
        }
    }

    /// Removes a subscriber; `on_last` runs under the channel's lock when it was the last one here.
    pub fn remove(&self, channel: &str, socket_id: &SocketId, on_last: impl FnOnce()) -> bool {
        let removed = self.channels.remove_if_mut(channel, |_, entry| {
            entry.subscribers.remove(socket_id);
            if entry.subscribers.is_empty() {
                on_last();
                true
            } else {
                false
            }
        });
        removed.is_some()
    }

    /// Queues the broadcast's shared bytes to every local subscriber but the excluded connection and, for
    /// member events, the connections of the user they are about.
    pub fn deliver(&self, channel: &str, broadcast: &Broadcast) -> Delivery {
        let mut delivery = Delivery::default();
        if let Some(entry) = self.channels.get(channel) {
            let subs = &entry.subscribers;
            if broadcast.is_terminate() {
                for sub in subs.values() {
                    sub.conn.close(
                        herald_protocol::close_code::UNAUTHORIZED,
                        "Connection terminated by the app",
                    );
                }
                return delivery;
            }
            let member = broadcast.member.as_ref();
            for (socket_id, sub) in subs.iter() {
                if broadcast.except.as_ref() == Some(socket_id) {
                    continue;
                }
                let Some(frame) = broadcast.for_protocol(sub.conn.protocol) else {
                    continue;
                };
                let queued = match (member, &sub.presence) {
                    (Some(event), Some(presence)) => match presence.deliver(&sub.conn, event, frame) {
                        Some(queued) => queued,
                        None => continue,
                    },
                    _ => sub.conn.send(frame.clone()),
                };
                if queued {
                    delivery.sent += 1;
                } else {
                    delivery.dropped += 1;
                }
            }
        }
        delivery
    }

    /// Local subscribers of a channel.
    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |c| c.subscribers.len())
    }

    /// Channels with at least one local subscriber.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Every channel with local subscribers and their number.
    pub fn counts(&self) -> Vec<(String, u64)> {
        self.channels
            .iter()
            .map(|e| (e.key().to_string(), e.value().subscribers.len() as u64))
            .collect()
    }

    /// Names of the channels with local subscribers (for resubscribing after a backbone reconnect).
    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|e| e.key().to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Outbound;
    use bytes::Bytes;

    #[tokio::test]
    async fn fan_out_skips_the_sender_and_tracks_first_and_last() {
        let index = ChannelIndex::default();
        let (a, mut rx_a) = ConnectionHandle::new(SocketId::new(1, 1), 8);
        let (b, mut rx_b) = ConnectionHandle::new(SocketId::new(1, 2), 8);
        let (a, b) = (Arc::new(a), Arc::new(b));
        let mut firsts = 0;
        let ready_a = index.add("c", &a, None, || {
            firsts += 1;
            Box::pin(async {})
        });
        let ready_b = index.add("c", &b, None, || {
            firsts += 1;
            Box::pin(async {})
        });
        tokio::join!(ready_a, ready_b);
        assert_eq!(firsts, 1, "the backbone is asked once per channel");
        let frame = Bytes::from_static(b"{}");
        let d = index.deliver("c", &Broadcast::new(frame.clone(), Some(a.socket_id.clone())));
        assert_eq!(d, Delivery { sent: 1, dropped: 0 });
        assert!(rx_a.try_recv().is_none());
        match rx_b.try_recv().unwrap() {
            Outbound::Frame(got) => {
                assert_eq!(got.as_ptr(), frame.as_ptr(), "bytes are shared, not copied")
            }
            other => panic!("{other:?}"),
        }
        let mut last = false;
        index.remove("c", &a.socket_id, || last = true);
        assert!(!last);
        index.remove("c", &b.socket_id, || last = true);
        assert!(last);
        assert_eq!(index.channel_count(), 0);
    }

    #[tokio::test]
    async fn member_events_skip_every_tab_of_the_user_they_are_about() {
        let index = ChannelIndex::default();
        let (a, mut rx_a) = ConnectionHandle::new(SocketId::new(1, 1), 8);
        let (b, mut rx_b) = ConnectionHandle::new(SocketId::new(1, 2), 8);
        let (c, mut rx_c) = ConnectionHandle::new(SocketId::new(1, 3), 8);
        for (conn, user) in [(a, "u1"), (b, "u1"), (c, "u2")] {
            let id = conn.socket_id.clone();
            index
                .add("presence-x", &Arc::new(conn), Some(Arc::from(user)), || {
                    Box::pin(async {})
                })
                .await;
            index.joined("presence-x", &id, 0);
        }
        let mut event = Broadcast::new(Bytes::from_static(b"{}"), None);
        event.member = Some(crate::member_event::MemberEvent {
            user_id: Arc::from("u1"),
            joined: true,
            version: 1,
        });
        assert_eq!(index.deliver("presence-x", &event).sent, 1);
        assert!(rx_a.try_recv().is_none() && rx_b.try_recv().is_none());
        assert!(rx_c.try_recv().is_some());
    }
}
