//! `lakebase_get_password`: the one-call API on the process-wide default client.

use super::{boundary, check_buf, hit_copy, lakebase_result, write_str};
use lakebase_core::{default_client_if_set, default_client_ref};
use libc::{c_char, size_t};

/// Copy the Lakebase password of the process-wide default client into `buf`, NUL-terminated, and
/// its length without the NUL into `*out_len`.
///
/// The default client is configured on first use from the environment (`DATABRICKS_HOST`,
/// `DATABRICKS_TOKEN`, `DATABRICKS_CLIENT_ID`/`_SECRET`, `DATABRICKS_CONFIG_PROFILE`,
/// `DATABRICKS_CONFIG_FILE`, `DATABRICKS_AUTH_TYPE`, `LAKEBASE_INSTANCE` or `LAKEBASE_ENDPOINT`)
/// and `~/.databrickscfg`, exactly as the Databricks SDKs resolve configuration.
///
/// If `buf_len <= length`, nothing is written to `buf`, `*out_len` is set to the length and
/// `LAKEBASE_INSUFFICIENT_SIZE` is returned: retry with `*out_len + 1` bytes. `buf` may be NULL
/// with `buf_len` 0 to ask for the length. A cache hit is a memory read (no lock, no system call,
/// no network).
///
/// Errors: see `lakebase_client_get_password`; detail in `lakebase_last_error`.
/// Thread safety: any number of threads may call this at once.
///
/// # Safety
/// `buf` must be NULL or point to `buf_len` writable bytes; `out_len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn lakebase_get_password(buf: *mut c_char, buf_len: size_t, out_len: *mut size_t) -> lakebase_result {
    if let Some(r) = default_client_if_set().and_then(|c| hit_copy(c, buf, buf_len, out_len)) {
        return r;
    }
    boundary(|| {
        check_buf(buf, buf_len)?;
        default_client_ref()?.with_password(|pw| write_str(pw.as_bytes(), buf, buf_len, out_len))?
    })
}
