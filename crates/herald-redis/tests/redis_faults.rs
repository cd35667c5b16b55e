//! Real Redis faults against real nodes in process: a stall of Redis itself (`DEBUG SLEEP`) must never make
//! one live node wipe another's presence, and a node that was reaped must learn it for sure.

use herald_core::presence_store::PresenceStore;
use herald_core::testing::{Client, KEY};
use herald_redis::redis_presence::LeaseStatus;
use herald_redis::RedisPresence;
use std::time::Duration;

mod common;
use common::{ready, redis_node, redis_node_of, start_redis, until};

fn reaps() -> u64 {
    herald_core::metrics::metrics()
        .presence_operations
        .with_label_values(&["reap", "ok"])
        .get()
}

/// The user ids listed on `channel` of the test app, sorted.
async fn listed(node: &std::sync::Arc<herald_core::Node>, channel: &str) -> Vec<String> {
    let app = node.app_by_key(KEY).unwrap().clone();
    let mut ids: Vec<String> = node
        .members(&app, channel)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    ids.sort();
    ids
}

/// Redis sleeps 4 s (longer than a lease and its grace) while two nodes hold members. When it wakes, reaps
/// queued before the stall must do nothing: both members stay listed, and nobody hears `member_removed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_stall_never_makes_a_live_node_wipe_another() {
    for round in 0..1 {
        let redis = start_redis();
        let (a, b) = (redis_node(&redis.url), redis_node(&redis.url));
        for node in [&a, &b] {
            ready(node).await;
        }
        let mut on_a = Client::connect(&a).await;
        on_a.join("presence-room", "1").await;
        let mut on_b = Client::connect(&b).await;
        on_b.join("presence-room", "2").await;
        assert_eq!(on_a.next().await["event"], "pusher_internal:member_added");
        // Both nodes must have been reaping (healthy for a lease) before the stall.
        let before = reaps();
        until("reaping rounds", Duration::from_secs(10), async || {
            reaps() >= before + 4
        })
        .await;

        let mut admin = redis.connection();
        tokio::task::spawn_blocking(move || redis::cmd("DEBUG").arg("SLEEP").arg(4).query::<()>(&mut admin))
            .await
            .unwrap()
            .unwrap();

        // After the stall, wait for both nodes to be healthy and reaping again for a while.
        for node in [&a, &b] {
            until("ready again", Duration::from_secs(15), async || {
                node.not_ready().is_none()
            })
            .await;
        }
        let after = reaps();
        until("reaping rounds after the stall", Duration::from_secs(15), async || {
            reaps() >= after + 8
        })
        .await;

        let app = a.app_by_key(KEY).unwrap().clone();
        let listed = listed(&a, "presence-room").await;
        assert_eq!(
            listed,
            vec!["1", "2"],
            "round {round}: both live members are still listed"
        );
        for c in [&mut on_a, &mut on_b] {
            let removed = c.queued_events("pusher_internal:member_removed");
            assert!(
                removed.is_empty(),
                "round {round}: a live member was announced gone: {removed:?}"
            );
        }
        assert_eq!(
            a.connection_count(&app).await.unwrap(),
            2,
            "round {round}: counts intact"
        );
    }
}

/// The stall made deterministic at the store: node A's reap is queued behind a Redis stall that outlasts
/// both leases. When Redis wakes, A's own lease has expired too, so its reap must do nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reap_that_reaches_redis_after_the_callers_lease_expired_does_nothing() {
    let redis = start_redis();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let lease = Duration::from_millis(600);
    let a = RedisPresence::new(client.clone(), "a".into(), lease);
    let b = RedisPresence::new(client, "b".into(), lease);
    let member = herald_protocol::presence_data::Member {
        user_id: "2".into(),
        user_info: None,
    };
    a.renew().await.unwrap();
    b.renew().await.unwrap();
    let socket = herald_protocol::SocketId::new(2, 1);
    b.join("1", "presence-room", &socket, &member, 100).await.unwrap();

    let mut admin = redis.connection();
    let stall = tokio::task::spawn_blocking(move || redis::cmd("DEBUG").arg("SLEEP").arg(2).query::<()>(&mut admin));
    // Queued while Redis sleeps; runs when it wakes, after both leases (and the grace) ran out.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reaped = a.reap().await.unwrap();
    stall.await.unwrap().unwrap();
    assert!(reaped.nodes.is_empty(), "a late reap took {:?}", reaped.nodes);
    let members = b.members("1", "presence-room").await.unwrap();
    assert_eq!(members.len(), 1, "the member of the live node is still there");
}

/// A reaped node hears it from every renewal until it has put its state back, not from one reply it may
/// have lost.
#[tokio::test]
async fn a_reaped_node_learns_it_from_a_lasting_marker() {
    let redis = start_redis();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let a = RedisPresence::new(client.clone(), "a".into(), Duration::from_secs(60));
    let b = RedisPresence::new(client, "b".into(), Duration::from_secs(60));
    a.renew().await.unwrap();
    b.renew().await.unwrap();
    // B goes silent: its lease is made to have expired long ago; A reaps it.
    let mut admin = redis.connection();
    let mut expire_b = || {
        redis::cmd("ZADD")
            .arg("herald:nodes")
            .arg(0)
            .arg("b")
            .query::<()>(&mut admin)
            .unwrap()
    };
    expire_b();
    assert_eq!(a.reap().await.unwrap().nodes, vec!["b".to_string()]);
    // The reply to B's first renewal is lost (it timed out, say): the next one still says so.
    assert_eq!(b.renew().await.unwrap(), LeaseStatus::Reaped);
    assert_eq!(b.renew().await.unwrap(), LeaseStatus::Reaped);
    let first = b.reaped_marker();
    // B is reaped again while it puts its state back: the end of the first re-registration does not clear
    // the second reap's marker.
    expire_b();
    a.renew().await.unwrap();
    assert_eq!(a.reap().await.unwrap().nodes, vec!["b".to_string()]);
    b.reaped_handled(&first).await.unwrap();
    assert_eq!(
        b.renew().await.unwrap(),
        LeaseStatus::Reaped,
        "the second reap is still reported"
    );
    let second = b.reaped_marker();
    assert_ne!(first, second);
    b.reaped_handled(&second).await.unwrap();
    assert_eq!(b.renew().await.unwrap(), LeaseStatus::Ok);
}

/// A node that stops renewing (killed) is reaped by a live node within the target, 5 s with the default
/// 2 s lease, and its members are announced gone once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_reaped_and_its_members_leave_within_five_seconds() {
    let redis = start_redis();
    let live = redis_node(&redis.url);
    ready(&live).await;
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let dead = RedisPresence::new(client, "dead".into(), Duration::from_millis(2000));
    dead.renew().await.unwrap();
    let member = herald_protocol::presence_data::Member {
        user_id: "gone".into(),
        user_info: None,
    };
    let socket = herald_protocol::SocketId::new(9, 1);
    dead.join("1", "presence-room", &socket, &member, 100).await.unwrap();
    let mut watcher = Client::connect(&live).await;
    let here = watcher.join("presence-room", "watcher").await;
    assert_eq!(here["data"]["presence"]["count"], 2);
    // From here on the dead node never renews.
    let died = std::time::Instant::now();
    let mut removed = Vec::new();
    until(
        "member_removed for the dead node's user",
        Duration::from_secs(8),
        async || {
            removed.extend(watcher.queued_events("pusher_internal:member_removed"));
            !removed.is_empty()
        },
    )
    .await;
    let took = died.elapsed();
    println!(
        "member_removed {:.2} s after the node stopped renewing",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["data"], r#"{"user_id":"gone"}"#);
}

/// While Redis is down, connections of an app with a quota are let in (unchecked) at once, one after
/// another, instead of waiting for Redis to come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_of_an_app_with_a_quota_are_let_in_while_redis_is_down() {
    let mut redis = start_redis();
    let mut config = herald_core::testing::app();
    config.max_connections = Some(50);
    let node = redis_node_of(&redis.url, config);
    ready(&node).await;
    let app = node.app_by_key(KEY).unwrap().clone();
    assert!(node.take_seat(&app).await.is_some());
    redis.kill();
    for i in 0..5 {
        let seat = tokio::time::timeout(Duration::from_secs(8), node.take_seat(&app))
            .await
            .unwrap_or_else(|_| panic!("admission {i} still waiting for Redis"));
        assert!(seat.is_some(), "let in unchecked");
    }
}

/// Defect 7: a presence join that times out during a Redis stall may still run when Redis wakes. It is taken
/// back without a word: the other members never hear `member_added` nor `member_removed` for that user, no
/// webhook names the user, and the user is not listed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presence_join_lost_in_a_stall_is_taken_back_unannounced() {
    let redis = start_redis();
    let mut config = herald_core::testing::app();
    config.webhooks = vec![herald_core::webhook::WebhookTarget {
        url: "http://127.0.0.1:9/hook".into(),
        events: vec![],
        channel_prefix: None,
    }];
    let node = redis_node_of(&redis.url, config);
    ready(&node).await;
    let mut watcher = Client::connect(&node).await;
    watcher.join("presence-room", "1").await;

    // Redis sleeps 8 s: the count update and then the join of user 2 time out (3 s each) while it sleeps, and
    // the join still sits in the node's socket when Redis wakes.
    let mut admin = redis.connection();
    let stall = tokio::task::spawn_blocking(move || redis::cmd("DEBUG").arg("SLEEP").arg(8).query::<()>(&mut admin));
    tokio::time::sleep(Duration::from_millis(300)).await; // the fault: let DEBUG SLEEP reach Redis first
    let mut late = Client::connect(&node).await;
    let answer = late.join("presence-room", "2").await;
    assert_eq!(answer["event"], "pusher:subscription_error", "{answer}");
    stall.await.unwrap().unwrap();
    ready(&node).await;
    let before = reaps();
    until(
        "reaping rounds after the stall (failed leaves are retried there)",
        Duration::from_secs(15),
        async || reaps() >= before + 4,
    )
    .await;

    assert_eq!(
        listed(&node, "presence-room").await,
        vec!["1"],
        "the lost join is not listed"
    );
    let about_2: Vec<_> = watcher
        .queued()
        .into_iter()
        .filter(|f| {
            f["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("pusher_internal:member"))
        })
        .collect();
    assert!(
        about_2.is_empty(),
        "member events about a user who never joined: {about_2:?}"
    );
    let mut hooks = Vec::new();
    while let Ok(batch) = tokio::time::timeout(Duration::from_millis(600), node.webhooks().next(100)).await {
        hooks.extend(batch.into_iter().map(|p| (p.event.name, p.event.user_id)));
    }
    assert!(
        !hooks.iter().any(|(_, user)| user.as_deref() == Some("2")),
        "webhooks about a user who never joined: {hooks:?}"
    );
}
