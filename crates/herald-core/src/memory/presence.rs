//! The in-memory presence store of the embedded default: one node, no Redis.

use crate::presence_store::{Joined, Left, PresenceError, PresenceStore};
use crate::BoxFuture;
use dashmap::DashMap;
use herald_protocol::member_list::MemberList;
use herald_protocol::presence_data::Member;
use herald_protocol::SocketId;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

#[derive(Debug, Default)]
struct User {
    member: Option<Member>,
    sockets: HashSet<SocketId>,
}

/// One channel's users and its member list (shared with the joins that got it; copied when it changes
/// while one still holds it).
#[derive(Debug, Default)]
struct Channel {
    users: BTreeMap<String, User>,
    list: Arc<MemberList>,
}

/// Members of every presence channel of this node, keyed by app id and channel.
#[derive(Debug, Default)]
pub struct MemoryPresence {
    channels: DashMap<(String, String), Channel>,
    /// Member-set versions, one sequence for every channel (rising per channel is all that is needed);
    /// changed and read under the channel's lock.
    version: std::sync::atomic::AtomicU64,
}

impl MemoryPresence {
    pub fn new() -> Self {
        Self::default()
    }

    fn join_now(
        &self,
        app_id: &str,
        channel: &str,
        socket_id: &SocketId,
        member: &Member,
        max: usize,
    ) -> Result<Joined, PresenceError> {
        let mut entry = self
            .channels
            .entry((app_id.to_owned(), channel.to_owned()))
            .or_default();
        let channel = &mut *entry;
        if !channel.users.contains_key(&member.user_id) && channel.users.len() >= max {
            return Err(PresenceError::MemberLimit(max));
        }
        let user = channel.users.entry(member.user_id.clone()).or_default();
        let first_for_user = user.sockets.is_empty();
        user.sockets.insert(socket_id.clone());
        user.member = Some(member.clone());
        let changed = channel.list.get(&member.user_id) != Some(member);
        if changed {
            Arc::make_mut(&mut channel.list).insert(member.clone());
        }
        let version = self.version_after(changed);
        Ok(Joined {
            first_for_user,
            version,
            members: channel.list.clone(),
            members_version: version,
        })
    }

    /// The version after a change (`changed`) or the current one; called under the channel's lock.
    fn version_after(&self, changed: bool) -> u64 {
        use std::sync::atomic::Ordering;
        if changed {
            self.version.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.version.load(Ordering::Acquire)
        }
    }

    fn leave_now(&self, app_id: &str, channel: &str, socket_id: &SocketId, user_id: &str) -> Left {
        let key = (app_id.to_owned(), channel.to_owned());
        let (mut last_for_user, mut version) = (false, 0);
        self.channels.remove_if_mut(&key, |_, channel| {
            if let Some(user) = channel.users.get_mut(user_id) {
                if user.sockets.remove(socket_id) && user.sockets.is_empty() {
                    channel.users.remove(user_id);
                    Arc::make_mut(&mut channel.list).remove(user_id);
                    last_for_user = true;
                    version = self.version_after(true);
                }
            }
            channel.users.is_empty()
        });
        Left { last_for_user, version }
    }
}

impl PresenceStore for MemoryPresence {
    fn join(
        &self,
        app_id: &str,
        channel: &str,
        socket_id: &SocketId,
        member: &Member,
        max: usize,
    ) -> BoxFuture<'static, Result<Joined, PresenceError>> {
        let result = self.join_now(app_id, channel, socket_id, member, max);
        Box::pin(async move { result })
    }

    fn leave(
        &self,
        app_id: &str,
        channel: &str,
        socket_id: &SocketId,
        user_id: &str,
    ) -> BoxFuture<'static, Result<Left, PresenceError>> {
        let result = self.leave_now(app_id, channel, socket_id, user_id);
        Box::pin(async move { Ok(result) })
    }

    fn members(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<Vec<Member>, PresenceError>> {
        let members = self
            .channels
            .get(&(app_id.to_owned(), channel.to_owned()))
            .map(|channel| channel.list.iter().cloned().collect())
            .unwrap_or_default();
        Box::pin(async move { Ok(members) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> Member {
        Member {
            user_id: id.into(),
            user_info: None,
        }
    }

    #[tokio::test]
    async fn tabs_of_one_user_are_one_member() {
        let store = MemoryPresence::new();
        let (s1, s2, s3) = (SocketId::new(1, 1), SocketId::new(1, 2), SocketId::new(1, 3));
        let j = store.join("a", "presence-c", &s1, &member("7"), 100).await.unwrap();
        assert!(j.first_for_user);
        let j = store.join("a", "presence-c", &s2, &member("7"), 100).await.unwrap();
        assert!(!j.first_for_user);
        assert_eq!(j.members.len(), 1);
        store.join("a", "presence-c", &s3, &member("8"), 100).await.unwrap();
        assert_eq!(store.members("a", "presence-c").await.unwrap().len(), 2);
        assert!(!store.leave("a", "presence-c", &s1, "7").await.unwrap().last_for_user);
        assert!(store.leave("a", "presence-c", &s2, "7").await.unwrap().last_for_user);
        assert!(
            !store.leave("a", "presence-c", &s2, "7").await.unwrap().last_for_user,
            "leaving twice is harmless"
        );
        assert_eq!(store.members("a", "presence-c").await.unwrap(), vec![member("8")]);
        assert!(
            store.members("b", "presence-c").await.unwrap().is_empty(),
            "apps are separate"
        );
    }

    #[tokio::test]
    async fn member_limit_counts_users_not_tabs() {
        let store = MemoryPresence::new();
        store
            .join("a", "p", &SocketId::new(1, 1), &member("1"), 1)
            .await
            .unwrap();
        store
            .join("a", "p", &SocketId::new(1, 2), &member("1"), 1)
            .await
            .unwrap();
        let err = store
            .join("a", "p", &SocketId::new(1, 3), &member("2"), 1)
            .await
            .unwrap_err();
        assert_eq!(err, PresenceError::MemberLimit(1));
    }
}
