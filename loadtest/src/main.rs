//! `herald-load`: Herald's load generator. It speaks the Pusher protocol like pusher-js, publishes like a
//! Laravel app (signed HTTP API or Laravel's Redis format), and reports what users and operators care about:
//! latency percentiles, loss and duplicates, deliveries per second, and the server's CPU time per delivery
//! and memory per connection read from /proc. Results go to stdout (Markdown) and, when asked, to JSON
//! and an SVG chart.

mod client;
mod conn;
mod latency;
mod proc_stats;
mod publisher;
mod report;
mod scenarios;

use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "herald-load",
    about = "Load generator for Herald and other Pusher-protocol servers"
)]
struct Cli {
    /// Node address(es) to connect to (host:port); clients are spread over them.
    #[arg(long = "target", default_value = "127.0.0.1:6001", global = true)]
    targets: Vec<String>,
    #[arg(long, default_value = "app-id", global = true)]
    app_id: String,
    #[arg(long, default_value = "app-key", global = true)]
    key: String,
    #[arg(long, default_value = "app-secret", global = true)]
    secret: String,
    /// Server process id(s) whose CPU time and memory are read from /proc.
    #[arg(long = "server-pid", global = true)]
    server_pids: Vec<u32>,
    /// Local source addresses to spread connections over (127.0.0.2,127.0.0.3,...): about 28k ports each.
    #[arg(long, value_delimiter = ',', global = true)]
    sources: Vec<IpAddr>,
    /// Connections being opened at once (more than about 64 on loopback costs SYN retransmits).
    #[arg(long, default_value_t = 32, global = true)]
    connect_concurrency: usize,
    /// Write the result as JSON here.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Write an SVG chart here (latency percentiles, deliveries per second).
    #[arg(long, global = true)]
    svg: Option<PathBuf>,
    /// Connect with TLS (wss://, and https:// for the HTTP API), trusting the CA in this PEM file.
    #[arg(long, global = true)]
    tls_ca: Option<PathBuf>,
    /// The clients' protocol: pusher (pusher-js), socketio (Echo's socket.io broadcaster on socket.io-client
    /// 4.x) or socketio2 (on socket.io-client 2.x, as laravel-echo-server serves it); socket.io: public
    /// channels, and socketio2 runs under 25 s (the client sends no heartbeat).
    #[arg(long, default_value = "pusher", global = true, value_parser = ["pusher", "socketio", "socketio2"])]
    protocol: String,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N idle subscribed connections: memory per connection and connect rate.
    Idle {
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// public, private or presence.
        #[arg(long, default_value = "public")]
        kind: String,
    },
    /// Subscribers over K channels, a fixed publish rate: latency, loss, CPU per delivery.
    Fanout {
        #[command(flatten)]
        load: Load,
        /// Publishes per second (over all channels).
        #[arg(long, default_value_t = 20)]
        rate: u64,
    },
    /// Publishes as fast as the in-flight bound allows: the highest sustained deliveries per second.
    Saturate {
        #[command(flatten)]
        load: Load,
        /// Publishes in flight at once.
        #[arg(long, default_value_t = 32)]
        in_flight: usize,
    },
    /// (internal) A subscriber process started by `--workers`.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        subscribers: usize,
        #[arg(long)]
        offset: usize,
        #[arg(long)]
        channels: usize,
    },
    /// Users with several tabs join and leave a presence channel across the targets.
    Presence {
        #[arg(long, default_value_t = 200)]
        users: usize,
        #[arg(long, default_value_t = 2)]
        tabs: usize,
        /// Presence channels the users are spread over (1 to 100; a user's tabs share one).
        #[arg(long, default_value_t = 1)]
        channels: usize,
    },
}

#[derive(clap::Args)]
struct Load {
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    #[arg(long, default_value_t = 1)]
    channels: usize,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Extra payload bytes per event.
    #[arg(long, default_value_t = 0)]
    payload: usize,
    /// Subscriber processes (a process holds at most ~19,000 sockets here); each takes the next --sources
    /// address.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// api (signed HTTP API) or redis (Laravel's RedisBroadcaster format).
    #[arg(long, default_value = "api")]
    publish: String,
    /// HTTP API base URL (default: the first target).
    #[arg(long)]
    api: Option<String>,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(long, default_value = "laravel_database_")]
    redis_prefix: String,
}

fn resolve(target: &str) -> Result<SocketAddr, String> {
    target
        .to_socket_addrs()
        .map_err(|e| format!("{target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target}: no address"))
}

async fn publisher(cli: &Cli, load: &Load) -> Result<publisher::Publisher, String> {
    let tls = tls(cli)?;
    match load.publish.as_str() {
        "api" => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let base = load
                .api
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{}", cli.targets[0]));
            Ok(publisher::Publisher::api(
                &base,
                &cli.app_id,
                &cli.key,
                &cli.secret,
                tls.clone(),
            ))
        }
        "redis" => publisher::Publisher::redis(&load.redis_url, &load.redis_prefix).await,
        other => Err(format!("--publish {other:?}: use api or redis")),
    }
}

/// The TLS configuration `--tls-ca` asks for.
fn tls(cli: &Cli) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, String> {
    cli.tls_ca.as_deref().map(conn::tls_config).transpose()
}

async fn run(cli: Cli) -> Result<(), String> {
    let tls = tls(&cli)?;
    let mut targets = Vec::new();
    for t in &cli.targets {
        targets.push(client::Target {
            addr: resolve(t)?,
            key: cli.key.clone(),
            secret: cli.secret.clone(),
            tls: tls.clone(),
            socketio: match cli.protocol.as_str() {
                "socketio" => Some(4),
                "socketio2" => Some(3),
                _ => None,
            },
        });
    }
    let common = scenarios::Common {
        targets,
        sources: cli.sources.clone(),
        server_pids: cli.server_pids.clone(),
        connect_concurrency: cli.connect_concurrency,
    };
    let mut global = Vec::new();
    for t in &cli.targets {
        global.extend(["--target".to_string(), t.clone()]);
    }
    global.extend([
        "--app-id".into(),
        cli.app_id.clone(),
        "--key".into(),
        cli.key.clone(),
        "--secret".into(),
        cli.secret.clone(),
    ]);
    global.extend(["--connect-concurrency".into(), cli.connect_concurrency.to_string()]);
    global.extend(["--protocol".into(), cli.protocol.clone()]);
    let worker_args = scenarios::WorkerArgs {
        global,
        sources: cli.sources.clone(),
    };
    if let Scenario::Worker {
        subscribers,
        offset,
        channels,
    } = &cli.scenario
    {
        return scenarios::worker(&common, *subscribers, *offset, *channels).await;
    }
    let report = match &cli.scenario {
        Scenario::Worker { .. } => unreachable!("handled above"),
        Scenario::Idle { connections, kind } => scenarios::idle(&common, *connections, kind).await?,
        Scenario::Fanout { load, rate } => {
            let settings = settings(load, *rate, 256);
            scenarios::fanout(&common, &worker_args, publisher(&cli, load).await?, settings, "fanout").await?
        }
        Scenario::Saturate { load, in_flight } => {
            let settings = settings(load, 0, *in_flight);
            scenarios::fanout(
                &common,
                &worker_args,
                publisher(&cli, load).await?,
                settings,
                "saturate",
            )
            .await?
        }
        Scenario::Presence { users, tabs, channels } => scenarios::presence(&common, *users, *tabs, *channels).await?,
    };
    let chart = cli.svg.as_ref().map(|p| {
        p.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    println!("{}", report.markdown(chart.as_deref()));
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    if let Some(path) = &cli.svg {
        std::fs::write(path, report.svg()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn settings(load: &Load, rate: u64, in_flight: usize) -> scenarios::FanoutSettings {
    scenarios::FanoutSettings {
        subscribers: load.subscribers,
        channels: load.channels.max(1),
        rate,
        in_flight,
        duration: Duration::from_secs(load.duration),
        payload: load.payload,
        workers: load.workers,
    }
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("herald-load: {e}");
        std::process::exit(1);
    }
}
