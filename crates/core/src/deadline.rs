//! Deadlines by who waits: every request made inside one logical operation on a thread (an OAuth
//! token, the credential call, all retries) shares one deadline counted from the operation's
//! start. A *foreground* operation (a caller is blocked in `lakebase_get_password` or
//! `PQconnectdb`) gets a short budget; the background refresher a longer one. The HTTP client
//! reads the current operation's deadline from here; the cache opens operations without knowing
//! anything about HTTP.

use crate::clock::Clock;
use std::cell::Cell;
use std::time::Duration;

/// Default total deadline of a foreground operation.
pub const FOREGROUND_DEADLINE: Duration = Duration::from_secs(15);

/// Who is waiting for an operation; decides its total deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A caller is blocked until it completes (first password, expired token, `identity`).
    Foreground,
    /// The background refresher: nobody is waiting.
    Background,
}

#[derive(Clone, Copy)]
struct Scope {
    purpose: Purpose,
    /// Start on the operation's clock (monotonic).
    start: Duration,
    /// Optional tighter cap on the whole operation.
    cap: Option<Duration>,
    /// The waiting caller's own limits (foreground operations only).
    limits: Option<Limits>,
}

/// A caller's own time limits (its client's `retry_timeout_seconds` / `http_timeout_seconds`),
/// for the waits done on its behalf. Clients that share one cache entry share its HTTP client,
/// so these travel with the calling thread rather than with the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total budget of a foreground operation (all requests and retries).
    pub deadline: Duration,
    /// Read timeout of one attempt.
    pub read_timeout: Duration,
    /// Longest wait for a fetch another thread has in flight.
    pub max_wait: Duration,
}

thread_local! {
    static SCOPE: Cell<Option<Scope>> = const { Cell::new(None) };
    static LIMITS: Cell<Option<Limits>> = const { Cell::new(None) };
}

/// Run `f` with `limits` as the calling thread's own limits: foreground operations started
/// inside it (see [`scope`]) use them instead of the HTTP client's defaults.
pub fn with_limits<R>(limits: Limits, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Limits>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = LIMITS.try_with(|l| l.set(self.0));
        }
    }
    let prev = LIMITS.try_with(|l| l.replace(Some(limits))).ok().flatten();
    let _restore = Restore(prev);
    f()
}

/// The calling thread's own limits, if a client set them.
pub fn current_limits() -> Option<Limits> {
    LIMITS.try_with(|l| l.get()).ok().flatten()
}

/// Run `f` as one logical operation on behalf of `purpose`: every request made inside it on this
/// thread (an OAuth token, the credential call, all retries) shares one deadline counted from
/// here, optionally capped at `cap`. Nested scopes join the outermost one.
pub fn scope<R>(purpose: Purpose, clock: &dyn Clock, cap: Option<Duration>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Scope>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = SCOPE.try_with(|s| s.set(self.0));
        }
    }
    let prev = SCOPE.try_with(|s| s.get()).ok().flatten();
    if prev.is_some() {
        return f();
    }
    let _restore = Restore(None);
    let limits = if purpose == Purpose::Foreground { current_limits() } else { None };
    let _ = SCOPE.try_with(|s| s.set(Some(Scope { purpose, start: clock.monotonic(), cap, limits })));
    f()
}

/// The purpose of the operation this thread is in (foreground when none).
pub fn current_purpose() -> Purpose {
    SCOPE.try_with(|s| s.get()).ok().flatten().map_or(Purpose::Foreground, |s| s.purpose)
}

/// The start (monotonic) and cap of the operation this thread is in, if any.
pub(crate) fn current() -> Option<(Purpose, Duration, Option<Duration>)> {
    SCOPE.try_with(|s| s.get()).ok().flatten().map(|s| (s.purpose, s.start, s.cap))
}

/// The limits that apply to requests made now on this thread: those of the foreground
/// operation it is in, or, outside any operation, the thread's own ([`with_limits`]).
pub(crate) fn request_limits() -> Option<Limits> {
    match SCOPE.try_with(|s| s.get()).ok().flatten() {
        Some(s) => s.limits.or_else(current_limits),
        None => current_limits(),
    }
}

/// What is left of the foreground operation this thread is in, for an operation whose budget is
/// `budget` (its HTTP client's foreground deadline): `None` outside a foreground operation.
pub(crate) fn foreground_left(clock: &dyn Clock, budget: Duration) -> Option<Duration> {
    let (purpose, start, cap) = current()?;
    if purpose != Purpose::Foreground {
        return None;
    }
    let budget = cap.map_or(budget, |c| c.min(budget));
    Some(start.saturating_add(budget).saturating_sub(clock.monotonic()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn what_is_left_of_the_outermost_foreground_operation() {
        let clock = ManualClock::new(0);
        assert_eq!(foreground_left(&*clock, FOREGROUND_DEADLINE), None);
        scope(Purpose::Foreground, &*clock, None, || {
            clock.advance(Duration::from_secs(4));
            // A nested operation joins the outer one: its start is the outer start.
            scope(Purpose::Foreground, &*clock, None, || {
                assert_eq!(foreground_left(&*clock, FOREGROUND_DEADLINE), Some(Duration::from_secs(11)));
            });
            clock.advance(Duration::from_secs(20));
            assert_eq!(foreground_left(&*clock, FOREGROUND_DEADLINE), Some(Duration::ZERO));
        });
        scope(Purpose::Background, &*clock, None, || assert_eq!(foreground_left(&*clock, FOREGROUND_DEADLINE), None));
        scope(Purpose::Foreground, &*clock, Some(Duration::from_secs(3)), || {
            assert_eq!(foreground_left(&*clock, FOREGROUND_DEADLINE), Some(Duration::from_secs(3)));
        });
    }
}
