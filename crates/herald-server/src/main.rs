//! `herald`: starts one node. Reads the configuration, picks the backbone (Redis when `HERALD_REDIS_URL` is
//! set, in memory otherwise), serves HTTP and WebSockets on one port, and drains on SIGTERM.

// The futures the server spawns are deep (hyper, TLS, Redis cluster connections): the trait solver needs room.
#![recursion_limit = "256"]

mod admin;
mod api;
mod app_admin;
mod auth_proxy;
mod body_reader;
mod cli;
mod dashboard;
mod deadline;
mod echo_server_api;

mod frame_writer;
mod http;
mod isolation;
mod keepalive;
mod log_every;
mod print_config;
mod reload;
mod repoll;
mod routes;
mod shutdown;
mod socketio;
mod tls;
mod webhook_sender;
mod websocket;

use herald_core::Node;
use herald_server::config::{Config, LogFormat};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

fn main() {
    // `herald print-config [flags]`: what Laravel's .env and Echo need for this configuration, then exit.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `herald send|tail|check ...`: a terminal command against the configuration (and a running node).
    if args.get(1).is_some_and(|a| cli::NAMES.iter().any(|n| a == *n)) {
        std::process::exit(cli::run(args));
    }
    let print = args.get(1).is_some_and(|a| a == "print-config");
    if print {
        args.remove(1);
        // `--laravel` names what print-config prints (the .env and Echo lines); nothing else to choose.
        args.retain(|a| a != "--laravel");
    }
    let config = match Config::load_from(args.clone()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("herald: configuration error: {e}");
            std::process::exit(2);
        }
    };
    if print {
        print!("{}", print_config::render(&config));
        return;
    }
    init_logs(config.log_format);
    echo_server_api::start_clock();
    // One crypto provider for every TLS configuration in the process (ours and redis-rs's).
    let _ = rustls::crypto::ring::default_provider().install_default();
    for warning in &config.deprecations {
        tracing::warn!("{warning}");
    }
    for source in &config.sources {
        tracing::info!("from Laravel's settings: {source}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(config, args)) {
        tracing::error!(error = %e, "herald stopped");
        std::process::exit(1);
    }
}

fn init_logs(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // redis-rs logs each failed attempt to reach a Redis Cluster node, hundreds a second while a shard fails
    // over; Herald's own lines say what happened and what it does. Shown when RUST_LOG names redis itself.
    let names_redis =
        std::env::var("RUST_LOG").is_ok_and(|v| v.split(',').any(|directive| directive.trim().starts_with("redis")));
    if !names_redis {
        filter = filter.add_directive("redis::cluster_handling=error".parse().expect("a valid directive"));
    }
    use std::io::IsTerminal;
    // Colours only for a person at a terminal; log collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(config: Config, args: Vec<std::ffi::OsString>) -> Result<(), Box<dyn std::error::Error>> {
    let node = match config.redis_settings() {
        Some(redis) => herald_redis::node(config.apps.clone(), config.settings.clone(), &redis)?,
        None => {
            // No Redis to lose: the "subscription" is always live (keeps the Redis alert quiet).
            herald_core::metrics::metrics().redis_subscription_up.set(1);
            Node::embedded(config.apps.clone(), config.settings.clone())
        }
    };
    let addr = format!("{}:{}", config.host, config.port);
    let listener = herald_server::listener::listen(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} (HERALD_HOST/HERALD_PORT): {e}"))?;
    let mode = if config.redis_url.is_some() {
        "redis"
    } else {
        "embedded (no Redis)"
    };
    let scheme = if config.tls.is_some() {
        "tls (wss://, https://)"
    } else {
        "plaintext (ws://, http://)"
    };
    tracing::info!(%addr, mode, scheme, apps = config.apps.len(), "herald listening");
    if config.dev_app {
        tracing::warn!("no app configured: using the development app (id app-id, key app-key, secret app-secret)");
    }

    let app_client = tls::app_client(config.app_ca_file.as_deref()).map_err(|e| format!("HERALD_APP_CA_FILE: {e}"))?;
    let listener_tls = match &config.tls {
        Some((cert, key)) => {
            let cert = tls::ListenerCert::load(cert, key)
                .map_err(|e| format!("HERALD_TLS_CERT_FILE / HERALD_TLS_KEY_FILE: {e}"))?;
            cert.watch();
            Some(cert.acceptor())
        }
        None => None,
    };
    webhook_sender::spawn(node.clone(), app_client.clone());
    let shutdown = shutdown::Shutdown::default();
    let drain = websocket::DrainPolicy {
        window: config.drain_window,
        grace: config.presence_grace,
    };
    let socketio = config.socketio.as_ref().map(|socketio| {
        let context = socketio::Context {
            node: node.clone(),
            app_id: socketio.app_id.clone(),
            app_client: app_client.clone(),
            connections: shutdown.connections(),
            drain,
        };
        std::sync::Arc::new(socketio::SocketIo::new(socketio, context))
    });
    let keepalive = keepalive::Keepalive::new(node.settings().activity_timeout, node.settings().pong_timeout);
    keepalive.spawn();
    let server = http::Server {
        keepalive,
        socketio,
        node,
        shutdown: shutdown.clone(),
        serves_clients: true,
        serves_probes: config.metrics_port.is_none(),
        drain,
        app_client,
        api_bodies: body_reader::BodyReader::new(config.body_timeout, MAX_BODIES_IN_FLIGHT),
        auth_bodies: body_reader::BodyReader::new(config.body_timeout, MAX_BODIES_IN_FLIGHT),
        peer: None,
        admin: match config.redis_apps {
            true => Some(std::sync::Arc::new(app_admin::AppAdmin::new(config.clone())?)),
            false => None,
        },
        dashboard: config
            .dashboard
            .enabled()
            .then(|| std::sync::Arc::new(dashboard::Dashboard::new(&config.dashboard, config.tls.is_some()))),
    };
    if let Some(socketio) = &config.socketio {
        tracing::info!(path = %socketio.path, app = %socketio.app_id, "socket.io clients (Echo's socket.io broadcaster) served");
    }
    if config.dashboard.enabled() {
        tracing::info!(path = %config.dashboard.path, "dashboard on");
        let node = std::sync::Arc::downgrade(&server.node);
        tokio::spawn(Node::run_console(node, node_address(&config)));
    }
    if let Some(port) = config.metrics_port {
        let addr = format!("{}:{}", config.host, port);
        let probes = herald_server::listener::listen(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr} (HERALD_METRICS_PORT): {e}"))?;
        tracing::info!(%addr, "metrics and probes listening");
        let probe_server = http::Server {
            serves_clients: false,
            serves_probes: true,
            ..server.clone()
        };
        tokio::spawn(accept_loop(probes, probe_server, None, std::future::pending()));
    }
    isolation::spawn(server.node.clone(), shutdown.clone(), config.isolation_timeout);
    reload::spawn(server.node.clone(), args, config.clone(), shutdown.clone());
    let accepting = tokio::spawn(accept_loop(
        listener,
        server.clone(),
        listener_tls,
        std::future::pending(),
    ));
    shutdown::signal().await;
    tracing::info!(open = server.shutdown.open_connections(), "draining");
    // Unready first (new WebSockets are refused with 4100 and the load balancer stops sending), then the
    // open connections are closed over the window; the listener stays up so probes see 503, not a refusal.
    server
        .shutdown
        .drain(config.drain_window + config.presence_grace + Duration::from_secs(5))
        .await;
    accepting.abort();
    server.node.retire().await;
    // Webhooks raised by the last connections leaving (or by the retirement) still go out.
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.node.webhooks().pending() > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// How an operator reaches this node, as the dashboard lists it: the host name (the pod name on
/// Kubernetes) and the port.
fn node_address(config: &Config) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| config.host.clone());
    format!("{host}:{}", config.port)
}

/// Request bodies read at once, for the HTTP API and for the auth endpoints each; beyond this a request gets
/// 503 at once.
const MAX_BODIES_IN_FLIGHT: usize = 64;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` (over TLS when `tls` is given) until `stop` resolves.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    server: http::Server,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => return,
        };
        let _ = stream.set_nodelay(true);
        let server = http::Server {
            peer: Some(peer.ip()),
            ..server.clone()
        };
        // Two kinds of task: a plaintext connection's carries no room for a TLS handshake and stream (about
        // 4 KiB, moved whenever the task is spawned).
        match tls.clone() {
            None => {
                tokio::spawn(serve(stream, server));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve(stream, server).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Serves HTTP/1.1 (and WebSocket upgrades) on one accepted connection.
async fn serve<S>(stream: S, server: http::Server)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // One handle shared by the connection's requests: a request costs one reference count, not a copy.
    let server = std::sync::Arc::new(server);
    let service = service_fn(move |req| {
        let server = server.clone();
        async move { server.handle(req).await }
    });
    // A client that never finishes its request headers is dropped (slowloris).
    // Responses are small and go out in one plain write (`send`), which costs the kernel less than the
    // vectored write of head and body (measured: docs/benchmarks.md, performance round four).
    // The connection wakes itself within each request with a body: it is polled again on the spot rather
    // than rescheduled (repoll.rs).
    let connection = http1::Builder::new()
        .writev(false)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let _ = repoll::Repoll::new(connection).await;
}
