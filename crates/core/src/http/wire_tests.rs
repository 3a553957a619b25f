//! The HTTP client against loopback servers (plain and TLS with the test certificates in
//! `testdata/`) and a loopback forward proxy: User-Agent, what is retried and what is not,
//! certificate failures, the private-link redirect, proxies.

use super::*;
use crate::clock::SystemClock;
use rustls::pki_types::pem::PemObject;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/testdata");

fn testdata(name: &str) -> String {
    format!("{TESTDATA}/{name}")
}

/// A request as a test server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub method: String,
    /// The request target as sent (origin form, or absolute form through a proxy).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str())
    }
}

/// What a handler answers: status, extra headers, body, and a delay before answering.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

pub(crate) fn answer(status: u16, body: &str) -> Answer {
    Answer { status, headers: vec![], body: body.to_string(), delay: Duration::ZERO }
}

type Handler = dyn Fn(usize, &Seen) -> Answer + Send + Sync;

pub(crate) struct TestServer {
    pub base: String,
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    /// Plain http on 127.0.0.1.
    pub fn plain(h: impl Fn(usize, &Seen) -> Answer + Send + Sync + 'static) -> TestServer {
        Self::start(None, Arc::new(h))
    }
    /// https on 127.0.0.1 with `testdata/<cert>.crt` / `.key`.
    pub fn tls(cert: &str, h: impl Fn(usize, &Seen) -> Answer + Send + Sync + 'static) -> TestServer {
        let chain = rustls::pki_types::CertificateDer::pem_file_iter(testdata(&format!("{cert}.crt")))
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(testdata(&format!("{cert}.key"))).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Self::start(Some(Arc::new(cfg)), Arc::new(h))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Arc<Handler>) -> TestServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (s2, n) = (seen.clone(), Arc::new(AtomicUsize::new(0)));
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let (seen, handler, tls, n) = (s2.clone(), handler.clone(), tls.clone(), n.clone());
                std::thread::spawn(move || match tls {
                    Some(cfg) => {
                        let sc = rustls::ServerConnection::new(cfg).unwrap();
                        let mut s = rustls::StreamOwned::new(sc, conn);
                        // A failed handshake (the client refused the certificate) ends here.
                        if s.conn.complete_io(&mut s.sock).is_ok() {
                            serve(&mut s, &seen, &*handler, &n);
                        }
                    }
                    None => {
                        let mut c = conn;
                        serve(&mut c, &seen, &*handler, &n)
                    }
                });
            }
        });
        TestServer { base: format!("{scheme}://127.0.0.1:{port}"), port, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn read_head(r: &mut impl BufRead) -> Option<Seen> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Some(Seen { method, target, headers, body: String::new() })
}

fn serve(stream: &mut (impl std::io::Read + Write), seen: &Mutex<Vec<Seen>>, handler: &Handler, n: &AtomicUsize) {
    let mut r = BufReader::new(&mut *stream);
    let Some(mut req) = read_head(&mut r) else { return };
    let len: usize = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    if std::io::Read::read_exact(&mut r, &mut body).is_err() {
        return;
    }
    drop(r);
    req.body = String::from_utf8_lossy(&body).into_owned();
    seen.lock().unwrap().push(req.clone());
    let a = handler(n.fetch_add(1, Ordering::SeqCst), &req);
    std::thread::sleep(a.delay);
    let mut out = format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", a.status, a.body.len());
    for (k, v) in a.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&a.body);
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

/// A loopback forward proxy: `CONNECT` tunnels and absolute-form requests, optionally requiring
/// `Proxy-Authorization: Basic base64(user:password)`. Records (method, target, auth header).
pub(crate) struct TestProxy {
    pub port: u16,
    log: Arc<Mutex<Vec<ProxyLogEntry>>>,
}

/// (method, target, `Proxy-Authorization`).
type ProxyLogEntry = (String, String, Option<String>);

impl TestProxy {
    pub fn start(require: Option<&str>) -> TestProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let log: Arc<Mutex<Vec<ProxyLogEntry>>> = Arc::default();
        let (log2, require) = (log.clone(), require.map(String::from));
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (log, require) = (log2.clone(), require.clone());
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let Some(head) = read_head(&mut r) else { return };
                    let auth = head.header("proxy-authorization").map(String::from);
                    log.lock().unwrap().push((head.method.clone(), head.target.clone(), auth.clone()));
                    if let Some(want) = &require {
                        use base64::Engine;
                        let ok = auth.as_deref().and_then(|a| a.split_once(' ')).is_some_and(|(scheme, b)| {
                            scheme.eq_ignore_ascii_case("basic")
                                && base64::engine::general_purpose::STANDARD.decode(b).ok().as_deref() == Some(want.as_bytes())
                        });
                        if !ok {
                            let _ = conn
                                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                            return;
                        }
                    }
                    let (authority, forward) = if head.method == "CONNECT" {
                        (head.target.clone(), None)
                    } else {
                        let u = url::Url::parse(&head.target).unwrap();
                        let origin = format!("{}{}", u.path(), u.query().map(|q| format!("?{q}")).unwrap_or_default());
                        let mut fwd = format!("{} {origin} HTTP/1.1\r\n", head.method);
                        for (k, v) in &head.headers {
                            if !k.eq_ignore_ascii_case("proxy-authorization") {
                                fwd.push_str(&format!("{k}: {v}\r\n"));
                            }
                        }
                        fwd.push_str("\r\n");
                        (format!("{}:{}", u.host_str().unwrap(), u.port().unwrap()), Some(fwd))
                    };
                    let Ok(mut up) = TcpStream::connect(&authority) else {
                        let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                        return;
                    };
                    match forward {
                        None => {
                            let _ = conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                        }
                        Some(f) => {
                            let _ = up.write_all(f.as_bytes());
                        }
                    }
                    // Whatever the reader already buffered goes up first, then pipe both ways.
                    let _ = up.write_all(r.buffer());
                    let mut down = up.try_clone().unwrap();
                    let mut c2 = conn.try_clone().unwrap();
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut down, &mut c2);
                    });
                    let _ = std::io::copy(&mut conn, &mut up);
                });
            }
        });
        TestProxy { port, log }
    }
    pub fn log(&self) -> Vec<ProxyLogEntry> {
        self.log.lock().unwrap().clone()
    }
}

fn client_with(opts: HttpOptions) -> HttpClient {
    HttpClient::new(opts, Arc::new(SystemClock))
}

fn quick() -> HttpOptions {
    HttpOptions { foreground_deadline: Duration::from_secs(10), ..HttpOptions::default() }
}

#[test]
fn user_agent_like_the_sdks() {
    let ua = user_agent(Some("oauth-m2m"), Some(("terraform", "1.9.0")));
    let os = if cfg!(target_os = "macos") { "darwin" } else { std::env::consts::OS };
    assert_eq!(ua, format!("liblakebase/{} os/{os} auth/oauth-m2m upstream/terraform upstream-version/1.9.0", env!("CARGO_PKG_VERSION")));
    assert_eq!(user_agent(None, Some(("only-product", ""))), format!("liblakebase/{} os/{os}", env!("CARGO_PKG_VERSION")));
    // Values that would break the header are reduced to token characters.
    assert!(user_agent(Some("pat"), Some(("evil\r\nX-Injected: 1", "1 2"))).ends_with("upstream/evil--X-Injected--1 upstream-version/1-2"));

    let s = TestServer::plain(|_, _| answer(200, "{}"));
    let c = client_with(quick());
    c.set_user_agent(user_agent(Some("pat"), None));
    c.send(&Request::get(format!("{}/api/x", s.base))).unwrap();
    assert_eq!(s.seen()[0].header("user-agent"), Some(user_agent(Some("pat"), None).as_str()));
}

#[test]
fn gateway_errors_are_retried_only_from_token_endpoints() {
    let s = TestServer::plain(|n, _| if n == 0 { answer(502, "<html>bad gateway</html>") } else { answer(200, "{}") });
    let c = client_with(quick());
    let r = c.send(&Request::token_request(format!("{}/oidc/v1/token", s.base), vec![])).unwrap();
    assert_eq!((r.status, s.hits()), (200, 2));
    let s = TestServer::plain(|n, _| if n == 0 { answer(504, "") } else { answer(200, "{}") });
    assert_eq!(c.send(&Request::token_request(format!("{}/t", s.base), vec![])).unwrap().status, 200);
    let s = TestServer::plain(|_, _| answer(502, "bad gateway"));
    assert_eq!(c.send(&Request::get(format!("{}/api/x", s.base))).unwrap().status, 502);
    assert_eq!(s.hits(), 1, "an API call's 502 is the answer");
}

#[test]
fn message_matched_transient_errors_are_retried() {
    let bodies = [
        r#"{"error_code": "BAD_REQUEST", "message": "Please try again later or try a faster operation."}"#,
        r#"{"error_code": "BAD_REQUEST", "message": "RPC token bucket limit has been exceeded"}"#,
        r#"{"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "rate limit"}"#,
        r#"{"error_code": "INTERNAL_ERROR", "message": "Unexpected error"}"#,
        "REQUEST_LIMIT_EXCEEDED: Your request was rejected due to a rate limit. Please try again later.",
    ];
    let c = client_with(quick());
    for b in bodies {
        let body = b.to_string();
        let s = TestServer::plain(move |n, _| if n == 0 { answer(400, &body) } else { answer(200, "{}") });
        let r = c.send(&Request::post_json(format!("{}/api/2.0/database/credentials", s.base), serde_json::json!({})).repeatable());
        assert_eq!((r.unwrap().status, s.hits()), (200, 2), "{b}");
    }
    let s = TestServer::plain(|_, _| answer(400, r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "request_id is required"}"#));
    assert_eq!(c.send(&Request::get(format!("{}/api/x", s.base))).unwrap().status, 400);
    assert_eq!(s.hits(), 1, "other client errors are final");
}

#[test]
fn a_timed_out_response_is_repeated_only_for_repeatable_requests() {
    let opts = HttpOptions {
        connect_timeout: Duration::from_millis(200),
        read_timeout: Duration::from_millis(300),
        foreground_deadline: Duration::from_secs(10),
        ..HttpOptions::default()
    };
    let c = client_with(opts);
    let slow_first =
        |n: usize, _: &Seen| Answer { delay: if n == 0 { Duration::from_secs(2) } else { Duration::ZERO }, ..answer(200, "{}") };
    // A mint: sent again, and the second answer is used.
    let s = TestServer::plain(slow_first);
    let req = Request::post_json(format!("{}/api/2.0/postgres/credentials", s.base), serde_json::json!({})).repeatable();
    assert_eq!(c.send(&req).unwrap().status, 200);
    assert_eq!(s.hits(), 2);
    // Any other POST: not sent again (SDK 0.167), the error says why.
    let s = TestServer::plain(slow_first);
    let e = c.send(&Request::post_json(format!("{}/api/2.0/other", s.base), serde_json::json!({}))).unwrap_err();
    assert_eq!((e.kind(), s.hits()), (ErrorKind::Network, 1));
    assert!(e.message().starts_with("not retried: the request may have been processed"), "{e}");
    // A GET is repeatable by nature.
    let s = TestServer::plain(slow_first);
    assert_eq!(c.send(&Request::get(format!("{}/api/2.0/x", s.base))).unwrap().status, 200);
    assert_eq!(s.hits(), 2);
}

#[test]
fn certificate_failures_fail_at_once_without_sending_anything() {
    let opts = HttpOptions { ca_file: Some(testdata("ca.crt")), ..quick() };
    let c = client_with(opts);
    let good = TestServer::tls("localhost", |_, _| answer(200, "{}"));
    assert_eq!(c.send(&Request::get(format!("https://localhost:{}/api/x", good.port))).unwrap().status, 200);

    for (cert, host, want) in [
        ("untrusted", "localhost", "unknown issuer"),
        ("wrong-host", "localhost", "not valid for the name localhost"),
        ("localhost", "127.0.0.1", ""),
    ] {
        let s = TestServer::tls(cert, |_, _| answer(200, "{}"));
        let t0 = crate::clock::Stopwatch::start();
        let r = c.send(&Request::get(format!("https://{host}:{}/api/x", s.port)).auth(Secret::new("Bearer must-not-leak")));
        if want.is_empty() {
            assert_eq!(r.unwrap().status, 200, "the certificate names 127.0.0.1 too");
            continue;
        }
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains(want) && e.message().contains("ca_file / LAKEBASE_CA_FILE"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(2), "not retried: {:?}", t0.elapsed());
        assert_eq!(s.hits(), 0, "no request (and no token) reached the server");
    }
}

#[test]
fn the_private_link_redirect_is_the_sdks_error_at_once() {
    let s = TestServer::plain(|_, _| Answer {
        headers: vec![("Location".into(), "/login.html?error=private-link-validation-error".into())],
        ..answer(302, "")
    });
    let e = client_with(quick()).send(&Request::get(format!("{}/api/2.0/preview/scim/v2/Me", s.base))).unwrap_err();
    assert_eq!((e.kind(), e.status(), e.error_code()), (ErrorKind::Auth, Some(403), Some(apierr::PRIVATE_LINK_ERROR_CODE)));
    assert!(e.message().contains("AWS PrivateLink enabled and is not accessible from the current network"), "{e}");
    assert_eq!(s.hits(), 1);
}

fn proxied(pairs: &[(&str, String)]) -> HttpOptions {
    let m: std::collections::HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    HttpOptions { proxy: proxy::ProxySettings::from_env(|k| m.get(k).cloned()).unwrap(), ca_file: Some(testdata("ca.crt")), ..quick() }
}

#[test]
fn https_goes_through_a_connect_tunnel_with_tls_end_to_end() {
    let s = TestServer::tls("localhost", |_, _| answer(200, "{}"));
    let p = TestProxy::start(Some("u@x:p:w"));
    let url = format!("https://localhost:{}/api/2.0/x", s.port);
    let auth_url = format!("http://u%40x:p%3Aw@127.0.0.1:{}", p.port);
    let c = client_with(proxied(&[("HTTPS_PROXY", auth_url.clone()), (proxy::TEST_PROXY_LOOPBACK_ENV, "1".into())]));
    assert_eq!(c.send(&Request::get(url.clone()).auth(Secret::new("Bearer t"))).unwrap().status, 200);
    let log = p.log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].0.as_str(), log[0].1.as_str()), ("CONNECT", format!("localhost:{}", s.port).as_str()));
    assert_eq!(s.seen()[0].header("authorization"), Some("Bearer t"), "the workspace got the request through the tunnel");
    assert!(s.seen()[0].header("proxy-authorization").is_none(), "the proxy credentials stay with the proxy");

    // Wrong proxy credentials: a configuration error that does not show them.
    let c = client_with(proxied(&[
        ("HTTPS_PROXY", format!("http://u:bad@127.0.0.1:{}", p.port)),
        (proxy::TEST_PROXY_LOOPBACK_ENV, "1".into()),
    ]));
    let e = c.send(&Request::get(url.clone())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("407") && !e.message().contains("bad"), "{e}");

    // An impostor behind the proxy still fails verification.
    let imp = TestServer::tls("untrusted", |_, _| answer(200, "{}"));
    let c = client_with(proxied(&[("HTTPS_PROXY", auth_url), (proxy::TEST_PROXY_LOOPBACK_ENV, "1".into())]));
    let e = c.send(&Request::get(format!("https://localhost:{}/api/x", imp.port))).unwrap_err();
    assert!(e.message().contains("unknown issuer"), "{e}");
    assert_eq!(imp.hits(), 0);
}

#[test]
fn plain_http_proxy_no_proxy_and_loopback() {
    let s = TestServer::plain(|_, _| answer(200, "{}"));
    let p = TestProxy::start(Some("u:pw"));
    let url = format!("{}/api/2.0/x?a=1", s.base);
    let proxy_url = format!("http://u:pw@127.0.0.1:{}", p.port);
    // Loopback is never proxied without the test setting.
    let c = client_with(proxied(&[("HTTP_PROXY", proxy_url.clone())]));
    c.send(&Request::get(url.clone())).unwrap();
    assert!(p.log().is_empty());
    // With it: absolute form, with Proxy-Authorization.
    let c = client_with(proxied(&[("HTTP_PROXY", proxy_url.clone()), (proxy::TEST_PROXY_LOOPBACK_ENV, "1".into())]));
    assert_eq!(c.send(&Request::get(url.clone())).unwrap().status, 200);
    let log = p.log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].0.as_str(), log[0].1.as_str()), ("GET", url.as_str()));
    assert!(log[0].2.as_deref().is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(s.seen().last().unwrap().target, "/api/2.0/x?a=1");
    // NO_PROXY wins.
    let c =
        client_with(proxied(&[("HTTP_PROXY", proxy_url), ("NO_PROXY", "127.0.0.1".into()), (proxy::TEST_PROXY_LOOPBACK_ENV, "1".into())]));
    c.send(&Request::get(url)).unwrap();
    assert_eq!(p.log().len(), 1);
    // Instance metadata never goes through a proxy.
    let c = client_with(proxied(&[("HTTP_PROXY", format!("http://127.0.0.1:{}", p.port)), (proxy::TEST_PROXY_LOOPBACK_ENV, "1".into())]));
    c.send(&Request::instance_metadata(format!("{}/metadata/identity", s.base))).unwrap();
    assert_eq!(p.log().len(), 1);
}
