//! libpq's C types and the function signatures we call or interpose. Nothing here links libpq:
//! every function is reached through a pointer resolved at run time (see `resolve`).

use libc::{c_char, c_int, c_void};

/// `PGconn *` (opaque).
pub type PGconn = c_void;

/// `PQconninfoOption`, stable since libpq 8.x.
#[repr(C)]
pub struct PQconninfoOption {
    pub keyword: *mut c_char,
    pub envvar: *mut c_char,
    pub compiled: *mut c_char,
    pub val: *mut c_char,
    pub label: *mut c_char,
    pub dispchar: *mut c_char,
    pub dispsize: c_int,
}

/// `ConnStatusType` values we look at.
pub(crate) const CONNECTION_BAD: c_int = 1;

/// `PGPing` values.
pub(crate) const PQPING_NO_ATTEMPT: c_int = 3;

pub type FnConnectdb = unsafe extern "C" fn(*const c_char) -> *mut PGconn;
pub type FnConnectdbParams = unsafe extern "C" fn(*const *const c_char, *const *const c_char, c_int) -> *mut PGconn;
pub type FnSetdbLogin = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
) -> *mut PGconn;
pub type FnPing = unsafe extern "C" fn(*const c_char) -> c_int;
pub type FnPingParams = unsafe extern "C" fn(*const *const c_char, *const *const c_char, c_int) -> c_int;
pub type FnConninfoParse = unsafe extern "C" fn(*const c_char, *mut *mut c_char) -> *mut PQconninfoOption;
pub type FnConndefaults = unsafe extern "C" fn() -> *mut PQconninfoOption;
pub type FnConninfoFree = unsafe extern "C" fn(*mut PQconninfoOption);
pub type FnFreemem = unsafe extern "C" fn(*mut c_void);
pub type FnStatus = unsafe extern "C" fn(*const PGconn) -> c_int;
pub type FnErrorMessage = unsafe extern "C" fn(*const PGconn) -> *const c_char;
pub type FnFinish = unsafe extern "C" fn(*mut PGconn);
pub type FnUsedPassword = unsafe extern "C" fn(*const PGconn) -> c_int;
pub type FnLibVersion = unsafe extern "C" fn() -> c_int;
