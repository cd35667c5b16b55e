//! Node liveness: every node holds a lease in Redis (`herald:nodes`) that it renews several times per lease.
//! Each round it also reaps the nodes whose lease expired (a SIGKILL, a partition) and reports what that took
//! back (members gone, channels vacated) to the node, which announces it. A node that finds Redis emptied puts
//! its entries and counts back silently; one that finds itself reaped puts them back and reports the members
//! that are new to their channels again.

use crate::redis_presence::{LeaseStatus, Reaped, RedisPresence};
use crate::redis_stats::RedisStats;
use herald_core::backend_events::{Events, MemberReturned};
use herald_core::metrics::metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What keeps this node's share of Redis state alive.
#[derive(Clone)]
pub struct Liveness {
    pub presence: Arc<RedisPresence>,
    pub stats: Arc<RedisStats>,
    pub events: Events,
    /// A re-registration is running; renewals that still report the loss do not start another.
    reregistering: Arc<AtomicBool>,
}

/// The liveness tasks of a node; stopped before the node gives its lease up.
pub struct Running(Vec<tokio::task::JoinHandle<()>>);

impl Running {
    pub fn stop(&self) {
        self.0.iter().for_each(|t| t.abort());
    }
}

impl Liveness {
    pub fn new(presence: Arc<RedisPresence>, stats: Arc<RedisStats>, events: Events) -> Self {
        Liveness {
            presence,
            stats,
            events,
            reregistering: Arc::default(),
        }
    }

    /// Starts renewing (every lease/4, each attempt bounded to lease/3, on a task of its own so nothing
    /// else can make it late) and reaping (every lease/4). A node reaps only after its own renewals have
    /// succeeded for a whole lease: after a Redis stall every lease has expired, and the first node back must
    /// not reap the others before they had their turn to renew.
    pub fn spawn(self, lease: Duration) -> Running {
        let every = (lease / 4).max(Duration::from_millis(50));
        let started = std::time::Instant::now();
        // Milliseconds since `started` at which the renewals became healthy; u64::MAX while they are not.
        let healthy_since = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
        let renewing = {
            let (this, healthy_since) = (self.clone(), healthy_since.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let ok = matches!(tokio::time::timeout(lease / 3, this.renew()).await, Ok(true));
                    let now = started.elapsed().as_millis() as u64;
                    if !ok {
                        healthy_since.store(u64::MAX, Ordering::Release);
                    } else if healthy_since.load(Ordering::Acquire) == u64::MAX {
                        healthy_since.store(now, Ordering::Release);
                    }
                }
            })
        };
        let reaping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let since = healthy_since.load(Ordering::Acquire);
                let now = started.elapsed().as_millis() as u64;
                if since != u64::MAX && now.saturating_sub(since) >= lease.as_millis() as u64 {
                    self.reap_round().await;
                }
            }
        });
        Running(vec![renewing, reaping])
    }

    /// One renewal (and the re-registration it may call for); true when the lease is held.
    async fn renew(&self) -> bool {
        let renewed = self.presence.renew().await;
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
                if !self.reregistering.swap(true, Ordering::AcqRel) {
                    let announce = status == LeaseStatus::Reaped;
                    let node_id = self.presence.node_id();
                    tracing::warn!(
                        ?status,
                        node_id,
                        "this node's presence entries and counts were lost in Redis; registering them again"
                    );
                    let this = self.clone();
                    // Re-registration may take a while; the lease is held again already.
                    tokio::spawn(async move {
                        this.reregister(announce).await;
                        this.reregistering.store(false, Ordering::Release);
                    });
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal in Redis failed; the node is unready until it succeeds");
                false
            }
        }
    }

    /// Retries failed leaves and reaps dead nodes.
    async fn reap_round(&self) {
        let retried = self.presence.retry_leaves().await;
        self.events.members_left(retried);
        let reaped = self.presence.reap().await;
        let result = if reaped.is_ok() { "ok" } else { "error" };
        metrics().presence_operations.with_label_values(&["reap", result]).inc();
        match reaped {
            Ok(reaped) => {
                if !reaped.nodes.is_empty() {
                    let (nodes, members_removed) = (&reaped.nodes, reaped.removed.len());
                    tracing::warn!(?nodes, members_removed, "reaped nodes whose lease expired");
                }
                self.report(reaped);
            }
            Err(e) => tracing::warn!(error = %e, "reaping dead nodes failed; retried next round"),
        }
    }

    /// Gives the lease up at the end of a clean shutdown.
    pub async fn retire(&self) {
        match self.presence.retire().await {
            Ok(reaped) => self.report(reaped),
            Err(e) => tracing::warn!(error = %e, "could not give the lease up; other nodes will reap it"),
        }
    }

    /// Tells the node what reaping took back.
    fn report(&self, reaped: Reaped) {
        self.events.members_left(reaped.removed);
        self.events.channels_changed(reaped.vacated);
    }

    /// Puts this node's counts and presence entries back; when it had been reaped, the members that are new
    /// to their channel again are reported, and the reaped marker is taken down once all are back.
    async fn reregister(&self, announce: bool) {
        self.stats.reset();
        let mut returned = Vec::new();
        let mut complete = true;
        for entry in self.presence.local_entries() {
            match self.presence.rejoin(&entry).await {
                Ok(joined) if announce && joined.first_for_user => returned.push(MemberReturned {
                    app_id: entry.app_id,
                    channel: entry.channel,
                    socket_id: entry.socket_id,
                    member: entry.member,
                    version: joined.version,
                }),
                Ok(_) => {}
                Err(e) => {
                    complete = false;
                    tracing::warn!(error = %e, "re-registering a presence entry failed; retried at the next renewal");
                }
            }
        }
        self.events.members_returned(returned);
        if announce && complete {
            if let Err(e) = self.presence.reaped_handled().await {
                tracing::warn!(error = %e, "could not clear this node's reaped marker; retried at the next renewal");
            }
        }
    }
}
