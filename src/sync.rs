//! Synchronisation that survives `fork()`.
//!
//! A lock held by another thread at the moment of `fork()` stays locked forever in the child,
//! because that thread does not exist there. [`ForkLocal`] gives each fork generation its own
//! instance of a value (typically a mutex), rebuilt on first use in the child.

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
            if now.0 == gen { now.1.clone() } else { fresh.1.clone() }
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
        let deadline = std::time::Instant::now() + timeout;
        let mut busy = lock(&self.busy);
        while *busy {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            busy = self.freed.wait_timeout(busy, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        *busy = true;
        Some(GateGuard(self))
    }

    /// Enter without waiting.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
