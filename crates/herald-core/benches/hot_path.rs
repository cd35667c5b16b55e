//! The pure pieces of the hot path, measured alone: encoding a frame, turning a Laravel payload into a
//! Pusher frame, checking signatures, and fanning one broadcast out through the channel index.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use herald_core::channel_index::ChannelIndex;
use herald_core::connection::ConnectionHandle;
use herald_core::Broadcast;
use herald_protocol::frame::{self, Data};
use herald_protocol::laravel::LaravelBroadcast;
use herald_protocol::{signature, SocketId};
use std::sync::Arc;

fn protocol(c: &mut Criterion) {
    let data = r#"{"order":{"id":1,"total":9.5,"lines":[1,2,3]},"note":"h\u00e9llo \"world\""}"#;
    c.bench_function("encode frame (string data)", |b| {
        b.iter(|| {
            frame::encode(
                black_box("App\\Events\\OrderShipped"),
                Some("private-orders.1"),
                Data::AsString(black_box(data)),
                None,
            )
        })
    });
    let payload = format!(r#"{{"event":"App\\Events\\OrderShipped","data":{data},"socket":null}}"#);
    c.bench_function("laravel payload to pusher frame", |b| {
        b.iter(|| {
            LaravelBroadcast::parse(black_box(&payload))
                .unwrap()
                .to_frame("private-orders.1")
        })
    });
    let auth = signature::sign_channel("key", "secret", "1234.5678", "private-orders.1", None);
    c.bench_function("verify private channel auth", |b| {
        b.iter(|| {
            signature::verify_channel(
                "key",
                "secret",
                black_box("1234.5678"),
                "private-orders.1",
                None,
                black_box(&auth),
            )
        })
    });
    let params = [
        ("auth_key", "key"),
        ("auth_timestamp", "1353088179"),
        ("auth_version", "1.0"),
        ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
    ];
    let sig = signature::sign_api("secret", "POST", "/apps/3/events", params);
    c.bench_function("verify HTTP API signature", |b| {
        b.iter(|| signature::verify_api("secret", "POST", "/apps/3/events", params, black_box(&sig)))
    });
}

fn fan_out(c: &mut Criterion) {
    let index = ChannelIndex::default();
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut queues = Vec::new();
    for i in 0..1000 {
        let (conn, rx) = ConnectionHandle::new(SocketId::new(1, i), 1 << 20);
        runtime.block_on(index.add("news", &Arc::new(conn), None, || Box::pin(async {})));
        queues.push(rx);
    }
    let broadcast = Broadcast::new(
        Bytes::from_static(br#"{"event":"e","channel":"news","data":"{}"}"#),
        None,
    );
    let mut group = c.benchmark_group("channel index");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("deliver one broadcast to 1,000 subscribers", |b| {
        b.iter(|| {
            let d = index.deliver(black_box("news"), &broadcast);
            for rx in queues.iter_mut() {
                while rx.try_recv().is_some() {}
            }
            d
        })
    });
    group.bench_function("look up a channel with no subscribers", |b| {
        b.iter(|| index.deliver(black_box("nobody"), &broadcast))
    });
    group.finish();
}

criterion_group!(benches, protocol, fan_out);
criterion_main!(benches);
