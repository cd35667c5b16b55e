//! Whether a connection may subscribe to a channel, and as which presence member: pure rules over the app's
//! settings, the socket id, the signed-in user and what the client sent. No I/O, so every rule is tested
//! in isolation; the node then carries out what was authorised.

use crate::refusal::Refusal;
use crate::AppConfig;
use herald_protocol::channel::validate_name;
use herald_protocol::frame::SubscribeData;
use herald_protocol::presence_data::Member;
use herald_protocol::{signature, ChannelKind};

/// A subscription the rules allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub kind: ChannelKind,
    /// On presence channels: the member the connection joins as.
    pub member: Option<Member>,
}

/// Checks a subscribe against the channel's rules.
pub fn authorize(
    app: &AppConfig,
    socket_id: &str,
    signed_in: Option<&Member>,
    sub: &SubscribeData<'_>,
) -> Result<Authorized, Refusal> {
    let channel = sub.channel.as_ref();
    let kind = validate_name(channel).map_err(Refusal::InvalidChannel)?;
    let auth = sub.auth.as_deref().unwrap_or("");
    // Any secret the app accepts now (a replaced one during its overlap).
    let signed = |data: Option<&str>| {
        app.secrets()
            .any(|secret| signature::verify_channel(&app.key, secret, socket_id, channel, data, auth))
    };
    let member = match kind {
        ChannelKind::Public => None,
        ChannelKind::Private | ChannelKind::PrivateEncrypted => {
            if !signed(None) {
                return Err(Refusal::BadSignature);
            }
            None
        }
        ChannelKind::Presence => match (sub.channel_data.as_deref(), signed_in) {
            (Some(data), _) => {
                if !signed(Some(data)) {
                    return Err(Refusal::BadPresenceSignature);
                }
                Some(Member::from_channel_data(data, app.max_member_size).map_err(Refusal::InvalidChannelData)?)
            }
            // Signed in (pusher-js 8): the member is the signed-in user, and the app must still have
            // authorised this socket for this channel.
            (None, Some(user)) => {
                if !signed(None) {
                    return Err(Refusal::BadSignature);
                }
                Some(user.clone())
            }
            (None, None) => return Err(Refusal::NoChannelData),
        },
        ChannelKind::ServerToUser => {
            let own = signed_in.is_some_and(|u| channel.strip_prefix("#server-to-user-") == Some(&u.user_id));
            if !own {
                return Err(Refusal::NotThisUser);
            }
            None
        }
    };
    Ok(Authorized { kind, member })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn sub<'a>(channel: &'a str, auth: Option<&'a str>, data: Option<&'a str>) -> SubscribeData<'a> {
        SubscribeData {
            channel: Cow::Borrowed(channel),
            auth: auth.map(Cow::Borrowed),
            channel_data: data.map(Cow::Borrowed),
        }
    }

    fn app() -> AppConfig {
        AppConfig::new("1", "key", "secret")
    }

    fn sign(channel: &str, data: Option<&str>) -> String {
        signature::sign_channel("key", "secret", "1.1", channel, data)
    }

    #[test]
    fn public_needs_nothing_and_bad_names_are_refused() {
        assert_eq!(
            authorize(&app(), "1.1", None, &sub("orders", None, None))
                .unwrap()
                .member,
            None
        );
        let refused = authorize(&app(), "1.1", None, &sub("a b", None, None)).unwrap_err();
        assert_eq!((refused.status(), refused.error_type()), (400, "InvalidChannel"));
    }

    #[test]
    fn private_needs_this_socket_signature() {
        let auth = sign("private-a", None);
        assert!(authorize(&app(), "1.1", None, &sub("private-a", Some(&auth), None)).is_ok());
        let other_socket = authorize(&app(), "1.2", None, &sub("private-a", Some(&auth), None));
        assert_eq!(other_socket, Err(Refusal::BadSignature));
        assert_eq!(
            authorize(&app(), "1.1", None, &sub("private-a", None, None)),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn presence_member_comes_from_signed_channel_data_or_the_signed_in_user() {
        let data = r#"{"user_id":"7","user_info":{"name":"Ann"}}"#;
        let auth = sign("presence-r", Some(data));
        let ok = authorize(&app(), "1.1", None, &sub("presence-r", Some(&auth), Some(data))).unwrap();
        assert_eq!(ok.member.unwrap().user_id, "7");
        let forged = authorize(
            &app(),
            "1.1",
            None,
            &sub("presence-r", Some(&auth), Some(r#"{"user_id":"8"}"#)),
        );
        assert_eq!(forged, Err(Refusal::BadPresenceSignature));
        assert_eq!(
            authorize(&app(), "1.1", None, &sub("presence-r", Some(&auth), None)),
            Err(Refusal::NoChannelData)
        );
        let user = Member {
            user_id: "9".into(),
            user_info: None,
        };
        let auth = sign("presence-r", None);
        let signed_in = authorize(&app(), "1.1", Some(&user), &sub("presence-r", Some(&auth), None)).unwrap();
        assert_eq!(signed_in.member, Some(user));
        let bad = authorize(
            &app(),
            "1.1",
            None,
            &sub("presence-r", Some(&sign("presence-r", Some("x"))), Some("x")),
        );
        assert!(matches!(bad, Err(Refusal::InvalidChannelData(_))));
    }

    #[test]
    fn server_to_user_is_the_signed_in_user_s_only() {
        let user = Member {
            user_id: "42".into(),
            user_info: None,
        };
        assert!(authorize(&app(), "1.1", Some(&user), &sub("#server-to-user-42", None, None)).is_ok());
        let other = authorize(&app(), "1.1", Some(&user), &sub("#server-to-user-420", None, None));
        assert_eq!(other, Err(Refusal::NotThisUser));
        assert_eq!(
            authorize(&app(), "1.1", None, &sub("#server-to-user-42", None, None)),
            Err(Refusal::NotThisUser)
        );
    }
}
