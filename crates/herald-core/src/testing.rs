//! A client stand-in for in-process tests of the node: it drives a real [`Session`] the way a socket would
//! and reads exactly what the client would be sent. Used by this crate's and `herald-redis`'s tests; nothing
//! in a running server uses it.

use crate::connection::Outbound;
use crate::{AppConfig, Node, Session};
use herald_protocol::signature;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The test app's key and secret.
pub const KEY: &str = "key";
pub const SECRET: &str = "secret";

/// The test app (id "1").
pub fn app() -> AppConfig {
    AppConfig::new("1", KEY, SECRET)
}

/// One client: its session and what its socket is sent.
pub struct Client {
    pub session: Session,
    rx: crate::outbound_queue::Receiver,
    pub socket_id: String,
}

impl Client {
    pub async fn connect(node: &Arc<Node>) -> Client {
        let app = node.app_by_key(KEY).expect("the app").clone();
        let seat = node.take_seat(&app).await.expect("under the connection quota");
        let (session, rx) = Session::open(node.clone(), app, seat);
        session.established();
        let socket_id = session.connection().socket_id.to_string();
        let mut client = Client { session, rx, socket_id };
        let hello = client.next().await;
        assert_eq!(hello["event"], "pusher:connection_established");
        client
    }

    pub async fn send(&mut self, frame: Value) {
        self.session.handle_text(&frame.to_string()).await;
    }

    /// The next frame sent to the client (with its `data` decoded when it is a JSON string).
    pub async fn next(&mut self) -> Value {
        let out = tokio::time::timeout(Duration::from_secs(2), self.rx.recv())
            .await
            .expect("a frame within 2 s")
            .expect("the queue is open");
        match out {
            Outbound::Frame(bytes) => {
                let mut frame: Value = serde_json::from_slice(&bytes).expect("frames are JSON");
                if let Some(data) = frame["data"]
                    .as_str()
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                {
                    frame["data"] = data;
                }
                frame
            }
            Outbound::Close(code, reason) => json!({ "close": code, "reason": reason }),
            Outbound::Pong(_) => json!({ "pong": true }),
        }
    }

    /// Every frame already queued, without waiting.
    pub fn queued(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Some(Outbound::Frame(bytes)) = self.rx.try_recv() {
            frames.push(serde_json::from_slice(&bytes).expect("frames are JSON"));
        }
        frames
    }

    /// The queued frames of one event (e.g. `pusher_internal:member_added`), without waiting.
    pub fn queued_events(&mut self, event: &str) -> Vec<Value> {
        self.queued().into_iter().filter(|f| f["event"] == event).collect()
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(json!({"event": "pusher:subscribe", "data": {"channel": channel}}))
            .await;
        self.next().await
    }

    pub async fn subscribe_private(&mut self, channel: &str) -> Value {
        let auth = signature::sign_channel(KEY, SECRET, &self.socket_id, channel, None);
        self.send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}))
            .await;
        self.next().await
    }

    pub async fn join(&mut self, channel: &str, user_id: &str) -> Value {
        let data = json!({"user_id": user_id, "user_info": {"name": format!("user {user_id}")}}).to_string();
        let auth = signature::sign_channel(KEY, SECRET, &self.socket_id, channel, Some(&data));
        self.send(
            json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth, "channel_data": data}}),
        )
        .await;
        self.next().await
    }

    pub async fn sign_in(&mut self, user_id: &str) -> Value {
        let user_data = json!({"id": user_id}).to_string();
        let auth = signature::sign_user(KEY, SECRET, &self.socket_id, &user_data);
        self.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}))
            .await;
        self.next().await
    }
}

/// Publishes an event with `{}` data to a channel of the test app, as the HTTP API does.
pub async fn publish(node: &Arc<Node>, channel: &str, event: &str) {
    let app = node.app_by_key(KEY).expect("the app").clone();
    let frame =
        herald_protocol::frame::encode(event, Some(channel), herald_protocol::frame::Data::AsString("{}"), None);
    node.trigger(&app, channel, frame, None).await.expect("published");
}
