//! The one HTTP client: ureq over rustls (no OpenSSL; the library lives inside processes that carry
//! their own), no long-lived threads, a connection pool that is dropped after `fork()`.
//!
//! Policy enforced here for every caller: https to the workspace, plain http only to loopback;
//! bounded connect/read timeouts; retries of throttling and transient failures with exponential
//! backoff and jitter, honouring `Retry-After`, inside a total deadline.
//!
//! Deadlines depend on who is waiting (see [`scope`]): a *foreground* operation (a caller blocked
//! in `lakebase_get_password` or `PQconnectdb`) gets [`HttpOptions::foreground_deadline`] (15 s)
//! for everything it does, OAuth token and credential call and all retries together; the
//! background refresher gets [`HttpOptions::deadline`] (60 s). Each attempt's timeout is bounded
//! by what is left, so a server that accepts and never answers cannot hold a caller past it.
//! DNS is bounded too: `getaddrinfo` cannot be cancelled and follows resolv.conf's own
//! timeout/attempts (30 s and more with a dead name server), so host names are resolved on a
//! short-lived helper thread that the caller stops waiting for when the attempt's time is up.

use crate::clock::{Clock, SharedClock};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use arc_swap::ArcSwapOption;
use std::cell::Cell;
use std::io::Read;
use std::sync::Arc;
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

/// Response bodies carry tokens: wiped when the response is dropped.
impl Drop for Response {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.body);
    }
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
    /// TCP connect (plus TLS handshake) budget of one attempt.
    pub connect_timeout: Duration,
    /// Waiting for the response of one attempt.
    pub read_timeout: Duration,
    /// Total time one background operation may take, retries included.
    pub deadline: Duration,
    /// Total time one foreground operation (a caller is waiting) may take, retries included.
    pub foreground_deadline: Duration,
    /// Extra PEM CA bundle trusted in addition to the system store (and SSL_CERT_FILE).
    pub ca_file: Option<String>,
}

/// Default total deadline of a foreground operation.
pub const FOREGROUND_DEADLINE: Duration = Duration::from_secs(15);

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            foreground_deadline: FOREGROUND_DEADLINE,
            ca_file: None,
        }
    }
}

/// Who is waiting for an operation; decides its total deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A caller is blocked until it completes (first password, expired token, `identity`).
    Foreground,
    /// The background refresher: nobody is waiting.
    Background,
}

#[derive(Clone, Copy)]
struct Scope {
    purpose: Purpose,
    /// Start on the operation's clock (monotonic).
    start: Duration,
    /// Optional tighter cap on the whole operation.
    cap: Option<Duration>,
}

thread_local! {
    static SCOPE: Cell<Option<Scope>> = const { Cell::new(None) };
}

/// Run `f` as one logical operation on behalf of `purpose`: every request made inside it on this
/// thread (an OAuth token, the credential call, all retries) shares one deadline counted from
/// here, optionally capped at `cap`. Nested scopes join the outermost one.
pub fn scope<R>(purpose: Purpose, clock: &dyn Clock, cap: Option<Duration>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Scope>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = SCOPE.try_with(|s| s.set(self.0));
        }
    }
    let prev = SCOPE.try_with(|s| s.get()).ok().flatten();
    if prev.is_some() {
        return f();
    }
    let _restore = Restore(None);
    let _ = SCOPE.try_with(|s| s.set(Some(Scope { purpose, start: clock.monotonic(), cap })));
    f()
}

/// The purpose of the operation this thread is in (foreground when none).
pub fn current_purpose() -> Purpose {
    SCOPE.try_with(|s| s.get()).ok().flatten().map_or(Purpose::Foreground, |s| s.purpose)
}

/// A thread-safe HTTP client. Cheap to share behind an `Arc`.
pub struct HttpClient {
    opts: HttpOptions,
    clock: SharedClock,
    /// (fork generation, agent); rebuilt in a forked child so pooled sockets are never shared.
    /// Lock-free, so a thread that held it in the parent at `fork()` cannot block the child.
    agent: ArcSwapOption<(u64, ureq::Agent)>,
}

impl HttpClient {
    pub fn new(opts: HttpOptions, clock: SharedClock) -> Self {
        crate::fork::ensure_registered();
        HttpClient { opts, clock, agent: ArcSwapOption::empty() }
    }

    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    fn agent(&self) -> Result<ureq::Agent> {
        let gen = crate::fork::generation();
        if let Some(cur) = self.agent.load().as_ref() {
            if cur.0 == gen {
                return Ok(cur.1.clone());
            }
        }
        // First use, or first use in a forked child: a new pool. Racing threads may each build
        // one; the last store wins and the others' pools are simply dropped.
        let a = self.build_agent()?;
        self.agent.store(Some(Arc::new((gen, a.clone()))));
        Ok(a)
    }

    fn build_agent(&self) -> Result<ureq::Agent> {
        // Timeouts are set per request (see `send_until`): connect + read, bounded by the deadline.
        Ok(ureq::AgentBuilder::new()
            .redirects(0)
            .user_agent(USER_AGENT)
            .tls_config(tls_config(self.opts.ca_file.as_deref())?)
            .resolver(BoundedResolver)
            .build())
    }

    /// One attempt with the default per-attempt timeout. Any HTTP status is `Ok`; only transport
    /// failures are errors.
    pub fn send_once(&self, req: &Request) -> Result<Response> {
        self.attempt(req, self.opts.connect_timeout.saturating_add(self.opts.read_timeout))
    }

    /// One attempt that gives up after `timeout` (connect, TLS, request and response together).
    fn attempt(&self, req: &Request, timeout: Duration) -> Result<Response> {
        check_url(&req.url)?;
        let agent = self.agent()?;
        let mut r = agent.request(req.method, &req.url).set("Accept", "application/json").timeout(timeout.max(Duration::from_millis(1)));
        for (k, v) in &req.headers {
            r = r.set(k, v);
        }
        if let Some(a) = &req.authorization {
            r = r.set("Authorization", a.expose());
        }
        let what = req.describe();
        crate::log_debug!("http: {what}");
        let _dns = DnsBudget::set(timeout);
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
        // Sized up front so the token-bearing buffer is not reallocated (a freed copy is not wiped).
        let mut body = Vec::with_capacity(16 * 1024);
        resp.into_reader()
            .take(MAX_BODY)
            .read_to_end(&mut body)
            .map_err(|e| Error::network(format!("{what}: reading the response failed: {}", io_kind(&e))))?;
        crate::log_debug!("http: {what} -> {status} ({} bytes)", body.len());
        Ok(Response { status, headers, body })
    }

    /// Send with retries on 429/503/transient network errors, within the deadline of the current
    /// [`scope`] (foreground when there is none). Returns the last response (any status) or the
    /// last transport error.
    pub fn send(&self, req: &Request) -> Result<Response> {
        self.send_until(req, self.scope_end())
    }

    /// [`send`](Self::send) with at most `deadline` from now (and never past the scope's end).
    pub fn send_within(&self, req: &Request, deadline: Duration) -> Result<Response> {
        let end = self.clock.monotonic().saturating_add(deadline).min(self.scope_end());
        self.send_until(req, end)
    }

    /// The end (monotonic) of the operation this thread is in, for handing to another thread
    /// that works on the same operation (see [`send_before`](Self::send_before)).
    pub fn operation_end(&self) -> Duration {
        self.scope_end()
    }

    /// [`send`](Self::send) that ends by `end` (monotonic, from [`operation_end`](Self::operation_end)).
    pub fn send_before(&self, req: &Request, end: Duration) -> Result<Response> {
        self.send_until(req, end)
    }

    /// The end (monotonic) of the operation this thread is in.
    fn scope_end(&self) -> Duration {
        let now = self.clock.monotonic();
        match SCOPE.try_with(|s| s.get()).ok().flatten() {
            Some(sc) => {
                let budget = match sc.purpose {
                    Purpose::Foreground => self.opts.foreground_deadline,
                    Purpose::Background => self.opts.deadline,
                };
                let budget = sc.cap.map_or(budget, |c| c.min(budget));
                sc.start.saturating_add(budget)
            }
            None => now.saturating_add(self.opts.foreground_deadline),
        }
    }

    fn send_until(&self, req: &Request, end: Duration) -> Result<Response> {
        let start = self.clock.monotonic();
        let per_attempt = self.opts.connect_timeout.saturating_add(self.opts.read_timeout);
        let mut attempt: u32 = 0;
        loop {
            let left = end.saturating_sub(self.clock.monotonic());
            if left.is_zero() {
                return Err(Error::network(format!(
                    "{}: no time left within the deadline ({:.1} s spent)",
                    req.describe(),
                    self.clock.monotonic().saturating_sub(start).as_secs_f64()
                )));
            }
            attempt += 1;
            let outcome = self.attempt(req, per_attempt.min(left));
            let retry_after = match &outcome {
                Ok(resp) if matches!(resp.status, 429 | 503) => Some(parse_retry_after(resp.header("Retry-After"), self.clock.wall_ms())),
                Ok(_) => return outcome,
                Err(e) if e.kind() == ErrorKind::Network => Some(None),
                Err(_) => return outcome,
            };
            let delay = backoff(attempt, retry_after.flatten());
            let now = self.clock.monotonic();
            if now.saturating_add(delay) >= end {
                return outcome.map_err(|e| {
                    let spent = now.saturating_sub(start).as_secs_f64();
                    Error::new(e.kind(), format!("{} (gave up after {attempt} attempt(s) in {spent:.1} s)", e.message()))
                });
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

thread_local! {
    /// How long the resolver may take on this thread: the current attempt's timeout.
    static DNS_BUDGET: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// Sets [`DNS_BUDGET`] for one attempt; restores "none" when dropped.
struct DnsBudget;

impl DnsBudget {
    fn set(d: Duration) -> DnsBudget {
        let _ = DNS_BUDGET.try_with(|b| b.set(Some(d)));
        DnsBudget
    }
}

impl Drop for DnsBudget {
    fn drop(&mut self) {
        let _ = DNS_BUDGET.try_with(|b| b.set(None));
    }
}

/// At most this many lookups left running by callers that stopped waiting; past it, new lookups
/// fail at once instead of piling up threads behind a dead name server.
const MAX_ABANDONED_LOOKUPS: usize = 4;
static LOOKUPS_IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// ureq's resolver with a time limit (see the module documentation).
struct BoundedResolver;

impl ureq::Resolver for BoundedResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<std::net::SocketAddr>> {
        let budget = DNS_BUDGET.try_with(|b| b.get()).ok().flatten().unwrap_or(FOREGROUND_DEADLINE);
        resolve_within(netloc, budget, |n| std::net::ToSocketAddrs::to_socket_addrs(n).map(|i| i.collect()))
    }
}

/// Resolve `netloc` (`host:port`) with `lookup`, giving up after `budget`. Literal addresses are
/// parsed in place; names are looked up on a helper thread (signals blocked), or in place when no
/// thread can be started.
pub fn resolve_within(
    netloc: &str,
    budget: Duration,
    lookup: impl FnOnce(&str) -> std::io::Result<Vec<std::net::SocketAddr>> + Send + 'static,
) -> std::io::Result<Vec<std::net::SocketAddr>> {
    use std::sync::atomic::Ordering;
    if let Ok(a) = netloc.parse::<std::net::SocketAddr>() {
        return Ok(vec![a]);
    }
    let host = netloc.rsplit_once(':').map_or(netloc, |(h, _)| h).to_string();
    if LOOKUPS_IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_ABANDONED_LOOKUPS {
        LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("DNS lookup of {host} not started: {MAX_ABANDONED_LOOKUPS} earlier lookups are still hanging"),
        ));
    }
    /// Counts the lookup out when it ends, even by a panic.
    struct InFlight;
    impl Drop for InFlight {
        fn drop(&mut self) {
            LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let (name, in_flight) = (netloc.to_string(), InFlight);
    let rx = match crate::sync::helper("lakebase-dns", move || {
        let _in_flight = in_flight;
        lookup(&name)
    }) {
        Ok(rx) => rx,
        Err(in_place) => return in_place(),
    };
    match rx.recv_timeout(budget) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("DNS lookup of {host} timed out after {:.1} s", budget.as_secs_f64()),
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(std::io::Error::other(format!("DNS lookup of {host} failed"))),
    }
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

/// Trust the system store (or, when set, SSL_CERT_FILE / SSL_CERT_DIR instead: OpenSSL's rule,
/// applied by rustls-native-certs) plus `ca_file`.
fn tls_config(ca_file: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    // Not a OnceLock: a thread loading the store at the moment of fork() would leave a OnceLock
    // "running" forever in the child. Racing loaders each load; one result is kept.
    static SYSTEM: ArcSwapOption<Vec<rustls::pki_types::CertificateDer<'static>>> = ArcSwapOption::const_empty();
    let system = match SYSTEM.load_full() {
        Some(s) => s,
        None => {
            let s = Arc::new(rustls_native_certs::load_native_certs().certs);
            SYSTEM.store(Some(s.clone()));
            s
        }
    };
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

    use crate::clock::SystemClock;
    use std::io::Write;
    use std::net::TcpListener;

    /// A loopback server answering each connection with `respond(n)` (None: accept and hang).
    fn server(respond: impl Fn(usize) -> Option<String> + Send + 'static) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/x", l.local_addr().unwrap());
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming() {
                let Ok(mut s) = s else { break };
                let n = h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut s, &mut buf);
                match respond(n) {
                    Some(r) => {
                        let _ = s.write_all(r.as_bytes());
                    }
                    None => held.push(s),
                }
            }
        });
        (url, hits)
    }

    fn client(fg: Duration, bg: Duration) -> HttpClient {
        HttpClient::new(HttpOptions { foreground_deadline: fg, deadline: bg, ..HttpOptions::default() }, Arc::new(SystemClock))
    }

    #[test]
    fn a_hanging_server_cannot_hold_a_foreground_caller_past_the_deadline() {
        let (url, _) = server(|_| None);
        let c = client(Duration::from_millis(1500), Duration::from_secs(60));
        let t0 = std::time::Instant::now();
        let e = scope(Purpose::Foreground, &SystemClock, None, || c.send(&Request::get(url.clone()))).unwrap_err();
        let took = t0.elapsed();
        assert_eq!(e.kind(), ErrorKind::Network);
        assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(4), "{took:?} {e}");
        assert!(e.message().contains("gave up after") || e.message().contains("no time left"), "{e}");
        // Unscoped calls are foreground too.
        let t0 = std::time::Instant::now();
        c.send(&Request::get(url.clone())).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(4));
        // A background scope capped by the caller.
        let t0 = std::time::Instant::now();
        scope(Purpose::Background, &SystemClock, Some(Duration::from_millis(800)), || c.send(&Request::get(url))).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn throttling_is_retried_and_a_long_retry_after_ends_the_call_early() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_string();
        let busy = |ra: &str| format!("HTTP/1.1 503 Service Unavailable\r\nRetry-After: {ra}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
        let (url, hits) = server({
            let (ok, b) = (ok.clone(), busy("1"));
            move |n| Some(if n < 2 { b.clone() } else { ok.clone() })
        });
        let c = client(Duration::from_secs(10), Duration::from_secs(60));
        let t0 = std::time::Instant::now();
        assert_eq!(c.send(&Request::get(url)).unwrap().status, 200);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(t0.elapsed() >= Duration::from_secs(2), "Retry-After: 1 honoured twice");
        // Retry-After beyond the deadline: the 503 is returned at once, not slept on.
        let (url, hits) = server(move |_| Some(busy("120")));
        let t0 = std::time::Instant::now();
        assert_eq!(c.send(&Request::get(url)).unwrap().status, 503);
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn host_names_are_resolved_through_the_bounded_resolver() {
        let (url, hits) = server(|_| Some("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into()));
        let url = url.replace("127.0.0.1", "localhost");
        let c = client(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(c.send(&Request::get(url)).unwrap().status, 200);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn other_client_errors_are_not_retried() {
        let (url, hits) = server(|_| Some("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into()));
        let c = client(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(c.send(&Request::get(url)).unwrap().status, 404);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn refused_connections_are_retried_until_the_deadline() {
        // Bind then drop: nothing listens on the port.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = client(Duration::from_millis(1200), Duration::from_secs(60));
        let t0 = std::time::Instant::now();
        let e = c.send(&Request::get(format!("http://127.0.0.1:{port}/api/x"))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network);
        assert!(t0.elapsed() >= Duration::from_millis(500) && t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        assert!(e.message().contains("attempt(s)"), "{e}");
    }

    #[test]
    fn nested_scopes_share_the_outermost_deadline() {
        assert_eq!(current_purpose(), Purpose::Foreground);
        scope(Purpose::Background, &SystemClock, None, || {
            assert_eq!(current_purpose(), Purpose::Background);
            scope(Purpose::Foreground, &SystemClock, None, || assert_eq!(current_purpose(), Purpose::Background));
        });
        assert_eq!(current_purpose(), Purpose::Foreground);
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

#[cfg(test)]
mod dns_tests {
    use super::resolve_within;
    use std::io::ErrorKind;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn literal_addresses_need_no_lookup() {
        let r = resolve_within("127.0.0.1:443", Duration::ZERO, |_| panic!("looked up")).unwrap();
        assert_eq!(r, vec!["127.0.0.1:443".parse().unwrap()]);
        let r = resolve_within("[::1]:8443", Duration::ZERO, |_| panic!("looked up")).unwrap();
        assert_eq!(r, vec!["[::1]:8443".parse().unwrap()]);
    }

    #[test]
    fn lookup_results_and_errors_pass_through() {
        let want: Vec<std::net::SocketAddr> = vec!["10.1.2.3:443".parse().unwrap()];
        let w2 = want.clone();
        let r = resolve_within("ws.example.com:443", Duration::from_secs(30), move |n| {
            assert_eq!(n, "ws.example.com:443");
            Ok(w2)
        });
        assert_eq!(r.unwrap(), want);
        let e = resolve_within("nx.example.com:443", Duration::from_secs(30), |_| Err(std::io::Error::other("no such host"))).unwrap_err();
        assert_eq!(e.to_string(), "no such host");
    }

    #[test]
    fn a_hanging_lookup_is_abandoned_when_the_budget_is_spent() {
        // The lookup blocks until the test releases it (a dead name server); the caller gets a
        // timeout after its budget, and the helper thread finishes later on its own.
        let (release, blocked) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel::<()>();
        let e = resolve_within("hang.example.com:443", Duration::from_millis(50), move |_| {
            let _ = blocked.recv();
            let _ = done_tx.send(());
            Err(std::io::Error::other("late"))
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "DNS lookup of hang.example.com timed out after 0.1 s");
        release.send(()).unwrap();
        done.recv_timeout(Duration::from_secs(30)).expect("the abandoned lookup finishes");
    }
}
