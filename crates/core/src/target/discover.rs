//! Which Lakebase database a Postgres host belongs to, when LAKEBASE_INSTANCE / LAKEBASE_ENDPOINT
//! are not set: the host is matched against Provisioned instances' `read_write_dns` /
//! `read_only_dns` and Autoscaling endpoints' `status.hosts`.
//!
//! A lookup lists every instance and every endpoint of every branch of every project, so it is
//! bounded: at most [`MAX_PAGES`] list requests and [`MAX_TIME`] in total (and never past the
//! deadline of the caller's operation). Results are cached per host for the life of the process,
//! failures for [`FAILURE_TTL`]; concurrent lookups of one host make one set of requests
//! (single-flight), the other callers wait for its outcome.

use super::Target;
use crate::api::{database, postgres, WorkspaceApi};
use crate::clock::{Clock, WallMs};
use crate::error::{Error, ErrorKind, Result};
use crate::sync::{lock, ForkLocal};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Most list requests (pages) one lookup makes.
pub const MAX_PAGES: usize = 50;
/// Longest one lookup takes.
pub const MAX_TIME: Duration = Duration::from_secs(10);
/// How long a failed lookup is the answer for its host.
pub const FAILURE_TTL: Duration = Duration::from_secs(5);

/// Caps one lookup: pages and time.
struct Budget<'a> {
    clock: &'a dyn Clock,
    start: Duration,
    pages: usize,
    max_pages: usize,
    max_time: Duration,
}

impl Budget<'_> {
    fn take(&mut self, host: &str) -> Result<()> {
        if self.pages >= self.max_pages {
            return Err(Error::config(format!(
                "looking up which Lakebase database has the host {host:?} needed more than {} list requests; set LAKEBASE_INSTANCE or LAKEBASE_ENDPOINT",
                self.max_pages
            )));
        }
        let spent = self.clock.monotonic().saturating_sub(self.start);
        if spent >= self.max_time {
            return Err(Error::network(format!(
                "looking up which Lakebase database has the host {host:?} took longer than {} s; set LAKEBASE_INSTANCE or LAKEBASE_ENDPOINT",
                self.max_time.as_secs()
            )));
        }
        self.pages += 1;
        Ok(())
    }
}

pub(crate) fn find_target(api: &WorkspaceApi, clock: &dyn Clock, host: &str) -> Result<Target> {
    let host_l = host.trim_end_matches('.').to_ascii_lowercase();
    let same = |h: &str| h.trim_end_matches('.').eq_ignore_ascii_case(&host_l);
    let mut budget = Budget { clock, start: clock.monotonic(), pages: 0, max_pages: MAX_PAGES, max_time: MAX_TIME };
    // A cap ends the whole lookup (not just one of the two listings).
    let capped: RefCell<Option<Error>> = RefCell::new(None);
    let mut errors = Vec::new();
    let mut before_page = |_: &str| -> Result<()> { budget.take(host).inspect_err(|e| *capped.borrow_mut() = Some(e.clone())) };
    match database::list_instances_paged(api, &mut before_page) {
        Ok(list) => {
            for inst in list {
                let dns = ["read_write_dns", "read_only_dns"].iter().filter_map(|k| inst.get(*k).and_then(|v| v.as_str())).any(same);
                if dns {
                    if let Some(name) = inst.get("name").and_then(|n| n.as_str()) {
                        return Ok(Target::Instance(name.to_string()));
                    }
                }
            }
        }
        Err(e) => errors.push(e),
    }
    if let Some(e) = capped.borrow_mut().take() {
        return Err(e);
    }
    match postgres::list_all_endpoints_paged(api, &mut before_page) {
        Ok(list) => {
            for ep in list {
                if postgres::endpoint_hosts(&ep).iter().any(|h| same(h)) {
                    if let Some(name) = ep.get("name").and_then(|n| n.as_str()) {
                        return Ok(Target::Endpoint(name.to_string()));
                    }
                }
            }
        }
        Err(e) => errors.push(e),
    }
    if let Some(e) = capped.borrow_mut().take() {
        return Err(e);
    }
    if errors.len() == 2 {
        let e = errors.swap_remove(0);
        return Err(e.context(format!("looking up which Lakebase database has the host {host:?}")));
    }
    let why = if errors.is_empty() {
        String::new()
    } else {
        format!(" (lookups failed: {})", errors.iter().map(|e| e.message().to_string()).collect::<Vec<_>>().join("; "))
    };
    Err(Error::config(format!(
        "no Lakebase instance or endpoint in workspace {} has the host {host:?}{why}; set LAKEBASE_INSTANCE or LAKEBASE_ENDPOINT",
        api.host()
    )))
}

enum Slot {
    InFlight,
    Found(Target),
    Failed { error: Error, until_ms: WallMs },
}

type Slots = (Mutex<HashMap<String, Slot>>, Condvar);

/// Per-host lookup results of one cache entry, single-flight (rebuilt per fork generation).
pub(crate) struct Discovery {
    slots: ForkLocal<Slots>,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery { slots: ForkLocal::new(|| (Mutex::new(HashMap::new()), Condvar::new())) }
    }
}

/// Clears an in-flight slot if the lookup did not complete (a panic), so waiters try again.
struct InFlight<'a> {
    slots: &'a Slots,
    key: &'a str,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.slots.0).remove(self.key);
            self.slots.1.notify_all();
        }
    }
}

impl Discovery {
    /// The target of `host`: cached, or looked up by `find` (one caller at a time per host; the
    /// others wait at most `wait` for its outcome).
    pub(crate) fn get(&self, host: &str, clock: &dyn Clock, wait: Duration, find: impl FnOnce() -> Result<Target>) -> Result<Target> {
        let key = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let slots = self.slots.get();
        let deadline = crate::clock::real_deadline(wait);
        let mut g = lock(&slots.0);
        loop {
            match g.get(&key) {
                Some(Slot::Found(t)) => return Ok(t.clone()),
                Some(Slot::Failed { error, until_ms }) if clock.wall_ms() < *until_ms => {
                    return Err(error.clone().context("(an earlier lookup failed moments ago)"));
                }
                Some(Slot::InFlight) => {
                    let left = deadline.left();
                    if left.is_zero() {
                        return Err(Error::new(
                            ErrorKind::Network,
                            format!("timed out waiting for the lookup of the host {host:?} already in progress"),
                        ));
                    }
                    g = slots.1.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
                }
                _ => break,
            }
        }
        g.insert(key.clone(), Slot::InFlight);
        drop(g);
        let mut guard = InFlight { slots: &slots, key: &key, done: false };
        let result = find();
        let slot = match &result {
            Ok(t) => Slot::Found(t.clone()),
            Err(e) => Slot::Failed { error: e.clone(), until_ms: clock.wall_ms().saturating_add(FAILURE_TTL.as_millis() as i64) },
        };
        lock(&slots.0).insert(key.clone(), slot);
        guard.done = true;
        slots.1.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SystemClock};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn found_targets_are_cached_and_failures_briefly() {
        let d = Discovery::default();
        let clock = ManualClock::new(1_000_000);
        let calls = AtomicUsize::new(0);
        let ok = || {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(Target::Instance("i".into()))
        };
        assert_eq!(d.get("H.example.", &*clock, Duration::from_secs(1), ok).unwrap(), Target::Instance("i".into()));
        assert_eq!(d.get("h.example", &*clock, Duration::from_secs(1), || unreachable!()).unwrap(), Target::Instance("i".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let fail = || {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::network("HTTP 503"))
        };
        assert!(d.get("other", &*clock, Duration::from_secs(1), fail).is_err());
        let e = d.get("other", &*clock, Duration::from_secs(1), || unreachable!()).unwrap_err();
        assert!(e.message().contains("HTTP 503") && e.message().contains("moments ago"), "{e}");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        clock.advance(FAILURE_TTL);
        assert!(d.get("other", &*clock, Duration::from_secs(1), fail).is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "looked up again once the failure aged out");
    }

    #[test]
    fn concurrent_lookups_of_one_host_are_single_flight() {
        let d = Arc::new(Discovery::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = Arc::new(Mutex::new(go_rx));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (d, calls, go_rx) = (d.clone(), calls.clone(), go_rx.clone());
                std::thread::spawn(move || {
                    d.get("h", &SystemClock, Duration::from_secs(10), || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        // Hold the lookup until the test lets it finish.
                        let _ = lock(&go_rx).recv_timeout(Duration::from_secs(10));
                        Ok(Target::Endpoint("projects/p/branches/b/endpoints/e".into()))
                    })
                })
            })
            .collect();
        // Let every thread reach the slot, then release the one lookup.
        std::thread::sleep(Duration::from_millis(100));
        go_tx.send(()).unwrap();
        for t in threads {
            assert!(t.join().unwrap().is_ok());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_waiter_gives_up_after_its_wait_and_a_panicked_lookup_frees_the_slot() {
        let d = Arc::new(Discovery::default());
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let d2 = d.clone();
        let holder = std::thread::spawn(move || {
            d2.get("h", &SystemClock, Duration::from_secs(1), || {
                let _ = hold_rx.recv_timeout(Duration::from_secs(10));
                Ok(Target::Instance("i".into()))
            })
        });
        std::thread::sleep(Duration::from_millis(50));
        let sw = crate::clock::Stopwatch::start();
        let e = d.get("h", &SystemClock, Duration::from_millis(100), || unreachable!()).unwrap_err();
        assert!(e.message().contains("already in progress"), "{e}");
        assert!(sw.elapsed() < Duration::from_secs(2));
        hold_tx.send(()).unwrap();
        holder.join().unwrap().unwrap();

        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = d.get("p", &SystemClock, Duration::from_secs(1), || panic!("lookup panicked (expected in this test)"));
        }));
        assert!(r.is_err());
        assert!(d.get("p", &SystemClock, Duration::from_secs(1), || Ok(Target::Instance("j".into()))).is_ok());
    }

    #[test]
    fn page_and_time_caps() {
        let clock = ManualClock::new(0);
        let mut b = Budget { clock: &*clock, start: clock.monotonic(), pages: 0, max_pages: 3, max_time: Duration::from_secs(10) };
        for _ in 0..3 {
            b.take("h").unwrap();
        }
        let e = b.take("h").unwrap_err();
        assert!(e.message().contains("more than 3 list requests") && e.message().contains("LAKEBASE_INSTANCE"), "{e}");
        let mut b = Budget { clock: &*clock, start: clock.monotonic(), pages: 0, max_pages: 50, max_time: Duration::from_secs(10) };
        b.take("h").unwrap();
        clock.advance(Duration::from_secs(10));
        let e = b.take("h").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network);
        assert!(e.message().contains("longer than 10 s"), "{e}");
    }
}
