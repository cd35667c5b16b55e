//! A client's WebSocket text message through every protocol parser it can reach: the frame, the subscribe
//! data, the channel name, presence `channel_data` and sign-in `user_data`, and the signature checks.
#![no_main]

use herald_protocol::channel;
use herald_protocol::frame::{ClientFrame, SubscribeData};
use herald_protocol::presence_data::Member;
use herald_protocol::signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(frame) = ClientFrame::parse(text) {
        let _ = frame.event.len();
    }
    if let Ok(subscribe) = serde_json::from_str::<SubscribeData<'_>>(text) {
        if let Ok(kind) = channel::validate_name(&subscribe.channel) {
            let _ = (kind.requires_auth(), kind.allows_client_events());
        }
        let _ = channel::is_internal(&subscribe.channel) || channel::is_cache(&subscribe.channel);
        if let Some(data) = subscribe.channel_data.as_deref() {
            let _ = Member::from_channel_data(data, 1024);
            let _ = Member::from_user_data(data, 1024);
        }
        let auth = subscribe.auth.as_deref().unwrap_or("");
        let data = subscribe.channel_data.as_deref();
        let _ = signature::verify_channel("key", "secret", "1.2", &subscribe.channel, data, auth);
    }
    let _ = Member::from_channel_data(text, 1024);
    let _ = Member::from_user_data(text, 1024);
    let _ = channel::validate_name(text);
    let _ = herald_protocol::SocketId::parse(text);
});
