//! The refresh schedule: when to replace a token and when to stop serving it, as fractions of its
//! lifetime; backoff and negative-cache windows; how long callers wait for each other.

use crate::clock::WallMs;
use std::time::Duration;

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
    /// Negative cache when no token can be served: after a transient failure, callers fail fast
    /// for this long (first value, doubling up to the cap; at least the server's `Retry-After`,
    /// itself capped at `max_backoff`).
    pub min_negative: Duration,
    pub max_negative: Duration,
    /// Longest a caller waits (real time) for a fetch that another thread has in flight.
    pub max_wait: Duration,
    /// The total deadline of a foreground operation (the HTTP client's): a caller inside one (a
    /// blocked `PQconnectdb`: discovery, identity and mint share it) waits for another thread's
    /// fetch only as long as its own operation has left.
    pub foreground_deadline: Duration,
    /// Forced refreshes mint at most once per this interval.
    pub min_forced_interval: Duration,
    /// A token taken from the shared cache that is already due is refreshed no sooner than this
    /// after it was taken: a short-lived process (psql, a cron job) exits before that instead of
    /// starting a mint it will not live to finish; a long-lived one renews it for everyone.
    pub adopted_refresh_delay: Duration,
    /// The longest lifetime a token is taken to have, whatever expiry the server claims (year
    /// 9999, `expires_in: 1e300`): so such a token is still refreshed on a normal schedule.
    pub max_lifetime: Duration,
}

/// Lakebase database credentials and Databricks OAuth tokens last one hour; Azure AD tokens 60 to
/// 90 minutes. A longer claimed lifetime is taken as one hour: at worst a refresh comes early.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

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
            min_negative: Duration::from_secs(2),
            max_negative: Duration::from_secs(15),
            max_wait: Duration::from_secs(20),
            foreground_deadline: crate::deadline::FOREGROUND_DEADLINE,
            min_forced_interval: Duration::from_secs(1),
            adopted_refresh_delay: Duration::from_secs(2),
            max_lifetime: MAX_TOKEN_LIFETIME,
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
        let ttl = expiry.saturating_sub(now).max(0) as f64;
        let half = (ttl / 2.0).min(self.max_half_lead.as_millis() as f64);
        let lead = half.max(ttl * self.min_lead_fraction);
        let lead = lead + lead * self.jitter_fraction * jitter.clamp(0.0, 1.0);
        let margin = (ttl * self.serve_margin_fraction).min(self.max_serve_margin.as_millis() as f64);
        let serve_until = expiry.saturating_sub(margin.ceil() as i64);
        let refresh_at = expiry.saturating_sub(lead.ceil() as i64).min(serve_until);
        (refresh_at, serve_until)
    }
}
