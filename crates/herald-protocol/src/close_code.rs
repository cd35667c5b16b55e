//! Pusher error and close codes. pusher-js decides whether to reconnect from the WebSocket close code alone
//! (wire reference 3.4), so every code Herald sends is named here with the client behaviour it causes:
//! 4000-4099 the client gives up, 4100-4199 it backs off and retries, 4200-4299 it retries at once,
//! 4300-4399 it gives up. A condition that repeats on reconnect must never use 42xx.

/// The app key in the URL names no configured app (gives up).
pub const APP_NOT_FOUND: u16 = 4001;
/// The app is disabled (gives up).
pub const APP_DISABLED: u16 = 4003;
/// The app is over its connection quota (gives up).
pub const OVER_CONNECTION_QUOTA: u16 = 4004;
/// The request path is not `/app/{key}` (gives up).
pub const PATH_NOT_FOUND: u16 = 4005;
/// The `protocol` query parameter names a version Herald does not speak (gives up).
pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
/// No `protocol` query parameter (gives up).
pub const NO_PROTOCOL: u16 = 4008;
/// The connection is not allowed to do what it asked (an error frame, not a close, after connect).
pub const UNAUTHORIZED: u16 = 4009;
/// The node is over capacity or the client could not keep up with its queue (backs off, then retries).
pub const OVER_CAPACITY: u16 = 4100;
/// The node is going away (draining); reconnecting at once lands on another node.
pub const GENERIC_RECONNECT: u16 = 4200;
/// The client did not answer a `pusher:ping` in time (retries at once: a fresh connection may work).
pub const PONG_NOT_RECEIVED: u16 = 4201;
/// The client sent a message larger than the node accepts (gives up: resending it would fail again).
pub const MESSAGE_TOO_LARGE: u16 = 4300;
/// Client events or messages over the per-connection rate (an error frame; the connection stays).
pub const RATE_LIMITED: u16 = 4301;
/// A frame Herald could not understand: not JSON, no event, an unknown event, a binary frame (an error frame).
pub const INVALID_MESSAGE: u16 = 4302;

/// The pusher-js reaction to a close code, as documented above; used by tests and docs.
pub fn client_reconnects(code: u16) -> bool {
    matches!(code, 4100..=4299) || code < 4000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_never_make_clients_retry_at_once() {
        for code in [
            APP_NOT_FOUND,
            UNSUPPORTED_PROTOCOL,
            NO_PROTOCOL,
            MESSAGE_TOO_LARGE,
            OVER_CONNECTION_QUOTA,
        ] {
            assert!(!client_reconnects(code), "{code}");
        }
        assert!(client_reconnects(OVER_CAPACITY));
        assert!(client_reconnects(PONG_NOT_RECEIVED));
    }
}
