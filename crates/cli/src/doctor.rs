//! `lakebase doctor`: walk configuration → auth → workspace API → DNS → TCP → TLS → login, one
//! line per check, and explain the classic failures. Never prints a token or secret.
//!
//! Each check is one method of [`Doctor`], the context they share: a check reads what earlier
//! checks found (the configuration, the client, the identity, the database) and either records
//! what it found or stops the walk, after which the remaining checks are reported as skipped.

use crate::cli::Global;
use crate::pgwire::{self, Attempt, ErrorFields, Login};
use crate::whoami::auth_source;
use crate::{now_ms, relative, rfc3339, EXIT_FAILURE, EXIT_OK};
use lakebase_core::auth::{AuthStep, StepOutcome};
use lakebase_core::config::{Config, ProcessEnv, Source};
use lakebase_core::{Client, Error, ErrorKind, Secret, Target, TargetInfo};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};

const DEFAULT_DATABASE: &str = "databricks_postgres";

/// The library's setting that turns server verification off for tokens (plain sslmode=require).
const VERIFY_ENV: &str = "LAKEBASE_VERIFY_SERVER";

/// Whether a token goes only to a server whose certificate verifies (the library's default).
fn verify_server() -> bool {
    !env(VERIFY_ENV).is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off"))
}

/// Read timeout and total time (retries included) of each workspace call, so an unreachable
/// workspace costs seconds, not minutes; and no shared cache: the doctor checks the workspace
/// itself (a fresh identity and mint), not what another process learned.
const DOCTOR_HTTP_DEFAULTS: [(&str, &str); 3] = [("http_timeout_seconds", "10"), ("retry_timeout_seconds", "15"), ("cache", "off")];

/// The report being printed, line by line as checks finish.
struct Report {
    failed: usize,
    warned: usize,
    broken_pipe: bool,
    /// Checks reported so far (by name).
    reported: Vec<String>,
}

impl Report {
    fn line(&mut self, s: &str) {
        if self.broken_pipe {
            return;
        }
        let mut o = std::io::stdout().lock();
        if o.write_all(s.as_bytes()).and_then(|_| o.write_all(b"\n")).and_then(|_| o.flush()).is_err() {
            self.broken_pipe = true;
        }
    }
    fn check(&mut self, mark: &str, name: &str, msg: &str) {
        self.reported.push(name.to_string());
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
    if e.error_code() == Some(lakebase_core::http::apierr::PRIVATE_LINK_ERROR_CODE) {
        return Some(format!(
            "the workspace {host} answered with its private-link sign-in redirect: it accepts connections only through its private endpoint, and this machine's network does not reach it that way. Run from a network with access to the private endpoint (the VPC/VNet, a VPN, a peered network), or ask the workspace admin; retrying from here cannot succeed"
        ));
    }
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
                if let Ok(list) = lakebase_core::api::database::list_instances(client.api()) {
                    let names: Vec<&str> = list.iter().filter_map(|i| i.get("name").and_then(|n| n.as_str())).take(10).collect();
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
            if lakebase_core::api::database::get_instance(client.api(), short).is_ok() {
                v.push(format!("a Provisioned instance named {short:?} exists: set LAKEBASE_INSTANCE={short}"));
            }
        }
    }
    v
}

/// What a failed Postgres login means.
fn explain_login(f: &ErrorFields, user: &str, identity: Option<&str>, database: &str, expiry_ms: Option<i64>) -> Vec<String> {
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

/// Why the walk stopped: the reason printed for every check that did not run.
struct Stop(&'static str);

const ALL_CHECKS: &[&str] =
    &["config", "auth", "identity", "database", "password", "host", "sslmode", "user", "dns", "tcp", "tls", "login"];

/// One check: reports itself, then lets the walk go on or stops it.
type Check = fn(&mut Doctor) -> Result<(), Stop>;

/// What the checks share.
struct Doctor {
    r: Report,
    /// The user's options plus the doctor's bounded HTTP defaults.
    opts: Vec<(String, String)>,
    /// Option keys the doctor added (not shown as "from the command line").
    injected: Vec<String>,
    cfg: Option<Config>,
    client: Option<Client>,
    identity: Option<String>,
    /// Why the workspace API checks after `identity` cannot succeed.
    workspace_down: Option<&'static str>,
    info: Option<TargetInfo>,
    password: Option<Secret>,
    pg: Option<PgTarget>,
    addrs: Vec<SocketAddr>,
    tcp: Option<TcpStream>,
}

/// Where the login goes.
struct PgTarget {
    host: String,
    port: u16,
    database: String,
    pguser: Option<String>,
    user: Option<String>,
    sslmode: Option<String>,
}

pub fn run(g: &Global) -> u8 {
    // Bounded workspace calls unless the user chose otherwise (their options come later and win).
    let user_opts = g.all_options();
    let mut opts: Vec<(String, String)> = Vec::new();
    for (k, v) in DOCTOR_HTTP_DEFAULTS {
        if !user_opts.iter().any(|(uk, _)| uk == k) {
            opts.push((k.to_string(), v.to_string()));
        }
    }
    let injected = opts.iter().map(|(k, _)| k.clone()).collect();
    opts.extend(user_opts);
    let mut d = Doctor {
        r: Report { failed: 0, warned: 0, broken_pipe: false, reported: Vec::new() },
        opts,
        injected,
        cfg: None,
        client: None,
        identity: None,
        workspace_down: None,
        info: None,
        password: None,
        pg: None,
        addrs: Vec::new(),
        tcp: None,
    };
    let checks: [(&str, Check); 12] = [
        ("config", Doctor::config),
        ("auth", Doctor::auth),
        ("identity", Doctor::identity),
        ("database", Doctor::database),
        ("password", Doctor::password),
        ("host", Doctor::host),
        ("sslmode", Doctor::sslmode),
        ("user", Doctor::user),
        ("dns", Doctor::dns),
        ("tcp", Doctor::tcp),
        ("tls", Doctor::tls_and_login),
        ("login", |_| Ok(())), // reported by tls_and_login: one TLS session carries the login
    ];
    debug_assert_eq!(checks.iter().map(|c| c.0).collect::<Vec<_>>(), ALL_CHECKS);
    for (i, (_, check)) in checks.iter().enumerate() {
        if let Err(Stop(why)) = check(&mut d) {
            // The check that stopped the walk reported itself (and possibly some after it).
            let done = d.r.reported.clone();
            let rest: Vec<&str> = ALL_CHECKS[i + 1..].iter().copied().filter(|n| !done.iter().any(|x| x == n)).collect();
            d.r.skip_rest(&rest, why);
            break;
        }
    }
    d.r.finish()
}

impl Doctor {
    fn client(&self) -> &Client {
        self.client.as_ref().expect("checks after auth run only with a client")
    }

    /// 1. Configuration: what is set and where each setting came from.
    fn config(&mut self) -> Result<(), Stop> {
        let cfg = match Config::resolve(&self.opts, &ProcessEnv) {
            Ok(c) => c,
            Err(e) => {
                self.r.fail("config", e.message());
                return Err(Stop("no usable configuration"));
            }
        };
        let summary = cfg.debug_string();
        self.r.ok("config", if summary.is_empty() { "nothing is set" } else { &summary });
        let mut seen: Vec<&str> = Vec::new();
        for (name, _) in &cfg.sources {
            if !seen.contains(name) {
                seen.push(name);
            }
        }
        for name in &seen {
            if self.injected.iter().any(|k| k == name) {
                continue;
            }
            if let Some(src) = cfg.source_of(name) {
                self.r.detail(&format!("{name:<20} from {}", source_name(&cfg, src)));
            }
        }
        match &cfg.loaded_file {
            Some(f) => self.r.detail(&format!(
                "{:<20} {} (profile {})",
                "config file",
                f.display(),
                cfg.profile.as_deref().map(|p| format!("[{p}]")).unwrap_or_else(|| "none".into())
            )),
            None => {
                let path = cfg.config_file.clone().unwrap_or_else(|| "~/.databrickscfg".to_string());
                let exists = lakebase_core::config::profiles::expand_home(&path, &ProcessEnv).is_ok_and(|p| p.is_file());
                if exists {
                    self.r.detail(&format!(
                        "{:<20} {path} not read: host or credentials are already set and no profile is named (DATABRICKS_CONFIG_PROFILE or --profile combine them)",
                        "config file"
                    ));
                } else {
                    self.r.detail(&format!("{:<20} {path} does not exist", "config file"));
                }
            }
        }
        self.cfg = Some(cfg);
        Ok(())
    }

    /// 2. Auth method: the chain's own trace of every method and why it was or was not picked.
    fn auth(&mut self) -> Result<(), Stop> {
        let mut trace: Vec<AuthStep> = Vec::new();
        let built = lakebase_core::Client::builder().options(self.opts.clone()).build_traced(&mut trace);
        let lines: Vec<String> = trace.iter().map(describe_step).collect();
        match built {
            Ok(c) => {
                let src = auth_source(&self.opts, c.auth_type()).map(|s| format!(" (from {s})")).unwrap_or_default();
                self.r.ok("auth", &format!("{}{src}", c.auth_type()));
                for l in &lines {
                    self.r.detail(l);
                }
                self.client = Some(c);
                Ok(())
            }
            Err(e) => {
                self.r.fail("auth", e.message());
                for l in &lines {
                    self.r.detail(l);
                }
                Err(Stop("no auth method"))
            }
        }
    }

    /// 3. Identity (SCIM /Me): proves the workspace accepts the credentials.
    fn identity(&mut self) -> Result<(), Stop> {
        let (auth_type, ws) = (self.client().auth_type(), self.client().host().to_string());
        match self.client().identity() {
            Ok(id) => {
                let group = self.client().group_id().is_some()
                    || self.cfg.as_ref().and_then(|c| c.group_name.as_deref()).is_some_and(|g| !g.is_empty());
                if !group {
                    self.r.ok("identity", &format!("{id} (its userName is the Postgres role the password logs in as)"));
                    self.identity = Some(id);
                    return Ok(());
                }
                // Acting for a group: the password logs in as the group's role, not the identity's.
                match self.client().postgres_role() {
                    Ok(role) => {
                        self.r.ok(
                            "identity",
                            &format!("{id}, acting for a group: the password logs in as the group's Postgres role {role:?}"),
                        );
                        self.identity = Some(role);
                    }
                    Err(e) => {
                        self.r.fail("identity", &format!("{id}, acting for a group, but the group's role is unknown: {}", e.message()));
                        self.identity = Some(id);
                    }
                }
            }
            Err(e) => {
                self.r.fail("identity", e.message());
                if let Some(x) = explain_api(&e, auth_type, &ws) {
                    self.r.detail(&x);
                }
                if e.error_code() == Some(lakebase_core::http::apierr::PRIVATE_LINK_ERROR_CODE) {
                    self.workspace_down = Some("the workspace is reachable only through its private endpoint (see identity)");
                } else if e.kind() == ErrorKind::Network {
                    self.workspace_down = Some("the workspace cannot be reached (see identity)");
                } else if matches!(e.status(), Some(401 | 403)) {
                    self.workspace_down = Some("the workspace did not accept the credentials (see identity)");
                }
            }
        }
        Ok(())
    }

    /// 4. The database: instance or endpoint, its state and host.
    fn database(&mut self) -> Result<(), Stop> {
        let Some(t) = self.client().target().cloned() else {
            self.r.fail("database", lakebase_core::target::NO_TARGET);
            self.r.skip("password", "no database configured");
            return Ok(());
        };
        if let Some(why) = self.workspace_down {
            self.r.skip_rest(&["database", "password"], why);
            return Ok(());
        }
        let (auth_type, ws) = (self.client().auth_type(), self.client().host().to_string());
        match self.client().describe_target() {
            Ok(i) => {
                let state = i.state.clone().unwrap_or_else(|| "state unknown".into());
                let host = i.host.clone().unwrap_or_else(|| "no host reported".into());
                let pending = i.pending_state.as_deref().filter(|p| Some(*p) != i.state.as_deref());
                let msg = match pending {
                    Some(p) => format!("{t}: {state} (changing to {p}), host {host}"),
                    None => format!("{t}: {state}, host {host}"),
                };
                if i.disabled == Some(true) {
                    self.r.fail("database", &format!("{msg}; disabled"));
                    self.r.detail("the endpoint is disabled (status.disabled): it does not wake on connect, so every login fails until it is enabled again in the Lakebase UI (or with the API)");
                    self.info = Some(i);
                    return Ok(());
                }
                match i.state.as_deref() {
                    Some("AVAILABLE" | "ACTIVE") => self.r.ok("database", &msg),
                    Some("IDLE") => {
                        self.r.ok("database", &msg);
                        if pending == Some("ACTIVE") {
                            self.r.detail("idle and already waking up: the first connection may be refused or slow for a moment");
                        } else {
                            self.r.detail("idle (scaled to zero): it wakes on the first connection, which may take a few seconds");
                        }
                    }
                    Some("STOPPED" | "DELETING" | "DELETED" | "FAILED" | "DISABLED") => {
                        self.r.fail("database", &msg);
                        self.r.detail("the database cannot accept connections in this state: start it in the Lakebase UI");
                    }
                    _ => {
                        self.r.warn("database", &msg);
                        self.r
                            .detail("the database is not in a serving state (AVAILABLE / ACTIVE / IDLE) yet; logins may fail until it is");
                    }
                }
                self.info = Some(i);
            }
            Err(e) => {
                self.r.fail("database", e.message());
                if e.status() == Some(404) {
                    for l in explain_not_found(&e, &t, self.client()) {
                        self.r.detail(&l);
                    }
                } else if let Some(x) = explain_api(&e, auth_type, &ws) {
                    self.r.detail(&x);
                }
            }
        }
        Ok(())
    }

    /// 5. A password, as `lakebase password` and the library mint it.
    fn password(&mut self) -> Result<(), Stop> {
        if self.r.reported.iter().any(|n| n == "password") {
            return Ok(()); // already reported as skipped by `database`
        }
        let Some(t) = self.client().target().cloned() else { return Ok(()) };
        let (auth_type, ws) = (self.client().auth_type(), self.client().host().to_string());
        match self.client().password() {
            Ok(p) => {
                let exp = self.client().token_info().map(|i| i.expiry_ms);
                let when = exp.map(|e| format!("; expires {} ({})", rfc3339(e), relative(e - now_ms()))).unwrap_or_default();
                self.r.ok("password", &format!("minted a token for {t}{when}"));
                self.password = Some(p);
            }
            Err(e) => {
                self.r.fail("password", e.message());
                match e.status() {
                    Some(404) if self.info.is_none() => self.r.detail("the database was not found (see above)"),
                    Some(404) => {
                        for l in explain_not_found(&e, &t, self.client()) {
                            self.r.detail(&l);
                        }
                    }
                    Some(403) if self.identity.is_some() => self.r.detail(&format!(
                        "the workspace accepts the {auth_type} credentials but refuses a database password: the identity has no permission on {t}"
                    )),
                    _ => {
                        if let Some(x) = explain_api(&e, auth_type, &ws) {
                            self.r.detail(&x);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// 6. The Postgres side: host and port.
    fn host(&mut self) -> Result<(), Stop> {
        let pghost = env("PGHOST").map(|h| first_of_list(&h).to_string()).filter(|h| !h.is_empty());
        let Some(host) = pghost.clone().or_else(|| self.info.as_ref().and_then(|i| i.host.clone())) else {
            self.r.fail("host", "no Postgres host: set PGHOST, or configure a database whose host the API reports");
            return Err(Stop("no host"));
        };
        let port_s = env("PGPORT").map(|p| first_of_list(&p).to_string()).unwrap_or_else(|| "5432".into());
        let Ok(port) = port_s.parse::<u16>() else {
            self.r.fail("host", &format!("PGPORT={port_s:?} is not a port number"));
            return Err(Stop("no port"));
        };
        let database = env("PGDATABASE").unwrap_or_else(|| DEFAULT_DATABASE.to_string());
        let host_src = if pghost.is_some() { "PGHOST" } else { "the database's host" };
        let host_msg = format!("{host} port {port} (host from {host_src}), database {database:?}");
        if host.starts_with('/') {
            self.r.fail(
                "host",
                &format!(
                    "{host} is a Unix-socket directory: Lakebase is reached over TCP with TLS; set PGHOST to the database's host name"
                ),
            );
            return Err(Stop("no TCP host"));
        }
        match self.info.as_ref().map(|i| &i.all_hosts) {
            Some(all) if pghost.is_some() && !all.is_empty() && !all.iter().any(|h| h.eq_ignore_ascii_case(&host)) => {
                self.r.warn("host", &host_msg);
                self.r.detail(&format!(
                    "PGHOST={host} is not a host of {} ({}): the token is only accepted there",
                    self.client().target().map(|t| t.to_string()).unwrap_or_default(),
                    all.join(", ")
                ));
            }
            _ => self.r.ok("host", &host_msg),
        }
        if self.info.as_ref().is_some_and(|i| i.pooled_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host))) {
            self.r.detail(&format!(
                "{host} is the endpoint's connection-pooler (PgBouncer) host: Databricks documents OAuth (token) logins through the pooler only on AWS; elsewhere use the endpoint's direct host{}",
                self.info.as_ref().and_then(|i| i.host.as_deref()).map(|h| format!(" ({h})")).unwrap_or_default()
            ));
        }
        let pguser = env("PGUSER");
        let user = pguser.clone().or_else(|| self.identity.clone());
        self.pg = Some(PgTarget { host, port, database, pguser, user, sslmode: env("PGSSLMODE") });
        Ok(())
    }

    fn pg(&self) -> &PgTarget {
        self.pg.as_ref().expect("checks after host run only with a host")
    }

    /// 7. sslmode.
    fn sslmode(&mut self) -> Result<(), Stop> {
        match self.pg().sslmode.clone().as_deref() {
            Some("disable") => {
                self.r.fail("sslmode", "PGSSLMODE=disable: Lakebase accepts logins only over TLS, so every login fails (\"no pg_hba.conf entry ... no encryption\"); use verify-full (what the library uses for its tokens) or require");
            }
            Some("allow") => self.r.warn(
                "sslmode",
                "PGSSLMODE=allow tries an unencrypted connection first, which Lakebase rejects; use require or verify-full",
            ),
            Some(m @ ("prefer" | "require" | "verify-ca" | "verify-full")) => self.r.ok("sslmode", &format!("{m} (from PGSSLMODE)")),
            Some(other) => self.r.fail(
                "sslmode",
                &format!("PGSSLMODE={other:?} is not a libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full)"),
            ),
            None => self.r.ok(
                "sslmode",
                "not set: libpq's default (prefer) tries TLS first; for its tokens the library (and lakebase exec) uses verify-full",
            ),
        }
        Ok(())
    }

    /// 8. The Postgres user.
    fn user(&mut self) -> Result<(), Stop> {
        match (self.pg().pguser.clone(), self.identity.clone()) {
            (Some(u), Some(id)) if u != id => {
                self.r.warn("user", &format!("PGUSER={u:?}, but the token is for {id:?}"));
                self.r.detail("a Lakebase token logs in only as its own identity's role: expect the login to fail");
            }
            (Some(u), _) => self.r.ok("user", &format!("{u} (from PGUSER)")),
            (None, Some(id)) => self.r.ok("user", &format!("{id} (the identity; PGUSER is not set)")),
            (None, None) => self.r.skip("user", "PGUSER is not set and the identity is unknown (see identity)"),
        }
        Ok(())
    }

    /// 9. DNS.
    fn dns(&mut self) -> Result<(), Stop> {
        let (host, port) = (self.pg().host.clone(), self.pg().port);
        match pgwire::resolve(&host, port) {
            Ok(a) => {
                let shown: Vec<String> = a.iter().take(4).map(|x| x.ip().to_string()).collect();
                let more = if a.len() > 4 { format!(" and {} more", a.len() - 4) } else { String::new() };
                self.r.ok("dns", &format!("{host} -> {}{more}", shown.join(", ")));
                self.addrs = a;
                Ok(())
            }
            Err(m) => {
                self.r.fail("dns", &m);
                Err(Stop("no address"))
            }
        }
    }

    /// 10. TCP.
    fn tcp(&mut self) -> Result<(), Stop> {
        match pgwire::connect(&self.addrs) {
            Ok((s, a, t)) => {
                self.r.ok("tcp", &format!("connected to {a} in {} ms", t.as_millis()));
                self.tcp = Some(s);
                Ok(())
            }
            Err(errs) => {
                let (host, port) = (&self.pg().host, self.pg().port);
                let msg = format!("cannot connect to {host} port {port}");
                self.r.fail("tcp", &msg);
                for e in errs {
                    self.r.detail(&e);
                }
                Err(Stop("no connection"))
            }
        }
    }

    /// 11 + 12. TLS, then a real login in the same session, all within one deadline. The token
    /// is sent only as the library sends it: to a server whose certificate verifies for the host
    /// (unless LAKEBASE_VERIFY_SERVER=0), and only when the host is one of the configured
    /// database's hosts.
    fn tls_and_login(&mut self) -> Result<(), Stop> {
        let Some(tcp) = self.tcp.take() else { return Err(Stop("no connection")) };
        let pg = self.pg.take().expect("host ran");
        // The library keeps an explicit verify-ca/verify-full even when verification is off.
        let require_verified = verify_server() || matches!(pg.sslmode.as_deref(), Some("verify-ca" | "verify-full"));
        let login_user = pg.user.clone().unwrap_or_default();
        let (host, database) = (&pg.host, &pg.database);
        // Whether the host is the configured database's own (as the API reports its hosts).
        let mut all_hosts: Option<Vec<String>> = self.info.as_ref().map(|i| i.all_hosts.clone());
        if let Some(v) = all_hosts.as_mut() {
            v.dedup();
        }
        let not_its_host: Option<String> = match all_hosts.as_ref() {
            Some(all) if !all.is_empty() && all.iter().any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(host.trim_end_matches('.'))) => None,
            Some(all) if !all.is_empty() => Some(format!(
                "{host} is not a host of {} ({}): the token is not sent to it",
                self.client().target().map(|t| t.to_string()).unwrap_or_default(),
                all.join(", ")
            )),
            _ => Some(format!("the configured database's hosts are unknown (see database), so {host} cannot be confirmed as its host: the token is not sent")),
        };
        let pw = if login_user.is_empty() || not_its_host.is_some() { None } else { self.password.as_ref().map(|p| p.expose()) };
        let attempt = pgwire::login(tcp, host, &login_user, database, pgwire::LOGIN_DEADLINE, |tls| match &tls.verified {
            Ok(()) => pw,
            Err(_) if !require_verified => pw,
            Err(_) => None,
        });
        match attempt {
            Attempt::TlsRefused => {
                self.r.fail("tls", "the server refused TLS (it answered 'N' to the SSLRequest): TLS is off on this server, so it is not a Lakebase database; Lakebase accepts logins only over TLS and a token is never sent without it");
                self.r.skip("login", "no TLS");
            }
            Attempt::TlsOddAnswer(m) | Attempt::TlsFailed(m) => {
                self.r.fail("tls", &m);
                self.r.skip("login", "no TLS");
            }
            Attempt::Done(tls, login) => {
                let base = format!("{} {}", tls.version, tls.cipher);
                let verified = tls.verified.is_ok();
                match &tls.verified {
                    Ok(()) => self.r.ok("tls", &format!("{base}; certificate verified for {host}")),
                    Err(why) if require_verified => {
                        self.r.fail("tls", &format!("{base}; certificate NOT verified: {why}"));
                        self.r.detail(&format!("a Lakebase token is sent only to a server whose certificate verifies for the host (as the library does): set PGSSLROOTCERT to the CA that signed the server certificate, or {}=0 to send it over unverified TLS (plain sslmode=require)", VERIFY_ENV));
                    }
                    Err(why) => {
                        self.r.warn("tls", &format!("{base}; certificate NOT verified: {why}"));
                        self.r.detail(&format!("{VERIFY_ENV}=0: continuing without verification, as plain sslmode=require does; to verify, set PGSSLROOTCERT to the CA that signed the server certificate"));
                    }
                }
                for n in &tls.notes {
                    self.r.detail(n);
                }
                match &not_its_host {
                    Some(why) if !login_user.is_empty() && self.password.is_some() => {
                        self.r.fail("login", &format!("not attempted: {why}"))
                    }
                    _ if !verified && require_verified && !login_user.is_empty() && self.password.is_some() => {
                        self.r.skip("login", "the server's certificate did not verify (see tls): no token was sent")
                    }
                    _ => self.login(login, &login_user, database),
                }
            }
        }
        Ok(())
    }

    fn login(&mut self, login: Login, login_user: &str, database: &str) {
        match login {
            Login::Ok { server_version, password_asked } => {
                let v = server_version.map(|v| format!(" (PostgreSQL {v})")).unwrap_or_default();
                let msg = format!("logged in as {login_user:?} to database {database:?}{v}");
                if password_asked {
                    self.r.ok("login", &msg);
                } else {
                    self.r.warn("login", &msg);
                    self.r.detail("the server did not ask for a password (trust authentication): this is not a Lakebase server");
                }
            }
            Login::Error { fields, after_password } => {
                self.r.fail("login", &format!("{} {}: {}", fields.severity, fields.code, fields.message));
                let exp = self.client().token_info().map(|i| i.expiry_ms);
                for l in explain_login(&fields, login_user, self.identity.as_deref(), database, exp) {
                    self.r.detail(&l);
                }
                if !after_password && fields.code.starts_with("28") {
                    self.r.detail("(the server refused before asking for the password)");
                }
            }
            Login::Unsupported(method) => {
                self.r.fail("login", &format!("the server asked for {method} authentication"));
                self.r.detail("Lakebase expects a cleartext password over TLS (the OAuth token is the password): this server keeps its own passwords, so it is not a Lakebase database, or PGHOST points elsewhere");
            }
            Login::Broken(m) => self.r.fail("login", &m),
            Login::NotAttempted if login_user.is_empty() => self.r.skip("login", "no user (see above)"),
            Login::NotAttempted => self.r.skip("login", "no password (see above)"),
        }
    }
}

/// One line of the auth trace.
fn describe_step(s: &AuthStep) -> String {
    let name = s.name;
    match &s.outcome {
        StepOutcome::Picked => format!("{name:<20} configured: picked"),
        StepOutcome::NotConfigured(what) => format!("{name:<20} not configured: {what}"),
        StepOutcome::Failed(msg) => format!("{name:<20} failed: {msg}"),
        StepOutcome::NotTried => format!("{name:<20} not tried: the chain stopped earlier"),
        StepOutcome::Skipped => format!("{name:<20} skipped: auth_type names another method"),
    }
}
