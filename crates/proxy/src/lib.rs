//! `lakebase proxy`: a local Postgres endpoint for clients that do not use libpq.
//!
//! Clients connect without a password (loopback TCP or a unix socket); for each connection the
//! proxy opens a verified-TLS connection to the Lakebase database, answers its password request
//! with the cached OAuth token, hands the client the server's greeting (with the proxy's own
//! cancel key), and relays bytes both ways.
//!
//! Entry points: [`ProxyArgs`] (clap, flattened into the `lakebase` command) and [`run`]
//! (or [`run_with`] for another [`CredentialSource`]). Modules, top down: `conn` (one client)
//! → `upstream` (login, retries, cancel) → `protocol` (wire messages) / `relay` / `tls`;
//! `http` + `metrics` (observability); `source` (the one interface to the core) and
//! `core_source` (its implementation with the `lakebase` library).

mod args;
mod cancel;
mod conn;
pub mod core_source;
mod http;
pub mod log;
mod metrics;
#[doc(hidden)]
pub mod protocol;
mod relay;
pub mod source;
mod stream;
mod tls;
mod upstream;

pub use args::{listener_specs, parse_duration, ListenerSpec, LogFormat, LogLevel, ProxyArgs, TargetSpec};
pub use source::{BoxFuture, CredentialSource, Password, SourceError, SourceErrorKind, SourceStats};

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stream::ClientStream;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, OnceCell};
use tokio::time::Instant;

/// Why the proxy stopped or could not start. The message never holds a secret.
#[derive(Debug)]
pub struct ProxyError {
    pub message: String,
}

impl ProxyError {
    fn new(m: impl Into<String>) -> Self {
        ProxyError { message: m.into() }
    }
    /// The process exit code for this error (1).
    pub fn exit_code(&self) -> i32 {
        1
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProxyError {}

/// One target's password source and upstream address (resolved on first use, then cached).
pub(crate) struct TargetState {
    label: String,
    source: Arc<dyn CredentialSource>,
    upstream_override: Option<(String, u16)>,
    tls: Arc<rustls::ClientConfig>,
    upstream: OnceCell<Arc<upstream::Upstream>>,
    default_user: OnceCell<String>,
}

impl TargetState {
    async fn upstream(&self) -> Result<Arc<upstream::Upstream>, String> {
        self.upstream
            .get_or_try_init(|| async {
                let (host, port) = match &self.upstream_override {
                    Some((h, p)) => (h.clone(), *p),
                    None => {
                        let h = self
                            .source
                            .upstream_host()
                            .await
                            .map_err(|e| format!("lakebase proxy: could not find the database host: {e}"))?;
                        (h, 5432)
                    }
                };
                Ok(Arc::new(upstream::Upstream { host, port, tls: self.tls.clone() }))
            })
            .await
            .cloned()
    }

    async fn default_user(&self) -> Result<String, SourceError> {
        self.default_user.get_or_try_init(|| self.source.default_user()).await.cloned()
    }
}

pub(crate) struct Shared {
    metrics: metrics::Metrics,
    cancels: cancel::Registry,
    targets: Vec<Arc<TargetState>>,
    client_tls: Option<tokio_rustls::TlsAcceptor>,
    connect_timeout: Duration,
    startup_timeout: Duration,
    max_connections: usize,
    /// Connections past startup (logging in or relaying).
    active: AtomicUsize,
    started: AtomicBool,
    draining: AtomicBool,
}

impl Shared {
    fn readiness(&self) -> (bool, &'static str) {
        if !self.started.load(Ordering::Acquire) {
            (false, "starting")
        } else if self.draining.load(Ordering::Acquire) {
            (false, "shutting down")
        } else if self.max_connections > 0 && self.active.load(Ordering::Acquire) >= self.max_connections {
            (false, "at --max-connections")
        } else {
            (true, "ok")
        }
    }
}

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Run the proxy with lakebase-core's credentials until `shutdown` resolves (then drain for up
/// to --max-sigterm-delay), or run the connection test and return. `options` are settings as for
/// `lakebase_client_new` (the command's `--options` / `--profile`); they win over the environment.
pub async fn run(args: ProxyArgs, options: Vec<(String, String)>, shutdown: impl Future<Output = ()> + Send) -> Result<(), ProxyError> {
    run_with(args, move |t| core_source::CoreSource::new(&options, t).map(|s| Arc::new(s) as Arc<dyn CredentialSource>), shutdown).await
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Raise the open-file soft limit to the hard limit: each client costs two descriptors.
fn raise_fd_limit() {
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// [`run`] with another credential source (one per target; `None` = the configured target).
pub async fn run_with<F>(args: ProxyArgs, make_source: F, shutdown: impl Future<Output = ()> + Send) -> Result<(), ProxyError>
where
    F: Fn(Option<&TargetSpec>) -> Result<Arc<dyn CredentialSource>, SourceError>,
{
    log::init(args.log_format, args.log_level);
    if !is_loopback(args.address) && !args.allow_non_loopback && !args.unix_socket_only {
        return Err(ProxyError::new(format!(
            "--address {} is not a loopback address: anyone who can reach it would log in as you. Pass --allow-non-loopback to do it anyway (and --tls-cert/--tls-key to encrypt it)",
            args.address
        )));
    }
    let specs = listener_specs(&args.targets, args.port).map_err(ProxyError::new)?;
    let upstream_override = args.upstream.as_deref().map(upstream::parse_host_port).transpose().map_err(ProxyError::new)?;
    let up_tls = tls::upstream_config(args.upstream_ca.as_deref()).map_err(ProxyError::new)?;
    let client_tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(tls::client_config(c, k).map_err(ProxyError::new)?)),
        _ => None,
    };
    let mut targets = Vec::new();
    for s in &specs {
        let source = make_source(s.target.as_ref()).map_err(|e| ProxyError::new(format!("lakebase proxy: {e}")))?;
        targets.push(Arc::new(TargetState {
            label: s.target.as_ref().map(|t| t.name().to_string()).unwrap_or_else(|| "default".into()),
            source,
            upstream_override: upstream_override.clone(),
            tls: up_tls.clone(),
            upstream: OnceCell::new(),
            default_user: OnceCell::new(),
        }));
    }
    raise_fd_limit();
    let shared = Arc::new(Shared {
        metrics: metrics::Metrics::default(),
        cancels: cancel::Registry::default(),
        targets,
        client_tls,
        connect_timeout: args.connect_timeout,
        startup_timeout: args.client_startup_timeout,
        max_connections: args.max_connections,
        active: AtomicUsize::new(0),
        started: AtomicBool::new(false),
        draining: AtomicBool::new(false),
    });

    if args.run_connection_test {
        return connection_test(&shared, &args.connection_test_database).await;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let (kill_tx, kill_rx) = watch::channel(false);
    let mut sockets: Vec<PathBuf> = Vec::new();
    let mut tasks = Vec::new();
    for (spec, target) in specs.iter().zip(shared.targets.iter()) {
        let mut port = spec.port;
        if !args.unix_socket_only {
            let addr = SocketAddr::new(args.address, port);
            let l = TcpListener::bind(addr).await.map_err(|e| ProxyError::new(format!("cannot listen on {addr}: {e}")))?;
            let local = l.local_addr().map_err(|e| ProxyError::new(e.to_string()))?;
            port = local.port();
            log::info("listening", &[("address", &local), ("target", &target.label)]);
            tasks.push(tokio::spawn(accept_loop(l, shared.clone(), target.clone(), stop_rx.clone(), kill_rx.clone())));
        }
        if let Some(dir) = &args.unix_socket {
            if port == 0 {
                return Err(ProxyError::new("--unix-socket-only needs an explicit --port (the socket is named .s.PGSQL.<port>)"));
            }
            let (l, path) = bind_unix(dir, port)?;
            log::info("listening", &[("socket", &path.display()), ("target", &target.label)]);
            sockets.push(path);
            tasks.push(tokio::spawn(accept_loop(l, shared.clone(), target.clone(), stop_rx.clone(), kill_rx.clone())));
        }
    }
    if let Some(p) = args.http_port {
        let addr = SocketAddr::new(args.http_address, p);
        let l = TcpListener::bind(addr).await.map_err(|e| ProxyError::new(format!("cannot listen on {addr} (--http-port): {e}")))?;
        log::info("http listening", &[("address", &l.local_addr().map_err(|e| ProxyError::new(e.to_string()))?)]);
        tasks.push(tokio::spawn(http::serve(l, shared.clone(), stop_rx.clone())));
    }
    shared.started.store(true, Ordering::Release);
    log::info("ready", &[("upstream_connect_timeout_ms", &args.connect_timeout.as_millis()), ("threads", &args.threads)]);

    shutdown.await;
    shared.draining.store(true, Ordering::Release);
    let _ = stop_tx.send(true);
    for p in &sockets {
        let _ = std::fs::remove_file(p);
    }
    let open = shared.metrics.connections_open.load(Ordering::Acquire);
    log::info("shutting down", &[("open_connections", &open), ("max_sigterm_delay_ms", &args.max_sigterm_delay.as_millis())]);
    let until = Instant::now() + args.max_sigterm_delay;
    while shared.metrics.connections_open.load(Ordering::Acquire) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now()))).await;
    }
    let left = shared.metrics.connections_open.load(Ordering::Acquire);
    let _ = kill_tx.send(true);
    for t in tasks {
        t.abort();
    }
    if left > 0 {
        log::warn("closed connections still open at the end of --max-sigterm-delay", &[("connections", &left)]);
    }
    log::info("stopped", &[]);
    Ok(())
}

fn bind_unix(dir: &std::path::Path, port: u16) -> Result<(UnixListener, PathBuf), ProxyError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| ProxyError::new(format!("--unix-socket {}: {e}", dir.display())))?;
    } else if let Ok(m) = std::fs::metadata(dir) {
        if m.permissions().mode() & 0o077 != 0 {
            log::warn(
                "the unix socket directory can be entered by other users; the socket itself is 0600",
                &[("dir", &dir.display()), ("mode", &format!("{:o}", m.permissions().mode() & 0o777))],
            );
        }
    }
    let path = dir.join(format!(".s.PGSQL.{port}"));
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(ProxyError::new(format!("{} is in use by another server", path.display())));
        }
        let _ = std::fs::remove_file(&path);
    }
    let l = UnixListener::bind(&path).map_err(|e| ProxyError::new(format!("cannot listen on {}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ProxyError::new(format!("chmod {}: {e}", path.display())))?;
    Ok((l, path))
}

/// The runtime `lakebase proxy` runs on, and its worker count: `--threads` resolved. 0 picks a
/// single-threaded runtime on machines with at most 2 CPUs, where the proxy shares the cores with
/// its clients and often the server, and a second worker only adds wake-ups between threads (about
/// a fifth more CPU per relayed round trip, bench 8); one worker per CPU otherwise.
pub fn runtime(threads: usize) -> std::io::Result<(tokio::runtime::Runtime, usize)> {
    let n = match threads {
        0 => match std::thread::available_parallelism().map_or(1, usize::from) {
            c if c <= 2 => 1,
            c => c,
        },
        n => n,
    };
    let mut b = if n == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(n);
        b
    };
    Ok((b.enable_all().build()?, n))
}

fn spawn_conn(shared: &Arc<Shared>, target: &Arc<TargetState>, s: ClientStream, loopback: bool, kill: &watch::Receiver<bool>) {
    let (sh, t, mut kill) = (shared.clone(), target.clone(), kill.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = conn::serve(sh, t, s, loopback) => {}
            _ = kill.changed() => {}
        }
    });
}

async fn accept_error_pause(e: std::io::Error) {
    log::warn("accept failed", &[("error", &e)]);
    // Out of descriptors or memory: let connections finish before accepting again.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A listener the accept loop serves: TCP (loopback decided per peer) or a unix socket.
trait Accept {
    fn accept_client(&self) -> impl std::future::Future<Output = std::io::Result<(ClientStream, bool)>> + Send;
}

impl Accept for TcpListener {
    async fn accept_client(&self) -> std::io::Result<(ClientStream, bool)> {
        let (s, peer) = self.accept().await?;
        let _ = s.set_nodelay(true);
        Ok((ClientStream::Tcp(s), is_loopback(peer.ip())))
    }
}

impl Accept for UnixListener {
    async fn accept_client(&self) -> std::io::Result<(ClientStream, bool)> {
        let (s, _) = self.accept().await?;
        Ok((ClientStream::Unix(s), true))
    }
}

async fn accept_loop<L: Accept>(
    l: L,
    shared: Arc<Shared>,
    target: Arc<TargetState>,
    mut stop: watch::Receiver<bool>,
    kill: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = l.accept_client() => match r {
                Ok((s, loopback)) => spawn_conn(&shared, &target, s, loopback, &kill),
                Err(e) => accept_error_pause(e).await,
            },
            _ = stop.changed() => return,
        }
    }
}

/// One real login per target as the default user; Ok when all worked.
async fn connection_test(shared: &Shared, database: &str) -> Result<(), ProxyError> {
    let mut failures = Vec::new();
    for t in &shared.targets {
        let r: Result<String, String> = async {
            let user = t.default_user().await.map_err(|e| format!("workspace identity: {e}"))?;
            let up = t.upstream().await?;
            let params = vec![
                ("user".to_string(), user.clone()),
                ("database".to_string(), database.to_string()),
                ("application_name".to_string(), "lakebase-proxy-connection-test".to_string()),
            ];
            let mut s = upstream::login(&*t.source, &up, 196_608, &params, shared.connect_timeout, &shared.metrics)
                .await
                .map_err(|e| e.to_string())?;
            use tokio::io::AsyncWriteExt;
            let _ = s.stream.write_all(b"X\0\0\0\x04").await;
            let _ = s.stream.shutdown().await;
            Ok(format!("logged in to {} as {user}", up.display()))
        }
        .await;
        match r {
            Ok(m) => log::info("connection test passed", &[("target", &t.label), ("result", &m)]),
            Err(m) => {
                log::error("connection test failed", &[("target", &t.label), ("error", &m)]);
                failures.push(format!("{}: {m}", t.label));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ProxyError::new(format!("connection test failed: {}", failures.join("; "))))
    }
}
