//! `databricks-cli`: tokens from the Databricks CLI's own login (`databricks auth login`), by
//! running `databricks auth token` (GO config/cli_token_source.go). The CLI's token cache is never
//! read directly: it may live in the OS keyring, and its format is the CLI's business.
//!
//! - The binary: `databricks_cli_path` / `DATABRICKS_CLI_PATH` (a path when it contains `/`, else a
//!   name looked up on `PATH`), default `databricks` on `PATH`. The legacy Python CLI is skipped:
//!   as in databricks-sdk 0.167, an executable under 1 MiB is read and rejected only when it is
//!   the old CLI's pip entry point (it contains `from databricks_cli.cli import `); smaller
//!   wrappers and shims named `databricks` are accepted. On `PATH`, the search goes on past a
//!   legacy CLI to the next `databricks`.
//! - `databricks version` → `Databricks CLI vX.Y.Z`. With a profile and CLI ≥ 0.207.1:
//!   `auth token --profile <profile>`; otherwise `auth token --host <host>` (+ `--account-id` on
//!   account hosts). CLI ≥ 0.296.0 also gets `--force-refresh`, so a refresh here yields a fresh
//!   token rather than the CLI's cached one. An unknown or development version gets neither.
//! - Output: `{"access_token", "token_type", "expiry"}`; expiry RFC 3339, or a local
//!   `YYYY-MM-DD HH:MM:SS[.fraction]`.
//!
//! "Configured" cannot be decided without asking the CLI whether it holds a login for this host,
//! so — as in the SDKs — resolving runs `databricks auth token` once (this is the only auth
//! method that does work while resolving). In the default chain a failure means "not
//! configured" (the reason is listed in the final error); with `auth_type=databricks-cli` it is
//! the error. The token it printed is kept, and the CLI runs again only to refresh.

use super::subprocess::{self, find_executable};
use super::token_source::{header_value, CachedCredentials, TokenSource};
use super::{host_of, non_empty, AuthContext, Credentials, Probe, Strategy};
use crate::cache::Fetched;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::timefmt::parse_expiry_ms;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Executables at least this large are taken for the current CLI without reading them.
pub const MIN_CLI_SIZE: u64 = 1024 * 1024;
/// What marks the legacy Python CLI's entry point script (SDK 0.167 `_LEGACY_CLI_MARKER`).
pub const LEGACY_CLI_MARKER: &[u8] = b"from databricks_cli.cli import ";
const VERSION_FOR_PROFILE: (u64, u64, u64) = (0, 207, 1);
const VERSION_FOR_FORCE_REFRESH: (u64, u64, u64) = (0, 296, 0);
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(60);

pub struct DatabricksCli;

struct CliSource {
    program: PathBuf,
    args: Vec<String>,
    login_hint: String,
}

impl TokenSource for CliSource {
    fn token(&self) -> Result<Fetched> {
        let out = subprocess::run(&self.program, &self.args, TOKEN_TIMEOUT, "databricks auth token")?;
        if !out.success() {
            let mut msg = format!("cannot get access token: {}: {}", out.stderr, out.status_text());
            if !out.stderr.contains("auth login") {
                msg.push_str(&format!(" (log in with `{}`)", self.login_hint));
            }
            return Err(Error::auth(msg));
        }
        parse_output(&out.stdout)
    }
}

/// `{"access_token", "token_type", "expiry"}` → header and expiry.
pub fn parse_output(stdout: &[u8]) -> Result<Fetched> {
    let v: serde_json::Value =
        serde_json::from_slice(stdout).map_err(|e| Error::auth(format!("cannot parse the output of `databricks auth token`: {e}")))?;
    let what = "databricks auth token";
    let token = super::token_source::token_field(&v, "access_token", what)?;
    let expiry = v.get("expiry").and_then(|s| s.as_str()).unwrap_or("");
    let expiry_ms = parse_expiry_ms(expiry).ok_or_else(|| {
        Error::auth(format!("cannot parse token expiry {} from `databricks auth token`", crate::sanitize::quoted(expiry, 64)))
    })?;
    Ok(Fetched { secret: header_value(v.get("token_type").and_then(|s| s.as_str()), token, what)?, expiry_ms })
}

/// `Databricks CLI v0.207.1` → (0, 207, 1); development builds (`v0.0.0-dev...`) and anything
/// else → `None`.
pub fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    let v = s.trim().strip_prefix("Databricks CLI ").unwrap_or(s.trim());
    let v = v.strip_prefix('v')?;
    if v.contains('-') || v.contains('+') {
        return None;
    }
    let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
    let ver = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(ver)
}

/// The arguments of the token command for a CLI of version `ver` (Go `buildCliCommand`).
pub fn token_args(cfg: &Config, ver: Option<(u64, u64, u64)>) -> Vec<String> {
    let at_least = |min| ver.is_some_and(|v| v >= min);
    let mut args: Vec<String> = vec!["auth".into(), "token".into()];
    match non_empty(&cfg.profile) {
        Some(p) if at_least(VERSION_FOR_PROFILE) => args.extend(["--profile".into(), p.to_string()]),
        _ => {
            args.extend(["--host".into(), host_of(cfg).unwrap_or_default().to_string()]);
            if cfg.is_account_host() {
                if let Some(a) = non_empty(&cfg.account_id) {
                    args.extend(["--account-id".into(), a.to_string()]);
                }
            }
        }
    }
    if at_least(VERSION_FOR_FORCE_REFRESH) {
        args.push("--force-refresh".into());
    } else {
        crate::log_debug!("databricks-cli: this CLI has no --force-refresh; its token cache may provide stale tokens");
    }
    args
}

/// Whether `path` is the legacy Python CLI (SDK 0.167 `_find_executable`): small, and its
/// content names the old CLI's module. `Err`: it cannot be read.
pub fn is_legacy_cli(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    if std::fs::metadata(path)?.len() >= MIN_CLI_SIZE {
        return Ok(false);
    }
    let mut data = Vec::new();
    std::fs::File::open(path)?.take(MIN_CLI_SIZE).read_to_end(&mut data)?;
    Ok(data.windows(LEGACY_CLI_MARKER.len()).any(|w| w == LEGACY_CLI_MARKER))
}

/// The CLI binary, or why there is none.
fn find_cli(cfg: &Config, ctx: &AuthContext) -> std::result::Result<PathBuf, String> {
    let explicit = non_empty(&cfg.databricks_cli_path);
    let name = explicit.unwrap_or("databricks");
    let legacy = |p: &Path| format!("{} is the legacy Databricks CLI (< 0.100.0); install the current one", p.display());
    let candidates: Vec<PathBuf> = if name.contains('/') {
        find_executable(name, &*ctx.env).into_iter().collect()
    } else {
        let path = ctx.env.var("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .filter(|d| !d.as_os_str().is_empty())
            .filter_map(|d| find_executable(&d.join(name).to_string_lossy(), &*ctx.env))
            .collect()
    };
    let mut why = None;
    for path in candidates {
        let real = std::fs::canonicalize(&path).unwrap_or(path);
        match is_legacy_cli(&real) {
            Ok(false) => return Ok(real),
            Ok(true) => why = Some(legacy(&real)),
            Err(e) => why = why.or(Some(format!("cannot read {}: {e}", real.display()))),
        }
    }
    Err(why.unwrap_or_else(|| match explicit {
        Some(p) => format!("databricks_cli_path {p:?} is not an executable file"),
        None => "the Databricks CLI (`databricks`) is not on PATH".to_string(),
    }))
}

fn cli_version(program: &Path) -> Option<(u64, u64, u64)> {
    match subprocess::run(program, &["version".to_string()], VERSION_TIMEOUT, "databricks version") {
        Ok(o) if o.success() => {
            let v = parse_version(String::from_utf8_lossy(&o.stdout).trim());
            if v.is_none() {
                crate::log_info!("databricks-cli: unknown or development CLI version; using the conservative flag set");
            }
            v
        }
        Ok(o) => {
            crate::log_warn!("databricks-cli: `databricks version` failed ({}); using the conservative flag set", o.status_text());
            None
        }
        Err(e) => {
            crate::log_warn!("databricks-cli: {e}; using the conservative flag set");
            None
        }
    }
}

impl Strategy for DatabricksCli {
    fn name(&self) -> &'static str {
        "databricks-cli"
    }
    // supports_group: false — the CLI's login is the user's own (SDK 0.167).
    fn requirement(&self) -> &'static str {
        "needs host and the Databricks CLI >= 0.100 on PATH (or DATABRICKS_CLI_PATH), logged in with `databricks auth login --host <host>`"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        Ok(match self.probe(cfg, ctx, false)? {
            Probe::Configured(c) => Some(c),
            Probe::NotConfigured(_) => None,
        })
    }
    fn probe(&self, cfg: &Config, ctx: &AuthContext, forced: bool) -> Result<Probe> {
        let Some(host) = host_of(cfg) else {
            if forced {
                return Err(Error::config("host is required"));
            }
            return Ok(Probe::NotConfigured(None));
        };
        let program = match find_cli(cfg, ctx) {
            Ok(p) => p,
            Err(why) => return Ok(Probe::NotConfigured(Some(why))),
        };
        let ver = cli_version(&program);
        let login_hint = match non_empty(&cfg.profile) {
            Some(p) => format!("databricks auth login --profile {p}"),
            None => format!("databricks auth login --host {host}"),
        };
        let src = CliSource { args: token_args(cfg, ver), program, login_hint };
        match src.token() {
            Ok(first) => Ok(Probe::Configured(Arc::new(CachedCredentials::primed("databricks-cli", src, ctx, first)))),
            Err(e) if forced => Err(e),
            Err(e) => {
                crate::log_debug!("databricks-cli: not usable: {e}");
                Ok(Probe::NotConfigured(Some(format!("`databricks auth token` failed: {}", e.message()))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str, profile: Option<&str>) -> Config {
        Config { host: Some(host.into()), profile: profile.map(String::from), ..Config::default() }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("Databricks CLI v0.207.1"), Some((0, 207, 1)));
        assert_eq!(parse_version("Databricks CLI v0.296.0\n"), Some((0, 296, 0)));
        assert_eq!(parse_version("Databricks CLI v0.0.0-dev+abc"), None);
        assert_eq!(parse_version("Databricks CLI 1.2"), None);
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn command_by_version() {
        let h = "https://x.cloud.databricks.com";
        let s = |v: Vec<String>| v.join(" ");
        assert_eq!(s(token_args(&cfg(h, Some("dev")), Some((0, 296, 0)))), "auth token --profile dev --force-refresh");
        assert_eq!(s(token_args(&cfg(h, Some("dev")), Some((0, 207, 1)))), "auth token --profile dev");
        assert_eq!(s(token_args(&cfg(h, Some("dev")), Some((0, 207, 0)))), format!("auth token --host {h}"));
        assert_eq!(s(token_args(&cfg(h, Some("dev")), None)), format!("auth token --host {h}"));
        assert_eq!(s(token_args(&cfg(h, None), Some((1, 0, 0)))), format!("auth token --host {h} --force-refresh"));
        let mut acct = cfg("https://accounts.cloud.databricks.com", None);
        acct.account_id = Some("abc".into());
        assert_eq!(s(token_args(&acct, Some((0, 250, 0)))), "auth token --host https://accounts.cloud.databricks.com --account-id abc");
    }

    #[test]
    fn output() {
        let f = parse_output(br#"{"access_token": "tok", "token_type": "Bearer", "expiry": "2026-08-19T12:00:00.5Z"}"#).unwrap();
        assert_eq!((f.secret.expose(), f.expiry_ms), ("Bearer tok", 1_787_140_800_500));
        assert!(parse_output(br#"{"access_token": "tok", "expiry": "soon"}"#).unwrap_err().message().contains("expiry"));
        let e = parse_output(b"not json").unwrap_err();
        assert!(!e.message().contains("not json"));
        assert!(parse_output(br#"{"token_type": "Bearer", "expiry": "2026-08-19T12:00:00Z"}"#).is_err());
    }
}
