//! The injection decision and the injected call.
//!
//! Inject only when (interposed entry points) every host is a Lakebase host, no password was
//! given (conninfo, params, service, PGPASSWORD or a password-file entry — checked before any
//! configuration or network work) and LAKEBASE_DISABLE is not 1. A given password that is a token
//! this library minted (pg_dump/pg_restore hand `PQpass()` back when they reconnect) counts as
//! none given. Then:
//! - password = the cached token;
//! - TLS to a verified server only: `sslmode` unset, `allow`, `prefer` or `require` becomes
//!   `verify-full` (the user's `sslrootcert`/PGSSLROOTCERT or `~/.postgresql/root.crt` when there
//!   is one, else the system CA store: `sslrootcert=system` on libpq >= 16, the system bundle file
//!   before); `verify-ca`/`verify-full` are kept; `LAKEBASE_VERIFY_SERVER=0` restores plain
//!   `require`; an explicit `disable` is refused with a clear error instead of sending the token
//!   in clear;
//! - user = the identity's Postgres role when none was given (an explicit user equal to libpq's
//!   OS-user default with PGUSER unset counts as none given — Ruby `pg` fills it in).
//!
//! The injected call is made with exactly the parameters decided on (one conninfo string checked
//! by libpq's own parser). Blocking connects retry: once with a new token after a login with a
//! cached token failed once the server had asked for the password, and with bounded backoff
//! after transport failures and `57P03` (waking endpoints), within `LAKEBASE_CONNECT_RETRY` /
//! `connect_timeout` / 10 s (`lakebase_core::connect`).

use super::hosts::is_lakebase_host;
use super::params::{self, Call, Explicit, Options};
use super::resolve::Libpq;
use super::sys::*;
use arc_swap::ArcSwap;
use lakebase_core::clock::SystemClock;
use lakebase_core::connect::{classify_libpq, parse_connect_timeout, RetryPolicy};
use lakebase_core::{default_client, Client};
use lakebase_core::{Error, Result};
use libc::c_char;
use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

/// Which entry point family is calling.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Exported under libpq's own names: transparent unless the host is a Lakebase host.
    Interpose,
    /// `lakebase_PQ*`: the caller asked for Lakebase; the host test is skipped.
    Wrapper,
}

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Set while this thread is inside an injection, so libpq's nested calls to its own exported
/// entry points (PQconnectdbParams → PQconnectStartParams) pass straight through.
pub struct HookGuard(());

impl HookGuard {
    pub fn enter() -> Option<HookGuard> {
        IN_HOOK.with(|f| if f.replace(true) { None } else { Some(HookGuard(())) })
    }
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        IN_HOOK.with(|f| f.set(false));
    }
}

fn truthy_off(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off")
}

pub fn disabled() -> bool {
    matches!(std::env::var("LAKEBASE_DISABLE").as_deref(), Ok("1") | Ok("true") | Ok("yes"))
}

/// The setting that turns server verification off for injected tokens (plain `sslmode=require`).
pub const VERIFY_ENV: &str = "LAKEBASE_VERIFY_SERVER";

/// Whether an injected token goes only to a server whose certificate verifies (the default).
pub fn verify_server() -> bool {
    !env(VERIFY_ENV).is_some_and(|v| truthy_off(&v))
}

/// What to add to the call.
pub struct Injection {
    /// The parameters the decision was made on (the caller's, after libpq's rules).
    explicit: Explicit,
    /// Set or replaced on top of them: password first.
    overrides: Vec<(&'static str, Zeroizing<Vec<u8>>)>,
    client: Arc<Client>,
    /// The token was minted during this call (so a rejected login is not retried with another).
    fresh: bool,
    /// The caller set a `connect_timeout` (else each attempt gets what is left of the budget).
    user_timeout: bool,
    retry: RetryPolicy,
}

impl Injection {
    /// The conninfo string of one attempt (NUL-terminated, wiped on drop).
    fn conninfo(&self, attempt_timeout: Option<u64>) -> Zeroizing<Vec<u8>> {
        let timeout = attempt_timeout.map(|t| Zeroizing::new(t.to_string().into_bytes()));
        let extra = timeout.as_ref().map(|t| ("connect_timeout", t.as_slice()));
        let keys: Vec<&str> = self.overrides.iter().map(|(k, _)| *k).chain(extra.map(|e| e.0)).collect();
        let base = self.explicit.iter().filter(|(k, _)| !keys.contains(k));
        let over = self.overrides.iter().map(|(k, v)| (*k, v.as_slice())).chain(extra);
        params::conninfo_string(base.chain(over))
    }
}

pub enum Decision {
    PassThrough,
    Inject(Injection),
    Refuse(String),
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn bytes(s: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(s.as_bytes().to_vec())
}

pub fn decide(lib: &Libpq, call: &Call, mode: Mode) -> Decision {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decide_inner(lib, call, mode))) {
        Ok(Ok(Some(i))) => Decision::Inject(i),
        Ok(Ok(None)) => Decision::PassThrough,
        Ok(Err(e)) => {
            lakebase_core::log_warn!("libpq: not connecting: {e}");
            Decision::Refuse(e.message().to_string())
        }
        Err(_) => {
            lakebase_core::log_error!("libpq: internal error (panic caught); passing the call through unchanged");
            Decision::PassThrough
        }
    }
}

/// The parameters libpq will use for one call: explicit (present, even "", wins), then the named
/// service's, then libpq's defaults. "" means unset.
struct Resolved {
    explicit: Explicit,
    service: Options,
    defaults: Options,
}

impl Resolved {
    fn get(&self, k: &str) -> Option<String> {
        let v = if self.explicit.has(k) { self.explicit.get(k) } else { self.service.get(k).or_else(|| self.defaults.get(k)).cloned() };
        v.filter(|v| !v.is_empty())
    }
}

impl Drop for Resolved {
    fn drop(&mut self) {
        params::wipe(&mut self.service);
        params::wipe(&mut self.defaults);
    }
}

fn decide_inner(lib: &Libpq, call: &Call, mode: Mode) -> Result<Option<Injection>> {
    let Some(explicit) = params::explicit(lib, call) else { return Ok(None) };
    let service = explicit.get("service").filter(|s| !s.is_empty()).map(|s| params::service_options(&s, &env)).unwrap_or_default();
    let r = Resolved { explicit, service, defaults: params::defaults(lib) };
    let Some(host_list) = r.get("host") else { return Ok(None) };
    let hosts: Vec<&str> = host_list.split(',').map(str::trim).collect();
    let globs = env("LAKEBASE_HOSTS");
    let all_tcp = hosts.iter().all(|h| !h.is_empty() && !h.starts_with('/') && !h.starts_with('@'));
    let all_lakebase = hosts.iter().all(|h| is_lakebase_host(h, globs.as_deref()));
    match mode {
        Mode::Interpose if !all_lakebase => return Ok(None),
        _ if !all_tcp => return Ok(None),
        _ => {}
    }
    // A password the user gave wins, before any configuration or network work; unless it is a
    // token this library minted, handed back (pg_dump -j / pg_restore -C reconnects).
    let given = r.get("password").map(Zeroizing::new);
    let handed_back = given.as_deref().is_some_and(|p| lakebase_core::is_minted_here(p));
    if given.is_some() && !handed_back {
        lakebase_core::log_debug!("libpq: a password was given; not injecting");
        return Ok(None);
    }
    if given.is_none() && passfile_entry(&r, &hosts, r.get("user").as_deref().unwrap_or("")) {
        lakebase_core::log_debug!("libpq: the password file has an entry; not injecting");
        return Ok(None);
    }
    let sslmode = r.get("sslmode").unwrap_or_else(|| "prefer".into());
    let verify = verify_server();
    let new_sslmode = match sslmode.as_str() {
        "disable" => {
            return Err(Error::config(
                "refusing to send a Lakebase OAuth token without TLS (sslmode=disable); use sslmode=verify-full or require",
            ))
        }
        "allow" | "prefer" | "require" if verify => Some("verify-full"),
        "allow" | "prefer" => Some("require"),
        "require" | "verify-ca" | "verify-full" => None,
        _ => return Ok(None), // libpq reports an invalid sslmode itself
    };
    let effective_mode = new_sslmode.unwrap_or(sslmode.as_str());
    let rootcert = if effective_mode.starts_with("verify-") { root_certificate(lib, &r, effective_mode)? } else { None };

    let pguser = env("PGUSER");
    let given_user = if r.explicit.has("user") { r.explicit.get("user") } else { r.service.get("user").cloned() }.filter(|u| !u.is_empty());
    let os_default = if pguser.is_none() { r.defaults.get("user").cloned() } else { None };
    let user_given = match (&given_user, &pguser) {
        (Some(u), None) if Some(u) == os_default.as_ref() => false,
        (Some(_), _) | (None, Some(_)) => true,
        (None, None) => false,
    };

    // Everything a blocked connect waits for (discovery, identity, mint) shares one deadline.
    let d = default_client()?;
    let (client, user, password, fresh) = d.blocking(|| -> Result<_> {
        let client = client_for(&d, hosts[0])?;
        let user = if user_given {
            given_user.clone().or(pguser.clone()).unwrap_or_default()
        } else {
            client
                .postgres_role()
                .map_err(|e| e.context("finding the Postgres role (the group's with group_id/group_name, else SCIM /Me userName)"))?
        };
        let before = client.token_info().map(|t| t.serial);
        let password = client.password()?;
        let after = client.token_info();
        // Minted by this call: a rejection is final. A token from the shared cache (another
        // process minted it) may have been revoked since: a rejection gets one retry with a new mint.
        let fresh = (before.is_none() || after.map(|t| t.serial) != before) && !after.is_some_and(|t| t.shared);
        Ok((client, user, password, fresh))
    })?;

    // The host and sslmode decided on are pinned, wherever they came from (PGHOST, a service).
    let mut overrides = vec![("password", bytes(password.expose())), ("host", bytes(&host_list)), ("sslmode", bytes(effective_mode))];
    if let Some(rc) = &rootcert {
        overrides.push(("sslrootcert", bytes(rc)));
    }
    if !user_given {
        overrides.push(("user", bytes(&user)));
    }
    let connect_timeout = r.get("connect_timeout");
    let user_timeout = connect_timeout.as_deref().and_then(parse_connect_timeout).is_some();
    let retry = RetryPolicy::from_env(connect_timeout.as_deref());
    let explicit = std::mem::take(&mut { r }.explicit);
    let inj = Injection { explicit, overrides, client, fresh, user_timeout, retry };

    // The final parameters, checked with libpq's own parser: what it will connect to is what
    // was decided on.
    let s = inj.conninfo(None);
    let Some(parsed) = params::check_conninfo(lib, &s) else {
        lakebase_core::log_debug!("libpq rejects the connection parameters; passing the call through for libpq to report");
        return Ok(None);
    };
    let got = |k: &str| parsed.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
    if got("host").as_deref() != Some(host_list.as_str()) || got("sslmode").as_deref() != Some(effective_mode) {
        lakebase_core::log_error!("libpq: the final connection parameters differ from the decision; passing the call through unchanged");
        return Ok(None);
    }
    lakebase_core::log_info!(
        "libpq: injecting a Lakebase password for {} (user {user}{}, sslmode {effective_mode}{}{})",
        hosts.join(","),
        if handed_back { ", a token of this library handed back" } else { "" },
        rootcert.as_deref().map(|c| format!(", sslrootcert {c}")).unwrap_or_default(),
        if verify { "" } else { ", server verification turned off by LAKEBASE_VERIFY_SERVER" }
    );
    Ok(Some(inj))
}

/// Standard locations of the system CA bundle (Debian/Ubuntu/Alpine, Fedora/RHEL, openSUSE, ...).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The `sslrootcert` to add for a `verify-*` connection, if any: none when the user has one
/// (`sslrootcert`, PGSSLROOTCERT, `~/.postgresql/root.crt`, which libpq reads itself); else the
/// system store: `system` on libpq >= 16 with verify-full, else the system bundle file
/// (SSL_CERT_FILE when set, as OpenSSL reads it).
fn root_certificate(lib: &Libpq, r: &Resolved, mode: &str) -> Result<Option<String>> {
    let home_root = env("HOME").is_some_and(|h| std::path::Path::new(&h).join(".postgresql/root.crt").is_file());
    let user_has = r.get("sslrootcert").is_some() || home_root;
    choose_root_certificate(lib.version, mode, user_has, env("SSL_CERT_FILE"), &|p| std::path::Path::new(p).is_file())
}

/// The decision of [`root_certificate`], pure.
fn choose_root_certificate(
    libpq_version: i32,
    mode: &str,
    user_has: bool,
    ssl_cert_file: Option<String>,
    is_file: &dyn Fn(&str) -> bool,
) -> Result<Option<String>> {
    if user_has {
        return Ok(None);
    }
    if libpq_version >= 160000 && mode == "verify-full" {
        return Ok(Some("system".into()));
    }
    for c in ssl_cert_file.into_iter().chain(SYSTEM_BUNDLES.iter().map(|s| s.to_string())) {
        if is_file(&c) {
            return Ok(Some(c));
        }
    }
    Err(Error::config(format!(
        "no CA certificates to verify the server with: no sslrootcert, PGSSLROOTCERT or ~/.postgresql/root.crt, and no system CA bundle ({}); install ca-certificates, set PGSSLROOTCERT, or set {VERIFY_ENV}=0 to send the token over unverified TLS",
        SYSTEM_BUNDLES.join(", ")
    )))
}

fn passfile_entry(r: &Resolved, hosts: &[&str], user: &str) -> bool {
    let path = r.get("passfile").or_else(|| env("PGPASSFILE")).or_else(|| env("HOME").map(|h| format!("{h}/.pgpass")));
    let Some(path) = path else { return false };
    let ports = r.get("port").unwrap_or_else(|| "5432".into());
    let ports: Vec<&str> = ports.split(',').map(str::trim).collect();
    let db = r.get("dbname").unwrap_or_else(|| user.to_string());
    hosts.iter().enumerate().any(|(i, h)| {
        let port = ports.get(i).or(ports.first()).copied().filter(|p| !p.is_empty()).unwrap_or("5432");
        params::passfile_has_entry(std::path::Path::new(&path), h, port, &db, user)
    })
}

/// The client for a Lakebase host: the default client when it names a target, else one per
/// discovered instance/endpoint (cached per host).
fn client_for(d: &Arc<Client>, host: &str) -> Result<Arc<Client>> {
    if d.target().is_some() {
        return Ok(d.clone());
    }
    static BY_HOST: OnceLock<ArcSwap<HashMap<String, Arc<Client>>>> = OnceLock::new();
    let map = BY_HOST.get_or_init(|| ArcSwap::from_pointee(HashMap::new()));
    let key = host.to_ascii_lowercase();
    if let Some(c) = map.load().get(&key) {
        return Ok(c.clone());
    }
    let target = d.discover_target(host)?;
    let c = Arc::new(d.with_target(&target)?);
    map.rcu(|m| {
        let mut m = (**m).clone();
        m.insert(key.clone(), c.clone());
        m
    });
    Ok(c)
}

/// One attempt with exactly the decided parameters.
unsafe fn attempt(lib: &Libpq, inj: &Injection, blocking: bool, timeout: Option<u64>) -> *mut PGconn {
    let f = if blocking { lib.connectdb_params } else { lib.connect_start_params };
    let s = inj.conninfo(timeout);
    let keys = [c"dbname".as_ptr(), std::ptr::null()];
    let vals = [s.as_ptr() as *const c_char, std::ptr::null()];
    f(keys.as_ptr(), vals.as_ptr(), 1)
}

/// Connect with the injection. Blocking connects retry (see the module documentation): once with
/// a freshly minted token when a cached one failed after the server asked for the password, and
/// transport failures / `57P03` with bounded backoff within the retry budget. Never after a
/// password request for anything else (authentication, "does not exist").
///
/// # Safety
/// `lib` must be a resolved libpq.
pub unsafe fn connect(lib: &Libpq, mut inj: Injection, blocking: bool) -> *mut PGconn {
    if !blocking {
        return attempt(lib, &inj, false, None);
    }
    let clock = SystemClock;
    let mut retrying = inj.retry.start(&clock);
    let mut token_retried = inj.fresh;
    loop {
        let timeout = (!inj.user_timeout && !inj.retry.budget.is_zero()).then(|| retrying.attempt_timeout().as_secs());
        let conn = attempt(lib, &inj, true, timeout);
        if conn.is_null() || (lib.status)(conn) != CONNECTION_BAD {
            return conn;
        }
        let asked = (lib.used_password)(conn) != 0;
        if asked && !token_retried {
            // Facts, not the server's wording: we sent a cached token, the server asked for it,
            // and the login failed. The token may have been revoked or rotated out.
            token_retried = true;
            lakebase_core::log_warn!("libpq: the login with the cached Lakebase token failed; minting a new one and retrying once");
            let sent = String::from_utf8_lossy(inj.overrides[0].1.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
            let sent = zeroize::Zeroizing::new(sent);
            if let Err(e) = inj.client.refresh_rejected(&sent) {
                lakebase_core::log_warn!("libpq: refresh failed: {e}");
                return conn;
            }
            let Ok(pw) = inj.client.password() else { return conn };
            inj.overrides[0].1 = bytes(pw.expose());
            (lib.finish)(conn);
            continue;
        }
        let msg = CStr::from_ptr((lib.error_message)(conn)).to_string_lossy().into_owned();
        let failure = classify_libpq(&msg, asked);
        match retrying.after_failure(failure) {
            Some(delay) => {
                lakebase_core::log_info!(
                    "libpq: connection attempt {} failed ({failure:?}: {}); retrying in {} ms",
                    retrying.attempts(),
                    msg.lines().last().unwrap_or("").trim(),
                    delay.as_millis()
                );
                (lib.finish)(conn);
                retrying.sleep(delay);
            }
            None => return conn,
        }
    }
}

/// A connection object in `CONNECTION_BAD` state whose `PQerrorMessage` carries `msg`: made by the
/// real libpq, rejecting an `sslmode` value that is our message (libpq reports
/// `invalid sslmode value: "<msg>"`).
///
/// # Safety
/// `lib` must be a resolved libpq.
pub unsafe fn refused(lib: &Libpq, msg: &str, blocking: bool) -> *mut PGconn {
    let mut text = format!("liblakebase: {}", msg.replace('"', "'")).into_bytes();
    text.retain(|&b| b != 0);
    text.push(0);
    let keys = [c"sslmode".as_ptr(), std::ptr::null()];
    let vals = [text.as_ptr() as *const c_char, std::ptr::null()];
    let f = if blocking { lib.connectdb_params } else { lib.connect_start_params };
    f(keys.as_ptr(), vals.as_ptr(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_certificates_user_first_then_the_system_store() {
        let none = |_: &str| false;
        let debian = |p: &str| p == "/etc/ssl/certs/ca-certificates.crt";
        let c = |v, m, u, f: Option<&str>, x: &dyn Fn(&str) -> bool| choose_root_certificate(v, m, u, f.map(String::from), x);
        assert_eq!(c(150018, "verify-full", true, None, &none).unwrap(), None, "the user's own root certificate is kept");
        assert_eq!(c(160004, "verify-full", false, None, &none).unwrap().as_deref(), Some("system"));
        // verify-ca cannot use sslrootcert=system (libpq refuses weaker modes with it): the file.
        assert_eq!(c(170000, "verify-ca", false, None, &debian).unwrap().as_deref(), Some("/etc/ssl/certs/ca-certificates.crt"));
        assert_eq!(c(150018, "verify-full", false, None, &debian).unwrap().as_deref(), Some("/etc/ssl/certs/ca-certificates.crt"));
        let rhel = |p: &str| p == "/etc/pki/tls/certs/ca-bundle.crt";
        assert_eq!(c(140000, "verify-full", false, None, &rhel).unwrap().as_deref(), Some("/etc/pki/tls/certs/ca-bundle.crt"));
        let any = |_: &str| true;
        assert_eq!(
            c(150018, "verify-full", false, Some("/my/ca.pem"), &any).unwrap().as_deref(),
            Some("/my/ca.pem"),
            "SSL_CERT_FILE first"
        );
        let e = c(150018, "verify-full", false, None, &none).unwrap_err();
        assert!(e.message().contains("PGSSLROOTCERT") && e.message().contains("LAKEBASE_VERIFY_SERVER=0"), "{e}");
    }
}
