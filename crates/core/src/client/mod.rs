//! Clients and their shared password caches.
//!
//! A [`Client`] is a resolved configuration (workspace, auth method, target) plus a handle on a
//! cache [`Entry`]. Clients whose (workspace, auth material, target) are equal share one entry —
//! the process-wide default client included — so they share one token and one refresh schedule.
//! The key is a SHA-256 of the auth material, so a client never receives a token minted with
//! credentials other than its own.
//!
//! Thread-safety: `Client` is `Send + Sync`; every method may be called from any thread.

use crate::api::{self, WorkspaceApi};
use crate::auth::{self, AuthContext};
use crate::cache::{Fetched, RefreshPolicy, Token, TokenCache};
use crate::clock::{SharedClock, SystemClock, WallMs};
use crate::config::host_metadata::HostMetadataSource;
use crate::config::{Config, Env, ProcessEnv};
use crate::deadline::{with_limits, Limits};
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpOptions};
use crate::refresher::{self, Refreshable};
use crate::sync::ForkLocal;
use crate::target::{Target, TargetInfo, NO_TARGET};
use arc_swap::ArcSwapOption;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

mod default;
mod registry;
mod shared_cache;
pub use default::{default_client, default_client_if_set, default_client_ref};
use registry::{cache_key, shared_entry};
use shared_cache::{SharedCache, Why};

/// The longest `http_timeout_seconds` / `retry_timeout_seconds` honoured (one day).
const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// How long a failed background fetch is the answer to non-blocking readers that did not wait
/// for it, before the next read starts another fetch.
const FAILED_FETCH_MEMORY: Duration = Duration::from_secs(2);

/// One cached password and how to mint the next one.
pub struct Entry {
    api: WorkspaceApi,
    target: Option<Target>,
    /// `group_name` (Autoscaling): mint for that group's Postgres role.
    group_name: Option<String>,
    /// The Postgres role to log in as (see [`Client::postgres_role`]), once known.
    role: ArcSwapOption<String>,
    cache: TokenCache,
    identity: ArcSwapOption<String>,
    pg_host: ArcSwapOption<String>,
    registered: AtomicBool,
    me: Weak<Entry>,
    shared: bool,
    /// The per-user shared cache (other processes), unless it is off or unusable.
    shared_cache: Option<SharedCache>,
    /// The fetch started for non-blocking readers, rebuilt per fork generation.
    background: ForkLocal<std::sync::Mutex<Background>>,
    /// Host → target lookups (single-flight, cached).
    discovery: crate::target::discover::Discovery,
}

/// State of the background fetch that non-blocking readers ([`Client::try_password`],
/// [`Client::password_async`]) start and wait for.
#[derive(Default)]
struct Background {
    running: bool,
    /// Number of background fetches started so far.
    round: u64,
    /// The outcome of the last finished round: `(round, error if it failed)`.
    outcome: Option<(u64, Option<Error>)>,
    /// When that round finished (wall ms).
    finished_ms: WallMs,
    wakers: Vec<std::task::Waker>,
}

impl Entry {
    fn mint(&self) -> Result<Fetched> {
        let target = self.target.as_ref().ok_or_else(|| Error::config(NO_TARGET))?;
        let c = target
            .generate_credential(&self.api, self.group_name.as_deref())
            .map_err(|e| e.context(format!("minting a password for {target}")))?;
        crate::cache::minted::record(c.token.expose());
        Ok(Fetched { secret: c.token, expiry_ms: c.expiry_ms })
    }

    #[inline]
    fn with_password<R>(&self, f: impl FnOnce(&Token) -> R) -> Result<R> {
        if self.shared {
            refresher::ensure_running();
        }
        let r = self.cache.with_token(&|| self.fetch(Why::Miss), f)?;
        if !self.registered.load(Ordering::Relaxed) {
            self.register();
        }
        Ok(r)
    }

    /// A cache hit or nothing (see [`Client::try_hit`]).
    #[inline(always)]
    fn hit<R>(&self, f: impl FnOnce(&Token) -> R) -> Option<R> {
        if self.shared {
            refresher::ensure_running();
        }
        if !self.registered.load(Ordering::Relaxed) {
            return None;
        }
        self.cache.hit(f)
    }

    /// Start a fetch on a helper thread unless one is running; returns the round to wait for.
    /// When no thread can be started the fetch runs in place (the caller blocks once rather than
    /// never getting a password).
    #[cold]
    fn start_background(&self) -> u64 {
        let slot = self.background.get();
        let mut bg = crate::sync::lock(&slot);
        if bg.running {
            return bg.round;
        }
        let Some(me) = self.me.upgrade() else { return bg.round };
        bg.running = true;
        bg.round += 1;
        let round = bg.round;
        drop(bg);
        // The fetch waits on behalf of the reader that started it: with that reader's limits.
        let limits = crate::deadline::current_limits();
        let work = move || {
            let fetch = || me.with_password(|_| ()).err();
            let r = match limits {
                Some(l) => crate::deadline::with_limits(l, fetch),
                None => fetch(),
            };
            let slot = me.background.get();
            let mut bg = crate::sync::lock(&slot);
            bg.running = false;
            bg.outcome = Some((round, r));
            bg.finished_ms = me.cache.clock().wall_ms();
            let wakers = std::mem::take(&mut bg.wakers);
            drop(bg);
            wakers.into_iter().for_each(std::task::Waker::wake);
        };
        if let Err(work) = crate::sync::helper("lakebase-fetch", work) {
            work();
        }
        round
    }

    /// One poll of a non-blocking reader that waits for `round` (0: not started yet).
    fn poll_password<R>(&self, round: &mut u64, waker: Option<&std::task::Waker>, f: impl FnOnce(&Token) -> R) -> Result<Option<R>> {
        // A poll without a waker is a C poll loop: every call is fresh, so a failure that is still
        // recent is its answer. A future waits for its own round instead.
        let poll_loop = waker.is_none();
        if self.shared {
            refresher::ensure_running();
        }
        if let Some(r) = self.cache.try_with_token(f)? {
            if !self.registered.load(Ordering::Relaxed) {
                self.register();
            }
            return Ok(Some(r));
        }
        let slot = self.background.get();
        let mut bg = crate::sync::lock(&slot);
        if let Some((done, Some(e))) = &bg.outcome {
            // The round this reader waited for failed: that is its answer. A poll loop that waited
            // for nothing gets a failure that is still recent, so polling a broken configuration
            // does not turn into one request per poll.
            let recent = self.cache.clock().wall_ms().saturating_sub(bg.finished_ms) < FAILED_FETCH_MEMORY.as_millis() as i64;
            if (*round != 0 && *done >= *round) || (*round == 0 && poll_loop && recent) {
                return Err(e.clone());
            }
        }
        if bg.running {
            *round = bg.round;
            if let Some(w) = waker {
                if !bg.wakers.iter().any(|x| x.will_wake(w)) {
                    bg.wakers.push(w.clone());
                }
            }
            return Ok(None);
        }
        drop(bg);
        *round = self.start_background();
        let mut bg = crate::sync::lock(&slot);
        match (&bg.outcome, waker) {
            // The round finished (or ran in place) before we could register: poll again at once.
            (Some((done, _)), Some(w)) if *done >= *round => w.wake_by_ref(),
            (_, Some(w)) => bg.wakers.push(w.clone()),
            _ => {}
        }
        Ok(None)
    }

    #[cold]
    fn register(&self) {
        if self.shared && !self.registered.swap(true, Ordering::AcqRel) {
            let w: Weak<dyn Refreshable> = self.me.clone();
            refresher::register(w);
        }
    }
}

impl Refreshable for Entry {
    fn refresh_if_due(&self) -> Option<WallMs> {
        self.cache.refresh_if_due(&|| self.fetch(Why::Refresh))
    }
}

/// A configured Lakebase password source: a workspace, an auth method and a target database,
/// with a handle on a (possibly shared) token cache.
///
/// Thread safety: `Client` is `Send + Sync`; every method may be called from any thread. Cloning
/// is cheap and the clone shares the cache entry.
#[derive(Clone)]
pub struct Client {
    entry: Arc<Entry>,
    /// This client's own timeouts for the waits it does (the entry may be shared with clients
    /// configured otherwise).
    limits: Limits,
    auth_type: &'static str,
    host: String,
    group_id: Option<String>,
    /// How this client was built, to derive clients for other targets.
    builder: Arc<Builder>,
}

/// How to build a [`Client`]: options (the `lakebase_client_new` keys), and for tests another
/// environment, clock or refresh policy.
///
/// ```no_run
/// let client = lakebase_core::Client::builder()
///     .option("profile", "dev")
///     .option("endpoint", "projects/p/branches/production/endpoints/primary")
///     .build()?;
/// # Ok::<(), lakebase_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Builder {
    options: Vec<(String, String)>,
    env: Arc<dyn Env>,
    clock: Option<SharedClock>,
    policy: RefreshPolicy,
}

impl Default for Builder {
    fn default() -> Self {
        Builder { options: Vec::new(), env: Arc::new(ProcessEnv), clock: None, policy: RefreshPolicy::default() }
    }
}

impl Builder {
    /// One setting, as a key of the options string (`host`, `token`, `client_id`, `profile`,
    /// `instance`, `endpoint`, ...). Later settings of the same key win. Options win over the
    /// environment, which wins over the profile (as in the Databricks SDKs).
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }
    /// Several settings, in order.
    pub fn options<K: Into<String>, V: Into<String>>(mut self, kv: impl IntoIterator<Item = (K, V)>) -> Self {
        self.options.extend(kv.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }
    /// Settings from a libpq-style options string (`"profile=dev instance='my db'"`).
    pub fn options_str(self, options: &str) -> Result<Self> {
        Ok(self.options(crate::config::parse_options(options)?))
    }
    /// Another environment instead of the process's (`std::env`).
    #[doc(hidden)]
    pub fn env(mut self, env: Arc<dyn Env>) -> Self {
        self.env = env;
        self
    }
    /// A custom clock. Such clients never share caches with others and have no background
    /// refresher (tests drive [`Client::refresh_if_due`] themselves).
    #[doc(hidden)]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Another refresh policy (tests).
    #[doc(hidden)]
    pub fn policy(mut self, p: RefreshPolicy) -> Self {
        self.policy = p;
        self
    }

    /// Resolve the configuration and pick the auth method. No network I/O happens here (except
    /// `databricks-cli` auth, which runs `databricks auth token` once, as the SDKs do).
    pub fn build(self) -> Result<Client> {
        self.build_traced(&mut Vec::new())
    }

    /// [`build`](Self::build), recording what became of each auth method of the chain (for
    /// `lakebase doctor`).
    #[doc(hidden)]
    pub fn build_traced(self, trace: &mut Vec<auth::AuthStep>) -> Result<Client> {
        let cfg = Config::resolve(&self.options, &*self.env)?;
        let shared = self.clock.is_none();
        let clock: SharedClock = self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let target = Target::from_config(&cfg)?;
        let mut hopts = http_options(&cfg);
        hopts.proxy = crate::http::proxy::ProxySettings::from_env(|k| self.env.var(k))?;
        let policy = cache_policy(&self.policy, &hopts);
        let limits = Limits { deadline: hopts.foreground_deadline, read_timeout: hopts.read_timeout, max_wait: policy.max_wait };
        let http = Arc::new(HttpClient::new(hopts, clock.clone()));
        // One host-metadata fetch per host and process (private for clients with their own clock).
        let metadata_for = |host: &str| {
            if shared {
                HostMetadataSource::shared(host, &http)
            } else {
                HostMetadataSource::private(host, http.clone())
            }
        };
        let configured_host = cfg.host.clone().filter(|h| !h.is_empty());
        let metadata = configured_host.as_deref().map(metadata_for);
        let ctx = AuthContext { http: http.clone(), clock: clock.clone(), env: self.env.clone(), metadata: metadata.clone() };
        // Auth first: with nothing configured, its error says what to set for every method.
        let creds = auth::resolve_traced(&cfg, &ctx, trace)?;
        let auth_type = creds.name();
        let (up, up_version) = (self.env.var("DATABRICKS_SDK_UPSTREAM"), self.env.var("DATABRICKS_SDK_UPSTREAM_VERSION"));
        http.set_user_agent(crate::http::user_agent(Some(auth_type), up.as_deref().zip(up_version.as_deref())));
        // A method may have found the workspace itself (model-serving).
        let host = configured_host.clone().or_else(|| creds.host()).ok_or_else(|| {
            Error::config(format!(
                "no workspace host is configured: set DATABRICKS_HOST, host= in the options, or a profile in ~/.databrickscfg. {}",
                cfg.debug_string()
            ))
        })?;
        let metadata = metadata.or_else(|| Some(metadata_for(&host)));
        let mut key_cfg = std::borrow::Cow::Borrowed(&cfg);
        if configured_host.is_none() {
            key_cfg.to_mut().host = Some(host.clone());
        }
        let key = cache_key(&key_cfg, &*self.env, auth_type, target.as_ref());
        let group_name = cfg.group_name.clone().map(|g| g.trim().to_string()).filter(|g| !g.is_empty());
        let use_disk =
            crate::cache::disk::enabled(cfg.cache.as_deref()).map_err(|m| Error::config(format!("{m}. {}", cfg.debug_string())))?;
        // Clients with their own clock (tests) keep to themselves, on disk as in memory.
        let store = if shared && use_disk { crate::cache::disk::Store::locate(&*self.env, cfg.cache_dir.as_deref()) } else { None };
        let disk_key = store.as_ref().and_then(|_| shared_cache::shared_key(key, &key_cfg, auth_type));
        let make = |me: &Weak<Entry>| Entry {
            api: WorkspaceApi::new(host.clone(), cfg.workspace_id.clone(), metadata.clone(), http.clone(), creds.clone()),
            target: target.clone(),
            group_name: group_name.clone(),
            role: ArcSwapOption::empty(),
            cache: TokenCache::new(clock.clone(), policy.clone()),
            identity: ArcSwapOption::empty(),
            pg_host: ArcSwapOption::empty(),
            registered: AtomicBool::new(false),
            me: me.clone(),
            shared,
            shared_cache: store.clone().zip(disk_key).map(|(store, key)| SharedCache {
                store,
                key,
                workspace: host.clone(),
                auth_type,
                target: target.as_ref().map(|t| (t.kind().to_string(), t.name().to_string())),
                wait: policy.max_wait,
            }),
            background: ForkLocal::new(Default::default),
            discovery: Default::default(),
        };
        let entry = if shared { shared_entry(key, make) } else { Arc::new_cyclic(make) };
        let group_id = cfg.group_id.clone().filter(|g| !g.is_empty());
        Ok(Client { entry, limits, auth_type, host, group_id, builder: Arc::new(self) })
    }
}

/// HTTP timeouts from the configuration. Timeouts above a day are taken as "a day": effectively
/// unbounded for one login, and far from the limits of `Instant`/`Duration` arithmetic (ureq adds
/// them to `Instant::now()`).
fn http_options(cfg: &Config) -> HttpOptions {
    let mut hopts = HttpOptions { ca_file: cfg.ca_file.clone(), ..HttpOptions::default() };
    if let Some(t) = cfg.http_timeout_seconds.filter(|t| *t > 0) {
        hopts.read_timeout = Duration::from_secs(t.min(MAX_TIMEOUT_SECONDS));
    }
    if let Some(t) = cfg.retry_timeout_seconds.filter(|t| *t > 0) {
        // An explicit total budget applies to callers and the refresher alike.
        hopts.deadline = Duration::from_secs((t as u64).min(MAX_TIMEOUT_SECONDS));
        hopts.foreground_deadline = hopts.deadline;
    }
    hopts
}

/// A caller waiting behind another thread's fetch waits at least as long as that fetch may take
/// (its deadline plus a margin), so it gets the fetch's outcome rather than a time-out of its own.
fn cache_policy(base: &RefreshPolicy, hopts: &HttpOptions) -> RefreshPolicy {
    let mut p = base.clone();
    p.max_wait = p.max_wait.max(hopts.foreground_deadline.saturating_add(Duration::from_secs(5)));
    p.foreground_deadline = hopts.foreground_deadline;
    p
}

impl Client {
    /// A client from a libpq-style options string (`""` = environment defaults).
    pub fn new(options: &str) -> Result<Client> {
        Builder::default().options_str(options)?.build()
    }

    /// A [`Builder`] with no options set (environment and profile defaults).
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Call `f` with the current password (fetched on a miss). The hot path: no lock, no syscall,
    /// no allocation.
    #[inline]
    pub fn with_password<R>(&self, f: impl FnOnce(&str) -> R) -> Result<R> {
        with_limits(self.limits, || self.entry.with_password(|t| f(t.secret.expose())))
    }

    /// `Some(f(password))` when the password can be served from memory now, else `None` with
    /// nothing done (no fetch, no error): the cheapest hit, for a caller that falls back to
    /// [`with_password`](Self::with_password) (the C ABI's fast path).
    #[inline(always)]
    pub fn try_hit<R>(&self, f: impl FnOnce(&str) -> R) -> Option<R> {
        self.entry.hit(|t| f(t.secret.expose()))
    }

    /// The password as an owned secret (allocates; for Rust callers and tools).
    pub fn password(&self) -> Result<crate::secret::Secret> {
        self.with_password(|p| crate::secret::Secret::new(p))
    }

    /// The non-blocking read, for event loops: `Ok(Some(f(password)))` when a password can be
    /// served now (a memory read); `Ok(None)` when it cannot, after starting a fetch on a helper
    /// thread (one at a time per cache entry); `Err` with the last failure while the library is
    /// failing fast after a transient error. Never waits for the network.
    #[inline]
    pub fn try_with_password<R>(&self, f: impl FnOnce(&str) -> R) -> Result<Option<R>> {
        let mut round = 0;
        with_limits(self.limits, || self.entry.poll_password(&mut round, None, |t| f(t.secret.expose())))
    }

    /// [`try_with_password`](Self::try_with_password) as an owned secret.
    pub fn try_password(&self) -> Result<Option<crate::secret::Secret>> {
        self.try_with_password(|p| crate::secret::Secret::new(p))
    }

    /// The password without blocking the calling thread: a hit is ready at the first poll; a
    /// miss is fetched on a helper thread that wakes the task when done. Works with any executor
    /// (no runtime dependency); the future owns a handle on the cache and may outlive `self`.
    pub fn password_async(&self) -> PasswordFuture {
        PasswordFuture { entry: self.entry.clone(), limits: self.limits, round: 0 }
    }

    /// The server rejected `rejected` at login: if it is still the cached password, discard it and
    /// mint a new one (single-flight: N connections rejected at once cause one mint); if another
    /// caller replaced it already, there is nothing to do. Either way the next read gets the
    /// newest password. Compared in constant time.
    pub fn refresh_rejected(&self, rejected: &str) -> Result<()> {
        let e = &self.entry;
        let current = e.cache.peek();
        let serial = match current {
            Some(t) if t.secret == crate::secret::Secret::new(rejected) => t.serial,
            Some(_) => return Ok(()),
            None => 0,
        };
        with_limits(self.limits, || e.cache.force_refresh(&|| e.fetch(Why::Rejected), Some(serial)))?;
        e.register();
        Ok(())
    }

    /// Replace the cached password with one obtained after this call began (minted now, or by
    /// another process meanwhile); at most one forced mint per second (a second call waits).
    pub fn force_refresh(&self) -> Result<()> {
        let e = &self.entry;
        let asked = e.cache.clock().wall_ms();
        with_limits(self.limits, || e.cache.force_refresh(&|| e.fetch(Why::Forced(asked)), None))?;
        e.register();
        Ok(())
    }

    /// The cached token's state, if any token is cached and still servable.
    pub fn token_info(&self) -> Option<TokenInfo> {
        self.entry.cache.peek().map(|t| TokenInfo {
            expiry_ms: t.expiry_ms,
            obtained_ms: t.obtained_ms,
            refresh_at_ms: t.refresh_at_ms,
            serial: t.serial,
            shared: t.adopted,
        })
    }

    /// [`identity`](Self::identity) without blocking the calling thread: ready at once when it
    /// is cached, else looked up on a helper thread that wakes the task (any executor).
    pub fn identity_async(&self) -> OffThread<Result<String>> {
        match self.entry.identity.load_full() {
            Some(id) => OffThread::ready(Ok((*id).clone())),
            None => {
                let c = self.clone();
                OffThread::spawn(move || c.identity())
            }
        }
    }

    /// [`postgres_role`](Self::postgres_role) without blocking the calling thread.
    pub fn postgres_role_async(&self) -> OffThread<Result<String>> {
        match self.entry.role.load_full() {
            Some(r) => OffThread::ready(Ok((*r).clone())),
            None => {
                let c = self.clone();
                OffThread::spawn(move || c.postgres_role())
            }
        }
    }

    /// [`postgres_host`](Self::postgres_host) without blocking the calling thread.
    pub fn postgres_host_async(&self) -> OffThread<Result<String>> {
        match self.entry.pg_host.load_full() {
            Some(h) => OffThread::ready(Ok((*h).clone())),
            None => {
                let c = self.clone();
                OffThread::spawn(move || c.postgres_host())
            }
        }
    }

    /// The caller's workspace user name (SCIM `/Me` `userName`): its Postgres role. Cached.
    pub fn identity(&self) -> Result<String> {
        if let Some(id) = self.entry.identity.load_full() {
            return Ok((*id).clone());
        }
        let id = with_limits(self.limits, || self.entry.shared_identity(|| api::scim::me_user_name(&self.entry.api)))?;
        self.entry.identity.store(Some(Arc::new(id.clone())));
        Ok(id)
    }

    /// The Postgres role to log in as: the group's role when the client acts for a group
    /// (`group_name`, else the display name of the `group_id` group, looked up once with SCIM
    /// `GET /Groups/{id}`), otherwise [`identity`](Self::identity). Cached. This is the user name
    /// the libpq injection, the bindings and the proxy must use.
    pub fn postgres_role(&self) -> Result<String> {
        if let Some(r) = self.entry.role.load_full() {
            return Ok((*r).clone());
        }
        let role = match (&self.entry.group_name, self.group_id.as_deref()) {
            (Some(g), _) => g.clone(),
            (None, Some(id)) => api::scim::group_display_name(&self.entry.api, id)
                .map_err(|e| e.context(format!("looking up the Postgres role of group {id} (group_id)")))?,
            (None, None) => self.identity()?,
        };
        self.entry.role.store(Some(Arc::new(role.clone())));
        Ok(role)
    }

    /// The group this client acts for (`group_id`), if any.
    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    /// The Postgres host of the configured instance/endpoint (one API call, then cached).
    pub fn postgres_host(&self) -> Result<String> {
        if let Some(h) = self.entry.pg_host.load_full() {
            return Ok((*h).clone());
        }
        let target = self.entry.target.as_ref().ok_or_else(|| Error::config(NO_TARGET))?;
        let h = with_limits(self.limits, || self.entry.shared_pg_host(|| target.postgres_host(&self.entry.api)))?;
        self.entry.pg_host.store(Some(Arc::new(h.clone())));
        Ok(h)
    }

    /// What the workspace API says about the target (host, state; one API call each time).
    pub fn describe_target(&self) -> Result<TargetInfo> {
        let target = self.entry.target.as_ref().ok_or_else(|| Error::config(NO_TARGET))?;
        with_limits(self.limits, || target.describe(&self.entry.api))
    }

    /// A client with this client's settings for another target (no network I/O). A target of
    /// the other kind set in the environment or profile makes this a configuration error.
    pub fn with_target(&self, target: &Target) -> Result<Client> {
        let mut b = (*self.builder).clone();
        b.options.retain(|(k, _)| k != "instance" && k != "endpoint");
        b.options.push((target.kind().to_string(), target.name().to_string()));
        b.build()
    }

    /// The Lakebase database with the Postgres host `host`, found by listing the workspace's
    /// instances (`read_write_dns`, `read_only_dns`) and endpoints (`status.hosts`).
    ///
    /// Bounded: at most 50 list requests and 10 s (and never past the deadline of the operation
    /// it runs in, see [`blocking`](Self::blocking)). The answer for a host is cached for the life
    /// of the process, a failure for 5 s; concurrent lookups of one host make one set of requests.
    pub fn discover_target(&self, host: &str) -> Result<Target> {
        let e = &self.entry;
        let clock = e.cache.clock().clone();
        let budget = self.limits.deadline;
        let wait = crate::deadline::foreground_left(&*clock, budget).unwrap_or(budget);
        // Learned by another process (the shared cache), else discovered once per host here.
        with_limits(self.limits, || {
            e.shared_target(host, || {
                e.discovery.get(host, &*clock, wait, || {
                    crate::deadline::scope(crate::deadline::Purpose::Foreground, &*clock, None, || {
                        crate::target::discover::find_target(&e.api, &*clock, host)
                    })
                })
            })
        })
    }

    /// Run `f` as one operation a caller is blocked in: every workspace request made inside it on
    /// this thread, by any client (target discovery, the identity, the mint, their retries and
    /// waits for other threads' fetches), shares one deadline counted from here (the foreground
    /// deadline, 15 s unless `retry_timeout_seconds` says otherwise). `PQconnectdb` runs its
    /// whole decision inside one.
    pub fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        // With this client's limits, so the operation's deadline is its retry_timeout_seconds.
        with_limits(self.limits, || crate::deadline::scope(crate::deadline::Purpose::Foreground, &**self.entry.cache.clock(), None, f))
    }

    /// The last error of a token fetch (background or foreground) not yet followed by a success.
    pub fn refresh_error(&self) -> Option<String> {
        self.entry.cache.last_error().map(|e| e.message().to_string())
    }

    /// Tokens this client's cache entry obtained: minted, or taken from the shared cache.
    pub fn mint_count(&self) -> u64 {
        self.entry.cache.fetch_count()
    }

    /// The auth method in use: `pat`, `oauth-m2m`, `databricks-cli`, ... (the SDKs' names).
    pub fn auth_type(&self) -> &'static str {
        self.auth_type
    }
    /// The workspace URL (normalised: `https://host[:port]`).
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The configured database, if any.
    pub fn target(&self) -> Option<&Target> {
        self.entry.target.as_ref()
    }
    #[doc(hidden)]
    pub fn api(&self) -> &WorkspaceApi {
        &self.entry.api
    }
    /// Whether two clients share one cache entry.
    pub fn shares_cache_with(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.entry, &other.entry)
    }
    /// One refresher step for clients with a custom clock (tests).
    #[doc(hidden)]
    pub fn refresh_if_due(&self) -> Option<WallMs> {
        self.entry.refresh_if_due()
    }
}

/// The future returned by [`Client::password_async`].
pub struct PasswordFuture {
    entry: Arc<Entry>,
    limits: Limits,
    round: u64,
}

impl std::future::Future for PasswordFuture {
    type Output = Result<crate::secret::Secret>;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        let (entry, round) = (&this.entry, &mut this.round);
        match with_limits(this.limits, || entry.poll_password(round, Some(cx.waker()), |t| t.secret.clone())) {
            Ok(Some(s)) => std::task::Poll::Ready(Ok(s)),
            Ok(None) => std::task::Poll::Pending,
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }
}

/// A blocking call run on a library helper thread (signals blocked), as a future: the task is
/// woken when the call returns. Needs no runtime. When no thread can be started the call runs in
/// place at the first poll.
pub struct OffThread<T> {
    state: Arc<std::sync::Mutex<OffThreadState<T>>>,
    work: Option<Box<dyn FnOnce() -> T + Send>>,
}

struct OffThreadState<T> {
    result: Option<T>,
    waker: Option<std::task::Waker>,
}

impl<T: Send + 'static> OffThread<T> {
    fn ready(v: T) -> Self {
        OffThread { state: Arc::new(std::sync::Mutex::new(OffThreadState { result: Some(v), waker: None })), work: None }
    }
    fn spawn(f: impl FnOnce() -> T + Send + 'static) -> Self {
        OffThread { state: Arc::new(std::sync::Mutex::new(OffThreadState { result: None, waker: None })), work: Some(Box::new(f)) }
    }
}

impl<T: Send + 'static> std::future::Future for OffThread<T> {
    type Output = T;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<T> {
        let this = self.get_mut();
        {
            let mut st = crate::sync::lock(&this.state);
            if let Some(v) = st.result.take() {
                return std::task::Poll::Ready(v);
            }
            st.waker = Some(cx.waker().clone());
        }
        if let Some(work) = this.work.take() {
            let state = this.state.clone();
            let job = move || {
                let v = work();
                let mut st = crate::sync::lock(&state);
                st.result = Some(v);
                if let Some(w) = st.waker.take() {
                    drop(st);
                    w.wake();
                }
            };
            if let Err(job) = crate::sync::helper("lakebase-call", job) {
                job();
                cx.waker().wake_by_ref();
            }
        }
        std::task::Poll::Pending
    }
}

// `work` is only ever touched through `&mut self`.
impl<T> Unpin for OffThread<T> {}

/// Introspection of the cached token (no secret). Times are Unix milliseconds (wall clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// When the token expires.
    pub expiry_ms: WallMs,
    /// When it was obtained.
    pub obtained_ms: WallMs,
    /// When the refresher replaces it.
    pub refresh_at_ms: WallMs,
    /// 1 for the first token of this cache entry, then counting up.
    pub serial: u64,
    /// The token came from the per-user shared cache: another process (or an earlier one)
    /// minted it, not this one.
    pub shared: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_options, MapEnv};

    fn cfg(options: &str) -> Config {
        Config::resolve(&parse_options(options).unwrap(), &MapEnv::from_pairs([("HOME", "/nonexistent")])).unwrap()
    }

    #[test]
    fn timeouts_from_the_configuration_are_capped_at_a_day() {
        let d = HttpOptions::default();
        let h = http_options(&cfg("host=h"));
        assert_eq!((h.read_timeout, h.deadline, h.foreground_deadline), (d.read_timeout, d.deadline, d.foreground_deadline));
        let h = http_options(&cfg("host=h http_timeout_seconds=30 retry_timeout_seconds=120"));
        assert_eq!(
            (h.read_timeout, h.deadline, h.foreground_deadline),
            (Duration::from_secs(30), Duration::from_secs(120), Duration::from_secs(120))
        );
        let h = http_options(&cfg("host=h http_timeout_seconds=18446744073709551615 retry_timeout_seconds=9223372036854775807"));
        let day = Duration::from_secs(MAX_TIMEOUT_SECONDS);
        assert_eq!((h.read_timeout, h.deadline, h.foreground_deadline), (day, day, day));
        // Zero and negative values keep the defaults, as in the SDKs.
        let h = http_options(&cfg("host=h http_timeout_seconds=0 retry_timeout_seconds=-5"));
        assert_eq!((h.read_timeout, h.deadline), (d.read_timeout, d.deadline));
    }

    /// A loopback port that accepts connections and never answers.
    fn hanging_server() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming() {
                held.push(s);
            }
        });
        url
    }

    /// Issue 13: clients that share a cache entry each wait as long as their own
    /// `retry_timeout_seconds` says (the entry's HTTP client is the first client's).
    #[test]
    fn clients_sharing_an_entry_keep_their_own_timeouts() {
        let host = hanging_server();
        let env: Arc<dyn Env> = Arc::new(MapEnv::from_pairs([("HOME", "/nonexistent")]));
        let base = format!("host={host} token=dapi-shared-timeouts instance=i");
        let build = |extra: &str| Builder::default().env(env.clone()).options_str(&format!("{base} {extra}")).unwrap().build().unwrap();
        let patient = build("retry_timeout_seconds=30");
        let hasty = build("retry_timeout_seconds=1");
        assert!(patient.shares_cache_with(&hasty));
        let t0 = crate::clock::Stopwatch::start();
        let e = hasty.password().unwrap_err();
        let took = t0.elapsed();
        assert_eq!(e.kind(), crate::error::ErrorKind::Network, "{e}");
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}: {e}");
        // The other client's wait for the identity lookup: its own 1 s as well, not 30.
        let t0 = crate::clock::Stopwatch::start();
        hasty.identity().unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    }

    #[test]
    fn waiters_wait_as_long_as_the_fetch_they_wait_for_may_take() {
        let base = RefreshPolicy::default();
        assert_eq!(cache_policy(&base, &http_options(&cfg("host=h"))).max_wait, base.max_wait, "defaults unchanged");
        let p = cache_policy(&base, &http_options(&cfg("host=h retry_timeout_seconds=120")));
        assert_eq!(p.max_wait, Duration::from_secs(125));
        let p = cache_policy(&base, &http_options(&cfg("host=h retry_timeout_seconds=9223372036854775807")));
        assert_eq!(p.max_wait, Duration::from_secs(MAX_TIMEOUT_SECONDS + 5));
    }
}
