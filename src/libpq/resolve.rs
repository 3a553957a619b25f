//! Finding the real libpq function the way the caller would have reached it.
//!
//! A process can hold several libpq copies: the system `libpq.so.5` (psql, Ruby `pg`), and copies
//! that Python wheels bundle under mangled sonames and load `RTLD_LOCAL` (psycopg2-binary,
//! psycopg[binary]) — `dlsym(RTLD_NEXT)` cannot see those, and two can be loaded at once. So for
//! each call we take the caller's return address, find its object with `dladdr`, and look the
//! symbol up in that object's own dependency scope (`dlopen(path, RTLD_NOLOAD)` + `dlsym`). A
//! nested call from inside libpq resolves to that same libpq. A result pointing back into this
//! library is rejected. Fallbacks, in order: `dlsym(RTLD_NEXT)` (we are preloaded or linked ahead
//! of `-lpq`), `dlsym(RTLD_DEFAULT)`, an already-loaded `libpq.so.5`, and only when the process
//! has no libpq at all, loading `libpq.so.5`.

use super::sys::*;
use libc::{c_char, c_void};
use std::ffi::{CStr, CString};
use std::sync::Arc;

/// The helper functions of one libpq copy, resolved from the same scope as the hooked function.
pub struct Libpq {
    /// dlopen handle, or the RTLD_NEXT/RTLD_DEFAULT pseudo-handles.
    handle: usize,
    /// Whether `handle` is a `RTLD_NOLOAD` reference we must give back with `dlclose`.
    close: bool,
    pub conninfo_parse: FnConninfoParse,
    pub conndefaults: FnConndefaults,
    pub conninfo_free: FnConninfoFree,
    pub freemem: FnFreemem,
    pub status: FnStatus,
    pub error_message: FnErrorMessage,
    pub finish: FnFinish,
    /// `PQconnectionUsedPassword`: whether the server asked for a password (also after a failed
    /// login; reset by libpq for every new attempt, so it describes the last one).
    pub used_password: FnUsedPassword,
    /// `PQlibVersion()` of this copy, e.g. 150018 (0 if it has none).
    pub version: i32,
    pub connectdb_params: FnConnectdbParams,
    pub connect_start_params: FnConnectdbParams,
    pub ping_params: FnPingParams,
}

impl Drop for Libpq {
    fn drop(&mut self) {
        if self.close {
            unsafe { libc::dlclose(self.handle as *mut c_void) };
        }
    }
}

unsafe impl Send for Libpq {}
unsafe impl Sync for Libpq {}

/// Base address of this library (to recognise addresses inside it).
pub(crate) fn our_base() -> usize {
    static BASE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| object_of(our_base as *const c_void).map_or(0, |(b, _)| b))
}

/// `(base address, path)` of the loaded object containing `addr`.
pub(crate) fn object_of(addr: *const c_void) -> Option<(usize, Option<CString>)> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fbase.is_null() {
        return None;
    }
    let name = (!info.dli_fname.is_null()).then(|| unsafe { CStr::from_ptr(info.dli_fname) }.to_owned());
    Some((info.dli_fbase as usize, name))
}

pub fn is_ours(p: *const c_void) -> bool {
    object_of(p).is_some_and(|(b, _)| b == our_base())
}

/// Resolve libpq as seen from `caller` (an address inside the calling object), with `hooked`
/// being the function the caller asked for. Returns the real function and its libpq copy.
pub fn resolve(hooked: &CStr, caller: Option<usize>) -> Option<(*mut c_void, Arc<Libpq>)> {
    let noload = |path: &CStr| {
        let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
        (!h.is_null()).then_some(h as usize)
    };
    let mut tried = Vec::with_capacity(4);
    if let Some((_, Some(path))) = caller.and_then(|a| object_of(a as *const c_void)) {
        if let Some(h) = noload(&path) {
            tried.push((h, true));
        }
    }
    tried.push((libc::RTLD_NEXT as usize, false));
    tried.push((libc::RTLD_DEFAULT as usize, false));
    let mut found = None;
    for (i, &(h, close)) in tried.iter().enumerate() {
        if let Some(r) = from_handle(h, close, hooked) {
            found = Some(r);
            // Give back the handles we will not use.
            for &(h2, c2) in &tried[..i] {
                if c2 {
                    unsafe { libc::dlclose(h2 as *mut c_void) };
                }
            }
            break;
        }
    }
    if found.is_none() {
        for &(h, close) in &tried {
            if close {
                unsafe { libc::dlclose(h as *mut c_void) };
            }
        }
        if let Some(h) = noload(c"libpq.so.5") {
            found = from_handle(h, true, hooked);
        }
    }
    if found.is_some() {
        return found;
    }
    // The process has no libpq yet (a program linked only against liblakebase): load one.
    let h = unsafe { libc::dlopen(c"libpq.so.5".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if h.is_null() {
        lakebase_core::log_error!("libpq: no libpq in the process and libpq.so.5 cannot be loaded");
        return None;
    }
    from_handle(h as usize, false, hooked)
}

fn from_handle(h: usize, close: bool, hooked: &CStr) -> Option<(*mut c_void, Arc<Libpq>)> {
    let get = |name: &CStr| -> Option<*mut c_void> {
        let p = unsafe { libc::dlsym(h as *mut c_void, name.as_ptr()) };
        (!p.is_null() && !is_ours(p)).then_some(p)
    };
    let f = get(hooked)?;
    unsafe {
        let lib = Libpq {
            handle: h,
            close,
            conninfo_parse: std::mem::transmute::<*mut c_void, FnConninfoParse>(get(c"PQconninfoParse")?),
            conndefaults: std::mem::transmute::<*mut c_void, FnConndefaults>(get(c"PQconndefaults")?),
            conninfo_free: std::mem::transmute::<*mut c_void, FnConninfoFree>(get(c"PQconninfoFree")?),
            freemem: std::mem::transmute::<*mut c_void, FnFreemem>(get(c"PQfreemem")?),
            status: std::mem::transmute::<*mut c_void, FnStatus>(get(c"PQstatus")?),
            error_message: std::mem::transmute::<*mut c_void, FnErrorMessage>(get(c"PQerrorMessage")?),
            finish: std::mem::transmute::<*mut c_void, FnFinish>(get(c"PQfinish")?),
            used_password: std::mem::transmute::<*mut c_void, FnUsedPassword>(get(c"PQconnectionUsedPassword")?),
            version: get(c"PQlibVersion").map_or(0, |p| std::mem::transmute::<*mut c_void, FnLibVersion>(p)()),
            connectdb_params: std::mem::transmute::<*mut c_void, FnConnectdbParams>(get(c"PQconnectdbParams")?),
            connect_start_params: std::mem::transmute::<*mut c_void, FnConnectdbParams>(get(c"PQconnectStartParams")?),
            ping_params: std::mem::transmute::<*mut c_void, FnPingParams>(get(c"PQpingParams")?),
        };
        Some((f, Arc::new(lib)))
    }
}

/// Read a C string option value.
pub(crate) unsafe fn cstr_opt(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
}
