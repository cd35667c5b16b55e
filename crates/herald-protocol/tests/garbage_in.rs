//! Bad input never panics: random bytes and mutations of real frames and payloads go through every
//! parser a client, Laravel or an HTTP API caller can reach. (Deterministic: a fixed-seed generator.)

use herald_protocol::api_event::{parse_batch, TriggerEvent};
use herald_protocol::channel::validate_name;
use herald_protocol::frame::{encode, ClientFrame, Data, SubscribeData};
use herald_protocol::laravel::LaravelBroadcast;
use herald_protocol::presence_data::Member;
use herald_protocol::SocketId;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\"user_id\":\"42\"}","channel":"presence-a"}}"#,
    r#"{"event":"client-typing","channel":"private-a","data":{"name":"B"}}"#,
    r#"{"event":"App\\Events\\X","data":{"order":{"id":1}},"socket":"1.2"}"#,
    r#"{"name":"x","data":"{\"a\":1}","channels":["a","private-b"],"socket_id":"1.2","info":"user_count"}"#,
    r#"{"batch":[{"channel":"a","name":"x","data":"1"}]}"#,
    r#"{"name":"x","data":"\u00e9\ud800\ud83d\ude00\n\/","channel":"c"}"#,
    r#"{"user_id":42,"user_info":{"name":"Ada"}}"#,
];

/// Mutates `seed`: flips, inserts, deletes and duplicates bytes, then keeps it as (lossy) UTF-8.
fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..=rng.below(6) {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let at = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes[at] = rng.next() as u8,
            1 => bytes.insert(at, b"{}[]\",:\\0123456789\xff"[rng.below(19)]),
            2 => {
                bytes.remove(at);
            }
            3 => {
                let tail = bytes[at..].to_vec();
                bytes.extend_from_slice(&tail[..tail.len().min(64)]);
            }
            _ => bytes.truncate(at),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn feed(text: &str) {
    if let Ok(frame) = ClientFrame::parse(text) {
        if let Some(data) = frame.data {
            let _ = serde_json::from_str::<SubscribeData>(data.get());
        }
    }
    if let Ok(b) = LaravelBroadcast::parse(text) {
        let _ = b.to_frame("private-encrypted-a");
        let _ = b.to_encrypted_frame("private-encrypted-a", &[1; 32], [2; 24]);
    }
    // An event taken in goes out as a frame that is valid JSON, its data as written.
    let frame_is_json = |e: &TriggerEvent| {
        let frame = encode(&e.name, Some("c"), Data::Raw(&e.data_json), None);
        assert!(serde_json::from_slice::<serde_json::Value>(&frame).is_ok(), "{text:?}");
    };
    if let Ok(e) = TriggerEvent::parse(text.as_bytes(), 10_240) {
        frame_is_json(&e);
    }
    for e in parse_batch(text.as_bytes(), 10_240).into_iter().flatten() {
        frame_is_json(&e);
    }
    let _ = Member::from_channel_data(text, 1024);
    let _ = Member::from_user_data(text, 1024);
    let _ = validate_name(text);
    let _ = SocketId::parse(text);
}

#[test]
fn mutated_real_input_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let seed = SEEDS[rng.below(SEEDS.len())];
        feed(&mutate(&mut rng, seed));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        feed(&String::from_utf8_lossy(&bytes));
    }
}
