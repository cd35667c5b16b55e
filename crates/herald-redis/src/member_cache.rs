//! This node's copy of the member list of each presence channel it has members on. A join sends Redis the
//! version of the copy; Redis answers with nothing (the copy is current), the changes since (from the
//! channel's change log), or the whole list when the copy is too old. So a join on a channel of 2,000 users
//! costs Redis and the node a few entries instead of 2,000, and the `subscription_succeeded` frame of each
//! state of the list is built once on the node ([`MemberList`]).
//!
//! A copy is only ever moved forward: a join's answer that is older than the copy (another join's answer
//! came first) leaves it as it is, and the joining connection is given the newer list and its version, which
//! shows every change up to it, so the member-event rules (`herald_core::member_event`) still hold. A copy
//! lives while the node has a member on the channel or a join in flight (pins), and goes with the last.

use dashmap::DashMap;
use herald_protocol::member_list::MemberList;
use herald_protocol::presence_data::Member;
use std::sync::Arc;

/// One change from a channel's change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub version: u64,
    /// The user's new info (in or changed), or None when the user left.
    pub member: Option<Member>,
    pub user_id: String,
}

impl Change {
    /// Parses a log entry: `{version}|{previous version}|{op}{length of user id}:{user id}{user_info}`.
    pub fn parse(entry: &str) -> Option<Change> {
        let (version, rest) = entry.split_once('|')?;
        let version = version.parse().ok()?;
        let (_previous, rest) = rest.split_once('|')?;
        let op = rest.as_bytes().first()?;
        let (len, rest) = rest[1..].split_once(':')?;
        let len: usize = len.parse().ok()?;
        let user_id = rest.get(..len)?.to_owned();
        let info = &rest[len..];
        let member = match op {
            b'+' => Some(stored_member(user_id.clone(), info.to_owned())),
            b'-' => None,
            _ => return None,
        };
        Some(Change {
            version,
            member,
            user_id,
        })
    }
}

/// A member as Redis stores it: the user id and the info's raw JSON, `null` when the app sent none.
pub fn stored_member(user_id: String, info: String) -> Member {
    Member {
        user_id,
        user_info: (info != "null").then_some(info),
    }
}

/// What a join's answer carried about the member list.
#[derive(Debug)]
pub enum ListUpdate {
    /// The node's copy is the list of this version.
    Current,
    /// The changes after the copy's version, in order.
    Changes(Vec<Change>),
    /// The whole list. With `reset`, it replaces the copy even though the copy's version is higher: the
    /// channel's versions went back (it emptied while Redis's clock was behind the one that wrote the copy's
    /// version).
    Whole { members: Vec<Member>, reset: bool },
}

#[derive(Default)]
struct Copy {
    pins: usize,
    version: u64,
    list: Arc<MemberList>,
}

/// The copies, by app and channel.
#[derive(Default)]
pub struct MemberCache {
    copies: DashMap<(String, String), Copy>,
}

/// A pin on a channel's copy, let go when dropped unless [`kept`](Pin::keep) (a join that failed or was
/// cancelled never leaves its pin behind).
pub struct Pin<'a> {
    cache: &'a MemberCache,
    app_id: &'a str,
    channel: &'a str,
    known: u64,
    kept: bool,
}

impl Pin<'_> {
    /// The copy's version when pinned, 0 when there was none (Redis then sends the whole list).
    pub fn known(&self) -> u64 {
        self.known
    }

    /// Keeps the pin for the member the join added; it is let go by that member's leave.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.cache.unpin(self.app_id, self.channel);
        }
    }
}

impl MemberCache {
    /// Keeps the channel's copy while a join is in flight or the node has a member there.
    pub fn pin<'a>(&'a self, app_id: &'a str, channel: &'a str) -> Pin<'a> {
        let mut copy = self.copies.entry((app_id.to_owned(), channel.to_owned())).or_default();
        copy.pins += 1;
        let known = copy.version;
        drop(copy);
        Pin {
            cache: self,
            app_id,
            channel,
            known,
            kept: false,
        }
    }

    /// Lets go of one pin; the copy goes with the last.
    pub fn unpin(&self, app_id: &str, channel: &str) {
        self.copies
            .remove_if_mut(&(app_id.to_owned(), channel.to_owned()), |_, copy| {
                copy.pins = copy.pins.saturating_sub(1);
                copy.pins == 0
            });
    }

    /// Brings the (pinned) copy up to `version` with a join's answer; returns the list to give the joining
    /// connection and its version (the copy's, which may be newer than `version`). None when the answer
    /// cannot be applied: there is no copy to apply changes to (the caller asks for the whole list).
    pub fn update(
        &self,
        app_id: &str,
        channel: &str,
        version: u64,
        update: ListUpdate,
    ) -> Option<(Arc<MemberList>, u64)> {
        let key = (app_id.to_owned(), channel.to_owned());
        let mut copy = match update {
            ListUpdate::Whole { members, reset } => {
                let Some(mut copy) = self.copies.get_mut(&key) else {
                    return Some((Arc::new(members.into_iter().collect()), version));
                };
                if reset || version >= copy.version {
                    copy.list = Arc::new(members.into_iter().collect());
                    copy.version = version;
                }
                copy
            }
            ListUpdate::Current => self.copies.get_mut(&key)?,
            ListUpdate::Changes(changes) => {
                let mut copy = self.copies.get_mut(&key)?;
                let copy_version = copy.version;
                let newer: Vec<_> = changes.into_iter().filter(|c| c.version > copy_version).collect();
                if !newer.is_empty() {
                    let list = Arc::make_mut(&mut copy.list);
                    for change in newer {
                        match change.member {
                            Some(member) => list.insert(member),
                            None => list.remove(&change.user_id),
                        };
                    }
                }
                copy
            }
        };
        copy.version = copy.version.max(version);
        Some((copy.list.clone(), copy.version))
    }

    /// How many channels have a copy (for tests).
    pub fn len(&self) -> usize {
        self.copies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, info: Option<&str>) -> Member {
        Member {
            user_id: id.to_owned(),
            user_info: info.map(str::to_owned),
        }
    }

    #[test]
    fn parses_log_entries() {
        let c = Change::parse(r#"1700000000000001|1700000000000000|+5:a|b:c{"n":"x|y"}"#).unwrap();
        assert_eq!(c.version, 1_700_000_000_000_001);
        assert_eq!(c.member, Some(member("a|b:c", Some(r#"{"n":"x|y"}"#))));
        let c = Change::parse("7|0|+1:7null").unwrap();
        assert_eq!(c.member, Some(member("7", None)));
        let c = Change::parse("8|7|-2:é").unwrap();
        assert_eq!((c.user_id.as_str(), c.member), ("é", None));
        assert!(Change::parse("8|7|*1:a").is_none());
        assert!(Change::parse("x|7|+1:a").is_none());
        assert!(Change::parse("8|7|+9:a").is_none());
        assert!(
            Change::parse("8|+1:a").is_none(),
            "an entry without its previous version"
        );
    }

    #[test]
    fn a_copy_only_moves_forward_and_goes_with_its_last_pin() {
        let cache = MemberCache::default();
        let first = cache.pin("a", "presence-c");
        assert_eq!(first.known(), 0);
        first.keep();
        let whole = ListUpdate::Whole {
            members: vec![member("1", None), member("2", None)],
            reset: false,
        };
        let (list, v) = cache.update("a", "presence-c", 10, whole).unwrap();
        assert_eq!((list.len(), v), (2, 10));
        let second = cache.pin("a", "presence-c");
        assert_eq!(second.known(), 10);
        second.keep();
        drop(cache.pin("a", "presence-c")); // a join that failed: its pin goes at once
        let changes = vec![
            Change::parse("11|10|+1:3null").unwrap(),
            Change::parse("12|11|-1:1").unwrap(),
        ];
        let (list, v) = cache
            .update("a", "presence-c", 12, ListUpdate::Changes(changes))
            .unwrap();
        let users: Vec<_> = list.iter().map(|m| m.user_id.as_str()).collect();
        assert_eq!((users, v), (vec!["2", "3"], 12));
        // An older answer arriving late changes nothing; the newer list is given.
        let late = vec![Change::parse("11|10|+1:3null").unwrap()];
        let (list, v) = cache.update("a", "presence-c", 11, ListUpdate::Changes(late)).unwrap();
        assert_eq!((list.len(), v), (2, 12));
        let stale = ListUpdate::Whole {
            members: vec![member("1", None)],
            reset: false,
        };
        assert_eq!(cache.update("a", "presence-c", 9, stale).unwrap().1, 12);
        // Versions that went back: the whole list replaces the copy.
        let reset = ListUpdate::Whole {
            members: vec![member("9", None)],
            reset: true,
        };
        let (list, v) = cache.update("a", "presence-c", 5, reset).unwrap();
        assert_eq!((list.iter().next().unwrap().user_id.as_str(), v), ("9", 5));
        cache.unpin("a", "presence-c");
        assert_eq!(cache.len(), 1);
        cache.unpin("a", "presence-c");
        assert!(cache.is_empty());
        assert!(cache.update("a", "presence-c", 13, ListUpdate::Current).is_none());
    }
}
