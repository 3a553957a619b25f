//! The one HTTP client: ureq over rustls (no OpenSSL; the library lives inside processes that carry
//! their own), no long-lived threads, a connection pool that is dropped after `fork()`.
//!
//! Policy enforced here for every caller: https to the workspace, plain http only to loopback;
//! bounded connect/read timeouts; retries of throttling and transient failures with exponential
//! backoff and jitter, honouring `Retry-After`, inside a total deadline (see [`retry`] for what is
//! retried); `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` ([`proxy`]); the SDKs' User-Agent.
//!
//! Deterministic failures are answered at once, never retried: a certificate that does not
//! verify (unknown issuer, wrong host name, expired: a configuration error that names
//! `ca_file`), and the private-link redirect (a 3xx to
//! `/login.html?error=private-link-validation-error`, which becomes the SDKs' per-cloud
//! explanation, `PRIVATE_LINK_VALIDATION_ERROR`, HTTP 403).
//!
//! Deadlines depend on who is waiting (see `crate::deadline`): a *foreground* operation (a caller blocked
//! in `lakebase_get_password` or `PQconnectdb`) gets [`HttpOptions::foreground_deadline`] (15 s)
//! for everything it does, OAuth token and credential call and all retries together; the
//! background refresher gets [`HttpOptions::deadline`] (60 s). Each attempt's timeout is bounded
//! by what is left, so a server that accepts and never answers cannot hold a caller past it.
//! DNS is bounded too: `getaddrinfo` cannot be cancelled and follows resolv.conf's own
//! timeout/attempts (30 s and more with a dead name server), so host names are resolved on a
//! short-lived helper thread that the caller stops waiting for when the attempt's time is up.

//!
//! - [`apierr`]: turning an error response into an [`Error`] (every body shape the SDKs read);
//! - [`dns`]: name resolution bounded by the attempt's time;
//! - [`proxy`]: forward proxies from the environment;
//! - [`retry`]: what is retried, backoff and `Retry-After`;
//! - [`tls`]: the CA store (system + `ca_file`) and the https-only rule, shared with the
//!   `lakebase doctor` wire client.

pub mod apierr;
pub mod dns;
pub mod proxy;
pub mod retry;
pub mod tls;

use crate::clock::SharedClock;
pub use crate::deadline::{current_purpose, scope, Purpose, FOREGROUND_DEADLINE};
use crate::error::{Error, ErrorKind, Result};
use crate::sanitize::Redactor;
use crate::secret::Secret;
use arc_swap::ArcSwapOption;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
pub use tls::{check_url, is_loopback};

pub const USER_AGENT: &str = concat!("liblakebase/", env!("CARGO_PKG_VERSION"));
const MAX_BODY: u64 = 4 << 20;

/// Form fields whose values are secrets (redacted from error bodies that echo the request).
pub const SECRET_FORM_FIELDS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "subject_token",
    "actor_token",
    "assertion",
    "password",
    "refresh_token",
    "code_verifier",
    "token",
];

/// The User-Agent the SDKs send, for this library: `liblakebase/<version> os/<os>`, then
/// `auth/<auth type>` once the auth method is known, then `upstream/<product>
/// upstream-version/<version>` when both `DATABRICKS_SDK_UPSTREAM` and
/// `DATABRICKS_SDK_UPSTREAM_VERSION` are set (PY useragent.py). Values are reduced to the
/// characters a User-Agent token may hold (`[A-Za-z0-9_.+-]`, others become `-`), so an odd
/// environment value cannot break the header.
pub fn user_agent(auth_type: Option<&str>, upstream: Option<(&str, &str)>) -> String {
    let token = |v: &str| -> String {
        v.chars().take(64).map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-') { c } else { '-' }).collect()
    };
    // Python's platform.uname().system.lower(): "linux", "darwin", ...
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        o => o,
    };
    let mut ua = format!("{USER_AGENT} os/{os}");
    if let Some(a) = auth_type.filter(|a| !a.is_empty()) {
        ua.push_str(&format!(" auth/{}", token(a)));
    }
    if let Some((p, v)) = upstream.filter(|(p, v)| !p.is_empty() && !v.is_empty()) {
        ua.push_str(&format!(" upstream/{} upstream-version/{}", token(p), token(v)));
    }
    ua
}

/// What the caller wants to send.
#[derive(Clone)]
pub enum Body {
    Empty,
    Json(serde_json::Value),
    Form(Vec<(&'static str, Secret)>),
}

#[derive(Clone)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// Sent as `Authorization`; never logged.
    pub authorization: Option<Secret>,
    /// Header values that are secrets (Azure's management token): sent like `headers`, and
    /// redacted from error bodies like the `Authorization` value.
    pub secret_headers: Vec<(&'static str, Secret)>,
    pub body: Body,
    /// The one exception to the https rule: the Azure instance metadata service, plain http on
    /// its fixed link-local address by design (see [`tls::check_url_for`]).
    pub instance_metadata: bool,
    /// Sending it twice is harmless (a credential mint, an OAuth token request): a POST whose
    /// response timed out is sent again. Other POSTs are not (see [`retry`]).
    pub repeatable: bool,
    /// An OAuth token endpoint: 502 and 504 are retried too (the Go SDK's token source).
    pub token_endpoint: bool,
}

impl Request {
    fn new(method: &'static str, url: String, body: Body) -> Self {
        Request {
            method,
            url,
            headers: vec![],
            authorization: None,
            secret_headers: vec![],
            body,
            instance_metadata: false,
            repeatable: method == "GET",
            token_endpoint: false,
        }
    }
    pub fn get(url: impl Into<String>) -> Self {
        Request::new("GET", url.into(), Body::Empty)
    }
    pub fn post_json(url: impl Into<String>, v: serde_json::Value) -> Self {
        Request::new("POST", url.into(), Body::Json(v))
    }
    pub fn post_form(url: impl Into<String>, form: Vec<(&'static str, Secret)>) -> Self {
        Request::new("POST", url.into(), Body::Form(form))
    }
    /// A POST without a body.
    pub fn post_empty(url: impl Into<String>) -> Self {
        Request::new("POST", url.into(), Body::Empty)
    }
    /// A POST to an OAuth token endpoint: repeatable, and 502/504 are retried.
    pub fn token_request(url: impl Into<String>, form: Vec<(&'static str, Secret)>) -> Self {
        Request { repeatable: true, token_endpoint: true, ..Request::post_form(url, form) }
    }
    /// Mark the request as harmless to send twice (see [`Request::repeatable`]).
    pub fn repeatable(mut self) -> Self {
        self.repeatable = true;
        self
    }
    /// A `GET` to the Azure instance metadata service (`http://169.254.169.254`, or a loopback
    /// address in tests): the only plain-http request allowed off loopback.
    pub fn instance_metadata(url: impl Into<String>) -> Self {
        Request { instance_metadata: true, ..Request::get(url) }
    }
    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    pub fn auth(mut self, value: Secret) -> Self {
        self.authorization = Some(value);
        self
    }
    /// A header whose value is a secret (see [`Request::secret_headers`]).
    pub fn secret_header(mut self, k: &'static str, v: Secret) -> Self {
        self.secret_headers.push((k, v));
        self
    }
    /// Every secret this request carries, in every form a server could echo it in (see
    /// [`Redactor`]): the `Authorization` value (and for Basic its decoded parts), secret header
    /// values, and the secret fields of a form body.
    pub fn redactor(&self) -> Redactor {
        let mut r = Redactor::default();
        if let Some(a) = &self.authorization {
            r.add_authorization(a.expose());
        }
        for (_, v) in &self.secret_headers {
            r.add(v.expose());
        }
        if let Body::Form(pairs) = &self.body {
            for (k, v) in pairs {
                if SECRET_FORM_FIELDS.contains(k) {
                    r.add(v.expose());
                }
            }
        }
        r
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

/// Timeouts, retry budget, trust and proxies.
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
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (none by default; see [`proxy`]).
    pub proxy: proxy::ProxySettings,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            foreground_deadline: FOREGROUND_DEADLINE,
            ca_file: None,
            proxy: proxy::ProxySettings::default(),
        }
    }
}

/// The connection pools of one fork generation: direct, and one per configured proxy.
struct Agents {
    generation: u64,
    direct: ureq::Agent,
    https_proxy: Option<ureq::Agent>,
    http_proxy: Option<ureq::Agent>,
}

/// A thread-safe HTTP client. Cheap to share behind an `Arc`.
pub struct HttpClient {
    opts: HttpOptions,
    clock: SharedClock,
    /// Rebuilt in a forked child so pooled sockets are never shared. Lock-free, so a thread that
    /// held it in the parent at `fork()` cannot block the child.
    agents: ArcSwapOption<Agents>,
    /// Sent on every request (see [`user_agent`]); completed with the auth type once known.
    user_agent: arc_swap::ArcSwap<String>,
}

/// Why an attempt failed, and whether the same request may be sent again.
struct Failure {
    error: Error,
    /// The request may have reached the server (its response timed out): only a
    /// [`Request::repeatable`] request is sent again.
    maybe_processed: bool,
    /// Not worth repeating at all (a certificate that does not verify, a private-link redirect).
    deterministic: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let deterministic = error.kind() != ErrorKind::Network;
        Failure { error, maybe_processed: false, deterministic }
    }
}

impl HttpClient {
    pub fn new(opts: HttpOptions, clock: SharedClock) -> Self {
        crate::fork::ensure_registered();
        HttpClient { opts, clock, agents: ArcSwapOption::empty(), user_agent: arc_swap::ArcSwap::from_pointee(user_agent(None, None)) }
    }

    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// Replace the User-Agent sent from now on (see [`user_agent`]).
    pub fn set_user_agent(&self, ua: String) {
        self.user_agent.store(Arc::new(ua));
    }

    /// The User-Agent sent on every request.
    pub fn current_user_agent(&self) -> String {
        (**self.user_agent.load()).clone()
    }

    fn agents(&self) -> Result<Arc<Agents>> {
        let gen = crate::fork::generation();
        if let Some(cur) = self.agents.load_full() {
            if cur.generation == gen {
                return Ok(cur);
            }
        }
        // First use, or first use in a forked child: new pools. Racing threads may each build
        // them; the last store wins and the others' pools are simply dropped.
        let a = Arc::new(self.build_agents(gen)?);
        self.agents.store(Some(a.clone()));
        Ok(a)
    }

    fn build_agents(&self, generation: u64) -> Result<Agents> {
        // Timeouts are set per request (see `send_until`): connect + read, bounded by the deadline.
        let tls = tls::client_config(self.opts.ca_file.as_deref())?;
        let base = || ureq::AgentBuilder::new().redirects(0).user_agent(USER_AGENT).tls_config(tls.clone()).resolver(dns::BoundedResolver);
        let via = |p: &Option<proxy::ProxyServer>| -> Result<Option<ureq::Agent>> {
            Ok(match p {
                Some(p) => Some(base().proxy(p.to_ureq()?).build()),
                None => None,
            })
        };
        Ok(Agents {
            generation,
            direct: base().try_proxy_from_env(false).build(),
            https_proxy: via(&self.opts.proxy.https)?,
            http_proxy: via(&self.opts.proxy.http)?,
        })
    }

    /// One attempt with the default per-attempt timeout. Any HTTP status is `Ok` (but the
    /// private-link redirect); only transport failures are errors.
    pub fn send_once(&self, req: &Request) -> Result<Response> {
        self.attempt(req, self.per_attempt()).map_err(|f| f.error)
    }

    /// Connect + read budget of one attempt: the waiting caller's own read timeout when it set
    /// one (clients sharing a cache entry share this client), else this client's.
    fn per_attempt(&self) -> Duration {
        let read = crate::deadline::request_limits().map_or(self.opts.read_timeout, |l| l.read_timeout);
        self.opts.connect_timeout.saturating_add(read)
    }

    /// One attempt that gives up after `timeout` (connect, TLS, request and response together).
    fn attempt(&self, req: &Request, timeout: Duration) -> std::result::Result<Response, Failure> {
        tls::check_url_for(&req.url, req.instance_metadata)?;
        let what = req.describe();
        // Checked here so that the HTTP library never sees (and never quotes in its error text)
        // a value it would refuse; configuration and token responses are checked earlier.
        for (k, v) in req.headers.iter().map(|(k, v)| (*k, v.as_str())) {
            check_header_value(&what, k, v)?;
        }
        for (k, v) in req.secret_headers.iter().map(|(k, v)| (*k, v.expose())) {
            check_header_value(&what, k, v)?;
        }
        if let Some(a) = &req.authorization {
            check_header_value(&what, "Authorization", a.expose())?;
        }
        let agents = self.agents()?;
        let parsed = url::Url::parse(&req.url).map_err(|e| Error::config(format!("invalid URL: {e}")))?;
        let via = self.opts.proxy.for_url(&parsed, req.instance_metadata);
        let agent = match (via, parsed.scheme()) {
            (Some(_), "https") => agents.https_proxy.as_ref().unwrap_or(&agents.direct),
            (Some(_), _) => agents.http_proxy.as_ref().unwrap_or(&agents.direct),
            (None, _) => &agents.direct,
        };
        let ua = self.user_agent.load();
        let mut r = agent
            .request(req.method, &req.url)
            .set("Accept", "application/json")
            .set("User-Agent", ua.as_str())
            .timeout(timeout.max(Duration::from_millis(1)));
        for (k, v) in &req.headers {
            r = r.set(k, v);
        }
        for (k, v) in &req.secret_headers {
            r = r.set(k, v.expose());
        }
        if let Some(a) = &req.authorization {
            r = r.set("Authorization", a.expose());
        }
        // Plain http through a proxy is sent in absolute form: ureq authenticates only CONNECT.
        let proxy_auth = via.filter(|_| parsed.scheme() == "http").and_then(|p| p.authorization());
        if let Some(pa) = &proxy_auth {
            r = r.set("Proxy-Authorization", pa.expose());
        }
        match via {
            Some(p) => crate::log_debug!("http: {what} via proxy {}", p.display()),
            None => crate::log_debug!("http: {what}"),
        }
        let _dns = dns::DnsBudget::set(timeout);
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
            Err(ureq::Error::Transport(t)) => return Err(transport_failure(&what, &req.url, via, &t, &req.redactor())),
        };
        let status = resp.status();
        let headers: Vec<(String, String)> =
            resp.headers_names().into_iter().filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string()))).collect();
        // Sized up front so the token-bearing buffer is not reallocated (a freed copy is not wiped).
        let mut body = Vec::with_capacity(16 * 1024);
        resp.into_reader().take(MAX_BODY).read_to_end(&mut body).map_err(|e| Failure {
            error: Error::network(format!("{what}: reading the response failed: {}", io_kind(&e))),
            maybe_processed: true,
            deterministic: false,
        })?;
        crate::log_debug!("http: {what} -> {status} ({} bytes)", body.len());
        if !(200..300).contains(&status) {
            // An error body may echo the request (a misbehaving proxy or server): the secrets
            // this request carried never get further than here.
            req.redactor().redact_bytes(&mut body);
        }
        let resp = Response { status, headers, body };
        if let Some(e) = apierr::private_link_error(&resp, &req.url) {
            return Err(Failure { error: e, maybe_processed: false, deterministic: true });
        }
        Ok(resp)
    }

    /// Send with retries (see [`retry`]), within the deadline of the current [`scope`]
    /// (foreground when there is none). Returns the last response (any status) or the last
    /// transport error.
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

    /// Now on this client's monotonic clock (for deadlines handed to [`send_before`](Self::send_before)).
    pub fn monotonic(&self) -> Duration {
        self.clock.monotonic()
    }

    /// The end (monotonic) of the operation this thread is in.
    fn scope_end(&self) -> Duration {
        let now = self.clock.monotonic();
        match crate::deadline::current() {
            Some((purpose, start, cap)) => {
                let budget = match purpose {
                    Purpose::Foreground => crate::deadline::request_limits().map_or(self.opts.foreground_deadline, |l| l.deadline),
                    Purpose::Background => self.opts.deadline,
                };
                let budget = cap.map_or(budget, |c| c.min(budget));
                start.saturating_add(budget)
            }
            None => now.saturating_add(crate::deadline::request_limits().map_or(self.opts.foreground_deadline, |l| l.deadline)),
        }
    }

    fn send_until(&self, req: &Request, end: Duration) -> Result<Response> {
        let start = self.clock.monotonic();
        let per_attempt = self.per_attempt();
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
                Ok(resp) => match retry::retryable_response(resp, req.token_endpoint) {
                    Some(why) => {
                        crate::log_debug!("http: {} answered HTTP {} ({why}): retryable", req.describe(), resp.status);
                        Some(retry::parse_retry_after(resp.header("Retry-After"), self.clock.wall_ms()))
                    }
                    None => return outcome.map_err(|f| f.error),
                },
                Err(f) if f.deterministic => return outcome.map_err(|f| f.error),
                Err(f) if f.maybe_processed && !req.repeatable => {
                    // SDK 0.167's rule for non-idempotent requests: the server may have acted on it.
                    return outcome.map_err(|f| f.error.context("not retried: the request may have been processed"));
                }
                Err(_) => Some(None),
            };
            let delay = retry::backoff(attempt, retry_after.flatten());
            let now = self.clock.monotonic();
            if now.saturating_add(delay) >= end {
                return match outcome {
                    Ok(resp) => Ok(resp),
                    Err(f) => {
                        let e = f.error;
                        let spent = now.saturating_sub(start).as_secs_f64();
                        Err(Error::new(e.kind(), format!("{} (gave up after {attempt} attempt(s) in {spent:.1} s)", e.message())))
                    }
                };
            }
            crate::log_info!("http: {} attempt {attempt} failed ({}); retrying in {:?}", req.describe(), summarize(&outcome), delay);
            self.clock.sleep(delay);
        }
    }
}

fn summarize(r: &std::result::Result<Response, Failure>) -> String {
    match r {
        Ok(resp) => format!("HTTP {}", resp.status),
        Err(f) => f.error.message().to_string(),
    }
}

fn io_kind(e: &std::io::Error) -> String {
    format!("{:?}", e.kind())
}

/// A header value the HTTP library will send: visible ASCII, spaces and tabs (RFC 9110
/// field-value without obs-text, which ureq refuses too). The error names the header and the
/// byte position, never the value, and is not retried.
fn check_header_value(what: &str, name: &str, value: &str) -> Result<()> {
    match value.char_indices().find(|(_, c)| !(matches!(*c as u32, 0x20..=0x7e) || *c == '\t')) {
        None => Ok(()),
        Some((i, c)) => Err(Error::config(format!(
            "{what}: the {name} header cannot be sent: byte {} of its value is {}; nothing was sent",
            i + 1,
            crate::sanitize::describe(c)
        ))),
    }
}

/// The rustls error under a ureq transport error (ureq wraps it in an `io::Error`).
fn tls_error(t: &ureq::Transport) -> Option<&rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

/// The io::Error kind under a ureq transport error.
fn io_error_kind(t: &ureq::Transport) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

fn transport_failure(what: &str, url: &str, via: Option<&proxy::ProxyServer>, t: &ureq::Transport, sent: &Redactor) -> Failure {
    use ureq::ErrorKind as K;
    let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(|h| h.to_string())).unwrap_or_default();
    // Never the HTTP library's text for a header it refused: it quotes the whole header line
    // (`Authorization: Bearer dapi...`). Values are checked before sending, so this is a backstop.
    if t.kind() == K::BadHeader {
        let error = Error::config(format!("{what} to {host} failed: a request header was refused as invalid (value not shown)"));
        return Failure { error, maybe_processed: false, deterministic: true };
    }
    if let Some(rustls::Error::InvalidCertificate(cert)) = tls_error(t) {
        return Failure { error: certificate_error(what, &host, cert), maybe_processed: false, deterministic: true };
    }
    let through = via.map(|p| format!(" (through the proxy {} from {})", p.display(), p.var)).unwrap_or_default();
    let (kind, detail) = match t.kind() {
        K::InvalidUrl | K::UnknownScheme | K::InvalidProxyUrl => (ErrorKind::Config, t.to_string()),
        K::ProxyUnauthorized => {
            (ErrorKind::Config, "the proxy refused the credentials (HTTP 407): set user:password in the proxy URL".to_string())
        }
        K::ProxyConnect => (ErrorKind::Network, "the proxy did not open a tunnel (CONNECT failed)".to_string()),
        _ => (ErrorKind::Network, t.to_string()),
    };
    // A response that timed out after the request went out: the server may have acted on it.
    let read_timeout = t.kind() == K::Io && matches!(io_error_kind(t), Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock));
    // ureq's Display includes the URL (ours carry no secrets) and the server's or the OS's text:
    // the secrets this request carried are replaced and control characters escaped.
    let detail = sent.redact(&detail);
    let error = Error::new(kind, format!("{what} to {host}{through} failed: {}", crate::sanitize::escape_controls(&detail)));
    Failure { error, maybe_processed: read_timeout, deterministic: kind != ErrorKind::Network }
}

/// A certificate that does not verify: never retried, never sent credentials to.
fn certificate_error(what: &str, host: &str, e: &rustls::CertificateError) -> Error {
    use rustls::CertificateError as C;
    let why = match e {
        C::UnknownIssuer => "it is not signed by a trusted certificate authority (unknown issuer)".to_string(),
        C::NotValidForName | C::NotValidForNameContext { .. } => format!("it is not valid for the name {host} (wrong host name)"),
        C::Expired | C::ExpiredContext { .. } => "it has expired".to_string(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet (check the system clock)".to_string(),
        C::Revoked => "it has been revoked".to_string(),
        other => format!("{other:?}"),
    };
    Error::config(format!(
        "{what} to {host} failed: the server's TLS certificate does not verify: {why}. No credentials were sent. If a TLS-inspecting proxy or a private CA is in the way, trust its CA with ca_file / LAKEBASE_CA_FILE (or SSL_CERT_FILE); otherwise check the host name"
    ))
}

#[cfg(test)]
pub(crate) mod wire_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use retry::{backoff, parse_retry_after};

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
        let t0 = crate::clock::Stopwatch::start();
        let e = scope(Purpose::Foreground, &SystemClock, None, || c.send(&Request::get(url.clone()))).unwrap_err();
        let took = t0.elapsed();
        assert_eq!(e.kind(), ErrorKind::Network);
        assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(4), "{took:?} {e}");
        assert!(e.message().contains("gave up after") || e.message().contains("no time left"), "{e}");
        // Unscoped calls are foreground too.
        let t0 = crate::clock::Stopwatch::start();
        c.send(&Request::get(url.clone())).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(4));
        // A background scope capped by the caller.
        let t0 = crate::clock::Stopwatch::start();
        scope(Purpose::Background, &SystemClock, Some(Duration::from_millis(800)), || c.send(&Request::get(url))).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn throttling_is_retried_and_a_long_retry_after_ends_the_call_early() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_string();
        let busy = |ra: &str| {
            format!("HTTP/1.1 503 Service Unavailable\r\nRetry-After: {ra}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}")
        };
        let (url, hits) = server({
            let (ok, b) = (ok.clone(), busy("1"));
            move |n| Some(if n < 2 { b.clone() } else { ok.clone() })
        });
        let c = client(Duration::from_secs(10), Duration::from_secs(60));
        let t0 = crate::clock::Stopwatch::start();
        assert_eq!(c.send(&Request::get(url)).unwrap().status, 200);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(t0.elapsed() >= Duration::from_secs(2), "Retry-After: 1 honoured twice");
        // Retry-After beyond the deadline: the 503 is returned at once, not slept on.
        let (url, hits) = server(move |_| Some(busy("120")));
        let t0 = crate::clock::Stopwatch::start();
        assert_eq!(c.send(&Request::get(url)).unwrap().status, 503);
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// A loopback server answering 500 with the request it received (headers and body) as the
    /// error message, as a misbehaving proxy does.
    fn echo_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/oidc/v1/token", l.local_addr().unwrap());
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { break };
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = vec![0u8; 65536];
                std::thread::sleep(Duration::from_millis(50));
                let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
                let echo =
                    serde_json::json!({"error": "invalid_client", "error_description": String::from_utf8_lossy(&buf[..n])}).to_string();
                let _ = write!(s, "HTTP/1.1 500 Oops\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{echo}", echo.len());
            }
        });
        (url, hits)
    }

    #[test]
    fn secrets_a_request_carried_are_redacted_from_an_echoing_error_body() {
        let (url, _) = echo_server();
        let c = client(Duration::from_secs(10), Duration::from_secs(60));
        let secret = "dose/secret+with spaces&=";
        let req = Request::post_form(url, vec![("grant_type", Secret::new("client_credentials")), ("client_secret", Secret::new(secret))])
            .auth(Secret::new("Bearer eyJtoken.payload.signature"))
            .secret_header("X-Databricks-Azure-SP-Management-Token", Secret::new("mgmt-token-value"));
        let resp = c.send(&req).unwrap();
        assert_eq!(resp.status, 500);
        let body = String::from_utf8_lossy(&resp.body).into_owned();
        assert!(body.contains("grant_type=client_credentials"), "the echo arrived: {body}");
        for leak in ["eyJtoken", "mgmt-token-value", "dose", "secret%2B", "with+spaces"] {
            assert!(!body.contains(leak), "{leak} leaked: {body}");
        }
        assert!(body.contains("Bearer ***") && body.contains("client_secret=***"), "{body}");
        let e = apierr::from_response(&resp, "POST /oidc/v1/token");
        assert!(!e.message().contains("eyJtoken") && !e.message().contains('\r'), "{e}");
    }

    #[test]
    fn a_header_value_that_cannot_be_sent_is_a_config_error_without_the_value() {
        let (url, hits) = echo_server();
        let c = client(Duration::from_secs(10), Duration::from_secs(60));
        let t0 = crate::clock::Stopwatch::start();
        let e = c.send(&Request::get(url.clone()).auth(Secret::new("Bearer dapi-secret\r"))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert_eq!(e.message(), "GET /oidc/v1/token: the Authorization header cannot be sent: byte 19 of its value is a carriage return (0x0D); nothing was sent");
        let e = c.send(&Request::get(url).secret_header("X-Mgmt", Secret::new("tok\u{e9}"))).unwrap_err();
        assert!(e.message().contains("the X-Mgmt header cannot be sent: byte 4 of its value is a non-ASCII character"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(1), "not retried");
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
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
        let t0 = crate::clock::Stopwatch::start();
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
