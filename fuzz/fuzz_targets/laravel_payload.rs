//! What arrives from Redis on a Laravel channel: the channel name (prefix stripping) and the payload
//! Laravel's RedisBroadcaster publishes, turned into a Pusher frame, plain and encrypted.
#![no_main]

use herald_protocol::laravel::{strip_prefix, LaravelBroadcast};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (channel, payload) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"laravel_database_orders"[..], data),
    };
    let (Ok(channel), Ok(payload)) = (std::str::from_utf8(channel), std::str::from_utf8(payload)) else {
        return;
    };
    let prefixes = vec!["laravel_database_".to_string(), String::new()];
    let name = strip_prefix(channel, &prefixes).unwrap_or(channel);
    if let Ok(broadcast) = LaravelBroadcast::parse(payload) {
        let frame = broadcast.to_frame(name);
        assert!(serde_json::from_slice::<serde_json::Value>(&frame).is_ok(), "a frame must be JSON");
        let encrypted = broadcast.to_encrypted_frame(name, &[7; 32], [1; 24]);
        assert!(serde_json::from_slice::<serde_json::Value>(&encrypted).is_ok());
    }
});
