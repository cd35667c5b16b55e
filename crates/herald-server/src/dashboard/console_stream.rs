//! The console as Server-Sent Events: one `data:` line per entry (the entry's JSON), and a comment every
//! 15 s so proxies keep the stream open and a vanished reader is noticed. The watch ends when the reader
//! goes (hyper drops the body) or falls too far behind (the stream ends; EventSource reconnects).

use crate::http::Body;
use bytes::Bytes;
use herald_core::ConsoleWatch;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::time::Duration;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn body(watch: ConsoleWatch) -> Body {
    let mut tick = tokio::time::interval(KEEP_ALIVE);
    tick.reset();
    // The first bytes at once, so the reader knows the watch is live before any entry arrives.
    let opened = futures_util::stream::once(async { Ok(Frame::data(Bytes::from_static(b": watching\n\n"))) });
    let entries = futures_util::stream::unfold((watch, tick), |(mut watch, mut tick)| async move {
        let chunk = tokio::select! {
            entry = watch.next() => {
                let json = entry?;
                Bytes::from(format!("data: {json}\n\n"))
            }
            _ = tick.tick() => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok(Frame::data(chunk)), (watch, tick)))
    });
    let stream = futures_util::StreamExt::chain(opened, entries);
    StreamBody::new(stream).boxed_unsync()
}
