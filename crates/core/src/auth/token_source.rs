//! Shared plumbing for methods that produce expiring tokens: a [`TokenSource`] fetches one token,
//! [`CachedCredentials`] keeps it in a `TokenCache` (refreshed ahead of expiry, never used within
//! 40 s of it) and serves it as the `Authorization` header.

use super::{AuthContext, Credentials};
use crate::cache::{Fetched, RefreshPolicy, TokenCache};
use crate::error::{Error, ErrorKind, Result};
use crate::http::Response;
use crate::secret::Secret;

/// Fetches one token (`"<type> <token>"` and its absolute expiry). Thread-safe.
pub trait TokenSource: Send + Sync {
    fn token(&self) -> Result<Fetched>;
}

/// A [`TokenSource`] behind a `TokenCache`, as the `Authorization` header.
pub struct CachedCredentials<S> {
    name: &'static str,
    source: S,
    cache: TokenCache,
}

impl<S: TokenSource> CachedCredentials<S> {
    pub fn new(name: &'static str, source: S, ctx: &AuthContext) -> Self {
        CachedCredentials { name, source, cache: TokenCache::new(ctx.clock.clone(), RefreshPolicy::workspace_token()) }
    }
    /// Like [`new`](Self::new), with a token already obtained (e.g. while configuring).
    pub fn primed(name: &'static str, source: S, ctx: &AuthContext, first: Fetched) -> Self {
        let c = Self::new(name, source, ctx);
        let slot = std::sync::Mutex::new(Some(first));
        let _ = c.cache.get_fresh(&|| crate::sync::lock(&slot).take().ok_or_else(|| Error::internal("token already used")));
        c
    }
    pub fn source(&self) -> &S {
        &self.source
    }
    /// The current header value, fetching when needed.
    pub fn header(&self) -> Result<Secret> {
        Ok(self.cache.get_fresh(&|| self.source.token())?.secret.clone())
    }
}

impl<S: TokenSource> Credentials for CachedCredentials<S> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn authorization(&self) -> Result<Secret> {
        self.header()
    }
}

/// `"<type> <token>"`, with `bearer` in any case normalised to `Bearer` (as golang/oauth2). A
/// token type that is not an HTTP auth-scheme name (letters, digits, `-._~+`) is an error: it
/// would go into the `Authorization` header.
pub fn header_value(token_type: Option<&str>, token: &str, what: &str) -> Result<Secret> {
    let ty = token_type.filter(|s| !s.is_empty()).unwrap_or("Bearer");
    let ty = if ty.eq_ignore_ascii_case("bearer") { "Bearer" } else { ty };
    if ty.len() > 32 || !ty.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+')) {
        return Err(Error::api(format!("{what}: the response's \"token_type\" is not an authentication scheme name")));
    }
    Ok(Secret::new(format!("{ty} {token}")))
}

/// The longest token accepted from a server or a helper (Azure AD tokens with many group claims
/// reach about 10 KiB).
pub const MAX_TOKEN_LEN: usize = 64 << 10;

/// A token a server or helper sent must look like one: the RFC 6750 `b64token` characters
/// (letters, digits, `-._~+/`, `=`), which covers JWTs, base64, base64url and hex. Whitespace,
/// control bytes, escape sequences, a byte-order mark or any non-ASCII byte make it an error that
/// names the field and the byte position, never the token: such a token would be refused as a
/// header or a password, or carry terminal escapes into whatever prints it.
pub fn check_token(token: &str, key: &str, what: &str) -> Result<()> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::api(format!("{what}: the response's \"{key}\" is {} bytes long, not a token", token.len())));
    }
    match token.char_indices().find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '='))) {
        None => Ok(()),
        Some((i, c)) => Err(Error::api(format!(
            "{what}: the response's \"{key}\" is not a usable token: byte {} is {}; a token holds only letters, digits and - . _ ~ + / =",
            i + 1,
            crate::sanitize::describe(c)
        ))),
    }
}

/// A non-empty token field, checked with [`check_token`], or an error naming it (never its value).
pub fn token_field<'a>(v: &'a serde_json::Value, key: &str, what: &str) -> Result<&'a str> {
    let t = v
        .get(key)
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::auth(format!("{what}: the response has no \"{key}\"")))?;
    check_token(t, key, what)?;
    Ok(t)
}

/// An integer that may arrive as a JSON number or a numeric string (Go `json.Number`).
pub fn number_field(v: &serde_json::Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
        _ => None,
    }
}

/// Expiry from `expires_on` (Unix seconds), else `expires_in` (seconds from `now_ms`).
pub fn expiry_ms(v: &serde_json::Value, now_ms: i64, what: &str) -> Result<i64> {
    if let Some(on) = number_field(v, "expires_on").filter(|s| *s > 0) {
        return Ok(on.saturating_mul(1000));
    }
    if let Some(secs) = number_field(v, "expires_in").filter(|s| *s > 0) {
        return Ok(now_ms.saturating_add(secs.saturating_mul(1000)));
    }
    Err(Error::auth(format!("{what}: the response has no valid \"expires_on\" or \"expires_in\"")))
}

/// An error for a failed token request: 4xx (but 429) are auth failures, the rest keep their kind.
pub fn token_error(resp: &Response, what: &str) -> Error {
    let e = crate::http::apierr::from_response(resp, what);
    let kind = if (400..500).contains(&resp.status) && resp.status != 429 { ErrorKind::Auth } else { e.kind() };
    e.with_kind(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_regression_huge_expiry_saturates() {
        let v = serde_json::json!({"expires_in": "99999999999999999999"});
        assert_eq!(expiry_ms(&v, 1_800_000_000_000, "x").unwrap(), i64::MAX);
        let v = serde_json::json!({"expires_in": i64::MAX});
        assert_eq!(expiry_ms(&v, 1_800_000_000_000, "x").unwrap(), i64::MAX);
        let v = serde_json::json!({"expires_on": 1e300});
        assert_eq!(expiry_ms(&v, 0, "x").unwrap(), i64::MAX);
    }

    #[test]
    fn numbers_and_expiry() {
        let v = serde_json::json!({"expires_on": "1700000000", "expires_in": 10});
        assert_eq!(expiry_ms(&v, 5, "x").unwrap(), 1_700_000_000_000);
        let v = serde_json::json!({"expires_in": "3599"});
        assert_eq!(expiry_ms(&v, 5, "x").unwrap(), 5 + 3_599_000);
        let v = serde_json::json!({"expires_on": 1700000000});
        assert_eq!(expiry_ms(&v, 5, "x").unwrap(), 1_700_000_000_000);
        assert!(expiry_ms(&serde_json::json!({}), 0, "x").is_err());
        assert_eq!(header_value(Some("bearer"), "t", "x").unwrap().expose(), "Bearer t");
        assert_eq!(header_value(None, "t", "x").unwrap().expose(), "Bearer t");
        assert_eq!(header_value(Some("MAC"), "t", "x").unwrap().expose(), "MAC t");
        assert!(header_value(Some("Bearer\r\nX-Evil: 1"), "t", "x").is_err());
    }

    #[test]
    fn tokens_must_look_like_tokens() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_~+/==";
        assert!(check_token(jwt, "token", "x").is_ok());
        for (bad, byte, what) in [
            (format!("{jwt}\n"), jwt.len() + 1, "a line feed (0x0A)"),
            (format!("{jwt}\r\n"), jwt.len() + 1, "a carriage return (0x0D)"),
            (format!(" {jwt}"), 1, "a space"),
            (format!("{}\t{}", &jwt[..10], &jwt[10..]), 11, "a tab (0x09)"),
            (format!("{}\u{1}{}", &jwt[..10], &jwt[10..]), 11, "a control character (0x01)"),
            (format!("{}\0{}", &jwt[..10], &jwt[10..]), 11, "a NUL byte (0x00)"),
            (format!("{}\u{7f}{}", &jwt[..10], &jwt[10..]), 11, "a DEL character (0x7F)"),
            (format!("{}é{}", &jwt[..10], &jwt[10..]), 11, "a non-ASCII character"),
            (format!("\u{feff}{jwt}"), 1, "a byte-order mark (U+FEFF)"),
            (format!("\x1b[31m{jwt}\x1b[0m"), 1, "an escape character (0x1B)"),
        ] {
            let e = check_token(&bad, "token", "POST /x").unwrap_err();
            assert_eq!(e.message(), format!("POST /x: the response's \"token\" is not a usable token: byte {byte} is {what}; a token holds only letters, digits and - . _ ~ + / ="));
            assert!(!e.message().contains(&jwt[12..]));
        }
        assert!(check_token(&"a".repeat(MAX_TOKEN_LEN + 1), "token", "x").unwrap_err().message().contains("bytes long"));
        let v = serde_json::json!({"access_token": "tok\n"});
        assert!(token_field(&v, "access_token", "x").is_err());
    }
}
