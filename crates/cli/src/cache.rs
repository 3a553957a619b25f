//! `lakebase cache list|clear`: the per-user shared cache of passwords, identities and hosts.
//! Never prints a token.

use crate::cli::Global;
use crate::{eprint_error, now_ms, out, relative, rfc3339, EXIT_FAILURE, EXIT_USAGE};
use lakebase_core::config::{Config, Env, ProcessEnv};
use lakebase_core::shared_cache::{enabled, Record, Store};
use serde_json::{json, Value};

/// The store the library would use with these options and this environment, and whether the
/// shared cache is on. The configuration may be incomplete (no host): only `cache` and
/// `cache_dir` matter here.
fn store(g: &Global) -> Result<(Store, bool), u8> {
    let opts = g.all_options();
    let (cache, dir) = match Config::resolve(&opts, &ProcessEnv) {
        Ok(cfg) => (cfg.cache, cfg.cache_dir),
        Err(_) => {
            let opt = |k: &str| opts.iter().rev().find(|(ok, _)| ok == k).map(|(_, v)| v.clone());
            (opt("cache").or_else(|| ProcessEnv.var("LAKEBASE_CACHE")), opt("cache_dir").or_else(|| ProcessEnv.var("LAKEBASE_CACHE_DIR")))
        }
    };
    let on = match enabled(cache.as_deref()) {
        Ok(on) => on,
        Err(m) => {
            eprint_error(&m);
            return Err(EXIT_USAGE);
        }
    };
    match Store::locate(&ProcessEnv, dir.as_deref()) {
        Some(s) => Ok((s, on)),
        None => {
            eprint_error("no shared cache directory: set XDG_RUNTIME_DIR, HOME or LAKEBASE_CACHE_DIR");
            Err(EXIT_FAILURE)
        }
    }
}

/// "3 min ago" ("just now" under a second).
fn ago(t: i64, now: i64) -> String {
    if (now - t).abs() < 1000 {
        "just now".to_string()
    } else {
        relative(t - now)
    }
}

/// An entry without its secret.
fn describe(key: &str, r: &Record, now: i64) -> Value {
    json!({
        "key": key,
        "workspace": r.workspace,
        "auth_type": r.auth_type,
        "target": r.target.as_ref().map(|(k, n)| json!({"kind": k, "name": n})),
        "identity": r.identity.as_ref().map(|l| &l.value),
        "postgres_host": r.pg_host.as_ref().map(|l| &l.value),
        "discovered": r.targets.iter().map(|t| json!({"host": t.host, "kind": t.kind, "name": t.name})).collect::<Vec<_>>(),
        "token": r.token.as_ref().map(|t| json!({
            "obtained_at": rfc3339(t.obtained_ms),
            "expires_at": rfc3339(t.expiry_ms),
            "expires_in_seconds": (t.expiry_ms - now) / 1000,
            "bytes": t.secret.len(),
        })),
        "last_failure": r.failure.as_ref().map(|f| json!({"at": rfc3339(f.at_ms), "message": f.message})),
        "updated_at": rfc3339(r.updated_ms),
        "writer_pid": r.writer_pid,
    })
}

pub fn list(g: &Global, json_out: bool) -> u8 {
    let (store, on) = match store(g) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (dir, entries) = match store.list() {
        Ok(x) => x,
        Err(m) => {
            eprint_error(&m);
            return EXIT_FAILURE;
        }
    };
    let now = now_ms();
    if json_out {
        let items: Vec<Value> = entries
            .iter()
            .map(|e| match &e.record {
                Ok(r) => describe(&e.key_hex, r, now),
                Err(why) => json!({"key": e.key_hex, "ignored": why}),
            })
            .collect();
        let v = json!({"directory": dir, "enabled": on, "entries": items});
        return out(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
    }
    let mut s = format!(
        "Shared cache: {} ({}, {} entr{})\n",
        dir.display(),
        if on { "on" } else { "off: LAKEBASE_CACHE=off" },
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    );
    for e in &entries {
        let short = &e.key_hex[..e.key_hex.len().min(16)];
        let r = match &e.record {
            Ok(r) => r,
            Err(why) => {
                s.push_str(&format!("\n{short}  ignored: {why}\n"));
                continue;
            }
        };
        let target = r.target.as_ref().map(|(k, n)| format!(" {k} {n:?}")).unwrap_or_default();
        s.push_str(&format!("\n{short}  {} {}{target}\n", r.workspace, r.auth_type));
        if let Some(i) = &r.identity {
            s.push_str(&format!("  {:<12}{}\n", "identity", i.value));
        }
        match &r.token {
            Some(t) if t.expiry_ms > now => s.push_str(&format!(
                "  {:<12}expires {} ({}), minted {}\n",
                "password",
                rfc3339(t.expiry_ms),
                relative(t.expiry_ms - now),
                ago(t.obtained_ms, now)
            )),
            Some(t) => s.push_str(&format!("  {:<12}expired {}\n", "password", relative(t.expiry_ms - now))),
            None => s.push_str(&format!("  {:<12}none\n", "password")),
        }
        if let Some(h) = &r.pg_host {
            s.push_str(&format!("  {:<12}{}\n", "host", h.value));
        }
        for t in &r.targets {
            s.push_str(&format!("  {:<12}{} -> {} {:?}\n", "discovered", t.host, t.kind, t.name));
        }
        if let Some(f) = &r.failure {
            s.push_str(&format!("  {:<12}{}: {}\n", "failed", ago(f.at_ms, now), f.message));
        }
        s.push_str(&format!("  {:<12}{} by process {}\n", "updated", ago(r.updated_ms, now), r.writer_pid));
    }
    out(&s)
}

pub fn clear(g: &Global) -> u8 {
    let (store, _) = match store(g) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.clear() {
        Ok((dir, n)) => out(&format!("removed {n} entr{} from {}\n", if n == 1 { "y" } else { "ies" }, dir.display())),
        Err(m) => {
            eprint_error(&m);
            EXIT_FAILURE
        }
    }
}
