//! Counters for `/metrics` (Prometheus text format 0.0.4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds (seconds) of the upstream connect latency histogram.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
pub struct Metrics {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused_max: AtomicU64,
    pub bytes_from_clients: AtomicU64,
    pub bytes_to_clients: AtomicU64,
    pub login_failures: AtomicU64,
    pub login_retries_rejected: AtomicU64,
    pub connect_retries: AtomicU64,
    pub cancels_forwarded: AtomicU64,
    pub startup_errors: AtomicU64,
    connect_buckets: [AtomicU64; BUCKETS.len()],
    connect_count: AtomicU64,
    connect_sum_us: AtomicU64,
}

impl Metrics {
    pub fn observe_connect(&self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.connect_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.connect_count.fetch_add(1, Relaxed);
        self.connect_sum_us.fetch_add((secs * 1e6) as u64, Relaxed);
    }

    /// The text exposition; `sources` adds per-target token figures.
    pub fn render(&self, sources: &[(String, crate::source::SourceStats)], ready: bool) -> String {
        let mut o = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        metric("lakebase_proxy_connections_open", "gauge", "Client connections open now.", self.connections_open.load(Relaxed));
        metric("lakebase_proxy_connections_total", "counter", "Client connections accepted.", self.connections_total.load(Relaxed));
        metric(
            "lakebase_proxy_connections_refused_total",
            "counter",
            "Client connections refused by --max-connections.",
            self.connections_refused_max.load(Relaxed),
        );
        metric("lakebase_proxy_client_bytes_received_total", "counter", "Bytes read from clients.", self.bytes_from_clients.load(Relaxed));
        metric("lakebase_proxy_client_bytes_sent_total", "counter", "Bytes written to clients.", self.bytes_to_clients.load(Relaxed));
        metric(
            "lakebase_proxy_login_failures_total",
            "counter",
            "Client connections that did not reach the relay (upstream or credential errors).",
            self.login_failures.load(Relaxed),
        );
        metric(
            "lakebase_proxy_rejected_token_retries_total",
            "counter",
            "Logins retried with a new token after the server rejected the cached one.",
            self.login_retries_rejected.load(Relaxed),
        );
        metric(
            "lakebase_proxy_upstream_connect_retries_total",
            "counter",
            "Upstream connect attempts retried (refused, timed out, starting up).",
            self.connect_retries.load(Relaxed),
        );
        metric(
            "lakebase_proxy_cancel_requests_forwarded_total",
            "counter",
            "Cancel requests forwarded upstream.",
            self.cancels_forwarded.load(Relaxed),
        );
        metric(
            "lakebase_proxy_startup_errors_total",
            "counter",
            "Malformed, slow or refused client startups.",
            self.startup_errors.load(Relaxed),
        );
        metric("lakebase_proxy_ready", "gauge", "1 when /readiness answers 200.", u64::from(ready));

        let name = "lakebase_proxy_upstream_connect_seconds";
        let _ = writeln!(o, "# HELP {name} Time from the first upstream connect to the server's ReadyForQuery, retries included.");
        let _ = writeln!(o, "# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(o, "{name}_bucket{{le=\"{b}\"}} {}", self.connect_buckets[i].load(Relaxed));
        }
        let count = self.connect_count.load(Relaxed);
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(o, "{name}_sum {}", self.connect_sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(o, "{name}_count {count}");

        let series = |o: &mut String, name: &str, kind: &str, help: &str, f: &dyn Fn(&crate::source::SourceStats) -> Option<String>| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (t, s) in sources {
                if let Some(v) = f(s) {
                    let _ = writeln!(o, "{name}{{target=\"{}\"}} {v}", escape_label(t));
                }
            }
        };
        series(&mut o, "lakebase_proxy_token_mints_total", "counter", "Lakebase passwords minted.", &|s| Some(s.mints.to_string()));
        series(&mut o, "lakebase_proxy_token_refresh_errors_total", "counter", "Failed password fetches or refreshes.", &|s| {
            Some(s.refresh_errors.to_string())
        });
        series(&mut o, "lakebase_proxy_token_refresh_failing", "gauge", "1 while the last password fetch failed.", &|s| {
            Some(u64::from(s.refresh_failing).to_string())
        });
        series(&mut o, "lakebase_proxy_token_expiry_timestamp_seconds", "gauge", "Expiry of the cached password (Unix time).", &|s| {
            s.token_expiry_unix.map(|e| format!("{e:.3}"))
        });
        o
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn histogram_is_cumulative() {
        let m = super::Metrics::default();
        m.observe_connect(0.02);
        m.observe_connect(3.0);
        let t = m.render(&[], true);
        assert!(t.contains("lakebase_proxy_upstream_connect_seconds_bucket{le=\"0.01\"} 0\n"), "{t}");
        assert!(t.contains("lakebase_proxy_upstream_connect_seconds_bucket{le=\"0.025\"} 1\n"), "{t}");
        assert!(t.contains("lakebase_proxy_upstream_connect_seconds_bucket{le=\"5\"} 2\n"), "{t}");
        assert!(t.contains("lakebase_proxy_upstream_connect_seconds_count 2\n"), "{t}");
    }
}
