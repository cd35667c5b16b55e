//! `herald tail`: the dashboard's console in the terminal. Reads a node's console stream (which every node
//! of the cluster feeds) with the dashboard token, and prints one line per entry, filtered by channel and
//! event name like the page.

use super::{text, Common};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use std::io::Write;

/// Follow what happens in an app across the cluster (connections, subscriptions, events, webhooks)
#[derive(Debug, clap::Parser)]
pub struct Args {
    /// Only entries whose channel contains this
    #[arg(long)]
    channel: Option<String>,
    /// Only entries whose event name contains this
    #[arg(long)]
    event: Option<String>,
    /// Print each entry's JSON as it arrives
    #[arg(long)]
    json: bool,
    /// Also print each node's once-a-second report
    #[arg(long)]
    nodes: bool,
    /// The dashboard token [default: HERALD_DASHBOARD_TOKEN, or the app's dashboard_token]
    #[arg(long, env = "HERALD_TAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub async fn run(args: Args) -> Result<i32, String> {
    let config = args.common.config()?;
    let app = args.common.app(&config)?;
    let dashboard = &config.dashboard;
    let token = args
        .token
        .clone()
        .or_else(|| dashboard.token.clone())
        .or_else(|| {
            dashboard
                .app_tokens
                .iter()
                .find(|(id, _)| id == &app.id)
                .map(|(_, t)| t.clone())
        })
        .ok_or("no dashboard token: set HERALD_DASHBOARD_TOKEN (the one the nodes use) or pass --token")?;
    let base = args.common.url(&config);
    let url = format!("{base}{}/api/apps/{}/console", dashboard.path, app.id);
    let client = crate::tls::app_client(config.app_ca_file.as_deref()).map_err(|e| e.to_string())?;
    let request = hyper::Request::get(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream")
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("{url}: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{base}: {}", crate::tls::cause(&e)))?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let hint = match status {
            401 => " (the token is not the one the nodes use: HERALD_DASHBOARD_TOKEN)",
            404 => " (is the dashboard on? the nodes need HERALD_DASHBOARD_TOKEN, and the same HERALD_DASHBOARD_PATH)",
            _ => "",
        };
        return Err(format!("{url} answered {status}{hint}: {}", text(response).await));
    }
    eprintln!("following app {} through {base} (Ctrl-C to stop)", app.id);
    let mut body = response.into_body();
    // Bytes until a whole event is in: a character split across chunks is decoded once it is whole.
    let mut pending: Vec<u8> = Vec::new();
    let stdout = std::io::stdout();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the stream broke: {e}"))?;
        let Some(chunk) = frame.data_ref() else { continue };
        pending.extend_from_slice(chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            let event = String::from_utf8_lossy(&event);
            for json in event.lines().filter_map(|l| l.strip_prefix("data: ")) {
                if let Some(line) = render(&args, json) {
                    let mut out = stdout.lock();
                    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                        return Ok(0); // the reader went away (a closed pipe)
                    }
                }
            }
        }
    }
    Err("the node ended the stream (it may be shutting down); run herald tail again".into())
}

/// One entry as a line, or None when the filters leave it out.
fn render(args: &Args, json: &str) -> Option<String> {
    let entry: Value = serde_json::from_str(json).ok()?;
    let field = |name: &str| entry.get(name).and_then(Value::as_str).unwrap_or("");
    let kind = field("kind");
    if kind == "node" && !args.nodes {
        return None;
    }
    if args.channel.as_deref().is_some_and(|c| !field("channel").contains(c))
        || args.event.as_deref().is_some_and(|e| !field("event").contains(e))
    {
        return None;
    }
    if args.json {
        return Some(json.to_owned()); // JSON escapes every control character already
    }
    let line = format!(
        "{} {} {}",
        clock(entry.get("at")?.as_u64()?),
        field("node"),
        describe(&entry)
    );
    Some(printable(&line))
}

/// `text` with control characters shown as escapes: channel names, event names and data come from
/// clients, and must not move the cursor, retitle the terminal or write its clipboard.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `HH:MM:SS.mmm` in UTC.
fn clock(ms: u64) -> String {
    let day_ms = ms % 86_400_000;
    let (h, m, s) = (day_ms / 3_600_000, day_ms / 60_000 % 60, day_ms / 1000 % 60);
    format!("{h:02}:{m:02}:{s:02}.{:03}Z", day_ms % 1000)
}

/// What happened, in words (the dashboard says the same).
fn describe(entry: &Value) -> String {
    let f = |name: &str| match entry.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let mut line = match f("kind").as_str() {
        "connected" if f("protocol") == "socketio" => format!("connected {} (socket.io)", f("socket_id")),
        "connected" => format!("connected {}", f("socket_id")),
        "disconnected" => format!("disconnected {} ({})", f("socket_id"), f("reason")),
        "connection_refused" => format!("connection refused with {}: {}", f("code"), f("reason")),
        "subscribed" if !f("user_id").is_empty() => {
            format!(
                "subscribed {} to {} as user {}",
                f("socket_id"),
                f("channel"),
                f("user_id")
            )
        }
        "subscribed" => format!("subscribed {} to {}", f("socket_id"), f("channel")),
        "unsubscribed" => format!("unsubscribed {} from {}", f("socket_id"), f("channel")),
        "subscription_refused" => format!("refused {} on {}: {}", f("socket_id"), f("channel"), f("reason")),
        "broadcast" => {
            let here = match entry.get("delivered_to").and_then(Value::as_u64) {
                Some(n) => format!(" -> {n} here"),
                None => String::new(),
            };
            format!(
                "{} event {} on {}{here} {} ({} bytes)",
                f("source"),
                f("event"),
                f("channel"),
                f("data"),
                f("size")
            )
        }
        "webhook" => {
            let events: Vec<String> = entry
                .get("events")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            format!("webhook {} -> {}: {}", events.join(", "), f("url"), f("result"))
        }
        "node" => format!(
            "node report: {} {} connections, {} in/s, {} out/s",
            if entry.get("ready") == Some(&Value::Bool(true)) {
                "ready,"
            } else {
                "NOT READY,"
            },
            f("connections"),
            f("messages_in"),
            f("messages_out")
        ),
        other => other.to_owned(),
    };
    if let Some(skipped) = entry.get("skipped").and_then(Value::as_u64) {
        line.push_str(&format!(" [{skipped} earlier entries skipped by the cap]"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_cannot_reach_the_terminal_as_control_characters() {
        assert_eq!(printable("a\u{1b}]52;c;x\u{7}b\u{9b}"), "a\\u{1b}]52;c;x\\u{7}b\\u{9b}");
        assert_eq!(printable("orders é"), "orders é");
    }
}
