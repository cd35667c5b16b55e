//! The console: a live account of what happens in one app across the cluster (connections, subscriptions
//! and refusals, broadcasts with their source, webhooks), for the dashboard and `herald tail`. It exists
//! because a Laravel developer whose browser "receives nothing" needs to see where the event stopped.
//!
//! It costs nothing while nobody watches: every node keeps a per-app [`ConsoleGate`] whose flag says
//! whether a watcher is subscribed anywhere in the cluster (the watcher's node subscribes it to the internal
//! channel [`CONSOLE_CHANNEL`], which the cluster counts like any channel, and every node looks at that count
//! once a second). With the flag down, recording an entry is one relaxed atomic load. With it up, entries
//! are published on the internal channel through the backbone, capped per node and app by a token bucket
//! so a busy app cannot swamp the page or Redis; entries over the cap are counted, and the next entry
//! that passes says how many were skipped.

use crate::rate_limit::RateLimiter;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The internal channel console entries travel on. `#` starts no name a client may subscribe to.
pub const CONSOLE_CHANNEL: &str = "#herald-console";

/// The event name of a console entry's Pusher frame.
pub const CONSOLE_EVENT: &str = "herald:console";

/// Bytes of an event's data shown in the console; the rest is cut (the full size is given).
pub const PREVIEW_BYTES: usize = 300;

/// Entries a node publishes for one app each second, on average, and in a burst.
pub const ENTRIES_PER_SECOND: u32 = 50;
pub const ENTRIES_BURST: u32 = 200;

/// How often a node that has an app watched reports its own state for it (the dashboard's node list).
pub const NODE_REPORT_EVERY: Duration = Duration::from_secs(1);

/// What happened. Serialized with a `kind` field, as the dashboard and `herald tail` read it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConsoleEvent {
    /// A client connected (after admission), speaking `protocol` (`pusher` or `socketio`).
    Connected {
        socket_id: String,
        protocol: &'static str,
    },
    /// A client's connection ended, and why.
    Disconnected {
        socket_id: String,
        reason: String,
    },
    /// A client of a known app was refused before it got a socket id (origin, quota, protocol, ...).
    ConnectionRefused {
        code: u16,
        reason: String,
    },
    Subscribed {
        socket_id: String,
        channel: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    Unsubscribed {
        socket_id: String,
        channel: String,
    },
    /// A subscription refused, with the message the client got.
    SubscriptionRefused {
        socket_id: String,
        channel: String,
        reason: String,
    },
    /// An event sent to a channel: `source` is `laravel`, `api`, `client_event` or `presence`. Laravel's
    /// events are seen by each node that delivers them (they never pass through one place), the others by
    /// the node that published them.
    Broadcast {
        source: &'static str,
        channel: String,
        event: String,
        /// The start of the event's data, at most [`PREVIEW_BYTES`].
        data: String,
        /// The data's full size in bytes.
        size: usize,
        /// Local recipients, for deliveries of Laravel events (the node that reports it).
        #[serde(skip_serializing_if = "Option::is_none")]
        delivered_to: Option<usize>,
    },
    /// A webhook request and its result (`ok`, or what went wrong).
    Webhook {
        events: Vec<String>,
        url: String,
        result: String,
    },
    /// A node's own state for this app, once a second while the app is watched.
    Node {
        address: String,
        ready: bool,
        connections: u64,
        messages_in: u64,
        messages_out: u64,
    },
}

/// One entry as it travels: when, on which node, what; `skipped` counts entries the cap dropped before it.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleEntry {
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    pub node: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: u64,
    #[serde(flatten)]
    pub event: ConsoleEvent,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ConsoleEntry {
    pub fn now(node: &str, event: ConsoleEvent) -> Self {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        ConsoleEntry {
            at,
            node: node.to_owned(),
            skipped: 0,
            event,
        }
    }

    /// The Pusher frame that carries the entry on [`CONSOLE_CHANNEL`]: the entry's JSON as the `data` string.
    pub fn to_frame(&self) -> Vec<u8> {
        let data = serde_json::to_string(self).unwrap_or_default();
        use herald_protocol::frame::{encode, Data};
        encode(CONSOLE_EVENT, Some(CONSOLE_CHANNEL), Data::AsString(&data), None)
    }

    /// The entry's JSON, read back from a frame made by [`ConsoleEntry::to_frame`].
    pub fn json_from_frame(frame: &[u8]) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Frame {
            data: String,
        }
        serde_json::from_slice::<Frame>(frame).ok().map(|f| f.data)
    }
}

/// The start of `data`, at most [`PREVIEW_BYTES`], cut on a character boundary.
pub fn preview(data: &str) -> String {
    if data.len() <= PREVIEW_BYTES {
        return data.to_owned();
    }
    let mut end = PREVIEW_BYTES;
    while !data.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &data[..end])
}

/// `url` without a `user:password@` part, as the console shows webhook targets.
pub fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// One app's console switch and cap on this node.
#[derive(Debug)]
pub struct ConsoleGate {
    watched: AtomicBool,
    /// Watchers on this node, so the once-a-second look cannot switch off a watch it has not counted yet.
    local: std::sync::atomic::AtomicUsize,
    cap: Mutex<RateLimiter>,
    skipped: AtomicU64,
}

impl Default for ConsoleGate {
    fn default() -> Self {
        ConsoleGate {
            watched: AtomicBool::new(false),
            local: Default::default(),
            cap: Mutex::new(RateLimiter::new(ENTRIES_PER_SECOND, ENTRIES_BURST)),
            skipped: AtomicU64::new(0),
        }
    }
}

impl ConsoleGate {
    /// True while someone, anywhere in the cluster, watches the app's console.
    #[inline]
    pub fn is_watched(&self) -> bool {
        self.watched.load(Ordering::Relaxed)
    }

    /// What the cluster count says: watched anywhere (this node's own watchers always count).
    pub fn set_watched(&self, watched: bool) {
        let local = self.local.load(Ordering::Relaxed) > 0;
        self.watched.store(watched || local, Ordering::Relaxed);
    }

    /// A watcher on this node started (true) or ended (false).
    pub fn local_watcher(&self, started: bool) {
        if started {
            self.local.fetch_add(1, Ordering::Relaxed);
            self.watched.store(true, Ordering::Relaxed);
        } else {
            self.local.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Takes a place under the cap: Some(entries skipped since the last one that passed), or None when over
    /// the cap (the entry is counted as skipped).
    pub fn admit(&self) -> Option<u64> {
        let allowed = self.cap.lock().map(|mut cap| cap.allow()).unwrap_or(false);
        if allowed {
            Some(self.skipped.swap(0, Ordering::Relaxed))
        } else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_serialize_flat_with_their_kind() {
        let mut entry = ConsoleEntry::now(
            "n1",
            ConsoleEvent::Subscribed {
                socket_id: "1.2".into(),
                channel: "orders".into(),
                user_id: None,
            },
        );
        entry.at = 5;
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at":5,"node":"n1","kind":"subscribed","socket_id":"1.2","channel":"orders"})
        );
        let back = ConsoleEntry::json_from_frame(&entry.to_frame()).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&back).unwrap(), json);
        let connected = ConsoleEvent::Connected {
            socket_id: "aZ_9".into(),
            protocol: "socketio",
        };
        assert_eq!(
            serde_json::to_value(&connected).unwrap(),
            serde_json::json!({"kind":"connected","socket_id":"aZ_9","protocol":"socketio"})
        );
    }

    #[test]
    fn previews_are_cut_on_a_character_boundary() {
        let long = "é".repeat(400);
        let cut = preview(&long);
        assert!(cut.len() <= PREVIEW_BYTES + "…".len() && cut.ends_with('…'));
        assert_eq!(preview("short"), "short");
    }

    #[test]
    fn webhook_urls_lose_their_credentials() {
        assert_eq!(
            without_credentials("https://u:p@hooks.example/x?a=b@c"),
            "https://hooks.example/x?a=b@c"
        );
        assert_eq!(
            without_credentials("http://hooks.example/a@b"),
            "http://hooks.example/a@b"
        );
    }

    #[test]
    fn the_cap_counts_what_it_skips() {
        let gate = ConsoleGate::default();
        let passed = (0..ENTRIES_BURST + 10).filter(|_| gate.admit().is_some()).count();
        assert!(passed >= ENTRIES_BURST as usize && passed < ENTRIES_BURST as usize + 10);
        std::thread::sleep(Duration::from_millis(100));
        assert!(gate.admit().is_some_and(|skipped| skipped >= 1));
    }
}
