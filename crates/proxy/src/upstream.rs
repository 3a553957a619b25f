//! Logging in to the upstream Lakebase database: TCP, SSLRequest, verified TLS, StartupMessage,
//! the password (cleartext or SCRAM-SHA-256), and the server's greeting up to ReadyForQuery.
//!
//! [`login`] wraps single attempts in the retry policy: a waking endpoint (refused, reset, timed
//! out, "starting up" 57P03) is retried with bounded backoff until the connect deadline; a
//! rejected cached token (we sent it, the server failed the login with a class 28 SQLSTATE) is
//! refreshed once and retried at once; nothing else is retried.

use crate::metrics::Metrics;
use crate::protocol::{self, sqlstate, ServerError};
use crate::source::{CredentialSource, Password};
use bytes::{Buf, BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::frontend;
use rustls::pki_types::ServerName;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroize;

pub type UpstreamStream = TlsStream<TcpStream>;

/// The largest message accepted from the server before the relay starts.
const MAX_SETUP_MESSAGE: usize = 1 << 20;
/// The longest one TCP connect may take before it counts as a (retryable) stall.
const MAX_TCP_CONNECT: Duration = Duration::from_secs(3);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where to connect and how to verify it.
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub tls: Arc<rustls::ClientConfig>,
}

impl Upstream {
    pub fn display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Split `HOST[:PORT]` (IPv6 in brackets); port 5432 when absent.
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let bad = || format!("--upstream {s:?}: expected HOST or HOST:PORT ([IPv6]:PORT)");
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => 5432,
            p => p.strip_prefix(':').and_then(|p| p.parse().ok()).ok_or_else(bad)?,
        };
        return Ok((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            let port = p.parse().map_err(|_| bad())?;
            if h.is_empty() {
                return Err(bad());
            }
            Ok((h.to_string(), port))
        }
        Some(_) => Ok((s.to_string(), 5432)), // a bare IPv6 address
        None if s.is_empty() => Err(bad()),
        None => Ok((s.to_string(), 5432)),
    }
}

/// A logged-in upstream connection and what the server said after AuthenticationOk.
pub struct Session {
    pub stream: UpstreamStream,
    /// NegotiateProtocolVersion messages (sent to the client before AuthenticationOk).
    pub negotiate: BytesMut,
    /// The server's messages after AuthenticationOk up to and including ReadyForQuery, without
    /// BackendKeyData; `key_at` is where it was.
    pub greeting: BytesMut,
    pub key_at: usize,
    /// The server's BackendKeyData (process id, secret key).
    pub key: Option<(u32, Vec<u8>)>,
}

/// Why one attempt failed.
#[derive(Debug)]
enum Attempt {
    /// Refused, reset, timed out, closed early: the endpoint may be waking up.
    Transport(String),
    /// The server answered with an ErrorResponse (raw message kept for the client).
    Server { err: ServerError, raw: BytesMut, password_sent: bool },
    /// Not retryable: DNS, TLS verification, no TLS, unsupported authentication.
    Fatal(String),
}

/// Why [`login`] failed: what the client is told.
#[derive(Debug)]
pub enum LoginError {
    /// The server's own ErrorResponse, forwarded as is.
    Server { err: ServerError, raw: BytesMut },
    /// The proxy's error (SQLSTATE, message without secrets).
    Proxy { code: &'static str, message: String },
}

impl LoginError {
    pub fn to_message(&self) -> BytesMut {
        match self {
            LoginError::Server { raw, .. } => raw.clone(),
            LoginError::Proxy { code, message } => protocol::error_response(code, message, None),
        }
    }
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginError::Server { err, .. } => write!(f, "server: {err}"),
            LoginError::Proxy { code, message } => write!(f, "{message} (SQLSTATE {code})"),
        }
    }
}

/// Log in with the source's password, retrying as the module docs say, within `deadline`.
pub async fn login(
    source: &dyn CredentialSource,
    up: &Upstream,
    version: u32,
    params: &[(String, String)],
    deadline: Duration,
    metrics: &Metrics,
) -> Result<Session, LoginError> {
    let started = Instant::now();
    let end = started + deadline;
    let mut password = source.password().await.map_err(|e| LoginError::Proxy {
        code: sqlstate::UNABLE_TO_CONNECT,
        message: format!("lakebase proxy: could not get a password: {}", e.message),
    })?;
    let mut refreshed = false;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let remaining = end.saturating_duration_since(Instant::now());
        let budget = remaining.max(Duration::from_millis(1));
        let outcome = match tokio::time::timeout(budget, attempt(up, version, params, &password, budget)).await {
            Ok(r) => r,
            Err(_) => Err(Attempt::Transport(format!("no answer from {} within {} ms", up.display(), budget.as_millis()))),
        };
        let why = match outcome {
            Ok(s) => {
                metrics.observe_connect(started.elapsed().as_secs_f64());
                return Ok(s);
            }
            Err(Attempt::Server { err, raw, password_sent }) if password_sent && err.code.starts_with("28") => {
                if refreshed {
                    return Err(LoginError::Server { err, raw });
                }
                crate::log::info(
                    "upstream rejected the cached password; minting a new one and retrying once",
                    &[("upstream", &up.display()), ("sqlstate", &err.code)],
                );
                metrics.login_retries_rejected.fetch_add(1, Relaxed);
                password = source.refresh(&password).await.map_err(|e| LoginError::Proxy {
                    code: sqlstate::UNABLE_TO_CONNECT,
                    message: format!("lakebase proxy: the server rejected the password and minting a new one failed: {}", e.message),
                })?;
                refreshed = true;
                continue;
            }
            Err(Attempt::Server { err, raw, .. }) if err.code == "57P03" => (format!("{} (SQLSTATE 57P03)", err.message), Some((err, raw))),
            Err(Attempt::Server { err, raw, .. }) => return Err(LoginError::Server { err, raw }),
            Err(Attempt::Fatal(m)) => {
                return Err(LoginError::Proxy { code: sqlstate::UNABLE_TO_CONNECT, message: format!("lakebase proxy: {m}") })
            }
            Err(Attempt::Transport(m)) => (m, None),
        };
        let (message, server) = why;
        let now = Instant::now();
        if now + backoff >= end {
            if let Some((err, raw)) = server {
                return Err(LoginError::Server { err, raw });
            }
            return Err(LoginError::Proxy {
                code: sqlstate::UNABLE_TO_CONNECT,
                message: format!(
                    "lakebase proxy: could not connect to {} after {attempts} attempt(s) in {:.1} s: {message}",
                    up.display(),
                    started.elapsed().as_secs_f64()
                ),
            });
        }
        crate::log::debug(
            "upstream not ready, retrying",
            &[("upstream", &up.display()), ("reason", &message), ("backoff_ms", &backoff.as_millis())],
        );
        metrics.connect_retries.fetch_add(1, Relaxed);
        tokio::time::sleep(jitter(backoff)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// 75–100 % of `d`, so a crowd of waiting clients does not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    d.mul_f64(0.75 + 0.25 * b[0] as f64 / 255.0)
}

/// A TLS connection to the upstream (TCP, SSLRequest, handshake with verification).
async fn connect_tls(up: &Upstream, budget: Duration) -> Result<UpstreamStream, Attempt> {
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((up.host.as_str(), up.port)).await {
        Ok(a) => a.collect(),
        Err(e) => return Err(Attempt::Fatal(format!("could not resolve {}: {e}", up.host))),
    };
    if addrs.is_empty() {
        return Err(Attempt::Fatal(format!("could not resolve {}: no addresses", up.host)));
    }
    let mut last = String::new();
    let mut tcp = None;
    for a in &addrs {
        match tokio::time::timeout(budget.min(MAX_TCP_CONNECT), TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last = format!("connect to {a}: {e}"),
            Err(_) => last = format!("connect to {a}: timed out"),
        }
    }
    let mut tcp = tcp.ok_or(Attempt::Transport(last))?;
    let _ = tcp.set_nodelay(true);
    let transport = |e: io::Error| Attempt::Transport(format!("{}: {e}", up.display()));
    let mut b = BytesMut::new();
    frontend::ssl_request(&mut b);
    tcp.write_all(&b).await.map_err(transport)?;
    let mut answer = [0u8; 1];
    match tcp.read(&mut answer).await.map_err(transport)? {
        0 => return Err(Attempt::Transport(format!("{} closed the connection before answering the TLS request", up.display()))),
        _ if answer[0] == b'S' => {}
        _ if answer[0] == b'N' => {
            return Err(Attempt::Fatal(format!("{} does not accept TLS; the password is only ever sent over verified TLS", up.display())))
        }
        _ => {
            return Err(Attempt::Fatal(format!(
                "{} answered the TLS request with {:?}: not a Postgres server?",
                up.display(),
                answer[0] as char
            )))
        }
    }
    let name =
        ServerName::try_from(up.host.clone()).map_err(|_| Attempt::Fatal(format!("{:?} is not a valid TLS server name", up.host)))?;
    let connector = tokio_rustls::TlsConnector::from(up.tls.clone());
    connector.connect(name, tcp).await.map_err(|e| {
        if let Some(te) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Attempt::Fatal(format!("TLS with {} failed: {te}", up.display()))
        } else {
            Attempt::Transport(format!("TLS with {}: {e}", up.display()))
        }
    })
}

/// Read one message (type, body) of at most MAX_SETUP_MESSAGE bytes.
async fn read_message<R: AsyncRead + Unpin>(r: &mut R, raw: &mut BytesMut) -> io::Result<u8> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !(4..=MAX_SETUP_MESSAGE).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("server message of invalid length {len}")));
    }
    raw.clear();
    raw.reserve(len + 1);
    raw.put_slice(&head);
    raw.resize(len + 1, 0);
    r.read_exact(&mut raw[5..]).await?;
    Ok(head[0])
}

fn cstrings(mut b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(n) = b.iter().position(|&c| c == 0) {
        if n == 0 {
            break;
        }
        out.push(String::from_utf8_lossy(&b[..n]).into_owned());
        b = &b[n + 1..];
    }
    out
}

async fn attempt(
    up: &Upstream,
    version: u32,
    params: &[(String, String)],
    password: &Password,
    budget: Duration,
) -> Result<Session, Attempt> {
    let mut s = connect_tls(up, budget).await?;
    let transport = |e: io::Error| Attempt::Transport(format!("{}: {e}", up.display()));
    let mut out = BytesMut::with_capacity(256);
    protocol::startup_message(version, params, &mut out);
    s.write_all(&out).await.map_err(transport)?;
    s.flush().await.map_err(transport)?;

    let mut raw = BytesMut::with_capacity(512);
    let mut negotiate = BytesMut::new();
    let mut password_sent = false;
    let mut scram: Option<ScramSha256> = None;
    // Authentication.
    loop {
        let t = read_message(&mut s, &mut raw).await.map_err(transport)?;
        match t {
            b'R' => {
                let body = &raw[5..];
                if body.len() < 4 {
                    return Err(Attempt::Fatal("malformed authentication request from the server".into()));
                }
                let code = (&body[..4]).get_u32();
                let data = &body[4..];
                out.clear();
                match code {
                    0 => break,
                    3 => {
                        frontend::password_message(password.expose().as_bytes(), &mut out)
                            .map_err(|e| Attempt::Fatal(format!("password message: {e}")))?;
                        password_sent = true;
                    }
                    10 => {
                        let mechs = cstrings(data);
                        if !mechs.iter().any(|m| m == SCRAM_SHA_256) {
                            return Err(Attempt::Fatal(format!(
                                "the server offers SASL mechanisms {mechs:?}; the proxy answers SCRAM-SHA-256 and cleartext passwords"
                            )));
                        }
                        // "n": the proxy does not do channel binding (SCRAM-SHA-256-PLUS), and says so.
                        let sc = ScramSha256::new(password.expose().as_bytes(), ChannelBinding::unsupported());
                        frontend::sasl_initial_response(SCRAM_SHA_256, sc.message(), &mut out)
                            .map_err(|e| Attempt::Fatal(format!("SASL message: {e}")))?;
                        scram = Some(sc);
                        password_sent = true;
                    }
                    11 => {
                        let sc = scram.as_mut().ok_or_else(|| Attempt::Fatal("SASL continue without a SASL exchange".into()))?;
                        sc.update(data).map_err(|e| Attempt::Fatal(format!("SCRAM: {e}")))?;
                        frontend::sasl_response(sc.message(), &mut out).map_err(|e| Attempt::Fatal(format!("SASL message: {e}")))?;
                    }
                    12 => {
                        let mut sc = scram.take().ok_or_else(|| Attempt::Fatal("SASL final without a SASL exchange".into()))?;
                        sc.finish(data).map_err(|e| Attempt::Fatal(format!("SCRAM: the server's signature did not verify: {e}")))?;
                        continue;
                    }
                    other => {
                        let what = match other {
                            2 => "Kerberos V5",
                            5 => "MD5 password",
                            7 | 8 => "GSSAPI",
                            9 => "SSPI",
                            _ => "an unknown",
                        };
                        return Err(Attempt::Fatal(format!(
                            "the server asked for {what} authentication (code {other}); the proxy answers cleartext password and SCRAM-SHA-256 only"
                        )));
                    }
                }
                let r = s.write_all(&out).await;
                out.as_mut().zeroize();
                r.map_err(transport)?;
                s.flush().await.map_err(transport)?;
            }
            b'E' => {
                let err = ServerError::parse(&raw[5..]);
                return Err(Attempt::Server { err, raw: raw.split(), password_sent });
            }
            b'v' => negotiate.extend_from_slice(&raw),
            b'N' => {} // notices before authentication are dropped
            other => return Err(Attempt::Fatal(format!("unexpected message {:?} from the server during authentication", other as char))),
        }
    }
    out.as_mut().zeroize();
    drop(scram);
    // After AuthenticationOk: ParameterStatus, BackendKeyData, notices, ReadyForQuery (or an error).
    let mut greeting = BytesMut::with_capacity(1024);
    let mut key = None;
    let mut key_at = 0;
    loop {
        let t = read_message(&mut s, &mut raw).await.map_err(transport)?;
        match t {
            b'K' => {
                let body = &raw[5..];
                if body.len() < 8 {
                    return Err(Attempt::Fatal("malformed BackendKeyData from the server".into()));
                }
                key = Some((u32::from_be_bytes([body[0], body[1], body[2], body[3]]), body[4..].to_vec()));
                key_at = greeting.len();
            }
            b'E' => {
                let err = ServerError::parse(&raw[5..]);
                return Err(Attempt::Server { err, raw: raw.split(), password_sent: false });
            }
            b'Z' => {
                greeting.extend_from_slice(&raw);
                if key.is_none() {
                    key_at = greeting.len() - raw.len();
                }
                return Ok(Session { stream: s, negotiate, greeting, key_at, key });
            }
            _ => {
                if greeting.len() + raw.len() > MAX_SETUP_MESSAGE {
                    return Err(Attempt::Fatal("the server's greeting is too long".into()));
                }
                greeting.extend_from_slice(&raw);
            }
        }
    }
}

/// Forward a cancel to the upstream backend `pid` over a new TLS connection.
pub async fn send_cancel(up: &Upstream, pid: u32, key: &[u8]) -> Result<(), String> {
    let budget = Duration::from_secs(5);
    let fut = async {
        let mut s = connect_tls(up, budget).await.map_err(|e| format!("{e:?}"))?;
        let mut b = BytesMut::new();
        protocol::cancel_request(pid, key, &mut b);
        s.write_all(&b).await.map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())?;
        // The server closes the connection once it has read the request.
        let mut sink = [0u8; 64];
        while s.read(&mut sink).await.map_err(|e| e.to_string())? > 0 {}
        Ok(())
    };
    tokio::time::timeout(budget, fut).await.map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::parse_host_port;

    #[test]
    fn host_and_port() {
        assert_eq!(parse_host_port("db.example.com"), Ok(("db.example.com".into(), 5432)));
        assert_eq!(parse_host_port("localhost:6543"), Ok(("localhost".into(), 6543)));
        assert_eq!(parse_host_port("[::1]:7000"), Ok(("::1".into(), 7000)));
        assert_eq!(parse_host_port("[::1]"), Ok(("::1".into(), 5432)));
        assert_eq!(parse_host_port("::1"), Ok(("::1".into(), 5432)));
        assert!(parse_host_port("h:x").is_err());
        assert!(parse_host_port(":5432").is_err());
        assert!(parse_host_port("").is_err());
        assert!(parse_host_port("[::1]x").is_err());
    }
}
