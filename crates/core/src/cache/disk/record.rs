//! One entry of the shared cache as it is stored: a small JSON object. Everything read back is
//! checked (version, key, field types, token characters, time order); anything else is garbage
//! and ignored. The token is the only secret in it: it is written from and read into zeroizing
//! buffers.

use crate::clock::WallMs;
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

/// Version of the format; another version is ignored (and replaced at the next write).
const VERSION: u64 = 1;

/// The database credential.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// The credential itself.
    pub secret: Secret,
    /// When it was minted (wall ms).
    pub obtained_ms: WallMs,
    /// When it expires (wall ms).
    pub expiry_ms: WallMs,
}

/// Something learned from the workspace API and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    /// What was learned.
    pub value: String,
    /// When (wall ms).
    pub learned_ms: WallMs,
}

/// A discovered database: the Postgres host it serves and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedTarget {
    /// Lower case.
    pub host: String,
    /// `instance` or `endpoint`.
    pub kind: String,
    /// The instance or endpoint name.
    pub name: String,
    /// When it was discovered (wall ms).
    pub learned_ms: WallMs,
}

/// The last failed mint, for processes that waited on the lock while it ran.
#[derive(Debug, Clone)]
pub struct Failure {
    /// When it failed (wall ms).
    pub at_ms: WallMs,
    /// The error's class.
    pub kind: ErrorKind,
    /// Its HTTP status, if any.
    pub status: Option<u16>,
    /// Its message (never a secret).
    pub message: String,
}

impl Failure {
    /// `e`, failed at `at_ms`.
    pub fn of(e: &Error, at_ms: WallMs) -> Self {
        Failure { at_ms, kind: e.kind(), status: e.status(), message: e.message().to_string() }
    }
    /// The error again.
    pub fn to_error(&self) -> Error {
        let e = Error::new(self.kind, self.message.clone());
        match self.status {
            Some(s) => e.with_http(s, None),
            None => e,
        }
    }
}

/// One entry: what one (workspace, auth material, target) has learned.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The workspace URL (for `lakebase cache list`).
    pub workspace: String,
    /// The auth method (`pat`, `oauth-m2m`, ...).
    pub auth_type: String,
    /// `(kind, name)` of the target, if the key has one.
    pub target: Option<(String, String)>,
    /// The database credential.
    pub token: Option<StoredToken>,
    /// SCIM `/Me` userName.
    pub identity: Option<Learned>,
    /// The target's Postgres host.
    pub pg_host: Option<Learned>,
    /// Postgres hosts resolved to targets (clients without a target).
    pub targets: Vec<LearnedTarget>,
    /// The last failed mint, until the next success.
    pub failure: Option<Failure>,
    /// When the entry was last written.
    pub updated_ms: WallMs,
    /// The process that wrote it.
    pub writer_pid: u32,
}

fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::InvalidArgument => "invalid_argument",
        ErrorKind::InsufficientSize => "insufficient_size",
        ErrorKind::Config => "config",
        ErrorKind::Auth => "auth",
        ErrorKind::Api => "api",
        ErrorKind::Network => "network",
        _ => "internal",
    }
}

fn kind_of(s: &str) -> ErrorKind {
    match s {
        "invalid_argument" => ErrorKind::InvalidArgument,
        "config" => ErrorKind::Config,
        "auth" => ErrorKind::Auth,
        "api" => ErrorKind::Api,
        "network" => ErrorKind::Network,
        _ => ErrorKind::Internal,
    }
}

/// A token as the credential APIs mint it: printable ASCII without spaces (JWT: base64url and
/// dots), at most 16 KiB.
fn plausible_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 * 1024 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// A text value: no control characters (NUL included), bounded.
fn plausible_text(s: &str) -> bool {
    !s.is_empty() && s.len() <= 4096 && !s.chars().any(char::is_control)
}

impl Record {
    /// The file contents for `key_hex`.
    pub fn encode(&self, key_hex: &str) -> Zeroizing<Vec<u8>> {
        let learned = |l: &Learned| json!({"value": l.value, "learned_ms": l.learned_ms});
        let mut m = Map::new();
        m.insert("v".into(), json!(VERSION));
        m.insert("key".into(), json!(key_hex));
        m.insert("workspace".into(), json!(self.workspace));
        m.insert("auth_type".into(), json!(self.auth_type));
        if let Some((k, n)) = &self.target {
            m.insert("target".into(), json!({"kind": k, "name": n}));
        }
        if let Some(i) = &self.identity {
            m.insert("identity".into(), learned(i));
        }
        if let Some(h) = &self.pg_host {
            m.insert("pg_host".into(), learned(h));
        }
        if !self.targets.is_empty() {
            let v: Vec<Value> =
                self.targets.iter().map(|t| json!({"host": t.host, "kind": t.kind, "name": t.name, "learned_ms": t.learned_ms})).collect();
            m.insert("targets".into(), Value::Array(v));
        }
        if let Some(f) = &self.failure {
            m.insert("failure".into(), json!({"at_ms": f.at_ms, "kind": kind_name(f.kind), "status": f.status, "message": f.message}));
        }
        m.insert("updated_ms".into(), json!(self.updated_ms));
        m.insert("writer_pid".into(), json!(self.writer_pid));
        if let Some(t) = &self.token {
            m.insert("token".into(), json!({"secret": t.secret.expose(), "obtained_ms": t.obtained_ms, "expiry_ms": t.expiry_ms}));
        }
        let mut v = Value::Object(m);
        // Room for the whole entry up front: a reallocation would leave a copy of the token behind.
        let mut out = Zeroizing::new(Vec::with_capacity(32 * 1024));
        let _ = serde_json::to_writer(&mut *out, &v);
        out.push(b'\n');
        // Wipe the token's copy inside the JSON value.
        if let Some(Value::String(s)) = v.get_mut("token").and_then(|t| t.get_mut("secret")).map(Value::take) {
            drop(Zeroizing::new(s));
        }
        out
    }

    /// Parse the contents of the file for `key_hex`; `Err` says why it is not a valid entry.
    pub fn decode(data: &[u8], key_hex: &str) -> Result<Record, String> {
        let mut v: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON ({e})"))?;
        // Take the token out first, so its copy is owned by a Secret whatever happens next.
        let secret = match v.get_mut("token").and_then(|t| t.get_mut("secret")).map(Value::take) {
            Some(Value::String(s)) => Some(Secret::new(s)),
            Some(_) => return Err("token.secret is not a string".into()),
            None => None,
        };
        let o = v.as_object().ok_or("not a JSON object")?;
        if o.get("v").and_then(Value::as_u64) != Some(VERSION) {
            return Err(format!("format version {} (expected {VERSION})", o.get("v").map(|v| v.to_string()).unwrap_or_default()));
        }
        if o.get("key").and_then(Value::as_str) != Some(key_hex) {
            return Err("written for another key".into());
        }
        let text = |v: Option<&Value>, what: &str| -> Result<String, String> {
            match v.and_then(Value::as_str) {
                Some(s) if plausible_text(s) => Ok(s.to_string()),
                _ => Err(format!("{what} is missing or invalid")),
            }
        };
        let int = |v: Option<&Value>, what: &str| -> Result<i64, String> {
            v.and_then(Value::as_i64).filter(|n| *n > 0).ok_or_else(|| format!("{what} is missing or invalid"))
        };
        let learned = |v: Option<&Value>, what: &str| -> Result<Option<Learned>, String> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(l) => Ok(Some(Learned { value: text(l.get("value"), what)?, learned_ms: int(l.get("learned_ms"), what)? })),
            }
        };
        let mut r = Record {
            workspace: text(o.get("workspace"), "workspace")?,
            auth_type: text(o.get("auth_type"), "auth_type")?,
            updated_ms: int(o.get("updated_ms"), "updated_ms")?,
            writer_pid: o.get("writer_pid").and_then(Value::as_u64).unwrap_or(0) as u32,
            identity: learned(o.get("identity"), "identity")?,
            pg_host: learned(o.get("pg_host"), "pg_host")?,
            ..Record::default()
        };
        if let Some(t) = o.get("target").filter(|t| !t.is_null()) {
            let kind = text(t.get("kind"), "target.kind")?;
            if kind != "instance" && kind != "endpoint" {
                return Err("target.kind is invalid".into());
            }
            r.target = Some((kind, text(t.get("name"), "target.name")?));
        }
        if let Some(ts) = o.get("targets") {
            for t in ts.as_array().ok_or("targets is not a list")? {
                let kind = text(t.get("kind"), "targets.kind")?;
                if kind != "instance" && kind != "endpoint" {
                    return Err("targets.kind is invalid".into());
                }
                r.targets.push(LearnedTarget {
                    host: text(t.get("host"), "targets.host")?.to_ascii_lowercase(),
                    kind,
                    name: text(t.get("name"), "targets.name")?,
                    learned_ms: int(t.get("learned_ms"), "targets.learned_ms")?,
                });
            }
        }
        if let Some(f) = o.get("failure").filter(|f| !f.is_null()) {
            r.failure = Some(Failure {
                at_ms: int(f.get("at_ms"), "failure.at_ms")?,
                kind: kind_of(f.get("kind").and_then(Value::as_str).unwrap_or("")),
                status: f.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()),
                message: f.get("message").and_then(Value::as_str).unwrap_or("failed").chars().take(2000).collect(),
            });
        }
        if let Some(secret) = secret {
            let t = &o["token"];
            if !plausible_token(secret.expose()) {
                return Err("the token is not a plausible credential".into());
            }
            let obtained_ms = int(t.get("obtained_ms"), "token.obtained_ms")?;
            let expiry_ms = int(t.get("expiry_ms"), "token.expiry_ms")?;
            if expiry_ms <= obtained_ms {
                return Err("the token expires before it was obtained".into());
            }
            r.token = Some(StoredToken { secret, obtained_ms, expiry_ms });
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            workspace: "https://w.example.com".into(),
            auth_type: "pat".into(),
            target: Some(("instance".into(), "db".into())),
            token: Some(StoredToken { secret: Secret::new("eyJhbGciOi.x.y"), obtained_ms: 1_000, expiry_ms: 3_601_000 }),
            identity: Some(Learned { value: "alice@example.com".into(), learned_ms: 1_000 }),
            pg_host: None,
            targets: vec![LearnedTarget {
                host: "h.example.com".into(),
                kind: "endpoint".into(),
                name: "projects/p".into(),
                learned_ms: 5,
            }],
            failure: Some(Failure { at_ms: 7, kind: ErrorKind::Network, status: Some(503), message: "down".into() }),
            updated_ms: 2_000,
            writer_pid: 42,
        }
    }

    #[test]
    fn round_trip() {
        let data = sample().encode("ab");
        let r = Record::decode(&data, "ab").unwrap();
        assert_eq!(r.token.as_ref().unwrap().secret.expose(), "eyJhbGciOi.x.y");
        assert_eq!((r.token.as_ref().unwrap().obtained_ms, r.token.as_ref().unwrap().expiry_ms), (1_000, 3_601_000));
        assert_eq!(r.identity, sample().identity);
        assert_eq!(r.targets, sample().targets);
        assert_eq!(r.target, Some(("instance".into(), "db".into())));
        let f = r.failure.unwrap().to_error();
        assert_eq!((f.kind(), f.status(), f.message()), (ErrorKind::Network, Some(503), "down"));
        assert_eq!((r.updated_ms, r.writer_pid), (2_000, 42));
    }

    #[test]
    fn garbage_truncation_and_foreign_entries_are_rejected() {
        let data = sample().encode("ab");
        assert!(Record::decode(&data, "cd").unwrap_err().contains("another key"));
        for n in [0, 1, data.len() / 2, data.len() - 3] {
            assert!(Record::decode(&data[..n], "ab").is_err(), "truncated at {n}");
        }
        for bad in [
            &b"\x00\x01\x02garbage"[..],
            b"[]",
            b"{\"v\":2,\"key\":\"ab\"}",
            b"{\"v\":1,\"key\":\"ab\",\"workspace\":\"w\",\"auth_type\":\"pat\",\"updated_ms\":1,\"token\":{\"secret\":\"a b\",\"obtained_ms\":1,\"expiry_ms\":2}}",
            b"{\"v\":1,\"key\":\"ab\",\"workspace\":\"w\",\"auth_type\":\"pat\",\"updated_ms\":1,\"token\":{\"secret\":\"ab\",\"obtained_ms\":5,\"expiry_ms\":2}}",
            b"{\"v\":1,\"key\":\"ab\",\"workspace\":\"w\",\"auth_type\":\"pat\",\"updated_ms\":1,\"token\":{\"secret\":7}}",
            b"{\"v\":1,\"key\":\"ab\",\"workspace\":\"w\",\"auth_type\":\"pat\",\"updated_ms\":1,\"identity\":{\"value\":\"a\\u0000b\",\"learned_ms\":1}}",
        ] {
            assert!(Record::decode(bad, "ab").is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
