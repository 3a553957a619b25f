//! The bodies shared by the `lakebase_PQ*` wrappers (`crate::ffi::pq`: always fill in the
//! Lakebase password when none is given) and the interposers under libpq's own names
//! (`super::interpose`: only for Lakebase hosts).
//!
//! The hooked symbols are listed in one place, [`HOOKED`]: `scripts/check-exports.sh` reads the list
//! from here and allows exactly these names, `lakebase_` + these names, and `lakebase_*`.

use super::inject::{self, Decision, HookGuard, Mode};
use super::params::Call;
use super::resolve::{resolve, Libpq};
use super::sys::*;
use libc::{c_char, c_int, c_void};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The libpq functions this library exports under libpq's names (and as `lakebase_<name>`).
/// `scripts/check-exports.sh` reads this list.
#[cfg_attr(not(test), allow(dead_code))]
pub const HOOKED: &[&str] =
    &["PQconnectdb", "PQconnectdbParams", "PQconnectStart", "PQconnectStartParams", "PQsetdbLogin", "PQping", "PQpingParams"];

/// Test-only failpoint: `LAKEBASE_TEST_PANIC=decide` makes deciding panic, to prove that the hook
/// then calls the real libpq unchanged (tests/e2e/test_libpq.py).
const PANIC_FAILPOINT: &str = "LAKEBASE_TEST_PANIC";

/// What a hook decided, before anything was sent.
enum Plan {
    Pass,
    Inject(inject::Injection),
    Refuse(String),
}

/// Resolve the real `name` for `caller` and decide what to do with `call`. A panic while
/// resolving leaves nothing to call (`None`); a panic while deciding falls back to the real
/// function unchanged, as if this library were not there.
unsafe fn plan(
    name: &CStr,
    caller: Option<usize>,
    call: impl FnOnce() -> Call,
    mode: Mode,
) -> Option<(*mut c_void, Arc<Libpq>, Call, Plan)> {
    let resolved = catch_unwind(AssertUnwindSafe(|| resolve(name, caller))).unwrap_or_else(|_| {
        lakebase_core::log_error!("libpq: resolving the real {} panicked", name.to_string_lossy());
        None
    });
    let Some((real, lib)) = resolved else {
        lakebase_core::log_error!("libpq: cannot find the real {}", name.to_string_lossy());
        return None;
    };
    let decided = catch_unwind(AssertUnwindSafe(|| {
        if std::env::var_os(PANIC_FAILPOINT).is_some_and(|v| v == "decide") {
            panic!("{PANIC_FAILPOINT}=decide (a test of the fallback to the real libpq)");
        }
        let call = call();
        let plan = if inject::disabled() {
            Plan::Pass
        } else {
            match inject::decide(&lib, &call, mode) {
                Decision::PassThrough => Plan::Pass,
                Decision::Inject(inj) => Plan::Inject(inj),
                Decision::Refuse(msg) => Plan::Refuse(msg),
            }
        };
        (call, plan)
    }));
    match decided {
        Ok((call, plan)) => Some((real, lib, call, plan)),
        Err(_) => {
            lakebase_core::log_error!("libpq: liblakebase panicked deciding {}; calling the real libpq unchanged", name.to_string_lossy());
            Some((real, lib, Call::default(), Plan::Pass))
        }
    }
}

/// Shared body of the connect hooks. `pass` calls the real hooked function unchanged.
pub(crate) unsafe fn hook_conn(
    name: &CStr,
    caller: Option<usize>,
    call: impl FnOnce() -> Call,
    mode: Mode,
    blocking: bool,
    pass: impl FnOnce(*mut c_void) -> *mut PGconn,
) -> *mut PGconn {
    // libpq calls its own exports internally: nested calls pass straight through.
    let Some(_guard) = HookGuard::enter() else {
        return match catch_unwind(AssertUnwindSafe(|| resolve(name, caller))) {
            Ok(Some((real, _))) => pass(real),
            _ => std::ptr::null_mut(),
        };
    };
    let Some((real, lib, call, plan)) = plan(name, caller, call, mode) else { return std::ptr::null_mut() };
    let _ = &call;
    match plan {
        Plan::Pass => pass(real),
        Plan::Inject(inj) => catch_unwind(AssertUnwindSafe(|| inject::connect(&lib, inj, blocking))).unwrap_or(std::ptr::null_mut()),
        Plan::Refuse(msg) => catch_unwind(AssertUnwindSafe(|| inject::refused(&lib, &msg, blocking))).unwrap_or(std::ptr::null_mut()),
    }
}

/// Shared body of the ping hooks. A ping needs no password: the server asking for one already
/// means "accepting connections". So pings always pass through exactly as asked, with no
/// configuration, workspace traffic or token (`pg_isready` works with the workspace down).
pub(crate) unsafe fn hook_ping(name: &CStr, caller: Option<usize>, pass: impl FnOnce(*mut c_void) -> c_int) -> c_int {
    // Held for the whole ping: libpq's PQping* call its own exported PQconnectStart* (which
    // would otherwise reach the connect hooks and inject).
    let _guard = HookGuard::enter();
    match catch_unwind(AssertUnwindSafe(|| resolve(name, caller))) {
        Ok(Some((real, _))) => pass(real),
        _ => {
            lakebase_core::log_error!("libpq: cannot find the real {}", name.to_string_lossy());
            PQPING_NO_ATTEMPT
        }
    }
}

macro_rules! cast {
    ($p:expr, $t:ty) => {
        std::mem::transmute::<*mut c_void, $t>($p)
    };
}

pub(crate) unsafe fn connectdb(conninfo: *const c_char, mode: Mode, caller: Option<usize>) -> *mut PGconn {
    hook_conn(c"PQconnectdb", caller, || Call::conninfo(conninfo), mode, true, |f| cast!(f, FnConnectdb)(conninfo))
}
pub(crate) unsafe fn connect_start(conninfo: *const c_char, mode: Mode, caller: Option<usize>) -> *mut PGconn {
    hook_conn(c"PQconnectStart", caller, || Call::conninfo(conninfo), mode, false, |f| cast!(f, FnConnectdb)(conninfo))
}
pub(crate) unsafe fn connectdb_params(
    k: *const *const c_char,
    v: *const *const c_char,
    x: c_int,
    mode: Mode,
    caller: Option<usize>,
) -> *mut PGconn {
    hook_conn(c"PQconnectdbParams", caller, || Call::params(k, v, x != 0), mode, true, |f| cast!(f, FnConnectdbParams)(k, v, x))
}
pub(crate) unsafe fn connect_start_params(
    k: *const *const c_char,
    v: *const *const c_char,
    x: c_int,
    mode: Mode,
    caller: Option<usize>,
) -> *mut PGconn {
    hook_conn(c"PQconnectStartParams", caller, || Call::params(k, v, x != 0), mode, false, |f| cast!(f, FnConnectdbParams)(k, v, x))
}
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn setdb_login(a: [*const c_char; 7], mode: Mode, caller: Option<usize>) -> *mut PGconn {
    hook_conn(
        c"PQsetdbLogin",
        caller,
        || Call::setdb_login(a),
        mode,
        true,
        |f| cast!(f, FnSetdbLogin)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]),
    )
}
pub(crate) unsafe fn ping(conninfo: *const c_char, caller: Option<usize>) -> c_int {
    hook_ping(c"PQping", caller, |f| cast!(f, FnPing)(conninfo))
}
pub(crate) unsafe fn ping_params(k: *const *const c_char, v: *const *const c_char, x: c_int, caller: Option<usize>) -> c_int {
    hook_ping(c"PQpingParams", caller, |f| cast!(f, FnPingParams)(k, v, x))
}
