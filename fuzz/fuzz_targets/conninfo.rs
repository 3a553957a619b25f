//! Conninfo handling that does not go through libpq: Lakebase host detection and
//! `LAKEBASE_HOSTS` globs, `.pgpass` lines and `pg_service.conf` sections. Never panics, and the
//! glob matcher agrees with a simple reference implementation.
#![no_main]
use lakebase::libpq::{hosts, params};
use libfuzzer_sys::fuzz_target;

/// Reference: `*` matches any run, everything else literally (exponential, so inputs are short).
fn glob_ref(p: &[u8], t: &[u8]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some((b'*', rest)) => (0..=t.len()).any(|i| glob_ref(rest, &t[i..])),
        Some((c, rest)) => t.first() == Some(c) && glob_ref(rest, &t[1..]),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut parts = s.splitn(3, '\u{0}');
    let a = parts.next().unwrap_or("");
    let b = parts.next().unwrap_or("");
    let c = parts.next().unwrap_or("");
    let _ = hosts::is_lakebase_host(a, Some(b));
    let _ = hosts::is_lakebase_host(a, None);
    let m = hosts::glob_match(a, b);
    if a.len() <= 12 && b.len() <= 24 && a.bytes().filter(|&x| x == b'*').count() <= 4 {
        assert_eq!(m, glob_ref(a.as_bytes(), b.as_bytes()), "glob {a:?} vs {b:?}");
    }
    let fields = params::split_pgpass(a);
    assert!(fields.len() <= 5 && !fields.is_empty());
    let _ = params::parse_service_file(c, b);
});
