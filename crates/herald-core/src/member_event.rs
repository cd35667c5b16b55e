//! Member events (`member_added` / `member_removed`) on their way to presence subscribers. Every change of a
//! channel's member set has a version, and so does the member list a joining connection gets; three rules
//! keep every client's list right whatever order joins race in:
//! - an event about a user is never delivered to that user's own connections;
//! - a connection whose presence join is in flight gets no member event before its `subscription_succeeded`:
//!   events are held until then;
//! - an event whose version the connection's list already shows is dropped (held or late), so pusher-js,
//!   which replaces its list on `subscription_succeeded`, neither loses a member nor hears one twice.
//!
//! The cost is one atomic load per member event and subscriber, and a lock only while a join is in flight.

use crate::connection::ConnectionHandle;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Who a member event is about, whether they joined or left, and the member-set version of the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    pub user_id: Arc<str>,
    pub joined: bool,
    pub version: u64,
}

/// While a subscriber's join is in flight, its `shown` version is this: every event is held.
const JOINING: u64 = u64::MAX;

/// A local subscriber of a presence channel: the user it is there as, the version its member list shows, and
/// the member events held while its join is in flight.
#[derive(Debug)]
pub struct PresenceSubscriber {
    user: Arc<str>,
    shown: AtomicU64,
    held: Mutex<Vec<(u64, Bytes)>>,
}

impl PresenceSubscriber {
    /// A subscriber whose join is in flight.
    pub fn joining(user: Arc<str>) -> Self {
        PresenceSubscriber {
            user,
            shown: AtomicU64::new(JOINING),
            held: Mutex::new(Vec::new()),
        }
    }

    /// True for member events about this subscriber's own user.
    pub fn is_about_self(&self, event: &MemberEvent) -> bool {
        *event.user_id == *self.user
    }

    /// Queues, holds or drops a member event for `conn`: `Some(queued)` when it went to the queue (false: the
    /// queue was full), None when it was held or not for this subscriber.
    pub fn deliver(&self, conn: &ConnectionHandle, event: &MemberEvent, frame: &Bytes) -> Option<bool> {
        if self.is_about_self(event) {
            return None;
        }
        let mut shown = self.shown.load(Ordering::Acquire);
        if shown == JOINING {
            let mut held = self.held.lock().expect("held member events");
            // Read again under the lock: the release sets the version while holding it.
            shown = self.shown.load(Ordering::Acquire);
            if shown == JOINING {
                held.push((event.version, frame.clone()));
                return None;
            }
        }
        (event.version > shown).then(|| conn.send(frame.clone()))
    }

    /// The join's `subscription_succeeded` is queued, with the member list of `version`: sends the held
    /// events that are newer, in order, and lets later ones through.
    pub fn release(&self, conn: &ConnectionHandle, version: u64) {
        let mut held = self.held.lock().expect("held member events");
        for (v, frame) in held.drain(..) {
            if v > version {
                conn.send(frame);
            }
        }
        self.shown.store(version, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Outbound;
    use herald_protocol::SocketId;

    fn event(user: &str, joined: bool, version: u64) -> MemberEvent {
        MemberEvent {
            user_id: Arc::from(user),
            joined,
            version,
        }
    }

    #[test]
    fn events_the_list_shows_are_dropped_held_or_late() {
        let (conn, mut rx) = ConnectionHandle::new(SocketId::new(1, 1), 16);
        let sub = PresenceSubscriber::joining(Arc::from("me"));
        let frame = |s: &'static str| Bytes::from_static(s.as_bytes());
        sub.deliver(&conn, &event("me", true, 3), &frame("own"));
        sub.deliver(&conn, &event("a", true, 4), &frame("a joined, listed"));
        sub.deliver(&conn, &event("b", true, 6), &frame("b joined after the list"));
        assert!(rx.try_recv().is_none(), "nothing before the release");
        sub.release(&conn, 5);
        sub.deliver(
            &conn,
            &event("c", false, 2),
            &frame("c left before the list, heard late"),
        );
        sub.deliver(&conn, &event("d", true, 7), &frame("d later"));
        let got: Vec<_> = std::iter::from_fn(|| match rx.try_recv() {
            Some(Outbound::Frame(b)) => Some(String::from_utf8(b.to_vec()).unwrap()),
            _ => None,
        })
        .collect();
        assert_eq!(got, ["b joined after the list", "d later"]);
    }
}
