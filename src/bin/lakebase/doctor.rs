//! `lakebase doctor`: walk configuration → auth → workspace API → DNS → TCP → TLS → login, one
//! line per check, and explain the classic failures. Never prints a token or secret.

use crate::pgwire::{self, Attempt, ErrorFields, Login};
use crate::whoami::{auth_source, lookup_target, TargetInfo};
use crate::{now_ms, relative, rfc3339, Global, EXIT_FAILURE, EXIT_OK};
use lakebase::auth::{self, AuthContext};
use lakebase::clock::{SharedClock, SystemClock};
use lakebase::config::{Config, ProcessEnv, Source};
use lakebase::http::{HttpClient, HttpOptions};
use lakebase::target::Target;
use lakebase::{Client, Error, ErrorKind};
use std::io::Write;
use std::sync::Arc;

const DEFAULT_DATABASE: &str = "databricks_postgres";

/// Read timeout and total time (retries included) of each workspace call, so an unreachable
/// workspace costs seconds, not minutes.
const DOCTOR_HTTP_DEFAULTS: [(&str, &str); 2] = [("http_timeout_seconds", "10"), ("retry_timeout_seconds", "15")];

/// The report being printed, line by line as checks finish.
struct Report {
    failed: usize,
    warned: usize,
    broken_pipe: bool,
}

impl Report {
    fn line(&mut self, s: &str) {
        if self.broken_pipe {
            return;
        }
        let mut o = std::io::stdout().lock();
        if o.write_all(s.as_bytes())
            .and_then(|_| o.write_all(b"\n"))
            .and_then(|_| o.flush())
            .is_err()
        {
            self.broken_pipe = true;
        }
    }
    fn check(&mut self, mark: &str, name: &str, msg: &str) {
        self.line(&format!("{mark:<7}{name}: {msg}"));
    }
    fn ok(&mut self, name: &str, msg: &str) {
        self.check("[ok]", name, msg);
    }
    fn warn(&mut self, name: &str, msg: &str) {
        self.warned += 1;
        self.check("[warn]", name, msg);
    }
    fn fail(&mut self, name: &str, msg: &str) {
        self.failed += 1;
        self.check("[fail]", name, msg);
    }
    fn skip(&mut self, name: &str, why: &str) {
        self.check("[skip]", name, why);
    }
    fn detail(&mut self, msg: &str) {
        for l in msg.lines() {
            self.line(&format!("         {l}"));
        }
    }
    fn skip_rest(&mut self, names: &[&str], why: &str) {
        for n in names {
            self.skip(n, why);
        }
    }
    fn finish(mut self) -> u8 {
        self.line("");
        let summary = match (self.failed, self.warned) {
            (0, 0) => "All checks passed.".to_string(),
            (0, w) => format!("No check failed; {w} warning{}.", plural(w)),
            (f, w) => format!("{f} check{} failed, {w} warning{}.", plural(f), plural(w)),
        };
        self.line(&summary);
        if self.failed == 0 {
            EXIT_OK
        } else {
            EXIT_FAILURE
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn source_name(cfg: &Config, s: Source) -> String {
    match s {
        Source::Option => "the command line (--options / --profile)".to_string(),
        Source::Env(n) => n.to_string(),
        Source::File => match (&cfg.loaded_file, &cfg.profile) {
            (Some(f), Some(p)) => format!("profile [{p}] in {}", f.display()),
            (Some(f), None) => f.display().to_string(),
            _ => "config file".to_string(),
        },
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The first element of a libpq comma-separated list.
fn first_of_list(v: &str) -> &str {
    v.split(',').next().unwrap_or("").trim()
}

/// What a workspace API failure means, in a sentence or two.
fn explain_api(e: &Error, auth_type: &str, host: &str) -> Option<String> {
    if e.kind() == ErrorKind::Network {
        return Some(format!(
            "the workspace {host} could not be reached: check the host name, proxy and firewall (HTTPS to the workspace must be allowed)"
        ));
    }
    match e.status()? {
        401 | 403 => Some(format!(
            "the workspace rejected the {auth_type} credentials: the token or client secret is wrong, expired or revoked, or belongs to another workspace than {host}"
        )),
        429 => Some("the workspace is throttling requests; retry in a moment".to_string()),
        500..=599 => Some("the workspace had a temporary problem; retry in a moment".to_string()),
        _ => None,
    }
}

/// Why the database lookup or the credential call returned 404, and what to set instead.
fn explain_not_found(e: &Error, target: &Target, client: &Client) -> Vec<String> {
    let mut v = Vec::new();
    if e.error_code() == Some("ENDPOINT_NOT_FOUND") {
        let api = match target {
            Target::Instance(_) => "Lakebase Provisioned (/api/2.0/database)",
            Target::Endpoint(_) => "Lakebase Autoscaling (/api/2.0/postgres)",
        };
        v.push(format!("this workspace does not serve the {api} API: wrong API flavour, or the feature is not enabled in this workspace"));
        return v;
    }
    match target {
        Target::Instance(name) => {
            if name.starts_with("projects/") {
                v.push(format!(
                    "{name:?} is an Autoscaling endpoint name, not a Provisioned instance: set LAKEBASE_ENDPOINT={name} (or endpoint=) instead of LAKEBASE_INSTANCE"
                ));
            } else {
                v.push(format!(
                    "there is no Lakebase Provisioned instance named {name:?} in this workspace (or the identity cannot see it). If the database is Lakebase Autoscaling, set LAKEBASE_ENDPOINT=projects/<project>/branches/<branch>/endpoints/<endpoint> instead of LAKEBASE_INSTANCE"
                ));
                if let Ok(list) = lakebase::api::database::list_instances(client.api()) {
                    let names: Vec<&str> = list
                        .iter()
                        .filter_map(|i| i.get("name").and_then(|n| n.as_str()))
                        .take(10)
                        .collect();
                    if !names.is_empty() {
                        v.push(format!("instances this identity can see: {}", names.join(", ")));
                    }
                }
            }
        }
        Target::Endpoint(name) => {
            let short = name.rsplit('/').next().unwrap_or(name);
            v.push(format!(
                "there is no Lakebase Autoscaling endpoint {name:?} in this workspace (or the identity cannot see it): check the project, branch and endpoint ids. If the database is a Lakebase Provisioned instance, set LAKEBASE_INSTANCE=<instance name> instead of LAKEBASE_ENDPOINT"
            ));
            if lakebase::api::database::get_instance(client.api(), short).is_ok() {
                v.push(format!(
                    "a Provisioned instance named {short:?} exists: set LAKEBASE_INSTANCE={short}"
                ));
            }
        }
    }
    v
}

/// What a failed Postgres login means.
fn explain_login(
    f: &ErrorFields,
    user: &str,
    identity: Option<&str>,
    database: &str,
    expiry_ms: Option<i64>,
) -> Vec<String> {
    let m = f.message.to_lowercase();
    let mut v = Vec::new();
    let auth_failed = matches!(f.code.as_str(), "28P01" | "28000") || m.contains("authentication failed");
    if m.contains("pg_hba.conf") && m.contains("no encryption") {
        v.push("the connection was not encrypted: Lakebase accepts logins only over TLS (sslmode=require)".to_string());
    } else if f.code == "3D000" {
        v.push(format!(
            "database {database:?} does not exist: set PGDATABASE to an existing database (Lakebase's default is {DEFAULT_DATABASE})"
        ));
    } else if auth_failed && m.contains("role") && m.contains("does not exist") {
        v.push(format!(
            "there is no Postgres role {user:?}: the identity needs a role in the database (created in the Lakebase UI or with databricks_create_role)"
        ));
    } else if auth_failed {
        match identity {
            Some(id) if id != user => v.push(format!(
                "the role {user:?} does not match the token's identity {id:?}: a Lakebase token logs in only as its own identity's role. Unset PGUSER, or set PGUSER={id}"
            )),
            _ => {
                let exp = expiry_ms.map(|e| format!(" (this one expires {} {})", rfc3339(e), relative(e - now_ms()))).unwrap_or_default();
                v.push(format!(
                    "the server rejected the token for the identity's own role {user:?}: the token expired or was revoked{exp}, the role has no Lakebase login for this identity, or the server is not the database the token was minted for (check PGHOST)"
                ));
            }
        }
    } else if f.code == "53300" {
        v.push("the database has no free connection slots; close idle connections or retry".to_string());
    } else if f.code == "57P03" {
        v.push("the database is starting up (or waking from idle); retry in a few seconds".to_string());
    } else if m.contains("pg_hba.conf") {
        v.push("the server has no pg_hba.conf rule for this connection (user, database or TLS)".to_string());
    }
    if let Some(d) = &f.detail {
        v.push(format!("DETAIL: {d}"));
    }
    if let Some(h) = &f.hint {
        v.push(format!("HINT: {h}"));
    }
    v
}

pub fn run(g: &Global) -> u8 {
    let mut r = Report {
        failed: 0,
        warned: 0,
        broken_pipe: false,
    };
    // Bounded workspace calls unless the user chose otherwise (their options come later and win).
    let user_opts = g.all_options();
    let mut opts: Vec<(String, String)> = Vec::new();
    for (k, v) in DOCTOR_HTTP_DEFAULTS {
        if !user_opts.iter().any(|(uk, _)| uk == k) {
            opts.push((k.to_string(), v.to_string()));
        }
    }
    let injected: Vec<String> = opts.iter().map(|(k, _)| k.clone()).collect();
    opts.extend(user_opts);
    const API_CHECKS: &[&str] = &["identity", "database", "password"];
    const PG_CHECKS: &[&str] = &["dns", "tcp", "tls", "login"];

    // 1. Configuration.
    let cfg = match Config::resolve(&opts, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            r.fail("config", e.message());
            r.skip_rest(&["auth"], "no usable configuration");
            r.skip_rest(API_CHECKS, "no usable configuration");
            r.skip_rest(PG_CHECKS, "no usable configuration");
            return r.finish();
        }
    };
    let summary = cfg.debug_string();
    r.ok("config", if summary.is_empty() { "nothing is set" } else { &summary });
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in &cfg.sources {
        if !seen.contains(name) {
            seen.push(name);
        }
    }
    for name in &seen {
        if injected.iter().any(|k| k == name) {
            continue;
        }
        if let Some(src) = cfg.source_of(name) {
            r.detail(&format!("{name:<20} from {}", source_name(&cfg, src)));
        }
    }
    match &cfg.loaded_file {
        Some(f) => r.detail(&format!(
            "{:<20} {} (profile {})",
            "config file",
            f.display(),
            cfg.profile
                .as_deref()
                .map(|p| format!("[{p}]"))
                .unwrap_or_else(|| "none".into())
        )),
        None => {
            let path = cfg
                .config_file
                .clone()
                .unwrap_or_else(|| "~/.databrickscfg".to_string());
            let exists = lakebase::config::file::expand_home(&path, &ProcessEnv).is_ok_and(|p| p.is_file());
            if exists {
                r.detail(&format!(
                    "{:<20} {path} not read: host or credentials are already set and no profile is named (DATABRICKS_CONFIG_PROFILE or --profile combine them)",
                    "config file"
                ));
            } else {
                r.detail(&format!("{:<20} {path} does not exist", "config file"));
            }
        }
    }

    // 2. Auth method: every strategy of the chain, and why it was or was not picked.
    let clock: SharedClock = Arc::new(SystemClock);
    let http = Arc::new(HttpClient::new(
        HttpOptions {
            ca_file: cfg.ca_file.clone(),
            ..HttpOptions::default()
        },
        clock.clone(),
    ));
    let ctx = AuthContext {
        http,
        clock,
        env: Arc::new(ProcessEnv),
    };
    let forced = cfg.auth_type.clone().filter(|s| !s.is_empty());
    let chain = auth::strategies();
    let mut picked: Option<&'static str> = None;
    let mut auth_error: Option<String> = None;
    let mut auth_stop: Option<&'static str> = None;
    let mut lines = Vec::new();
    for s in &chain {
        let name = s.name();
        if let Some(f) = &forced {
            if f != name {
                lines.push(format!("{name:<20} skipped: auth_type={f}"));
                continue;
            }
        }
        // The chain stops at the first method that is configured or broken; later ones are not
        // configured at all (some run external programs), as in the library.
        if let Some(stop) = picked.or(auth_stop) {
            lines.push(format!(
                "{name:<20} not tried: the chain stopped at {stop} ({})",
                s.requirement()
            ));
            continue;
        }
        match s.configure(&cfg, &ctx) {
            Ok(Some(_)) => {
                picked = Some(name);
                lines.push(format!("{name:<20} configured: picked"));
            }
            Ok(None) => lines.push(format!("{name:<20} not configured: {}", s.requirement())),
            Err(e) => {
                lines.push(format!("{name:<20} failed: {}", e.message()));
                auth_stop = Some(name);
                auth_error = Some(format!("{name} auth: {}", e.message()));
            }
        }
    }
    if let Some(f) = &forced {
        if !chain.iter().any(|s| s.name() == f) {
            let names: Vec<_> = chain.iter().map(|s| s.name()).collect();
            auth_error = Some(format!(
                "auth_type={f} is not supported by this version (supported: {})",
                names.join(", ")
            ));
        }
    }
    let client = match (picked, auth_error) {
        (Some(p), None) => match Client::builder().build(&opts) {
            Ok(c) => {
                let src = auth_source(&opts, p)
                    .map(|s| format!(" (from {s})"))
                    .unwrap_or_default();
                r.ok("auth", &format!("{p}{src}"));
                for l in &lines {
                    r.detail(l);
                }
                c
            }
            Err(e) => {
                r.fail("auth", e.message());
                for l in &lines {
                    r.detail(l);
                }
                r.skip_rest(API_CHECKS, "no client");
                r.skip_rest(PG_CHECKS, "no client");
                return r.finish();
            }
        },
        (_, err) => {
            // The library's own wording (it names auth_type, the requirement and the config).
            let msg = err.unwrap_or_else(|| match Client::builder().build(&opts) {
                Err(e) => e.message().to_string(),
                Ok(_) => format!("no auth method is configured; see {}", auth::AUTH_DOCS),
            });
            r.fail("auth", &msg);
            for l in &lines {
                r.detail(l);
            }
            r.skip_rest(API_CHECKS, "no auth method");
            r.skip_rest(PG_CHECKS, "no auth method");
            return r.finish();
        }
    };
    let auth_type = client.auth_type();
    let ws = client.host().to_string();

    // 3. Identity (SCIM /Me): proves the workspace accepts the credentials.
    let mut workspace_down: Option<&str> = None;
    let identity = match client.identity() {
        Ok(id) => {
            r.ok(
                "identity",
                &format!("{id} (its userName is the Postgres role the password logs in as)"),
            );
            Some(id)
        }
        Err(e) => {
            r.fail("identity", e.message());
            if let Some(x) = explain_api(&e, auth_type, &ws) {
                r.detail(&x);
            }
            if e.kind() == ErrorKind::Network {
                workspace_down = Some("the workspace cannot be reached (see identity)");
            } else if matches!(e.status(), Some(401 | 403)) {
                workspace_down = Some("the workspace did not accept the credentials (see identity)");
            }
            None
        }
    };

    // 4. The database: instance or endpoint, its state and host.
    let target = client.target().cloned();
    let mut info: Option<TargetInfo> = None;
    let mut password: Option<lakebase::Secret> = None;
    match &target {
        None => {
            r.fail("database", lakebase::target::NO_TARGET);
            r.skip("password", "no database configured");
        }
        Some(_) if workspace_down.is_some() => {
            r.skip_rest(&["database", "password"], workspace_down.unwrap_or_default());
        }
        Some(t) => {
            match lookup_target(&client, t) {
                Ok(i) => {
                    let state = i.state.clone().unwrap_or_else(|| "state unknown".into());
                    let host = i.host.clone().unwrap_or_else(|| "no host reported".into());
                    let msg = format!("{t}: {state}, host {host}");
                    match i.state.as_deref() {
                        Some("AVAILABLE" | "ACTIVE") => r.ok("database", &msg),
                        Some("IDLE") => {
                            r.ok("database", &msg);
                            r.detail(
                                "idle (scaled to zero): it wakes on the first connection, which may take a few seconds",
                            );
                        }
                        Some("STOPPED" | "DELETING" | "DELETED" | "FAILED" | "DISABLED") => {
                            r.fail("database", &msg);
                            r.detail(
                                "the database cannot accept connections in this state: start it in the Lakebase UI",
                            );
                        }
                        _ => {
                            r.warn("database", &msg);
                            r.detail("the database is not in a serving state (AVAILABLE / ACTIVE / IDLE) yet; logins may fail until it is");
                        }
                    }
                    info = Some(i);
                }
                Err(e) => {
                    r.fail("database", e.message());
                    if e.status() == Some(404) {
                        for l in explain_not_found(&e, t, &client) {
                            r.detail(&l);
                        }
                    } else if let Some(x) = explain_api(&e, auth_type, &ws) {
                        r.detail(&x);
                    }
                }
            }
            // 5. A password, as `lakebase password` and the library mint it.
            match client.password() {
                Ok(p) => {
                    let exp = client.token_info().map(|i| i.expiry_ms);
                    let when = exp
                        .map(|e| format!("; expires {} ({})", rfc3339(e), relative(e - now_ms())))
                        .unwrap_or_default();
                    r.ok("password", &format!("minted a token for {t}{when}"));
                    password = Some(p);
                }
                Err(e) => {
                    r.fail("password", e.message());
                    match e.status() {
                        Some(404) if info.is_none() => r.detail("the database was not found (see above)"),
                        Some(404) => {
                            for l in explain_not_found(&e, t, &client) {
                                r.detail(&l);
                            }
                        }
                        Some(403) if identity.is_some() => r.detail(&format!(
                            "the workspace accepts the {auth_type} credentials but refuses a database password: the identity has no permission on {t}"
                        )),
                        _ => {
                            if let Some(x) = explain_api(&e, auth_type, &ws) {
                                r.detail(&x);
                            }
                        }
                    }
                }
            }
        }
    }

    // 6. The Postgres side: host, sslmode, user.
    let pghost = env("PGHOST")
        .map(|h| first_of_list(&h).to_string())
        .filter(|h| !h.is_empty());
    let host = match (&pghost, info.as_ref().and_then(|i| i.host.clone())) {
        (Some(h), _) => Some(h.clone()),
        (None, Some(h)) => Some(h),
        (None, None) => None,
    };
    let Some(host) = host else {
        r.fail(
            "host",
            "no Postgres host: set PGHOST, or configure a database whose host the API reports",
        );
        r.skip_rest(PG_CHECKS, "no host");
        return r.finish();
    };
    let port_s = env("PGPORT")
        .map(|p| first_of_list(&p).to_string())
        .unwrap_or_else(|| "5432".into());
    let Ok(port) = port_s.parse::<u16>() else {
        r.fail("host", &format!("PGPORT={port_s:?} is not a port number"));
        r.skip_rest(PG_CHECKS, "no port");
        return r.finish();
    };
    let database = env("PGDATABASE").unwrap_or_else(|| DEFAULT_DATABASE.to_string());
    let pguser = env("PGUSER");
    let user = pguser.clone().or_else(|| identity.clone());
    let sslmode = env("PGSSLMODE");
    let verify = matches!(sslmode.as_deref(), Some("verify-ca" | "verify-full"));
    let host_src = if pghost.is_some() {
        "PGHOST"
    } else {
        "the database's host"
    };
    let host_msg = format!("{host} port {port} (host from {host_src}), database {database:?}");
    if host.starts_with('/') {
        r.fail("host", &format!("{host} is a Unix-socket directory: Lakebase is reached over TCP with TLS; set PGHOST to the database's host name"));
        r.skip_rest(PG_CHECKS, "no TCP host");
        return r.finish();
    }
    match info.as_ref().map(|i| &i.all_hosts) {
        Some(all) if pghost.is_some() && !all.is_empty() && !all.iter().any(|h| h.eq_ignore_ascii_case(&host)) => {
            r.warn("host", &host_msg);
            r.detail(&format!(
                "PGHOST={host} is not a host of {} ({}): the token is only accepted there",
                target.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                all.join(", ")
            ));
        }
        _ => r.ok("host", &host_msg),
    }
    match sslmode.as_deref() {
        Some("disable") => {
            r.fail("sslmode", "PGSSLMODE=disable: Lakebase accepts logins only over TLS, so every login fails (\"no pg_hba.conf entry ... no encryption\"); use require (the default of lakebase exec) or verify-full");
        }
        Some("allow") => r.warn(
            "sslmode",
            "PGSSLMODE=allow tries an unencrypted connection first, which Lakebase rejects; use require or verify-full",
        ),
        Some(m @ ("prefer" | "require" | "verify-ca" | "verify-full")) => {
            r.ok("sslmode", &format!("{m} (from PGSSLMODE)"))
        }
        Some(other) => r.fail(
            "sslmode",
            &format!(
                "PGSSLMODE={other:?} is not a libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full)"
            ),
        ),
        None => r.ok(
            "sslmode",
            "not set: libpq's default (prefer) tries TLS first; the library and lakebase exec raise it to require",
        ),
    }
    match (&pguser, &identity) {
        (Some(u), Some(id)) if u != id => {
            r.warn("user", &format!("PGUSER={u:?}, but the token is for {id:?}"));
            r.detail("a Lakebase token logs in only as its own identity's role: expect the login to fail");
        }
        (Some(u), _) => r.ok("user", &format!("{u} (from PGUSER)")),
        (None, Some(id)) => r.ok("user", &format!("{id} (the identity; PGUSER is not set)")),
        (None, None) => r.skip("user", "PGUSER is not set and the identity is unknown (see identity)"),
    }

    // 7. DNS, TCP, TLS and a real login.
    let addrs = match pgwire::resolve(&host, port) {
        Ok(a) => {
            let shown: Vec<String> = a.iter().take(4).map(|x| x.ip().to_string()).collect();
            let more = if a.len() > 4 {
                format!(" and {} more", a.len() - 4)
            } else {
                String::new()
            };
            r.ok("dns", &format!("{host} -> {}{more}", shown.join(", ")));
            a
        }
        Err(m) => {
            r.fail("dns", &m);
            r.skip_rest(&["tcp", "tls", "login"], "no address");
            return r.finish();
        }
    };
    let tcp = match pgwire::connect(&addrs) {
        Ok((s, a, t)) => {
            r.ok("tcp", &format!("connected to {a} in {} ms", t.as_millis()));
            s
        }
        Err(errs) => {
            r.fail("tcp", &format!("cannot connect to {host} port {port}"));
            for e in errs {
                r.detail(&e);
            }
            r.skip_rest(&["tls", "login"], "no connection");
            return r.finish();
        }
    };
    let login_user = user.clone().unwrap_or_default();
    let pw = if login_user.is_empty() {
        None
    } else {
        password.as_ref().map(|p| p.expose())
    };
    match pgwire::login(tcp, &host, &login_user, &database, pw) {
        Attempt::TlsRefused => {
            r.fail("tls", "the server refused TLS (it answered 'N' to the SSLRequest): TLS is off on this server, so it is not a Lakebase database; Lakebase accepts logins only over TLS and a token is never sent without it");
            r.skip("login", "no TLS");
        }
        Attempt::TlsOddAnswer(m) | Attempt::TlsFailed(m) => {
            r.fail("tls", &m);
            r.skip("login", "no TLS");
        }
        Attempt::Done(tls, login) => {
            let base = format!("{} {}", tls.version, tls.cipher);
            match &tls.verified {
                Ok(()) => r.ok("tls", &format!("{base}; certificate verified for {host}")),
                Err(why) if verify => {
                    r.fail("tls", &format!("{base}; certificate NOT verified: {why}"));
                    r.detail(&format!("PGSSLMODE={} needs a verifiable certificate: set PGSSLROOTCERT to the CA that signed it (the login check below continues without verification)", sslmode.as_deref().unwrap_or("")));
                }
                Err(why) => {
                    r.warn("tls", &format!("{base}; certificate NOT verified: {why}"));
                    r.detail("continuing without verification for the login check only, as sslmode=require does; for verify-full, set PGSSLROOTCERT to the CA that signed the server certificate");
                }
            }
            for n in &tls.notes {
                r.detail(n);
            }
            match login {
                Login::Ok {
                    server_version,
                    password_asked,
                } => {
                    let v = server_version.map(|v| format!(" (PostgreSQL {v})")).unwrap_or_default();
                    let msg = format!("logged in as {login_user:?} to database {database:?}{v}");
                    if password_asked {
                        r.ok("login", &msg);
                    } else {
                        r.warn("login", &msg);
                        r.detail("the server did not ask for a password (trust authentication): this is not a Lakebase server");
                    }
                }
                Login::Error { fields, after_password } => {
                    r.fail(
                        "login",
                        &format!("{} {}: {}", fields.severity, fields.code, fields.message),
                    );
                    let exp = client.token_info().map(|i| i.expiry_ms);
                    for l in explain_login(&fields, &login_user, identity.as_deref(), &database, exp) {
                        r.detail(&l);
                    }
                    if !after_password && fields.code.starts_with("28") {
                        r.detail("(the server refused before asking for the password)");
                    }
                }
                Login::Unsupported(method) => {
                    r.fail("login", &format!("the server asked for {method} authentication"));
                    r.detail("Lakebase expects a cleartext password over TLS (the OAuth token is the password): this server keeps its own passwords, so it is not a Lakebase database, or PGHOST points elsewhere");
                }
                Login::Broken(m) => r.fail("login", &m),
                Login::NotAttempted if login_user.is_empty() => r.skip("login", "no user (see above)"),
                Login::NotAttempted => r.skip("login", "no password (see above)"),
            }
        }
    }
    r.finish()
}
