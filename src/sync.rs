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
