//! A client session in a real in-process node (embedded backends): every line of the input is one text
//! message a client sends, in order, through the same `Session::handle_text` the server calls. Whatever the
//! messages, the node must not panic and must answer with well-formed frames.
#![no_main]

use herald_core::testing::{app, Client};
use herald_core::{Node, NodeSettings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    runtime.block_on(async {
        let mut config = app();
        config.client_events = true;
        let node = Node::embedded(vec![config], NodeSettings::default());
        let mut client = Client::connect(&node).await;
        let mut other = Client::connect(&node).await;
        other.join("presence-room", "2").await;
        for line in text.lines().take(64) {
            client.session.handle_text(line).await;
        }
        let _ = client.queued();
        let _ = other.queued();
        client.session.close().await;
        other.session.close().await;
    });
});
