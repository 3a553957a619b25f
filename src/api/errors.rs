//! Turning a non-2xx response into an [`Error`], reading every error body shape the Databricks
//! SDKs read (apierr/errors.go `parseErrorFromResponse`, PY errors/deserializer.py).

use crate::error::{Error, ErrorKind};
use crate::http::Response;

/// Parse `resp` (non-2xx) into an error whose message reads
/// `"<what>: HTTP 404 RESOURCE_DOES_NOT_EXIST: Database instance 'x' does not exist"`.
pub fn from_response(resp: &Response, what: &str) -> Error {
    let (code, message) = parse_body(resp.status, &resp.body);
    let kind = match resp.status {
        401 | 403 => ErrorKind::Auth,
        _ => ErrorKind::Api,
    };
    let mut msg = format!("{what}: HTTP {}", resp.status);
    if let Some(c) = &code {
        msg.push(' ');
        msg.push_str(c);
    }
    if !message.is_empty() {
        msg.push_str(": ");
        msg.push_str(&message);
    }
    // An HTTP-date Retry-After is relative to now (with 0 it would mean decades).
    let now = crate::clock::Clock::wall_ms(&crate::clock::SystemClock);
    let retry_after = crate::http::parse_retry_after(resp.header("Retry-After"), now);
    Error::new(kind, msg).with_http(resp.status, code).with_retry_after(retry_after)
}

/// `(error_code, message)` from any of the known body shapes; both trimmed and length-limited.
pub fn parse_body(status: u16, body: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(text) {
        let s = |k: &str| -> Option<String> {
            match o.get(k)? {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        // Standard: {"error_code", "message"}; OAuth (RFC 6749): {"error", "error_description"};
        // API 1.2: {"error"}; SCIM: {"detail", "status", "scimType"}; Okta-style errorCode/errorSummary.
        if let Some(code) = s("error_code") {
            // Some services send the HTTP status as an integer code: name it as the SDKs do.
            let code = if code.bytes().all(|b| b.is_ascii_digit()) { status_code_name(status).to_string() } else { code };
            return (Some(code), clip(&s("message").unwrap_or_default()));
        }
        if let Some(desc) = s("error_description").or_else(|| s("errorSummary")) {
            return (s("error").or_else(|| s("errorCode")), clip(&desc));
        }
        if let Some(detail) = s("detail") {
            let code = s("status").map(|st| format!("SCIM_{st}"));
            return (code, clip(&detail));
        }
        if let Some(e) = s("error") {
            return (None, clip(&e));
        }
        if let Some(m) = s("message") {
            return (None, clip(&m));
        }
    }
    if let Some(start) = text.find("<pre>") {
        let rest = &text[start + 5..];
        let end = rest.find("</pre>").unwrap_or(rest.len());
        return (Some(status_code_name(status).to_string()), clip(rest[..end].trim()));
    }
    if text.is_empty() || text.starts_with('<') {
        return (Some(status_code_name(status).to_string()), String::new());
    }
    // Plain "ERROR_CODE: message".
    if let Some((c, m)) = text.split_once(": ") {
        if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_' || ch.is_ascii_digit()) {
            return (Some(c.to_string()), clip(m));
        }
    }
    (Some(status_code_name(status).to_string()), clip(text))
}

fn clip(s: &str) -> String {
    const MAX: usize = 512;
    let s = s.trim();
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

pub fn status_code_name(status: u16) -> &'static str {
    match status {
        400 => "BAD_REQUEST",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "RESOURCE_CONFLICT",
        429 => "TOO_MANY_REQUESTS",
        499 => "CANCELLED",
        500 => "INTERNAL_ERROR",
        501 => "NOT_IMPLEMENTED",
        503 => "TEMPORARILY_UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shapes() {
        assert_eq!(
            parse_body(404, br#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Database instance 'x' does not exist."}"#),
            (Some("RESOURCE_DOES_NOT_EXIST".into()), "Database instance 'x' does not exist.".into())
        );
        assert_eq!(
            parse_body(403, br#"{"error_code":403,"message":"Invalid access token."}"#),
            (Some("PERMISSION_DENIED".into()), "Invalid access token.".into())
        );
        assert_eq!(
            parse_body(401, br#"{"error":"invalid_client","error_description":"Client authentication failed"}"#),
            (Some("invalid_client".into()), "Client authentication failed".into())
        );
        assert_eq!(parse_body(400, br#"{"error":"bad thing"}"#), (None, "bad thing".into()));
        assert_eq!(
            parse_body(404, br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"User not found","status":"404"}"#),
            (Some("SCIM_404".into()), "User not found".into())
        );
        assert_eq!(parse_body(500, b"<html><pre>boom</pre></html>"), (Some("INTERNAL_ERROR".into()), "boom".into()));
        assert_eq!(parse_body(503, b""), (Some("TEMPORARILY_UNAVAILABLE".into()), "".into()));
        assert_eq!(parse_body(400, b"INVALID_PARAMETER_VALUE: nope"), (Some("INVALID_PARAMETER_VALUE".into()), "nope".into()));
        assert_eq!(parse_body(502, b"bad gateway"), (Some("UNKNOWN".into()), "bad gateway".into()));
        let long = vec![b'x'; 5000];
        assert!(parse_body(500, &long).1.len() < 600);
    }

    #[test]
    fn message_and_kind() {
        let r = Response { status: 403, headers: vec![], body: br#"{"error_code":"PERMISSION_DENIED","message":"no"}"#.to_vec() };
        let e = from_response(&r, "POST /api/2.0/database/credentials");
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert_eq!(e.message(), "POST /api/2.0/database/credentials: HTTP 403 PERMISSION_DENIED: no");
        assert_eq!(e.error_code(), Some("PERMISSION_DENIED"));
        let r = Response { status: 429, headers: vec![("Retry-After".into(), "3".into())], body: vec![] };
        let e = from_response(&r, "x");
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(3)));
    }
}
