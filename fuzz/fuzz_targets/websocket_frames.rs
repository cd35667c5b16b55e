//! Bytes from a client's socket through the WebSocket frame reader: every header form, masks, fragments,
//! control frames and lengths (up to 2^64 - 1), with a message limit, read until the reader stops. It must
//! never panic nor hold more than the limit allows.
#![no_main]

use herald_server::frame_reader::FrameReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async {
        let mut reader = FrameReader::new(1024);
        let mut io = data;
        for _ in 0..10_000 {
            if reader.next(&mut io).await.is_err() {
                break;
            }
        }
    });
});
