//! Configuration, resolved exactly like the Databricks SDKs' unified client auth: explicit options
//! (the `options` string) > environment variables > `.databrickscfg` profile.
//!
//! One static table ([`attributes`]) names every attribute with its option/file key, environment
//! variables, auth group, sensitivity and kind; every loader, the debug string and the conflict
//! check are driven by it, as in the Go SDK's config/config_attributes.go. Rules mirrored from the
//! Go SDK (`EnsureResolved`, config_file.go, config_attributes.go):
//! - every loader skips attributes that are already set, and ignores empty values;
//! - the config file is not read at all when no profile is named and `host`,
//!   `azure_workspace_resource_id` or any auth-group attribute is already set;
//! - attributes of more than one auth group without `auth_type` is an error;
//! - `host` is normalised to `scheme://host[:port]`, promoting `?o=`/`?workspace_id=`/`?w=` to
//!   `workspace_id` and `?a=`/`?account_id=` to `account_id` when those are not set;
//! - loader errors read `resolve: ...` and conflicts `validate: ...`, followed by `. ` and the
//!   debug string (`Config: host=..., token=***. Env: DATABRICKS_HOST, DATABRICKS_TOKEN`).
//!
//! Bool and integer attributes follow Go's zero-value rule: `false` and `0` count as unset, so a
//! later loader may still fill them.

pub mod host_metadata;
pub mod ini;
mod options;
pub mod profiles;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::sanitize::{check_credential, CredentialKind};
use crate::secret::Secret;

pub use crate::env::{format_records, Env, MapEnv, ProcessEnv, SECRETS_FD_VAR, SECRETS_MEMFD_NAME};
pub use options::parse_options;

/// Where a resolved attribute's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The caller's options string.
    Option,
    /// The named environment variable.
    Env(&'static str),
    /// The profile in [`Config::loaded_file`].
    File,
}

/// Resolved configuration. Plain data: `Clone`, `Send` and `Sync`. `Debug` redacts secrets.
#[derive(Clone, Default, Debug)]
pub struct Config {
    /// Workspace (or account) URL, normalised to `scheme://host[:port]`.
    pub host: Option<String>,
    pub account_id: Option<String>,
    /// Sent as `X-Databricks-Workspace-Id` when set (back-filled from host metadata otherwise).
    pub workspace_id: Option<String>,
    /// A workspace group to act as (`assume_group` on OAuth token requests; SDK 0.167).
    pub group_id: Option<String>,
    pub token: Option<Secret>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// The profile that was read from the config file (pinned even for the `DEFAULT` fallback),
    /// or the one that was asked for.
    pub profile: Option<String>,
    /// `config_file` / `DATABRICKS_CONFIG_FILE` as given; see [`Config::loaded_file`].
    pub config_file: Option<String>,
    pub auth_type: Option<String>,
    pub metadata_service_url: Option<Secret>,
    pub azure_workspace_resource_id: Option<String>,
    pub azure_use_msi: Option<bool>,
    pub azure_client_id: Option<String>,
    pub azure_client_secret: Option<Secret>,
    pub azure_tenant_id: Option<String>,
    pub azure_environment: Option<String>,
    /// Go only, deprecated; kept because it counts for the `azure` auth group.
    pub azure_login_app_id: Option<String>,
    /// Not used by this library; kept because it counts for the `google` auth group.
    pub google_service_account: Option<String>,
    /// Not used by this library; kept because it counts for the `google` auth group.
    pub google_credentials: Option<Secret>,
    pub databricks_cli_path: Option<String>,
    pub oidc_token_env: Option<String>,
    pub oidc_token_filepath: Option<String>,
    pub token_audience: Option<String>,
    pub actions_id_token_request_url: Option<String>,
    pub actions_id_token_request_token: Option<Secret>,
    pub discovery_url: Option<String>,
    pub cloud: Option<String>,
    /// Sorted and deduplicated; empty means the default, see [`Config::scopes`].
    pub scopes: Vec<String>,
    pub http_timeout_seconds: Option<u64>,
    /// Go: negative means retry forever.
    pub retry_timeout_seconds: Option<i64>,
    /// Lakebase Provisioned instance name (`LAKEBASE_INSTANCE`).
    pub instance: Option<String>,
    /// Lakebase Autoscaling endpoint, `projects/p/branches/b/endpoints/e` (`LAKEBASE_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Extra CA bundle (PEM) for the workspace HTTPS connection (`LAKEBASE_CA_FILE`).
    pub ca_file: Option<String>,
    /// Lakebase Autoscaling: mint credentials for this group's Postgres role (its display name;
    /// `group_name` on `POST /api/2.0/postgres/credentials`; `LAKEBASE_GROUP_NAME`).
    pub group_name: Option<String>,
    /// The per-user shared cache: `on` (default) or `off` (`LAKEBASE_CACHE`).
    pub cache: Option<String>,
    /// Its directory, instead of the automatic location (`LAKEBASE_CACHE_DIR`).
    pub cache_dir: Option<String>,

    /// The config file that was actually read (after `~` expansion), if any.
    pub loaded_file: Option<PathBuf>,
    /// Where each attribute set by a loader came from, in loading order. Values promoted from the
    /// host's query string have no entry.
    pub sources: Vec<(&'static str, Source)>,
}

// ---------------------------------------------------------------------------------------------
// The attribute table.

/// The type of an attribute's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Str,
    Secret,
    Bool,
    U64,
    I64,
    /// Comma-separated in files and options.
    List,
}

enum Val<'a> {
    Str(&'a Option<String>),
    Secret(&'a Option<Secret>),
    Bool(&'a Option<bool>),
    U64(&'a Option<u64>),
    I64(&'a Option<i64>),
    List(&'a Vec<String>),
}

enum Slot<'a> {
    Str(&'a mut Option<String>),
    Secret(&'a mut Option<Secret>),
    Bool(&'a mut Option<bool>),
    U64(&'a mut Option<u64>),
    I64(&'a mut Option<i64>),
    List(&'a mut Vec<String>),
}

/// One configuration attribute (Go `ConfigAttribute`).
pub struct Attribute {
    /// Option key and `.databrickscfg` key.
    pub name: &'static str,
    /// Other accepted option/file keys (the Go SDK's names where they differ).
    pub aliases: &'static [&'static str],
    /// Environment variables, first non-empty wins.
    pub env: &'static [&'static str],
    /// Auth group used for conflict detection and for skipping the config file.
    pub auth: Option<&'static str>,
    /// Printed as `***`.
    pub sensitive: bool,
    /// Left out of the debug string (Go `auth:"-"`).
    pub internal: bool,
    /// Part of the shared-cache key: a different value may mean a different token (everything
    /// but the timeouts, which each client keeps for itself).
    pub cache_key: bool,
    pub kind: AttrKind,
    get: for<'a> fn(&'a Config) -> Val<'a>,
    slot: for<'a> fn(&'a mut Config) -> Slot<'a>,
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attribute")
            .field("name", &self.name)
            .field("env", &self.env)
            .field("auth", &self.auth)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

const SENSITIVE: u8 = 1;
const INTERNAL: u8 = 2;
/// Not part of the shared-cache key.
const NOT_KEY: u8 = 4;

macro_rules! attributes {
    ($( $field:ident : $kind:ident, aliases [$($alias:literal),*], env [$($env:literal),*], auth $auth:expr, flags $flags:expr; )*) => {
        static ATTRIBUTES: &[Attribute] = &[$(
            Attribute {
                name: stringify!($field),
                aliases: &[$($alias),*],
                env: &[$($env),*],
                auth: $auth,
                sensitive: $flags & SENSITIVE != 0,
                internal: $flags & INTERNAL != 0,
                cache_key: $flags & NOT_KEY == 0,
                kind: AttrKind::$kind,
                get: |c| Val::$kind(&c.$field),
                slot: |c| Slot::$kind(&mut c.$field),
            },
        )*];
    };
}

// Order = debug-string order (the Go struct's order where the Go SDK has the attribute).
attributes! {
    host: Str, aliases [], env ["DATABRICKS_HOST"], auth None, flags 0;
    account_id: Str, aliases [], env ["DATABRICKS_ACCOUNT_ID"], auth None, flags 0;
    workspace_id: Str, aliases [], env ["DATABRICKS_WORKSPACE_ID"], auth None, flags 0;
    group_id: Str, aliases [], env ["DATABRICKS_GROUP_ID"], auth None, flags 0;
    token: Secret, aliases [], env ["DATABRICKS_TOKEN"], auth Some("pat"), flags SENSITIVE;
    username: Str, aliases [], env ["DATABRICKS_USERNAME"], auth Some("basic"), flags 0;
    password: Secret, aliases [], env ["DATABRICKS_PASSWORD"], auth Some("basic"), flags SENSITIVE;
    client_id: Str, aliases [], env ["DATABRICKS_CLIENT_ID"], auth Some("oauth"), flags 0;
    client_secret: Secret, aliases [], env ["DATABRICKS_CLIENT_SECRET"], auth Some("oauth"), flags SENSITIVE;
    profile: Str, aliases [], env ["DATABRICKS_CONFIG_PROFILE"], auth None, flags 0;
    config_file: Str, aliases [], env ["DATABRICKS_CONFIG_FILE"], auth None, flags 0;
    auth_type: Str, aliases [], env ["DATABRICKS_AUTH_TYPE"], auth None, flags INTERNAL;
    metadata_service_url: Secret, aliases [], env ["DATABRICKS_METADATA_SERVICE_URL"], auth Some("metadata-service"), flags SENSITIVE;
    azure_workspace_resource_id: Str, aliases [], env ["DATABRICKS_AZURE_RESOURCE_ID"], auth Some("azure"), flags 0;
    azure_use_msi: Bool, aliases [], env ["ARM_USE_MSI"], auth Some("azure"), flags 0;
    azure_client_id: Str, aliases [], env ["ARM_CLIENT_ID"], auth Some("azure"), flags 0;
    azure_client_secret: Secret, aliases [], env ["ARM_CLIENT_SECRET"], auth Some("azure"), flags SENSITIVE;
    azure_tenant_id: Str, aliases [], env ["ARM_TENANT_ID"], auth Some("azure"), flags 0;
    azure_environment: Str, aliases [], env ["ARM_ENVIRONMENT"], auth None, flags 0;
    azure_login_app_id: Str, aliases [], env ["DATABRICKS_AZURE_LOGIN_APP_ID"], auth Some("azure"), flags 0;
    google_service_account: Str, aliases [], env ["DATABRICKS_GOOGLE_SERVICE_ACCOUNT"], auth Some("google"), flags 0;
    google_credentials: Secret, aliases [], env ["GOOGLE_CREDENTIALS"], auth Some("google"), flags SENSITIVE;
    databricks_cli_path: Str, aliases [], env ["DATABRICKS_CLI_PATH"], auth None, flags 0;
    oidc_token_env: Str, aliases [], env ["DATABRICKS_OIDC_TOKEN_ENV"], auth Some("env-oidc"), flags 0;
    oidc_token_filepath: Str, aliases ["databricks_id_token_filepath"],
        env ["DATABRICKS_OIDC_TOKEN_FILEPATH", "DATABRICKS_OIDC_TOKEN_FILE"], auth Some("file-oidc"), flags 0;
    token_audience: Str, aliases ["audience"], env ["DATABRICKS_TOKEN_AUDIENCE"], auth None, flags INTERNAL;
    actions_id_token_request_url: Str, aliases [], env ["ACTIONS_ID_TOKEN_REQUEST_URL"], auth None, flags 0;
    actions_id_token_request_token: Secret, aliases [], env ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"], auth None, flags SENSITIVE;
    discovery_url: Str, aliases [], env ["DATABRICKS_DISCOVERY_URL"], auth None, flags INTERNAL;
    cloud: Str, aliases [], env ["DATABRICKS_CLOUD"], auth None, flags INTERNAL;
    scopes: List, aliases [], env [], auth None, flags 0;
    http_timeout_seconds: U64, aliases [], env [], auth None, flags INTERNAL | NOT_KEY;
    retry_timeout_seconds: I64, aliases [], env [], auth None, flags INTERNAL | NOT_KEY;
    instance: Str, aliases [], env ["LAKEBASE_INSTANCE"], auth None, flags 0;
    endpoint: Str, aliases [], env ["LAKEBASE_ENDPOINT"], auth None, flags 0;
    ca_file: Str, aliases [], env ["LAKEBASE_CA_FILE"], auth None, flags 0;
    group_name: Str, aliases [], env ["LAKEBASE_GROUP_NAME"], auth None, flags 0;
    cache: Str, aliases [], env ["LAKEBASE_CACHE"], auth None, flags INTERNAL | NOT_KEY;
    cache_dir: Str, aliases [], env ["LAKEBASE_CACHE_DIR"], auth None, flags INTERNAL | NOT_KEY;
}

/// Every configuration attribute, in debug-string order.
pub fn attributes() -> &'static [Attribute] {
    ATTRIBUTES
}

/// The attribute an option or file key names (its name or an alias).
fn lookup_key(key: &str) -> Option<&'static Attribute> {
    ATTRIBUTES.iter().find(|a| a.name == key || a.aliases.contains(&key))
}

pub(crate) fn is_known_key(key: &str) -> bool {
    lookup_key(key).is_some()
}

fn is_set(v: &Val<'_>) -> bool {
    match v {
        Val::Str(s) => s.as_deref().is_some_and(|s| !s.is_empty()),
        Val::Secret(s) => s.as_ref().is_some_and(|s| !s.is_empty()),
        Val::Bool(b) => **b == Some(true),
        Val::U64(n) => n.is_some_and(|n| n != 0),
        Val::I64(n) => n.is_some_and(|n| n != 0),
        Val::List(l) => !l.is_empty(),
    }
}

/// A non-sensitive value as the debug string shows it.
fn display(v: &Val<'_>) -> String {
    match v {
        Val::Str(s) => s.as_deref().unwrap_or_default().to_string(),
        Val::Secret(_) => "***".to_string(),
        Val::Bool(b) => b.unwrap_or(false).to_string(),
        Val::U64(n) => n.unwrap_or(0).to_string(),
        Val::I64(n) => n.unwrap_or(0).to_string(),
        Val::List(l) => l.join(","),
    }
}

/// Go `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Attribute {
    fn is_set(&self, cfg: &Config) -> bool {
        is_set(&(self.get)(cfg))
    }

    /// The value as it is (secrets exposed), for hashing into the cache key; `None` when unset.
    /// Never print it.
    pub(crate) fn key_value(&self, cfg: &Config) -> Option<zeroize::Zeroizing<String>> {
        let v = (self.get)(cfg);
        if !is_set(&v) {
            return None;
        }
        Some(zeroize::Zeroizing::new(match v {
            Val::Secret(s) => s.as_ref().map(|s| s.expose().to_string()).unwrap_or_default(),
            other => display(&other),
        }))
    }

    /// How strictly the value is checked when it is read, if it is a credential: the secrets,
    /// plus the identifiers that travel next to them (`client_id`, `username`, Azure ids).
    fn credential_kind(&self) -> Option<CredentialKind> {
        match self.name {
            // Sent verbatim as `Authorization: Bearer <value>`.
            "token" | "actions_id_token_request_token" => Some(CredentialKind::HeaderToken),
            // JSON, and not used by this library.
            "google_credentials" => None,
            "client_id" | "username" | "azure_client_id" | "azure_tenant_id" => Some(CredentialKind::Encoded),
            _ if self.sensitive => Some(CredentialKind::Encoded),
            _ => None,
        }
    }

    /// Go `SetS`: parse `v` for this attribute's kind and store it. The error names the attribute
    /// and shows the value only when the attribute is not sensitive.
    ///
    /// Credentials ([`credential_kind`](Self::credential_kind)) are trimmed of surrounding
    /// whitespace and checked here, when the configuration is read, so a stray byte never reaches
    /// an HTTP header: a control or invisible character left inside is an error naming the
    /// attribute, where it came from (`from`, e.g. `DATABRICKS_TOKEN`) and the byte position,
    /// never the value.
    fn set_str(&self, cfg: &mut Config, v: &str, from: &str) -> std::result::Result<(), String> {
        let v = match self.credential_kind() {
            Some(kind) => match check_credential(v, kind) {
                Ok(t) => {
                    if t.len() != v.len() {
                        crate::log_debug!("config: {} ({from}): surrounding whitespace ignored", self.name);
                    }
                    t
                }
                Err(b) => {
                    let allowed = match kind {
                        CredentialKind::HeaderToken => "visible ASCII characters",
                        CredentialKind::Encoded => "printable characters",
                    };
                    return Err(format!(
                        "{} ({from}): byte {} of the value is {}; it may hold only {allowed} (surrounding whitespace is ignored)",
                        self.name, b.byte, b.what
                    ));
                }
            },
            None => v,
        };
        let bad = |what: &str| {
            if self.sensitive {
                format!("set {}: invalid {what}", self.name)
            } else {
                format!("set {}: invalid {what} {v:?}", self.name)
            }
        };
        match (self.slot)(cfg) {
            Slot::Str(s) => *s = Some(v.to_string()),
            Slot::Secret(s) => *s = Some(Secret::new(v)),
            Slot::Bool(b) => *b = Some(parse_bool(v).ok_or_else(|| bad("boolean"))?),
            Slot::U64(n) => *n = Some(v.strip_prefix('+').unwrap_or(v).parse().map_err(|_| bad("non-negative integer"))?),
            Slot::I64(n) => *n = Some(v.strip_prefix('+').unwrap_or(v).parse().map_err(|_| bad("integer"))?),
            Slot::List(l) => *l = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Resolution.

impl Config {
    /// Resolve the configuration like Go's `Config.EnsureResolved`: explicit `options` (from
    /// [`parse_options`]; for a repeated key the last one wins) > environment > config file,
    /// then host normalisation and the auth-conflict check.
    ///
    /// Errors: an unknown option key is `InvalidArgument`; everything else is `Config`, reading
    /// `resolve: ...` or `validate: ...` followed by the debug string.
    pub fn resolve(options: &[(String, String)], env: &dyn Env) -> Result<Config> {
        if let Some(problem) = env.problem() {
            return Err(Error::config(problem));
        }
        let mut cfg = Config::default();

        // 1. Explicit options.
        let mut explicit: Vec<(&'static Attribute, &str)> = Vec::new();
        for (key, value) in options {
            let attr = lookup_key(key).ok_or_else(|| unknown_option(key))?;
            match explicit.iter_mut().find(|(a, _)| std::ptr::eq(*a, attr)) {
                Some(slot) => slot.1 = value,
                None => explicit.push((attr, value)),
            }
        }
        for (attr, value) in explicit {
            if value.is_empty() || attr.is_set(&cfg) {
                continue;
            }
            if let Err(m) = attr.set_str(&mut cfg, value, "from the options") {
                return Err(cfg.wrap("resolve", &m));
            }
            cfg.sources.push((attr.name, Source::Option));
        }

        // 2. Environment.
        for attr in ATTRIBUTES {
            if attr.is_set(&cfg) {
                continue;
            }
            let Some((name, value)) = attr.env.iter().find_map(|n| env.var(n).filter(|v| !v.is_empty()).map(|v| (*n, v))) else {
                continue;
            };
            let res = attr.set_str(&mut cfg, &value, name);
            cfg.sources.push((attr.name, Source::Env(name)));
            if let Err(m) = res {
                return Err(cfg.wrap("resolve", &m));
            }
        }

        // 3. Config file.
        cfg.load_file(env)?;

        // 4. Host normalisation (Go fixHostIfNeeded).
        if let Err(m) = cfg.fix_host() {
            return Err(cfg.wrap("resolve", &m));
        }
        cfg.scopes.sort();
        cfg.scopes.dedup();

        // 5. Auth conflicts (Go attributes.Validate).
        let groups: BTreeSet<&str> = ATTRIBUTES.iter().filter(|a| a.is_set(&cfg)).filter_map(|a| a.auth).collect();
        if groups.len() > 1 && !cfg.auth_type.as_deref().is_some_and(|t| !t.is_empty()) {
            let names: Vec<&str> = groups.into_iter().collect();
            let m = format!("more than one authorization method configured: {}", names.join(" and "));
            return Err(cfg.wrap("validate", &m));
        }
        Ok(cfg)
    }

    /// Go `configFileLoader.Configure`.
    fn load_file(&mut self, env: &dyn Env) -> Result<()> {
        let has_profile = self.profile.as_deref().is_some_and(|p| !p.is_empty());
        let auth_configured = ATTRIBUTES.iter().any(|a| a.auth.is_some() && a.is_set(self));
        if !has_profile
            && (auth_configured
                || self.host.as_deref().is_some_and(|h| !h.is_empty())
                || self.azure_workspace_resource_id.as_deref().is_some_and(|r| !r.is_empty()))
        {
            return Ok(());
        }
        let loaded = profiles::load_profile(self.config_file.as_deref(), self.profile.as_deref(), env)
            .map_err(|e| self.wrap("resolve", e.message()))?;
        let Some(loaded) = loaded else {
            return Ok(());
        };
        self.loaded_file = Some(loaded.path.clone());
        let Some(profile) = loaded.profile else {
            return Ok(());
        };
        for attr in ATTRIBUTES {
            if attr.is_set(self) {
                continue;
            }
            let value = std::iter::once(attr.name)
                .chain(attr.aliases.iter().copied())
                .find_map(|k| profile.section.get(k).filter(|v| !v.is_empty()));
            let Some(value) = value else {
                continue;
            };
            if let Err(m) = attr.set_str(self, value, "from the config file") {
                let m = format!("{} {} profile: {m}", loaded.path.display(), profile.name);
                return Err(self.wrap("resolve", &m));
            }
            self.sources.push((attr.name, Source::File));
        }
        // Go pins the resolved profile name, so later consumers (CLI token cache keys, error
        // messages) see which section was used, including the DEFAULT fallback.
        self.profile = Some(profile.name);
        Ok(())
    }

    /// Go `fixHostIfNeeded`: add `https://` when there is no scheme, keep only scheme and
    /// authority, and promote workspace/account ids from the query string.
    fn fix_host(&mut self) -> std::result::Result<(), String> {
        // Go would reject surrounding whitespace as a URL parse error; a trailing newline from
        // `$(cat file)` is common enough that trimming it is the kinder reading.
        let Some(host) = self.host.as_deref().map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(());
        };
        let (scheme, rest) = match host.find("://") {
            Some(i) if is_scheme(&host[..i]) => (host[..i].to_ascii_lowercase(), &host[i + 3..]),
            _ => ("https".to_string(), host),
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        // Go rebuilds the URL from scheme and host only, dropping any user info.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if hostname(authority).is_empty() {
            return Err(format!("host {host:?} has no host name"));
        }
        let before_fragment = rest.split('#').next().unwrap_or("");
        let query = before_fragment.split_once('?').map_or("", |(_, q)| q);
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let first = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let numeric = |v: &&str| v.bytes().all(|b| b.is_ascii_digit());

        let new_host = format!("{scheme}://{authority}");
        if self.workspace_id.as_deref().map_or(true, str::is_empty) {
            let ws = first("w").or_else(|| first("o").filter(numeric)).or_else(|| first("workspace_id").filter(numeric));
            if let Some(ws) = ws {
                self.workspace_id = Some(ws.to_string());
            }
        }
        if self.account_id.as_deref().map_or(true, str::is_empty) {
            if let Some(a) = first("a").or_else(|| first("account_id")) {
                self.account_id = Some(a.to_string());
            }
        }
        self.host = Some(new_host);
        Ok(())
    }

    /// `"<stage>: <message>. <debug string>"` as a Config error (Go `wrapDebug`).
    fn wrap(&self, stage: &str, message: &str) -> Error {
        let debug = self.debug_string();
        if debug.is_empty() {
            Error::config(format!("{stage}: {message}"))
        } else {
            Error::config(format!("{stage}: {message}. {debug}"))
        }
    }

    /// Where the named attribute's value came from, if a loader set it.
    pub fn source_of(&self, name: &str) -> Option<Source> {
        self.sources.iter().rev().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    /// Go `DebugString`: `Config: host=https://x, token=***, profile=p. Env: DATABRICKS_HOST,
    /// DATABRICKS_TOKEN`. Set, non-internal attributes in table order, sensitive ones as `***`;
    /// `Env` lists the environment variables that supplied them. Empty when nothing is set.
    pub fn debug_string(&self) -> String {
        let mut used = Vec::new();
        let mut envs = Vec::new();
        for attr in ATTRIBUTES {
            let v = (attr.get)(self);
            if attr.internal || !is_set(&v) {
                continue;
            }
            let shown = if attr.sensitive { "***".to_string() } else { display(&v) };
            used.push(format!("{}={shown}", attr.name));
            if let Some(Source::Env(name)) = self.source_of(attr.name) {
                envs.push(name);
            }
        }
        let mut parts = Vec::new();
        if !used.is_empty() {
            parts.push(format!("Config: {}", used.join(", ")));
        }
        if !envs.is_empty() {
            parts.push(format!("Env: {}", envs.join(", ")));
        }
        parts.join(". ")
    }

    /// Go `IsAzure`: an Azure resource id is set, `cloud` says Azure, or (when `cloud` is not set)
    /// the host is in an Azure Databricks DNS zone.
    pub fn is_azure(&self) -> bool {
        if self.azure_workspace_resource_id.as_deref().is_some_and(|s| !s.is_empty()) {
            return true;
        }
        if let Some(cloud) = self.cloud.as_deref().filter(|c| !c.is_empty()) {
            return cloud.eq_ignore_ascii_case("azure");
        }
        let Some(host) = self.host.as_deref() else {
            return false;
        };
        let rest = host.split_once("://").map_or(host, |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let name = hostname(authority).to_ascii_lowercase();
        [".azuredatabricks.net", ".databricks.azure.us", ".databricks.azure.cn"].iter().any(|zone| name.ends_with(zone))
    }

    /// Go `HostType` without host metadata: the host starts with `https://accounts.` or
    /// `https://accounts-dod.`.
    pub fn is_account_host(&self) -> bool {
        self.host.as_deref().is_some_and(|h| h.starts_with("https://accounts.") || h.starts_with("https://accounts-dod."))
    }

    /// OAuth scopes: sorted and deduplicated, `["all-apis"]` when none are configured.
    pub fn scopes(&self) -> Vec<String> {
        if self.scopes.is_empty() {
            return vec!["all-apis".to_string()];
        }
        let mut s = self.scopes.clone();
        s.sort();
        s.dedup();
        s
    }
}

/// RFC 3986 scheme: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic()) && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// The host name of an authority (`host`, `host:port`, `[v6]:port`), without the port.
fn hostname(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn unknown_option(key: &str) -> Error {
    let valid: Vec<&str> = ATTRIBUTES.iter().map(|a| a.name).collect();
    // An option name is not a value, but a mis-quoted value can end up in key position: show only
    // names that look like option names.
    let identifier =
        !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    let shown = if identifier { format!(" \"{key}\"") } else { String::new() };
    Error::invalid_argument(format!("unknown option{shown}; valid options are: {}", valid.join(", ")))
}

#[cfg(test)]
mod tests;
