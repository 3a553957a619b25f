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

/// What a fetch returns: the secret and its absolute expiry.
#[derive(Debug)]
pub struct Fetched {
    pub secret: Secret,
    pub expiry_ms: WallMs,
}

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
    pub fn lifetime_ms(&self) -> i64 {
        self.expiry_ms - self.obtained_ms
    }
}

/// When to refresh and when to stop serving, as fractions of the token's lifetime.
#[derive(Clone, Debug)]
pub struct RefreshPolicy {
    /// Upper bound of the `TTL/2` lead (20 minutes, as the Databricks SDKs).
    pub max_half_lead: Duration,
    /// Refresh no later than when this fraction of the lifetime remains.
    pub min_lead_fraction: f64,
    /// Jitter: up to this fraction of the lead, only ever making the refresh earlier.
    pub jitter_fraction: f64,
    /// Stop serving `min(serve_margin_fraction * TTL, max_serve_margin)` before expiry.
    pub serve_margin_fraction: f64,
    pub max_serve_margin: Duration,
    /// Backoff after a failed refresh: first delay, doubling, capped.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            max_half_lead: Duration::from_secs(20 * 60),
            min_lead_fraction: 0.2,
            jitter_fraction: 0.1,
            serve_margin_fraction: 0.05,
            max_serve_margin: Duration::from_secs(30),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RefreshPolicy {
    /// Workspace OAuth tokens: like the SDKs, never use one within 40 s of its expiry
    /// (Azure rejects tokens that expire in 30 s or less).
    pub fn workspace_token() -> Self {
        RefreshPolicy { max_serve_margin: Duration::from_secs(40), serve_margin_fraction: 0.1, ..Self::default() }
    }

    /// `(refresh_at, serve_until)` for a token obtained at `now` that expires at `expiry`;
    /// `jitter` in `[0, 1)` scales the random part.
    pub fn schedule(&self, now: WallMs, expiry: WallMs, jitter: f64) -> (WallMs, WallMs) {
        let ttl = (expiry - now).max(0) as f64;
        let half = (ttl / 2.0).min(self.max_half_lead.as_millis() as f64);
        let lead = half.max(ttl * self.min_lead_fraction);
        let lead = lead + lead * self.jitter_fraction * jitter.clamp(0.0, 1.0);
        let margin = (ttl * self.serve_margin_fraction).min(self.max_serve_margin.as_millis() as f64);
        let serve_until = expiry - margin.ceil() as i64;
        let refresh_at = (expiry - lead.ceil() as i64).min(serve_until);
        (refresh_at, serve_until)
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
    policy: RefreshPolicy,
    /// Single-flight lock, one per fork generation.
    flight: ForkLocal<parking_lot::Mutex<()>>,
    /// Completed fetch attempts (success or failure).
    attempts: AtomicU64,
    /// Successful fetches.
    fetches: AtomicU64,
    failures: AtomicU32,
    next_retry_ms: AtomicI64,
    last_error: ArcSwapOption<Error>,
}

impl TokenCache {
    pub fn new(clock: SharedClock, policy: RefreshPolicy) -> Self {
        TokenCache {
            current: ArcSwapOption::empty(),
            clock,
            policy,
            flight: ForkLocal::new(|| parking_lot::Mutex::new(())),
            attempts: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            next_retry_ms: AtomicI64::new(i64::MIN),
            last_error: ArcSwapOption::empty(),
        }
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The hot path. Calls `f` with a servable token, fetching (single-flight) when there is none.
    #[inline]
    pub fn with_token<R>(&self, fetch: &dyn Fn() -> Result<Fetched>, f: impl FnOnce(&Token) -> R) -> Result<R> {
        let guard: Guard<Option<Arc<Token>>> = self.current.load();
        if let Some(t) = guard.as_ref() {
            if self.clock.wall_ms() < t.serve_until_ms {
                t.mark_used();
                return Ok(f(t));
            }
        }
        drop(guard);
        let t = self.fetch_blocking(fetch, None)?;
        t.mark_used();
        Ok(f(&t))
    }

    /// The current token if it may still be served, without fetching.
    pub fn peek(&self) -> Option<Arc<Token>> {
        let t = self.current.load_full()?;
        (self.clock.wall_ms() < t.serve_until_ms).then_some(t)
    }

    /// Like [`with_token`](Self::with_token) but also refreshes synchronously once the token is
    /// past its refresh time, falling back to the still-valid token if that refresh fails.
    /// For tokens with no background refresher (workspace OAuth tokens).
    pub fn get_fresh(&self, fetch: &dyn Fn() -> Result<Fetched>) -> Result<Arc<Token>> {
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
    pub fn force_refresh(&self, fetch: &dyn Fn() -> Result<Fetched>, serial: Option<u64>) -> Result<Arc<Token>> {
        let serial = serial.or_else(|| self.current.load().as_ref().map(|t| t.serial)).unwrap_or(0);
        self.fetch_blocking(fetch, Some(serial))
    }

    /// Single-flight fetch. `replace`: fetch even if a servable token exists, unless it is newer
    /// than this serial.
    fn fetch_blocking(&self, fetch: &dyn Fn() -> Result<Fetched>, replace: Option<u64>) -> Result<Arc<Token>> {
        self.fetch_as(fetch, replace, Origin::Caller)
    }

    fn fetch_as(&self, fetch: &dyn Fn() -> Result<Fetched>, replace: Option<u64>, origin: Origin) -> Result<Arc<Token>> {
        let seen_attempts = self.attempts.load(Ordering::Acquire);
        let lock = self.flight.get();
        let _g = lock.lock();
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
        let result = fetch();
        let now = self.clock.wall_ms();
        let result = result.and_then(|f| self.make_token(f, now, origin));
        match result {
            Ok(t) => {
                self.current.store(Some(t.clone()));
                self.fetches.fetch_add(1, Ordering::AcqRel);
                self.failures.store(0, Ordering::Release);
                self.next_retry_ms.store(i64::MIN, Ordering::Release);
                self.last_error.store(None);
                self.attempts.fetch_add(1, Ordering::AcqRel);
                Ok(t)
            }
            Err(e) => {
                let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                let delay = self.backoff(n, e.retry_after());
                self.next_retry_ms.store(now + delay.as_millis() as i64, Ordering::Release);
                self.last_error.store(Some(Arc::new(e.clone())));
                self.attempts.fetch_add(1, Ordering::AcqRel);
                Err(e)
            }
        }
    }

    fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
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

    fn make_token(&self, f: Fetched, now: WallMs, origin: Origin) -> Result<Arc<Token>> {
        if f.secret.is_empty() {
            return Err(Error::api("the API returned an empty token"));
        }
        if f.secret.expose().as_bytes().contains(&0) {
            return Err(Error::api("the API returned a token containing a NUL byte"));
        }
        let (refresh_at, serve_until) = self.policy.schedule(now, f.expiry_ms, fastrand::f64());
        if serve_until <= now {
            return Err(Error::api(format!(
                "the API returned a credential that is already expired or about to expire (expires {}, local clock {}): check the system clock",
                fmt_wall(f.expiry_ms),
                fmt_wall(now)
            )));
        }
        let serial = self.fetches.load(Ordering::Acquire) + 1;
        Ok(Arc::new(Token {
            secret: f.secret,
            obtained_ms: now,
            expiry_ms: f.expiry_ms,
            refresh_at_ms: refresh_at,
            serve_until_ms: serve_until,
            used: AtomicBool::new(origin == Origin::Caller),
            serial,
        }))
    }

    /// Background refresh step. Returns when it next wants to be called (wall ms), or `None` when
    /// the cache is idle (no token, or an expired one nobody asked for since).
    pub fn refresh_if_due(&self, fetch: &dyn Fn() -> Result<Fetched>) -> Option<WallMs> {
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
                crate::log_info!("token refreshed ahead of expiry (serial {}, expires {})", n.serial, fmt_wall(n.expiry_ms));
                Some(n.refresh_at_ms)
            }
            Err(e) => {
                crate::log_warn!("background token refresh failed; still serving the current token until {}: {e}", fmt_wall(t.serve_until_ms));
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
    pub fn current(&self) -> Option<Arc<Token>> {
        self.current.load_full()
    }
}

pub fn fmt_wall(ms: WallMs) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms}ms"))
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
        assert!(r < 3_600_000 - 20 * 60_000 && r >= 3_600_000 - 22 * 60_000, "{r}");
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
                Err(Error::api("HTTP 500 INTERNAL_ERROR: boom"))
            }
        };
        let failing = Arc::new(failing);
        let first = {
            let (c, f) = (c.clone(), failing.clone());
            std::thread::spawn(move || read(&c, &*f))
        };
        // Wait (bounded) until the first fetch is in flight, then queue 8 more callers behind it.
        for _ in 0..5000 {
            if calls.load(Ordering::SeqCst) == 1 { break; }
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
        assert_eq!(first.join().unwrap().unwrap_err().kind(), ErrorKind::Api);
        for h in others {
            let e = h.join().unwrap().unwrap_err();
            assert!(e.message().contains("boom"));
        }
        // Threads that arrived while the first fetch was running did not call the API again.
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
    fn already_expired_credential_is_an_error() {
        let clock = ManualClock::new(T0);
        let c = cache(&clock);
        let f = || Ok(Fetched { secret: Secret::new("x"), expiry_ms: T0 - 1 });
        let e = read(&c, &f).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api);
        assert!(e.message().contains("already expired"), "{e}");
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
                if fail.load(Ordering::SeqCst) { return Err(Error::network("reset")); }
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
