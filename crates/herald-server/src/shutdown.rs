//! Shutdown: SIGTERM or Ctrl-C turns the node unready, stops new connections, asks every open connection to
//! reconnect elsewhere (4200, so pusher-js retries at once through the load balancer) and waits for them
//! to finish, up to a deadline. The same signals carry isolation (see `isolation.rs`): a node cut off from
//! Redis for too long lets its connections go and refuses new ones until its link is back.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    draining: AtomicBool,
    open: AtomicUsize,
    signal: watch::Sender<bool>,
    isolated: watch::Sender<bool>,
}

/// Counts a connection as open while it lives.
pub struct ConnectionGuard(Arc<Inner>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connections' side: a counter to enter and a signal to watch.
#[derive(Clone)]
pub struct Connections(Arc<Inner>);

impl Connections {
    pub fn enter(&self) -> ConnectionGuard {
        self.0.open.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(self.0.clone())
    }

    /// Resolves when the node starts draining.
    pub fn draining(&self) -> watch::Receiver<bool> {
        self.0.signal.subscribe()
    }

    /// Says whether the node is isolated from Redis, and when that changes.
    pub fn isolated(&self) -> watch::Receiver<bool> {
        self.0.isolated.subscribe()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        let (signal, _) = watch::channel(false);
        let (isolated, _) = watch::channel(false);
        Shutdown {
            inner: Arc::new(Inner {
                draining: AtomicBool::new(false),
                open: AtomicUsize::new(0),
                signal,
                isolated,
            }),
        }
    }
}

impl Shutdown {
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    /// True while the node is cut off from Redis longer than its isolation timeout.
    pub fn is_isolated(&self) -> bool {
        *self.inner.isolated.borrow()
    }

    /// Wakes every connection to look at its state again without changing the node's (an app was disabled
    /// or removed by a reload). One signal for both, so an idle connection waits on no extra future.
    pub fn poke(&self) {
        self.inner.isolated.send_modify(|_| {});
    }

    /// Marks the node isolated or not; true when that changed.
    pub fn set_isolated(&self, isolated: bool) -> bool {
        self.inner
            .isolated
            .send_if_modified(|now| std::mem::replace(now, isolated) != isolated)
    }

    pub fn connections(&self) -> Connections {
        Connections(self.inner.clone())
    }

    pub fn open_connections(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }

    /// Starts draining and waits until every connection has closed or `deadline` passes.
    pub async fn drain(&self, deadline: Duration) {
        self.inner.draining.store(true, Ordering::Release);
        let _ = self.inner.signal.send(true);
        let until = tokio::time::Instant::now() + deadline;
        while self.open_connections() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
