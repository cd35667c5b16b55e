//! Keepalive for the node's WebSocket clients: a connection the client has been quiet on for the activity
//! timeout gets a `pusher:ping`, and one that stays quiet for the pong timeout after it gets 4201 and is
//! closed. One task looks at every connection a few times per timeout, instead of a timer in each
//! connection's writer: that timer was registered and removed around every frame a connection was sent,
//! which the per-message path paid for (docs/benchmarks.md, performance round four), and it took room in
//! every idle connection.

use bytes::Bytes;
use dashmap::DashMap;
use herald_core::connection::ConnectionHandle;
use herald_protocol::{close_code, frame};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PONG_NOT_RECEIVED: &str = "Pong reply not received";

/// The ping frame, encoded once for every connection.
fn ping() -> Bytes {
    static PING: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    PING.get_or_init(|| Bytes::from(frame::ping())).clone()
}

/// When the client last sent anything, recorded by the connection's reader.
pub struct Activity {
    epoch: Instant,
    /// Microseconds, not milliseconds: a pong read within the millisecond of its ping must count as after it.
    last_seen_us: AtomicU64,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            epoch: Instant::now(),
            last_seen_us: AtomicU64::new(0),
        }
    }

    pub fn touch(&self) {
        self.last_seen_us
            .store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    pub fn last_seen(&self) -> Instant {
        self.epoch + Duration::from_micros(self.last_seen_us.load(Ordering::Relaxed))
    }
}

/// Every open WebSocket connection of the node, and what the sweep knows of each.
pub struct Keepalive {
    watched: DashMap<u64, Watched>,
    next_id: AtomicU64,
    activity: Duration,
    pong: Duration,
}

struct Watched {
    conn: Arc<ConnectionHandle>,
    activity: Arc<Activity>,
    state: State,
}

#[derive(Clone, Copy)]
enum State {
    Quiet,
    Pinged(Instant),
    Closing,
}

/// A connection's place in the sweep, given up when the connection ends.
pub struct Watch {
    keepalive: Arc<Keepalive>,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.keepalive.watched.remove(&self.id);
    }
}

impl Keepalive {
    /// Pings after `activity` of silence, closes after `pong` more.
    pub fn new(activity: Duration, pong: Duration) -> Arc<Self> {
        Arc::new(Keepalive {
            watched: DashMap::new(),
            next_id: AtomicU64::new(0),
            activity,
            pong,
        })
    }

    /// How often the sweep runs: a ping or a close is at most this late.
    pub fn period(&self) -> Duration {
        (self.activity.min(self.pong) / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// Sweeps every [`period`](Self::period) for as long as the node runs.
    pub fn spawn(self: &Arc<Self>) {
        let keepalive = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(keepalive.period());
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                keepalive.sweep(Instant::now());
            }
        });
    }

    /// Watches a connection until the returned [`Watch`] is dropped.
    pub fn watch(self: &Arc<Self>, conn: Arc<ConnectionHandle>, activity: Arc<Activity>) -> Watch {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.watched.insert(
            id,
            Watched {
                conn,
                activity,
                state: State::Quiet,
            },
        );
        Watch {
            keepalive: self.clone(),
            id,
        }
    }

    /// One look at every connection, at `now`.
    pub fn sweep(&self, now: Instant) {
        for mut entry in self.watched.iter_mut() {
            let watched = entry.value_mut();
            let seen = watched.activity.last_seen();
            watched.state = match watched.state {
                State::Pinged(at) if seen > at => State::Quiet,
                state => state,
            };
            // (a deadline past what an Instant can hold never comes)
            let due = |from: Instant, after: Duration| from.checked_add(after).is_some_and(|at| now >= at);
            match watched.state {
                // A full queue is left alone (the client has traffic waiting; the next sweep pings).
                State::Quiet if due(seen, self.activity) && watched.conn.offer(ping()) => {
                    watched.state = State::Pinged(now);
                }
                State::Pinged(at) if due(at, self.pong) => {
                    tracing::debug!(socket_id = %watched.conn.socket_id, "no pong; closing");
                    watched.conn.send(Bytes::from(frame::error(
                        close_code::PONG_NOT_RECEIVED,
                        PONG_NOT_RECEIVED,
                    )));
                    watched.conn.close(close_code::PONG_NOT_RECEIVED, PONG_NOT_RECEIVED);
                    watched.state = State::Closing;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::connection::{Outbound, Protocol};
    use herald_protocol::SocketId;

    fn connection() -> (Arc<ConnectionHandle>, herald_core::outbound_queue::Receiver) {
        let (conn, rx) = ConnectionHandle::speaking(Protocol::Pusher, SocketId::new(1, 1), 8);
        (Arc::new(conn), rx)
    }

    /// A connection's activity clock started 10 s ago, and that start.
    fn opened_ten_seconds_ago() -> (Instant, Arc<Activity>) {
        let start = Instant::now()
            .checked_sub(Duration::from_secs(10))
            .expect("up for 10 s");
        let activity = Activity {
            epoch: start,
            last_seen_us: AtomicU64::new(0),
        };
        (start, Arc::new(activity))
    }

    fn frame_event(out: Option<Outbound>) -> String {
        match out {
            Some(Outbound::Frame(bytes)) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                v["event"].as_str().unwrap().to_owned()
            }
            Some(Outbound::Close(code, _)) => format!("close {code}"),
            other => format!("{:?}", other.is_some()),
        }
    }

    #[tokio::test]
    async fn a_quiet_client_is_pinged_then_closed_and_an_answer_keeps_it() {
        let keepalive = Keepalive::new(Duration::from_secs(2), Duration::from_secs(1));
        let (conn, mut rx) = connection();
        // The connection opened 10 s ago: the sweeps below are in the past, and the client's answer now.
        let (start, activity) = opened_ten_seconds_ago();
        let watch = keepalive.watch(conn.clone(), activity.clone());
        let at = |base: Instant, ms: u64| base + Duration::from_millis(ms);

        keepalive.sweep(at(start, 1_900));
        assert!(rx.try_recv().is_none(), "not quiet long enough");
        keepalive.sweep(at(start, 2_000));
        assert_eq!(frame_event(rx.try_recv()), "pusher:ping");
        keepalive.sweep(at(start, 2_500));
        assert!(rx.try_recv().is_none(), "pinged once, waiting for the answer");

        // The client answers: quiet again, and pinged again an activity timeout after its answer.
        activity.touch();
        let answered = activity.last_seen();
        keepalive.sweep(at(answered, 1_900));
        assert!(rx.try_recv().is_none());
        keepalive.sweep(at(answered, 2_000));
        assert_eq!(frame_event(rx.try_recv()), "pusher:ping");

        // No answer within the pong timeout: 4201, then the close, once.
        keepalive.sweep(at(answered, 3_000));
        match rx.try_recv() {
            Some(Outbound::Frame(bytes)) => {
                let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(error["event"], "pusher:error");
                assert_eq!(error["data"]["code"], 4201, "{error}");
            }
            _ => panic!("expected the pusher:error frame"),
        }
        assert_eq!(frame_event(rx.try_recv()), "close 4201");
        keepalive.sweep(at(answered, 10_000));
        assert!(rx.try_recv().is_none(), "closed once");

        drop(watch);
        assert!(
            keepalive.watched.is_empty(),
            "a connection that ended is no longer swept"
        );
    }

    #[tokio::test]
    async fn a_client_with_a_full_queue_is_pinged_later_not_closed_as_slow() {
        let keepalive = Keepalive::new(Duration::from_secs(2), Duration::from_secs(1));
        let (conn, mut rx) = connection();
        let (start, activity) = opened_ten_seconds_ago();
        let _watch = keepalive.watch(conn.clone(), activity);
        while conn.offer(Bytes::from_static(b"{}")) {}
        keepalive.sweep(start + Duration::from_secs(3));
        assert!(
            !conn.overflowed(),
            "a ping that finds no room does not mark the client slow"
        );
        while rx.try_recv().is_some() {}
        keepalive.sweep(start + Duration::from_secs(4));
        assert_eq!(frame_event(rx.try_recv()), "pusher:ping", "pinged once there is room");
    }

    #[test]
    fn the_sweep_runs_a_few_times_per_timeout_within_bounds() {
        let period = |a, p| Keepalive::new(Duration::from_secs(a), Duration::from_secs(p)).period();
        assert_eq!(period(120, 30), Duration::from_secs(1));
        assert_eq!(period(1, 2), Duration::from_millis(250));
        assert_eq!(
            Keepalive::new(Duration::ZERO, Duration::ZERO).period(),
            Duration::from_millis(50)
        );
        // Timeouts too long for an Instant to hold: the sweep never pings, and does not panic.
        let forever = Keepalive::new(Duration::MAX, Duration::MAX);
        let (conn, mut rx) = connection();
        let _watch = forever.watch(conn, Arc::new(Activity::new()));
        forever.sweep(Instant::now());
        assert!(rx.try_recv().is_none());
    }
}
