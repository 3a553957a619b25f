//! Just enough of the PostgreSQL wire protocol (v3) for `lakebase doctor` to check a login the way
//! libpq does with sslmode=require: SSLRequest, TLS (rustls), StartupMessage, cleartext password,
//! AuthenticationOk / ErrorResponse. Every step has a bounded timeout, and the whole login (TLS
//! handshake, startup, authentication) one overall deadline ([`LOGIN_DEADLINE`]): a server that
//! trickles bytes cannot hold the doctor.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the TLS handshake and the login take together.
pub const LOGIN_DEADLINE: Duration = Duration::from_secs(15);
const MAX_MESSAGE: usize = 1 << 20;

/// Resolve `host:port` with the library's bounded resolver (a hanging resolver cannot hang us).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let netloc = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let lookup = |n: &str| n.to_socket_addrs().map(|a| a.collect::<Vec<_>>());
    match lakebase_core::http::dns::resolve_within(&netloc, DNS_TIMEOUT, lookup) {
        Ok(a) if !a.is_empty() => {
            let mut out: Vec<SocketAddr> = Vec::new();
            for x in a {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
            Ok(out)
        }
        Ok(_) => Err(format!("{host} has no addresses")),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(format!("resolving {host} took longer than {} s", DNS_TIMEOUT.as_secs())),
        Err(e) => Err(format!("cannot resolve {host}: {e}")),
    }
}

/// Connect to the first address that answers; returns the stream, the address and the time taken,
/// or one error line per address.
pub fn connect(addrs: &[SocketAddr]) -> Result<(TcpStream, SocketAddr, Duration), Vec<String>> {
    let mut errs = Vec::new();
    for a in addrs {
        let t0 = lakebase_core::clock::Stopwatch::start();
        match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                let _ = s.set_nodelay(true);
                return Ok((s, *a, t0.elapsed()));
            }
            Err(e) => {
                let why = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused (nothing listens there)".to_string(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        format!("no answer within {} s (a firewall, or outbound port blocked)", CONNECT_TIMEOUT.as_secs())
                    }
                    _ => e.to_string(),
                };
                errs.push(format!("{a}: {why}"));
            }
        }
    }
    Err(errs)
}

/// A TCP stream whose reads and writes all end by one deadline (each at most [`IO_TIMEOUT`]).
pub struct Bounded {
    s: TcpStream,
    start: lakebase_core::clock::Stopwatch,
    deadline: Duration,
}

impl Bounded {
    pub fn new(s: TcpStream, deadline: Duration) -> Self {
        Bounded { s, start: lakebase_core::clock::Stopwatch::start(), deadline }
    }
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_sub(self.start.elapsed());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the login took longer than {} s", self.deadline.as_secs_f64()),
            ));
        }
        Ok(left.min(IO_TIMEOUT))
    }
}

impl Bounded {
    /// A socket timeout that ran into the overall deadline is the deadline's error.
    fn deadline_error(&self, e: std::io::Error) -> std::io::Error {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => self.left().err().unwrap_or(e),
            _ => e,
        }
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let t = self.left()?;
        self.s.set_read_timeout(Some(t))?;
        self.s.read(buf).map_err(|e| self.deadline_error(e))
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let t = self.left()?;
        self.s.set_write_timeout(Some(t))?;
        self.s.write(buf).map_err(|e| self.deadline_error(e))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

/// Records whether the server certificate verifies, and accepts it either way (sslmode=require
/// semantics for the login check). Handshake signatures are still checked.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    result: Mutex<Option<Result<(), String>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let r = match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now).map(|_| ()).map_err(|e| e.to_string()),
            None => Err("no trusted CA certificates were found".to_string()),
        };
        if let Ok(mut slot) = self.result.lock() {
            *slot = Some(r);
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The trust store for the server certificate: the system store (the library's loader, which
/// honours SSL_CERT_FILE/SSL_CERT_DIR), PGSSLROOTCERT and ~/.postgresql/root.crt as libpq reads
/// them. Returns the store and notes about files that could not be used.
fn roots() -> (rustls::RootCertStore, Vec<String>) {
    let mut store = rustls::RootCertStore::empty();
    let mut notes = Vec::new();
    store.add_parsable_certificates(lakebase_core::http::tls::system_roots().iter().cloned());
    let mut files = Vec::new();
    match std::env::var("PGSSLROOTCERT") {
        Ok(p) if !p.is_empty() && p != "system" => files.push((p, true)),
        _ => {
            if let Some(home) = std::env::var_os("HOME") {
                let p = std::path::Path::new(&home).join(".postgresql/root.crt");
                if p.is_file() {
                    files.push((p.display().to_string(), false));
                }
            }
        }
    }
    for (path, explicit) in files {
        match lakebase_core::http::tls::read_pem_certs(&path) {
            Ok(certs) => {
                store.add_parsable_certificates(certs);
            }
            Err(e) => {
                let what = if explicit { "PGSSLROOTCERT" } else { "~/.postgresql/root.crt" };
                notes.push(format!("{what}: {}", e.message()));
            }
        }
    }
    (store, notes)
}

/// How the TLS step went.
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
    /// `Ok` if the certificate chains to a trusted CA and matches the host name.
    pub verified: Result<(), String>,
    /// Problems with the configured CA files.
    pub notes: Vec<String>,
}

/// The outcome of a login attempt.
pub enum Login {
    /// AuthenticationOk and ReadyForQuery. `password_asked` false means the server let us in
    /// without a password (trust).
    Ok { server_version: Option<String>, password_asked: bool },
    /// ErrorResponse. `after_password`: it came after we sent the password.
    Error { fields: ErrorFields, after_password: bool },
    /// The server asked for an authentication method other than cleartext (MD5, SCRAM, GSS...).
    Unsupported(String),
    /// Transport or protocol failure after TLS.
    Broken(String),
    /// No password to log in with: only TLS was checked.
    NotAttempted,
}

#[derive(Default, Debug)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

/// How the whole attempt went, step by step.
pub enum Attempt {
    /// The server answered the SSLRequest with 'N': it does not do TLS.
    TlsRefused,
    /// The server answered the SSLRequest with something else (an old server's ErrorResponse...).
    TlsOddAnswer(String),
    /// TLS handshake failure.
    TlsFailed(String),
    /// TLS was set up; then the login went as described.
    Done(TlsInfo, Login),
}

fn put_i32(v: &mut Vec<u8>, n: i32) {
    v.extend_from_slice(&n.to_be_bytes());
}

fn put_cstr(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(s.as_bytes());
    v.push(0);
}

/// SSLRequest, TLS and a login as `user` to `database` on an open TCP stream, all within
/// `deadline`. `password` sees how TLS went and returns the password to send, or `None` to send
/// nothing (the login is then not attempted).
pub fn login<'p>(
    tcp: TcpStream,
    sni: &str,
    user: &str,
    database: &str,
    deadline: Duration,
    password: impl FnOnce(&TlsInfo) -> Option<&'p str>,
) -> Attempt {
    let mut tcp = Bounded::new(tcp, deadline);
    // SSLRequest: length 8, code 80877103.
    let mut req = Vec::new();
    put_i32(&mut req, 8);
    put_i32(&mut req, 80877103);
    if let Err(e) = tcp.write_all(&req) {
        return Attempt::TlsFailed(format!("sending SSLRequest failed: {e}"));
    }
    let mut b = [0u8; 1];
    match tcp.read_exact(&mut b) {
        Ok(()) => {}
        Err(e) => return Attempt::TlsFailed(format!("no answer to SSLRequest: {}", io_why(&e))),
    }
    match b[0] {
        b'S' => {}
        b'N' => return Attempt::TlsRefused,
        b'E' => {
            let text = read_raw_error(&mut tcp);
            return Attempt::TlsOddAnswer(format!("the server answered the SSLRequest with an error: {text}"));
        }
        other => {
            return Attempt::TlsOddAnswer(format!("unexpected answer {:?} to the SSLRequest (not a PostgreSQL server?)", other as char))
        }
    }

    let provider = lakebase_core::http::tls::provider();
    let (store, notes) = roots();
    let inner = if store.is_empty() {
        None
    } else {
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone()).build().ok()
    };
    let verifier = Arc::new(RecordingVerifier { inner, provider: provider.clone(), result: Mutex::new(None) });
    let mut config = match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(b) => b.dangerous().with_custom_certificate_verifier(verifier.clone()).with_no_client_auth(),
        Err(e) => return Attempt::TlsFailed(format!("TLS setup failed: {e}")),
    };
    // As libpq 17 does; servers before 17 ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    let name = match ServerName::try_from(sni.to_string()) {
        Ok(n) => n,
        Err(e) => return Attempt::TlsFailed(format!("{sni:?} is not a valid TLS server name: {e}")),
    };
    let conn = match rustls::ClientConnection::new(Arc::new(config), name) {
        Ok(c) => c,
        Err(e) => return Attempt::TlsFailed(format!("TLS setup failed: {e}")),
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            return Attempt::TlsFailed(format!("TLS handshake failed: {}", io_why(&e)));
        }
    }
    let info = TlsInfo {
        version: tls.conn.protocol_version().map(|v| format!("{v:?}").replace("TLSv1_", "TLSv1.")).unwrap_or_default(),
        cipher: tls.conn.negotiated_cipher_suite().map(|c| format!("{:?}", c.suite())).unwrap_or_default(),
        verified: verifier.result.lock().ok().and_then(|r| r.clone()).unwrap_or_else(|| Err("no certificate was presented".into())),
        notes,
    };
    let result = match password(&info) {
        Some(p) => startup(&mut tls, user, database, p),
        None => Login::NotAttempted,
    };
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Attempt::Done(info, result)
}

fn io_why(e: &std::io::Error) -> String {
    if e.get_ref().is_some() {
        return e.to_string(); // ours (the overall deadline)
    }
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!("timed out after {} s", IO_TIMEOUT.as_secs())
        }
        std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        _ => e.to_string(),
    }
}

/// An ErrorResponse body after its type byte, read without trusting its length much.
fn read_raw_error(s: &mut impl Read) -> String {
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return "(unreadable)".into();
    }
    let n = (i32::from_be_bytes(len) as usize).saturating_sub(4).min(8192);
    let mut body = vec![0u8; n];
    if s.read_exact(&mut body).is_err() {
        return "(unreadable)".into();
    }
    let f = parse_error(&body);
    format!("{} {}", f.code, f.message).trim().to_string()
}

fn read_message(s: &mut impl Read) -> Result<(u8, Vec<u8>), String> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).map_err(|e| io_why(&e))?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if !(4..=MAX_MESSAGE as i32).contains(&len) {
        return Err(format!("invalid message length {len} (type {:?})", head[0] as char));
    }
    let mut body = vec![0u8; len as usize - 4];
    s.read_exact(&mut body).map_err(|e| io_why(&e))?;
    Ok((head[0], body))
}

pub fn parse_error(body: &[u8]) -> ErrorFields {
    let mut f = ErrorFields::default();
    for field in body.split(|b| *b == 0) {
        let Some((&t, v)) = field.split_first() else { continue };
        let v = String::from_utf8_lossy(v).into_owned();
        match t {
            b'S' => f.severity = v,
            b'C' => f.code = v,
            b'M' => f.message = v,
            b'D' => f.detail = Some(v),
            b'H' => f.hint = Some(v),
            _ => {}
        }
    }
    f
}

fn startup(s: &mut (impl Read + Write), user: &str, database: &str, password: &str) -> Login {
    let mut body = Vec::new();
    put_i32(&mut body, 196608); // protocol 3.0
    for (k, v) in [("user", user), ("database", database), ("application_name", "lakebase doctor")] {
        put_cstr(&mut body, k);
        put_cstr(&mut body, v);
    }
    body.push(0);
    let mut msg = Vec::new();
    put_i32(&mut msg, body.len() as i32 + 4);
    msg.extend_from_slice(&body);
    if let Err(e) = s.write_all(&msg).and_then(|_| s.flush()) {
        return Login::Broken(format!("sending the startup message failed: {}", io_why(&e)));
    }
    let mut password_asked = false;
    let mut authenticated = false;
    let mut server_version = None;
    loop {
        let (t, body) = match read_message(s) {
            Ok(m) => m,
            Err(e) => return Login::Broken(e),
        };
        match t {
            b'R' if body.len() >= 4 => {
                let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                match code {
                    0 => authenticated = true,
                    3 => {
                        password_asked = true;
                        let mut m = Zeroizing::new(Vec::with_capacity(password.len() + 6));
                        m.push(b'p');
                        m.extend_from_slice(&(password.len() as i32 + 5).to_be_bytes());
                        m.extend_from_slice(password.as_bytes());
                        m.push(0);
                        if let Err(e) = s.write_all(&m).and_then(|_| s.flush()) {
                            return Login::Broken(format!("sending the password failed: {}", io_why(&e)));
                        }
                    }
                    5 => return Login::Unsupported("MD5 password".into()),
                    10 => {
                        let mechs: Vec<String> = body[4..]
                            .split(|b| *b == 0)
                            .filter(|m| !m.is_empty())
                            .map(|m| String::from_utf8_lossy(m).into_owned())
                            .collect();
                        return Login::Unsupported(format!("SASL ({})", mechs.join(", ")));
                    }
                    2 => return Login::Unsupported("Kerberos V5".into()),
                    7 | 8 => return Login::Unsupported("GSSAPI".into()),
                    9 => return Login::Unsupported("SSPI".into()),
                    other => return Login::Unsupported(format!("authentication request {other}")),
                }
            }
            b'E' => return Login::Error { fields: parse_error(&body), after_password: password_asked },
            b'S' => {
                let mut it = body.split(|b| *b == 0);
                if let (Some(k), Some(v)) = (it.next(), it.next()) {
                    if k == b"server_version" {
                        server_version = Some(String::from_utf8_lossy(v).into_owned());
                    }
                }
            }
            b'Z' => {
                if !authenticated {
                    return Login::Broken("ReadyForQuery before authentication".into());
                }
                // Terminate.
                let _ = s.write_all(&[b'X', 0, 0, 0, 4]).and_then(|_| s.flush());
                return Login::Ok { server_version, password_asked };
            }
            // BackendKeyData, NoticeResponse, NegotiateProtocolVersion.
            b'K' | b'N' | b'v' => {}
            other => return Login::Broken(format!("unexpected message {:?} during login", other as char)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields() {
        let f = parse_error(b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"x\"\0\0");
        assert_eq!(f.code, "28P01");
        assert_eq!(f.severity, "FATAL");
        assert!(f.message.starts_with("password authentication failed"));
    }

    /// A server that accepts TLS-less startup by answering the SSLRequest one byte at a time,
    /// slower than nothing but faster than the per-read timeout: the overall deadline ends it.
    #[test]
    fn a_trickling_server_cannot_hold_the_login_past_its_deadline() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = [0u8; 8];
            let _ = c.read_exact(&mut req);
            // 'E', a 4 KiB length, then the body one byte every 100 ms for up to 10 s.
            let _ = c.write_all(&[b'E', 0, 0, 0x10, 0]);
            for _ in 0..100 {
                if c.write_all(&[0]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let sw = lakebase_core::clock::Stopwatch::start();
        let got = login(tcp, "localhost", "u", "db", Duration::from_millis(800), |_| None);
        let took = sw.elapsed();
        assert!(took < Duration::from_secs(3), "{took:?}");
        match got {
            Attempt::TlsOddAnswer(m) => assert!(m.contains("(unreadable)"), "{m}"),
            _ => panic!("expected the odd answer to be cut short"),
        }
        drop(t);
    }

    /// The deadline covers reads that each return quickly.
    #[test]
    fn bounded_stream_reports_the_overall_deadline() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let _t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            for _ in 0..50 {
                if c.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut b = Bounded::new(TcpStream::connect(addr).unwrap(), Duration::from_millis(300));
        let mut buf = [0u8; 1000];
        let e = b.read_exact(&mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(io_why(&e), "the login took longer than 0.3 s");
    }

    /// A scripted server: cleartext request, then AuthenticationOk, a parameter and ReadyForQuery.
    #[test]
    fn cleartext_login_script() {
        struct Duplex {
            input: std::io::Cursor<Vec<u8>>,
            output: Vec<u8>,
        }
        impl Read for Duplex {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                self.input.read(b)
            }
        }
        impl Write for Duplex {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.output.write(b)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut srv = Vec::new();
        srv.extend_from_slice(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
        srv.extend_from_slice(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]);
        let p = b"server_version\x0015.8\x00";
        srv.push(b'S');
        srv.extend_from_slice(&(p.len() as i32 + 4).to_be_bytes());
        srv.extend_from_slice(p);
        srv.extend_from_slice(&[b'Z', 0, 0, 0, 5, b'I']);
        let mut d = Duplex { input: std::io::Cursor::new(srv), output: Vec::new() };
        match startup(&mut d, "u", "db", "pw") {
            Login::Ok { server_version, password_asked } => {
                assert_eq!(server_version.as_deref(), Some("15.8"));
                assert!(password_asked);
            }
            _ => panic!("login failed"),
        }
        let out = d.output;
        assert!(out.windows(7).any(|w| w == b"p\0\0\0\x07pw"));
    }
}
