//! Shared plumbing for methods that produce expiring tokens: a [`TokenSource`] fetches one token,
//! [`CachedCredentials`] keeps it in a [`TokenCache`] (refreshed ahead of expiry, never used within
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

/// A [`TokenSource`] behind a [`TokenCache`], as the `Authorization` header.
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

/// `"<type> <token>"`, with `bearer` in any case normalised to `Bearer` (as golang/oauth2).
pub fn header_value(token_type: Option<&str>, token: &str) -> Secret {
    let ty = token_type.filter(|s| !s.is_empty()).unwrap_or("Bearer");
    let ty = if ty.eq_ignore_ascii_case("bearer") { "Bearer" } else { ty };
    Secret::new(format!("{ty} {token}"))
}

/// A non-empty string field, or an error naming it (never its value).
pub fn token_field<'a>(v: &'a serde_json::Value, key: &str, what: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::auth(format!("{what}: the response has no \"{key}\"")))
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
    let e = crate::api::errors::from_response(resp, what);
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
        assert_eq!(header_value(Some("bearer"), "t").expose(), "Bearer t");
        assert_eq!(header_value(None, "t").expose(), "Bearer t");
        assert_eq!(header_value(Some("MAC"), "t").expose(), "MAC t");
    }
}

/// `YYYY-MM-DD HH:MM:SS[.fraction]` in the local time zone (the Azure CLI's `expiresOn`, the
/// Python/Java SDKs' reading of CLI expiries) → Unix milliseconds.
pub fn parse_local_datetime_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i32>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i32>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if !frac.bytes().all(|b| b.is_ascii_digit()) || !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let ms = if frac.is_empty() { 0 } else { format!("{:0<3}", &frac[..frac.len().min(3)]).parse::<i64>().ok()? };
    // SAFETY: a zeroed `tm` is valid; mktime only reads and normalises it.
    let secs = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = da;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = se;
        tm.tm_isdst = -1;
        libc::mktime(&mut tm)
    };
    if secs == -1 {
        return None;
    }
    Some(secs as i64 * 1000 + ms)
}

/// An expiry as the SDKs accept it from CLIs: RFC 3339 (with or without fraction), else a local
/// `YYYY-MM-DD HH:MM:SS[.fraction]`.
pub fn parse_expiry_ms(s: &str) -> Option<i64> {
    crate::api::parse_rfc3339_ms(s).or_else(|| parse_local_datetime_ms(s))
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn expiry_formats() {
        assert_eq!(parse_expiry_ms("2026-08-19T12:00:00Z"), Some(1_787_140_800_000));
        assert_eq!(parse_expiry_ms("2026-08-19T12:00:00.123456789Z"), Some(1_787_140_800_123));
        // Local times: compare with the same instant through mktime's own zone.
        let a = parse_expiry_ms("2026-08-19 12:00:00").unwrap();
        let b = parse_expiry_ms("2026-08-19 12:00:00.5").unwrap();
        assert_eq!(b - a, 500);
        assert_eq!(parse_expiry_ms("2026-08-19 12:00:01.123456").unwrap() - a, 1123);
        assert!((a - 1_787_140_800_000).abs() <= 14 * 3600 * 1000);
        assert_eq!(parse_expiry_ms("tomorrow"), None);
        assert_eq!(parse_expiry_ms("2026-13-19 12:00:00"), None);
    }
}
