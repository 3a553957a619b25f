//! The C ABI. One module per C concept; every export runs inside [`boundary`], which catches
//! panics (reported as `LAKEBASE_INTERNAL_ERROR`), records this thread's error detail and never
//! lets an unwind cross into C.

pub mod client;
pub mod error;
pub mod password;
pub mod pq;

use lakebase_core::{Error, ErrorKind};
use libc::{c_char, size_t};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Result codes. Values are explicit and never reused; new codes are only ever appended.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lakebase_result {
    /// Success.
    LAKEBASE_OK = 0,
    /// A NULL pointer, invalid UTF-8, or a malformed options string.
    LAKEBASE_INVALID_ARGUMENT = 1,
    /// The output buffer is too small; `*out_len` holds the length needed (without the NUL).
    LAKEBASE_INSUFFICIENT_SIZE = 2,
    /// Configuration missing or contradictory: no host, no target, unknown profile, conflicting
    /// auth methods, unreadable config file.
    LAKEBASE_CONFIG_ERROR = 3,
    /// The workspace rejected the credentials (HTTP 401/403, OAuth error), or no auth method
    /// could produce a token.
    LAKEBASE_AUTH_ERROR = 4,
    /// The workspace API answered with an error or an unusable body.
    LAKEBASE_API_ERROR = 5,
    /// Network failure or timeout talking to the workspace.
    LAKEBASE_NETWORK_ERROR = 6,
    /// A bug in liblakebase, including a caught panic. Please report it.
    LAKEBASE_INTERNAL_ERROR = 7,
    /// No password can be served right now without waiting for the network; a fetch has been
    /// started in the background. Only `lakebase_client_try_get_password` returns it: call again
    /// later (or call the blocking `lakebase_client_get_password` on a worker thread).
    LAKEBASE_WOULD_BLOCK = 8,
}

impl From<ErrorKind> for lakebase_result {
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::InvalidArgument => lakebase_result::LAKEBASE_INVALID_ARGUMENT,
            ErrorKind::InsufficientSize => lakebase_result::LAKEBASE_INSUFFICIENT_SIZE,
            ErrorKind::Config => lakebase_result::LAKEBASE_CONFIG_ERROR,
            ErrorKind::Auth => lakebase_result::LAKEBASE_AUTH_ERROR,
            ErrorKind::Api => lakebase_result::LAKEBASE_API_ERROR,
            ErrorKind::Network => lakebase_result::LAKEBASE_NETWORK_ERROR,
            ErrorKind::Internal => lakebase_result::LAKEBASE_INTERNAL_ERROR,
            _ => lakebase_result::LAKEBASE_INTERNAL_ERROR,
        }
    }
}

/// Run `f` as an export: panics become `LAKEBASE_INTERNAL_ERROR`, errors set the thread's detail.
#[inline]
pub(crate) fn boundary(f: impl FnOnce() -> Result<(), Error>) -> lakebase_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => lakebase_result::LAKEBASE_OK,
        Ok(Err(e)) => {
            let r = lakebase_result::from(e.kind());
            error::set_last_error(e.message());
            r
        }
        Err(_) => {
            error::set_last_error("internal error: liblakebase panicked (caught at the C boundary); please report this");
            lakebase_result::LAKEBASE_INTERNAL_ERROR
        }
    }
}

/// Like [`boundary`] for functions that do not return a result code.
#[inline]
pub(crate) fn boundary_or<T>(default: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(default)
}

/// A borrowed C string argument: NULL → `None`; invalid UTF-8 → error naming the argument.
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(p).to_str().map(Some).map_err(|_| Error::invalid_argument(format!("{name} is not valid UTF-8")))
}

/// Copy `s` NUL-terminated into the caller's buffer. If `buf_len <= s.len()` nothing is written to
/// `buf`, `*out_len` is set to `s.len()` and the result is `LAKEBASE_INSUFFICIENT_SIZE`.
pub(crate) unsafe fn write_str(s: &[u8], buf: *mut c_char, buf_len: size_t, out_len: *mut size_t) -> Result<(), Error> {
    // No NUL scan here: this is the hot path, and every value written (tokens, identities, names)
    // is checked for NUL bytes where it enters the library (see cache::TokenCache::make_token).
    if buf_len <= s.len() {
        if !out_len.is_null() {
            *out_len = s.len();
        }
        return Err(Error::new(
            ErrorKind::InsufficientSize,
            format!("buffer too small: {} bytes needed (including the NUL terminator), {buf_len} given", s.len() + 1),
        ));
    }
    if buf.is_null() {
        return Err(Error::invalid_argument("buf is NULL but buf_len is not 0"));
    }
    std::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, s.len());
    *buf.add(s.len()) = 0;
    if !out_len.is_null() {
        *out_len = s.len();
    }
    Ok(())
}

/// The hit path of the password exports: copy a password that can be served from memory into a
/// buffer that is large enough, and return `LAKEBASE_OK`; `None` (nothing written) for anything
/// else — a miss, a NULL or short buffer —, which the export then handles in full under
/// [`boundary`]. It returns a small value only, so that no `Result<_, Error>` is built and moved
/// through memory on the hit path (that alone cost ~15 ns per call).
#[inline(always)]
pub(crate) unsafe fn hit_copy(
    c: &lakebase_core::Client,
    buf: *mut c_char,
    buf_len: size_t,
    out_len: *mut size_t,
) -> Option<lakebase_result> {
    if buf.is_null() {
        return None;
    }
    let copy = || {
        c.try_hit(|pw| {
            let s = pw.as_bytes();
            if buf_len <= s.len() {
                return false;
            }
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, s.len());
            *buf.add(s.len()) = 0;
            if !out_len.is_null() {
                *out_len = s.len();
            }
            true
        })
    };
    match catch_unwind(AssertUnwindSafe(copy)) {
        Ok(Some(true)) => Some(lakebase_result::LAKEBASE_OK),
        _ => None,
    }
}

/// Reject `buf == NULL` with a non-zero `buf_len` before doing any work.
pub(crate) fn check_buf(buf: *mut c_char, buf_len: size_t) -> Result<(), Error> {
    if buf.is_null() && buf_len != 0 {
        return Err(Error::invalid_argument("buf is NULL but buf_len is not 0"));
    }
    Ok(())
}

/// Version string, NUL-terminated, static.
pub(crate) const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
