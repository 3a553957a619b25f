//! The one background refresher thread per process.
//!
//! Nothing starts when the library is loaded. The thread starts when the first token is cached,
//! wakes when some cache next wants attention (or at least every 30 s, so a wall-clock jump is
//! noticed), refreshes what is due, and sleeps again. After `fork()` the child has no such thread;
//! the next call in the child starts a new one (see [`ensure_running`]).
//!
//! The registry of caches is a copy-on-write list read without locks; the only lock is the
//! sleep/wake mutex, which is rebuilt per fork generation.

use crate::clock::{Clock, SystemClock, WallMs};
use crate::sync::ForkLocal;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Something with tokens to keep fresh.
pub trait Refreshable: Send + Sync {
    /// Refresh if due; return when to be called next (wall ms), or `None` when idle.
    fn refresh_if_due(&self) -> Option<WallMs>;
}

struct Refresher {
    entries: ArcSwap<Vec<Weak<dyn Refreshable>>>,
    wake: ForkLocal<(Mutex<u64>, Condvar)>,
    /// Fork generation whose thread is running (0 = none yet), or that generation with
    /// [`SPAWN_FAILED`] set while starting it fails and the next attempt waits for `retry_at_ms`.
    running_gen: AtomicU64,
    /// After a failed start: no new attempt before this (monotonic ms of the real clock).
    retry_at_ms: AtomicU64,
    /// Consecutive failed starts in this generation (1 = the one that was logged).
    spawn_failures: AtomicU32,
}

/// Marks [`Refresher::running_gen`] as "starting failed; back off".
const SPAWN_FAILED: u64 = 1 << 63;
/// Backoff between attempts to start the thread: 1 s doubling up to a minute.
const RESPAWN_MIN: Duration = Duration::from_secs(1);
const RESPAWN_MAX: Duration = Duration::from_secs(60);

const MAX_SLEEP: Duration = Duration::from_secs(30);
const MIN_SLEEP: Duration = Duration::from_millis(5);

fn refresher() -> &'static Refresher {
    static R: OnceLock<Refresher> = OnceLock::new();
    R.get_or_init(|| Refresher {
        entries: ArcSwap::from_pointee(Vec::new()),
        wake: ForkLocal::new(|| (Mutex::new(0), Condvar::new())),
        running_gen: AtomicU64::new(0),
        retry_at_ms: AtomicU64::new(0),
        spawn_failures: AtomicU32::new(0),
    })
}

/// Keep `entry` fresh for as long as it is alive.
pub fn register(entry: Weak<dyn Refreshable>) {
    let r = refresher();
    r.entries.rcu(|list| {
        let mut v: Vec<Weak<dyn Refreshable>> = list.iter().filter(|w| w.strong_count() > 0).cloned().collect();
        v.push(entry.clone());
        v
    });
    ensure_running();
    notify();
}

/// Start the thread for this process (or this forked child) if it is not running. Cheap when it
/// is: two atomic loads.
///
/// When it cannot be started (a thread limit), tokens are fetched on demand by callers, and the
/// start is retried with backoff (1 s doubling to 60 s): in between, a call costs one clock read
/// more, not a failed `clone()` and an error line. The failure is logged once per process.
#[inline]
pub fn ensure_running() {
    let gen = crate::fork::generation();
    let r = refresher();
    let running = r.running_gen.load(Ordering::Acquire);
    if running == gen {
        return;
    }
    start(r, gen, running);
}

#[cold]
fn start(r: &Refresher, gen: u64, running: u64) {
    let now_ms = || SystemClock.monotonic().as_millis() as u64;
    let backing_off = running == gen | SPAWN_FAILED;
    if backing_off && now_ms() < r.retry_at_ms.load(Ordering::Acquire) {
        return;
    }
    if r.running_gen.compare_exchange(running, gen, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return;
    }
    if !backing_off {
        // A new generation (first start, or first use in a forked child).
        r.spawn_failures.store(0, Ordering::Release);
    }
    crate::fork::ensure_registered();
    let spawned = std::thread::Builder::new().name("lakebase-refresh".into()).stack_size(256 * 1024).spawn(move || run(gen));
    match spawned {
        Ok(_) => {
            let failed = r.spawn_failures.swap(0, Ordering::AcqRel);
            if failed > 0 {
                crate::log_info!("refresher thread started after {failed} failed attempt(s)");
            }
        }
        Err(e) => {
            let n = r.spawn_failures.fetch_add(1, Ordering::AcqRel) + 1;
            let delay = RESPAWN_MIN.saturating_mul(1u32 << (n - 1).min(6)).min(RESPAWN_MAX);
            r.retry_at_ms.store(now_ms() + delay.as_millis() as u64, Ordering::Release);
            r.running_gen.store(gen | SPAWN_FAILED, Ordering::Release);
            if n == 1 {
                crate::log_error!(
                    "cannot start the refresher thread ({e}); tokens are fetched on demand when they expire, and starting it is retried every {} s at most",
                    RESPAWN_MAX.as_secs()
                );
            } else {
                crate::log_debug!("refresher thread: start attempt {n} failed ({e}); next attempt in {} s", delay.as_secs());
            }
        }
    }
}

/// Wake the thread to recompute its schedule (a new cache, a new token).
pub fn notify() {
    let r = refresher();
    let w = r.wake.get();
    *crate::sync::lock(&w.0) += 1;
    w.1.notify_all();
}

fn run(gen: u64) {
    crate::sync::block_signals();
    crate::log_debug!("refresher thread started");
    let clock = SystemClock;
    let r = refresher();
    loop {
        if crate::fork::generation() != gen {
            return;
        }
        let seen = *crate::sync::lock(&r.wake.get().0);
        let list: Arc<Vec<Weak<dyn Refreshable>>> = r.entries.load_full();
        let now = clock.wall_ms();
        let mut next = now + MAX_SLEEP.as_millis() as i64;
        for w in list.iter() {
            if let Some(e) = w.upgrade() {
                let due = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.refresh_if_due())).unwrap_or_else(|_| {
                    crate::log_error!("internal error: a refresh panicked; it will be retried");
                    Some(clock.wall_ms() + 1000)
                });
                if let Some(d) = due {
                    next = next.min(d);
                }
            }
        }
        let wait = Duration::from_millis(next.saturating_sub(clock.wall_ms()).max(0) as u64).clamp(MIN_SLEEP, MAX_SLEEP);
        let w = r.wake.get();
        let n = crate::sync::lock(&w.0);
        // Re-check under the lock so a notify between the scan and the wait is not lost.
        if *n == seen {
            drop(w.1.wait_timeout(n, wait));
        }
    }
}
