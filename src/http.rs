//! The one HTTP client: ureq over rustls (no OpenSSL; the library lives inside processes that carry
//! their own), no background threads, a connection pool that is dropped after `fork()`.
//!
//! Policy enforced here for every caller: https to the workspace, plain http only to loopback;
//! bounded connect/read timeouts; retries of throttling and transient failures with exponential
//! backoff and jitter, honouring `Retry-After`, inside a total deadline.

use crate::clock::SharedClock;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const USER_AGENT: &str = concat!("liblakebase/", env!("CARGO_PKG_VERSION"));
const MAX_BODY: u64 = 4 << 20;

/// What the caller wants to send.
pub enum Body {
    Empty,
    Json(serde_json::Value),
    Form(Vec<(&'static str, Secret)>),
}

pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// Sent as `Authorization`; never logged.
    pub authorization: Option<Secret>,
    pub body: Body,
}

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Request { method: "GET", url: url.into(), headers: vec![], authorization: None, body: Body::Empty }
    }
    pub fn post_json(url: impl Into<String>, v: serde_json::Value) -> Self {
        Request { method: "POST", url: url.into(), headers: vec![], authorization: None, body: Body::Json(v) }
    }
    pub fn post_form(url: impl Into<String>, form: Vec<(&'static str, Secret)>) -> Self {
        Request { method: "POST", url: url.into(), headers: vec![], authorization: None, body: Body::Form(form) }
    }
    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    pub fn auth(mut self, value: Secret) -> Self {
        self.authorization = Some(value);
        self
    }
    /// `METHOD path` for messages: no query string, no host credentials.
    pub fn describe(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(u) => format!("{} {}", self.method, u.path()),
            Err(_) => self.method.to_string(),
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn json(&self, what: &str) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::api(format!("{what}: the response is not valid JSON ({e}; HTTP {}, {} bytes)", self.status, self.body.len()))
        })
    }
}

/// Timeouts and retry budget.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Total time one logical call may take, retries included.
    pub deadline: Duration,
    /// Extra PEM CA bundle trusted in addition to the system store (and SSL_CERT_FILE).
    pub ca_file: Option<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            ca_file: None,
        }
    }
}

/// A thread-safe HTTP client. Cheap to share behind an `Arc`.
pub struct HttpClient {
    opts: HttpOptions,
    clock: SharedClock,
    /// (fork generation, agent); rebuilt in a forked child so pooled sockets are never shared.
    agent: parking_lot::Mutex<Option<(u64, ureq::Agent)>>,
}

impl HttpClient {
    pub fn new(opts: HttpOptions, clock: SharedClock) -> Self {
        HttpClient { opts, clock, agent: parking_lot::Mutex::new(None) }
    }

    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    fn agent(&self) -> Result<ureq::Agent> {
        let gen = crate::fork::generation();
        // try_lock_for: a lock held by a thread that no longer exists after fork() must not hang us.
        let mut slot = match self.agent.try_lock_for(Duration::from_secs(5)) {
            Some(s) => s,
            None => return self.build_agent(),
        };
        if let Some((g, a)) = slot.as_ref() {
            if *g == gen {
                return Ok(a.clone());
            }
        }
        let a = self.build_agent()?;
        *slot = Some((gen, a.clone()));
        Ok(a)
    }

    fn build_agent(&self) -> Result<ureq::Agent> {
        Ok(ureq::AgentBuilder::new()
            .timeout_connect(self.opts.connect_timeout)
            .timeout_read(self.opts.read_timeout)
            .timeout_write(self.opts.read_timeout)
            .redirects(0)
            .user_agent(USER_AGENT)
            .tls_config(tls_config(self.opts.ca_file.as_deref())?)
            .build())
    }

    /// One attempt. Any HTTP status is `Ok`; only transport failures are errors.
    pub fn send_once(&self, req: &Request) -> Result<Response> {
        check_url(&req.url)?;
        let agent = self.agent()?;
        let mut r = agent.request(req.method, &req.url).set("Accept", "application/json");
        for (k, v) in &req.headers {
            r = r.set(k, v);
        }
        if let Some(a) = &req.authorization {
            r = r.set("Authorization", a.expose());
        }
        let what = req.describe();
        crate::log_debug!("http: {what}");
        let result = match &req.body {
            Body::Empty => r.call(),
            Body::Json(v) => {
                let bytes = zeroize::Zeroizing::new(serde_json::to_vec(v).unwrap_or_default());
                r.set("Content-Type", "application/json").send_bytes(&bytes)
            }
            Body::Form(pairs) => {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs {
                    ser.append_pair(k, v.expose());
                }
                let body = zeroize::Zeroizing::new(ser.finish());
                r.set("Content-Type", "application/x-www-form-urlencoded").send_bytes(body.as_bytes())
            }
        };
        let resp = match result {
            Ok(resp) => resp,
            Err(ureq::Error::Status(_, resp)) => resp,
            Err(ureq::Error::Transport(t)) => return Err(transport_error(&what, &req.url, &t)),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_BODY)
            .read_to_end(&mut body)
            .map_err(|e| Error::network(format!("{what}: reading the response failed: {}", io_kind(&e))))?;
        crate::log_debug!("http: {what} -> {status} ({} bytes)", body.len());
        Ok(Response { status, headers, body })
    }

    /// Send with retries on 429/503/transient network errors, within `self.opts.deadline`.
    /// Returns the last response (any status) or the last transport error.
    pub fn send(&self, req: &Request) -> Result<Response> {
        self.send_within(req, self.opts.deadline)
    }

    pub fn send_within(&self, req: &Request, deadline: Duration) -> Result<Response> {
        let start = self.clock.monotonic();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = self.send_once(req);
            let retry_after = match &outcome {
                Ok(resp) if matches!(resp.status, 429 | 503) => Some(parse_retry_after(resp.header("Retry-After"), self.clock.wall_ms())),
                Ok(_) => return outcome,
                Err(e) if e.kind() == ErrorKind::Network => Some(None),
                Err(_) => return outcome,
            };
            let delay = backoff(attempt, retry_after.flatten());
            let elapsed = self.clock.monotonic().saturating_sub(start);
            if elapsed + delay >= deadline {
                return outcome;
            }
            crate::log_info!("http: {} attempt {attempt} failed ({}); retrying in {:?}", req.describe(), summarize(&outcome), delay);
            self.clock.sleep(delay);
        }
    }
}

fn summarize(r: &Result<Response>) -> String {
    match r {
        Ok(resp) => format!("HTTP {}", resp.status),
        Err(e) => e.message().to_string(),
    }
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
    let t = time::OffsetDateTime::parse(v, &fmt)
        .or_else(|_| time::OffsetDateTime::parse(&v.replace("GMT", "+0000"), &fmt))
        .ok()?;
    let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64 - now_ms;
    Some(Duration::from_millis(ms.max(0) as u64))
}

fn io_kind(e: &std::io::Error) -> String {
    format!("{:?}", e.kind())
}

fn transport_error(what: &str, url: &str, t: &ureq::Transport) -> Error {
    use ureq::ErrorKind as K;
    let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(|h| h.to_string())).unwrap_or_default();
    let detail = t.to_string();
    let kind = match t.kind() {
        K::InvalidUrl | K::UnknownScheme | K::InvalidProxyUrl => ErrorKind::Config,
        _ => ErrorKind::Network,
    };
    // ureq's Display includes the URL; ours never carries secrets (they travel in headers/bodies).
    Error::new(kind, format!("{what} to {host} failed: {detail}"))
}

/// Credentials travel over https, or over http only to a loopback address.
pub fn check_url(raw: &str) -> Result<()> {
    let u = url::Url::parse(raw).map_err(|e| Error::config(format!("invalid URL {raw:?}: {e}")))?;
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        "http" => Err(Error::config(format!(
            "refusing to send credentials over plain http to {}: use https (plain http is allowed only to loopback addresses)",
            u.host_str().unwrap_or("")
        ))),
        s => Err(Error::config(format!("unsupported URL scheme {s:?} in {raw:?}"))),
    }
}

pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Trust the system store (rustls-native-certs honours SSL_CERT_FILE / SSL_CERT_DIR) plus `ca_file`.
fn tls_config(ca_file: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    static SYSTEM: OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> = OnceLock::new();
    let system = SYSTEM.get_or_init(|| rustls_native_certs::load_native_certs().certs);
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system.iter().cloned());
    if let Some(path) = ca_file {
        let data = std::fs::read(path).map_err(|e| Error::config(format!("cannot read CA file {path:?}: {e}")))?;
        let mut n = 0;
        for cert in rustls_pemfile::certs(&mut data.as_slice()) {
            let cert = cert.map_err(|e| Error::config(format!("CA file {path:?} is not valid PEM: {e}")))?;
            roots.add(cert).map_err(|e| Error::config(format!("CA file {path:?}: bad certificate: {e}")))?;
            n += 1;
        }
        if n == 0 {
            return Err(Error::config(format!("CA file {path:?} holds no PEM certificates")));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_to_loopback() {
        assert!(check_url("https://x.cloud.databricks.com/api").is_ok());
        assert!(check_url("http://127.0.0.1:8080/api").is_ok());
        assert!(check_url("http://127.9.0.1/api").is_ok());
        assert!(check_url("http://[::1]:80/").is_ok());
        assert!(check_url("http://localhost:1/").is_ok());
        let e = check_url("http://x.cloud.databricks.com/api").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("plain http"), "{e}");
        assert!(check_url("ftp://x/").is_err());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after(Some("7"), 0), Some(Duration::from_secs(7)));
        let now = 1_445_412_480_000; // 2015-10-21T07:28:00Z
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:10 GMT"), now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after(Some("soon"), 0), None);
        assert_eq!(parse_retry_after(None, 0), None);
    }

    #[test]
    fn backoff_grows_and_respects_retry_after() {
        let a = backoff(1, None);
        assert!(a >= Duration::from_millis(250) && a <= Duration::from_millis(313));
        let b = backoff(3, None);
        assert!(b >= Duration::from_millis(1000) && b <= Duration::from_millis(1250));
        assert!(backoff(30, None) <= Duration::from_millis(12_500));
        assert_eq!(backoff(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
    }
}
