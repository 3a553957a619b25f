//! Time, injected. All expiry arithmetic uses [`Clock::wall_ms`] (seconds since the Unix epoch, the
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
    /// A cheaper wall-clock reading for the cache-hit check, within a few milliseconds of the true
    /// time (the real clock: the kernel's time at its last tick plus one tick, so normally never
    /// behind). Good for margins of seconds; use [`wall_ms`](Self::wall_ms) for anything else.
    #[inline]
    fn coarse_wall_ms(&self) -> WallMs {
        self.wall_ms()
    }
    /// Whether this is the real clock ([`SystemClock`]): the cache then reads the coarse clock
    /// directly instead of through the trait object.
    fn is_system(&self) -> bool {
        false
    }
    /// Monotonic time since an arbitrary origin. Never goes backwards.
    fn monotonic(&self) -> Duration;
    /// Block the calling thread for `d` (a manual clock just moves forward).
    fn sleep(&self, d: Duration);
}

pub type SharedClock = Arc<dyn Clock>;

/// The real clock: `clock_gettime` through the vDSO, no system call on Linux.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// `CLOCK_REALTIME_COARSE` in milliseconds, moved forward by its resolution so that it is not
/// behind the precise clock. It is the kernel's wall time as of the last timer tick (1-10 ms
/// old), read from the vDSO data page without touching the TSC: about a quarter of the cost of
/// `CLOCK_REALTIME` on a VM. It follows every step of the wall clock (settimeofday, NTP steps,
/// resume from suspend: the kernel updates it before anything else runs), so a margin check
/// against it is exact to within a tick — a few ticks if a hypervisor stalls the CPU that keeps
/// time; the serve margins are seconds (at least 5% of a token's life).
#[inline]
#[allow(clippy::unnecessary_cast)] // time_t and c_long are 32 bits on some targets
pub fn coarse_wall_ms() -> WallMs {
    static SLACK_MS: AtomicI64 = AtomicI64::new(-1);
    let mut slack = SLACK_MS.load(Ordering::Relaxed);
    if slack < 0 {
        slack = coarse_slack_ms();
        SLACK_MS.store(slack, Ordering::Relaxed);
    }
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer; the call cannot fail for this clock id on Linux >= 2.6.32.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } != 0 {
        return SystemClock.wall_ms();
    }
    (ts.tv_sec as i64).saturating_mul(1000).saturating_add((ts.tv_nsec as i64) / 1_000_000).saturating_add(slack)
}

/// One resolution of the coarse clock, rounded up to whole milliseconds (at least 1).
#[cold]
#[allow(clippy::unnecessary_cast)] // time_t and c_long are 32 bits on some targets
fn coarse_slack_ms() -> i64 {
    let mut res = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer.
    let ok = unsafe { libc::clock_getres(libc::CLOCK_REALTIME_COARSE, &mut res) } == 0;
    let ns = if ok { (res.tv_sec as i64).saturating_mul(1_000_000_000).saturating_add(res.tv_nsec as i64) } else { 10_000_000 };
    ((ns + 999_999) / 1_000_000).clamp(1, 1000)
}

/// The one place monotonic time is read (the real clock, and [`real_deadline`]).
#[allow(clippy::disallowed_methods)]
fn instant_now() -> Instant {
    Instant::now()
}

fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(instant_now)
}

/// Real time left until `deadline` elapses, for waits that must be bounded in real time whatever
/// clock a cache runs on (a thread waiting for another thread's fetch).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RealDeadline(Instant);

/// A deadline `d` from now, in real time.
pub(crate) fn real_deadline(d: Duration) -> RealDeadline {
    RealDeadline(instant_now().checked_add(d).unwrap_or_else(|| instant_now() + Duration::from_secs(86_400 * 365)))
}

impl RealDeadline {
    /// What is left (zero once passed).
    pub(crate) fn left(&self) -> Duration {
        self.0.saturating_duration_since(instant_now())
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn wall_ms(&self) -> WallMs {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }
    }
    #[inline]
    fn coarse_wall_ms(&self) -> WallMs {
        coarse_wall_ms()
    }
    fn is_system(&self) -> bool {
        true
    }
    fn monotonic(&self) -> Duration {
        instant_now().saturating_duration_since(origin())
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// Real elapsed time, for measuring (tests of real-time deadlines, the doctor's timings,
/// benchmarks): the real clock's monotonic time, like `Instant::elapsed`.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(Duration);

impl Stopwatch {
    /// Start measuring now.
    pub fn start() -> Self {
        Stopwatch(SystemClock.monotonic())
    }
    /// Time since [`start`](Self::start).
    pub fn elapsed(&self) -> Duration {
        SystemClock.monotonic().saturating_sub(self.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_follows_the_precise_one_within_ticks() {
        let slack = coarse_slack_ms();
        assert!((1..=1000).contains(&slack));
        for _ in 0..10_000 {
            let before = SystemClock.wall_ms();
            let c = SystemClock.coarse_wall_ms();
            let after = SystemClock.wall_ms();
            // Normally never behind; a stalled timekeeping CPU (VM steal) may hold it a few ticks.
            assert!(c >= before - 50, "coarse {c} behind the precise clock {before}");
            assert!(c <= after + 2 * slack, "coarse {c} too far ahead of {after}");
        }
        assert!(SystemClock.is_system() && !ManualClock::new(0).is_system());
    }
}
