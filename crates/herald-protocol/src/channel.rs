//! Channel names and kinds. The kind decides which subscribe needs a signature, which carries presence data,
//! and where client events are allowed; the name rules keep every channel inside Pusher's documented charset.

/// Longest channel name accepted (the Pusher SDKs and peers allow 200; Pusher's docs say 164).
pub const MAX_CHANNEL_NAME_LEN: usize = 200;

/// What a channel's name prefix makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Public,
    Private,
    /// `private-encrypted-`: auth as private; payloads are end-to-end encrypted by the publisher.
    PrivateEncrypted,
    Presence,
    /// `#server-to-user-{id}`: reserved to the connection signed in as that user.
    ServerToUser,
}

impl ChannelKind {
    /// The kind of a channel, from its name.
    pub fn of(name: &str) -> ChannelKind {
        if name.starts_with("private-encrypted-") {
            ChannelKind::PrivateEncrypted
        } else if name.starts_with("private-") {
            ChannelKind::Private
        } else if name.starts_with("presence-") {
            ChannelKind::Presence
        } else if name.starts_with("#server-to-user-") {
            ChannelKind::ServerToUser
        } else {
            ChannelKind::Public
        }
    }

    /// Subscribing needs a signature from the app.
    pub fn requires_auth(self) -> bool {
        matches!(
            self,
            ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence
        )
    }

    /// Client events (`client-*`) may be sent on it.
    pub fn allows_client_events(self) -> bool {
        matches!(self, ChannelKind::Private | ChannelKind::Presence)
    }
}

/// True for cache channels (`cache-`, `private-cache-`, `presence-cache-`, `private-encrypted-cache-`): the
/// last event published is kept and sent to each new subscriber.
pub fn is_cache(name: &str) -> bool {
    [
        "cache-",
        "private-cache-",
        "presence-cache-",
        "private-encrypted-cache-",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// True for the cluster's own channels (`#server-to-user-…`, and Herald's `#herald-…`), as opposed to the
/// app's: they never appear in channel lists, counts or webhooks the app sees, and never come from Laravel's
/// Redis channels. This is the one place that rule is written.
pub fn is_internal(name: &str) -> bool {
    name.starts_with('#')
}

/// Why a channel name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelNameError {
    Empty,
    TooLong(usize),
    BadCharacter(char),
}

impl std::fmt::Display for ChannelNameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelNameError::Empty => write!(f, "channel name is empty"),
            ChannelNameError::TooLong(n) => {
                write!(
                    f,
                    "channel name is {n} characters long; the limit is {MAX_CHANNEL_NAME_LEN}"
                )
            }
            ChannelNameError::BadCharacter(c) => {
                write!(f, "channel name has the character {c:?}, outside [A-Za-z0-9_-=@,.;]")
            }
        }
    }
}

/// Checks a channel name: 1 to 200 characters from `[A-Za-z0-9_\-=@,.;]`, or a `#server-to-user-` name.
pub fn validate_name(name: &str) -> Result<ChannelKind, ChannelNameError> {
    if name.is_empty() {
        return Err(ChannelNameError::Empty);
    }
    if name.len() > MAX_CHANNEL_NAME_LEN {
        return Err(ChannelNameError::TooLong(name.len()));
    }
    let kind = ChannelKind::of(name);
    let body = if kind == ChannelKind::ServerToUser {
        &name[1..]
    } else {
        name
    };
    if let Some(c) = body.chars().find(|c| !is_name_char(*c)) {
        return Err(ChannelNameError::BadCharacter(c));
    }
    Ok(kind)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_prefix() {
        assert_eq!(ChannelKind::of("orders"), ChannelKind::Public);
        assert_eq!(ChannelKind::of("private-orders.1"), ChannelKind::Private);
        assert_eq!(ChannelKind::of("private-encrypted-x"), ChannelKind::PrivateEncrypted);
        assert_eq!(ChannelKind::of("presence-chat.1"), ChannelKind::Presence);
        assert_eq!(ChannelKind::of("#server-to-user-42"), ChannelKind::ServerToUser);
        assert!(!ChannelKind::PrivateEncrypted.allows_client_events());
        assert!(ChannelKind::Presence.requires_auth());
        assert!(is_cache("cache-prices") && is_cache("presence-cache-room") && is_cache("private-encrypted-cache-x"));
        assert!(!is_cache("prices-cache") && !is_cache("private-prices"));
        assert!(is_internal("#server-to-user-1") && is_internal("#herald-user-1") && !is_internal("orders"));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("App.Models.User.1").is_ok());
        assert!(validate_name("a-b_c=d@e,f.g;h").is_ok());
        assert!(validate_name("#server-to-user-42").is_ok());
        assert_eq!(validate_name(""), Err(ChannelNameError::Empty));
        assert_eq!(validate_name("a b"), Err(ChannelNameError::BadCharacter(' ')));
        assert_eq!(validate_name("a#b"), Err(ChannelNameError::BadCharacter('#')));
        assert_eq!(validate_name(&"x".repeat(201)), Err(ChannelNameError::TooLong(201)));
        assert!(validate_name(&"x".repeat(200)).is_ok());
    }
}
