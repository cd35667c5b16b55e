//! The scenarios: `idle` (memory per connection, connect rate), `fanout` (latency, loss, CPU per delivery at a
//! fixed publish rate), `saturate` (the highest sustained deliveries per second) and `presence` (tabs joining
//! and leaving; one member event per user). Every scenario takes one or more target nodes, so the same
//! runs measure a cluster.

use crate::client::{self, Target};
use crate::latency::{now_micros, Latencies};
use crate::proc_stats;
use crate::publisher::{self, Publisher};
use crate::report::Report;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// What every scenario shares.
#[derive(Clone)]
pub struct Common {
    pub targets: Vec<Target>,
    pub sources: Vec<IpAddr>,
    pub server_pids: Vec<u32>,
    pub connect_concurrency: usize,
}

impl Common {
    fn target(&self, i: usize) -> &Target {
        &self.targets[i % self.targets.len()]
    }

    fn source(&self, i: usize) -> Option<IpAddr> {
        (!self.sources.is_empty()).then(|| self.sources[i % self.sources.len()])
    }

    fn cpu(&self) -> Option<f64> {
        proc_stats::total(&self.server_pids, proc_stats::cpu_seconds)
    }

    fn rss(&self) -> Option<u64> {
        proc_stats::total(&self.server_pids, proc_stats::rss_bytes)
    }
}

fn progress(label: &str, done: u64, total: u64, extra: &str) {
    let width = 30usize;
    let filled = if total == 0 {
        width
    } else {
        (done as usize * width / total.max(1) as usize).min(width)
    };
    eprint!(
        "\r{label} [{}{}] {done}/{total} {extra}    ",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
}

/// Connects and subscribes `n` clients; client `i` gets `channel(i)` (and a user id on presence).
async fn connect_all(
    common: &Common,
    n: usize,
    channel: impl Fn(usize) -> String,
    user: impl Fn(usize) -> Option<String>,
) -> Result<(Vec<(usize, client::Client)>, Duration), String> {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(common.connect_concurrency));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (target, source, gate) = (common.target(i).clone(), common.source(i), gate.clone());
        let (channel, user) = (channel(i), user(i));
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut c = client::connect(&target, source).await?;
            c.subscribe(&target, &channel, user.as_deref()).await?;
            Ok::<_, String>((i, c))
        }));
    }
    let mut clients = Vec::with_capacity(n);
    for (done, task) in tasks.into_iter().enumerate() {
        clients.push(task.await.map_err(|e| e.to_string())??);
        if done % 500 == 0 || done + 1 == n {
            progress("connect", done as u64 + 1, n as u64, "");
        }
    }
    eprintln!();
    Ok((clients, started.elapsed()))
}

/// `idle`: N connections, each subscribed; the server's memory per connection and the connect rate.
pub async fn idle(common: &Common, n: usize, kind: &str) -> Result<Report, String> {
    let before = common.rss();
    let cpu_before = common.cpu();
    let channel = |i: usize| match kind {
        "private" => format!("private-idle-{}", i % 100),
        "presence" => format!("presence-idle-{}", i % 100),
        _ => format!("idle-{}", i % 100),
    };
    let (clients, took) = connect_all(common, n, channel, |i| Some(format!("u{i}"))).await?;
    let cpu_after = common.cpu();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = common.rss();
    let mut report = Report {
        scenario: format!("idle ({kind})"),
        ..Default::default()
    };
    report.settings = serde_json::json!({ "connections": n, "kind": kind, "targets": common.targets.len() });
    report.figure("connections", n as f64, "");
    report.figure(
        "connect + subscribe rate",
        n as f64 / took.as_secs_f64(),
        "connections/s",
    );
    if let (Some(b), Some(a)) = (cpu_before, cpu_after) {
        // The server's CPU for connecting and subscribing (the rate depends on the load generator too).
        report.figure("server CPU per connection", (a - b) * 1e6 / n as f64, "µs");
    }
    if let (Some(b), Some(a)) = (before, after) {
        report.figure("server resident memory", a as f64 / 1048576.0, "MiB");
        report.figure(
            "server memory per connection",
            (a.saturating_sub(b)) as f64 / n as f64 / 1024.0,
            "KiB",
        );
    }
    drop(clients);
    Ok(report)
}

/// Per-subscriber counts, merged at the end.
#[derive(Default)]
struct Received {
    delivered: u64,
    duplicates: u64,
    latencies: Latencies,
}

/// The sequence numbers one subscriber has seen. Concurrent publishes may arrive out of order, so a
/// duplicate is a number seen before, not one below the highest: a window of the last 8192 numbers.
#[derive(Default)]
struct SeenWindow {
    seen: std::collections::HashSet<u64>,
    highest: u64,
}

impl SeenWindow {
    const WINDOW: u64 = 8192;

    /// False when `seq` was seen already (or is too old to tell).
    fn insert(&mut self, seq: u64) -> bool {
        if self.highest > Self::WINDOW && seq < self.highest - Self::WINDOW {
            return false;
        }
        if !self.seen.insert(seq) {
            return false;
        }
        if seq > self.highest {
            self.highest = seq;
            if self.seen.len() as u64 > 2 * Self::WINDOW {
                let floor = self.highest.saturating_sub(Self::WINDOW);
                self.seen.retain(|&s| s >= floor);
            }
        }
        true
    }
}

impl Received {
    /// Waits for every reader and adds their counts up.
    async fn merge_all(readers: Vec<tokio::task::JoinHandle<Received>>) -> Result<Received, String> {
        let mut total = Received::default();
        for r in readers {
            let got = r.await.map_err(|e| e.to_string())?;
            total.delivered += got.delivered;
            total.duplicates += got.duplicates;
            total.latencies.merge(got.latencies);
        }
        Ok(total)
    }
}

/// Settings of `fanout` and `saturate`.
#[derive(Clone)]
pub struct FanoutSettings {
    pub subscribers: usize,
    pub channels: usize,
    /// Publishes per second (0 = as fast as `in_flight` allows: saturate).
    pub rate: u64,
    pub in_flight: usize,
    pub duration: Duration,
    pub payload: usize,
    /// Subscriber processes (0 or 1: this one). A process holds at most ~19,000 sockets here.
    pub workers: usize,
}

/// The global arguments a worker process is started with (targets, credentials, source addresses).
#[derive(Clone, Default)]
pub struct WorkerArgs {
    pub global: Vec<String>,
    pub sources: Vec<IpAddr>,
}

/// `fanout` and `saturate`.
pub async fn fanout(
    common: &Common,
    worker_args: &WorkerArgs,
    publisher: Publisher,
    s: FanoutSettings,
    name: &str,
) -> Result<Report, String> {
    let delivered_now = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let (readers, took) = if s.workers > 1 {
        spawn_workers(worker_args, &s, delivered_now.clone(), stop.clone()).await?
    } else {
        let (clients, took) = connect_all(
            common,
            s.subscribers,
            |i| format!("fanout-{}", i % s.channels),
            |_| None,
        )
        .await?;
        (
            clients
                .into_iter()
                .map(|(_, c)| read_deliveries(c, delivered_now.clone(), stop.clone()))
                .collect(),
            took,
        )
    };
    let per_channel: Vec<u64> = (0..s.channels)
        .map(|c| (0..s.subscribers).filter(|i| i % s.channels == c).count() as u64)
        .collect();
    let cpu_before = common.cpu();
    let published = Arc::new(AtomicU64::new(0));
    let expected = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    // One sample a second of deliveries, with a progress line.
    let sampler = {
        let (counter, running) = (delivered_now.clone(), running.clone());
        let total = s.duration.as_secs();
        tokio::spawn(async move {
            let mut series = Vec::new();
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            while running.load(Ordering::Relaxed) {
                tick.tick().await;
                let now = counter.load(Ordering::Relaxed);
                series.push(now - last);
                last = now;
                let rate = series.last().copied().unwrap_or(0);
                progress("publish", series.len() as u64, total, &format!("{rate} deliveries/s"));
            }
            series
        })
    };
    let gate = Arc::new(Semaphore::new(s.in_flight.max(1)));
    let started = Instant::now();
    let mut seq = 0u64;
    let mut tick = (s.rate > 0).then(|| tokio::time::interval(Duration::from_secs_f64(1.0 / s.rate as f64)));
    if let Some(t) = tick.as_mut() {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    }
    while started.elapsed() < s.duration {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let permit = gate.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        seq += 1;
        let channel_index = (seq as usize) % s.channels;
        let channel = format!("fanout-{channel_index}");
        let data = publisher::payload(seq, s.payload);
        let (publisher, published, expected, errors) =
            (publisher.clone(), published.clone(), expected.clone(), errors.clone());
        let subscribers = per_channel[channel_index];
        tokio::spawn(async move {
            match publisher.publish(&channel, "load", &data).await {
                Ok(()) => {
                    published.fetch_add(1, Ordering::Relaxed);
                    expected.fetch_add(subscribers, Ordering::Relaxed);
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
    }
    let publish_time = started.elapsed();
    // Wait for the in-flight publishes, then for deliveries to settle (bounded).
    let _ = gate.acquire_many(s.in_flight.max(1) as u32).await;
    let settle = Instant::now();
    let mut last = u64::MAX;
    while settle.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = delivered_now.load(Ordering::Relaxed);
        if now >= expected.load(Ordering::Relaxed) || now == last {
            break;
        }
        last = now;
    }
    let cpu_after = common.cpu();
    running.store(false, Ordering::Relaxed);
    stop.notify_waiters();
    let mut total = Received::merge_all(readers).await?;
    let series = sampler.await.unwrap_or_default();
    eprintln!();

    let expected = expected.load(Ordering::Relaxed);
    let mut report = Report {
        scenario: name.to_owned(),
        ..Default::default()
    };
    report.settings = serde_json::json!({
        "subscribers": s.subscribers, "channels": s.channels, "rate": s.rate, "in_flight": s.in_flight,
        "duration_s": s.duration.as_secs(), "payload_bytes": s.payload, "targets": common.targets.len(), "workers": s.workers,
    });
    report.figure(
        "connect + subscribe rate",
        s.subscribers as f64 / took.as_secs_f64(),
        "connections/s",
    );
    report.figure("published", published.load(Ordering::Relaxed) as f64, "");
    report.figure("publish errors", errors.load(Ordering::Relaxed) as f64, "");
    report.figure("expected deliveries", expected as f64, "");
    report.figure("delivered", total.delivered as f64, "");
    report.figure("lost", expected.saturating_sub(total.delivered) as f64, "");
    report.figure("duplicated", total.duplicates as f64, "");
    report.figure(
        "deliveries per second",
        total.delivered as f64 / publish_time.as_secs_f64(),
        "/s",
    );
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        report.figure("server CPU time", b - a, "s");
        if total.delivered > 0 {
            report.figure("server CPU per delivery", (b - a) / total.delivered as f64 * 1e6, "µs");
        }
    }
    report.latency_ms = Some(total.latencies.percentiles());
    report.deliveries_per_second = series;
    Ok(report)
}

/// Counts one subscriber's deliveries until `stop`.
fn read_deliveries(
    c: client::Client,
    counter: Arc<AtomicU64>,
    stop: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<Received> {
    tokio::spawn(async move {
        let mut got = Received::default();
        let mut seen = SeenWindow::default();
        let run = c.run(|frame| {
            if let Some((t, seq)) = publisher::parse_delivery(frame) {
                if !seen.insert(seq) {
                    got.duplicates += 1;
                } else {
                    got.delivered += 1;
                    got.latencies.record(now_micros().saturating_sub(t));
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            true
        });
        tokio::select! {
            _ = run => {}
            _ = stop.notified() => {}
        }
        got
    })
}

/// Starts `s.workers` subscriber processes (`herald-load worker`), each with its share of the subscribers
/// and a source address of its own; returns when all are connected. Their deliveries count into `counter`
/// as they report them; their latencies come back when `stop` fires.
async fn spawn_workers(
    args: &WorkerArgs,
    s: &FanoutSettings,
    counter: Arc<AtomicU64>,
    stop: Arc<tokio::sync::Notify>,
) -> Result<(Vec<tokio::task::JoinHandle<Received>>, Duration), String> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut handles = Vec::new();
    let mut ready = Vec::new();
    for w in 0..s.workers {
        let (from, to) = (s.subscribers * w / s.workers, s.subscribers * (w + 1) / s.workers);
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(&args.global);
        if !args.sources.is_empty() {
            cmd.arg("--sources")
                .arg(args.sources[w % args.sources.len()].to_string());
        }
        cmd.args([
            "worker",
            "--subscribers",
            &(to - from).to_string(),
            "--offset",
            &from.to_string(),
        ]);
        cmd.args(["--channels", &s.channels.to_string()]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("worker: {e}"))?;
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().ok_or("no worker stdout")?).lines();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        ready.push(ready_rx);
        let (counter, stop) = (counter.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            let mut reported = 0u64;
            let mut stdin = stdin;
            let stopped = stop.notified();
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    line = lines.next_line() => match line {
                        Ok(Some(line)) if line == "READY" => {
                            if let Some(tx) = ready_tx.take() { let _ = tx.send(Ok(())); }
                        }
                        Ok(Some(line)) if line.starts_with("D ") => {
                            let now: u64 = line[2..].parse().unwrap_or(reported);
                            counter.fetch_add(now.saturating_sub(reported), Ordering::Relaxed);
                            reported = now;
                        }
                        Ok(Some(line)) if line.starts_with("R ") => {
                            let v: serde_json::Value = serde_json::from_str(&line[2..]).unwrap_or_default();
                            let samples: Vec<u32> = serde_json::from_value(v["latencies"].clone()).unwrap_or_default();
                            let _ = child.wait().await;
                            return Received {
                                delivered: v["delivered"].as_u64().unwrap_or(0),
                                duplicates: v["duplicates"].as_u64().unwrap_or(0),
                                latencies: Latencies::from_samples(samples),
                            };
                        }
                        Ok(Some(_)) => {}
                        _ => {
                            if let Some(tx) = ready_tx.take() { let _ = tx.send(Err("a worker exited before connecting".into())); }
                            return Received::default();
                        }
                    },
                    _ = &mut stopped, if stdin.is_some() => { stdin = None; }
                }
            }
        }));
    }
    for r in ready {
        r.await.map_err(|_| "a worker vanished".to_string())??;
    }
    eprintln!("{} workers connected {} subscribers", s.workers, s.subscribers);
    Ok((handles, started.elapsed()))
}

/// The worker side: connects `n` subscribers (channel = (offset + i) % channels), says READY, reports its
/// delivery count every half second, and when its stdin closes prints its counts and latency samples.
pub async fn worker(common: &Common, n: usize, offset: usize, channels: usize) -> Result<(), String> {
    use std::io::Write;
    let (clients, _) = connect_all(
        common,
        n,
        |i| format!("fanout-{}", (offset + i) % channels.max(1)),
        |_| None,
    )
    .await?;
    let counter = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let readers: Vec<_> = clients
        .into_iter()
        .map(|(_, c)| read_deliveries(c, counter.clone(), stop.clone()))
        .collect();
    println!("READY");
    let _ = std::io::stdout().flush();
    let reporter = {
        let counter = counter.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                println!("D {}", counter.load(Ordering::Relaxed));
                let _ = std::io::stdout().flush();
            }
        })
    };
    let mut sink = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
    reporter.abort();
    stop.notify_waiters();
    let total = Received::merge_all(readers).await?;
    let out = serde_json::json!({ "delivered": total.delivered, "duplicates": total.duplicates, "latencies": total.latencies.samples() });
    println!("R {out}");
    let _ = std::io::stdout().flush();
    Ok(())
}

/// `presence`: `users` users with `tabs` tabs each join one presence channel, spread over the targets; an
/// observer checks one `member_added` per user, then every tab closes and the observer times the leaves.
pub async fn presence(common: &Common, users: usize, tabs: usize, channels: usize) -> Result<Report, String> {
    let channels = channels.clamp(1, 100);
    let channel_of = move |user: usize| format!("presence-load-{}", user % channels);
    let observer_target = common.target(0).clone();
    let mut observer = client::connect(&observer_target, common.source(0)).await?;
    for c in 0..channels {
        observer
            .subscribe(&observer_target, &channel_of(c), Some("observer"))
            .await?;
    }
    let added = Arc::new(std::sync::Mutex::new(HashMap::<String, u32>::new()));
    let removed = Arc::new(std::sync::Mutex::new(HashMap::<String, u32>::new()));
    let last_removal = Arc::new(AtomicU64::new(0));
    let (a, r, l) = (added.clone(), removed.clone(), last_removal.clone());
    let watcher = tokio::spawn(observer.run(move |frame| {
        let text = String::from_utf8_lossy(frame);
        let user = text
            .split("user_id\\\":\\\"")
            .nth(1)
            .and_then(|rest| rest.split('\\').next())
            .map(str::to_owned);
        if let Some(user) = user {
            if text.contains("pusher_internal:member_added") {
                *a.lock().unwrap().entry(user).or_default() += 1;
            } else if text.contains("pusher_internal:member_removed") {
                *r.lock().unwrap().entry(user).or_default() += 1;
                l.store(now_micros(), Ordering::Relaxed);
            }
        }
        true
    }));
    let n = users * tabs;
    let join_started = Instant::now();
    let (clients, took) = connect_all(
        common,
        n,
        |i| channel_of(i % users),
        |i| Some(format!("user-{}", i % users)),
    )
    .await?;
    let joins_per_second = n as f64 / took.as_secs_f64();
    let wait = Instant::now();
    while added.lock().unwrap().len() < users && wait.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = join_started;
    let leave_started = now_micros();
    drop(clients);
    let wait = Instant::now();
    while removed.lock().unwrap().len() < users && wait.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
    let added = added.lock().unwrap().clone();
    let removed = removed.lock().unwrap().clone();
    let mut report = Report {
        scenario: "presence".into(),
        ..Default::default()
    };
    report.settings =
        serde_json::json!({ "users": users, "tabs": tabs, "channels": channels, "targets": common.targets.len() });
    report.figure("joins per second (tabs)", joins_per_second, "/s");
    report.figure("users announced (member_added)", added.len() as f64, "");
    report.figure(
        "users announced more than once",
        added.values().filter(|&&c| c > 1).count() as f64,
        "",
    );
    report.figure("users removed (member_removed)", removed.len() as f64, "");
    report.figure(
        "users removed more than once",
        removed.values().filter(|&&c| c > 1).count() as f64,
        "",
    );
    let last = last_removal.load(Ordering::Relaxed);
    if last > leave_started {
        report.figure("time to announce every leave", (last - leave_started) as f64 / 1e6, "s");
    }
    Ok(report)
}
