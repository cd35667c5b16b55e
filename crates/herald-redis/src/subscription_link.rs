//! The connection a node's backbone receives on, for each topology. On one Redis it is redis-rs's pub/sub
//! connection. On Redis Cluster it is two:
//! - Herald's own channels are sharded: a cluster connection speaking RESP3, whose pushes arrive on a
//!   channel, with one `SSUBSCRIBE` per channel (each may live on another shard; a message is carried only
//!   within the shard that owns the channel's slot);
//! - Laravel's channels (and the cache channels' patterns) are classic, because Laravel publishes with
//!   `PUBLISH`, which Redis Cluster carries to every node: one plain pub/sub connection to any one cluster
//!   node hears them all. Never through the cluster connection, which after a reconnect may subscribe a
//!   classic channel again on another node, and every message would then arrive twice.
//!
//! A link reports what it cannot mend itself: the classic connection closing breaks it (the backbone connects
//! afresh); a cluster node's connection closing (redis-rs's `Disconnection` push) or Redis taking back a
//! sharded subscription because its slot moved are reported, and the backbone subscribes those channels again
//! where they live now.

use crate::connection::COMMAND_TIMEOUT;
use crate::endpoint::Endpoint;
use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, RedisError, Value};
use tokio::sync::mpsc;

/// One Redis channel to subscribe to, and whether it is Herald's own (sharded on Redis Cluster).
pub type Wanted = (String, bool);

/// What arrived on a link.
pub enum Arrival {
    /// A message on a subscribed channel.
    Message(Message),
    /// Redis ended a sharded subscription by itself (its slot moved): the channel is no longer heard.
    Dropped(String),
    /// A cluster node's connection closed: the sharded subscriptions it carried are gone.
    ShardLost,
    /// Nothing for the backbone (a subscribe confirmation).
    Nothing,
    /// The link is broken, and why.
    Broken(&'static str),
}

/// One message, read where it arrived without copying it: from a classic pub/sub connection, or moved out
/// of a RESP3 push (sharded pub/sub).
pub enum Message {
    Classic(redis::Msg),
    Sharded { channel: String, payload: Vec<u8> },
}

impl Message {
    pub fn channel(&self) -> &str {
        match self {
            Message::Classic(msg) => msg.get_channel_name(),
            Message::Sharded { channel, .. } => channel,
        }
    }

    pub fn payload(&self) -> &[u8] {
        match self {
            Message::Classic(msg) => msg.get_payload_bytes(),
            Message::Sharded { payload, .. } => payload,
        }
    }

    /// True when it came through a pattern subscription (the cache channels').
    pub fn from_pattern(&self) -> bool {
        matches!(self, Message::Classic(msg) if msg.from_pattern())
    }
}

pub enum Link {
    Single(PubSubSink, PubSubStream),
    Cluster {
        conn: ClusterConnection,
        pushes: mpsc::UnboundedReceiver<PushInfo>,
        classic: PubSubSink,
        classic_stream: PubSubStream,
    },
}

impl Link {
    /// Connects to `endpoint` for receiving.
    pub async fn connect(endpoint: &Endpoint) -> Result<Link, RedisError> {
        if let Some(cluster) = endpoint.cluster_nodes() {
            let (tx, pushes) = mpsc::unbounded_channel();
            let conn = cluster.client(Some(tx))?.get_async_connection().await?;
            let (classic, classic_stream) = cluster.any_node_pubsub().await?.split();
            return Ok(Link::Cluster {
                conn,
                pushes,
                classic,
                classic_stream,
            });
        }
        let (sink, stream) = endpoint.client().await?.get_async_pubsub().await?.split();
        Ok(Link::Single(sink, stream))
    }

    /// Subscribes to `channels`, each part within [`COMMAND_TIMEOUT`]; the error says which part failed.
    pub async fn subscribe(&mut self, channels: &[Wanted]) -> Result<(), LinkError> {
        self.change(channels, true).await
    }

    /// Unsubscribes from `channels`; the error says which part failed.
    pub async fn unsubscribe(&mut self, channels: &[Wanted]) -> Result<(), LinkError> {
        self.change(channels, false).await
    }

    async fn change(&mut self, channels: &[Wanted], subscribe: bool) -> Result<(), LinkError> {
        let (sink, conn) = match self {
            Link::Single(sink, _) => (sink, None),
            Link::Cluster { conn, classic, .. } => (classic, Some(conn)),
        };
        // Herald's own channels are sharded on Redis Cluster; on one Redis every channel is classic.
        let sharded = |(_, own): &&Wanted| *own && conn.is_some();
        let classic_part: Vec<&str> = channels
            .iter()
            .filter(|w| !sharded(w))
            .map(|(c, _)| c.as_str())
            .collect();
        let sharded_names: Vec<&str> = channels.iter().filter(sharded).map(|(c, _)| c.as_str()).collect();
        if !classic_part.is_empty() {
            let done = async {
                if subscribe {
                    sink.subscribe(&classic_part).await
                } else {
                    sink.unsubscribe(&classic_part).await
                }
            };
            bounded(done).await.map_err(LinkError::Classic)?;
        }
        if let Some(conn) = conn.filter(|_| !sharded_names.is_empty()) {
            let done = async {
                if subscribe {
                    ssubscribe(conn.clone(), &sharded_names).await
                } else {
                    for name in &sharded_names {
                        conn.sunsubscribe(*name).await?;
                    }
                    Ok(())
                }
            };
            bounded(done).await.map_err(LinkError::Sharded)?;
        }
        Ok(())
    }

    /// Subscribes to the cache channels' patterns (classic on Redis Cluster: Laravel's channels).
    pub async fn psubscribe(&mut self, patterns: &[String]) -> Result<(), RedisError> {
        match self {
            Link::Single(sink, _) => sink.psubscribe(patterns).await,
            Link::Cluster { classic, .. } => classic.psubscribe(patterns).await,
        }
    }

    /// The next arrival.
    pub async fn next(&mut self) -> Arrival {
        match self {
            Link::Single(_, stream) => message(stream.next().await),
            Link::Cluster {
                pushes, classic_stream, ..
            } => tokio::select! {
                msg = classic_stream.next() => message(msg),
                push = pushes.recv() => match push {
                    Some(push) => arrival(push),
                    None => Arrival::Broken("connection closed"),
                },
            },
        }
    }

    /// The cluster connection, for subscribing sharded channels again apart from the backbone's loop.
    pub fn sharded(&self) -> Option<ClusterConnection> {
        match self {
            Link::Cluster { conn, .. } => Some(conn.clone()),
            Link::Single(..) => None,
        }
    }
}

/// Why a subscription change failed, by part: a classic failure means the link is broken; a sharded one, that
/// a shard is failing over (its channels are subscribed again once it answers).
#[derive(Debug)]
pub enum LinkError {
    Classic(RedisError),
    Sharded(RedisError),
}

/// `work` within [`COMMAND_TIMEOUT`].
async fn bounded(work: impl std::future::Future<Output = Result<(), RedisError>>) -> Result<(), RedisError> {
    tokio::time::timeout(COMMAND_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(RedisError::from((redis::ErrorKind::IoError, "timed out"))))
}

/// `SSUBSCRIBE`s each of `channels`, one command per channel, sent together.
pub async fn ssubscribe(conn: ClusterConnection, channels: &[&str]) -> Result<(), RedisError> {
    let each = channels.iter().map(|c| {
        let mut conn = conn.clone();
        async move { conn.ssubscribe(*c).await }
    });
    for result in futures_util::future::join_all(each).await {
        result?;
    }
    Ok(())
}

/// A message from a classic pub/sub connection.
fn message(msg: Option<redis::Msg>) -> Arrival {
    match msg {
        Some(msg) => Arrival::Message(Message::Classic(msg)),
        None => Arrival::Broken("connection closed"),
    }
}

/// What one RESP3 push means to the backbone; a sharded message's bytes are moved out, not copied.
fn arrival(push: PushInfo) -> Arrival {
    let mut data = push.data.into_iter();
    let mut bytes = || match data.next() {
        Some(Value::BulkString(b)) => Some(b),
        Some(Value::SimpleString(s)) => Some(s.into_bytes()),
        _ => None,
    };
    match push.kind {
        PushKind::SMessage => match (bytes().and_then(|c| String::from_utf8(c).ok()), bytes()) {
            (Some(channel), Some(payload)) => Arrival::Message(Message::Sharded { channel, payload }),
            _ => Arrival::Nothing,
        },
        PushKind::SUnsubscribe => match bytes().and_then(|c| String::from_utf8(c).ok()) {
            Some(channel) => Arrival::Dropped(channel),
            None => Arrival::Nothing,
        },
        PushKind::Disconnection => Arrival::ShardLost,
        _ => Arrival::Nothing,
    }
}
