//! `lakebase_PQ*`: libpq's connect entry points for programs that link liblakebase on purpose.
//! They fill in the Lakebase password whatever the host (the caller asked for Lakebase); the bodies
//! are shared with the interposers (`crate::libpq::hooks`).
//!
//! The wrappers accept what libpq itself would crash on: a NULL conninfo means "" (all defaults)
//! and a NULL keyword or value array means an empty one.

use crate::libpq::hooks::*;
use crate::libpq::inject::Mode;
use crate::libpq::sys::PGconn;
use crate::libpq::unwind::caller_address;
use libc::{c_char, c_int};

const EMPTY_ARRAY: [*const c_char; 1] = [std::ptr::null()];

fn conninfo_or_empty(conninfo: *const c_char) -> *const c_char {
    if conninfo.is_null() {
        c"".as_ptr()
    } else {
        conninfo
    }
}

fn arrays_or_empty(k: *const *const c_char, v: *const *const c_char) -> (*const *const c_char, *const *const c_char) {
    if k.is_null() || v.is_null() {
        (EMPTY_ARRAY.as_ptr(), EMPTY_ARRAY.as_ptr())
    } else {
        (k, v)
    }
}

/// `PQconnectdb` with the Lakebase password filled in when the conninfo gives none (whatever the
/// host), TLS to a verified server only (`sslmode` unset/`allow`/`prefer`/`require` becomes
/// `verify-full` unless LAKEBASE_VERIFY_SERVER=0; an explicit `sslmode=disable` yields a failed
/// connection with an explanation), and `user` defaulted to the identity's Postgres role. Retries
/// once with a new token when a cached one is refused, and retries transport failures and 57P03
/// (a waking endpoint) within LAKEBASE_CONNECT_RETRY / `connect_timeout` / 10 s. Calls the real libpq
/// of the caller (found at run time; liblakebase does not link libpq). Returns what libpq returns:
/// free it with `PQfinish`. If no password can be obtained, the returned connection has status
/// `CONNECTION_BAD` and `PQerrorMessage` says why. Unlike libpq, a NULL conninfo (or NULL keyword
/// arrays in the `Params` variants) is treated as empty instead of crashing. Thread safety: as
/// libpq's.
///
/// # Safety
/// `conninfo` must be NULL or a NUL-terminated string; the arguments are then read as libpq reads them.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQconnectdb(conninfo: *const c_char) -> *mut PGconn {
    connectdb(conninfo_or_empty(conninfo), Mode::Wrapper, caller_address())
}

/// `PQconnectdbParams` with the Lakebase password filled in; see `lakebase_PQconnectdb`.
///
/// # Safety
/// `keywords` and `values` must each be NULL or a NULL-terminated array of NUL-terminated strings (values may be NULL entries), as libpq requires.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQconnectdbParams(
    keywords: *const *const c_char,
    values: *const *const c_char,
    expand_dbname: c_int,
) -> *mut PGconn {
    let (keywords, values) = arrays_or_empty(keywords, values);
    connectdb_params(keywords, values, expand_dbname, Mode::Wrapper, caller_address())
}

/// `PQconnectStart` (non-blocking; poll with the real `PQconnectPoll`) with the Lakebase password
/// filled in; see `lakebase_PQconnectdb`. The password is obtained before returning (a cache hit
/// normally; a mint blocks).
///
/// # Safety
/// `conninfo` must be NULL or a NUL-terminated string; the arguments are then read as libpq reads them.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQconnectStart(conninfo: *const c_char) -> *mut PGconn {
    connect_start(conninfo_or_empty(conninfo), Mode::Wrapper, caller_address())
}

/// `PQconnectStartParams` with the Lakebase password filled in; see `lakebase_PQconnectStart`.
///
/// # Safety
/// `keywords` and `values` must each be NULL or a NULL-terminated array of NUL-terminated strings (values may be NULL entries), as libpq requires.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQconnectStartParams(
    keywords: *const *const c_char,
    values: *const *const c_char,
    expand_dbname: c_int,
) -> *mut PGconn {
    let (keywords, values) = arrays_or_empty(keywords, values);
    connect_start_params(keywords, values, expand_dbname, Mode::Wrapper, caller_address())
}

/// `PQsetdbLogin` with the Lakebase password filled in when `pwd` is NULL or empty; see
/// `lakebase_PQconnectdb`.
///
/// # Safety
/// Each argument must be NULL or a NUL-terminated string, as libpq requires.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQsetdbLogin(
    pghost: *const c_char,
    pgport: *const c_char,
    pgoptions: *const c_char,
    pgtty: *const c_char,
    db_name: *const c_char,
    login: *const c_char,
    pwd: *const c_char,
) -> *mut PGconn {
    setdb_login([pghost, pgport, pgoptions, pgtty, db_name, login, pwd], Mode::Wrapper, caller_address())
}

/// `PQping`, passed through unchanged: a ping needs no password (a server that asks for one is
/// accepting connections), so no configuration is read, no workspace request made and no token
/// sent. Returns a `PGPing` value.
///
/// # Safety
/// `conninfo` must be NULL or a NUL-terminated string; the arguments are then read as libpq reads them.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQping(conninfo: *const c_char) -> c_int {
    ping(conninfo_or_empty(conninfo), caller_address())
}

/// `PQpingParams`, passed through unchanged; see `lakebase_PQping`.
///
/// # Safety
/// `keywords` and `values` must each be NULL or a NULL-terminated array of NUL-terminated strings (values may be NULL entries), as libpq requires.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQpingParams(
    keywords: *const *const c_char,
    values: *const *const c_char,
    expand_dbname: c_int,
) -> c_int {
    let (keywords, values) = arrays_or_empty(keywords, values);
    ping_params(keywords, values, expand_dbname, caller_address())
}
