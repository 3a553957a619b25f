//! Workspace API responses: credential bodies (Provisioned and Autoscaling), OAuth token
//! responses, error bodies of any shape, RFC 3339 timestamps and Retry-After values. Never panics;
//! error-body fields are length-limited.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 400 + (u16::from(data[0]) % 200);
    let body = &data[1..];
    let (_code, message) = lakebase::api::errors::parse_body(status, body);
    assert!(message.len() <= 4 * 1024, "error message not clipped: {} bytes", message.len());
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let _ = lakebase::api::parse_credential(&v, "expire_time", "fuzz");
        let _ = lakebase::api::parse_credential(&v, "expiration_time", "fuzz");
        let _ = lakebase::auth::m2m::parse_token_response(&v, 1_800_000_000_000, "fuzz");
    }
    if let Ok(s) = std::str::from_utf8(body) {
        let _ = lakebase::api::parse_rfc3339_ms(s);
        let _ = lakebase::http::parse_retry_after(Some(s), 1_800_000_000_000);
        let _ = lakebase::api::postgres::validate_endpoint_name(s);
    }
});
