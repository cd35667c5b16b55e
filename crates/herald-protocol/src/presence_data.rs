//! Presence `channel_data`: who a connection is on a presence channel. Members are keyed by `user_id` as a
//! string (Laravel passes numeric ids through as numbers), and `user_info` is kept as raw JSON.

use serde::Deserialize;
use serde_json::value::RawValue;

/// Longest `user_id` accepted (Pusher's limit).
pub const MAX_USER_ID_LEN: usize = 128;
/// Largest `channel_data` accepted by default, in bytes (Pusher's "user object" limit).
pub const DEFAULT_MAX_MEMBER_SIZE: usize = 1024;

/// One presence member: a user id and the info the app attached to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    /// Raw JSON of `user_info`, or None when the app sent none.
    pub user_info: Option<String>,
}

/// Why `channel_data` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberError {
    NotJson,
    NoUserId,
    UserIdTooLong,
    TooLarge(usize),
}

impl std::fmt::Display for MemberError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberError::NotJson => f.write_str("channel_data is not a JSON object"),
            MemberError::NoUserId => f.write_str("channel_data has no user_id (a non-empty string or a number)"),
            MemberError::UserIdTooLong => {
                write!(f, "user_id is longer than {MAX_USER_ID_LEN} characters")
            }
            MemberError::TooLarge(limit) => write!(f, "channel_data is larger than {limit} bytes"),
        }
    }
}

impl Member {
    /// Reads `channel_data` (the JSON string a presence subscribe carries).
    pub fn from_channel_data(channel_data: &str, max_size: usize) -> Result<Member, MemberError> {
        if channel_data.len() > max_size {
            return Err(MemberError::TooLarge(max_size));
        }
        #[derive(Deserialize)]
        struct ChannelData<'a> {
            #[serde(borrow)]
            user_id: Option<&'a RawValue>,
            #[serde(borrow)]
            user_info: Option<&'a RawValue>,
        }
        let parsed: ChannelData = serde_json::from_str(channel_data).map_err(|_| MemberError::NotJson)?;
        let user_id = user_id_text(parsed.user_id.ok_or(MemberError::NoUserId)?)?;
        let user_info = parsed.user_info.map(|raw| raw.get().to_owned()).filter(|s| s != "null");
        Ok(Member { user_id, user_info })
    }

    /// A member from sign-in `user_data` (`{"id": "...", ...}`): the whole object is its info.
    pub fn from_user_data(user_data: &str, max_size: usize) -> Result<Member, MemberError> {
        if user_data.len() > max_size {
            return Err(MemberError::TooLarge(max_size));
        }
        #[derive(Deserialize)]
        struct UserData<'a> {
            #[serde(borrow)]
            id: Option<&'a RawValue>,
        }
        let parsed: UserData = serde_json::from_str(user_data).map_err(|_| MemberError::NotJson)?;
        let user_id = user_id_text(parsed.id.ok_or(MemberError::NoUserId)?)?;
        Ok(Member {
            user_id,
            user_info: Some(user_data.to_owned()),
        })
    }
}

fn user_id_text(raw: &RawValue) -> Result<String, MemberError> {
    let value: serde_json::Value = serde_json::from_str(raw.get()).map_err(|_| MemberError::NotJson)?;
    let id = match value {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(MemberError::NoUserId),
    };
    if id.is_empty() {
        return Err(MemberError::NoUserId);
    }
    if id.chars().count() > MAX_USER_ID_LEN {
        return Err(MemberError::UserIdTooLong);
    }
    Ok(id)
}

/// The `data` of a presence `subscription_succeeded`: `{"presence":{"ids","hash","count"}}`, one entry per user.
pub fn subscription_data<'a>(members: impl IntoIterator<Item = &'a Member>) -> String {
    let mut ids = Vec::new();
    let mut hash = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in members {
        if !seen.insert(m.user_id.as_str()) {
            continue;
        }
        let id = serde_json::to_string(&m.user_id).expect("strings serialise");
        hash.push(format!("{id}:{}", m.user_info.as_deref().unwrap_or("null")));
        ids.push(id);
    }
    format!(
        "{{\"presence\":{{\"ids\":[{}],\"hash\":{{{}}},\"count\":{}}}}}",
        ids.join(","),
        hash.join(","),
        ids.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_and_string_ids() {
        let m = Member::from_channel_data(r#"{"user_id":42,"user_info":{"id":42,"name":"Ada"}}"#, 1024).unwrap();
        assert_eq!(m.user_id, "42");
        assert_eq!(m.user_info.as_deref(), Some(r#"{"id":42,"name":"Ada"}"#));
        let m = Member::from_channel_data(r#"{"user_id":"u-1"}"#, 1024).unwrap();
        assert_eq!(m.user_id, "u-1");
        assert_eq!(m.user_info, None);
    }

    #[test]
    fn refusals() {
        assert_eq!(Member::from_channel_data("x", 1024), Err(MemberError::NotJson));
        assert_eq!(Member::from_channel_data("{}", 1024), Err(MemberError::NoUserId));
        assert_eq!(
            Member::from_channel_data(r#"{"user_id":""}"#, 1024),
            Err(MemberError::NoUserId)
        );
        assert_eq!(
            Member::from_channel_data(r#"{"user_id":[1]}"#, 1024),
            Err(MemberError::NoUserId)
        );
        let long = format!(r#"{{"user_id":"{}"}}"#, "x".repeat(129));
        assert_eq!(Member::from_channel_data(&long, 1024), Err(MemberError::UserIdTooLong));
        assert_eq!(Member::from_channel_data(&long, 10), Err(MemberError::TooLarge(10)));
    }

    #[test]
    fn subscription_payload_lists_each_user_once() {
        let a = Member {
            user_id: "7".into(),
            user_info: Some(r#"{"name":"B"}"#.into()),
        };
        let b = Member {
            user_id: "42".into(),
            user_info: None,
        };
        let data = subscription_data([&a, &b, &a]);
        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["presence"]["count"], 2);
        assert_eq!(v["presence"]["ids"], serde_json::json!(["7", "42"]));
        assert_eq!(v["presence"]["hash"]["7"]["name"], "B");
        assert!(v["presence"]["hash"]["42"].is_null());
    }

    #[test]
    fn signin_user_data() {
        let m = Member::from_user_data(r#"{"id":"42","name":"Ada"}"#, 1024).unwrap();
        assert_eq!(m.user_id, "42");
        assert!(Member::from_user_data(r#"{"name":"Ada"}"#, 1024).is_err());
    }
}
