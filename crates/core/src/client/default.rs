//! The process-wide default client (`lakebase_get_password`, the libpq interposer): configured
//! from the environment and `~/.databrickscfg` on first use, then reached with one atomic load.
//!
//! One static holds it: a pointer to an `Arc<Client>` that is set once and never replaced or
//! released, so a `&'static Client` taken from it stays valid for the life of the process.

use super::Client;
use crate::error::{Error, Result};
use crate::sync::ForkLocal;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, OnceLock};

static DEFAULT: AtomicPtr<Client> = AtomicPtr::new(std::ptr::null_mut());

/// The default client if it has been configured already; never configures it (no file, no
/// environment, no subprocess).
#[inline]
pub fn default_client_if_set() -> Option<&'static Client> {
    let p = DEFAULT.load(Ordering::Acquire);
    // SAFETY: set once from `Arc::into_raw` and never released.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// The process-wide default client as a plain reference: one atomic load on the hot path,
/// configured from the environment and ~/.databrickscfg on first use. A configuration error is
/// returned (not cached), so fixing the environment and calling again works.
#[inline]
pub fn default_client_ref() -> Result<&'static Client> {
    if let Some(c) = default_client_if_set() {
        return Ok(c);
    }
    init_default()?;
    default_client_if_set().ok_or_else(|| Error::internal("default client missing after initialisation"))
}

/// [`default_client_ref`] as a shared handle.
pub fn default_client() -> Result<Arc<Client>> {
    let c: *const Client = default_client_ref()?;
    // SAFETY: `c` came from `Arc::into_raw` and the static keeps one strong count forever.
    unsafe {
        Arc::increment_strong_count(c);
        Ok(Arc::from_raw(c))
    }
}

#[cold]
fn init_default() -> Result<()> {
    static INIT: OnceLock<ForkLocal<std::sync::Mutex<()>>> = OnceLock::new();
    let lock = INIT.get_or_init(|| ForkLocal::new(|| std::sync::Mutex::new(()))).get();
    let _g = crate::sync::lock(&lock);
    if default_client_if_set().is_some() {
        return Ok(());
    }
    let c = Arc::new(Client::new("")?);
    DEFAULT.store(Arc::into_raw(c) as *mut Client, Ordering::Release);
    Ok(())
}
