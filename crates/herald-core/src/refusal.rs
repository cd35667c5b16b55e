//! Why a subscription was refused: one enum, so the status, Pusher's error type, the metric label and the
//! message a developer reads are decided together, in one place.

use herald_protocol::channel::ChannelNameError;
use herald_protocol::presence_data::MemberError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Invalid channel name: {0}")]
    InvalidChannel(ChannelNameError),
    #[error("Subscription limit reached: {0} channels per connection")]
    TooManyChannels(usize),
    #[error("Invalid signature: the auth does not match this socket and channel")]
    BadSignature,
    #[error("Invalid signature: the auth does not match this socket, channel and channel_data")]
    BadPresenceSignature,
    #[error("Presence channels need channel_data (or a signed-in connection)")]
    NoChannelData,
    #[error("Invalid channel_data: {0}")]
    InvalidChannelData(MemberError),
    #[error("Only the connection signed in as this user may subscribe")]
    NotThisUser,
    #[error("Presence channel is full: {0} members")]
    MemberLimit(usize),
    #[error("Presence is unavailable, try again")]
    PresenceUnavailable,
    /// The app's own auth endpoint, asked by Herald for a socket.io client, did not say yes (its status,
    /// or Herald's 502/504 when it could not be asked).
    #[error("The app's auth endpoint answered {0}")]
    AppRefused(u16),
    /// A socket.io client asked for a channel that needs auth, and the app has no auth URL to ask.
    #[error("No auth URL configured: set HERALD_AUTH_URL (auth_url) to Laravel's /broadcasting/auth")]
    NoAuthUrl,
}

impl Refusal {
    /// The HTTP-like status pusher-js reports (`subscription_error`).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::InvalidChannel(_) | Refusal::InvalidChannelData(_) => 400,
            Refusal::BadSignature | Refusal::BadPresenceSignature | Refusal::NoChannelData | Refusal::NotThisUser => {
                401
            }
            Refusal::TooManyChannels(_) | Refusal::MemberLimit(_) => 403,
            Refusal::PresenceUnavailable => 503,
            Refusal::AppRefused(status) => *status,
            Refusal::NoAuthUrl => 404,
        }
    }

    /// Pusher's error type in `pusher:subscription_error`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Refusal::InvalidChannel(_) => "InvalidChannel",
            Refusal::InvalidChannelData(_) => "InvalidChannelData",
            Refusal::BadSignature | Refusal::BadPresenceSignature | Refusal::NoChannelData | Refusal::NotThisUser => {
                "AuthError"
            }
            Refusal::TooManyChannels(_) | Refusal::MemberLimit(_) => "LimitReached",
            Refusal::PresenceUnavailable => "ServiceUnavailable",
            Refusal::AppRefused(_) | Refusal::NoAuthUrl => "AuthError",
        }
    }

    /// The `reason` label of `herald_subscription_rejections_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::InvalidChannel(_) | Refusal::InvalidChannelData(_) => "invalid_channel",
            Refusal::BadSignature | Refusal::BadPresenceSignature | Refusal::NoChannelData | Refusal::NotThisUser => {
                "auth"
            }
            Refusal::TooManyChannels(_) => "limit",
            Refusal::MemberLimit(_) => "member_limit",
            Refusal::PresenceUnavailable => "unavailable",
            Refusal::AppRefused(_) | Refusal::NoAuthUrl => "auth",
        }
    }
}
