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
use crate::config::{Config, Env, ProcessEnv};
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpOptions};
use crate::refresher::{self, Refreshable};
use crate::sync::ForkLocal;
use crate::target::{Target, NO_TARGET};
use arc_swap::{ArcSwap, ArcSwapOption};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// The longest `http_timeout_seconds` / `retry_timeout_seconds` honoured (one day).
const MAX_TIMEOUT_SECONDS: u64 = 86_400;

type Key = [u8; 32];

/// One cached password and how to mint the next one.
pub struct Entry {
    api: WorkspaceApi,
    target: Option<Target>,
    cache: TokenCache,
    identity: ArcSwapOption<String>,
    pg_host: ArcSwapOption<String>,
    registered: AtomicBool,
    me: Weak<Entry>,
    shared: bool,
}

impl Entry {
    fn mint(&self) -> Result<Fetched> {
        let target = self.target.as_ref().ok_or_else(|| Error::config(NO_TARGET))?;
        let c = target.generate_credential(&self.api).map_err(|e| e.context(format!("minting a password for {target}")))?;
        Ok(Fetched { secret: c.token, expiry_ms: c.expiry_ms })
    }

    #[inline]
    fn with_password<R>(&self, f: impl FnOnce(&Token) -> R) -> Result<R> {
        if self.shared {
            refresher::ensure_running();
        }
        let r = self.cache.with_token(&|| self.mint(), f)?;
        if !self.registered.load(Ordering::Relaxed) {
            self.register();
        }
        Ok(r)
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
        self.cache.refresh_if_due(&|| self.mint())
    }
}

/// A configured Lakebase password source.
pub struct Client {
    entry: Arc<Entry>,
    auth_type: &'static str,
    host: String,
}

/// How to build a client; tests swap the environment and the clock.
pub struct Builder {
    env: Arc<dyn Env>,
    clock: Option<SharedClock>,
    policy: RefreshPolicy,
}

impl Default for Builder {
    fn default() -> Self {
        Builder { env: Arc::new(ProcessEnv), clock: None, policy: RefreshPolicy::default() }
    }
}

impl Builder {
    pub fn env(mut self, env: Arc<dyn Env>) -> Self {
        self.env = env;
        self
    }
    /// A custom clock. Such clients never share caches with others and have no background
    /// refresher (tests drive [`Client::refresh_if_due`] themselves).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }
    pub fn policy(mut self, p: RefreshPolicy) -> Self {
        self.policy = p;
        self
    }

    /// Resolve the configuration and auth method. No network I/O happens here.
    pub fn build(self, options: &[(String, String)]) -> Result<Client> {
        let cfg = Config::resolve(options, &*self.env)?;
        let shared = self.clock.is_none();
        let clock: SharedClock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let target = Target::from_config(&cfg)?;
        let hopts = http_options(&cfg);
        let policy = cache_policy(&self.policy, &hopts);
        let http = Arc::new(HttpClient::new(hopts, clock.clone()));
        let ctx = AuthContext { http: http.clone(), clock: clock.clone(), env: self.env.clone() };
        // Auth first: with nothing configured, its error says what to set for every method.
        let creds = auth::resolve(&cfg, &ctx)?;
        let auth_type = creds.name();
        let host = cfg.host.clone().filter(|h| !h.is_empty()).ok_or_else(|| {
            Error::config(format!(
                "no workspace host is configured: set DATABRICKS_HOST, host= in the options, or a profile in ~/.databrickscfg. {}",
                cfg.debug_string()
            ))
        })?;
        let key = cache_key(&cfg, &*self.env, auth_type, target.as_ref());
        let make = |me: &Weak<Entry>| Entry {
            api: WorkspaceApi::new(host.clone(), cfg.workspace_id.clone(), http.clone(), creds.clone()),
            target: target.clone(),
            cache: TokenCache::new(clock.clone(), policy.clone()),
            identity: ArcSwapOption::empty(),
            pg_host: ArcSwapOption::empty(),
            registered: AtomicBool::new(false),
            me: me.clone(),
            shared,
        };
        let entry = if shared { shared_entry(key, make) } else { Arc::new_cyclic(make) };
        Ok(Client { entry, auth_type, host })
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
    p
}

fn registry() -> &'static ArcSwap<HashMap<Key, Weak<Entry>>> {
    static R: OnceLock<ArcSwap<HashMap<Key, Weak<Entry>>>> = OnceLock::new();
    R.get_or_init(|| ArcSwap::from_pointee(HashMap::new()))
}

/// The live entry for `key`, or a new one. Lock-free (copy-on-write map), so `fork()` cannot
/// leave it locked.
fn shared_entry(key: Key, make: impl FnOnce(&Weak<Entry>) -> Entry) -> Arc<Entry> {
    if let Some(e) = registry().load().get(&key).and_then(Weak::upgrade) {
        return e;
    }
    let fresh = Arc::new_cyclic(make);
    let mut chosen = fresh.clone();
    registry().rcu(|map| {
        let mut m: HashMap<Key, Weak<Entry>> = map.iter().filter(|(_, w)| w.strong_count() > 0).map(|(k, w)| (*k, w.clone())).collect();
        match m.get(&key).and_then(Weak::upgrade) {
            Some(existing) => chosen = existing,
            None => {
                chosen = fresh.clone();
                m.insert(key, Arc::downgrade(&fresh));
            }
        }
        m
    });
    chosen
}

/// SHA-256 over everything that decides which token a client gets.
fn cache_key(cfg: &Config, env: &dyn Env, auth_type: &str, target: Option<&Target>) -> Key {
    let mut h = Sha256::new();
    let mut put = |label: &str, v: Option<&str>| {
        h.update(label.as_bytes());
        h.update([0]);
        if let Some(v) = v {
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        } else {
            h.update(u64::MAX.to_le_bytes());
        }
    };
    let s = |o: &Option<crate::secret::Secret>| o.as_ref().map(|x| x.expose().to_string());
    put("v1", None);
    put("host", cfg.host.as_deref());
    put("workspace_id", cfg.workspace_id.as_deref());
    put("account_id", cfg.account_id.as_deref());
    put("auth_type", Some(auth_type));
    put("token", s(&cfg.token).as_deref());
    put("username", cfg.username.as_deref());
    put("password", s(&cfg.password).as_deref());
    put("client_id", cfg.client_id.as_deref());
    put("client_secret", s(&cfg.client_secret).as_deref());
    put("profile", cfg.profile.as_deref());
    put("config_file", cfg.config_file.as_deref());
    put("metadata_service_url", s(&cfg.metadata_service_url).as_deref());
    put("azure_workspace_resource_id", cfg.azure_workspace_resource_id.as_deref());
    put("azure_client_id", cfg.azure_client_id.as_deref());
    put("azure_client_secret", s(&cfg.azure_client_secret).as_deref());
    put("azure_tenant_id", cfg.azure_tenant_id.as_deref());
    put("oidc_token_env", cfg.oidc_token_env.as_deref());
    put("oidc_token_filepath", cfg.oidc_token_filepath.as_deref());
    put("token_audience", cfg.token_audience.as_deref());
    put("discovery_url", cfg.discovery_url.as_deref());
    put("databricks_cli_path", cfg.databricks_cli_path.as_deref());
    put("azure_environment", cfg.azure_environment.as_deref());
    put("actions_id_token_request_url", cfg.actions_id_token_request_url.as_deref());
    put("cloud", cfg.cloud.as_deref());
    // A different federated JWT can be a different identity.
    let oidc_var = cfg.oidc_token_env.clone().unwrap_or_else(|| "DATABRICKS_OIDC_TOKEN".into());
    put("oidc_token", if auth_type.ends_with("oidc") { env.var(&oidc_var) } else { None }.as_deref());
    put("scopes", Some(&cfg.scopes().join(" ")));
    put("ca_file", cfg.ca_file.as_deref());
    put("target_kind", target.map(|t| t.kind()));
    put("target", target.map(|t| t.name()));
    h.finalize().into()
}

impl Client {
    /// A client from a libpq-style options string (`""` = environment defaults).
    pub fn new(options: &str) -> Result<Client> {
        let opts = crate::config::parse_options(options)?;
        Builder::default().build(&opts)
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Call `f` with the current password (fetched on a miss). The hot path: no lock, no syscall,
    /// no allocation.
    #[inline]
    pub fn with_password<R>(&self, f: impl FnOnce(&str) -> R) -> Result<R> {
        self.entry.with_password(|t| f(t.secret.expose()))
    }

    /// The password as an owned secret (allocates; for Rust callers and tools).
    pub fn password(&self) -> Result<crate::secret::Secret> {
        self.with_password(|p| crate::secret::Secret::new(p))
    }

    /// Drop the cached password if it is still `serial`'s and mint a new one.
    pub fn force_refresh(&self) -> Result<()> {
        let e = &self.entry;
        e.cache.force_refresh(&|| e.mint(), None)?;
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
        })
    }

    /// The caller's workspace user name (SCIM `/Me` `userName`): its Postgres role. Cached.
    pub fn identity(&self) -> Result<String> {
        if let Some(id) = self.entry.identity.load_full() {
            return Ok((*id).clone());
        }
        let id = api::scim::me_user_name(&self.entry.api)?;
        self.entry.identity.store(Some(Arc::new(id.clone())));
        Ok(id)
    }

    /// The Postgres host of the configured instance/endpoint (one API call, then cached).
    pub fn postgres_host(&self) -> Result<String> {
        if let Some(h) = self.entry.pg_host.load_full() {
            return Ok((*h).clone());
        }
        let target = self.entry.target.as_ref().ok_or_else(|| Error::config(NO_TARGET))?;
        let h = target.postgres_host(&self.entry.api)?;
        self.entry.pg_host.store(Some(Arc::new(h.clone())));
        Ok(h)
    }

    /// The last error of a token fetch (background or foreground) not yet followed by a success.
    pub fn refresh_error(&self) -> Option<String> {
        self.entry.cache.last_error().map(|e| e.message().to_string())
    }

    /// Successful mints by this client's cache entry.
    pub fn mint_count(&self) -> u64 {
        self.entry.cache.fetch_count()
    }

    pub fn auth_type(&self) -> &'static str {
        self.auth_type
    }
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn target(&self) -> Option<&Target> {
        self.entry.target.as_ref()
    }
    pub fn api(&self) -> &WorkspaceApi {
        &self.entry.api
    }
    /// Whether two clients share one cache entry.
    pub fn shares_cache_with(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.entry, &other.entry)
    }
    /// One refresher step for clients with a custom clock (tests).
    pub fn refresh_if_due(&self) -> Option<WallMs> {
        self.entry.refresh_if_due()
    }
}

/// Introspection of the cached token (no secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub expiry_ms: WallMs,
    pub obtained_ms: WallMs,
    pub refresh_at_ms: WallMs,
    pub serial: u64,
}

static DEFAULT: ArcSwapOption<Client> = ArcSwapOption::const_empty();

/// The process-wide default client, configured from the environment and ~/.databrickscfg on
/// first use. A configuration error is returned (not cached), so fixing the environment and
/// calling again works.
#[inline]
pub fn default_client() -> Result<arc_swap::Guard<Option<Arc<Client>>>> {
    let g = DEFAULT.load();
    if g.is_some() {
        return Ok(g);
    }
    drop(g);
    init_default()?;
    Ok(DEFAULT.load())
}

/// The default client as a plain reference: one atomic load on the hot path (the `Arc` in
/// `DEFAULT` is set once and never replaced or dropped, so the reference is valid for the life of
/// the process).
#[inline]
pub fn default_client_ref() -> Result<&'static Client> {
    let p = DEFAULT_PTR.load(std::sync::atomic::Ordering::Acquire);
    if !p.is_null() {
        return Ok(unsafe { &*p });
    }
    init_default()?;
    let p = DEFAULT_PTR.load(std::sync::atomic::Ordering::Acquire);
    if p.is_null() {
        return Err(Error::internal("default client missing after initialisation"));
    }
    Ok(unsafe { &*p })
}

static DEFAULT_PTR: std::sync::atomic::AtomicPtr<Client> = std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

#[cold]
fn init_default() -> Result<()> {
    static INIT: OnceLock<ForkLocal<std::sync::Mutex<()>>> = OnceLock::new();
    let lock = INIT.get_or_init(|| ForkLocal::new(|| std::sync::Mutex::new(()))).get();
    let _g = crate::sync::lock(&lock);
    if DEFAULT.load().is_some() {
        return Ok(());
    }
    let c = Arc::new(Client::new("")?);
    DEFAULT.store(Some(c.clone()));
    DEFAULT_PTR.store(Arc::as_ptr(&c) as *mut Client, std::sync::atomic::Ordering::Release);
    Ok(())
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
        assert_eq!((h.read_timeout, h.deadline, h.foreground_deadline), (Duration::from_secs(30), Duration::from_secs(120), Duration::from_secs(120)));
        let h = http_options(&cfg("host=h http_timeout_seconds=18446744073709551615 retry_timeout_seconds=9223372036854775807"));
        let day = Duration::from_secs(MAX_TIMEOUT_SECONDS);
        assert_eq!((h.read_timeout, h.deadline, h.foreground_deadline), (day, day, day));
        // Zero and negative values keep the defaults, as in the SDKs.
        let h = http_options(&cfg("host=h http_timeout_seconds=0 retry_timeout_seconds=-5"));
        assert_eq!((h.read_timeout, h.deadline), (d.read_timeout, d.deadline));
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
