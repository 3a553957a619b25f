//! `lakebase whoami`: identity, auth method, workspace, database and token expiry. Never the token.

use crate::cli::Global;
use crate::{fail, now_ms, out, relative, rfc3339};
use serde_json::{json, Value};

/// Where the auth method's material came from, e.g. `DATABRICKS_TOKEN` or `profile dev`.
pub fn auth_source(opts: &[(String, String)], auth_type: &str) -> Option<String> {
    let cfg = lakebase_core::config::Config::resolve(opts, &lakebase_core::config::ProcessEnv).ok()?;
    let attr = match auth_type {
        "pat" => "token",
        "oauth-m2m" => "client_id",
        _ => return None,
    };
    Some(match cfg.source_of(attr)? {
        lakebase_core::config::Source::Option => "--options".to_string(),
        lakebase_core::config::Source::Env(name) => name.to_string(),
        lakebase_core::config::Source::File => match (&cfg.loaded_file, &cfg.profile) {
            (Some(f), Some(p)) => format!("profile {p} in {}", f.display()),
            _ => "config file".to_string(),
        },
    })
}

pub fn run(g: &Global, json_out: bool) -> u8 {
    let opts = g.all_options();
    let client = match g.builder().build() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let identity = match client.identity() {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    let mut target_json = Value::Null;
    let mut target_lines = Vec::new();
    let mut expiry = None;
    match client.target().cloned() {
        None => target_lines.push(format!("{:<11}none configured (set LAKEBASE_INSTANCE or LAKEBASE_ENDPOINT)", "Database:")),
        Some(t) => {
            let info = match client.describe_target() {
                Ok(i) => i,
                Err(e) => return fail(&e),
            };
            if let Err(e) = client.password() {
                return fail(&e);
            }
            expiry = client.token_info().map(|i| i.expiry_ms);
            let state = info.state.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            target_lines.push(format!("{:<11}{} {:?}{state}", "Database:", t.kind(), t.name()));
            target_lines.push(format!("{:<11}{}", "Host:", info.host.as_deref().unwrap_or("(unknown)")));
            target_json = json!({
                "kind": t.kind(),
                "name": t.name(),
                "host": info.host,
                "state": info.state,
            });
        }
    }
    let now = now_ms();
    if json_out {
        let v = json!({
            "identity": identity,
            "postgres_role": identity,
            "auth_type": client.auth_type(),
            "auth_source": auth_source(&opts, client.auth_type()),
            "workspace_host": client.host(),
            "target": target_json,
            "token_expires_at": expiry.map(rfc3339),
            "token_expires_in_seconds": expiry.map(|e| (e - now) / 1000),
        });
        return out(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
    }
    let mut s = String::new();
    s.push_str(&format!("{:<11}{identity}\n", "Identity:"));
    s.push_str(&format!("{:<11}{identity}\n", "Role:"));
    let src = auth_source(&opts, client.auth_type()).map(|s| format!(" (from {s})")).unwrap_or_default();
    s.push_str(&format!("{:<11}{}{src}\n", "Auth:", client.auth_type()));
    s.push_str(&format!("{:<11}{}\n", "Workspace:", client.host()));
    for l in target_lines {
        s.push_str(&l);
        s.push('\n');
    }
    if let Some(e) = expiry {
        s.push_str(&format!("{:<11}expires {} ({})\n", "Token:", rfc3339(e), relative(e - now)));
    }
    out(&s)
}
