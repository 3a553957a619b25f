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
    let retry_after = super::retry::parse_retry_after(resp.header("Retry-After"), now);
    Error::new(kind, msg).with_http(resp.status, code).with_retry_after(retry_after)
}

/// The error code of the private-link redirect (PY errors/private_link.py).
pub const PRIVATE_LINK_ERROR_CODE: &str = "PRIVATE_LINK_VALIDATION_ERROR";

/// A redirect to `/login.html?error=private-link-validation-error`: the workspace has private
/// connectivity and this network cannot reach it. The SDKs' error (HTTP 403,
/// `PRIVATE_LINK_VALIDATION_ERROR`) with their per-cloud explanation; the cloud comes from the
/// host name of `url` (AWS unless it is an Azure or GCP Databricks zone), as in the SDKs.
pub fn private_link_error(resp: &Response, url: &str) -> Option<Error> {
    if !(300..400).contains(&resp.status) {
        return None;
    }
    let base = url::Url::parse(url).ok()?;
    let loc = base.join(resp.header("Location")?).ok()?;
    if loc.path() != "/login.html" || !loc.query().unwrap_or("").contains("error=private-link-validation-error") {
        return None;
    }
    let host = base.host_str().unwrap_or("").to_ascii_lowercase();
    let (service, endpoint, page) = if [".azuredatabricks.net", ".databricks.azure.us", ".databricks.azure.cn"]
        .iter()
        .any(|z| host.ends_with(z))
    {
        (
            "Azure Private Link",
            "Azure Private Link endpoint",
            "https://learn.microsoft.com/en-us/azure/databricks/security/network/classic/private-link-standard#authentication-troubleshooting",
        )
    } else if host.ends_with(".gcp.databricks.com") {
        (
            "Private Service Connect",
            "GCP VPC endpoint",
            "https://docs.gcp.databricks.com/en/security/network/classic/private-service-connect.html",
        )
    } else {
        ("AWS PrivateLink", "AWS VPC endpoint", "https://docs.databricks.com/en/security/network/classic/privatelink.html")
    };
    let msg = format!(
        "HTTP 403 {PRIVATE_LINK_ERROR_CODE}: The requested workspace has {service} enabled and is not accessible from the current network. Ensure that {service} is properly configured and that your device has access to the {endpoint}. For more information, see {page}."
    );
    Some(Error::new(ErrorKind::Auth, msg).with_http(403, Some(PRIVATE_LINK_ERROR_CODE.to_string())))
}

/// `(error_code, message)` from any of the known body shapes; both trimmed, length-limited and
/// with control characters escaped (ANSI/OSC sequences, newlines that would forge log lines), so
/// server text can go into messages, logs and terminals. (The secrets the request carried were
/// already replaced in the body by the HTTP client.)
pub fn parse_body(status: u16, body: &[u8]) -> (Option<String>, String) {
    let (code, message) = parse_body_raw(status, body);
    (code.map(|c| clip_to(&c, 64)), message)
}

fn parse_body_raw(status: u16, body: &[u8]) -> (Option<String>, String) {
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
    clip_to(s, 512)
}

/// Trimmed, control characters escaped, at most `max` bytes (plus `...`).
fn clip_to(s: &str, max: usize) -> String {
    let s = crate::sanitize::escape_controls(s.trim());
    if s.len() <= max {
        return s.into_owned();
    }
    let mut end = max;
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
    fn control_characters_in_server_text_are_escaped() {
        let body = serde_json::json!({"error_code": "BAD\u{1b}[2J", "message": "\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}\n2026-01-01T00:00:00Z INFO lakebase: forged\r\nend"});
        let (code, msg) = parse_body(400, body.to_string().as_bytes());
        assert_eq!(code.as_deref(), Some("BAD\\x1b[2J"));
        assert_eq!(msg, "\\x1b[31mred\\x1b[0m \\x1b]0;title\\x07\\n2026-01-01T00:00:00Z INFO lakebase: forged\\r\\nend");
        assert!(!msg.chars().any(char::is_control));
        let (_, msg) = parse_body(502, b"bad\x1b[1mgateway\n\nmore");
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
    }

    #[test]
    fn private_link_redirect_per_cloud() {
        let redirect = |loc: &str| Response { status: 302, headers: vec![("Location".into(), loc.into())], body: vec![] };
        let r = redirect("/login.html?error=private-link-validation-error");
        let e = private_link_error(&r, "https://dbc-1.cloud.databricks.com/api/2.0/database/credentials").unwrap();
        assert_eq!((e.kind(), e.status(), e.error_code()), (ErrorKind::Auth, Some(403), Some(PRIVATE_LINK_ERROR_CODE)));
        assert!(e.message().contains("has AWS PrivateLink enabled and is not accessible from the current network"), "{e}");
        let e = private_link_error(&r, "https://adb-1.2.azuredatabricks.net/api").unwrap();
        assert!(e.message().contains("Azure Private Link enabled") && e.message().contains("learn.microsoft.com"), "{e}");
        let e = private_link_error(&r, "https://1.2.gcp.databricks.com/api").unwrap();
        assert!(e.message().contains("Private Service Connect enabled"), "{e}");
        let abs = redirect("https://dbc-1.cloud.databricks.com/login.html?x=1&error=private-link-validation-error");
        assert!(private_link_error(&abs, "https://dbc-1.cloud.databricks.com/api").is_some());
        assert!(private_link_error(&redirect("/login.html"), "https://h/api").is_none());
        assert!(private_link_error(&redirect("/other?error=private-link-validation-error"), "https://h/api").is_none());
        let ok = Response {
            status: 200,
            headers: vec![("Location".into(), "/login.html?error=private-link-validation-error".into())],
            body: vec![],
        };
        assert!(private_link_error(&ok, "https://h/api").is_none());
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
