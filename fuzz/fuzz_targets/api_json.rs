//! Workspace API responses: credential bodies (Provisioned and Autoscaling), OAuth token
//! responses, error bodies of any shape, RFC 3339 timestamps and Retry-After values. Never panics;
//! error-body fields are length-limited and hold no control character; an accepted token is
//! token-shaped; the sanitizers never let a control character or a redacted secret through.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 400 + (u16::from(data[0]) % 200);
    let body = &data[1..];
    let (code, message) = lakebase_core::http::apierr::parse_body(status, body);
    assert!(message.len() <= 4 * 1024, "error message not clipped: {} bytes", message.len());
    let clean = |s: &str| !s.chars().any(lakebase_core::sanitize::is_control_or_invisible);
    assert!(clean(&message) && code.as_deref().map_or(true, clean), "control character in server text");
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Ok(c) = lakebase_core::api::parse_credential(&v, "expire_time", "fuzz") {
            let t = c.token.expose();
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)), "accepted a token that is not token-shaped");
        }
        let _ = lakebase_core::api::parse_credential(&v, "expiration_time", "fuzz");
        let _ = lakebase_core::auth::m2m::parse_token_response(&v, 1_800_000_000_000, "fuzz");
    }
    if let Ok(s) = std::str::from_utf8(body) {
        assert!(clean(&lakebase_core::sanitize::escape_controls(s)));
        let _ = lakebase_core::sanitize::check_credential(s, lakebase_core::sanitize::CredentialKind::HeaderToken);
        // A secret of the request is never left in a redacted text, whatever surrounds it.
        if let Some((secret, text)) = s.split_once('\u{0}') {
            let mut r = lakebase_core::sanitize::Redactor::default();
            r.add(secret);
            if !r.is_empty() {
                assert!(!r.redact(text).contains(secret), "a secret survived redaction");
            }
        }
        let _ = lakebase_core::timefmt::parse_rfc3339_ms(s);
        let _ = lakebase_core::http::retry::parse_retry_after(Some(s), 1_800_000_000_000);
        let _ = lakebase_core::api::postgres::validate_endpoint_name(s);
    }
});
