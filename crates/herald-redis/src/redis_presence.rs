//! The Redis presence store: membership in Redis hashes, one entry per connection and a count per user,
//! changed only by Lua scripts so that "first connection of this user anywhere" and "last one anywhere"
//! are decided atomically for the whole cluster. The store also remembers the entries this node holds,
//! to put them back when Redis lost its data or the node's lease was reaped.

use crate::cluster_topology::{on_node, Primary};
use crate::connection::RedisConnection;
use crate::endpoint::Endpoint;
use crate::keys::Layout;
use crate::member_cache::{stored_member, Change, ListUpdate, MemberCache};
use dashmap::DashMap;
use herald_core::backend_events::{ChannelTransition, MemberLeft};
use herald_core::presence_store::{Joined, Left, PresenceError, PresenceStore};
use herald_core::BoxFuture;
use herald_protocol::presence_data::Member;
use herald_protocol::SocketId;
use redis::{RedisError, Script, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Nothing happened.
    Ok,
    /// Redis lost its data: this node's entries must be put back, silently.
    Lost,
    /// This node's lease expired and its entries were removed (member_removed went out): put them back
    /// and announce the users again.
    Reaped,
}

struct Scripts {
    join: Script,
    leave: Script,
    renew: Script,
    reap: Script,
    reap_channel: Script,
    reap_counts: Script,
    reap_claim: Script,
    unmark: Script,
}

/// Redis Cluster: how long a reaper's claim on a reaped node lasts unless extended (after each page of a scan).
const CLAIM_MS: u64 = 30_000;

/// What reaping dead nodes took back.
#[derive(Debug, Default)]
pub struct Reaped {
    /// The nodes reaped.
    pub nodes: Vec<String>,
    /// Each user whose last connection was on them: member_removed is due.
    pub removed: Vec<MemberLeft>,
    /// Each channel they left with no subscriber anywhere: channel_vacated is due.
    pub vacated: Vec<ChannelTransition>,
}

impl Reaped {
    /// Adds what one reap script returned: `removed` as (app, channel, user, version) and `vacated` as
    /// (app, channel), flat.
    fn add(&mut self, removed: Vec<String>, vacated: Vec<String>) {
        self.removed.extend(removed.chunks_exact(4).map(|t| MemberLeft {
            app_id: t[0].clone(),
            channel: t[1].clone(),
            user_id: t[2].clone(),
            version: t[3].parse().unwrap_or(0),
            join_announced: true,
        }));
        self.vacated.extend(vacated.chunks_exact(2).map(|t| ChannelTransition {
            app_id: t[0].clone(),
            channel: t[1].clone(),
            occupied: false,
        }));
    }
}

/// One page of the keys matching `pattern` on one primary (`SCAN`, about 1,000 keys looked at), and the
/// cursor of the next (0 at the end).
async fn scan_page(
    conn: &mut redis::cluster_async::ClusterConnection,
    primary: &Primary,
    pattern: &str,
    cursor: u64,
) -> Result<(u64, Vec<String>), RedisError> {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000);
    let reply = on_node(conn, primary, &cmd).await?;
    redis::from_redis_value(&reply)
}

/// One presence entry held by this node.
#[derive(Debug, Clone)]
pub struct LocalEntry {
    pub app_id: String,
    pub channel: String,
    pub socket_id: SocketId,
    pub member: Member,
}

/// A leave to retry: the entry, and whether it takes back a join that was never announced.
struct PendingLeave {
    entry: LocalEntry,
    join_announced: bool,
}

pub struct RedisPresence {
    me: std::sync::Weak<RedisPresence>,
    node_id: String,
    conn: RedisConnection,
    scripts: Arc<Scripts>,
    local: DashMap<(String, String, SocketId), Member>,
    /// This node's copies of the member lists of the channels it has members on.
    lists: MemberCache,
    pending_leaves: Mutex<Vec<PendingLeave>>,
    epoch: Mutex<String>,
    /// The lease expiry the last renewal set (as Redis wrote it); reaps quote it, so a reap that reaches
    /// Redis after the lease changed or ran out does nothing.
    lease_score: Mutex<String>,
    /// The reaped marker as the last renewal read it ('' when none).
    reaped_marker: Mutex<String>,
    started: Instant,
    lease: Duration,
    /// Milliseconds since `started` when the lease was last renewed (0 = never).
    renewed_ms: AtomicU64,
}

impl RedisPresence {
    pub fn new(client: impl Into<Endpoint>, node_id: String, lease: Duration) -> Arc<Self> {
        Arc::new_cyclic(|me| RedisPresence {
            me: me.clone(),
            node_id,
            conn: RedisConnection::new(client),
            scripts: Arc::new(Scripts {
                join: Script::new(concat!(
                    include_str!("lua/member_version.lua"),
                    include_str!("lua/join.lua")
                )),
                leave: Script::new(concat!(
                    include_str!("lua/member_version.lua"),
                    include_str!("lua/leave.lua")
                )),
                renew: Script::new(include_str!("lua/renew.lua")),
                reap: Script::new(concat!(
                    include_str!("lua/member_version.lua"),
                    include_str!("lua/reap_entries.lua"),
                    include_str!("lua/reap.lua")
                )),
                reap_channel: Script::new(concat!(
                    include_str!("lua/member_version.lua"),
                    include_str!("lua/reap_entries.lua"),
                    include_str!("lua/reap_channel.lua")
                )),
                reap_counts: Script::new(concat!(
                    include_str!("lua/member_version.lua"),
                    include_str!("lua/reap_entries.lua"),
                    include_str!("lua/reap_counts.lua")
                )),
                reap_claim: Script::new(include_str!("lua/reap_claim.lua")),
                unmark: Script::new(include_str!("lua/unmark.lua")),
            }),
            local: DashMap::new(),
            lists: MemberCache::default(),
            pending_leaves: Mutex::new(Vec::new()),
            epoch: Mutex::new(String::new()),
            lease_score: Mutex::new(String::new()),
            reaped_marker: Mutex::new(String::new()),
            started: Instant::now(),
            lease,
            renewed_ms: AtomicU64::new(0),
        })
    }

    fn me(&self) -> Arc<Self> {
        self.me.upgrade().expect("the presence store outlives its calls")
    }

    /// How long this node's lease lasts.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Redis refused the renewal because it is out of memory (`maxmemory` with `noeviction`): nobody can
    /// write, so nobody can reap this node either. Its lease is treated as held for readiness (the node still
    /// delivers: pub/sub works without memory), though it is not healthy enough to reap others.
    pub fn lease_held_through_oom(&self) {
        self.renewed_ms
            .store(self.started.elapsed().as_millis().max(1) as u64, Ordering::Release);
    }

    /// The Redis address (`host:port`), for log lines.
    pub fn address(&self) -> String {
        self.conn.address()
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    fn entry(app_id: &str, channel: &str, socket_id: &SocketId, user_id: &str) -> String {
        format!("{app_id}|{channel}|{socket_id}|{user_id}")
    }

    /// Renews the lease; says whether Redis lost data or the node was reaped meanwhile.
    pub async fn renew(&self) -> Result<LeaseStatus, RedisError> {
        let known = self.epoch.lock().expect("epoch lock").clone();
        let fresh = format!("{:016x}", crate::redis_backbone::rand_u64());
        let script = &self.scripts;
        let node_id = self.node_id.clone();
        let lease_ms = self.lease.as_millis() as u64;
        let layout = self.conn.layout();
        let (nodes, epoch, reaping) = (layout.nodes(), layout.epoch(), layout.reaping());
        let marker = layout.node_reaped(&node_id);
        let (node_id, known, fresh, marker) = (&node_id, &known, &fresh, &marker);
        let (nodes, epoch, reaping) = (&nodes, &epoch, &reaping);
        let (status, epoch, score, marker): (String, String, String, String) = self
            .conn
            .run("renew", |mut c| async move {
                let mut invocation = script.renew.key(nodes);
                invocation.key(epoch).key(marker);
                if layout == Layout::Cluster {
                    invocation.key(reaping);
                }
                invocation
                    .arg(node_id)
                    .arg(lease_ms)
                    .arg(known)
                    .arg(fresh)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        *self.epoch.lock().expect("epoch lock") = epoch;
        *self.lease_score.lock().expect("lease lock") = score;
        *self.reaped_marker.lock().expect("marker lock") = marker;
        self.renewed_ms
            .store(self.started.elapsed().as_millis().max(1) as u64, Ordering::Release);
        Ok(match status.as_str() {
            "lost" => LeaseStatus::Lost,
            "reaped" => LeaseStatus::Reaped,
            _ => LeaseStatus::Ok,
        })
    }

    /// Removes the entries of nodes whose lease expired; returns their ids and each user whose last
    /// connection was on one of them. Quotes the lease the last renewal set: run it right after a renewal.
    pub async fn reap(&self) -> Result<Reaped, RedisError> {
        let score = self.lease_score.lock().expect("lease lock").clone();
        self.run_reap("others", self.lease.as_millis() as u64 / 2, &score).await
    }

    async fn run_reap(&self, mode: &str, grace_ms: u64, score: &str) -> Result<Reaped, RedisError> {
        let script = &self.scripts;
        let node_id = &self.node_id;
        let layout = self.conn.layout();
        let (nodes, reaping) = (layout.nodes(), layout.reaping());
        let marker = layout.node_reaped("%s");
        let [base, connections, channels] = layout.script_formats();
        let (node_set, node_counts) = match layout {
            Layout::Single => (layout.node_presence("%s", "", ""), layout.node_counts("%s", "")),
            Layout::Cluster => (String::new(), String::new()),
        };
        let formats = [marker.as_str(), base, connections, channels, &node_set, &node_counts];
        let (nodes, reaping, formats) = (&nodes, &reaping, &formats);
        let (reaped, flat, vacated): (Vec<String>, Vec<String>, Vec<String>) = self
            .conn
            .run_once_only("reap", |mut c| async move {
                let mut invocation = script.reap.key(nodes);
                if layout == Layout::Cluster {
                    invocation.key(reaping);
                }
                invocation.arg(node_id).arg(grace_ms).arg(mode).arg(score);
                for format in formats {
                    invocation.arg(*format);
                }
                invocation.invoke_async(&mut c).await
            })
            .await?;
        let mut taken = Reaped {
            nodes: reaped,
            ..Reaped::default()
        };
        taken.add(flat, vacated);
        Ok(taken)
    }

    /// True when reaped nodes' state is taken back apart from the reap, by [`sweep`](Self::sweep) (Redis
    /// Cluster: it lies in every slot).
    pub fn sweeps(&self) -> bool {
        self.conn.layout() == Layout::Cluster
    }

    /// Redis Cluster: takes back, one slot at a time, the presence entries and count shares of every node in
    /// the reaping set (reaped just now, or earlier by a reaper that stopped half-way), handing what each key
    /// gave back to `report` at once (its member_removed and channel_vacated are due whatever happens next).
    /// One reaper at a time works on a node (`reap_claim.lua`); its keys are found by scanning every primary,
    /// each taken back by one atomic script. A node leaves the set, and may then put its state back if it is
    /// alive, only once all of it is back.
    pub async fn sweep(&self, report: &mut (dyn FnMut(Reaped) + Send)) -> Result<(), RedisError> {
        let layout = self.conn.layout();
        let reaping = layout.reaping();
        let pending: Vec<String> = self
            .conn
            .run("reaping", |mut c| {
                let reaping = &reaping;
                async move { redis::cmd("SMEMBERS").arg(reaping).query_async(&mut c).await }
            })
            .await?;
        if pending.is_empty() {
            return Ok(());
        }
        let Some(cluster) = self.conn.endpoint().cluster_nodes() else {
            return Ok(());
        };
        let mut conn = self.conn.cluster_connection().await?;
        let primaries = cluster.observe(&mut conn).await?;
        let [base, connections, channels] = layout.script_formats();
        for node in pending {
            if !self.claim(&mut conn, &node, "claim").await? {
                continue;
            }
            for pattern in layout.node_scan_patterns(&node) {
                for primary in &primaries {
                    let mut cursor = 0u64;
                    loop {
                        let (next, keys) = scan_page(&mut conn, primary, &pattern, cursor).await?;
                        for key in keys {
                            let mut taken = Reaped::default();
                            if pattern.ends_with(":counts") {
                                let vacated: Vec<String> = self
                                    .scripts
                                    .reap_counts
                                    .key(&key)
                                    .arg(connections)
                                    .arg(channels)
                                    .invoke_async(&mut conn)
                                    .await?;
                                taken.add(Vec::new(), vacated);
                            } else {
                                let removed: Vec<String> = self
                                    .scripts
                                    .reap_channel
                                    .key(&key)
                                    .arg(base)
                                    .invoke_async(&mut conn)
                                    .await?;
                                taken.add(removed, Vec::new());
                            }
                            if !taken.removed.is_empty() || !taken.vacated.is_empty() {
                                report(taken);
                            }
                        }
                        if !self.claim(&mut conn, &node, "extend").await? {
                            tracing::warn!(node, "another node took over taking back a reaped node's state");
                            return Ok(());
                        }
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                }
            }
            self.claim(&mut conn, &node, "done").await?;
            tracing::info!(node, "a reaped node's presence and counts are all taken back");
        }
        Ok(())
    }

    /// Claims, extends or ends (`mode`) this node's work on reaped node `node`.
    async fn claim(
        &self,
        conn: &mut redis::cluster_async::ClusterConnection,
        node: &str,
        mode: &str,
    ) -> Result<bool, RedisError> {
        let layout = self.conn.layout();
        let held: i64 = self
            .scripts
            .reap_claim
            .key(layout.reaping())
            .key(layout.reaping_claim(node))
            .arg(node)
            .arg(&self.node_id)
            .arg(CLAIM_MS)
            .arg(mode)
            .invoke_async(conn)
            .await?;
        Ok(held == 1)
    }

    /// Gives up the lease on a clean shutdown: whatever this node still holds in Redis (presence entries
    /// whose grace had not run out, counts not yet flushed) is taken back at once, as for a dead node.
    /// Returns the users for whom `member_removed` is due.
    pub async fn retire(&self) -> Result<Reaped, RedisError> {
        let mut taken = self.run_reap("self", 0, "").await?;
        if self.sweeps() {
            // What this node still held lies in every slot: taken back now, or by the others' sweeps.
            let mut found = Vec::new();
            let swept = self.sweep(&mut |reaped| found.push(reaped)).await;
            for reaped in found {
                taken.removed.extend(reaped.removed);
                taken.vacated.extend(reaped.vacated);
            }
            if let Err(e) = swept {
                tracing::warn!(error = %e, "this node's presence and counts not all taken back at shutdown; the other nodes finish it");
            }
        }
        Ok(taken)
    }

    /// The reaped marker as the last renewal read it, to pass to [`reaped_handled`](Self::reaped_handled).
    pub fn reaped_marker(&self) -> String {
        self.reaped_marker.lock().expect("marker lock").clone()
    }

    /// This node put its state back after the reap that set `marker`: its renewals may say "ok" again, unless
    /// another reap happened meanwhile.
    pub async fn reaped_handled(&self, marker: &str) -> Result<(), RedisError> {
        let key = self.conn.layout().node_reaped(&self.node_id);
        let (key, script) = (&key, &self.scripts);
        self.conn
            .run("reaped_handled", |mut c| async move {
                script.unmark.key(key).arg(marker).invoke_async::<i64>(&mut c).await
            })
            .await
            .map(|_| ())
    }

    /// Retries the leaves that failed; returns `(app, channel, user)` for those that were a user's last.
    pub async fn retry_leaves(&self) -> Vec<MemberLeft> {
        let pending = std::mem::take(&mut *self.pending_leaves.lock().expect("pending lock"));
        let mut last = Vec::new();
        for pending in pending {
            let PendingLeave { entry, join_announced } = pending;
            if self
                .local
                .contains_key(&(entry.app_id.clone(), entry.channel.clone(), entry.socket_id.clone()))
            {
                continue; // joined again since: the entry is wanted
            }
            let user = entry.member.user_id.clone();
            match self
                .leave_in_redis(&entry.app_id, &entry.channel, &entry.socket_id, &user)
                .await
            {
                Ok(left) if left.last_for_user => last.push(MemberLeft {
                    app_id: entry.app_id,
                    channel: entry.channel,
                    user_id: user,
                    version: left.version,
                    join_announced,
                }),
                Ok(_) => {}
                Err(_) => self
                    .pending_leaves
                    .lock()
                    .expect("pending lock")
                    .push(PendingLeave { entry, join_announced }),
            }
        }
        last
    }

    /// Queues a leave that failed (or a join to take back) for the liveness task's next round.
    fn retry_leave_later(
        &self,
        app_id: String,
        channel: String,
        socket_id: SocketId,
        member: Member,
        join_announced: bool,
    ) {
        let entry = LocalEntry {
            app_id,
            channel,
            socket_id,
            member,
        };
        let leave = PendingLeave { entry, join_announced };
        self.pending_leaves.lock().expect("pending lock").push(leave);
    }

    /// Every entry this node holds.
    pub fn local_entries(&self) -> Vec<LocalEntry> {
        self.local
            .iter()
            .map(|e| {
                let (app_id, channel, socket_id) = e.key().clone();
                LocalEntry {
                    app_id,
                    channel,
                    socket_id,
                    member: e.value().clone(),
                }
            })
            .collect()
    }

    /// Runs the join script. The caller holds a pin on the channel's member list copy (so the answer can be
    /// applied to it); `known` is the copy's version when pinned.
    async fn join_in_redis(
        &self,
        app_id: &str,
        channel: &str,
        socket_id: &SocketId,
        member: &Member,
        max: usize,
        known: u64,
    ) -> Result<Joined, PresenceError> {
        let layout = self.conn.layout();
        let base = layout.presence_base(app_id, channel);
        let entry = Self::entry(app_id, channel, socket_id, &member.user_id);
        let node_set = layout.node_presence(&self.node_id, app_id, channel);
        let info = member.user_info.clone().unwrap_or_else(|| "null".into());
        let script = &self.scripts;
        let (socket, user) = (socket_id.as_str(), member.user_id.as_str());
        let (base, node_set, info, entry) = (&base, &node_set, &info, &entry);
        let reply: Result<Vec<Value>, RedisError> = self
            .conn
            .run_once_only("presence_join", |mut c| async move {
                presence_keys(&script.join, base, node_set)
                    .arg(socket)
                    .arg(user)
                    .arg(info)
                    .arg(max)
                    .arg(entry)
                    .arg(known)
                    .invoke_async(&mut c)
                    .await
            })
            .await;
        let reply = reply.map_err(unavailable)?;
        let (first_for_user, version, update) = match parse_joined(&reply) {
            Some(JoinReply::Joined { first, version, update }) => (first, version, update),
            Some(JoinReply::Full) => return Err(PresenceError::MemberLimit(max)),
            None => return Err(PresenceError::Unavailable("unexpected reply to the join script".into())),
        };
        let (members, members_version) = match self.lists.update(app_id, channel, version, update) {
            Some(list) => list,
            None => {
                // Not reached while the copy is pinned; the whole list keeps the answer right regardless.
                let members = self.members_in_redis(app_id, channel).await?;
                let whole = ListUpdate::Whole { members, reset: false };
                self.lists
                    .update(app_id, channel, version, whole)
                    .expect("a whole list always applies")
            }
        };
        Ok(Joined {
            first_for_user,
            version,
            members,
            members_version,
        })
    }

    async fn leave_in_redis(
        &self,
        app_id: &str,
        channel: &str,
        socket_id: &SocketId,
        user_id: &str,
    ) -> Result<Left, PresenceError> {
        let layout = self.conn.layout();
        let base = layout.presence_base(app_id, channel);
        let entry = Self::entry(app_id, channel, socket_id, user_id);
        let node_set = layout.node_presence(&self.node_id, app_id, channel);
        let script = &self.scripts;
        let (socket, user) = (socket_id.as_str(), user_id);
        let (base, node_set, entry) = (&base, &node_set, &entry);
        let version: u64 = self
            .conn
            .run_once_only("presence_leave", |mut c| async move {
                presence_keys(&script.leave, base, node_set)
                    .arg(socket)
                    .arg(user)
                    .arg(entry)
                    .invoke_async(&mut c)
                    .await
            })
            .await
            .map_err(unavailable)?;
        Ok(Left {
            last_for_user: version > 0,
            version,
        })
    }

    async fn members_in_redis(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, PresenceError> {
        let key = format!("{}:info", self.conn.layout().presence_base(app_id, channel));
        let flat: Vec<String> = self
            .conn
            .run("presence_members", |mut c| {
                let key = &key;
                async move { redis::cmd("HGETALL").arg(key).query_async(&mut c).await }
            })
            .await
            .map_err(unavailable)?;
        Ok(flat
            .chunks_exact(2)
            .map(|p| stored_member(p[0].clone(), p[1].clone()))
            .collect())
    }

    /// Puts an entry back after Redis lost it (used by the liveness task).
    /// An entry whose connection left meanwhile is taken out again, so re-registering never leaves a ghost.
    pub async fn rejoin(&self, entry: &LocalEntry) -> Result<Joined, PresenceError> {
        let (app, channel, socket) = (&entry.app_id, &entry.channel, &entry.socket_id);
        let pin = self.lists.pin(app, channel);
        let joined = self
            .join_in_redis(app, channel, socket, &entry.member, usize::MAX, pin.known())
            .await;
        drop(pin); // the entry's own pin, from its first join, stays until it leaves
        let joined = joined?;
        if !self.local.contains_key(&(app.clone(), channel.clone(), socket.clone())) {
            self.leave_in_redis(app, channel, socket, &entry.member.user_id).await?;
            return Ok(Joined {
                first_for_user: false,
                ..joined
            });
        }
        Ok(joined)
    }
}

/// The keys join.lua and leave.lua take: the channel's three hashes, the node's entry set, the channel's
/// member-set version and its change log.
fn presence_keys<'a>(script: &'a Script, base: &str, node_set: &str) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.key(format!("{base}:conns"));
    invocation
        .key(format!("{base}:users"))
        .key(format!("{base}:info"))
        .key(node_set)
        .key(format!("{base}:version"))
        .key(format!("{base}:log"));
    invocation
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// What the join script answered.
enum JoinReply {
    Joined {
        first: bool,
        version: u64,
        update: ListUpdate,
    },
    /// A new user would have exceeded the member limit.
    Full,
}

fn unavailable(e: RedisError) -> PresenceError {
    PresenceError::Unavailable(e.to_string())
}

fn whole_list(pairs: &[Value]) -> Option<Vec<Member>> {
    pairs
        .chunks_exact(2)
        .map(|pair| Some(stored_member(text(&pair[0])?, text(&pair[1])?)))
        .collect()
}

fn parse_joined(reply: &[Value]) -> Option<JoinReply> {
    let first = match reply.first()? {
        Value::Int(-1) => return Some(JoinReply::Full),
        Value::Int(i) => *i == 1,
        _ => return None,
    };
    let version = match reply.get(1)? {
        Value::Int(v) => *v as u64,
        _ => return None,
    };
    let rest = reply.get(3..).unwrap_or_default();
    let update = match reply.get(2)? {
        Value::Int(0) => ListUpdate::Current,
        Value::Int(1) => ListUpdate::Changes(
            rest.iter()
                .map(|entry| Change::parse(&text(entry)?))
                .collect::<Option<_>>()?,
        ),
        Value::Int(how @ (2 | 3)) => ListUpdate::Whole {
            members: whole_list(rest)?,
            reset: *how == 3,
        },
        _ => return None,
    };
    Some(JoinReply::Joined { first, version, update })
}

impl PresenceStore for RedisPresence {
    fn join(
        &self,
        app_id: &str,
        channel: &str,
        socket_id: &SocketId,
        member: &Member,
        max: usize,
    ) -> BoxFuture<'static, Result<Joined, PresenceError>> {
        let this = self.me();
        let (app_id, channel, socket_id, member) =
            (app_id.to_owned(), channel.to_owned(), socket_id.clone(), member.clone());
        Box::pin(async move {
            let pin = this.lists.pin(&app_id, &channel);
            let joined = this
                .join_in_redis(&app_id, &channel, &socket_id, &member, max, pin.known())
                .await;
            match joined {
                Ok(joined) => {
                    pin.keep(); // for this member, until its leave
                    let key = (app_id.clone(), channel.clone(), socket_id);
                    if this.local.insert(key, member).is_some() {
                        this.lists.unpin(&app_id, &channel); // the entry was there already, with its pin
                    }
                    Ok(joined)
                }
                Err(PresenceError::Unavailable(e)) => {
                    drop(pin);
                    // The script may still run (a timed-out command stays queued in the socket): take the
                    // entry back at once, on the same connection, so the leave runs right behind the join and
                    // nobody sees the stray member; it was never announced, so neither is its removal. If that
                    // fails too, the leave is retried later (leave.lua is harmless when there is nothing to
                    // remove), with the clients told and the app not.
                    let cancelled = this
                        .leave_in_redis(&app_id, &channel, &socket_id, &member.user_id)
                        .await;
                    if cancelled.is_err() {
                        this.retry_leave_later(app_id, channel, socket_id, member, false);
                    }
                    Err(PresenceError::Unavailable(e))
                }
                Err(e) => Err(e),
            }
        })
    }

    fn leave(
        &self,
        app_id: &str,
        channel: &str,
        socket_id: &SocketId,
        user_id: &str,
    ) -> BoxFuture<'static, Result<Left, PresenceError>> {
        let this = self.me();
        let (app_id, channel, socket_id, user_id) = (
            app_id.to_owned(),
            channel.to_owned(),
            socket_id.clone(),
            user_id.to_owned(),
        );
        Box::pin(async move {
            let member = this
                .local
                .remove(&(app_id.clone(), channel.clone(), socket_id.clone()))
                .map(|(_, m)| m);
            if member.is_some() {
                this.lists.unpin(&app_id, &channel);
            }
            let left = this.leave_in_redis(&app_id, &channel, &socket_id, &user_id).await;
            if left.is_err() {
                // Retried by the liveness task, so the member does not linger in Redis.
                let member = member.unwrap_or(Member {
                    user_id,
                    user_info: None,
                });
                this.retry_leave_later(app_id, channel, socket_id, member, true);
            }
            left
        })
    }

    fn members(&self, app_id: &str, channel: &str) -> BoxFuture<'static, Result<Vec<Member>, PresenceError>> {
        let this = self.me();
        let (app_id, channel) = (app_id.to_owned(), channel.to_owned());
        Box::pin(async move { this.members_in_redis(&app_id, &channel).await })
    }

    fn is_ready(&self) -> bool {
        let renewed = self.renewed_ms.load(Ordering::Acquire);
        renewed > 0 && self.started.elapsed().as_millis() as u64 <= renewed + self.lease.as_millis() as u64
    }
}
