//! Fork detection without a system call on the hot path.
//!
//! The first client registers a `pthread_atfork` child handler that only increments an atomic
//! generation counter (no locks, no allocation, no I/O). Code holding per-process resources
//! (threads, sockets, locks that another thread might have held at fork time) records the
//! generation it built them in and rebuilds them when [`generation`] has moved on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(1);
/// Not a `Once`: a `Once` caught mid-initialisation by `fork()` would block the child forever.
static REGISTERED: AtomicBool = AtomicBool::new(false);

extern "C" fn child_after_fork() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Install the atfork handler (idempotent). Called lazily when the first fork-sensitive state
/// (a [`crate::sync::ForkLocal`], an HTTP client, the refresher) is created, never from a
/// library constructor.
pub fn ensure_registered() {
    if REGISTERED.load(Ordering::Acquire) {
        return;
    }
    if REGISTERED.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        unsafe {
            libc::pthread_atfork(None, None, Some(child_after_fork));
        }
    }
}

/// The current fork generation: 1 in the original process, +1 in each forked child.
#[inline]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}
