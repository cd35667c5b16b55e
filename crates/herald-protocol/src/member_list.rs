//! A presence channel's member list as `subscription_succeeded` carries it. Every joining connection gets the
//! whole list, so on a channel of 2,000 users the list is the join's main cost; this type encodes each
//! member's two pieces of the frame (its id in `ids`, its entry in `hash`) once, when the member enters the
//! list, and a frame is then only those pieces put together. The frame of one state of the list is built
//! once and shared by every join that gets that state.

use crate::frame;
use crate::presence_data::Member;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// The members of one presence channel, one per user, in user id order.
#[derive(Debug, Clone, Default)]
pub struct MemberList {
    members: BTreeMap<String, Arc<Encoded>>,
    /// The `subscription_succeeded` frame of this state, once asked for; reset by every change.
    frame: OnceLock<Bytes>,
}

/// One member and its pieces of the frame, already escaped for the frame's `data` string.
#[derive(Debug)]
struct Encoded {
    member: Member,
    /// `"id"`, escaped.
    id: Box<[u8]>,
    /// `"id":info`, escaped.
    entry: Box<[u8]>,
}

impl Encoded {
    fn new(member: Member) -> Self {
        let id_json = serde_json::to_string(&member.user_id).expect("strings serialise");
        let entry_json = format!("{id_json}:{}", member.user_info.as_deref().unwrap_or("null"));
        Encoded {
            id: escaped(&id_json).into(),
            entry: escaped(&entry_json).into(),
            member,
        }
    }
}

/// `s` escaped as inside a JSON string, without the quotes. Escaping works byte by byte, so escaped pieces
/// put together are the escaped whole.
fn escaped(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 8);
    frame::push_json_string(&mut out, s);
    out.pop();
    out.remove(0);
    out
}

impl MemberList {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the member, or replaces the user's info. Returns true when the list changed.
    pub fn insert(&mut self, member: Member) -> bool {
        if let Some(known) = self.members.get(&member.user_id) {
            if known.member == member {
                return false;
            }
        }
        self.frame = OnceLock::new();
        self.members
            .insert(member.user_id.clone(), Arc::new(Encoded::new(member)));
        true
    }

    /// Removes the user. Returns true when the user was listed.
    pub fn remove(&mut self, user_id: &str) -> bool {
        let removed = self.members.remove(user_id).is_some();
        if removed {
            self.frame = OnceLock::new();
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn get(&self, user_id: &str) -> Option<&Member> {
        self.members.get(user_id).map(|e| &e.member)
    }

    /// The members, in user id order.
    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.members.values().map(|e| &e.member)
    }

    /// `pusher_internal:subscription_succeeded` on `channel` with this list (`{"presence":{"ids","hash",
    /// "count"}}` as its `data` string), built once per state of the list. A list belongs to one channel:
    /// the frame is kept for the channel it was first asked for.
    pub fn subscription_succeeded(&self, channel: &str) -> Bytes {
        self.frame.get_or_init(|| self.build(channel)).clone()
    }

    fn build(&self, channel: &str) -> Bytes {
        let pieces: usize = self.members.values().map(|e| e.id.len() + e.entry.len() + 2).sum();
        let mut out = Vec::with_capacity(128 + channel.len() + pieces);
        out.extend_from_slice(b"{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":");
        frame::push_json_string(&mut out, channel);
        out.extend_from_slice(br#","data":"{\"presence\":{\"ids\":["#);
        for (i, e) in self.members.values().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&e.id);
        }
        out.extend_from_slice(br#"],\"hash\":{"#);
        for (i, e) in self.members.values().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&e.entry);
        }
        out.extend_from_slice(br#"},\"count\":"#);
        out.extend_from_slice(self.members.len().to_string().as_bytes());
        out.extend_from_slice(b"}}\"}");
        Bytes::from(out)
    }
}

impl FromIterator<Member> for MemberList {
    fn from_iter<I: IntoIterator<Item = Member>>(members: I) -> Self {
        let mut list = MemberList::new();
        for member in members {
            list.insert(member);
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence_data::subscription_data;

    fn member(id: &str, info: Option<&str>) -> Member {
        Member {
            user_id: id.to_owned(),
            user_info: info.map(str::to_owned),
        }
    }

    #[test]
    fn the_frame_is_the_one_the_encoder_builds() {
        let members = vec![
            member(
                "1",
                Some(r#"{"name":"Ada \"the\" first","bio":"line\nbreak \\ \u0001"}"#),
            ),
            member("user \"two\"", None),
            member("é-3", Some("[1,2]")),
        ];
        let list: MemberList = members.iter().cloned().collect();
        let mut sorted = members.clone();
        sorted.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        let expected = frame::subscription_succeeded("presence-room", &subscription_data(&sorted));
        assert_eq!(
            list.subscription_succeeded("presence-room").as_ref(),
            expected.as_slice()
        );
        let parsed: serde_json::Value = serde_json::from_slice(&list.subscription_succeeded("presence-room")).unwrap();
        let data: serde_json::Value = serde_json::from_str(parsed["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["presence"]["count"], 3);
        assert_eq!(data["presence"]["hash"]["1"]["bio"], "line\nbreak \\ \u{1}");
    }

    #[test]
    fn an_empty_list_and_changes() {
        let mut list = MemberList::new();
        let expected = frame::subscription_succeeded("presence-x", &subscription_data(&[]));
        assert_eq!(list.subscription_succeeded("presence-x").as_ref(), expected.as_slice());
        assert!(list.insert(member("a", None)));
        assert!(!list.insert(member("a", None)), "the same member again changes nothing");
        assert!(list.insert(member("a", Some("{}"))), "new info replaces the old");
        let frame = list.subscription_succeeded("presence-x");
        assert!(String::from_utf8_lossy(&frame).contains(r#"\"a\":{}"#));
        assert!(list.remove("a"));
        assert!(!list.remove("a"));
        assert_eq!(list.subscription_succeeded("presence-x").as_ref(), expected.as_slice());
    }
}
