//! Synchronisation that survives `fork()`.
//!
//! A lock held by another thread at the moment of `fork()` stays locked forever in the child,
//! because that thread does not exist there. [`ForkLocal`] gives each fork generation its own
//! instance of a value (typically a mutex), rebuilt on first use in the child.
//!
//! Also the library's threads: [`block_signals`] for every thread we start, and [`helper`] for the
//! short-lived ones that let a caller stop waiting for work it cannot cancel.

use arc_swap::ArcSwap;
use std::sync::Arc;

pub struct ForkLocal<T> {
    slot: ArcSwap<(u64, Arc<T>)>,
    init: fn() -> T,
}

impl<T> ForkLocal<T> {
    pub fn new(init: fn() -> T) -> Self {
        crate::fork::ensure_registered();
        ForkLocal { slot: ArcSwap::from_pointee((crate::fork::generation(), Arc::new(init()))), init }
    }

    /// This process's instance.
    pub fn get(&self) -> Arc<T> {
        let gen = crate::fork::generation();
        let cur = self.slot.load();
        if cur.0 == gen {
            return cur.1.clone();
        }
        let fresh = Arc::new((gen, Arc::new((self.init)())));
        let prev = self.slot.compare_and_swap(&*cur, fresh.clone());
        if Arc::ptr_eq(&*prev, &*cur) {
            fresh.1.clone()
        } else {
            // Another thread of this child won the race; use its instance if it is current.
            let now = self.slot.load();
            if now.0 == gen {
                now.1.clone()
            } else {
                fresh.1.clone()
            }
        }
    }
}

/// Lock a std mutex, ignoring poisoning (our critical sections never leave broken state).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A single-flight gate with a timed acquire, built on std's futex-based `Mutex` + `Condvar`.
///
/// Why not parking_lot: its mutexes and condvars park threads in one process-global hash table
/// of queues. A thread parked in the parent at `fork()` leaves its node in that table, and a
/// child that later parks or notifies in the same bucket can spin forever on it (seen in the
/// fork-while-a-fetch-is-in-flight test). std's primitives keep all their state in the object
/// itself, so a fresh object per fork generation ([`ForkLocal`]) is fully independent.
#[derive(Default)]
pub struct Gate {
    busy: std::sync::Mutex<bool>,
    freed: std::sync::Condvar,
}

/// Holding the gate; dropping it lets the next waiter in.
pub struct GateGuard<'a>(&'a Gate);

impl Gate {
    /// Enter, waiting at most `timeout` for the current holder to leave.
    pub fn enter(&self, timeout: std::time::Duration) -> Option<GateGuard<'_>> {
        let deadline = crate::clock::real_deadline(timeout);
        let mut busy = lock(&self.busy);
        while *busy {
            let left = deadline.left();
            if left.is_zero() {
                return None;
            }
            busy = self.freed.wait_timeout(busy, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        *busy = true;
        Some(GateGuard(self))
    }

    /// Enter without waiting.
    #[cfg(test)]
    pub fn try_enter(&self) -> Option<GateGuard<'_>> {
        self.enter(std::time::Duration::ZERO)
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        *lock(&self.0.busy) = false;
        self.0.freed.notify_one();
    }
}

/// Block every signal on the calling thread: the host program's handlers never run on ours.
pub fn block_signals() {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Run `f` on a short-lived helper thread named `name` (signals blocked, panics contained) and
/// return a receiver for its result. The caller may stop waiting at any time: the thread finishes on
/// its own and its result is dropped. When no thread can be started, `f` is handed back to be run in
/// place.
pub fn helper<T, F>(name: &str, f: F) -> Result<std::sync::mpsc::Receiver<T>, F>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    // Shared so that `f` can be taken back if the spawn fails (spawn consumes its closure).
    let slot = Arc::new(std::sync::Mutex::new(Some(f)));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
        block_signals();
        if let Some(f) = lock(&theirs).take() {
            if let Ok(r) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let _ = tx.send(r);
            }
        }
    });
    match spawned {
        Ok(_) => Ok(rx),
        Err(e) => {
            crate::log_debug!("cannot start a {name} thread ({e}); working in place");
            match lock(&slot).take() {
                Some(f) => Err(f),
                None => Ok(rx), // unreachable: the thread never ran; rx then reports disconnection
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn helper_delivers_its_result_and_contains_a_panic() {
        let rx = helper("lakebase-test", || 6 * 7).ok().unwrap();
        assert_eq!(rx.recv().unwrap(), 42);
        let rx = helper("lakebase-test", || -> u32 { panic!("boom (expected in this test)") }).ok().unwrap();
        assert!(rx.recv().is_err(), "a panicking helper is seen as a disconnected channel");
    }

    #[test]
    fn gate_is_exclusive_and_times_out() {
        let g = Gate::default();
        let held = g.enter(Duration::from_millis(10)).unwrap();
        assert!(g.try_enter().is_none());
        assert!(g.enter(Duration::from_millis(20)).is_none());
        drop(held);
        assert!(g.try_enter().is_some());
    }

    #[test]
    fn gate_hands_over_to_a_waiter() {
        let g = std::sync::Arc::new(Gate::default());
        let held = g.enter(Duration::from_secs(1)).unwrap();
        let g2 = g.clone();
        let t = std::thread::spawn(move || g2.enter(Duration::from_secs(10)).is_some());
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        assert!(t.join().unwrap());
    }
}
