//! What is retried, the backoff between attempts and the server's `Retry-After`.
//!
//! Retried within the operation's deadline:
//! - 429 and 503 (as both SDKs), and 502 / 504 from an OAuth token endpoint (the Go SDK's token
//!   source; [`super::Request::token_endpoint`]);
//! - any error status whose message matches one of the SDKs' transient texts
//!   ([`TRANSIENT_MESSAGES`]: databricks-sdk-py 0.167 `_is_retryable`, databricks-sdk-go
//!   apierr `allTransientErrors`), or whose message or `error_code` is `REQUEST_LIMIT_EXCEEDED`
//!   (Go);
//! - connection failures (refused, reset, DNS, connect timeout): the request never reached the
//!   server, or not completely;
//! - a response that timed out, only for requests that are harmless to repeat
//!   ([`super::Request::repeatable`]): GETs, credential mints and OAuth token requests. A
//!   repeated mint issues a second short-lived token and nothing else (the first is never used,
//!   and expires on its own), so the library does not follow databricks-sdk-py 0.167 here, which
//!   never repeats a POST whose read timed out: for a login, a password within the deadline is
//!   worth more than one unused token. Any other POST is not repeated.
//!
//! Never retried: other 4xx/5xx, a certificate that does not verify, the private-link redirect.

use std::time::Duration;

/// Messages the SDKs retry whatever the status (substring match).
pub const TRANSIENT_MESSAGES: &[&str] = &[
    "com.databricks.backend.manager.util.UnknownWorkerEnvironmentException",
    "does not have any associated worker environments",
    "There is no worker environment with id",
    "Unknown worker environment",
    "ClusterNotReadyException",
    "Unexpected error",
    "Please try again later or try a faster operation.",
    "RPC token bucket limit has been exceeded",
    "REQUEST_LIMIT_EXCEEDED",
];

/// Why a response is worth another attempt (`None`: it is the answer).
pub fn retryable_response(resp: &super::Response, token_endpoint: bool) -> Option<&'static str> {
    match resp.status {
        429 => return Some("throttled"),
        503 => return Some("unavailable"),
        502 | 504 if token_endpoint => return Some("gateway error from the token endpoint"),
        s if s < 400 => return None,
        _ => {}
    }
    let (code, message) = super::apierr::parse_body(resp.status, &resp.body);
    if code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED") {
        return Some("REQUEST_LIMIT_EXCEEDED");
    }
    TRANSIENT_MESSAGES.iter().copied().find(|m| message.contains(m))
}

/// Exponential backoff (250 ms doubling, capped at 10 s) with up to 25% jitter, but never less
/// than the server's `Retry-After`.
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let base = Duration::from_millis(250u64.saturating_mul(1 << attempt.saturating_sub(1).min(6))).min(Duration::from_secs(10));
    let jitter = base.mul_f64(fastrand::f64() * 0.25);
    let d = base + jitter;
    match retry_after {
        Some(ra) if ra > d => ra.min(Duration::from_secs(60)),
        _ => d,
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(v: Option<&str>, now_ms: i64) -> Option<Duration> {
    let v = v?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let fmt = time::format_description::well_known::Rfc2822;
    let t = time::OffsetDateTime::parse(v, &fmt).or_else(|_| time::OffsetDateTime::parse(&v.replace("GMT", "+0000"), &fmt)).ok()?;
    let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64 - now_ms;
    Some(Duration::from_millis(ms.max(0) as u64))
}
