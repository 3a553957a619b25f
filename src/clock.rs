//! Time, injected. All expiry arithmetic uses [`Clock::wall`] (seconds since the Unix epoch, the
//! scale tokens' expiry is written in); all scheduling uses [`Clock::monotonic`]. Production code
//! only ever reads time through a `Clock`; tests pass a [`ManualClock`] and move it by hand.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type WallMs = i64;

pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time in milliseconds since the Unix epoch. Jumps with the system clock.
    fn wall_ms(&self) -> WallMs;
    /// Monotonic time since an arbitrary origin. Never goes backwards.
    fn monotonic(&self) -> Duration;
    /// Block the calling thread for `d` (a manual clock just moves forward).
    fn sleep(&self, d: Duration);
}

pub type SharedClock = Arc<dyn Clock>;

/// The real clock: `clock_gettime` through the vDSO, no system call on Linux.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn wall_ms(&self) -> WallMs {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }
    }
    fn monotonic(&self) -> Duration {
        Instant::now().saturating_duration_since(origin())
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A clock that moves only when told to; wall and monotonic time advance together.
#[derive(Debug)]
pub struct ManualClock {
    wall_ms: AtomicI64,
    mono_ms: AtomicI64,
}

impl ManualClock {
    pub fn new(wall_ms: WallMs) -> Arc<Self> {
        Arc::new(ManualClock { wall_ms: AtomicI64::new(wall_ms), mono_ms: AtomicI64::new(0) })
    }
    pub fn advance(&self, d: Duration) {
        let ms = d.as_millis() as i64;
        self.wall_ms.fetch_add(ms, Ordering::SeqCst);
        self.mono_ms.fetch_add(ms, Ordering::SeqCst);
    }
    /// Move only the wall clock (a suspended laptop, an NTP step).
    pub fn jump_wall(&self, delta_ms: i64) {
        self.wall_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn wall_ms(&self) -> WallMs {
        self.wall_ms.load(Ordering::SeqCst)
    }
    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.mono_ms.load(Ordering::SeqCst).max(0) as u64)
    }
    fn sleep(&self, d: Duration) {
        self.advance(d)
    }
}
