//! The options string of `lakebase_client_new` (libpq conninfo syntax): never panics, and what it
//! parses survives a round trip through quoting.
#![no_main]
use libfuzzer_sys::fuzz_target;

fn quote(v: &str) -> String {
    let mut q = String::from("'");
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('\'');
    q
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(pairs) = lakebase_core::config::parse_options(s) else { return };
    let again: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
    let reparsed = lakebase_core::config::parse_options(&again.join(" ")).expect("re-quoted options must parse");
    assert_eq!(pairs, reparsed);
});
