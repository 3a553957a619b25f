//! Forward proxies from the environment, as the Go SDK and the Databricks CLI read them
//! (golang.org/x/net/http/httpproxy): `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for http URLs
//! (upper case first, then lower case; `HTTP_PROXY` is ignored when `REQUEST_METHOD` is set, the
//! CGI "httpoxy" rule), `NO_PROXY` for exceptions. `ALL_PROXY` is not read (the Go SDK does not).
//!
//! - A proxy URL is `http://[user:password@]host[:port]` (no scheme means `http://`; the port
//!   defaults to 80). https:// and socks proxies are not supported: a configuration error, never
//!   a silent direct connection.
//! - https requests go through a `CONNECT host:443` tunnel, and TLS runs end to end inside it with
//!   the library's usual trust store and checks: the proxy sees only ciphertext, and a proxy that
//!   answers with its own certificate fails verification like any other impostor. Credentials in
//!   the proxy URL become `Proxy-Authorization: Basic`; they never appear in messages.
//! - `NO_PROXY`: comma separated; `*` disables proxies; `host` matches the host and its
//!   subdomains, `.host` / `*.host` only subdomains, `host:port` that port only, an IP address
//!   or CIDR block matches addresses.
//! - Never through a proxy: loopback addresses and `localhost` (as Go), and the Azure instance
//!   metadata service. Tests that exercise the proxy path against loopback servers set the
//!   test-only `LAKEBASE_TEST_PROXY_LOOPBACK=1` (loopback targets then go through the proxy;
//!   instance metadata still never does).

use crate::error::{Error, Result};
use std::net::IpAddr;

/// Test-only: send loopback targets through the configured proxy too.
pub const TEST_PROXY_LOOPBACK_ENV: &str = "LAKEBASE_TEST_PROXY_LOOPBACK";

/// One proxy server.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyServer {
    pub host: String,
    pub port: u16,
    user: Option<String>,
    password: Option<String>,
    /// Which variable named it, for messages.
    pub var: &'static str,
}

impl std::fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyServer({})", self.display())
    }
}

impl ProxyServer {
    /// `http://host:port`, with `***` for credentials.
    pub fn display(&self) -> String {
        let auth = if self.user.is_some() { "***@" } else { "" };
        format!("http://{auth}{}:{}", self.host, self.port)
    }

    /// The proxy as ureq takes it (credentials included).
    pub(crate) fn to_ureq(&self) -> Result<ureq::Proxy> {
        let spec = match (&self.user, &self.password) {
            (Some(u), Some(p)) => zeroize::Zeroizing::new(format!("http://{u}:{p}@{}:{}", self.host, self.port)),
            (Some(u), None) => zeroize::Zeroizing::new(format!("http://{u}:@{}:{}", self.host, self.port)),
            _ => zeroize::Zeroizing::new(format!("http://{}:{}", self.host, self.port)),
        };
        ureq::Proxy::new(spec.as_str())
            .map_err(|_| Error::config(format!("{}: {} is not a usable proxy address", self.var, self.display())))
    }

    /// `Proxy-Authorization` for requests sent in absolute form (plain http through the proxy);
    /// ureq adds it only to `CONNECT`.
    pub(crate) fn authorization(&self) -> Option<crate::secret::Secret> {
        use base64::Engine;
        let u = self.user.as_deref()?;
        let raw = zeroize::Zeroizing::new(format!("{u}:{}", self.password.as_deref().unwrap_or("")));
        Some(crate::secret::Secret::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()))))
    }
}

/// Proxies and exceptions from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    pub https: Option<ProxyServer>,
    pub http: Option<ProxyServer>,
    no_proxy: Vec<NoProxy>,
    /// Test-only (see the module documentation).
    proxy_loopback: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum NoProxy {
    All,
    /// An address, or a CIDR block (address, prefix length).
    Net(IpAddr, u8),
    /// A domain (with a leading `.`), whether the bare domain matches too, and an optional port.
    Domain {
        suffix: String,
        bare: bool,
        port: Option<u16>,
    },
}

impl ProxySettings {
    /// Read `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (and lower-case forms) through `var`. A
    /// malformed proxy URL is a configuration error naming the variable (never its credentials).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<ProxySettings> {
        let get = |names: &[&'static str]| names.iter().find_map(|n| var(n).filter(|v| !v.trim().is_empty()).map(|v| (*n, v)));
        let cgi = var("REQUEST_METHOD").is_some_and(|v| !v.is_empty());
        let https = get(&["HTTPS_PROXY", "https_proxy"]).map(|(n, v)| parse_proxy(n, &v)).transpose()?;
        let http_names: &[&'static str] = if cgi { &["http_proxy"] } else { &["HTTP_PROXY", "http_proxy"] };
        let http = get(http_names).map(|(n, v)| parse_proxy(n, &v)).transpose()?;
        let no_proxy = get(&["NO_PROXY", "no_proxy"]).map(|(_, v)| parse_no_proxy(&v)).unwrap_or_default();
        let proxy_loopback = var(TEST_PROXY_LOOPBACK_ENV).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        Ok(ProxySettings { https, http, no_proxy, proxy_loopback })
    }

    /// Whether any proxy is configured.
    pub fn any(&self) -> bool {
        self.https.is_some() || self.http.is_some()
    }

    /// The proxy for `url`, if one applies. `instance_metadata` requests never use one.
    pub fn for_url(&self, url: &url::Url, instance_metadata: bool) -> Option<&ProxyServer> {
        if instance_metadata {
            return None;
        }
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }?;
        let host = match url.host()? {
            url::Host::Domain(d) => Host::Name(d.trim_end_matches('.').to_ascii_lowercase()),
            url::Host::Ipv4(ip) => Host::Ip(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Host::Ip(IpAddr::V6(ip)),
        };
        let loopback = match &host {
            Host::Name(n) => n == "localhost" || n.ends_with(".localhost"),
            Host::Ip(ip) => ip.is_loopback(),
        };
        if loopback && !self.proxy_loopback {
            return None;
        }
        if matches!(&host, Host::Ip(IpAddr::V4(ip)) if *ip == super::tls::INSTANCE_METADATA_HOST) {
            return None;
        }
        let port = url.port_or_known_default();
        if self.no_proxy.iter().any(|np| np.matches(&host, port)) {
            return None;
        }
        Some(proxy)
    }
}

enum Host {
    Name(String),
    Ip(IpAddr),
}

impl NoProxy {
    fn matches(&self, host: &Host, port: Option<u16>) -> bool {
        match (self, host) {
            (NoProxy::All, _) => true,
            (NoProxy::Net(net, bits), Host::Ip(ip)) => in_net(*ip, *net, *bits),
            (NoProxy::Domain { suffix, bare, port: want }, Host::Name(n)) => {
                (n.ends_with(suffix.as_str()) || (*bare && n == &suffix[1..])) && want.map_or(true, |p| Some(p) == port)
            }
            _ => false,
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits.min(32) as u32) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits.min(128) as u32) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn parse_no_proxy(v: &str) -> Vec<NoProxy> {
    let mut out = Vec::new();
    for raw in v.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()) {
        if raw == "*" {
            out.push(NoProxy::All);
            continue;
        }
        if let Some((addr, bits)) = raw.split_once('/') {
            if let (Ok(ip), Ok(bits)) = (addr.parse::<IpAddr>(), bits.parse::<u8>()) {
                out.push(NoProxy::Net(ip, bits));
            }
            continue;
        }
        let unbracketed = raw.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            out.push(NoProxy::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
            continue;
        }
        // host:port, [v6]:port
        let (host, port) = match raw.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => (h.to_string(), p.parse::<u16>().ok()),
            _ => (raw.clone(), None),
        };
        let host_unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host_unbracketed.parse::<IpAddr>() {
            // An address with a port: Go matches the address (and ignores the port for IPs).
            out.push(NoProxy::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
            continue;
        }
        let host = host.strip_prefix('*').unwrap_or(&host).trim_end_matches('.').to_string();
        if host.is_empty() || host == "." {
            continue;
        }
        let (suffix, bare) = if host.starts_with('.') { (host, false) } else { (format!(".{host}"), true) };
        out.push(NoProxy::Domain { suffix, bare, port });
    }
    out
}

fn parse_proxy(var: &'static str, raw: &str) -> Result<ProxyServer> {
    let raw = raw.trim();
    let bad = |why: &str| Error::config(format!("{var} is not a usable proxy URL ({why}); expected http://[user:password@]host[:port]"));
    let with_scheme = if raw.contains("://") { raw.to_string() } else { format!("http://{raw}") };
    let u = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    match u.scheme() {
        "http" => {}
        "https" => {
            return Err(bad(
                "https:// proxies are not supported; use the proxy's http:// address (TLS to the workspace still runs end to end)",
            ))
        }
        s => return Err(bad(&format!("{s}:// proxies are not supported"))),
    }
    let host = match u.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(_)) => return Err(bad("IPv6 proxy addresses are not supported; use a host name")),
        None => return Err(bad("no host")),
    };
    let decode = |s: &str| percent_decode(s);
    let user = (!u.username().is_empty()).then(|| decode(u.username()));
    let password = u.password().map(decode);
    Ok(ProxyServer { host, port: u.port().unwrap_or(80), user, password, var })
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<ProxySettings> {
        let m: std::collections::HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProxySettings::from_env(|k| m.get(k).cloned())
    }

    fn via(s: &ProxySettings, url: &str) -> Option<String> {
        s.for_url(&url::Url::parse(url).unwrap(), false).map(|p| p.display())
    }

    #[test]
    fn scheme_picks_the_variable_and_upper_case_wins() {
        let s = settings(&[("HTTPS_PROXY", "http://p1:3128"), ("https_proxy", "http://p2:1"), ("http_proxy", "p3")]).unwrap();
        assert_eq!(via(&s, "https://x.cloud.databricks.com/api").as_deref(), Some("http://p1:3128"));
        assert_eq!(via(&s, "http://x.example.com/api").as_deref(), Some("http://p3:80"));
        assert!(settings(&[]).unwrap().for_url(&url::Url::parse("https://x/").unwrap(), false).is_none());
        // CGI: HTTP_PROXY may come from a request header (httpoxy): ignored.
        let s = settings(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]).unwrap();
        assert!(via(&s, "http://x.example.com/").is_none());
    }

    #[test]
    fn loopback_and_instance_metadata_are_never_proxied() {
        let s = settings(&[("HTTPS_PROXY", "http://p:1"), ("HTTP_PROXY", "http://p:1")]).unwrap();
        for u in
            ["http://127.0.0.1:8080/x", "http://localhost/x", "https://[::1]:9/x", "http://127.5.0.1/x", "http://169.254.169.254/metadata"]
        {
            assert!(via(&s, u).is_none(), "{u}");
        }
        let imds = url::Url::parse("http://169.254.169.254/metadata").unwrap();
        let t = settings(&[("HTTP_PROXY", "http://p:1"), (TEST_PROXY_LOOPBACK_ENV, "1")]).unwrap();
        assert_eq!(via(&t, "http://127.0.0.1:8080/x").as_deref(), Some("http://p:1"), "test setting");
        assert!(t.for_url(&imds, false).is_none() && t.for_url(&url::Url::parse("http://127.0.0.1/").unwrap(), true).is_none());
    }

    #[test]
    fn no_proxy_rules() {
        let s = settings(&[
            ("HTTPS_PROXY", "http://p:1"),
            ("NO_PROXY", " example.com, .sub.test ,*.star.test, 10.0.0.0/8, 192.168.1.7, port.test:8443, [2001:db8::1]"),
        ])
        .unwrap();
        let no = |u: &str| via(&s, u).is_none();
        assert!(no("https://example.com/") && no("https://a.example.com/") && no("https://a.b.example.com:443/"));
        assert!(!no("https://notexample.com/"));
        assert!(no("https://x.sub.test/") && !no("https://sub.test/"), "leading dot: subdomains only");
        assert!(no("https://x.star.test/") && !no("https://star.test/"));
        assert!(no("https://10.1.2.3/") && !no("https://11.1.2.3/") && no("https://192.168.1.7/"));
        assert!(no("https://port.test:8443/") && !no("https://port.test/"));
        assert!(no("https://[2001:db8::1]/") && !no("https://[2001:db8::2]/"));
        let all = settings(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]).unwrap();
        assert!(via(&all, "https://x.cloud.databricks.com/").is_none());
    }

    #[test]
    fn proxy_urls() {
        let s = settings(&[("HTTPS_PROXY", "http://us%40r:p%3Ass@proxy.corp:8080/")]).unwrap();
        let p = s.https.unwrap();
        assert_eq!((p.host.as_str(), p.port, p.display().as_str()), ("proxy.corp", 8080, "http://***@proxy.corp:8080"));
        assert_eq!(p.authorization().unwrap().expose(), "Basic dXNAcjpwOnNz");
        assert!(!format!("{p:?}").contains("p:ss"));
        for bad in ["https://proxy:443", "socks5://proxy:1080", "http://[::1]:3128", "http://"] {
            let e = settings(&[("HTTPS_PROXY", bad)]).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Config, "{bad}");
            assert!(e.message().starts_with("HTTPS_PROXY is not a usable proxy URL"), "{e}");
        }
        let e = settings(&[("HTTPS_PROXY", "ftp://user:hunter2@proxy")]).unwrap_err();
        assert!(!e.message().contains("hunter2"), "{e}");
    }
}
