//! Connecting to a database that may be waking up: Lakebase Autoscaling endpoints scale to zero,
//! and the first connection after that can be refused, time out, or be answered with `57P03 the
//! database system is starting up`. Which failed connection attempts are worth repeating, and
//! when: a bounded backoff inside one total budget. Never after the server asked for the
//! password (authentication happened, or a "does not exist" answer came after it), never on
//! other server answers (TLS verification, `pg_hba.conf`, unknown role or database).
//!
//! The policy is pure (time through a [`Clock`]) so that every connect path can share it: libpq
//! injection and the `lakebase_PQ*` wrappers (from libpq's error text, which carries no SQLSTATE),
//! and the bindings and the proxy (which see SQLSTATEs: [`classify_sqlstate`]).
//!
//! Settings: `LAKEBASE_CONNECT_RETRY=<seconds>` is the total budget (`0`/`off` disables retries);
//! when it is unset the budget is the connection's `connect_timeout` (libpq's, incl.
//! `PGCONNECT_TIMEOUT`), else [`DEFAULT_BUDGET`].

use crate::clock::Clock;
use std::time::Duration;

/// Total retry budget when neither `LAKEBASE_CONNECT_RETRY` nor `connect_timeout` is set.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(10);
/// The environment variable that sets the budget (seconds; `0`/`off` = no retries).
pub const ENV: &str = "LAKEBASE_CONNECT_RETRY";
/// The longest budget honoured (an hour).
const MAX_BUDGET: Duration = Duration::from_secs(3600);
/// libpq's shortest effective `connect_timeout` (smaller positive values are raised to 2 s).
pub const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a failed connection attempt tells about the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No connection, a dropped connection, a time-out: the endpoint may be waking up.
    Transport,
    /// `57P03`: the server is starting up (or not yet accepting connections).
    StartingUp,
    /// The server answered and said no (authentication, unknown database or role, TLS
    /// verification, `pg_hba.conf`, ...), or the answer is not understood: not retried.
    Permanent,
}

impl Failure {
    /// Whether another attempt may succeed.
    pub fn is_retryable(self) -> bool {
        !matches!(self, Failure::Permanent)
    }
}

/// A failed login classified by SQLSTATE (drivers that expose it): `57P03` is starting up,
/// class `08` (connection exception) is transport, everything else permanent.
pub fn classify_sqlstate(code: &str) -> Failure {
    match code {
        "57P03" => Failure::StartingUp,
        c if c.starts_with("08") => Failure::Transport,
        _ => Failure::Permanent,
    }
}

/// Texts that mean the server answered with a refusal that another attempt will not change. They
/// win over everything else in the message (libpq concatenates the errors of every host it tried).
const PERMANENT: &[&str] = &[
    "authentication failed",
    "does not exist",
    "failed to decode token",
    "did not match the security label",
    "certificate",
    "pg_hba.conf",
    "no password supplied",
    "liblakebase:",
    "server does not support ssl",
    "invalid response to ssl negotiation",
    "invalid connection option",
    "could not translate host name",
];

/// `57P03` texts (the server's own words).
const STARTING_UP: &[&str] = &["the database system is starting up", "the database system is not yet accepting connections", "57p03"];

/// libpq's and the C library's words for a transport failure.
const TRANSPORT: &[&str] = &[
    "connection refused",
    "timeout expired",
    "connection timed out",
    "server closed the connection unexpectedly",
    "connection reset",
    "could not receive data from server",
    "could not send data to server",
    "could not send ssl negotiation packet",
    "could not send startup packet",
    "ssl syscall error",
    "eof detected",
    "no route to host",
    "network is unreachable",
    "temporary failure in name resolution",
];

/// A failed libpq connection classified from what libpq exposes: whether the server asked for
/// the password (`PQconnectionUsedPassword`) and the error text (`PQerrorMessage`, which carries
/// no SQLSTATE). After a password request nothing is retried.
pub fn classify_libpq(message: &str, password_asked: bool) -> Failure {
    if password_asked {
        return Failure::Permanent;
    }
    let m = message.to_ascii_lowercase();
    if PERMANENT.iter().any(|p| m.contains(p)) {
        Failure::Permanent
    } else if STARTING_UP.iter().any(|p| m.contains(p)) {
        Failure::StartingUp
    } else if TRANSPORT.iter().any(|p| m.contains(p)) {
        Failure::Transport
    } else {
        Failure::Permanent
    }
}

/// How long, in total, failed connection attempts are repeated, and how far apart.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Total time from the first attempt after which no new attempt starts (zero: never retry).
    pub budget: Duration,
    /// Delay before the second attempt; doubles per attempt.
    pub first_delay: Duration,
    /// Largest delay between two attempts.
    pub max_delay: Duration,
    /// Random extra delay, as a fraction of each delay (0.2 = up to 20% more).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { budget: DEFAULT_BUDGET, first_delay: Duration::from_millis(250), max_delay: Duration::from_secs(2), jitter: 0.2 }
    }
}

/// A `connect_timeout` value as libpq reads it: whole seconds; `None` for unset, zero, negative or
/// unparsable (libpq: wait indefinitely).
pub fn parse_connect_timeout(v: &str) -> Option<Duration> {
    let n: i64 = v.trim().parse().ok()?;
    (n > 0).then(|| Duration::from_secs(n as u64).max(MIN_ATTEMPT_TIMEOUT))
}

impl RetryPolicy {
    /// No retries.
    pub fn disabled() -> Self {
        RetryPolicy { budget: Duration::ZERO, ..Self::default() }
    }

    /// The policy from `LAKEBASE_CONNECT_RETRY` (`setting`) and the connection's
    /// `connect_timeout`: the setting wins (`0`, `off`, `false`, `no` disable retries; N = N
    /// seconds); else the connect timeout; else [`DEFAULT_BUDGET`]. An unreadable setting is
    /// ignored (with the default).
    pub fn from_settings(setting: Option<&str>, connect_timeout: Option<&str>) -> Self {
        if let Some(s) = setting.map(str::trim).filter(|s| !s.is_empty()) {
            match s.to_ascii_lowercase().as_str() {
                "0" | "off" | "false" | "no" => return Self::disabled(),
                v => match v.parse::<u64>() {
                    Ok(n) => return RetryPolicy { budget: Duration::from_secs(n).min(MAX_BUDGET), ..Self::default() },
                    Err(_) => crate::log_warn!("{ENV}={s:?} is not a number of seconds; using the default"),
                },
            }
        }
        let budget = connect_timeout.and_then(parse_connect_timeout).unwrap_or(DEFAULT_BUDGET).min(MAX_BUDGET);
        RetryPolicy { budget, ..Self::default() }
    }

    /// The delay before the next attempt after `failed_attempts` (≥ 1) failed ones, the last
    /// failing with `f`, `elapsed` after the first began; `None` to give up (a permanent failure,
    /// or no time left for another attempt). Stateless: for callers that keep the count
    /// themselves (the bindings, through `lakebase_connect_retry_delay`).
    pub fn next_delay(&self, f: Failure, failed_attempts: u32, elapsed: Duration) -> Option<Duration> {
        if !f.is_retryable() {
            return None;
        }
        let exp = self.first_delay.saturating_mul(1u32 << failed_attempts.max(1).saturating_sub(1).min(16));
        let base = exp.min(self.max_delay);
        let delay = base.mul_f64(1.0 + fastrand::f64() * self.jitter.max(0.0));
        (delay < self.budget.saturating_sub(elapsed)).then_some(delay)
    }

    /// The policy of this process's environment for a connection with `connect_timeout`.
    pub fn from_env(connect_timeout: Option<&str>) -> Self {
        Self::from_settings(std::env::var(ENV).ok().as_deref(), connect_timeout)
    }

    /// Start counting: call before the first attempt.
    pub fn start<'c>(&self, clock: &'c dyn Clock) -> Retrying<'c> {
        Retrying { policy: self.clone(), clock, start: clock.monotonic(), attempts: 0 }
    }
}

/// One connect operation under a [`RetryPolicy`].
pub struct Retrying<'c> {
    policy: RetryPolicy,
    clock: &'c dyn Clock,
    start: Duration,
    attempts: u32,
}

impl Retrying<'_> {
    /// Time left in the budget.
    pub fn left(&self) -> Duration {
        self.policy.budget.saturating_sub(self.clock.monotonic().saturating_sub(self.start))
    }

    /// Attempts recorded so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// A timeout for the next attempt when the caller set none: a third of the budget (so that
    /// an attempt that stalls — a front that accepts and never answers — leaves time for more),
    /// no more than what is left, at least libpq's minimum; whole seconds, rounded up.
    pub fn attempt_timeout(&self) -> Duration {
        let d = (self.policy.budget / 3).min(self.left());
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        Duration::from_secs(secs).max(MIN_ATTEMPT_TIMEOUT)
    }

    /// After a failed attempt: the delay before the next one, or `None` to give up (a permanent
    /// failure, or no time left for another attempt).
    pub fn after_failure(&mut self, f: Failure) -> Option<Duration> {
        self.attempts += 1;
        self.policy.next_delay(f, self.attempts, self.clock.monotonic().saturating_sub(self.start))
    }

    /// Wait `d` on the policy's clock.
    pub fn sleep(&self, d: Duration) {
        self.clock.sleep(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn libpq_messages() {
        use Failure::*;
        let c = |m: &str| classify_libpq(m, false);
        assert_eq!(c("connection to server at \"h\" (127.0.0.1), port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?"), Transport);
        assert_eq!(c("connection to server at \"h\" (127.0.0.1), port 5432 failed: timeout expired"), Transport);
        assert_eq!(
            c("connection to server at \"h\" failed: server closed the connection unexpectedly\n\tThis probably means ..."),
            Transport
        );
        assert_eq!(c("connection to server at \"h\" failed: SSL SYSCALL error: EOF detected"), Transport);
        assert_eq!(c("connection to server at \"h\" failed: FATAL:  the database system is starting up"), StartingUp);
        assert_eq!(
            c("FATAL:  the database system is not yet accepting connections\nDETAIL:  Consistent recovery state has not been yet reached."),
            StartingUp
        );
        // Server refusals and TLS verification failures are final.
        assert_eq!(c("connection to server at \"h\" failed: FATAL:  database \"x\" does not exist"), Permanent);
        assert_eq!(c("connection to server at \"h\" failed: server certificate for \"h\" does not match host name \"x\""), Permanent);
        assert_eq!(c("connection to server at \"h\" failed: SSL error: certificate verify failed"), Permanent);
        assert_eq!(c("connection to server at \"h\" failed: FATAL:  no pg_hba.conf entry for host"), Permanent);
        assert_eq!(c("could not translate host name \"nope\" to address: Name or service not known"), Permanent);
        assert_eq!(c("something nobody has seen before"), Permanent);
        assert_eq!(c(""), Permanent);
        // Several hosts: an authentication failure anywhere in the text wins over a refused host.
        assert_eq!(c("connection to server at \"a\" failed: FATAL:  password authentication failed for user \"u\"\nconnection to server at \"b\" failed: Connection refused"), Permanent);
        // After a password request nothing is retried, whatever the text says.
        assert_eq!(classify_libpq("server closed the connection unexpectedly", true), Permanent);
        assert_eq!(classify_libpq("FATAL:  Failed to decode token for role \"alice\"", true), Permanent);
    }

    #[test]
    fn sqlstates() {
        assert_eq!(classify_sqlstate("57P03"), Failure::StartingUp);
        assert_eq!(classify_sqlstate("08006"), Failure::Transport);
        assert_eq!(classify_sqlstate("08001"), Failure::Transport);
        for code in ["28P01", "28000", "3D000", "53300", "XX000", ""] {
            assert_eq!(classify_sqlstate(code), Failure::Permanent, "{code}");
        }
    }

    #[test]
    fn settings() {
        let p = |s: Option<&str>, t: Option<&str>| RetryPolicy::from_settings(s, t).budget;
        assert_eq!(p(None, None), DEFAULT_BUDGET);
        assert_eq!(p(None, Some("30")), Duration::from_secs(30));
        assert_eq!(p(None, Some("1")), Duration::from_secs(2), "libpq's minimum");
        assert_eq!(p(None, Some("0")), DEFAULT_BUDGET, "0 = wait indefinitely: the default budget");
        assert_eq!(p(None, Some("-3")), DEFAULT_BUDGET);
        assert_eq!(p(None, Some("x")), DEFAULT_BUDGET);
        assert_eq!(p(Some("4"), Some("30")), Duration::from_secs(4), "the setting wins");
        for off in ["0", "off", "OFF", "false", "no"] {
            assert_eq!(p(Some(off), Some("30")), Duration::ZERO, "{off}");
        }
        assert_eq!(p(Some("nonsense"), Some("7")), Duration::from_secs(7));
        assert_eq!(p(Some(""), None), DEFAULT_BUDGET);
        assert_eq!(p(Some("99999999"), None), MAX_BUDGET);
    }

    #[test]
    fn backoff_is_bounded_by_the_budget() {
        let clock = ManualClock::new(0);
        let policy = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
        let mut r = policy.start(&*clock);
        let mut delays = Vec::new();
        while let Some(d) = r.after_failure(Failure::Transport) {
            delays.push(d);
            clock.advance(d + Duration::from_millis(100)); // the attempt itself took 100 ms
        }
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(&ms[..4], &[250, 500, 1000, 2000]);
        assert!(ms[4..].iter().all(|&d| d == 2000));
        // Every attempt started within the budget, and the loop ended because time ran out.
        assert!(clock.monotonic() <= DEFAULT_BUDGET + Duration::from_secs(2), "{:?}", clock.monotonic());
        assert!(r.left() < Duration::from_secs(2));
        assert_eq!(r.attempts() as usize, delays.len() + 1);
    }

    #[test]
    fn permanent_failures_and_a_zero_budget_stop_at_once() {
        let clock = ManualClock::new(0);
        let mut r = RetryPolicy::default().start(&*clock);
        assert_eq!(r.after_failure(Failure::Permanent), None);
        let mut r = RetryPolicy::disabled().start(&*clock);
        assert_eq!(r.after_failure(Failure::StartingUp), None);
        let mut r = RetryPolicy::default().start(&*clock);
        let d = r.after_failure(Failure::StartingUp).unwrap();
        assert!(d >= Duration::from_millis(250) && d <= Duration::from_millis(300), "{d:?}");
    }

    #[test]
    fn attempt_timeouts_are_a_third_of_the_budget_in_whole_seconds() {
        let clock = ManualClock::new(0);
        let r = RetryPolicy::default().start(&*clock);
        assert_eq!(r.attempt_timeout(), Duration::from_secs(4), "10 s / 3, rounded up");
        clock.advance(Duration::from_millis(7500));
        assert_eq!(r.attempt_timeout(), Duration::from_secs(3), "2.5 s left, rounded up");
        clock.advance(Duration::from_secs(10));
        assert_eq!(r.attempt_timeout(), MIN_ATTEMPT_TIMEOUT);
        let r = RetryPolicy::from_settings(Some("60"), None).start(&*clock);
        assert_eq!(r.attempt_timeout(), Duration::from_secs(20));
    }
}
