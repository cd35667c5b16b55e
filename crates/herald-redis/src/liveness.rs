//! Node liveness: every node holds a lease in Redis (`herald:nodes`) that it renews several times per lease.
//! Right after each successful renewal it reaps the nodes whose lease expired (a SIGKILL, a partition),
//! quoting the lease that renewal set, and reports what that took back (members gone, channels vacated) to the
//! node, which announces it. A node that finds Redis emptied puts its entries and counts back silently; one
//! that finds itself reaped puts them back and reports the members that are new to their channels again.

use crate::redis_presence::{LeaseStatus, Reaped, RedisPresence};
use crate::redis_stats::RedisStats;
use herald_core::backend_events::{Events, MemberReturned};
use herald_core::metrics::metrics;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What keeps this node's share of Redis state alive.
#[derive(Clone)]
pub struct Liveness {
    pub presence: Arc<RedisPresence>,
    pub stats: Arc<RedisStats>,
    pub events: Events,
    /// Where Redis is; a failover to a new primary is handled like a Redis that lost data.
    endpoint: crate::endpoint::Endpoint,
    /// Failovers already handled.
    failovers_seen: Arc<std::sync::atomic::AtomicU64>,
    /// The re-registration running, if any: renewals that still report the loss do not start another, and
    /// retiring stops it.
    reregistering: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// The liveness tasks of a node: the lease task, and the announcer that publishes what reaps took back
/// (apart, so a slow publish never makes a renewal late).
pub struct Running {
    lease: JoinHandle<()>,
    announcer: Mutex<Option<JoinHandle<()>>>,
    /// Redis Cluster: the sweep taking back reaped nodes' state slot by slot, when one runs.
    sweeper: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Liveness {
    pub fn new(
        presence: Arc<RedisPresence>,
        stats: Arc<RedisStats>,
        events: Events,
        endpoint: crate::endpoint::Endpoint,
    ) -> Self {
        Liveness {
            presence,
            stats,
            events,
            failovers_seen: Arc::new(endpoint.failovers().into()),
            endpoint,
            reregistering: Arc::default(),
        }
    }

    /// Starts the lease task: every lease/4 a renewal bounded to lease/3 and, once the renewals have
    /// succeeded for a whole lease, a reap right after the renewal, quoting the lease it just set. After a
    /// Redis stall every lease has expired, and the first node back must not reap the others before they had
    /// their turn to renew; and a reap that reaches Redis late finds the lease it quotes expired and does
    /// nothing.
    pub fn spawn(self, lease: Duration) -> Running {
        let every = (lease / 4).max(Duration::from_millis(50));
        let (found, mut announce) = mpsc::unbounded_channel::<Reaped>();
        let events = self.events.clone();
        let announcer = tokio::spawn(async move {
            while let Some(reaped) = announce.recv().await {
                report(&events, reaped).await;
            }
        });
        let sweeper: Arc<Mutex<Option<JoinHandle<()>>>> = Arc::default();
        let sweeping = sweeper.clone();
        let lease_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut healthy_since: Option<Instant> = None;
            loop {
                tick.tick().await;
                let renewed = matches!(tokio::time::timeout(lease / 3, self.renew()).await, Ok(true));
                if !renewed {
                    healthy_since = None;
                    continue;
                }
                let since = *healthy_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= lease {
                    if let Ok(reaped) = tokio::time::timeout(lease / 3, self.reap_round()).await {
                        let _ = found.send(reaped);
                    }
                    if self.presence.sweeps() {
                        self.sweep(&sweeping, &found);
                    }
                }
            }
        });
        Running {
            lease: lease_task,
            announcer: Mutex::new(Some(announcer)),
            sweeper,
        }
    }

    /// Redis Cluster: starts a sweep of the reaped nodes' state unless one runs. It is not bounded by the
    /// lease's round (a scan of every primary may take longer); what each key gives back is announced at once.
    fn sweep(&self, sweeping: &Mutex<Option<JoinHandle<()>>>, found: &mpsc::UnboundedSender<Reaped>) {
        let mut running = sweeping.lock().expect("sweeper lock");
        if running.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let (presence, found) = (self.presence.clone(), found.clone());
        *running = Some(tokio::spawn(async move {
            let mut report = |reaped: Reaped| {
                let _ = found.send(reaped);
            };
            if let Err(e) = presence.sweep(&mut report).await {
                tracing::warn!(error = %e, "a reaped node's presence and counts not all taken back yet; continued at the next round");
            }
        }));
    }

    /// One renewal (and the re-registration it may call for); true when the lease is held.
    async fn renew(&self) -> bool {
        let mut renewed = self.presence.renew().await;
        // A promoted replica may lack the last writes of the old primary (replication is asynchronous):
        // after a failover this node puts its entries and counts back, as after a Redis that lost data.
        let failovers = self.endpoint.failovers();
        if matches!(renewed, Ok(LeaseStatus::Ok))
            && self.failovers_seen.swap(failovers, std::sync::atomic::Ordering::AcqRel) != failovers
        {
            renewed = Ok(LeaseStatus::Lost);
        }
        let result = match &renewed {
            Ok(LeaseStatus::Ok) => "ok",
            Ok(LeaseStatus::Lost) => "lost",
            Ok(LeaseStatus::Reaped) => "reaped",
            Err(_) => "error",
        };
        metrics().lease_renewals.with_label_values(&[result]).inc();
        match renewed {
            Ok(LeaseStatus::Ok) => true,
            Ok(status) => {
                let mut running = self.reregistering.lock().expect("re-registration lock");
                if running.as_ref().is_none_or(|task| task.is_finished()) {
                    let announce = status == LeaseStatus::Reaped;
                    let node_id = self.presence.node_id();
                    tracing::warn!(
                        ?status,
                        node_id,
                        "this node's presence entries and counts were lost in Redis; registering them again"
                    );
                    let this = self.clone();
                    let marker = self.presence.reaped_marker();
                    // Re-registration may take a while; the lease is held again already.
                    *running = Some(tokio::spawn(async move { this.reregister(announce, marker).await }));
                }
                true
            }
            Err(e) if is_out_of_memory(&e) => {
                // Out of memory: writes fail everywhere (so nobody reaps anybody), but PUBLISH and the
                // subscription work, so the node keeps serving broadcasts and stays ready; presence joins are
                // refused with 503 until Redis has memory again.
                self.presence.lease_held_through_oom();
                metrics().redis_out_of_memory.inc();
                let redis = self.presence.address();
                tracing::warn!(redis, "Redis is out of memory (maxmemory reached with noeviction): presence and counts cannot be written; broadcasts still flow. Free memory or raise maxmemory");
                false
            }
            Err(e) => {
                let redis = self.presence.address();
                tracing::warn!(redis, error = %e, "lease renewal in Redis failed; the node is unready until it succeeds");
                false
            }
        }
    }

    /// Retries failed leaves and reaps dead nodes; returns what they took back.
    async fn reap_round(&self) -> Reaped {
        let mut found = Reaped {
            removed: self.presence.retry_leaves().await,
            ..Reaped::default()
        };
        let reaped = self.presence.reap().await;
        let result = if reaped.is_ok() { "ok" } else { "error" };
        metrics().presence_operations.with_label_values(&["reap", result]).inc();
        match reaped {
            Ok(reaped) => {
                if !reaped.nodes.is_empty() {
                    let (nodes, members_removed) = (&reaped.nodes, reaped.removed.len());
                    tracing::warn!(?nodes, members_removed, "reaped nodes whose lease expired");
                    metrics()
                        .presence_operations
                        .with_label_values(&["reaped_node", "ok"])
                        .inc_by(reaped.nodes.len() as u64);
                }
                found.nodes = reaped.nodes;
                found.removed.extend(reaped.removed);
                found.vacated = reaped.vacated;
            }
            Err(e) => tracing::warn!(error = %e, "reaping dead nodes failed; retried next round"),
        }
        found
    }

    /// Gives the lease up at the end of a clean shutdown: stops renewing and re-registering, lets the
    /// announcer finish, takes this node's counts off the count task, then removes whatever the node still
    /// holds in Redis and announces it, waiting for the announcements.
    pub async fn retire(&self, running: &Running) {
        // Stop renewing first, or the next renewal would find the lease gone and register the node again.
        running.lease.abort();
        if let Some(task) = self.reregistering.lock().expect("re-registration lock").take() {
            task.abort();
        }
        // The sweep holds a sender of the announcer's queue; what it already found is in the queue.
        if let Some(task) = running.sweeper.lock().expect("sweeper lock").take() {
            task.abort();
        }
        let announcer = running.announcer.lock().expect("announcer lock").take();
        if let Some(announcer) = announcer {
            // The lease task held the only sender; it is gone, so the announcer ends once its queue is empty.
            let _ = tokio::time::timeout(Duration::from_secs(5), announcer).await;
        }
        self.stats.retire().await;
        match self.presence.retire().await {
            Ok(reaped) => report(&self.events, reaped).await,
            Err(e) => tracing::warn!(error = %e, "could not give the lease up; other nodes will reap it"),
        }
    }

    /// Puts this node's counts and presence entries back; when it had been reaped, each member that is new to
    /// its channel again is announced at once, and the reaped marker is taken down once all are back (unless
    /// another reap set it again meanwhile).
    async fn reregister(&self, announce: bool, marker: String) {
        self.stats.reset();
        let mut complete = true;
        for entry in self.presence.local_entries() {
            match self.presence.rejoin(&entry).await {
                Ok(joined) if announce && joined.first_for_user => {
                    let back = MemberReturned {
                        app_id: entry.app_id,
                        channel: entry.channel,
                        socket_id: entry.socket_id,
                        member: entry.member,
                        version: joined.version,
                    };
                    self.events.members_returned(vec![back]).await;
                }
                Ok(_) => {}
                Err(e) => {
                    complete = false;
                    tracing::warn!(error = %e, "re-registering a presence entry failed; retried at the next renewal");
                }
            }
        }
        if announce && complete {
            if let Err(e) = self.presence.reaped_handled(&marker).await {
                tracing::warn!(error = %e, "could not clear this node's reaped marker; retried at the next renewal");
            }
        }
    }
}

/// Tells the node what a reap took back: channels vacated, members gone (awaited until announced).
async fn report(events: &Events, reaped: Reaped) {
    events.channels_changed(reaped.vacated);
    events.members_left(reaped.removed).await;
}

/// Redis refused a write for lack of memory: `OOM` as the error code (Redis 7), or inside a script error's
/// message (Redis 5 and 6 wrap it as `ERR Error running script ... -OOM command not allowed ...`).
fn is_out_of_memory(e: &redis::RedisError) -> bool {
    e.code() == Some("OOM") || e.detail().is_some_and(|d| d.contains("OOM command not allowed"))
}
