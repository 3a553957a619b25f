//! libpq entry points: `lakebase_PQ*` wrappers (always fill in the Lakebase password when none is
//! given) and, under libpq's own names, interposers that do so only for Lakebase hosts.
//!
//! Every hooked symbol is listed once, in [`HOOKED`]; `scripts/check-exports.sh` allows exactly
//! these plus `lakebase_*`.

use crate::libpq::inject::{self, Decision, HookGuard, Mode};
use crate::libpq::params::Call;
use crate::libpq::resolve::{caller_address, resolve};
use crate::libpq::sys::*;
use libc::{c_char, c_int, c_void};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The libpq functions this library exports under libpq's names (and as `lakebase_<name>`).
pub const HOOKED: &[&str] =
    &["PQconnectdb", "PQconnectdbParams", "PQconnectStart", "PQconnectStartParams", "PQsetdbLogin", "PQping", "PQpingParams"];

/// Shared body of the connect hooks. `pass` calls the real hooked function unchanged.
unsafe fn hook_conn(
    name: &CStr,
    caller: Option<usize>,
    call: impl FnOnce() -> Call,
    mode: Mode,
    blocking: bool,
    pass: impl FnOnce(*mut c_void) -> *mut PGconn,
) -> *mut PGconn {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let Some((real, lib)) = resolve(name, caller) else {
            crate::log_error!("libpq: cannot find the real {}", name.to_string_lossy());
            return std::ptr::null_mut();
        };
        let Some(_guard) = HookGuard::enter() else { return pass(real) };
        if inject::disabled() {
            return pass(real);
        }
        let call = call();
        match inject::decide(&lib, &call, mode) {
            Decision::PassThrough => pass(real),
            Decision::Inject(inj) => inject::connect(&lib, &call, inj, blocking),
            Decision::Refuse(msg) => inject::refused(&lib, &msg, blocking),
        }
    }));
    r.unwrap_or(std::ptr::null_mut())
}

unsafe fn hook_ping(
    name: &CStr,
    caller: Option<usize>,
    call: impl FnOnce() -> Call,
    mode: Mode,
    pass: impl FnOnce(*mut c_void) -> c_int,
) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let Some((real, lib)) = resolve(name, caller) else { return PQPING_NO_ATTEMPT };
        let Some(_guard) = HookGuard::enter() else { return pass(real) };
        if inject::disabled() {
            return pass(real);
        }
        let call = call();
        match inject::decide(&lib, &call, mode) {
            Decision::Inject(inj) => inject::ping(&lib, &call, &inj),
            // A ping needs no password: on any problem, ping exactly as asked.
            _ => pass(real),
        }
    }));
    r.unwrap_or(PQPING_NO_ATTEMPT)
}

macro_rules! cast {
    ($p:expr, $t:ty) => {
        std::mem::transmute::<*mut c_void, $t>($p)
    };
}

unsafe fn connectdb(conninfo: *const c_char, mode: Mode, caller: Option<usize>) -> *mut PGconn {
    hook_conn(c"PQconnectdb", caller, || Call::conninfo(conninfo), mode, true, |f| cast!(f, FnConnectdb)(conninfo))
}
unsafe fn connect_start(conninfo: *const c_char, mode: Mode, caller: Option<usize>) -> *mut PGconn {
    hook_conn(c"PQconnectStart", caller, || Call::conninfo(conninfo), mode, false, |f| cast!(f, FnConnectdb)(conninfo))
}
unsafe fn connectdb_params(k: *const *const c_char, v: *const *const c_char, x: c_int, mode: Mode, caller: Option<usize>) -> *mut PGconn {
    hook_conn(c"PQconnectdbParams", caller, || Call::params(k, v, x != 0), mode, true, |f| cast!(f, FnConnectdbParams)(k, v, x))
}
unsafe fn connect_start_params(
    k: *const *const c_char,
    v: *const *const c_char,
    x: c_int,
    mode: Mode,
    caller: Option<usize>,
) -> *mut PGconn {
    hook_conn(c"PQconnectStartParams", caller, || Call::params(k, v, x != 0), mode, false, |f| cast!(f, FnConnectdbParams)(k, v, x))
}
#[allow(clippy::too_many_arguments)]
unsafe fn setdb_login(a: [*const c_char; 7], mode: Mode, caller: Option<usize>) -> *mut PGconn {
    hook_conn(c"PQsetdbLogin", caller, || Call::setdb_login(a), mode, true, |f| {
        cast!(f, FnSetdbLogin)(a[0], a[1], a[2], a[3], a[4], a[5], a[6])
    })
}
unsafe fn ping(conninfo: *const c_char, mode: Mode, caller: Option<usize>) -> c_int {
    hook_ping(c"PQping", caller, || Call::conninfo(conninfo), mode, |f| cast!(f, FnPing)(conninfo))
}
unsafe fn ping_params(k: *const *const c_char, v: *const *const c_char, x: c_int, mode: Mode, caller: Option<usize>) -> c_int {
    hook_ping(c"PQpingParams", caller, || Call::params(k, v, x != 0), mode, |f| cast!(f, FnPingParams)(k, v, x))
}

// --- lakebase_PQ*: explicit wrappers -----------------------------------------------------------
//
// The wrappers accept what libpq itself would crash on: a NULL conninfo means "" (all defaults)
// and a NULL keyword or value array means an empty one. The interposers below stay transparent.

const EMPTY_ARRAY: [*const c_char; 1] = [std::ptr::null()];

fn conninfo_or_empty(conninfo: *const c_char) -> *const c_char {
    if conninfo.is_null() { c"".as_ptr() } else { conninfo }
}

fn arrays_or_empty(k: *const *const c_char, v: *const *const c_char) -> (*const *const c_char, *const *const c_char) {
    if k.is_null() || v.is_null() { (EMPTY_ARRAY.as_ptr(), EMPTY_ARRAY.as_ptr()) } else { (k, v) }
}

/// `PQconnectdb` with the Lakebase password filled in when the conninfo gives none (whatever the
/// host), `sslmode` raised to `require` (an explicit `sslmode=disable` yields a failed connection
/// with an explanation), and `user` defaulted to the identity's Postgres role. Calls the real libpq
/// of the caller (found at run time; liblakebase does not link libpq). Returns what libpq returns:
/// free it with `PQfinish`. If no password can be obtained, the returned connection has status
/// `CONNECTION_BAD` and `PQerrorMessage` says why. Unlike libpq, a NULL conninfo (or NULL keyword
/// arrays in the `Params` variants) is treated as empty instead of crashing. Thread safety: as
/// libpq's.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQconnectdb(conninfo: *const c_char) -> *mut PGconn {
    connectdb(conninfo_or_empty(conninfo), Mode::Wrapper, caller_address())
}

/// `PQconnectdbParams` with the Lakebase password filled in; see `lakebase_PQconnectdb`.
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
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQconnectStart(conninfo: *const c_char) -> *mut PGconn {
    connect_start(conninfo_or_empty(conninfo), Mode::Wrapper, caller_address())
}

/// `PQconnectStartParams` with the Lakebase password filled in; see `lakebase_PQconnectStart`.
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

/// `PQping` with the same settings `lakebase_PQconnectdb` would use. Returns a `PGPing` value.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQping(conninfo: *const c_char) -> c_int {
    ping(conninfo_or_empty(conninfo), Mode::Wrapper, caller_address())
}

/// `PQpingParams` with the same settings `lakebase_PQconnectdbParams` would use.
#[no_mangle]
pub unsafe extern "C" fn lakebase_PQpingParams(keywords: *const *const c_char, values: *const *const c_char, expand_dbname: c_int) -> c_int {
    let (keywords, values) = arrays_or_empty(keywords, values);
    ping_params(keywords, values, expand_dbname, Mode::Wrapper, caller_address())
}

// --- interposers under libpq's names (not in the header: libpq-fe.h declares them) --------------

#[no_mangle]
pub unsafe extern "C" fn PQconnectdb(conninfo: *const c_char) -> *mut PGconn {
    connectdb(conninfo, Mode::Interpose, caller_address())
}
#[no_mangle]
pub unsafe extern "C" fn PQconnectdbParams(k: *const *const c_char, v: *const *const c_char, x: c_int) -> *mut PGconn {
    connectdb_params(k, v, x, Mode::Interpose, caller_address())
}
#[no_mangle]
pub unsafe extern "C" fn PQconnectStart(conninfo: *const c_char) -> *mut PGconn {
    connect_start(conninfo, Mode::Interpose, caller_address())
}
#[no_mangle]
pub unsafe extern "C" fn PQconnectStartParams(k: *const *const c_char, v: *const *const c_char, x: c_int) -> *mut PGconn {
    connect_start_params(k, v, x, Mode::Interpose, caller_address())
}
#[no_mangle]
pub unsafe extern "C" fn PQsetdbLogin(
    pghost: *const c_char,
    pgport: *const c_char,
    pgoptions: *const c_char,
    pgtty: *const c_char,
    db_name: *const c_char,
    login: *const c_char,
    pwd: *const c_char,
) -> *mut PGconn {
    setdb_login([pghost, pgport, pgoptions, pgtty, db_name, login, pwd], Mode::Interpose, caller_address())
}
#[no_mangle]
pub unsafe extern "C" fn PQping(conninfo: *const c_char) -> c_int {
    ping(conninfo, Mode::Interpose, caller_address())
}
#[no_mangle]
pub unsafe extern "C" fn PQpingParams(k: *const *const c_char, v: *const *const c_char, x: c_int) -> c_int {
    ping_params(k, v, x, Mode::Interpose, caller_address())
}
