//! Name resolution bounded by time. `getaddrinfo` cannot be cancelled and follows resolv.conf's
//! own timeout/attempts (30 s and more with a dead name server), so host names are resolved on a
//! short-lived helper thread that the caller stops waiting for when its time is up. Used by the
//! HTTP client (through ureq's resolver hook) and by the `lakebase doctor` wire client.

use crate::deadline::FOREGROUND_DEADLINE;
use std::cell::Cell;
use std::time::Duration;

thread_local! {
    /// How long the resolver may take on this thread: the current attempt's timeout.
    static DNS_BUDGET: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// Sets [`DNS_BUDGET`] for one attempt; restores "none" when dropped.
pub(crate) struct DnsBudget;

impl DnsBudget {
    pub(crate) fn set(d: Duration) -> DnsBudget {
        let _ = DNS_BUDGET.try_with(|b| b.set(Some(d)));
        DnsBudget
    }
}

impl Drop for DnsBudget {
    fn drop(&mut self) {
        let _ = DNS_BUDGET.try_with(|b| b.set(None));
    }
}

/// At most this many lookups left running by callers that stopped waiting; past it, new lookups
/// fail at once instead of piling up threads behind a dead name server.
const MAX_ABANDONED_LOOKUPS: usize = 4;
static LOOKUPS_IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// ureq's resolver with a time limit (see the module documentation).
pub(crate) struct BoundedResolver;

impl ureq::Resolver for BoundedResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<std::net::SocketAddr>> {
        let budget = DNS_BUDGET.try_with(|b| b.get()).ok().flatten().unwrap_or(FOREGROUND_DEADLINE);
        resolve_within(netloc, budget, |n| std::net::ToSocketAddrs::to_socket_addrs(n).map(|i| i.collect()))
    }
}

/// Resolve `netloc` (`host:port`) with `lookup`, giving up after `budget`. Literal addresses are
/// parsed in place; names are looked up on a helper thread (signals blocked), or in place when no
/// thread can be started.
pub fn resolve_within(
    netloc: &str,
    budget: Duration,
    lookup: impl FnOnce(&str) -> std::io::Result<Vec<std::net::SocketAddr>> + Send + 'static,
) -> std::io::Result<Vec<std::net::SocketAddr>> {
    use std::sync::atomic::Ordering;
    if let Ok(a) = netloc.parse::<std::net::SocketAddr>() {
        return Ok(vec![a]);
    }
    let host = netloc.rsplit_once(':').map_or(netloc, |(h, _)| h).to_string();
    if LOOKUPS_IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_ABANDONED_LOOKUPS {
        LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("DNS lookup of {host} not started: {MAX_ABANDONED_LOOKUPS} earlier lookups are still hanging"),
        ));
    }
    /// Counts the lookup out when it ends, even by a panic.
    struct InFlight;
    impl Drop for InFlight {
        fn drop(&mut self) {
            LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let (name, in_flight) = (netloc.to_string(), InFlight);
    let rx = match crate::sync::helper("lakebase-dns", move || {
        let _in_flight = in_flight;
        lookup(&name)
    }) {
        Ok(rx) => rx,
        Err(in_place) => return in_place(),
    };
    match rx.recv_timeout(budget) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("DNS lookup of {host} timed out after {:.1} s", budget.as_secs_f64()),
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(std::io::Error::other(format!("DNS lookup of {host} failed"))),
    }
}

#[cfg(test)]
mod dns_tests {
    use super::resolve_within;
    use std::io::ErrorKind;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn literal_addresses_need_no_lookup() {
        let r = resolve_within("127.0.0.1:443", Duration::ZERO, |_| panic!("looked up")).unwrap();
        assert_eq!(r, vec!["127.0.0.1:443".parse().unwrap()]);
        let r = resolve_within("[::1]:8443", Duration::ZERO, |_| panic!("looked up")).unwrap();
        assert_eq!(r, vec!["[::1]:8443".parse().unwrap()]);
    }

    #[test]
    fn lookup_results_and_errors_pass_through() {
        let want: Vec<std::net::SocketAddr> = vec!["10.1.2.3:443".parse().unwrap()];
        let w2 = want.clone();
        let r = resolve_within("ws.example.com:443", Duration::from_secs(30), move |n| {
            assert_eq!(n, "ws.example.com:443");
            Ok(w2)
        });
        assert_eq!(r.unwrap(), want);
        let e = resolve_within("nx.example.com:443", Duration::from_secs(30), |_| Err(std::io::Error::other("no such host"))).unwrap_err();
        assert_eq!(e.to_string(), "no such host");
    }

    #[test]
    fn a_hanging_lookup_is_abandoned_when_the_budget_is_spent() {
        // The lookup blocks until the test releases it (a dead name server); the caller gets a
        // timeout after its budget, and the helper thread finishes later on its own.
        let (release, blocked) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel::<()>();
        let e = resolve_within("hang.example.com:443", Duration::from_millis(50), move |_| {
            let _ = blocked.recv();
            let _ = done_tx.send(());
            Err(std::io::Error::other("late"))
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "DNS lookup of hang.example.com timed out after 0.1 s");
        release.send(()).unwrap();
        done.recv_timeout(Duration::from_secs(30)).expect("the abandoned lookup finishes");
    }
}
