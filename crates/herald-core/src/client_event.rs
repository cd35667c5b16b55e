//! Client events (`client-*`, Echo's `whisper`): who may send them and what the others receive. Only on
//! private and presence channels, only from a subscriber, never echoed, with `user_id` on presence, and
//! at the app's rate per connection.

use herald_protocol::close_code;
use herald_protocol::frame::{self, Data};
use herald_protocol::ChannelKind;

/// Why a client event was refused: the `pusher:error` code and message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub message: String,
}

/// Checks a client event against the app's policy and the connection's subscriptions.
pub fn check(enabled: bool, channel: &str, subscribed: bool) -> Result<ChannelKind, Refusal> {
    let refuse = |message: String| {
        Err(Refusal {
            code: close_code::UNAUTHORIZED,
            message,
        })
    };
    if !enabled {
        return refuse("Client events are not enabled for this app".into());
    }
    let kind = ChannelKind::of(channel);
    if !kind.allows_client_events() {
        return refuse(format!(
            "Client events are only allowed on private and presence channels, not on {channel:?}"
        ));
    }
    if !subscribed {
        return refuse(format!("Client event rejected: not subscribed to {channel:?}"));
    }
    Ok(kind)
}

/// The refusal for a connection over its client-event rate.
pub fn rate_limited(rate: u32) -> Refusal {
    Refusal {
        code: close_code::RATE_LIMITED,
        message: format!("Client event rejected: over the limit of {rate} a second"),
    }
}

/// The frame the other subscribers receive: the sender's `data` as it was, `user_id` on presence.
pub fn relay_frame(event: &str, channel: &str, data: &str, user_id: Option<&str>) -> Vec<u8> {
    frame::encode(event, Some(channel), Data::Raw(data), user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check(true, "private-a", true).is_ok());
        assert!(check(true, "presence-a", true).is_ok());
        assert_eq!(check(false, "private-a", true).unwrap_err().code, 4009);
        assert_eq!(check(true, "public", true).unwrap_err().code, 4009);
        assert_eq!(check(true, "private-encrypted-a", true).unwrap_err().code, 4009);
        assert_eq!(check(true, "private-a", false).unwrap_err().code, 4009);
        assert_eq!(rate_limited(10).code, 4301);
    }
}
