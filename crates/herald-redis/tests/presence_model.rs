//! Randomised test of the Redis presence store against a simple model: several nodes, many joins, leaves
//! and crashes in random order. After every step the member set in Redis, and every first-join /
//! last-leave / reaped-user answer, must match what the model says. Runs against a real redis-server
//! started on a free port (installed by `make test`).

use herald_core::presence_store::PresenceStore;
use herald_protocol::presence_data::Member;
use herald_protocol::SocketId;
use herald_redis::RedisPresence;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::start_redis;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const APP: &str = "app";
const CHANNEL: &str = "presence-model";

#[derive(Default)]
struct Model {
    /// socket -> (node, user)
    sockets: BTreeMap<String, (usize, String)>,
    /// user -> the info of the user's latest join
    info: BTreeMap<String, String>,
}

impl Model {
    fn users(&self) -> BTreeSet<String> {
        self.sockets.values().map(|(_, u)| u.clone()).collect()
    }

    fn has_user(&self, user: &str) -> bool {
        self.sockets.values().any(|(_, u)| u == user)
    }

    /// The member list as every node must show it: each user with the info of its latest join.
    fn list(&self) -> BTreeMap<String, String> {
        self.users()
            .into_iter()
            .map(|u| (u.clone(), self.info[&u].clone()))
            .collect()
    }
}

async fn run(seed: u64, steps: usize) {
    let redis = start_redis();
    let mut nodes: Vec<Arc<RedisPresence>> = Vec::new();
    let mut alive: Vec<bool> = Vec::new();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let add_node = |i: usize| RedisPresence::new(client.clone(), format!("node-{seed}-{i}"), Duration::from_secs(60));
    for i in 0..4 {
        let node = add_node(i);
        node.renew().await.unwrap();
        nodes.push(node);
        alive.push(true);
    }
    let admin = redis::Client::open(redis.url.as_str()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let mut rng = Rng(seed | 1);
    let mut model = Model::default();
    let mut next_socket = 0u64;

    for step in 0..steps {
        let live: Vec<usize> = (0..nodes.len()).filter(|&i| alive[i]).collect();
        match rng.below(10) {
            0..=4 => {
                let node = live[rng.below(live.len())];
                let user = format!("u{}", rng.below(6));
                next_socket += 1;
                let socket = SocketId::new(node as u32 + 1, next_socket);
                // A user's tabs may join with different info (the latest is listed).
                let info = format!("{{\"name\":\"{user}\",\"tab\":{}}}", rng.below(2));
                let member = Member {
                    user_id: user.clone(),
                    user_info: Some(info.clone()),
                };
                let expected_first = !model.has_user(&user);
                let joined = nodes[node].join(APP, CHANNEL, &socket, &member, 100).await.unwrap();
                model.sockets.insert(socket.to_string(), (node, user.clone()));
                model.info.insert(user.clone(), info);
                assert_eq!(
                    joined.first_for_user, expected_first,
                    "seed {seed} step {step}: join {user}"
                );
                // The joining connection's list (from the node's copy, brought up to date by the changes
                // since, or whole) is the model's, infos included, and so is the frame built from it.
                let listed: BTreeMap<String, String> = joined
                    .members
                    .iter()
                    .map(|m| (m.user_id.clone(), m.user_info.clone().unwrap()))
                    .collect();
                assert_eq!(listed, model.list(), "seed {seed} step {step}: members after join");
                let frame: serde_json::Value =
                    serde_json::from_slice(&joined.members.subscription_succeeded(CHANNEL)).unwrap();
                let data: serde_json::Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
                assert_eq!(
                    data["presence"]["count"],
                    model.users().len(),
                    "seed {seed} step {step}"
                );
            }
            5..=8 => {
                let Some(socket) = model.sockets.keys().nth(rng.below(model.sockets.len().max(1))).cloned() else {
                    continue;
                };
                let (node, user) = model.sockets.remove(&socket).unwrap();
                let expected_last = !model.has_user(&user);
                let (a, b) = socket.split_once('.').unwrap();
                let socket_id = SocketId::new(a.parse().unwrap(), b.parse().unwrap());
                let left = nodes[node].leave(APP, CHANNEL, &socket_id, &user).await.unwrap();
                assert_eq!(
                    left.last_for_user, expected_last,
                    "seed {seed} step {step}: leave {user}"
                );
            }
            _ => {
                // Crash a node (never the last one alive): its lease expires, a survivor reaps it.
                if live.len() < 2 {
                    continue;
                }
                let victim = live[rng.below(live.len())];
                alive[victim] = false;
                let _: () = redis::cmd("ZADD")
                    .arg("herald:nodes")
                    .arg(0)
                    .arg(nodes[victim].node_id())
                    .query_async(&mut admin)
                    .await
                    .unwrap();
                let lost: Vec<String> = model
                    .sockets
                    .iter()
                    .filter(|(_, (n, _))| *n == victim)
                    .map(|(s, _)| s.clone())
                    .collect();
                let before = model.users();
                for s in lost {
                    model.sockets.remove(&s);
                }
                let expected: BTreeSet<String> = before.difference(&model.users()).cloned().collect();
                let survivor = *live.iter().find(|&&i| i != victim).unwrap();
                let herald_redis::redis_presence::Reaped {
                    nodes: reaped, removed, ..
                } = nodes[survivor].reap().await.unwrap();
                assert_eq!(
                    reaped,
                    vec![nodes[victim].node_id().to_string()],
                    "seed {seed} step {step}"
                );
                let removed: BTreeSet<String> = removed.into_iter().map(|m| m.user_id).collect();
                assert_eq!(
                    removed, expected,
                    "seed {seed} step {step}: users removed with the dead node"
                );
                let again = nodes[survivor].reap().await.unwrap().nodes;
                assert!(again.is_empty(), "a dead node is reaped once");
                // A replacement node joins the cluster.
                let node = add_node(nodes.len());
                node.renew().await.unwrap();
                nodes.push(node);
                alive.push(true);
            }
        }
        let listed: BTreeSet<String> = nodes[0]
            .members(APP, CHANNEL)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        assert_eq!(listed, model.users(), "seed {seed} step {step}: member set");
    }

    // Everyone leaves: nothing of the channel is left in Redis.
    for (socket, (node, user)) in std::mem::take(&mut model.sockets) {
        let (a, b) = socket.split_once('.').unwrap();
        let socket_id = SocketId::new(a.parse().unwrap(), b.parse().unwrap());
        nodes[node].leave(APP, CHANNEL, &socket_id, &user).await.unwrap();
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("herald:app:*")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(keys.is_empty(), "keys left behind: {keys:?}");
}

#[tokio::test]
async fn presence_store_matches_the_model() {
    for seed in [1, 7, 42, 1234, 99991] {
        run(seed, 300).await;
    }
}

/// A node with its lease taken.
async fn live_node(client: &redis::Client, id: &str) -> Arc<RedisPresence> {
    let node = RedisPresence::new(client.clone(), id.into(), Duration::from_secs(60));
    node.renew().await.unwrap();
    node
}

/// A member with no info.
fn member(id: &str) -> Member {
    Member {
        user_id: id.to_owned(),
        user_info: None,
    }
}

/// A node's copy of the list older than what the channel's change log keeps (at most 256 changes) is
/// replaced by the whole list; a newer one is brought up to date by the changes alone. Either way the joining
/// connection gets the exact list.
#[tokio::test]
async fn a_copy_older_than_the_change_log_gets_the_whole_list() {
    let redis = start_redis();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let (a, b) = (live_node(&client, "node-a").await, live_node(&client, "node-b").await);
    a.join(APP, CHANNEL, &SocketId::new(1, 1), &member("anchor"), 1000)
        .await
        .unwrap();
    let mut expected: BTreeSet<String> = ["anchor".to_owned()].into();
    for (round, changes) in [(0u64, 10u64), (1, 300)] {
        for i in 0..changes {
            let user = format!("u{round}-{i}");
            let socket = SocketId::new(2, round * 1000 + i);
            b.join(APP, CHANNEL, &socket, &member(&user), 1000).await.unwrap();
            if i % 3 == 0 {
                b.leave(APP, CHANNEL, &socket, &user).await.unwrap();
            } else {
                expected.insert(user);
            }
        }
        let late = format!("late-{round}");
        let joined = a
            .join(APP, CHANNEL, &SocketId::new(1, 10 + round), &member(&late), 1000)
            .await
            .unwrap();
        expected.insert(late);
        let listed: BTreeSet<String> = joined.members.iter().map(|m| m.user_id.clone()).collect();
        assert_eq!(listed, expected, "round {round}");
    }
}

/// A change the change log does not hold (made by a node of an earlier version during a rolling upgrade,
/// which raises the version without a log entry) breaks the chain of versions: the joining node gets the
/// whole list, never a delta that misses the change.
#[tokio::test]
async fn a_change_missing_from_the_log_sends_the_whole_list() {
    let redis = start_redis();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let a = live_node(&client, "node-a").await;
    a.join(APP, CHANNEL, &SocketId::new(1, 1), &member("anchor"), 1000)
        .await
        .unwrap();
    // What an earlier node's join.lua did: the member and a higher version, no log entry.
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let base = format!("herald:{APP}:presence:{CHANNEL}");
    let _: () = redis::pipe()
        .hset(format!("{base}:conns"), "9.9", "old-node-user")
        .hincr(format!("{base}:users"), "old-node-user", 1)
        .hset(format!("{base}:info"), "old-node-user", "null")
        .incr(format!("{base}:version"), 1)
        .query_async(&mut admin)
        .await
        .unwrap();
    let joined = a
        .join(APP, CHANNEL, &SocketId::new(1, 2), &member("late"), 1000)
        .await
        .unwrap();
    let listed: BTreeSet<String> = joined.members.iter().map(|m| m.user_id.clone()).collect();
    let expected: BTreeSet<String> = ["anchor", "late", "old-node-user"].map(str::to_owned).into();
    assert_eq!(listed, expected);
}
