//! Races at the seams between the node and Redis, each reproduced with real Redis nodes in process and real
//! sessions, and repeated so that a fix that only narrows a window would fail: two tabs of one user joining at
//! once, two Laravel events to one cache channel back to back across nodes, and counts after an outage in
//! which Redis restarted empty.

use herald_core::testing::{publish, Client, KEY};
use std::time::Duration;

mod common;
use common::{ready, redis_node, start_redis, until};

/// Two tabs of one user join a presence channel on one node at the same instant, 50 times: neither ever
/// hears `member_added` about its own user, and an observer hears it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_of_one_user_joining_at_once_never_hear_themselves_join() {
    let redis = start_redis();
    let node = redis_node(&redis.url);
    ready(&node).await;
    for round in 0..50 {
        let channel = format!("presence-room-{round}");
        let mut observer = Client::connect(&node).await;
        observer.join(&channel, "watcher").await;
        let mut tab1 = Client::connect(&node).await;
        let mut tab2 = Client::connect(&node).await;
        let (c1, c2) = (channel.clone(), channel.clone());
        let (a, b) = tokio::join!(
            tokio::spawn(async move {
                tab1.join(&c1, "7").await;
                tab1
            }),
            tokio::spawn(async move {
                tab2.join(&c2, "7").await;
                tab2
            })
        );
        let (mut tab1, mut tab2) = (a.unwrap(), b.unwrap());
        // The observer's copy and the tabs' would be queued by the same fan-out.
        let added = observer.next().await;
        assert_eq!(added["event"], "pusher_internal:member_added");
        assert_eq!(added["data"]["user_id"], "7");
        for tab in [&mut tab1, &mut tab2] {
            let own = tab.queued_events("pusher_internal:member_added");
            assert!(own.is_empty(), "round {round}: a tab heard its own user join: {own:?}");
        }
        assert!(observer.queued().is_empty(), "round {round}: one member_added per user");
        for c in [observer, tab1, tab2] {
            c.session.close().await;
        }
    }
}

/// Laravel broadcasts two events to one cache channel back to back (as a queue worker does), 50 times, with
/// three nodes each keeping what they see: a late subscriber on any node gets the newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_gets_the_newest_cache_event_across_nodes() {
    let redis = start_redis();
    let nodes: Vec<_> = (0..3).map(|_| redis_node(&redis.url)).collect();
    for node in &nodes {
        ready(node).await;
    }
    let mut publisher = redis.connection();
    for round in 0..50 {
        let channel = format!("cache-prices-{round}");
        let mut pipe = redis::pipe();
        for (n, event) in ["first", "second"].iter().enumerate() {
            let payload = format!(r#"{{"event":"{event}","data":{{"n":{n}}},"socket":null}}"#);
            pipe.cmd("PUBLISH")
                .arg(format!("laravel_database_{channel}"))
                .arg(payload)
                .ignore();
        }
        pipe.query::<()>(&mut publisher).unwrap();
        let node = &nodes[round % 3];
        until(
            &format!("round {round}: a late subscriber to get the newest event"),
            Duration::from_secs(5),
            async || {
                let mut late = Client::connect(node).await;
                late.subscribe(&channel).await;
                let got = late.next().await;
                late.session.close().await;
                got["event"] == "second"
            },
        )
        .await;
    }
}

/// Count changes made while Redis was down fail; Redis then comes back empty and the node registers its
/// counts again. The failed changes must not be counted on top: once every client has left, the app has no
/// connection and the channel is vacated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_after_redis_restarts_empty_during_an_outage() {
    let mut redis = start_redis();
    let node = redis_node(&redis.url);
    ready(&node).await;
    let app = node.app_by_key(KEY).unwrap().clone();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&node).await;
        c.subscribe("news").await;
        clients.push(c);
    }
    until("3 connections counted", Duration::from_secs(5), async || {
        node.connection_count(&app).await.ok() == Some(3)
    })
    .await;

    redis.kill();
    let joining = (0..5).map(|_| {
        let node = node.clone();
        tokio::spawn(async move {
            let mut c = Client::connect(&node).await;
            c.subscribe("news").await;
            c
        })
    });
    for c in futures_util::future::join_all(joining).await {
        clients.push(c.unwrap());
    }
    // Let the applier try (and fail) the batch holding those changes before Redis returns.
    until("a failed count batch", Duration::from_secs(10), async || {
        herald_core::metrics::metrics()
            .redis_errors
            .with_label_values(&["counts"])
            .get()
            > 0
    })
    .await;
    redis.start_again();
    until(
        "8 connections counted after the restart",
        Duration::from_secs(10),
        async || node.connection_count(&app).await.ok() == Some(8),
    )
    .await;

    for c in clients {
        c.session.close().await;
    }
    until("no connection left counted", Duration::from_secs(10), async || {
        node.connection_count(&app).await.ok() == Some(0) && node.subscription_count(&app, "news").await.ok() == Some(0)
    })
    .await;
    let channels = node.channels(&app).await.unwrap();
    assert!(channels.is_empty(), "no channel occupied: {channels:?}");
    // Nothing else drifts in later: the counts stay at zero.
    publish(&node, "news", "settled").await;
    assert_eq!(node.connection_count(&app).await.unwrap(), 0);
}

/// A node that holds no connection any more re-registers (Redis lost data, or a promoted replica lacks the
/// node's last decrements): its share in Redis still says 2 connections and 2 subscriptions. The reset sets
/// the whole share from the node's own totals, which are empty, so the cluster counts fall back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_with_no_count_left_clears_a_stale_share() {
    let redis = start_redis();
    let node = redis_node(&redis.url);
    ready(&node).await;
    let app = node.app_by_key(KEY).unwrap().clone();
    let client = Client::connect(&node).await;
    client.session.close().await;
    until("no connection counted", Duration::from_secs(5), async || {
        node.connection_count(&app).await.ok() == Some(0)
    })
    .await;
    // What a replica promoted before the node's last decrements reached it would hold.
    let mut conn = redis.connection();
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg("herald:nodes")
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    let share = format!("herald:node:{}:counts", ids[0]);
    let app_id = &app.config.id;
    let _: () = redis::pipe()
        .hset(&share, format!("c|{app_id}"), 2)
        .hset(&share, format!("s|{app_id}|news"), 2)
        .set(format!("herald:{app_id}:connections"), 2)
        .hset(format!("herald:{app_id}:channels"), "news", 2)
        .del("herald:epoch")
        .query(&mut conn)
        .unwrap();
    until(
        "the stale share cleared by the reset",
        Duration::from_secs(10),
        async || {
            node.connection_count(&app).await.ok() == Some(0)
                && node.subscription_count(&app, "news").await.ok() == Some(0)
        },
    )
    .await;
}

/// A user joins on node B while the first subscriber of the channel on node A is still joining, 30 times:
/// the one on A always learns of the user, from its member list or from `member_added` after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_elsewhere_during_a_first_subscribe_is_never_missed() {
    let redis = start_redis();
    let (a, b) = (redis_node(&redis.url), redis_node(&redis.url));
    ready(&a).await;
    ready(&b).await;
    for round in 0..30 {
        let channel = format!("presence-meet-{round}");
        let mut first = Client::connect(&a).await;
        let mut other = Client::connect(&b).await;
        let (c1, c2) = (channel.clone(), channel.clone());
        let (x, y) = tokio::join!(
            tokio::spawn(async move {
                let here = first.join(&c1, "1").await;
                (first, here)
            }),
            tokio::spawn(async move {
                other.join(&c2, "2").await;
                other
            })
        );
        let ((mut first, here), other) = (x.unwrap(), y.unwrap());
        // Nothing about user 2 may come before the member list; after it, at most a member_added.
        assert_eq!(here["event"], "pusher_internal:subscription_succeeded", "round {round}");
        let listed = here["data"]["presence"]["ids"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|id| id == "2"));
        if !listed {
            let added = first.next().await;
            assert_eq!(added["event"], "pusher_internal:member_added", "round {round}");
            assert_eq!(added["data"]["user_id"], "2", "round {round}");
        }
        assert!(first.queued().is_empty(), "round {round}: user 2 announced once");
        first.session.close().await;
        other.session.close().await;
    }
}
