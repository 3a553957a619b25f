//! Command-line arguments (`clap::Args`, so the `lakebase` command can flatten them).

use clap::{Args, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `lakebase proxy [OPTIONS] [TARGET...]`: a local Postgres endpoint that logs in to Lakebase
/// with rotating OAuth passwords.
#[derive(Args, Debug, Clone)]
pub struct ProxyArgs {
    /// Instance names or endpoint paths (`projects/P/branches/B/endpoints/E`), each optionally
    /// followed by `?port=N`. None: the configured one (LAKEBASE_INSTANCE, LAKEBASE_ENDPOINT,
    /// profile). Several listen on consecutive ports from --port.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Address to listen on. Anything but loopback needs --allow-non-loopback.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub address: IpAddr,

    /// First port to listen on (0: any free port; the chosen ports are logged).
    #[arg(long, default_value_t = 5432)]
    pub port: u16,

    /// Also listen on a unix socket `DIR/.s.PGSQL.<port>` (created 0700 if missing; the socket
    /// is 0600): the private option on a shared machine.
    #[arg(long, value_name = "DIR")]
    pub unix_socket: Option<PathBuf>,

    /// Listen only on the unix socket (no TCP listener). Needs --unix-socket.
    #[arg(long, requires = "unix_socket")]
    pub unix_socket_only: bool,

    /// Upstream Postgres host (and port) instead of the discovered one; port 5432 otherwise.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub upstream: Option<String>,

    /// Extra CA certificates (PEM) trusted for the upstream, in addition to the system store.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,

    /// Allow --address to be a non-loopback address: anyone who reaches the port logs in as you.
    #[arg(long)]
    pub allow_non_loopback: bool,

    /// Certificate chain (PEM) offered to clients that ask for TLS (with --tls-key). Clients off
    /// loopback must then use TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Address of the HTTP server for /startup, /liveness, /readiness and /metrics.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub http_address: IpAddr,

    /// Port of the HTTP server (none: no HTTP server; 0: any free port).
    #[arg(long)]
    pub http_port: Option<u16>,

    /// Refuse client connections beyond this many open at once (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_connections: usize,

    /// On SIGTERM/SIGINT stop accepting and wait up to this long for open connections to end.
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub max_sigterm_delay: Duration,

    /// How long to keep retrying a waking upstream (refused, timed out, "starting up").
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// How long a client may take to send its startup packet.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub client_startup_timeout: Duration,

    /// Worker threads relaying connections. 0: one per CPU, or a single-threaded runtime on a
    /// machine with at most 2 CPUs (the least CPU per relayed round trip when the proxy shares the
    /// cores with its clients). 1: single-threaded.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Log in once to every target (default user, database databricks_postgres), then exit:
    /// 0 when every login worked, 1 with the reason otherwise.
    #[arg(long)]
    pub run_connection_test: bool,

    /// Database used by --run-connection-test.
    #[arg(long, default_value = "databricks_postgres", value_name = "NAME")]
    pub connection_test_database: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// `10s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (s, 1000.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("not a duration: {s:?} (e.g. 10s, 500ms, 2m)"))?;
    if !v.is_finite() || v < 0.0 || v * mult_ms > 86_400_000.0 {
        return Err(format!("duration out of range: {s:?} (0 to 24h)"));
    }
    Ok(Duration::from_micros((v * mult_ms * 1000.0) as u64))
}

/// What a TARGET names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    Instance(String),
    Endpoint(String),
}

impl TargetSpec {
    pub fn name(&self) -> &str {
        match self {
            TargetSpec::Instance(n) | TargetSpec::Endpoint(n) => n,
        }
    }
}

/// One listener: a target (None = the configured one) and its port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    pub target: Option<TargetSpec>,
    pub port: u16,
}

/// Resolve TARGET arguments into listeners: `?port=N` wins, others take consecutive ports from
/// `base` (skipping ports given explicitly).
pub fn listener_specs(targets: &[String], base: u16) -> Result<Vec<ListenerSpec>, String> {
    if targets.is_empty() {
        return Ok(vec![ListenerSpec { target: None, port: base }]);
    }
    let mut parsed = Vec::new();
    for t in targets {
        let (name, query) = match t.split_once('?') {
            Some((n, q)) => (n, Some(q)),
            None => (t.as_str(), None),
        };
        let mut port = None;
        if let Some(q) = query {
            for kv in q.split('&') {
                match kv.split_once('=') {
                    Some(("port", v)) => port = Some(v.parse::<u16>().map_err(|_| format!("{t}: port must be a number from 0 to 65535"))?),
                    _ => return Err(format!("{t}: unknown option {kv:?} (only ?port=N)")),
                }
            }
        }
        if name.is_empty() {
            return Err(format!("{t}: empty target name"));
        }
        let spec = if name.starts_with("projects/") {
            let parts: Vec<&str> = name.split('/').collect();
            if parts.len() != 6 || parts[2] != "branches" || parts[4] != "endpoints" || parts.iter().any(|p| p.is_empty()) {
                return Err(format!("{name}: an endpoint path is projects/P/branches/B/endpoints/E"));
            }
            TargetSpec::Endpoint(name.to_string())
        } else if name.contains('/') {
            return Err(format!("{name}: not an instance name nor an endpoint path (projects/P/branches/B/endpoints/E)"));
        } else {
            TargetSpec::Instance(name.to_string())
        };
        parsed.push((spec, port));
    }
    let explicit: Vec<u16> = parsed.iter().filter_map(|(_, p)| *p).filter(|p| *p != 0).collect();
    let mut next = base as u32;
    let mut out = Vec::new();
    for (spec, port) in parsed {
        let port = match port {
            Some(p) => p,
            None if base == 0 => 0,
            None => {
                while explicit.contains(&(next as u16)) {
                    next += 1;
                }
                if next > 65535 {
                    return Err("ran out of ports above --port".into());
                }
                next += 1;
                (next - 1) as u16
            }
        };
        out.push(ListenerSpec { target: Some(spec), port });
    }
    let mut ports: Vec<u16> = out.iter().map(|l| l.port).filter(|p| *p != 0).collect();
    ports.sort_unstable();
    if ports.windows(2).any(|w| w[0] == w[1]) {
        return Err("two targets on one port".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("25h").is_err());
    }

    #[test]
    fn targets_take_consecutive_ports_unless_given() {
        let t = |v: &[&str]| listener_specs(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), 5432);
        assert_eq!(t(&[]).unwrap(), vec![ListenerSpec { target: None, port: 5432 }]);
        let l = t(&["a", "projects/p/branches/b/endpoints/e", "c?port=5433", "d"]).unwrap();
        let ports: Vec<u16> = l.iter().map(|l| l.port).collect();
        assert_eq!(ports, vec![5432, 5434, 5433, 5435]);
        assert_eq!(l[1].target, Some(TargetSpec::Endpoint("projects/p/branches/b/endpoints/e".into())));
        assert_eq!(l[0].target, Some(TargetSpec::Instance("a".into())));
        assert!(t(&["a?port=5432", "b?port=5432"]).is_err());
        assert!(t(&["a?port=x"]).is_err());
        assert!(t(&["a?host=x"]).is_err());
        assert!(t(&["projects/p/endpoints/e"]).is_err());
        assert!(t(&["a/b"]).is_err());
        assert!(t(&["?port=1"]).is_err());
    }
}
