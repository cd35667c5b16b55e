//! A Pusher protocol client as lean as the load needs: a hand-written WebSocket handshake, then
//! fastwebsockets as the client role. It subscribes (signing private and presence channels like an app's
//! auth endpoint would), answers `pusher:ping`, and hands every event frame to a callback. With
//! `--protocol socketio` it is Echo's socket.io connector instead (Engine.IO 4 over WebSocket, public
//! channels), and with `socketio2` that of socket.io 2.x (Engine.IO 3), which laravel-echo-server itself
//! speaks, to measure those clients next to pusher-js ones and next to laravel-echo-server.

use crate::conn::Conn;
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
use herald_protocol::signature;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub key: String,
    pub secret: String,
    /// Connect with TLS (wss://) under this configuration.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Speak socket.io (Echo's socket.io broadcaster) over this Engine.IO version (3 or 4) instead of the
    /// Pusher protocol.
    pub socketio: Option<u8>,
}

/// A connected, established client.
pub struct Client {
    pub ws: WebSocket<Conn>,
    pub socket_id: String,
    socketio: Option<u8>,
}

/// Opens a connection from `source` (an address on lo, to spread past one address's ports) and reads
/// `connection_established`.
pub async fn connect(target: &Target, source: Option<std::net::IpAddr>) -> Result<Client, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.set_recv_buffer_size(16 * 1024).ok();
    socket.set_send_buffer_size(8 * 1024).ok();
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let stream = socket
        .connect(target.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", target.addr))?;
    stream.set_nodelay(true).ok();
    let path = match target.socketio {
        Some(eio) => format!("/socket.io/?EIO={eio}&transport=websocket"),
        None => format!("/app/{}?protocol=7&client=herald-load&version=1", target.key),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: aGVyYWxkLWxvYWR0ZXN0IQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.addr
    );
    let mut stream = match &target.tls {
        None => stream,
        Some(config) => {
            let name = rustls::pki_types::ServerName::IpAddress(target.addr.ip().into());
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake with {}: {e}", target.addr))?;
            let mut conn = Conn::Tls(Box::new(tls));
            conn.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
            // No peek through TLS: read the response head byte by byte, so no frame bytes are taken.
            let mut head = Vec::with_capacity(256);
            while !head.ends_with(b"\r\n\r\n") {
                if head.len() > 1024 {
                    return Err("handshake response too long".into());
                }
                head.push(conn.read_u8().await.map_err(|e| e.to_string())?);
            }
            if !head.starts_with(b"HTTP/1.1 101") {
                return Err(format!(
                    "handshake refused: {}",
                    String::from_utf8_lossy(&head[..head.len().min(80)])
                ));
            }
            return established(conn, target.socketio).await;
        }
    };
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    // Read exactly the response head: peek for its end, then consume it, so no frame bytes are lost.
    let mut head = [0u8; 1024];
    loop {
        let n = stream.peek(&mut head).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed during the handshake".into());
        }
        if let Some(end) = head[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            let mut consumed = vec![0u8; end + 4];
            stream.read_exact(&mut consumed).await.map_err(|e| e.to_string())?;
            if !consumed.starts_with(b"HTTP/1.1 101") {
                return Err(format!(
                    "handshake refused: {}",
                    String::from_utf8_lossy(&consumed[..consumed.len().min(80)])
                ));
            }
            break;
        }
        if n == head.len() {
            return Err("handshake response too long".into());
        }
        tokio::task::yield_now().await;
    }
    established(Conn::Plain(stream), target.socketio).await
}

/// After the upgrade: the WebSocket, and `connection_established` (socket.io: Engine.IO's open packet,
/// then joining the default namespace).
async fn established(conn: Conn, socketio: Option<u8>) -> Result<Client, String> {
    let mut ws = WebSocket::after_handshake(conn, Role::Client);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    if let Some(eio) = socketio {
        let open = ws.read_frame().await.map_err(|e| e.to_string())?;
        if !open.payload.starts_with(b"0{") {
            return Err(format!(
                "no Engine.IO open packet: {}",
                String::from_utf8_lossy(&open.payload)
            ));
        }
        let mut client = Client {
            ws,
            socket_id: String::new(),
            socketio,
        };
        if eio == 3 {
            // socket.io 2.x: joined to "/" unasked; the socket id is the Engine.IO session id.
            let open: serde_json::Value =
                serde_json::from_slice(&open.payload[1..]).map_err(|e| format!("open packet: {e}"))?;
            client.socket_id = open["sid"].as_str().unwrap_or_default().to_owned();
            loop {
                let frame = client.ws.read_frame().await.map_err(|e| e.to_string())?;
                if frame.payload.starts_with(b"40") {
                    return Ok(client);
                }
            }
        }
        client.send("40").await?;
        let joined = loop {
            let frame = client.ws.read_frame().await.map_err(|e| e.to_string())?;
            // Engine.IO pings at once, then every interval.
            if &frame.payload[..] == b"2" {
                client.send("3").await?;
                continue;
            }
            break frame;
        };
        let text = String::from_utf8_lossy(&joined.payload);
        let sid: serde_json::Value = text
            .strip_prefix("40")
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| format!("not joined to the namespace: {text}"))?;
        client.socket_id = sid["sid"].as_str().unwrap_or_default().to_owned();
        return Ok(client);
    }
    let frame = ws.read_frame().await.map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&frame.payload).map_err(|e| e.to_string())?;
    let socket_id = extract_socket_id(text).ok_or_else(|| format!("no connection_established: {text}"))?;
    Ok(Client {
        ws,
        socket_id,
        socketio,
    })
}

fn extract_socket_id(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v["event"] != "pusher:connection_established" {
        return None;
    }
    let data: serde_json::Value = serde_json::from_str(v["data"].as_str()?).ok()?;
    Some(data["socket_id"].as_str()?.to_owned())
}

impl Client {
    /// Subscribes and waits for `subscription_succeeded` (frames before it are ignored).
    pub async fn subscribe(&mut self, target: &Target, channel: &str, user_id: Option<&str>) -> Result<(), String> {
        if let Some(eio) = self.socketio {
            return self.subscribe_socketio(channel, eio).await;
        }
        let mut data = serde_json::json!({ "channel": channel });
        if channel.starts_with("presence-") {
            let user = user_id.unwrap_or("load");
            let channel_data = serde_json::json!({ "user_id": user, "user_info": { "name": user } }).to_string();
            data["auth"] = signature::sign_channel(
                &target.key,
                &target.secret,
                &self.socket_id,
                channel,
                Some(&channel_data),
            )
            .into();
            data["channel_data"] = channel_data.into();
        } else if channel.starts_with("private-") {
            data["auth"] = signature::sign_channel(&target.key, &target.secret, &self.socket_id, channel, None).into();
        }
        self.send(&serde_json::json!({ "event": "pusher:subscribe", "data": data }).to_string())
            .await?;
        loop {
            let frame = self.ws.read_frame().await.map_err(|e| e.to_string())?;
            if frame.opcode != OpCode::Text {
                continue;
            }
            let text = String::from_utf8_lossy(&frame.payload);
            if text.contains("pusher_internal:subscription_succeeded") && text.contains(channel) {
                return Ok(());
            }
            if text.contains("pusher:subscription_error") {
                return Err(format!("subscription refused: {text}"));
            }
        }
    }

    /// socket.io: `subscribe`, then something answered only after it is handled (the server handles a
    /// client's packets in order): Engine.IO 4, an event with an ack (Herald answers acks); Engine.IO 3, a
    /// ping, which laravel-echo-server's Engine.IO answers after the subscribe it joined synchronously.
    /// Public channels only: no auth URL here.
    async fn subscribe_socketio(&mut self, channel: &str, eio: u8) -> Result<(), String> {
        if channel.starts_with("private-") || channel.starts_with("presence-") {
            return Err("socket.io load clients subscribe to public channels only".into());
        }
        let request = serde_json::json!(["subscribe", { "channel": channel }]);
        self.send(&format!("42{request}")).await?;
        let settled: &[u8] = if eio == 3 {
            self.send("2").await?;
            b"3"
        } else {
            self.send("421[\"herald:settled\",{}]").await?;
            b"431["
        };
        loop {
            let frame = self.ws.read_frame().await.map_err(|e| e.to_string())?;
            if frame.opcode != OpCode::Text {
                continue;
            }
            if frame.payload.starts_with(settled) {
                return Ok(());
            }
            if frame.payload.starts_with(b"42[\"subscription_error\"") {
                return Err(format!(
                    "subscription refused: {}",
                    String::from_utf8_lossy(&frame.payload)
                ));
            }
            if eio == 4 && &frame.payload[..] == b"2" {
                self.send("3").await?;
            }
        }
    }

    pub async fn send(&mut self, text: &str) -> Result<(), String> {
        self.ws
            .write_frame(Frame::text(Payload::Borrowed(text.as_bytes())))
            .await
            .map_err(|e| e.to_string())
    }

    /// Reads frames until the connection ends, answering pings; `on_event` gets every other text frame
    /// and returns false to stop.
    pub async fn run(mut self, mut on_event: impl FnMut(&[u8]) -> bool) {
        loop {
            let frame = match self.ws.read_frame().await {
                Ok(frame) => frame,
                Err(_) => return,
            };
            match frame.opcode {
                OpCode::Text => {
                    if self.socketio == Some(4) && &frame.payload[..] == b"2" {
                        // Engine.IO's heartbeat.
                        let _ = self.send("3").await;
                    } else if frame.payload.starts_with(b"{\"event\":\"pusher:ping\"") {
                        let _ = self.send("{\"event\":\"pusher:pong\",\"data\":{}}").await;
                    } else if !on_event(&frame.payload) {
                        return;
                    }
                }
                OpCode::Close => return,
                _ => {}
            }
        }
    }
}
