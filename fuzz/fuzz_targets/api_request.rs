//! An HTTP API request: the query string (decoded as the server decodes it) with its signature check and
//! query rules, and the body of `/events` and `/batch_events`.
#![no_main]

use herald_protocol::api_event::{check_channel_query, check_channels_query, parse_batch, InfoAttributes, TriggerEvent};
use herald_protocol::signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(query).into_owned().collect();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let signed = signature::verify_api(
        "secret",
        "POST",
        "/apps/1/events",
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        get("auth_signature").unwrap_or(""),
    );
    assert!(!signed || get("auth_signature").is_some());
    let info = InfoAttributes::parse(get("info"));
    let _ = check_channels_query(get("filter_by_prefix"), info);
    let _ = check_channel_query(get("channel").unwrap_or(""), info);
    let _ = TriggerEvent::parse(body, 10_240);
    let _ = parse_batch(body, 10_240);
    let _ = signature::body_md5(body);
});
