//! `lakebase_client`: a configured password source with its own (possibly shared) token cache.

use super::{boundary, check_buf, error, hit_copy, lakebase_result, opt_str, write_str};
use lakebase_core::Error;
use lakebase_core::{default_client_if_set, default_client_ref, Client};
use libc::{c_char, size_t};
use std::sync::Arc;

/// An opaque client handle. Create with `lakebase_client_new`, release with `lakebase_client_free`.
///
/// Thread safety: a client may be used from any number of threads at once.
#[allow(non_camel_case_types)]
pub struct lakebase_client {
    _private: [u8; 0],
}

/// The body of every export that copies a string about a client into a caller buffer.
unsafe fn client_string(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
    get: impl FnOnce(&Client) -> Result<String, Error>,
) -> lakebase_result {
    boundary(|| {
        check_buf(buf, buf_len)?;
        let s = get(client_ref(c)?)?;
        write_str(s.as_bytes(), buf, buf_len, out_len)
    })
}

pub(crate) unsafe fn client_ref<'a>(c: *const lakebase_client) -> Result<&'a Client, Error> {
    if c.is_null() {
        return Err(Error::invalid_argument("client is NULL"));
    }
    Ok(&*(c as *const Client))
}

/// Create a client from a libpq-style options string, e.g.
/// `"host=https://my.cloud.databricks.com instance=my-db"` or `"profile=prod endpoint='projects/p/branches/b/endpoints/e'"`.
///
/// Keys are the `.databrickscfg` attribute names (`host`, `token`, `client_id`, `client_secret`,
/// `profile`, `config_file`, `auth_type`, `account_id`, `workspace_id`, ...) plus `instance`
/// (Lakebase Provisioned instance name), `endpoint` (Lakebase Autoscaling endpoint resource name)
/// and `ca_file`. Values may be single-quoted; `\'` and `\\` escape. NULL or `""` means environment
/// defaults. Precedence as in the Databricks SDKs: these options, then `DATABRICKS_*` /
/// `LAKEBASE_*` environment variables, then the profile in `~/.databrickscfg`.
///
/// No network I/O happens here: configuration is resolved and the auth method picked; the first
/// password is minted by the first `lakebase_client_get_password`.
///
/// On success `*out` receives a new client owned by the caller (free it with
/// `lakebase_client_free`); on failure `*out` is not written and `lakebase_last_error` says why.
///
/// Errors: `LAKEBASE_INVALID_ARGUMENT` (NULL `out`, non-UTF-8 or malformed options, unknown key),
/// `LAKEBASE_CONFIG_ERROR` (unknown profile, no host, conflicting auth methods, bad endpoint name),
/// `LAKEBASE_INTERNAL_ERROR`.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `options` must be NULL or a NUL-terminated string; `out` must be NULL or point to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_new(options: *const c_char, out: *mut *mut lakebase_client) -> lakebase_result {
    boundary(|| {
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        let opts = opt_str(options, "options")?.unwrap_or("");
        let c = Client::new(opts)?;
        *out = Arc::into_raw(Arc::new(c)) as *mut lakebase_client;
        Ok(())
    })
}

/// Release a client. `NULL` is a no-op, and so is the default client from
/// `lakebase_default_client` (it lives for the whole process). Do not use `c` afterwards.
/// Tokens cached for other clients with the same settings stay cached.
///
/// Thread safety: no other thread may be using `c` during or after this call.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not been freed. After the call `c` must not be used again.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_free(c: *mut lakebase_client) {
    super::boundary_or((), || {
        if c.is_null() || is_default(c) {
            return;
        }
        drop(Arc::from_raw(c as *const Client));
    })
}

/// Whether `c` is the default client. Never configures the default client: if it was never
/// created, `c` cannot be it.
fn is_default(c: *const lakebase_client) -> bool {
    default_client_if_set().is_some_and(|d| std::ptr::eq(d as *const Client as *const lakebase_client, c))
}

/// Get the process-wide default client (configured from the environment and `~/.databrickscfg`
/// on first use), the one `lakebase_get_password` uses. `*out` is borrowed: it stays valid for the
/// life of the process and must not be freed (`lakebase_client_free` ignores it).
///
/// Errors: as `lakebase_client_new`; a configuration error is not remembered, so fixing the
/// environment and calling again works. Thread safety: any thread.
///
/// # Safety
/// `out` must be NULL or point to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn lakebase_default_client(out: *mut *const lakebase_client) -> lakebase_result {
    boundary(|| {
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        let c: &'static Client = default_client_ref()?;
        *out = c as *const Client as *const lakebase_client;
        Ok(())
    })
}

/// Copy the client's current Lakebase password (an OAuth token) into `buf`, NUL-terminated, and
/// its length without the NUL into `*out_len`.
///
/// A cache hit is a memory read: no lock, no system call, no network. A miss (first call, or the
/// cached token is within its safety margin of expiry) mints a new token; concurrent callers wait
/// for that one request. The background refresher replaces tokens before they expire, so misses
/// are rare. An expired token is never returned.
///
/// If `buf_len <= length`, nothing is written to `buf`, `*out_len` is set to the length and
/// `LAKEBASE_INSUFFICIENT_SIZE` is returned: retry with `*out_len + 1` bytes. `buf` may be NULL
/// with `buf_len` 0 to ask for the length. `out_len` may be NULL.
///
/// Errors: `LAKEBASE_INVALID_ARGUMENT` (NULL client), `LAKEBASE_INSUFFICIENT_SIZE`,
/// `LAKEBASE_CONFIG_ERROR` (no instance/endpoint configured), `LAKEBASE_AUTH_ERROR`,
/// `LAKEBASE_API_ERROR`, `LAKEBASE_NETWORK_ERROR`; detail in `lakebase_last_error`.
///
/// Thread safety: any number of threads may call this on one client at once.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not been freed. `buf` must be NULL or point to `buf_len` writable bytes; `out_len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_get_password(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    if !c.is_null() {
        if let Some(r) = hit_copy(&*(c as *const Client), buf, buf_len, out_len) {
            return r;
        }
    }
    boundary(|| {
        check_buf(buf, buf_len)?;
        let c = client_ref(c)?;
        c.with_password(|pw| write_str(pw.as_bytes(), buf, buf_len, out_len))?
    })
}

/// The non-blocking variant of `lakebase_client_get_password`, for event loops (Node.js, async
/// runtimes): copies the password when one can be served now (a memory read, as a cache hit of
/// `lakebase_client_get_password`), and otherwise returns `LAKEBASE_WOULD_BLOCK` at once after
/// starting a fetch on a library thread (one per cache entry however many callers ask). Call it
/// again later; while the library is failing fast after a transient failure, the remembered error
/// is returned instead (so a poll loop does not spin against a down workspace).
///
/// Buffer semantics as `lakebase_client_get_password`; nothing is written on
/// `LAKEBASE_WOULD_BLOCK`. Errors: as `lakebase_client_get_password`, plus `LAKEBASE_WOULD_BLOCK`.
///
/// # Safety
/// `c` must be NULL or a live client; `buf` must be NULL or point to `buf_len` writable bytes;
/// `out_len` must be NULL or point to a writable `size_t`.
///
/// Thread safety: any number of threads may call this on one client at once.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_try_get_password(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    let mut would_block = false;
    let r = boundary(|| {
        check_buf(buf, buf_len)?;
        let c = client_ref(c)?;
        match c.try_with_password(|pw| write_str(pw.as_bytes(), buf, buf_len, out_len))? {
            Some(r) => r,
            None => {
                would_block = true;
                Ok(())
            }
        }
    });
    if would_block && r == lakebase_result::LAKEBASE_OK {
        error::set_last_error("no password is cached yet: a fetch has started in the background; call again later");
        return lakebase_result::LAKEBASE_WOULD_BLOCK;
    }
    r
}

/// The server rejected `rejected` (a password this client handed out) at login: if it is still
/// the cached password, discard it and mint a new one; if another caller replaced it already,
/// do nothing. N connections rejected at once cause one mint, however far apart they report it
/// (unlike `lakebase_client_refresh`, which always mints). A newly minted password rejected again
/// within a second is an error (`LAKEBASE_AUTH_ERROR`), not a loop of mints.
/// Then `lakebase_client_get_password` gives the newest password. `rejected` is compared in
/// constant time and never stored.
///
/// Errors: `LAKEBASE_INVALID_ARGUMENT` (NULL argument, non-UTF-8 `rejected`), then as
/// `lakebase_client_get_password`. Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not
/// been freed; `rejected` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_refresh_rejected(c: *const lakebase_client, rejected: *const c_char) -> lakebase_result {
    boundary(|| {
        let c = client_ref(c)?;
        let rejected = opt_str(rejected, "rejected")?.ok_or_else(|| Error::invalid_argument("rejected is NULL"))?;
        c.refresh_rejected(rejected)
    })
}

/// Discard the cached password and mint a new one: on return the cached password was minted after
/// the call began. Concurrent calls share one mint; at most one forced mint per second per cached
/// entry, so a call right after another forced mint first waits out the rest of that second (a
/// runaway loop mints once a second). After a rejected login prefer
/// `lakebase_client_refresh_rejected`, which mints only if the rejected password is still cached.
///
/// Errors: as `lakebase_client_get_password`. Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_refresh(c: *const lakebase_client) -> lakebase_result {
    boundary(|| client_ref(c)?.force_refresh())
}

/// The expiry of the client's cached password in Unix seconds, or 0 when no servable password is
/// cached. Never triggers a network call.
///
/// Errors: `LAKEBASE_INVALID_ARGUMENT` (NULL argument). Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not been freed. `out_unix_seconds` must be NULL or point to a writable `int64_t`.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_token_expiry(c: *const lakebase_client, out_unix_seconds: *mut i64) -> lakebase_result {
    boundary(|| {
        let c = client_ref(c)?;
        if out_unix_seconds.is_null() {
            return Err(Error::invalid_argument("out_unix_seconds is NULL"));
        }
        *out_unix_seconds = c.token_info().map_or(0, |t| t.expiry_ms.div_euclid(1000));
        Ok(())
    })
}

/// Copy the identity the client authenticates as (the workspace user name from SCIM `/Me`, which
/// is its Postgres role, e.g. `alice@example.com`, or a service principal's application id) into
/// `buf`. The first call makes one API request; the result is cached.
///
/// Buffer semantics as `lakebase_client_get_password`. Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not been freed. `buf` must be NULL or point to `buf_len` writable bytes; `out_len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_identity(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    client_string(c, buf, buf_len, out_len, Client::identity)
}

/// Copy the Postgres role to log in as into `buf`: the group's role when the client acts for a
/// group (`group_name`, else the display name of the `group_id` group), otherwise the identity
/// (as `lakebase_client_identity`). The first call may make one API request; the result is
/// cached.
///
/// Buffer semantics as `lakebase_client_get_password`. Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not been freed. `buf` must be NULL or point to `buf_len` writable bytes; `out_len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_postgres_role(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    client_string(c, buf, buf_len, out_len, Client::postgres_role)
}

/// Copy the auth method in use (`"pat"`, `"oauth-m2m"`, ...) into `buf`. No network I/O.
///
/// Buffer semantics as `lakebase_client_get_password`. Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not been freed. `buf` must be NULL or point to `buf_len` writable bytes; `out_len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_auth_type(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    client_string(c, buf, buf_len, out_len, |c| Ok(c.auth_type().to_string()))
}

/// Copy the last token-refresh error (background or foreground) not yet followed by a successful
/// refresh into `buf`; an empty string when the last refresh succeeded. Never a secret.
///
/// Buffer semantics as `lakebase_client_get_password`. Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not been freed. `buf` must be NULL or point to `buf_len` writable bytes; `out_len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_refresh_error(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    client_string(c, buf, buf_len, out_len, |c| Ok(c.refresh_error().unwrap_or_default()))
}

/// Copy the Postgres host of the client's Lakebase database into `buf`: a Provisioned instance's
/// `read_write_dns` or an Autoscaling endpoint's `status.hosts.host`. The first call makes one API
/// request; the result is cached.
///
/// Buffer semantics as `lakebase_client_get_password`. Errors: `LAKEBASE_CONFIG_ERROR` when no
/// instance/endpoint is configured, API/auth/network errors of the lookup. Thread safety: any thread.
///
/// # Safety
/// `c` must be NULL or a client from `lakebase_client_new` / `lakebase_default_client` that has not been freed. `buf` must be NULL or point to `buf_len` writable bytes; `out_len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_postgres_host(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    client_string(c, buf, buf_len, out_len, Client::postgres_host)
}

/// Whether a failed database connection attempt is worth repeating, and after how long: the retry
/// policy for endpoints waking from scale-to-zero that the library's own connects use, for
/// bindings and programs that connect by themselves (pool hooks).
///
/// `sqlstate`: the server's SQLSTATE if the driver exposes one (NULL otherwise); `message`: the
/// error text (NULL allowed); `password_asked`: non-zero if the server asked for the password
/// before the failure (libpq's `PQconnectionUsedPassword`; 0 when unknown); `failed_attempts`:
/// attempts failed so far, this one included (≥ 1); `elapsed_ms`: time since the first attempt
/// began; `connect_timeout`: the connection's `connect_timeout` setting (whole seconds, as libpq
/// reads it), NULL for none. The budget is `LAKEBASE_CONNECT_RETRY` seconds (`0`/`off`: never
/// retry), else `connect_timeout`, else 10 s. Transport failures (refused, reset, timed out) and
/// `57P03` "starting up" are retried with jittered backoff (250 ms doubling to 2 s); nothing is
/// retried after the server asked for the password, nor on authentication, "does not exist",
/// TLS-verification or other server answers.
///
/// On success `*out_delay_ms` receives the delay before the next attempt, or -1 to give up.
///
/// Errors: `LAKEBASE_INVALID_ARGUMENT` (NULL `out_delay_ms`, non-UTF-8 strings). Thread safety:
/// any thread; no I/O.
///
/// # Safety
/// `sqlstate`, `message` and `connect_timeout` must each be NULL or a NUL-terminated string;
/// `out_delay_ms` must be NULL or point to a writable `int64_t`.
#[no_mangle]
pub unsafe extern "C" fn lakebase_connect_retry_delay(
    sqlstate: *const c_char,
    message: *const c_char,
    password_asked: libc::c_int,
    failed_attempts: u32,
    elapsed_ms: i64,
    connect_timeout: *const c_char,
    out_delay_ms: *mut i64,
) -> lakebase_result {
    use lakebase_core::connect::{classify_libpq, classify_sqlstate, Failure, RetryPolicy};
    boundary(|| {
        if out_delay_ms.is_null() {
            return Err(Error::invalid_argument("out_delay_ms is NULL"));
        }
        let sqlstate = opt_str(sqlstate, "sqlstate")?.filter(|s| !s.is_empty());
        let message = opt_str(message, "message")?.unwrap_or("");
        let timeout = opt_str(connect_timeout, "connect_timeout")?;
        let failure = match (password_asked != 0, sqlstate) {
            (true, _) => Failure::Permanent,
            (false, Some(code)) => classify_sqlstate(code),
            (false, None) => classify_libpq(message, false),
        };
        let policy = RetryPolicy::from_env(timeout);
        let elapsed = std::time::Duration::from_millis(elapsed_ms.max(0) as u64);
        *out_delay_ms = policy.next_delay(failure, failed_attempts, elapsed).map_or(-1, |d| d.as_millis().min(i64::MAX as u128) as i64);
        Ok(())
    })
}
