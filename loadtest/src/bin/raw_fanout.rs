//! `raw-fanout`: the reference point for Herald's benchmarks, the practical limit of this machine's
//! loopback. A WebSocket server with no logic: it answers the Pusher handshake and any subscribe (no auth),
//! and an HTTP POST to `/apps/{id}/events` (not checked) is encoded once and written to every subscriber
//! of its channel, through a bounded queue per connection, one write per frame. Herald's overhead is measured against it in the same run.
//!
//! With `--redis URL [PREFIX]` it also forwards from Redis as Laravel's RedisBroadcaster publishes
//! (`PSUBSCRIBE PREFIX*`, the channel is the rest of the name, the payload's `event` and `data` become the
//! frame): the reference for Laravel-to-browser latency through Redis, with no logic in between.

use bytes::Bytes;
use fastwebsockets::{upgrade, Frame, OpCode, Payload};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// Channel name to its subscribers' queues.
type Subscribers = Arc<RwLock<std::collections::HashMap<String, Vec<(u64, mpsc::Sender<Bytes>)>>>>;

async fn handle(
    req: Request<hyper::body::Incoming>,
    subs: Subscribers,
    ids: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if upgrade::is_upgrade_request(&req) {
        let mut req = req;
        let Ok((response, fut)) = upgrade::upgrade(&mut req) else {
            return Ok(Response::builder()
                .status(400)
                .body(Full::new(Bytes::new()))
                .expect("response"));
        };
        tokio::spawn(async move {
            let Ok(ws) = fut.await else { return };
            let id = ids.fetch_add(1, Ordering::Relaxed);
            let (tx, mut rx) = mpsc::channel::<Bytes>(1024);
            let (mut read, mut write) = ws.split(tokio::io::split);
            let established = format!("{{\"event\":\"pusher:connection_established\",\"data\":\"{{\\\"socket_id\\\":\\\"1.{id}\\\",\\\"activity_timeout\\\":120}}\"}}");
            let _ = tx.send(Bytes::from(established)).await;
            let writer = tokio::spawn(async move {
                while let Some(bytes) = rx.recv().await {
                    if write.write_frame(Frame::text(Payload::Borrowed(&bytes))).await.is_err() {
                        return;
                    }
                }
            });
            let mut channels: Vec<String> = Vec::new();
            let mut noop = |_: Frame<'_>| async { Ok::<(), std::convert::Infallible>(()) };
            while let Ok(frame) = read.read_frame(&mut noop).await {
                if frame.opcode == OpCode::Close {
                    break;
                }
                let text = String::from_utf8_lossy(&frame.payload).into_owned();
                if text.contains("pusher:subscribe") {
                    let channel = text
                        .split("\"channel\":\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .unwrap_or("")
                        .to_owned();
                    if !channels.contains(&channel) {
                        subs.write()
                            .expect("lock")
                            .entry(channel.clone())
                            .or_default()
                            .push((id, tx.clone()));
                        channels.push(channel.clone());
                    }
                    let ok = format!("{{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":\"{channel}\",\"data\":\"{{}}\"}}");
                    let _ = tx.send(Bytes::from(ok)).await;
                } else if text.contains("pusher:ping") {
                    let _ = tx
                        .send(Bytes::from_static(b"{\"event\":\"pusher:pong\",\"data\":\"{}\"}"))
                        .await;
                }
            }
            let mut all = subs.write().expect("lock");
            for channel in &channels {
                if let Some(list) = all.get_mut(channel) {
                    list.retain(|(i, _)| *i != id);
                }
            }
            drop(all);
            writer.abort();
        });
        let (parts, _) = response.into_parts();
        return Ok(Response::from_parts(parts, Full::new(Bytes::new())));
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let channel = event["channel"]
        .as_str()
        .or_else(|| event["channels"][0].as_str())
        .unwrap_or("")
        .to_owned();
    let data = event["data"].as_str().unwrap_or("");
    deliver(&subs, &channel, event["name"].as_str().unwrap_or("event"), data);
    Ok(Response::new(Full::new(Bytes::from_static(b"{}"))))
}

/// Encodes one frame per event and queues it to the channel's subscribers.
fn deliver(subs: &Subscribers, channel: &str, event: &str, data: &str) {
    let frame = Bytes::from(herald_protocol::frame::encode(
        event,
        Some(channel),
        herald_protocol::frame::Data::AsString(data),
        None,
    ));
    if let Some(list) = subs.read().expect("lock").get(channel) {
        for (_, tx) in list {
            let _ = tx.try_send(frame.clone());
        }
    }
}

/// Forwards every message published on `prefix*` to the subscribers of the rest of its channel name.
async fn forward_from_redis(url: String, prefix: String, subs: Subscribers) {
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut pubsub = client.get_async_pubsub().await.expect("redis connection");
    pubsub.psubscribe(format!("{prefix}*")).await.expect("psubscribe");
    eprintln!("raw-fanout forwarding from {url} ({prefix}*)");
    let mut messages = pubsub.into_on_message();
    while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
        let name = message.get_channel_name();
        let channel = name.strip_prefix(prefix.as_str()).unwrap_or(name);
        let payload: serde_json::Value = serde_json::from_slice(message.get_payload_bytes()).unwrap_or_default();
        let data = match &payload["data"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        deliver(&subs, channel, payload["event"].as_str().unwrap_or("event"), &data);
    }
}

/// Binds with the same accept queue as Herald's listener (4,096; the kernel caps it at
/// `net.core.somaxconn`), so a burst of connects meets the same kernel queue on both servers.
async fn listen(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let Some(addr) = tokio::net::lookup_host(addr).await?.next() else {
        return Err(std::io::Error::other("the address resolved to nothing"));
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:6101".into());
    let listener = listen(&addr).await.expect("bind");
    eprintln!("raw-fanout listening on {addr}");
    let subs: Subscribers = Arc::default();
    if args.get(2).map(String::as_str) == Some("--redis") {
        let url = args.get(3).cloned().expect("--redis URL [PREFIX]");
        let prefix = args.get(4).cloned().unwrap_or_default();
        tokio::spawn(forward_from_redis(url, prefix, subs.clone()));
    }
    let ids = Arc::new(AtomicU64::new(1));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (subs, ids) = (subs.clone(), ids.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, subs.clone(), ids.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
