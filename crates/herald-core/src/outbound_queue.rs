//! The bounded queue between the node and one connection's writer. It exists for memory: a tokio `mpsc`
//! channel allocates a block of 32 slots (1.3 KiB here) and a 0.5 KiB channel when it is created, so every
//! idle connection carried 1.8 KiB of queue it was not using. Here one waiting frame (the usual case: a
//! broadcast now and then, taken by the writer at once) sits in a slot inside the queue itself; more grow a
//! deque that is given back once the writer has emptied it. One producer side (the connection's handle), one
//! consumer (its writer); pushing is a short uncontended lock per connection, never a global one, and the
//! writer's waker lives under that same lock, so a frame costs one lock on each side and at most one wake.
//! A connection that overflows gets one item past the bound, the close that wakes its writer.

use crate::connection::Outbound;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use tokio::sync::Notify;

struct Shared {
    state: Mutex<State>,
    capacity: usize,
    /// Wakes a sender waiting for room.
    room: Notify,
}

#[derive(Default)]
struct State {
    /// The oldest item, when the queue holds one; `rest` holds those behind it.
    first: Option<Outbound>,
    rest: VecDeque<Outbound>,
    /// The writer, when it found the queue empty and waits: woken by the next push or by the sender going.
    waiting: Option<Waker>,
    sender_gone: bool,
    receiver_gone: bool,
}

impl State {
    fn len(&self) -> usize {
        self.first.is_some() as usize + self.rest.len()
    }
}

/// Why a push failed.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The queue holds `capacity` items or more.
    Full,
    /// The writer is gone.
    Closed,
}

/// The producing side (kept by the connection's handle).
pub struct Sender(Arc<Shared>);

/// The consuming side (the connection's writer).
pub struct Receiver(Arc<Shared>);

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("capacity", &self.0.capacity).finish()
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("capacity", &self.0.capacity).finish()
    }
}

/// A queue of at most `capacity` items (at least one), and one more: the close queued past the bound when
/// the connection overflows ([`Sender::push_past_bound`]).
pub fn channel(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        capacity: capacity.max(1),
        room: Notify::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (each step is one VecDeque
        // call), so a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Sender {
    /// Queues without waiting.
    pub fn try_send(&self, item: Outbound) -> Result<(), PushError> {
        self.push(item).map_err(|(why, _)| why)
    }

    /// Queues, waiting for room while the queue is full.
    pub async fn send(&self, mut item: Outbound) -> Result<(), PushError> {
        loop {
            let room = self.0.room.notified();
            match self.push(item) {
                Err((PushError::Full, back)) => item = back,
                done => return done.map_err(|(why, _)| why),
            }
            room.await;
        }
    }

    /// Queues one item even when the queue is full (dropped when the writer is gone): for the close that
    /// ends a connection which overflowed, so that its writer wakes even if it had emptied the queue.
    pub fn push_past_bound(&self, item: Outbound) {
        let _ = self.push_within(item, usize::MAX);
    }

    /// Queues the item, or hands it back with the reason it was not queued.
    fn push(&self, item: Outbound) -> Result<(), (PushError, Outbound)> {
        self.push_within(item, self.0.capacity)
    }

    fn push_within(&self, item: Outbound, capacity: usize) -> Result<(), (PushError, Outbound)> {
        let mut state = self.0.lock();
        if state.receiver_gone {
            return Err((PushError::Closed, item));
        }
        let len = state.len();
        if len >= capacity {
            return Err((PushError::Full, item));
        }
        if len == 0 {
            state.first = Some(item);
        } else {
            state.rest.push_back(item);
        }
        // The writer only waits on an empty queue; once something is queued it drains all of it.
        let waiting = state.waiting.take();
        drop(state);
        if let Some(writer) = waiting {
            writer.wake();
        }
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.sender_gone = true;
        let waiting = state.waiting.take();
        drop(state);
        if let Some(writer) = waiting {
            writer.wake();
        }
    }
}

impl Receiver {
    /// The next item, waiting for one; None once the sender is gone and the queue is empty. Cancel-safe: a
    /// dropped wait leaves at most a spare wake-up behind.
    pub async fn recv(&mut self) -> Option<Outbound> {
        self.recv_noting_more().await.map(|(item, _)| item)
    }

    /// As [`recv`](Self::recv), and whether more is queued behind the item, found under the same lock: a
    /// writer that gets `false` writes the item alone without asking the queue again.
    pub async fn recv_noting_more(&mut self) -> Option<(Outbound, bool)> {
        poll_fn(|cx| {
            let mut state = self.0.lock();
            if let Some(item) = self.pop(&mut state) {
                return Poll::Ready(Some((item, state.first.is_some())));
            }
            if state.sender_gone {
                return Poll::Ready(None);
            }
            match &state.waiting {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => state.waiting = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let mut state = self.0.lock();
        self.pop(&mut state)
    }

    fn pop(&self, state: &mut State) -> Option<Outbound> {
        let was_full = state.len() >= self.0.capacity;
        let item = state.first.take()?;
        state.first = state.rest.pop_front();
        if state.rest.is_empty() && state.rest.capacity() > 0 {
            state.rest = VecDeque::new();
        }
        if was_full {
            // Every waiting sender looks again (a `Notified` made before this call counts it).
            self.0.room.notify_waiters();
        }
        Some(item)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.receiver_gone = true;
        state.first = None;
        state.rest = VecDeque::new();
        // The waker holds the writer's task: let it go with the writer rather than with the handle.
        let waiting = state.waiting.take();
        drop(state);
        drop(waiting);
        self.0.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(s: &'static str) -> Outbound {
        Outbound::Frame(Bytes::from_static(s.as_bytes()))
    }

    fn text(item: Option<Outbound>) -> Option<String> {
        match item? {
            Outbound::Frame(b) => Some(String::from_utf8(b.to_vec()).unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn bounded_in_order_and_empty_when_drained() {
        let (tx, mut rx) = channel(2);
        assert_eq!(tx.try_send(frame("a")), Ok(()));
        assert_eq!(tx.try_send(frame("b")), Ok(()));
        assert_eq!(tx.try_send(frame("c")), Err(PushError::Full));
        assert_eq!(text(rx.recv().await).as_deref(), Some("a"));
        assert_eq!(text(rx.try_recv()).as_deref(), Some("b"));
        assert!(rx.try_recv().is_none());
        drop(tx);
        assert!(rx.recv().await.is_none(), "the sender is gone and nothing is left");
    }

    #[tokio::test]
    async fn the_writer_learns_whether_more_is_queued_with_the_item() {
        let (tx, mut rx) = channel(4);
        tx.try_send(frame("a")).unwrap();
        tx.try_send(frame("b")).unwrap();
        let (a, more) = rx.recv_noting_more().await.unwrap();
        assert_eq!((text(Some(a)).as_deref(), more), (Some("a"), true));
        let (b, more) = rx.recv_noting_more().await.unwrap();
        assert_eq!(
            (text(Some(b)).as_deref(), more),
            (Some("b"), false),
            "b was the last one queued"
        );
        tx.try_send(frame("c")).unwrap();
        let (c, more) = rx.recv_noting_more().await.unwrap();
        assert_eq!((text(Some(c)).as_deref(), more), (Some("c"), false));
        drop(tx);
        assert!(rx.recv_noting_more().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_send_goes_through_when_the_writer_takes_one() {
        let (tx, mut rx) = channel(1);
        tx.try_send(frame("a")).unwrap();
        let waiting = tokio::spawn(async move {
            tx.send(frame("b")).await.unwrap();
            tx
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert_eq!(text(rx.recv().await).as_deref(), Some("a"));
        let _tx = tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
            .await
            .expect("the send completes")
            .unwrap();
        assert_eq!(text(rx.recv().await).as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn the_writer_wakes_for_a_push_and_the_room_is_given_back() {
        let (tx, mut rx) = channel(1000);
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
            }
            n
        });
        for _ in 0..500 {
            tx.try_send(frame("x")).unwrap();
            tokio::task::yield_now().await;
        }
        drop(tx);
        assert_eq!(reader.await.unwrap(), 500);
    }

    #[test]
    fn sends_to_a_gone_writer_fail() {
        let (tx, rx) = channel(4);
        drop(rx);
        assert_eq!(tx.try_send(frame("a")), Err(PushError::Closed));
    }
}
