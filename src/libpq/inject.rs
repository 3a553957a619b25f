//! The injection decision and the injected call.
//!
//! Inject only when (interposed entry points) every host is a Lakebase host, no password was
//! given (conninfo, params, service, PGPASSWORD or a password-file entry) and LAKEBASE_DISABLE is
//! not 1. Then: password = the cached token; sslmode raised to `require` when unset, `allow` or
//! `prefer` (an explicit `disable` is refused with a clear error instead of sending the token in
//! clear); user = the identity's Postgres role when none was given (an explicit user equal to
//! libpq's OS-user default with PGUSER unset counts as none given — Ruby `pg` fills it in).

use super::hosts::is_lakebase_host;
use super::params::{self, Call, Options};
use super::resolve::Libpq;
use super::sys::*;
use crate::client::{default_client, Client};
use crate::error::{Error, Result};
use arc_swap::ArcSwap;
use libc::{c_char, c_int};
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

pub fn disabled() -> bool {
    matches!(std::env::var("LAKEBASE_DISABLE").as_deref(), Ok("1") | Ok("true") | Ok("yes"))
}

/// What to add to the call.
pub struct Injection {
    overrides: Vec<(&'static CStr, Zeroizing<Vec<u8>>)>,
    client: Arc<Client>,
    /// The token was minted during this call (so a rejected login is not retried).
    fresh: bool,
}

pub enum Decision {
    PassThrough,
    Inject(Injection),
    Refuse(String),
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn nul(s: &str) -> Zeroizing<Vec<u8>> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.retain(|&b| b != 0);
    v.push(0);
    Zeroizing::new(v)
}

pub fn decide(lib: &Libpq, call: &Call, mode: Mode) -> Decision {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decide_inner(lib, call, mode))) {
        Ok(Ok(Some(i))) => Decision::Inject(i),
        Ok(Ok(None)) => Decision::PassThrough,
        Ok(Err(e)) => {
            crate::log_warn!("libpq: not connecting: {e}");
            Decision::Refuse(e.message().to_string())
        }
        Err(_) => {
            crate::log_error!("libpq: internal error (panic caught); passing the call through unchanged");
            Decision::PassThrough
        }
    }
}

fn decide_inner(lib: &Libpq, call: &Call, mode: Mode) -> Result<Option<Injection>> {
    let Some(explicit) = params::explicit(lib, call) else { return Ok(None) };
    let defaults = params::defaults(lib);
    let service = explicit.get("service").map(|s| params::service_options(s, &env)).unwrap_or_default();
    let get = |k: &str| -> Option<String> {
        explicit.get(k).or_else(|| service.get(k)).or_else(|| defaults.get(k)).filter(|v| !v.is_empty()).cloned()
    };
    let Some(host_list) = get("host") else { return Ok(None) };
    let hosts: Vec<&str> = host_list.split(',').map(str::trim).collect();
    let globs = env("LAKEBASE_HOSTS");
    let all_tcp = hosts.iter().all(|h| !h.is_empty() && !h.starts_with('/') && !h.starts_with('@'));
    let all_lakebase = hosts.iter().all(|h| is_lakebase_host(h, globs.as_deref()));
    match mode {
        Mode::Interpose if !all_lakebase => return Ok(None),
        _ if !all_tcp => return Ok(None),
        _ => {}
    }
    if get("password").is_some() {
        crate::log_debug!("libpq: a password was given; not injecting");
        return Ok(None);
    }
    let sslmode = get("sslmode").unwrap_or_else(|| "prefer".into());
    let raise_ssl = match sslmode.as_str() {
        "disable" => {
            return Err(Error::config(
                "refusing to send a Lakebase OAuth token without TLS (sslmode=disable); use sslmode=require",
            ))
        }
        "allow" | "prefer" => true,
        _ => false,
    };
    let pguser = env("PGUSER");
    let given_user = explicit.get("user").or_else(|| service.get("user")).filter(|u| !u.is_empty()).cloned();
    let os_default = if pguser.is_none() { defaults.get("user").cloned() } else { None };
    let user_given = match (&given_user, &pguser) {
        (Some(u), None) if Some(u) == os_default.as_ref() => false,
        (Some(_), _) | (None, Some(_)) => true,
        (None, None) => false,
    };
    let client = client_for(hosts[0])?;
    let user = if user_given {
        given_user.or(pguser).unwrap_or_default()
    } else {
        client.identity().map_err(|e| e.context("finding the Postgres role (SCIM /Me userName)"))?
    };
    if passfile_entry(&explicit, &get, &hosts, &user) {
        crate::log_debug!("libpq: the password file has an entry; not injecting");
        return Ok(None);
    }
    let before = client.token_info().map(|t| t.serial);
    let password = client.password()?;
    let fresh = before.is_none() || client.token_info().map(|t| t.serial) != before;
    let mut overrides = vec![(c"password", nul(password.expose()))];
    if raise_ssl {
        overrides.push((c"sslmode", nul("require")));
    }
    if !user_given {
        overrides.push((c"user", nul(&user)));
    }
    crate::log_info!(
        "libpq: injecting a Lakebase password for {} (user {user}{})",
        hosts.join(","),
        if raise_ssl { ", sslmode raised to require" } else { "" }
    );
    Ok(Some(Injection { overrides, client, fresh }))
}

fn passfile_entry(explicit: &Options, get: &dyn Fn(&str) -> Option<String>, hosts: &[&str], user: &str) -> bool {
    let path = explicit
        .get("passfile")
        .cloned()
        .or_else(|| env("PGPASSFILE"))
        .or_else(|| env("HOME").map(|h| format!("{h}/.pgpass")));
    let Some(path) = path else { return false };
    let ports = get("port").unwrap_or_else(|| "5432".into());
    let ports: Vec<&str> = ports.split(',').map(str::trim).collect();
    let db = get("dbname").unwrap_or_else(|| user.to_string());
    hosts.iter().enumerate().any(|(i, h)| {
        let port = ports.get(i).or(ports.first()).copied().filter(|p| !p.is_empty()).unwrap_or("5432");
        params::passfile_has_entry(std::path::Path::new(&path), h, port, &db, user)
    })
}

/// The client for a Lakebase host: the default client when it names a target, else one per
/// discovered instance/endpoint (cached per host).
fn client_for(host: &str) -> Result<Arc<Client>> {
    let d = default_client()?;
    let d = d.as_ref().ok_or_else(|| Error::internal("default client missing"))?.clone();
    if d.target().is_some() {
        return Ok(d);
    }
    static BY_HOST: OnceLock<ArcSwap<HashMap<String, Arc<Client>>>> = OnceLock::new();
    let map = BY_HOST.get_or_init(|| ArcSwap::from_pointee(HashMap::new()));
    let key = host.to_ascii_lowercase();
    if let Some(c) = map.load().get(&key) {
        return Ok(c.clone());
    }
    let target = super::discover::find_target(d.api(), host)?;
    let opts = vec![(target.kind().to_string(), target.name().to_string())];
    let c = Arc::new(Client::builder().build(&opts)?);
    map.rcu(|m| {
        let mut m = (**m).clone();
        m.insert(key.clone(), c.clone());
        m
    });
    Ok(c)
}

fn is_auth_failure(msg: &str) -> bool {
    msg.contains("password authentication failed") || msg.contains("PAM authentication failed") || msg.contains("28P01")
}

/// Connect with the injection; for blocking connects, a login rejected as an authentication
/// failure with a cached (not just minted) token is retried once with a freshly minted one.
///
/// # Safety
/// `call` must hold valid C strings.
pub unsafe fn connect(lib: &Libpq, call: &Call, mut inj: Injection, blocking: bool) -> *mut PGconn {
    let f = if blocking { lib.connectdb_params } else { lib.connect_start_params };
    let conn = with_arrays(call, &inj, |k, v| f(k, v, call.expand_dbname as c_int));
    if !blocking || conn.is_null() || (lib.status)(conn) != CONNECTION_BAD || inj.fresh {
        return conn;
    }
    let msg = CStr::from_ptr((lib.error_message)(conn)).to_string_lossy().into_owned();
    if !is_auth_failure(&msg) {
        return conn;
    }
    crate::log_warn!("libpq: the server rejected the cached Lakebase token; minting a new one and retrying once");
    if let Err(e) = inj.client.force_refresh() {
        crate::log_warn!("libpq: refresh failed: {e}");
        return conn;
    }
    let Ok(pw) = inj.client.password() else { return conn };
    (lib.finish)(conn);
    inj.overrides[0].1 = nul(pw.expose());
    with_arrays(call, &inj, |k, v| f(k, v, call.expand_dbname as c_int))
}

/// # Safety
/// `call` must hold valid C strings.
pub unsafe fn ping(lib: &Libpq, call: &Call, inj: &Injection) -> c_int {
    with_arrays(call, inj, |k, v| (lib.ping_params)(k, v, call.expand_dbname as c_int))
}

unsafe fn with_arrays<R>(call: &Call, inj: &Injection, f: impl FnOnce(*const *const c_char, *const *const c_char) -> R) -> R {
    let extra: Vec<(*const c_char, *const c_char)> =
        inj.overrides.iter().map(|(k, v)| (k.as_ptr(), v.as_ptr() as *const c_char)).collect();
    let (k, v) = call.with_overrides(&extra);
    f(k.as_ptr(), v.as_ptr())
}

/// A connection object in `CONNECTION_BAD` state whose `PQerrorMessage` carries `msg`: made by the
/// real libpq, rejecting an `sslmode` value that is our message (libpq reports
/// `invalid sslmode value: "<msg>"`).
///
/// # Safety
/// `lib` must be a resolved libpq.
pub unsafe fn refused(lib: &Libpq, msg: &str, blocking: bool) -> *mut PGconn {
    let text = nul(&format!("liblakebase: {}", msg.replace('"', "'")));
    let keys = [c"sslmode".as_ptr(), std::ptr::null()];
    let vals = [text.as_ptr() as *const c_char, std::ptr::null()];
    let f = if blocking { lib.connectdb_params } else { lib.connect_start_params };
    f(keys.as_ptr(), vals.as_ptr(), 0)
}
