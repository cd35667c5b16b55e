//! Prometheus metrics of one node. Every family is registered once, in one registry; per-app handles are
//! resolved when the app is created, so the hot path increments plain atomics and never looks a label up.
//! Label sets are bounded: apps, reasons, sources, endpoints and commands; never channel names.

use crate::connection::Protocol;
use prometheus::{
    exponential_buckets, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
pub use prometheus::{Histogram, IntCounter};
use std::sync::OnceLock;

/// Every metric family of the node.
pub struct Metrics {
    pub registry: Registry,
    pub connections: IntGaugeVec,
    pub connections_opened: IntCounterVec,
    pub subscriptions: IntGaugeVec,
    pub channels: IntGaugeVec,
    pub messages_received: IntCounterVec,
    pub messages_sent: IntCounterVec,
    pub bytes_received: IntCounterVec,
    pub bytes_sent: IntCounterVec,
    pub broadcasts: IntCounterVec,
    pub fanout: Histogram,
    pub broadcast_latency: Histogram,
    pub slow_client_disconnects: IntCounterVec,
    pub broadcasts_dropped: IntCounterVec,
    pub webhooks: IntCounterVec,
    pub subscription_rejections: IntCounterVec,
    pub client_events: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub redis_subscription_up: IntGauge,
    pub redis_reconnects: IntCounter,
    /// Windows in which the node's Redis subscription was down (what Redis published then was not delivered
    /// here; pub/sub does not replay), and how long each lasted.
    pub redis_subscription_gaps: Histogram,
    pub redis_command_duration: HistogramVec,
    pub redis_errors: IntCounterVec,
    /// Lease renewals Redis refused for lack of memory (`maxmemory` reached with `noeviction`).
    pub redis_out_of_memory: IntCounter,
    pub presence_operations: IntCounterVec,
    pub lease_renewals: IntCounterVec,
    pub ready: IntGauge,
    pub draining: IntGauge,
    /// Times the node followed a Redis failover to a new primary (Sentinel), or saw a slot change primary
    /// (Redis Cluster).
    pub redis_failovers: IntCounter,
    /// Redis Cluster: the primaries serving slots, as last read.
    pub redis_cluster_primaries: IntGauge,
    /// Each Redis endpoint the node writes to, by `address`: 1 while in use (the one address, the primary
    /// Sentinel names, each Redis Cluster primary), 0 once it no longer is (a failover away from it).
    pub redis_primary: IntGaugeVec,
    /// Redis Cluster: times the sharded channels were subscribed again after a shard failed over or a slot
    /// moved.
    pub redis_subscription_repairs: IntCounter,
    /// Seconds from the first failure at the old primary to the first connection to the new one.
    pub redis_failover_gap: Histogram,
    /// 1 while the node is cut off from Redis longer than its isolation timeout.
    pub isolated: IntGauge,
    /// Times the node became isolated.
    pub isolations: IntCounter,
    /// Reloads of the apps (`ok`, or `error` when the file did not load and the running apps were kept).
    pub config_reloads: IntCounterVec,
    /// Dashboard and `herald tail` streams this node serves.
    pub console_watchers: IntGauge,
    /// Console entries left out by the per-app cap.
    pub console_skipped: IntCounter,
    pub build_info: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("registered once");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("valid metric");
    registry.register(Box::new(h.clone())).expect("registered once");
    h
}

/// A counter, gauge or histogram with no labels: one series.
fn one_counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    counter(registry, name, help, &[]).with_label_values(&[])
}

fn one_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    gauge(registry, name, help, &[]).with_label_values(&[])
}

fn one_histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    histogram(registry, name, help, &[], buckets).with_label_values(&[])
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        // process_open_fds against process_max_fds, resident memory, CPU seconds, threads (Linux).
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("registered once");
        let latency = exponential_buckets(0.000_05, 2.0, 16).expect("valid buckets");
        let m = Metrics {
            connections: gauge(
                &r,
                "herald_connections",
                "Open client connections, by protocol (pusher: pusher-js and Echo's pusher/reverb broadcasters; socketio: Echo's socket.io broadcaster)",
                &["app", "protocol"],
            ),
            connections_opened: counter(
                &r,
                "herald_connections_opened_total",
                "Client connections accepted, by protocol",
                &["app", "protocol"],
            ),
            subscriptions: gauge(
                &r,
                "herald_subscriptions",
                "Channel subscriptions of the open connections",
                &["app"],
            ),
            channels: gauge(
                &r,
                "herald_channels",
                "Channels with at least one subscriber on this node",
                &["app"],
            ),
            messages_received: counter(
                &r,
                "herald_messages_received_total",
                "Messages received from clients",
                &["app"],
            ),
            messages_sent: counter(&r, "herald_messages_sent_total", "Frames queued to clients", &["app"]),
            bytes_received: counter(
                &r,
                "herald_bytes_received_total",
                "Bytes of messages received from clients",
                &["app"],
            ),
            bytes_sent: counter(
                &r,
                "herald_bytes_sent_total",
                "Bytes of frames queued to clients",
                &["app"],
            ),
            broadcasts: counter(
                &r,
                "herald_broadcasts_total",
                "Broadcasts that entered through this node, by source",
                &["app", "source"],
            ),
            fanout: one_histogram(
                &r,
                "herald_broadcast_fanout",
                "Recipients of one broadcast on this node",
                exponential_buckets(1.0, 4.0, 10).expect("valid buckets"),
            ),
            broadcast_latency: one_histogram(
                &r,
                "herald_broadcast_latency_seconds",
                "From a broadcast entering the node to its last recipient's queue",
                latency.clone(),
            ),
            slow_client_disconnects: counter(
                &r,
                "herald_slow_client_disconnects_total",
                "Clients closed because their queue was full",
                &["app"],
            ),
            broadcasts_dropped: counter(
                &r,
                "herald_broadcasts_dropped_total",
                "Broadcasts refused before fan-out, by reason",
                &["app", "reason"],
            ),
            webhooks: counter(
                &r,
                "herald_webhooks_total",
                "Webhook events, by result (sent, failed after retries, dropped from a full queue)",
                &["app", "result"],
            ),
            subscription_rejections: counter(
                &r,
                "herald_subscription_rejections_total",
                "Refused subscriptions, by reason",
                &["app", "reason"],
            ),
            client_events: counter(&r, "herald_client_events_total", "Client events relayed", &["app"]),
            rate_limited: counter(
                &r,
                "herald_rate_limited_total",
                "Client messages refused by a rate limit",
                &["app", "kind"],
            ),
            http_requests: counter(
                &r,
                "herald_http_requests_total",
                "HTTP requests, by endpoint and status",
                &["endpoint", "status"],
            ),
            http_duration: histogram(
                &r,
                "herald_http_request_duration_seconds",
                "HTTP request duration",
                &["endpoint"],
                latency.clone(),
            ),
            redis_subscription_up: one_gauge(
                &r,
                "herald_redis_subscription_up",
                "1 while the Redis subscription is live",
            ),
            redis_reconnects: one_counter(
                &r,
                "herald_redis_reconnects_total",
                "Times the Redis subscription was re-established",
            ),
            redis_subscription_gaps: one_histogram(
                &r,
                "herald_redis_subscription_gap_seconds",
                "Windows in which the Redis subscription was down: broadcasts published on Redis meanwhile did not reach this node's clients",
                exponential_buckets(0.1, 2.0, 12).expect("valid buckets"),
            ),
            redis_command_duration: histogram(
                &r,
                "herald_redis_command_duration_seconds",
                "Redis command latency",
                &["command"],
                latency,
            ),
            redis_errors: counter(&r, "herald_redis_errors_total", "Failed Redis commands", &["command"]),
            redis_out_of_memory: one_counter(
                &r,
                "herald_redis_out_of_memory_total",
                "Lease renewals refused because Redis is out of memory (maxmemory with noeviction)",
            ),
            presence_operations: counter(
                &r,
                "herald_presence_operations_total",
                "Presence store operations",
                &["op", "result"],
            ),
            lease_renewals: counter(
                &r,
                "herald_lease_renewals_total",
                "Lease renewals, by result",
                &["result"],
            ),
            ready: one_gauge(&r, "herald_ready", "1 while the node is ready"),
            draining: one_gauge(&r, "herald_draining", "1 while the node drains"),
            redis_failovers: one_counter(
                &r,
                "herald_redis_failovers_total",
                "Times this node followed a Redis failover to a new primary named by Sentinel, or saw a Redis Cluster slot change primary",
            ),
            redis_cluster_primaries: one_gauge(
                &r,
                "herald_redis_cluster_primaries",
                "Redis Cluster: primaries serving slots, as this node last read them (0 when not on Redis Cluster)",
            ),
            redis_primary: gauge(
                &r,
                "herald_redis_primary",
                "Redis endpoints this node writes to, by address: 1 while in use, 0 after a failover away from it",
                &["address"],
            ),
            redis_subscription_repairs: one_counter(
                &r,
                "herald_redis_subscription_repairs_total",
                "Redis Cluster: times this node subscribed its sharded channels again after a shard failed over or a slot moved",
            ),
            redis_failover_gap: one_histogram(
                &r,
                "herald_redis_failover_gap_seconds",
                "Seconds from the first failure at the old Redis primary to the first connection to the new one (Sentinel), or to the new primaries read (Redis Cluster)",
                exponential_buckets(0.25, 2.0, 10).expect("valid buckets"),
            ),
            isolated: one_gauge(
                &r,
                "herald_isolated",
                "1 while the node is cut off from Redis longer than its isolation timeout (its clients are let go)",
            ),
            isolations: one_counter(
                &r,
                "herald_isolations_total",
                "Times the node was cut off from Redis longer than its isolation timeout",
            ),
            config_reloads: counter(
                &r,
                "herald_config_reloads_total",
                "Reloads of the apps on SIGHUP or a changed config file, by result (ok, error: the running apps were kept)",
                &["result"],
            ),
            console_watchers: one_gauge(
                &r,
                "herald_console_watchers",
                "Dashboard consoles and herald tail streams served by this node",
            ),
            console_skipped: one_counter(
                &r,
                "herald_console_skipped_total",
                "Console entries left out because an app produced more than the console's cap",
            ),
            build_info: gauge(&r, "herald_build_info", "Build information", &["version"]),
            registry: r,
        };
        m.build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        m
    }

    /// Text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_utf8(&self.registry.gather(), &mut out)
            .expect("text encoding never fails");
        out
    }
}

/// The node's metrics (one registry per process).
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// One app's handles, resolved once.
#[derive(Debug, Clone)]
pub struct AppMetrics {
    /// Open connections of each protocol (pusher, socketio).
    connections: [IntGauge; 2],
    connections_opened: [IntCounter; 2],
    pub subscriptions: IntGauge,
    pub channels: IntGauge,
    pub messages_received: IntCounter,
    pub messages_sent: IntCounter,
    pub bytes_received: IntCounter,
    pub bytes_sent: IntCounter,
    pub slow_client_disconnects: IntCounter,
    pub client_events: IntCounter,
    /// `herald_broadcasts_total` for each source of [`BROADCAST_SOURCES`], resolved on first use (a source
    /// that never broadcasts shows no series).
    broadcasts: [OnceLock<IntCounter>; BROADCAST_SOURCES.len()],
    app: String,
}

/// The `source` labels of `herald_broadcasts_total` (the node's `Source`s).
pub const BROADCAST_SOURCES: [&str; 4] = ["api", "client_event", "presence", "laravel"];

impl AppMetrics {
    pub fn new(app: &str) -> Self {
        let m = metrics();
        let l = &[app];
        AppMetrics {
            connections: ["pusher", "socketio"].map(|p| m.connections.with_label_values(&[app, p])),
            connections_opened: ["pusher", "socketio"].map(|p| m.connections_opened.with_label_values(&[app, p])),
            subscriptions: m.subscriptions.with_label_values(l),
            channels: m.channels.with_label_values(l),
            messages_received: m.messages_received.with_label_values(l),
            messages_sent: m.messages_sent.with_label_values(l),
            bytes_received: m.bytes_received.with_label_values(l),
            bytes_sent: m.bytes_sent.with_label_values(l),
            slow_client_disconnects: m.slow_client_disconnects.with_label_values(l),
            client_events: m.client_events.with_label_values(l),
            broadcasts: Default::default(),
            app: app.to_owned(),
        }
    }

    fn slot(protocol: Protocol) -> usize {
        match protocol {
            Protocol::Pusher => 0,
            Protocol::SocketIo => 1,
        }
    }

    /// Counts a connection opened.
    pub fn opened(&self, protocol: Protocol) {
        self.connections[Self::slot(protocol)].inc();
        self.connections_opened[Self::slot(protocol)].inc();
    }

    /// Counts a connection closed.
    pub fn closed(&self, protocol: Protocol) {
        self.connections[Self::slot(protocol)].dec();
    }

    /// This app's open connections on this node, of every protocol.
    pub fn open_connections(&self) -> u64 {
        self.connections.iter().map(|g| g.get().max(0) as u64).sum()
    }

    /// Counts a broadcast entering through this node.
    pub fn broadcast(&self, source: crate::Source) {
        self.broadcasts[source as usize]
            .get_or_init(|| metrics().broadcasts.with_label_values(&[&self.app, source.label()]))
            .inc();
    }

    /// Counts a broadcast refused before fan-out.
    pub fn dropped(&self, reason: &str) {
        metrics()
            .broadcasts_dropped
            .with_label_values(&[&self.app, reason])
            .inc();
    }

    pub fn rejected(&self, reason: &str) {
        metrics()
            .subscription_rejections
            .with_label_values(&[&self.app, reason])
            .inc();
    }

    pub fn rate_limited(&self, kind: &str) {
        metrics().rate_limited.with_label_values(&[&self.app, kind]).inc();
    }
}
