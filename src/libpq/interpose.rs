//! libpq's connect entry points under libpq's own names, for `LD_PRELOAD` and for programs that
//! link `-llakebase` ahead of `-lpq`. Transparent pass-throughs unless the connection is for a
//! Lakebase host and carries no password (`super::inject::decide`). Not in `lakebase.h`:
//! `libpq-fe.h` declares them.
//!
//! # Safety
//! Every function here has the contract of the libpq function of the same name: the caller
//! passes what libpq accepts (NUL-terminated strings, NULL-terminated keyword/value arrays).

use super::hooks::*;
use super::inject::Mode;
use super::sys::PGconn;
use super::unwind::caller_address;
use libc::{c_char, c_int};

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
    ping(conninfo, caller_address())
}
#[no_mangle]
pub unsafe extern "C" fn PQpingParams(k: *const *const c_char, v: *const *const c_char, x: c_int) -> c_int {
    ping_params(k, v, x, caller_address())
}
