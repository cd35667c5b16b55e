//! Polls a future again at once when it wakes itself while being polled.
//!
//! Why it exists: hyper's HTTP/1 connection wakes its own task in the middle of every request that has a body
//! (the body channel between the connection and the handler is signalled both ways within one poll). Tokio's
//! multi-thread scheduler treats a task woken while it runs as one that yielded: it goes to the back of the
//! queue and a parked worker thread is woken to steal it, which costs a futex or an eventfd write and two
//! context switches of a thread that then finds nothing to do. On the HTTP API's per-message path that was
//! about a third of the node's CPU per event (docs/benchmarks.md, performance round five). [`Repoll`] swallows
//! a wake that arrives during the poll and polls the connection again on the same thread, at most
//! [`MAX_REPOLLS`] times in a row and only while the task's cooperative budget lasts, so a connection that
//! keeps waking itself still yields to its neighbours. A wake between polls goes to the task as usual.

use futures_util::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Polls in a row for one wake of the task before it yields like any other.
pub const MAX_REPOLLS: usize = 8;

/// Not being polled: a wake goes to the task.
const IDLE: u8 = 0;
/// Being polled: a wake is remembered and answered by polling again.
const POLLING: u8 = 1;
/// Being polled and woken since the poll began.
const WOKEN: u8 = 2;

pin_project_lite::pin_project! {
    /// `inner`, polled again on the spot when it wakes itself during a poll.
    pub struct Repoll<F> {
        #[pin]
        inner: F,
        shared: Arc<Shared>,
        waker: Waker,
    }
}

/// What the future's own waker shares with the poll loop.
struct Shared {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            // The poll loop sees it and polls again.
            Ok(_) | Err(WOKEN) => {}
            _ => self.task.wake(),
        }
    }
}

impl<F: Future> Repoll<F> {
    pub fn new(inner: F) -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(IDLE),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(shared.clone());
        Repoll { inner, shared, waker }
    }
}

impl<F: Future> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        // Polling from here on: a wake that comes while the task's waker is being registered is answered by
        // the poll below, not sent to the task as well.
        this.shared.state.store(POLLING, Ordering::Release);
        this.shared.task.register(cx.waker());
        let mut inner_cx = Context::from_waker(this.waker);
        for _ in 0..MAX_REPOLLS {
            this.shared.state.store(POLLING, Ordering::Release);
            if let Poll::Ready(output) = this.inner.as_mut().poll(&mut inner_cx) {
                this.shared.state.store(IDLE, Ordering::Release);
                return Poll::Ready(output);
            }
            if this
                .shared
                .state
                .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Poll::Pending;
            }
            // Woken during the poll. Polling again is part of the task's turn, so only while its cooperative
            // budget lasts: once that is spent, it yields like any other task.
            if !tokio::task::coop::has_budget_remaining() {
                break;
            }
        }
        this.shared.state.store(IDLE, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts the wakes that reach the task.
    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A future that wakes itself during its first `self_wakes` polls, then is ready.
    struct WakesItself {
        self_wakes: usize,
        polls: usize,
    }
    impl Future for WakesItself {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            if self.polls > self.self_wakes {
                return Poll::Ready(self.polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn poll_once<F: Future>(fut: Pin<&mut Repoll<F>>, task: &Arc<CountingWaker>) -> Poll<F::Output> {
        let waker = Waker::from(task.clone());
        fut.poll(&mut Context::from_waker(&waker))
    }

    #[tokio::test]
    async fn a_self_wake_is_answered_by_polling_again_not_by_waking_the_task() {
        let task = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let mut fut = std::pin::pin!(Repoll::new(WakesItself {
            self_wakes: 3,
            polls: 0
        }));
        assert_eq!(poll_once(fut.as_mut(), &task), Poll::Ready(4));
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "the task was never woken");
    }

    #[tokio::test]
    async fn a_future_that_keeps_waking_itself_still_yields() {
        let task = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let mut fut = std::pin::pin!(Repoll::new(WakesItself {
            self_wakes: usize::MAX,
            polls: 0
        }));
        assert!(poll_once(fut.as_mut(), &task).is_pending());
        assert_eq!(fut.inner.polls, MAX_REPOLLS);
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            1,
            "it yields: the task is woken to run again later"
        );
    }

    #[tokio::test]
    async fn a_wake_between_polls_reaches_the_task() {
        let task = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let mut fut = std::pin::pin!(Repoll::new(rx));
        assert!(poll_once(fut.as_mut(), &task).is_pending());
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        tx.send(7).unwrap();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the send woke the task");
        assert_eq!(poll_once(fut.as_mut(), &task), Poll::Ready(Ok(7)));
    }
}
