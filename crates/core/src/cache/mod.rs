//! A cached, proactively refreshed token: the heart of the library.
//!
//! * A hit is a lock-free `ArcSwap` load (no reference-count traffic, no syscall, no allocation),
//!   one wall-clock read (vDSO) and the caller's copy.
//! * Every read checks the token against the wall clock and stops serving it a small margin
//!   before expiry, so a suspended laptop or a throttled container never gets an expired token.
//! * A miss is single-flight: N threads asking at once cause one fetch; if that fetch fails, the
//!   threads that waited for it get its error instead of fetching again.
//! * [`TokenCache::refresh_if_due`] is called by the background refresher: it refreshes ahead of
//!   expiry (lead `max(min(TTL/2, 20 min), 20% of TTL)`, jittered earlier), keeps serving the
//!   still-valid token when a refresh fails, and backs off.
//! * Failures are remembered: while no token can be served, a caller arriving within the backoff
//!   window after a transient failure (throttling, 5xx, network) gets that failure at once instead
//!   of waiting for another doomed request (a short negative cache), and no caller waits longer
//!   than [`RefreshPolicy::max_wait`] for a fetch another thread has in flight.
//! * Fetches run inside an [`deadline::scope`](crate::deadline::scope): foreground (a caller is waiting:
//!   short deadline) or background (the refresher: longer, but never past the current token's
//!   servable life, so it cannot hold the single-flight lock while callers need a new token).
//! * Forced refreshes (`lakebase_client_refresh`, a rejected login) mint at most once per
//!   [`RefreshPolicy::min_forced_interval`]: a late report of a replaced token gets the token just
//!   minted, a just-minted token rejected again is an error, and an explicit refresh waits out the
//!   rest of the interval so that it always returns a token minted after it was called.
//!
//! Thread-safety: all methods take `&self` and may be called from any thread.

use crate::clock::{SharedClock, WallMs};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::sync::ForkLocal;
use arc_swap::{ArcSwapOption, Guard};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub mod disk;
pub(crate) mod minted;
mod policy;
pub use policy::RefreshPolicy;

/// What a fetch returns: the secret and its absolute expiry.
#[derive(Debug)]
pub struct Fetched {
    pub secret: Secret,
    pub expiry_ms: WallMs,
}

/// A fetched token with where it came from: minted just now (a plain [`Fetched`]), or adopted from
/// the per-user shared cache (minted earlier, maybe by another process). Fetch closures may
/// return either.
#[derive(Debug)]
pub struct Obtained {
    pub fetched: Fetched,
    /// When it was minted, if before this fetch: its schedule counts from then.
    pub obtained_ms: Option<WallMs>,
    /// It came from the shared cache rather than from this fetch's mint.
    pub adopted: bool,
}

impl From<Fetched> for Obtained {
    fn from(fetched: Fetched) -> Self {
        Obtained { fetched, obtained_ms: None, adopted: false }
    }
}

/// The fetch closures of the cache, as the cache calls them.
type FetchFn<'a> = &'a dyn Fn() -> Result<Obtained>;

/// A cached token with its schedule, all in wall-clock milliseconds.
pub struct Token {
    pub secret: Secret,
    pub obtained_ms: WallMs,
    pub expiry_ms: WallMs,
    /// When the refresher should replace it.
    pub refresh_at_ms: WallMs,
    /// After this instant the token is never handed out.
    pub serve_until_ms: WallMs,
    /// Set the first time the token is read; the refresher only renews tokens somebody used.
    used: AtomicBool,
    /// Sequence number of this token (1 for the first fetch).
    pub serial: u64,
    /// Taken from the shared cache (minted by another process or an earlier one), not minted by
    /// the fetch that stored it here.
    pub adopted: bool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &self.secret)
            .field("obtained_ms", &self.obtained_ms)
            .field("expiry_ms", &self.expiry_ms)
            .field("refresh_at_ms", &self.refresh_at_ms)
            .field("serve_until_ms", &self.serve_until_ms)
            .field("serial", &self.serial)
            .field("adopted", &self.adopted)
            .finish()
    }
}

impl Token {
    #[inline]
    fn mark_used(&self) {
        // Read first: after the first use this is a shared read, never a contended write.
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }
}

/// How a fetch was triggered; tokens from the refresher start unused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Caller,
    Refresher,
}

pub struct TokenCache {
    current: ArcSwapOption<Token>,
    clock: SharedClock,
    /// `clock` is the real clock: the hit path calls the coarse clock directly (no dynamic call).
    system_clock: bool,
    policy: RefreshPolicy,
    /// Single-flight lock, one per fork generation.
    flight: ForkLocal<crate::sync::Gate>,
    /// Completed fetch attempts (success or failure).
    attempts: AtomicU64,
    /// Successful fetches.
    fetches: AtomicU64,
    failures: AtomicU32,
    next_retry_ms: AtomicI64,
    last_error: ArcSwapOption<Error>,
    /// When a forced refresh last minted (wall ms).
    last_forced_ms: AtomicI64,
    /// Until when callers without a servable token get the last (transient) failure at once.
    negative_until_ms: AtomicI64,
}

impl TokenCache {
    pub fn new(clock: SharedClock, policy: RefreshPolicy) -> Self {
        TokenCache {
            current: ArcSwapOption::empty(),
            system_clock: clock.is_system(),
            clock,
            policy,
            flight: ForkLocal::new(crate::sync::Gate::default),
            attempts: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            next_retry_ms: AtomicI64::new(i64::MIN),
            last_error: ArcSwapOption::empty(),
            last_forced_ms: AtomicI64::new(i64::MIN),
            negative_until_ms: AtomicI64::new(i64::MIN),
        }
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The coarse wall clock of the hit check.
    #[inline(always)]
    fn coarse_now(&self) -> WallMs {
        if self.system_clock {
            crate::clock::coarse_wall_ms()
        } else {
            self.clock.coarse_wall_ms()
        }
    }

    /// The hot path. Calls `f` with a servable token, fetching (single-flight) when there is none.
    /// The servable check reads the coarse clock (no TSC read): it errs early by at most a tick.
    #[inline]
    pub fn with_token<F: Into<Obtained>, R>(&self, fetch: &dyn Fn() -> Result<F>, f: impl FnOnce(&Token) -> R) -> Result<R> {
        let guard: Guard<Option<Arc<Token>>> = self.current.load();
        if let Some(t) = guard.as_ref() {
            if self.coarse_now() < t.serve_until_ms {
                t.mark_used();
                return Ok(f(t));
            }
        }
        drop(guard);
        self.with_token_slow(&|| fetch().map(Into::into), f)
    }

    /// The hit alone: `Some(f(token))` when a token can be served now, else `None` (nothing else
    /// happens: no fetch, no error). For callers with a cheaper fast path of their own (the C ABI).
    #[inline(always)]
    pub fn hit<R>(&self, f: impl FnOnce(&Token) -> R) -> Option<R> {
        let guard: Guard<Option<Arc<Token>>> = self.current.load();
        let t = guard.as_ref()?;
        if self.coarse_now() < t.serve_until_ms {
            t.mark_used();
            return Some(f(t));
        }
        None
    }

    #[cold]
    #[inline(never)]
    fn with_token_slow<R>(&self, fetch: FetchFn<'_>, f: impl FnOnce(&Token) -> R) -> Result<R> {
        let t = self.fetch_blocking(fetch, None)?;
        t.mark_used();
        Ok(f(&t))
    }

    /// The non-blocking read: `Ok(Some(f(token)))` on a hit; `Ok(None)` when no token can be
    /// served now (the caller starts a fetch elsewhere); `Err` with the remembered failure while
    /// the negative cache holds (a transient failure, no servable token, backoff window open).
    #[inline]
    pub fn try_with_token<R>(&self, f: impl FnOnce(&Token) -> R) -> Result<Option<R>> {
        let guard: Guard<Option<Arc<Token>>> = self.current.load();
        if let Some(t) = guard.as_ref() {
            if self.coarse_now() < t.serve_until_ms {
                t.mark_used();
                return Ok(Some(f(t)));
            }
        }
        drop(guard);
        match self.negative_cached() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// The current token if it may still be served, without fetching.
    pub fn peek(&self) -> Option<Arc<Token>> {
        let t = self.current.load_full()?;
        (self.clock.wall_ms() < t.serve_until_ms).then_some(t)
    }

    /// The current token, servable or not (what a fetch in progress replaces).
    pub fn current(&self) -> Option<Arc<Token>> {
        self.current.load_full()
    }

    /// `(refresh_at, serve_until)` of a token minted at `obtained_ms` that expires at `expiry_ms`,
    /// without jitter: whether a token from elsewhere would be served (and not be due at once).
    pub fn schedule_of(&self, obtained_ms: WallMs, expiry_ms: WallMs) -> (WallMs, WallMs) {
        self.policy.schedule(obtained_ms, expiry_ms, 0.0)
    }

    /// Like [`with_token`](Self::with_token) but also refreshes synchronously once the token is
    /// past its refresh time, falling back to the still-valid token if that refresh fails.
    /// For tokens with no background refresher (workspace OAuth tokens).
    pub fn get_fresh<F: Into<Obtained>>(&self, fetch: &dyn Fn() -> Result<F>) -> Result<Arc<Token>> {
        let fetch = || fetch().map(Into::into);
        let fetch: FetchFn<'_> = &fetch;
        let now = self.clock.wall_ms();
        if let Some(t) = self.current.load_full() {
            if now < t.refresh_at_ms {
                return Ok(t);
            }
            if now < t.serve_until_ms {
                if now < self.next_retry_ms.load(Ordering::Acquire) {
                    return Ok(t);
                }
                return match self.fetch_blocking(fetch, Some(t.serial)) {
                    Ok(n) => Ok(n),
                    Err(e) => {
                        crate::log_warn!("token refresh failed, using the still-valid token: {e}");
                        Ok(t)
                    }
                };
            }
        }
        self.fetch_blocking(fetch, None)
    }

    /// Drop the cached token if it is the one with `serial` (e.g. the server rejected it) and fetch
    /// a new one. Concurrent invalidations of the same token cause one fetch.
    pub fn force_refresh<F: Into<Obtained>>(&self, fetch: &dyn Fn() -> Result<F>, serial: Option<u64>) -> Result<Arc<Token>> {
        let fetch = || fetch().map(Into::into);
        let fetch: FetchFn<'_> = &fetch;
        let rejected = serial;
        let serial = serial.or_else(|| self.current.load().as_ref().map(|t| t.serial)).unwrap_or(0);
        // Rate limit: a loop of forced refreshes (or a login that keeps failing for another
        // reason) must not turn into a loop of mints.
        // Rate limit: a loop of forced refreshes (or a login that keeps failing for another
        // reason) must not turn into a loop of mints: at most one forced mint per interval.
        let interval = self.policy.min_forced_interval.as_millis() as i64;
        let since = self.clock.wall_ms().saturating_sub(self.last_forced_ms.load(Ordering::Acquire));
        if since < interval {
            match (rejected, self.peek()) {
                // The token named as rejected is still the one cached, and it was itself minted
                // by a forced refresh moments ago: handing it out again is useless and minting
                // again is the loop the limit exists to stop.
                (Some(r), Some(t)) if t.serial <= r => {
                    return Err(Error::auth(format!(
                        "the server rejected a password minted {since} ms ago by a forced refresh; not minting again within {interval} ms (is the role or the database the token is for the right one?)"
                    )));
                }
                // A late report about a token already replaced: the new one is the answer.
                (Some(_), Some(t)) => {
                    crate::log_info!("forced refresh skipped: the token was minted {since} ms ago by another forced refresh");
                    return Ok(t);
                }
                // An explicit refresh promises a token minted after the call: wait out the rest
                // of the interval (under a second), then mint.
                (None, Some(_)) => self.clock.sleep(Duration::from_millis((interval - since) as u64)),
                (_, None) => {}
            }
        }
        let t = self.fetch_blocking(fetch, Some(serial))?;
        if t.serial > serial && !t.adopted {
            self.last_forced_ms.store(self.clock.wall_ms(), Ordering::Release);
        }
        Ok(t)
    }

    /// Single-flight fetch. `replace`: fetch even if a servable token exists, unless it is newer
    /// than this serial.
    fn fetch_blocking(&self, fetch: FetchFn<'_>, replace: Option<u64>) -> Result<Arc<Token>> {
        self.fetch_as(fetch, replace, Origin::Caller)
    }

    fn fetch_as(&self, fetch: FetchFn<'_>, replace: Option<u64>, origin: Origin) -> Result<Arc<Token>> {
        let seen_attempts = self.attempts.load(Ordering::Acquire);
        if origin == Origin::Caller && replace.is_none() {
            if let Some(e) = self.negative_cached() {
                return Err(e);
            }
        }
        let lock = self.flight.get();
        // Bounded wait: a caller never waits forever behind another thread's fetch: its client's
        // own setting (clients may share this cache), and inside a caller's operation (a blocked
        // connect) no longer than that operation has left.
        let max_wait = crate::deadline::current_limits().map_or(self.policy.max_wait, |l| l.max_wait);
        let budget = crate::deadline::request_limits().map_or(self.policy.foreground_deadline, |l| l.deadline);
        let wait = match crate::deadline::foreground_left(&*self.clock, budget) {
            Some(left) => left.min(max_wait),
            None => max_wait,
        };
        let _g = match lock.enter(wait) {
            Some(g) => g,
            None => {
                if let Some(t) = self.peek() {
                    return Ok(t);
                }
                let why = self.last_error.load_full().map(|e| format!(" (last error: {})", e.message())).unwrap_or_default();
                return Err(Error::network(format!(
                    "timed out after {:.1} s waiting for the token request already in progress{why}",
                    wait.as_secs_f64()
                )));
            }
        };
        // Someone else may have completed a fetch while we waited for the lock.
        if let Some(t) = self.current.load_full() {
            let newer = replace.map_or(true, |s| t.serial > s);
            if newer && self.clock.wall_ms() < t.serve_until_ms {
                return Ok(t);
            }
        }
        if self.attempts.load(Ordering::Acquire) != seen_attempts {
            if let Some(e) = self.last_error.load_full() {
                if self.failures.load(Ordering::Acquire) > 0 {
                    return Err((*e).clone());
                }
            }
        }
        if origin == Origin::Caller && replace.is_none() {
            if let Some(e) = self.negative_cached() {
                return Err(e);
            }
        }
        let result = match origin {
            Origin::Caller => crate::deadline::scope(crate::deadline::Purpose::Foreground, &*self.clock, None, fetch),
            Origin::Refresher => {
                // Never past the current token's servable life: after that, callers need the
                // lock to fetch in the foreground.
                let cap = self.current.load().as_ref().map(|t| {
                    let left = (t.serve_until_ms - self.clock.wall_ms()).max(0) as u64;
                    Duration::from_millis(left).max(Duration::from_secs(5))
                });
                crate::deadline::scope(crate::deadline::Purpose::Background, &*self.clock, cap, fetch)
            }
        };
        let now = self.clock.wall_ms();
        let result = result.and_then(|f| self.make_token(f, now, origin));
        match result {
            Ok(t) => {
                self.current.store(Some(t.clone()));
                self.fetches.fetch_add(1, Ordering::AcqRel);
                self.failures.store(0, Ordering::Release);
                self.next_retry_ms.store(i64::MIN, Ordering::Release);
                self.negative_until_ms.store(i64::MIN, Ordering::Release);
                self.last_error.store(None);
                self.attempts.fetch_add(1, Ordering::AcqRel);
                Ok(t)
            }
            Err(e) => {
                let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                // Also after a failed background refresh: once the token is no longer servable,
                // callers fail fast until the negative window closes.
                let negative = self.negative_window(n, e.retry_after());
                self.negative_until_ms.store(now + negative.as_millis() as i64, Ordering::Release);
                let delay = if self.peek().is_some() { self.backoff(n, e.retry_after()) } else { negative };
                self.next_retry_ms.store(now + delay.as_millis() as i64, Ordering::Release);
                self.last_error.store(Some(Arc::new(e.clone())));
                self.attempts.fetch_add(1, Ordering::AcqRel);
                Err(e)
            }
        }
    }

    /// The remembered failure, if no token can be served, it is transient and its backoff window
    /// is still open: returned to callers instead of another request.
    fn negative_cached(&self) -> Option<Error> {
        if self.failures.load(Ordering::Acquire) == 0 || self.peek().is_some() {
            return None;
        }
        let now = self.clock.wall_ms();
        let until = self.negative_until_ms.load(Ordering::Acquire);
        if now >= until {
            return None;
        }
        let e = self.last_error.load_full()?;
        if !e.is_transient() {
            return None;
        }
        Some((*e).clone().context(format!("failing fast, next attempt in {:.1} s; the last attempt failed", (until - now) as f64 / 1000.0)))
    }

    /// How long callers fail fast after the `failures`-th consecutive failure with no servable token.
    fn negative_window(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.policy.min_negative.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let d = exp.min(self.policy.max_negative).mul_f64(1.0 + fastrand::f64() * 0.2);
        match retry_after.map(|ra| ra.min(self.policy.max_backoff)) {
            Some(ra) if ra > d => ra,
            _ => d,
        }
    }

    fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let retry_after = retry_after.map(|ra| ra.min(self.policy.max_backoff));
        let exp = self.policy.min_backoff.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let mut d = exp.min(self.policy.max_backoff);
        // Keep several attempts inside the remaining validity of the current token.
        if let Some(t) = self.current.load().as_ref() {
            let left = (t.serve_until_ms - self.clock.wall_ms()).max(0) as u64;
            d = d.min(Duration::from_millis(left / 4).max(self.policy.min_backoff));
        }
        let d = d.mul_f64(1.0 + fastrand::f64() * 0.2);
        match retry_after {
            Some(ra) if ra > d => ra,
            _ => d,
        }
    }

    fn make_token(&self, o: Obtained, now: WallMs, origin: Origin) -> Result<Arc<Token>> {
        let Obtained { fetched: f, obtained_ms, adopted } = o;
        // A token minted earlier keeps its schedule (counted from its mint, never from the future).
        let obtained = obtained_ms.map_or(now, |t| t.min(now));
        if f.secret.is_empty() {
            return Err(Error::api("the API returned an empty token"));
        }
        if f.secret.expose().as_bytes().contains(&0) {
            return Err(Error::api("the API returned a token containing a NUL byte"));
        }
        // An absurd claimed expiry (year 9999, `expires_in: 1e300`) is taken as the longest
        // lifetime, so the token is still refreshed on a normal schedule.
        let max = obtained.saturating_add(self.policy.max_lifetime.as_millis() as i64);
        let expiry_ms = if f.expiry_ms > max {
            crate::log_debug!(
                "the credential claims to expire {}; taking it as {} (at most {} s after it was obtained)",
                crate::timefmt::fmt_wall(f.expiry_ms),
                crate::timefmt::fmt_wall(max),
                self.policy.max_lifetime.as_secs()
            );
            max
        } else {
            f.expiry_ms
        };
        let (mut refresh_at, serve_until) = self.policy.schedule(obtained, expiry_ms, fastrand::f64());
        if adopted {
            let grace = now.saturating_add(self.policy.adopted_refresh_delay.as_millis() as i64);
            refresh_at = refresh_at.max(grace).min(serve_until);
        }
        if serve_until <= now {
            return Err(Error::api(format!(
                "the API returned a credential that is already expired or about to expire (expires {}, local clock {}): check the system clock",
                crate::timefmt::fmt_wall(f.expiry_ms),
                crate::timefmt::fmt_wall(now)
            )));
        }
        let serial = self.fetches.load(Ordering::Acquire) + 1;
        Ok(Arc::new(Token {
            secret: f.secret,
            obtained_ms: obtained,
            expiry_ms,
            refresh_at_ms: refresh_at,
            serve_until_ms: serve_until,
            used: AtomicBool::new(origin == Origin::Caller),
            serial,
            adopted,
        }))
    }

    /// Background refresh step. Returns when it next wants to be called (wall ms), or `None` when
    /// the cache is idle (no token, or an expired one nobody asked for since).
    pub fn refresh_if_due<F: Into<Obtained>>(&self, fetch: &dyn Fn() -> Result<F>) -> Option<WallMs> {
        let fetch = || fetch().map(Into::into);
        let fetch: FetchFn<'_> = &fetch;
        let now = self.clock.wall_ms();
        let t = self.current.load_full()?;
        if now >= t.serve_until_ms || !t.used.load(Ordering::Relaxed) {
            // Unused or expired: do not spend API calls; the next reader fetches.
            return if now < t.serve_until_ms { Some(t.serve_until_ms) } else { None };
        }
        let retry = self.next_retry_ms.load(Ordering::Acquire);
        let due = t.refresh_at_ms.max(retry);
        if now < due {
            return Some(due);
        }
        match self.fetch_as(fetch, Some(t.serial), Origin::Refresher) {
            Ok(n) => {
                crate::log_info!(
                    "token refreshed ahead of expiry (serial {}, expires {})",
                    n.serial,
                    crate::timefmt::fmt_wall(n.expiry_ms)
                );
                Some(n.refresh_at_ms)
            }
            Err(e) => {
                crate::log_warn!(
                    "background token refresh failed; still serving the current token until {}: {e}",
                    crate::timefmt::fmt_wall(t.serve_until_ms)
                );
                let next = self.next_retry_ms.load(Ordering::Acquire);
                Some(next.min(t.serve_until_ms))
            }
        }
    }

    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Acquire)
    }
    pub fn last_error(&self) -> Option<Arc<Error>> {
        self.last_error.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::error::ErrorKind;
    use std::sync::atomic::AtomicUsize;

    const T0: i64 = 1_800_000_000_000;

    fn cache(clock: &Arc<ManualClock>) -> TokenCache {
        TokenCache::new(clock.clone(), RefreshPolicy { jitter_fraction: 0.0, ..RefreshPolicy::default() })
    }

    /// A fetch that mints `tok-N` valid for `ttl` and counts calls.
    fn minter(clock: Arc<ManualClock>, ttl: Duration, calls: Arc<AtomicUsize>) -> impl Fn() -> Result<Fetched> {
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Fetched { secret: Secret::new(format!("tok-{n}")), expiry_ms: clock.wall_ms() + ttl.as_millis() as i64 })
        }
    }

    fn read(c: &TokenCache, f: &dyn Fn() -> Result<Fetched>) -> Result<String> {
        c.with_token(f, |t| t.secret.expose().to_string())
    }

    #[test]
    fn schedule_for_one_hour_and_ten_seconds() {
        let p = RefreshPolicy { jitter_fraction: 0.0, ..RefreshPolicy::default() };
        // 1 h: lead min(30 min, 20 min) = 20 min; margin min(3 min, 30 s) = 30 s.
        let (r, s) = p.schedule(0, 3_600_000, 0.0);
        assert_eq!(r, 3_600_000 - 20 * 60_000);
        assert_eq!(s, 3_600_000 - 30_000);
        // 10 s: lead 5 s; margin 0.5 s.
        let (r, s) = p.schedule(0, 10_000, 0.0);
        assert_eq!((r, s), (5_000, 9_500));
        // 3 h: TTL/2 capped at 20 min, but at least 20% of 3 h = 36 min must remain.
        let (r, _) = p.schedule(0, 3 * 3_600_000, 0.0);
        assert_eq!(r, 3 * 3_600_000 - 36 * 60_000);
        // Jitter only moves the refresh earlier, by at most 10% of the lead.
        let pj = RefreshPolicy::default();
        let (r, _) = pj.schedule(0, 3_600_000, 0.999);
        assert!((3_600_000 - 22 * 60_000..3_600_000 - 20 * 60_000).contains(&r), "{r}");
    }

    #[test]
    fn hit_is_served_from_memory_until_the_margin() {
        let clock = ManualClock::new(T0);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cache(&clock);
        let f = minter(clock.clone(), Duration::from_secs(10), calls.clone());
        assert_eq!(read(&c, &f).unwrap(), "tok-1");
        clock.advance(Duration::from_millis(9_499));
        assert_eq!(read(&c, &f).unwrap(), "tok-1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // At the serve margin (0.5 s before expiry) the token is no longer handed out.
        clock.advance(Duration::from_millis(1));
        assert_eq!(read(&c, &f).unwrap(), "tok-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn wall_clock_jump_never_serves_an_expired_token() {
        let clock = ManualClock::new(T0);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cache(&clock);
        let f = minter(clock.clone(), Duration::from_secs(3600), calls.clone());
        assert_eq!(read(&c, &f).unwrap(), "tok-1");
        clock.jump_wall(2 * 3_600_000); // laptop slept for two hours
        assert_eq!(read(&c, &f).unwrap(), "tok-2");
    }

    #[test]
    fn single_flight_under_32_threads() {
        let clock = ManualClock::new(T0);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::new(cache(&clock));
        let gate = Arc::new(std::sync::Barrier::new(32));
        let slow = {
            let clock = clock.clone();
            let calls = calls.clone();
            move || {
                calls.fetch_add(1, Ordering::SeqCst);
                std::thread::yield_now();
                Ok(Fetched { secret: Secret::new("shared"), expiry_ms: clock.wall_ms() + 60_000 })
            }
        };
        let slow = Arc::new(slow);
        let hs: Vec<_> = (0..32)
            .map(|_| {
                let (c, gate, slow) = (c.clone(), gate.clone(), slow.clone());
                std::thread::spawn(move || {
                    gate.wait();
                    read(&c, &*slow).unwrap()
                })
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), "shared");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn waiters_share_a_failure_instead_of_retrying() {
        let clock = ManualClock::new(T0);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::new(cache(&clock));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(parking_lot::Mutex::new(rx));
        let failing = {
            let calls = calls.clone();
            let rx = rx.clone();
            move || -> Result<Fetched> {
                calls.fetch_add(1, Ordering::SeqCst);
                let _ = rx.lock().recv_timeout(Duration::from_secs(5));
                Err(Error::network("connection reset by peer: boom"))
            }
        };
        let failing = Arc::new(failing);
        let first = {
            let (c, f) = (c.clone(), failing.clone());
            std::thread::spawn(move || read(&c, &*f))
        };
        // Wait (bounded) until the first fetch is in flight, then queue 8 more callers behind it.
        for _ in 0..5000 {
            if calls.load(Ordering::SeqCst) == 1 {
                break;
            }
            std::thread::yield_now();
            std::thread::sleep(Duration::from_millis(1));
        }
        let others: Vec<_> = (0..8)
            .map(|_| {
                let (c, f) = (c.clone(), failing.clone());
                std::thread::spawn(move || read(&c, &*f))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        tx.send(()).unwrap();
        assert_eq!(first.join().unwrap().unwrap_err().kind(), ErrorKind::Network);
        for h in others {
            let e = h.join().unwrap().unwrap_err();
            assert!(e.message().contains("boom"));
        }
        // Whether a thread queued behind the fetch or arrived just after it failed (the transient
        // failure is remembered for its backoff window, and the manual clock does not move), none
        // called the API again: deterministic whatever the scheduling.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn refresher_renews_ahead_and_keeps_serving_on_failure() {
        let clock = ManualClock::new(T0);
        let calls = Arc::new(AtomicUsize::new(0));
        let fail = Arc::new(AtomicBool::new(false));
        let c = cache(&clock);
        let f = {
            let (clock, calls, fail) = (clock.clone(), calls.clone(), fail.clone());
            move || {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if fail.load(Ordering::SeqCst) {
                    return Err(Error::network("connection refused"));
                }
                Ok(Fetched { secret: Secret::new(format!("tok-{n}")), expiry_ms: clock.wall_ms() + 10_000 })
            }
        };
        assert_eq!(read(&c, &f).unwrap(), "tok-1");
        // Not due yet: the refresher asks to be called at refresh_at (5 s for a 10 s token).
        assert_eq!(c.refresh_if_due(&f), Some(T0 + 5_000));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(5));
        fail.store(true, Ordering::SeqCst);
        let next = c.refresh_if_due(&f).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(next > T0 + 5_000 && next <= T0 + 9_500, "{next}");
        // The still-valid token keeps being served, without an API call, and the error is kept.
        assert_eq!(read(&c, &f).unwrap(), "tok-1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(c.last_error().unwrap().message().contains("refused"));
        // Backoff: calling again immediately does not hit the API.
        assert_eq!(c.refresh_if_due(&f), Some(next));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Recovery.
        fail.store(false, Ordering::SeqCst);
        clock.advance(Duration::from_millis((next - clock.wall_ms()) as u64));
        c.refresh_if_due(&f).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(c.last_error().is_none());
        assert_eq!(read(&c, &f).unwrap(), "tok-3");
    }

    #[test]
    fn outage_past_expiry_fails_instead_of_serving_expired() {
        let clock = ManualClock::new(T0);
        let fail = Arc::new(AtomicBool::new(false));
        let c = cache(&clock);
        let f = {
            let (clock, fail) = (clock.clone(), fail.clone());
            move || {
                if fail.load(Ordering::SeqCst) {
                    return Err(Error::api("HTTP 503 TEMPORARILY_UNAVAILABLE").with_http(503, None));
                }
                Ok(Fetched { secret: Secret::new("t"), expiry_ms: clock.wall_ms() + 10_000 })
            }
        };
        read(&c, &f).unwrap();
        fail.store(true, Ordering::SeqCst);
        clock.advance(Duration::from_secs(10));
        let e = read(&c, &f).unwrap_err();
        assert_eq!(e.status(), Some(503));
    }

    #[test]
    fn unused_tokens_are_not_renewed() {
        let clock = ManualClock::new(T0);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cache(&clock);
        let f = minter(clock.clone(), Duration::from_secs(10), calls.clone());
        read(&c, &f).unwrap();
        clock.advance(Duration::from_secs(5));
        c.refresh_if_due(&f);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Nobody read tok-2: at its refresh time the refresher lets it lapse.
        clock.advance(Duration::from_secs(5));
        assert_eq!(c.refresh_if_due(&f), Some(clock.wall_ms() + 4_500));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        clock.advance(Duration::from_secs(5));
        assert_eq!(c.refresh_if_due(&f), None);
    }

    #[test]
    fn an_adopted_token_keeps_its_schedule_but_is_not_refreshed_at_once() {
        let clock = ManualClock::new(T0);
        let c = cache(&clock);
        let calls = Arc::new(AtomicUsize::new(0));
        // Minted 50 minutes ago by another process, valid for 10 more: past its refresh point
        // (40 min), before its serve limit (59.5 min).
        let adopted = || {
            Ok(Obtained {
                fetched: Fetched { secret: Secret::new("shared"), expiry_ms: T0 + 600_000 },
                obtained_ms: Some(T0 - 3_000_000),
                adopted: true,
            })
        };
        let t = c.with_token(&adopted, |t| (t.obtained_ms, t.refresh_at_ms, t.serve_until_ms, t.adopted)).unwrap();
        assert_eq!(t, (T0 - 3_000_000, T0 + 2_000, T0 + 600_000 - 30_000, true));
        let f = minter(clock.clone(), Duration::from_secs(3600), calls.clone());
        assert_eq!(c.refresh_if_due(&f), Some(T0 + 2_000));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        clock.advance(Duration::from_secs(2));
        c.refresh_if_due(&f);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A token from the future (a clock step back) counts from now, not from then.
        let c2 = cache(&clock);
        let future = || {
            Ok(Obtained {
                fetched: Fetched { secret: Secret::new("x"), expiry_ms: clock.wall_ms() + 3_600_000 },
                obtained_ms: Some(clock.wall_ms() + 60_000),
                adopted: true,
            })
        };
        assert_eq!(c2.with_token(&future, |t| t.obtained_ms).unwrap(), clock.wall_ms());
    }

    #[test]
    fn a_far_future_expiry_is_served_without_overflow() {
        // An API that claims a token lives "forever" (expiry saturated to i64::MAX) must not
        // overflow the schedule: the token is served and refreshed long before then.
        let clock = ManualClock::new(T0);
        let c = cache(&clock);
        let f = || Ok(Fetched { secret: Secret::new("forever"), expiry_ms: i64::MAX });
        assert_eq!(read(&c, &f).unwrap(), "forever");
        let p = RefreshPolicy::default();
        let (refresh_at, serve_until) = p.schedule(T0, i64::MAX, 0.99);
        assert!(T0 < refresh_at && refresh_at <= serve_until && serve_until < i64::MAX);
        // The opposite extreme (expired before it was obtained) saturates instead of wrapping
        // into the far future: never served, due for refresh at once.
        assert_eq!(p.schedule(i64::MAX, i64::MIN, 0.5), (i64::MIN, i64::MIN));
    }

    /// Issue 13: a credential claiming to live until year 9999 (or `expires_in: 1e300`) is taken
    /// to live one hour, so it is refreshed 40 minutes in instead of never.
    #[test]
    fn an_absurd_expiry_is_clamped_so_the_token_is_still_refreshed() {
        let clock = ManualClock::new(T0);
        let c = cache(&clock);
        let calls = Arc::new(AtomicUsize::new(0));
        let year_9999 = 253_402_300_799_000;
        let f = {
            let calls = calls.clone();
            move || {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Fetched { secret: Secret::new(format!("tok-{n}")), expiry_ms: if n == 1 { year_9999 } else { i64::MAX } })
            }
        };
        assert_eq!(read(&c, &f).unwrap(), "tok-1");
        let t = c.peek().unwrap();
        assert_eq!(t.expiry_ms, T0 + policy::MAX_TOKEN_LIFETIME.as_millis() as i64);
        assert_eq!(t.refresh_at_ms, T0 + 40 * 60_000);
        assert_eq!(c.refresh_if_due(&f), Some(T0 + 40 * 60_000));
        clock.advance(Duration::from_secs(40 * 60));
        assert!(c.refresh_if_due(&f).is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 2, "refreshed on the one-hour schedule");
        assert_eq!(read(&c, &f).unwrap(), "tok-2");
        assert_eq!(c.peek().unwrap().expiry_ms, clock.wall_ms() + 3_600_000);
    }

    #[test]
    fn already_expired_credential_is_an_error() {
        let clock = ManualClock::new(T0);
        let c = cache(&clock);
        let f = || Ok(Fetched { secret: Secret::new("x"), expiry_ms: T0 - 1 });
        let e = read(&c, &f).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api);
        assert!(e.message().contains("already expired"), "{e}");
    }

    /// A fetch that fails with `err` while `fail` is set, counting calls.
    fn flaky(
        clock: Arc<ManualClock>,
        ttl_ms: i64,
        calls: Arc<AtomicUsize>,
        fail: Arc<AtomicBool>,
        err: Error,
    ) -> impl Fn() -> Result<Fetched> {
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if fail.load(Ordering::SeqCst) {
                return Err(err.clone());
            }
            Ok(Fetched { secret: Secret::new(format!("tok-{n}")), expiry_ms: clock.wall_ms() + ttl_ms })
        }
    }

    #[test]
    fn outage_after_expiry_fails_fast_from_the_negative_cache() {
        let clock = ManualClock::new(T0);
        let (calls, fail) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let c = cache(&clock);
        let f =
            flaky(clock.clone(), 10_000, calls.clone(), fail.clone(), Error::api("HTTP 503 TEMPORARILY_UNAVAILABLE").with_http(503, None));
        read(&c, &f).unwrap();
        fail.store(true, Ordering::SeqCst);
        clock.advance(Duration::from_secs(10));
        // The first caller after expiry tries (and fails); the next 100 fail without a request.
        assert_eq!(read(&c, &f).unwrap_err().status(), Some(503));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        for _ in 0..100 {
            let e = read(&c, &f).unwrap_err();
            assert!(e.message().contains("failing fast") && e.message().contains("503"), "{e}");
            assert_eq!(e.status(), Some(503));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // After the window (2 s, +20% jitter) one caller tries again; the window doubles.
        clock.advance(Duration::from_millis(2_401));
        read(&c, &f).unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        clock.advance(Duration::from_millis(2_401));
        read(&c, &f).unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Recovery: the first caller after the window gets a new token.
        fail.store(false, Ordering::SeqCst);
        clock.advance(Duration::from_millis(2_401));
        assert_eq!(read(&c, &f).unwrap(), "tok-4");
        assert!(c.last_error().is_none());
    }

    #[test]
    fn a_failed_background_refresh_makes_callers_fail_fast_after_expiry() {
        let clock = ManualClock::new(T0);
        let (calls, fail) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let c = cache(&clock);
        let f = flaky(clock.clone(), 10_000, calls.clone(), fail.clone(), Error::network("timed out reading response"));
        read(&c, &f).unwrap();
        fail.store(true, Ordering::SeqCst);
        // The refresher's last attempt fails just before the token stops being served...
        clock.advance(Duration::from_millis(9_400));
        c.refresh_if_due(&f);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // ...so callers right after expiry get that failure at once, without a request.
        clock.advance(Duration::from_millis(200));
        let e = read(&c, &f).unwrap_err();
        assert!(e.message().contains("failing fast"), "{e}");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn negative_cache_window_is_capped_and_honours_retry_after() {
        let clock = ManualClock::new(T0);
        let (calls, fail) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(true)));
        let c = cache(&clock);
        let err = Error::api("HTTP 429").with_http(429, None).with_retry_after(Some(Duration::from_secs(7)));
        let f = flaky(clock.clone(), 10_000, calls.clone(), fail.clone(), err);
        read(&c, &f).unwrap_err();
        clock.advance(Duration::from_millis(6_900));
        read(&c, &f).unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "Retry-After 7 s is honoured");
        clock.advance(Duration::from_millis(200));
        read(&c, &f).unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // An absurd Retry-After (an HTTP date years ahead) is capped at max_backoff (60 s).
        let far = Error::api("HTTP 503").with_http(503, None).with_retry_after(Some(Duration::from_secs(10 * 365 * 86_400)));
        let c2 = cache(&clock);
        let calls2 = Arc::new(AtomicUsize::new(0));
        let f2 = flaky(clock.clone(), 10_000, calls2.clone(), fail.clone(), far);
        read(&c2, &f2).unwrap_err();
        clock.advance(Duration::from_secs(61));
        read(&c2, &f2).unwrap_err();
        assert_eq!(calls2.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn permanent_errors_are_not_negative_cached() {
        let clock = ManualClock::new(T0);
        let (calls, fail) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(true)));
        let c = cache(&clock);
        let f = flaky(clock.clone(), 10_000, calls.clone(), fail, Error::auth("HTTP 403 Invalid access token.").with_http(403, None));
        for _ in 0..3 {
            assert_eq!(read(&c, &f).unwrap_err().kind(), ErrorKind::Auth);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn explicit_refreshes_always_mint_at_most_once_per_interval() {
        let clock = ManualClock::new(T0);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cache(&clock);
        let f = minter(clock.clone(), Duration::from_secs(3600), calls.clone());
        read(&c, &f).unwrap();
        let t0 = clock.monotonic();
        // Every call returns a token minted after it began; back-to-back calls wait out the
        // interval (a runaway loop mints once per second, not as fast as it spins).
        for n in 2..=5 {
            assert_eq!(c.force_refresh(&f, None).unwrap().secret.expose(), format!("tok-{n}"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert!(clock.monotonic() - t0 >= Duration::from_secs(3), "{:?}", clock.monotonic() - t0);
    }

    #[test]
    fn rejection_refreshes_are_rate_limited() {
        let clock = ManualClock::new(T0);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cache(&clock);
        let f = minter(clock.clone(), Duration::from_secs(3600), calls.clone());
        read(&c, &f).unwrap();
        let first = c.peek().unwrap();
        // The first rejection mints at once (a rejected token must be replaced)...
        let second = c.force_refresh(&f, Some(first.serial)).unwrap();
        assert_eq!(second.secret.expose(), "tok-2");
        // ...late reports of the old token's rejection get the token just minted...
        for _ in 0..50 {
            assert_eq!(c.force_refresh(&f, Some(first.serial)).unwrap().secret.expose(), "tok-2");
        }
        // ...and the new token rejected moments later is an error, not a loop of mints.
        assert_eq!(c.force_refresh(&f, Some(second.serial)).unwrap_err().kind(), ErrorKind::Auth);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        clock.advance(Duration::from_secs(1));
        assert_eq!(c.force_refresh(&f, Some(second.serial)).unwrap().secret.expose(), "tok-3");
    }

    #[test]
    fn waiting_behind_a_stuck_fetch_is_bounded() {
        let clock = ManualClock::new(T0);
        let policy = RefreshPolicy { jitter_fraction: 0.0, max_wait: Duration::from_millis(200), ..RefreshPolicy::default() };
        let c = Arc::new(TokenCache::new(clock.clone(), policy));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(parking_lot::Mutex::new(rx));
        let started = Arc::new(AtomicBool::new(false));
        let stuck = {
            let (clock, rx, started) = (clock.clone(), rx.clone(), started.clone());
            move || -> Result<Fetched> {
                started.store(true, Ordering::SeqCst);
                let _ = rx.lock().recv_timeout(Duration::from_secs(10));
                Ok(Fetched { secret: Secret::new("late"), expiry_ms: clock.wall_ms() + 60_000 })
            }
        };
        let first = {
            let c = c.clone();
            std::thread::spawn(move || read(&c, &stuck))
        };
        while !started.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let t0 = crate::clock::Stopwatch::start();
        let never = || -> Result<Fetched> { panic!("must not fetch") };
        let e = read(&c, &never).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_eq!(e.kind(), ErrorKind::Network);
        assert!(e.message().contains("waiting for the token request already in progress"), "{e}");
        tx.send(()).unwrap();
        assert_eq!(first.join().unwrap().unwrap(), "late");
    }

    #[test]
    fn fetches_run_in_a_foreground_or_background_http_scope() {
        use crate::deadline::{current_purpose, Purpose};
        let clock = ManualClock::new(T0);
        let c = cache(&clock);
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let f = {
            let (clock, seen) = (clock.clone(), seen.clone());
            move || {
                seen.lock().push(current_purpose());
                Ok(Fetched { secret: Secret::new("t"), expiry_ms: clock.wall_ms() + 10_000 })
            }
        };
        read(&c, &f).unwrap();
        clock.advance(Duration::from_secs(5));
        c.refresh_if_due(&f).unwrap();
        assert_eq!(*seen.lock(), vec![Purpose::Foreground, Purpose::Background]);
    }

    #[test]
    fn get_fresh_refreshes_in_the_stale_window_and_falls_back() {
        let clock = ManualClock::new(T0);
        let calls = Arc::new(AtomicUsize::new(0));
        let fail = Arc::new(AtomicBool::new(false));
        let c = TokenCache::new(clock.clone(), RefreshPolicy { jitter_fraction: 0.0, ..RefreshPolicy::workspace_token() });
        let f = {
            let (clock, calls, fail) = (clock.clone(), calls.clone(), fail.clone());
            move || {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if fail.load(Ordering::SeqCst) {
                    return Err(Error::network("reset"));
                }
                Ok(Fetched { secret: Secret::new(format!("ws-{n}")), expiry_ms: clock.wall_ms() + 3_600_000 })
            }
        };
        assert_eq!(c.get_fresh(&f).unwrap().secret.expose(), "ws-1");
        clock.advance(Duration::from_secs(39 * 60));
        assert_eq!(c.get_fresh(&f).unwrap().secret.expose(), "ws-1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(60));
        fail.store(true, Ordering::SeqCst);
        assert_eq!(c.get_fresh(&f).unwrap().secret.expose(), "ws-1");
        fail.store(false, Ordering::SeqCst);
        clock.advance(Duration::from_secs(120));
        assert_eq!(c.get_fresh(&f).unwrap().secret.expose(), "ws-3");
    }
}
