//! `lakebase_client`: a configured password source with its own (possibly shared) token cache.

use super::{boundary, check_buf, lakebase_result, opt_str, write_str};
use crate::client::{default_client, Client};
use crate::error::Error;
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
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_free(c: *mut lakebase_client) {
    let _ = super::boundary_or((), || {
        if c.is_null() || is_default(c) {
            return;
        }
        drop(Arc::from_raw(c as *const Client));
    });
}

fn is_default(c: *const lakebase_client) -> bool {
    match default_client() {
        Ok(g) => g.as_ref().map_or(false, |d| Arc::as_ptr(d) as *const lakebase_client == c),
        Err(_) => false,
    }
}

/// Get the process-wide default client (configured from the environment and `~/.databrickscfg`
/// on first use), the one `lakebase_get_password` uses. `*out` is borrowed: it stays valid for the
/// life of the process and must not be freed (`lakebase_client_free` ignores it).
///
/// Errors: as `lakebase_client_new`; a configuration error is not remembered, so fixing the
/// environment and calling again works. Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn lakebase_default_client(out: *mut *const lakebase_client) -> lakebase_result {
    boundary(|| {
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        let g = default_client()?;
        let c = g.as_ref().ok_or_else(|| Error::internal("default client missing after initialisation"))?;
        *out = Arc::as_ptr(c) as *const lakebase_client;
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
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_get_password(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    boundary(|| {
        check_buf(buf, buf_len)?;
        let c = client_ref(c)?;
        c.with_password(|pw| write_str(pw.as_bytes(), buf, buf_len, out_len))?
    })
}

/// Discard the cached password and mint a new one now (e.g. after the server rejected a login
/// with `28P01 invalid_password`). Concurrent calls cause one mint.
///
/// Errors: as `lakebase_client_get_password`. Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_refresh(c: *const lakebase_client) -> lakebase_result {
    boundary(|| client_ref(c)?.force_refresh())
}

/// The expiry of the client's cached password in Unix seconds, or 0 when no servable password is
/// cached. Never triggers a network call.
///
/// Errors: `LAKEBASE_INVALID_ARGUMENT` (NULL argument). Thread safety: any thread.
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
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_identity(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    client_string(c, buf, buf_len, out_len, Client::identity)
}

/// Copy the auth method in use (`"pat"`, `"oauth-m2m"`, ...) into `buf`. No network I/O.
///
/// Buffer semantics as `lakebase_client_get_password`. Thread safety: any thread.
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
#[no_mangle]
pub unsafe extern "C" fn lakebase_client_postgres_host(
    c: *const lakebase_client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> lakebase_result {
    client_string(c, buf, buf_len, out_len, Client::postgres_host)
}
