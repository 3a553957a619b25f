//! Error detail: `lakebase_last_error`, `lakebase_result_name`, `lakebase_version`.

use super::{boundary_or, lakebase_result, VERSION};
use libc::{c_char, c_int, size_t};
use std::cell::RefCell;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(msg: &str) {
    lakebase_core::log_debug!("error: {msg}");
    let _ = LAST_ERROR.try_with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        e.push_str(msg);
    });
}

/// Copy this thread's detail message for its most recent failed call into `buf`.
///
/// The message says what failed and what to set: the auth method, the HTTP status, the API's
/// `error_code` and message. It never contains a token or secret.
///
/// Writes at most `buf_len - 1` bytes plus a NUL (truncating on a UTF-8 character boundary) and
/// returns the full length of the message without the NUL, like `snprintf`; 0 when this thread has
/// had no failure. `buf` may be NULL when `buf_len` is 0 (to ask for the length).
///
/// Thread safety: the message is per thread; any thread may call this at any time.
///
/// # Safety
/// `buf` must be NULL or point to `buf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn lakebase_last_error(buf: *mut c_char, buf_len: size_t) -> size_t {
    boundary_or(0, || {
        LAST_ERROR
            .try_with(|e| {
                let e = e.borrow();
                let bytes = e.as_bytes();
                if !buf.is_null() && buf_len > 0 {
                    let mut n = bytes.len().min(buf_len - 1);
                    while n > 0 && !e.is_char_boundary(n) {
                        n -= 1;
                    }
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, n);
                    *buf.add(n) = 0;
                }
                bytes.len()
            })
            .unwrap_or(0)
    })
}

/// The name of a result code, e.g. `"LAKEBASE_AUTH_ERROR"`; `"LAKEBASE_UNKNOWN_RESULT"` for values
/// this version does not know. The returned string is static: do not free it.
///
/// Thread safety: any thread.
///
/// # Safety
/// None: any value may be passed; the result is a static string.
#[no_mangle]
pub extern "C" fn lakebase_result_name(result: c_int) -> *const c_char {
    use lakebase_result::*;
    let s: &'static [u8] = match result {
        x if x == LAKEBASE_OK as c_int => b"LAKEBASE_OK\0",
        x if x == LAKEBASE_INVALID_ARGUMENT as c_int => b"LAKEBASE_INVALID_ARGUMENT\0",
        x if x == LAKEBASE_INSUFFICIENT_SIZE as c_int => b"LAKEBASE_INSUFFICIENT_SIZE\0",
        x if x == LAKEBASE_CONFIG_ERROR as c_int => b"LAKEBASE_CONFIG_ERROR\0",
        x if x == LAKEBASE_AUTH_ERROR as c_int => b"LAKEBASE_AUTH_ERROR\0",
        x if x == LAKEBASE_API_ERROR as c_int => b"LAKEBASE_API_ERROR\0",
        x if x == LAKEBASE_NETWORK_ERROR as c_int => b"LAKEBASE_NETWORK_ERROR\0",
        x if x == LAKEBASE_INTERNAL_ERROR as c_int => b"LAKEBASE_INTERNAL_ERROR\0",
        x if x == LAKEBASE_WOULD_BLOCK as c_int => b"LAKEBASE_WOULD_BLOCK\0",
        _ => b"LAKEBASE_UNKNOWN_RESULT\0",
    };
    s.as_ptr() as *const c_char
}

/// The library version, e.g. `"0.1.0"`. Static: do not free it. Thread safety: any thread.
///
/// # Safety
/// None: the result is a static string.
#[no_mangle]
pub extern "C" fn lakebase_version() -> *const c_char {
    VERSION.as_ptr() as *const c_char
}
