//! Untrusted client bytes: a startup packet (length word + body) as the proxy reads it, the same
//! bytes as a post-startup message stream (Terminate tracking), and as an ErrorResponse body.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../src/protocol.rs"]
#[allow(dead_code)]
mod protocol;
use protocol::{check_startup_len, parse_startup, Framing, ServerError, Startup};

fuzz_target!(|data: &[u8]| {
    if data.len() >= 4 {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        if let Ok(n) = check_startup_len(len) {
            assert!(n + 4 <= protocol::MAX_STARTUP_LEN);
            if data.len() >= 4 + n {
                if let Ok(Startup::Startup { params, .. }) = parse_startup(&data[4..4 + n]) {
                    assert!(params.len() <= protocol::MAX_STARTUP_PARAMS);
                }
            }
        }
    }
    let _ = parse_startup(data);
    let mut f = Framing::default();
    for chunk in data.chunks(7) {
        f.feed(chunk);
    }
    let _ = ServerError::parse(data);
});
