//! The Pusher rules a session and its node apply, tested in process on an embedded node: what a client sends
//! goes into a real `Session`, and the test reads exactly what the client's socket would be sent.

use herald_core::testing::{Client, KEY, SECRET};
use herald_core::webhook::WebhookTarget;
use herald_core::{AppConfig, Node, NodeSettings};
use herald_protocol::signature;
use serde_json::json;
use std::sync::Arc;

fn app() -> AppConfig {
    herald_core::testing::app()
}

fn node_with(config: AppConfig) -> Arc<Node> {
    Node::embedded(vec![config], NodeSettings::default())
}

async fn publish(node: &Arc<Node>, channel: &str, event: &str) {
    let app = node.app_by_key(KEY).expect("the app").clone();
    let frame =
        herald_protocol::frame::encode(event, Some(channel), herald_protocol::frame::Data::AsString("{}"), None);
    node.trigger(&app, channel, frame, None).await.expect("published");
}

#[tokio::test]
async fn public_channels_need_no_auth_and_deliver_api_events() {
    let node = node_with(app());
    let mut c = Client::connect(&node).await;
    let ok = c.subscribe("orders").await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    publish(&node, "orders", "shipped").await;
    assert_eq!(c.next().await["event"], "shipped");
    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "orders"}}))
        .await;
    publish(&node, "orders", "late").await;
    assert!(c.queued().is_empty(), "nothing after unsubscribing");
}

#[tokio::test]
async fn private_channels_need_this_socket_signature() {
    let node = node_with(app());
    let mut a = Client::connect(&node).await;
    let mut b = Client::connect(&node).await;
    let stolen = signature::sign_channel(KEY, SECRET, &a.socket_id, "private-x", None);
    b.send(json!({"event": "pusher:subscribe", "data": {"channel": "private-x", "auth": stolen}}))
        .await;
    let refused = b.next().await;
    assert_eq!(refused["event"], "pusher:subscription_error");
    assert_eq!(refused["data"]["status"], 401);
    assert_eq!(refused["data"]["type"], "AuthError");
    assert_eq!(
        a.subscribe_private("private-x").await["event"],
        "pusher_internal:subscription_succeeded"
    );
    let bad_name = a.subscribe("a b").await;
    assert_eq!(bad_name["data"]["status"], 400);
}

#[tokio::test]
async fn presence_announces_each_user_once_and_never_to_their_own_tabs() {
    let node = node_with(app());
    let mut observer = Client::connect(&node).await;
    observer.join("presence-room", "1").await;
    let mut tab1 = Client::connect(&node).await;
    let mut tab2 = Client::connect(&node).await;
    let here = tab1.join("presence-room", "2").await;
    assert_eq!(here["data"]["presence"]["count"], 2);
    tab2.join("presence-room", "2").await;
    let added = observer.next().await;
    assert_eq!(added["event"], "pusher_internal:member_added");
    assert_eq!(added["data"]["user_id"], "2");
    assert!(observer.queued().is_empty(), "one member_added per user, not per tab");
    assert!(tab1.queued().is_empty() && tab2.queued().is_empty());
    tab1.session.close().await;
    assert!(observer.queued().is_empty(), "the user still has a tab");
    tab2.session.close().await;
    let removed = observer.next().await;
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    assert_eq!(removed["data"]["user_id"], "2");
}

/// The race of two tabs of one user joining at the same instant: whichever order the store and the channel
/// index see them in, no tab hears about its own user and the observer hears once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_joining_at_once_never_hear_their_own_user() {
    for round in 0..50 {
        let node = node_with(app());
        let mut observer = Client::connect(&node).await;
        observer.join("presence-room", "watcher").await;
        let mut tab1 = Client::connect(&node).await;
        let mut tab2 = Client::connect(&node).await;
        let (a, b) = tokio::join!(
            tokio::spawn(async move {
                tab1.join("presence-room", "7").await;
                tab1
            }),
            tokio::spawn(async move {
                tab2.join("presence-room", "7").await;
                tab2
            })
        );
        let (mut tab1, mut tab2) = (a.unwrap(), b.unwrap());
        for tab in [&mut tab1, &mut tab2] {
            let own = tab.queued_events("pusher_internal:member_added");
            assert!(own.is_empty(), "round {round}: a tab heard its own user join: {own:?}");
        }
        let added = observer.next().await;
        assert_eq!(added["data"]["user_id"], "7", "round {round}");
        assert!(observer.queued().is_empty(), "round {round}: one member_added per user");
    }
}

#[tokio::test]
async fn presence_limits_and_bad_channel_data() {
    let mut config = app();
    config.max_presence_members = 1;
    config.max_member_size = 64;
    let node = node_with(config);
    let mut a = Client::connect(&node).await;
    a.join("presence-r", "1").await;
    let mut b = Client::connect(&node).await;
    let full = b.join("presence-r", "2").await;
    assert_eq!(
        (full["data"]["status"].clone(), full["data"]["type"].clone()),
        (json!(403), json!("LimitReached"))
    );
    let big = b.join("presence-s", &"x".repeat(100)).await;
    assert_eq!(big["data"]["status"], 400);
    let same_user = b.join("presence-r", "1").await;
    assert_eq!(
        same_user["event"], "pusher_internal:subscription_succeeded",
        "another tab of a member"
    );
}

#[tokio::test]
async fn a_connection_has_a_channel_limit() {
    let mut config = app();
    config.max_channels_per_connection = 2;
    let node = node_with(config);
    let mut c = Client::connect(&node).await;
    c.subscribe("a").await;
    c.subscribe("b").await;
    let again = c.subscribe("a").await;
    assert_eq!(
        again["event"], "pusher_internal:subscription_succeeded",
        "a repeat is not a new channel"
    );
    let third = c.subscribe("c").await;
    assert_eq!(
        (third["data"]["status"].clone(), third["data"]["type"].clone()),
        (json!(403), json!("LimitReached"))
    );
}

#[tokio::test]
async fn client_events_follow_the_rules() {
    let node = node_with(app());
    let mut a = Client::connect(&node).await;
    let mut b = Client::connect(&node).await;
    a.subscribe_private("private-chat").await;
    b.subscribe_private("private-chat").await;
    a.send(json!({"event": "client-typing", "channel": "private-chat", "data": {"x": 1}}))
        .await;
    let got = b.next().await;
    assert_eq!(
        (got["event"].clone(), got["data"].clone()),
        (json!("client-typing"), json!({"x": 1}))
    );
    assert!(a.queued().is_empty(), "never echoed to the sender");
    a.subscribe("public").await;
    a.send(json!({"event": "client-typing", "channel": "public", "data": {}}))
        .await;
    assert_eq!(a.next().await["data"]["code"], 4009, "not on public channels");
    a.send(json!({"event": "client-typing", "channel": "private-other", "data": {}}))
        .await;
    assert_eq!(a.next().await["data"]["code"], 4009, "not on channels it is not on");
    for _ in 0..10 {
        a.send(json!({"event": "client-x", "channel": "private-chat", "data": {}}))
            .await;
    }
    a.send(json!({"event": "client-x", "channel": "private-chat", "data": {}}))
        .await;
    assert_eq!(a.next().await["data"]["code"], 4301, "over 10 a second");

    let mut off = app();
    off.client_events = false;
    let node = node_with(off);
    let mut c = Client::connect(&node).await;
    c.subscribe_private("private-chat").await;
    c.send(json!({"event": "client-typing", "channel": "private-chat", "data": {}}))
        .await;
    assert_eq!(c.next().await["data"]["code"], 4009, "disabled for the app");
}

#[tokio::test]
async fn presence_client_events_carry_the_user_id() {
    let node = node_with(app());
    let mut a = Client::connect(&node).await;
    let mut b = Client::connect(&node).await;
    a.join("presence-chat", "1").await;
    b.join("presence-chat", "2").await;
    a.next().await; // member_added 2
    b.send(json!({"event": "client-wave", "channel": "presence-chat", "data": {}}))
        .await;
    let got = a.next().await;
    assert_eq!(
        (got["event"].clone(), got["user_id"].clone()),
        (json!("client-wave"), json!("2"))
    );
}

#[tokio::test]
async fn server_to_user_channels_belong_to_the_signed_in_user() {
    let node = node_with(app());
    let mut c = Client::connect(&node).await;
    let refused = c.subscribe("#server-to-user-1").await;
    assert_eq!(refused["data"]["status"], 401, "not signed in");
    assert_eq!(c.sign_in("1").await["event"], "pusher:signin_success");
    assert_eq!(
        c.subscribe("#server-to-user-1").await["event"],
        "pusher_internal:subscription_succeeded"
    );
    let other = c.subscribe("#server-to-user-2").await;
    assert_eq!(other["data"]["status"], 401, "another user's channel");
}

/// Signing in again as another user takes the connection off the previous user's channels: it no longer
/// receives that user's events, and terminating that user leaves it alone.
#[tokio::test]
async fn signing_in_as_another_user_drops_the_previous_user() {
    let node = node_with(app());
    let app = node.app_by_key(KEY).unwrap().clone();
    let mut c = Client::connect(&node).await;
    c.sign_in("1").await;
    c.subscribe("#server-to-user-1").await;
    assert_eq!(c.sign_in("2").await["event"], "pusher:signin_success");
    publish(&node, "#server-to-user-1", "for-user-1").await;
    node.terminate_user(&app, "1").await.unwrap();
    assert!(
        c.queued().is_empty(),
        "nothing of user 1 reaches the connection now signed in as 2"
    );
    c.subscribe("#server-to-user-2").await;
    publish(&node, "#server-to-user-2", "for-user-2").await;
    assert_eq!(c.next().await["event"], "for-user-2");
    node.terminate_user(&app, "2").await.unwrap();
    assert_eq!(c.next().await["close"], 4009);
}

#[tokio::test]
async fn cache_channels_send_the_last_event_or_a_miss() {
    let node = node_with(app());
    let mut early = Client::connect(&node).await;
    early.subscribe("cache-prices").await;
    assert_eq!(early.next().await["event"], "pusher:cache_miss");
    publish(&node, "cache-prices", "first").await;
    publish(&node, "cache-prices", "second").await;
    let mut late = Client::connect(&node).await;
    late.subscribe("cache-prices").await;
    assert_eq!(late.next().await["event"], "second", "the newest event");
}

#[tokio::test]
async fn occupied_and_vacated_once_per_channel() {
    let mut config = app();
    config.webhooks = vec![WebhookTarget {
        url: "http://127.0.0.1:9/hook".into(),
        events: vec![],
        channel_prefix: None,
    }];
    let node = node_with(config);
    let mut a = Client::connect(&node).await;
    let mut b = Client::connect(&node).await;
    a.subscribe("news").await;
    b.subscribe("news").await;
    a.sign_in("1").await;
    a.session.close().await;
    b.session.close().await;
    let batch = node.webhooks().next(100).await;
    let names: Vec<_> = batch.into_iter().map(|p| (p.event.name, p.event.channel)).collect();
    assert_eq!(
        names,
        vec![
            ("channel_occupied", "news".to_string()),
            ("channel_vacated", "news".to_string())
        ],
        "internal channels raise no webhooks"
    );
}

#[tokio::test]
async fn bad_frames_get_an_error_and_the_connection_stays() {
    let node = node_with(app());
    let mut c = Client::connect(&node).await;
    c.session.handle_text("not json").await;
    assert_eq!(c.next().await["data"]["code"], 4302);
    c.send(json!({"event": "pusher:subscribe", "data": {}})).await;
    assert_eq!(c.next().await["data"]["code"], 4302);
    c.send(json!({"event": "nope"})).await;
    assert_eq!(c.next().await["data"]["code"], 4302);
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(c.next().await["event"], "pusher:pong");
}
