//! Chain-level tests: order, precedence, "nothing configured", and each method against a tiny
//! loopback HTTP server or a fake helper program (no network beyond 127.0.0.1).

use super::*;
use crate::clock::{ManualClock, SystemClock};
use crate::config::MapEnv;
use crate::http::HttpOptions;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Mutex;

/// A request as the test server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

type Handler = dyn Fn(&Seen) -> (u16, Vec<(String, String)>, String) + Send + Sync;

/// A loopback HTTP/1.1 server answering with `handler`; records every request.
struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(handler: Box<Handler>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let s2 = seen.clone();
        let handler: Arc<Handler> = Arc::from(handler);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { continue };
                let seen = s2.clone();
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
                        let mut headers = HashMap::new();
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            let (k, v) = h.split_once(':').unwrap();
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                        let n: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                        let mut body = vec![0; n];
                        r.read_exact(&mut body).unwrap();
                        let req = Seen { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() };
                        seen.lock().unwrap().push(req.clone());
                        let (status, hdrs, body) = handler(&req);
                        let mut out =
                            format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/json\r\n", body.len());
                        for (k, v) in hdrs {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        out.push_str(&body);
                        if conn.write_all(out.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Server { url, seen }
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

fn env(pairs: &[(&str, &str)]) -> Arc<MapEnv> {
    let mut m = MapEnv::from_pairs(pairs.iter().copied());
    m.0.entry("HOME".into()).or_insert_with(|| "/nonexistent/lakebase-auth-test".into());
    m.0.entry("PATH".into()).or_insert_with(|| "/nonexistent".into());
    Arc::new(m)
}

fn ctx(env: Arc<MapEnv>) -> AuthContext {
    let clock: SharedClock = Arc::new(SystemClock);
    AuthContext { http: Arc::new(HttpClient::new(HttpOptions::default(), clock.clone())), clock, env, metadata: None }
}

fn resolve_with(options: &str, e: Arc<MapEnv>) -> Result<Arc<dyn Credentials>> {
    let cfg = Config::resolve(&crate::config::parse_options(options).unwrap(), &*e)?;
    let clock: SharedClock = Arc::new(SystemClock);
    resolve(&cfg, &AuthContext::new(&cfg, Arc::new(HttpClient::new(HttpOptions::default(), clock.clone())), clock, e))
}

#[test]
fn chain_is_in_go_sdk_order() {
    let names: Vec<_> = strategies().iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "pat",
            "basic",
            "oauth-m2m",
            "databricks-cli",
            "metadata-service",
            "github-oidc",
            "azure-devops-oidc",
            "env-oidc",
            "file-oidc",
            "github-oidc-azure",
            "azure-msi",
            "azure-client-secret",
            "azure-cli",
            "model-serving"
        ]
    );
}

#[test]
fn empty_environment_says_what_to_set() {
    let e = resolve_with("", env(&[])).err().unwrap();
    let m = e.message();
    assert_eq!(e.kind(), crate::error::ErrorKind::Config);
    assert!(m.contains("Set DATABRICKS_HOST"), "{m}");
    assert!(m.contains("DATABRICKS_TOKEN") && m.contains("DATABRICKS_CLIENT_ID + DATABRICKS_CLIENT_SECRET"), "{m}");
    assert!(m.contains("databricks auth login"), "{m}");
    for s in strategies() {
        assert!(m.contains(&format!("{} (", s.name())), "{} missing in {m}", s.name());
    }

    let e = resolve_with("", env(&[("DATABRICKS_HOST", "https://x.cloud.databricks.com")])).err().unwrap();
    let m = e.message();
    assert!(m.contains("no auth method is configured for this host"), "{m}");
    assert!(m.contains("databricks-cli (the Databricks CLI (`databricks`) is not on PATH;"), "{m}");
    assert!(m.ends_with("Config: host=https://x.cloud.databricks.com. Env: DATABRICKS_HOST"), "{m}");
}

#[test]
fn forced_auth_type() {
    let e = resolve_with("auth_type=nope", env(&[("DATABRICKS_HOST", "https://x.cloud.databricks.com")])).err().unwrap();
    assert!(e.message().contains("auth type \"nope\" not found") && e.message().contains("azure-cli"), "{e}");
    let e = resolve_with("auth_type=azure-msi host=https://x.cloud.databricks.com", env(&[])).err().unwrap();
    assert!(e.message().starts_with("azure-msi auth: not configured: needs an Azure"), "{e}");
    // auth_type picks one method even when others are configured.
    let c = resolve_with("auth_type=basic token=dapiX username=u password=p host=https://x.cloud.databricks.com", env(&[])).unwrap();
    assert_eq!(c.name(), "basic");
}

#[test]
fn basic_header() {
    let c = resolve_with("host=https://x.cloud.databricks.com username=alice password='p:ss word'", env(&[])).unwrap();
    assert_eq!(c.name(), "basic");
    assert_eq!(c.authorization().unwrap().expose(), "Basic YWxpY2U6cDpzcyB3b3Jk");
    let e = resolve_with("auth_type=basic username=alice password=x", env(&[])).err().unwrap();
    assert!(e.message().contains("basic auth: host is required"), "{e}");
}

#[test]
fn metadata_service() {
    let s = Server::start(Box::new(|r: &Seen| {
        let ok = r.headers.get("x-databricks-metadata-version").map(String::as_str) == Some("1")
            && r.headers.get("x-databricks-host").map(String::as_str) == Some("https://x.cloud.databricks.com");
        if !ok {
            return (400, vec![], r#"{"error": "bad headers"}"#.into());
        }
        (200, vec![], r#"{"access_token": "ms-token", "token_type": "Bearer", "expires_on": 4102444800}"#.into())
    }));
    let e =
        env(&[("DATABRICKS_METADATA_SERVICE_URL", &format!("{}/session/1", s.url)), ("DATABRICKS_HOST", "https://x.cloud.databricks.com")]);
    let c = resolve_with("", e).unwrap();
    assert_eq!(c.name(), "metadata-service");
    assert!(s.seen().is_empty(), "resolving must not call the server");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer ms-token");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer ms-token");
    assert_eq!(s.seen().len(), 1, "cached");
    assert_eq!(s.seen()[0].path, "/session/1");

    let e = env(&[
        ("DATABRICKS_METADATA_SERVICE_URL", "https://metadata.example.com/secret-session"),
        ("DATABRICKS_HOST", "https://x.cloud.databricks.com"),
    ]);
    let err = resolve_with("", e).err().unwrap();
    assert!(err.message().starts_with("metadata-service auth: invalid metadata service URL"), "{err}");
    assert!(!err.message().contains("secret-session"), "{err}");
}

/// A fake workspace OIDC endpoint accepting token exchange for `subject`.
fn oidc_server(subject: &'static str) -> Server {
    Server::start(Box::new(move |r: &Seen| {
        let base = format!("http://{}", r.headers["host"]);
        match (r.method.as_str(), r.path.split('?').next().unwrap()) {
            ("GET", "/.well-known/databricks-config") => (404, vec![], "{}".into()),
            ("GET", "/oidc/.well-known/oauth-authorization-server") => {
                (200, vec![], format!(r#"{{"token_endpoint": "{base}/oidc/v1/token"}}"#))
            }
            ("GET", "/gh") => {
                if r.headers.get("authorization").map(String::as_str) != Some("Bearer gh-request-token") {
                    return (401, vec![], "{}".into());
                }
                (200, vec![], format!(r#"{{"value": "{subject}"}}"#))
            }
            ("POST", "/oidc/v1/token") => {
                let f = form(&r.body);
                if f.get("subject_token").map(String::as_str) != Some(subject)
                    || f["grant_type"] != federation::TOKEN_EXCHANGE_GRANT
                    || f["subject_token_type"] != federation::JWT_TOKEN_TYPE
                    || f["scope"] != "all-apis"
                {
                    return (400, vec![], r#"{"error": "invalid_grant", "error_description": "not trusted"}"#.into());
                }
                (200, vec![], r#"{"access_token": "exchanged", "token_type": "Bearer", "expires_in": 3600}"#.into())
            }
            _ => (404, vec![], "{}".into()),
        }
    }))
}

#[test]
fn env_oidc_exchanges_the_variable() {
    let s = oidc_server("jwt-from-env");
    let c = resolve_with(
        "",
        env(&[
            ("DATABRICKS_HOST", &s.url),
            ("MY_TOKEN", "jwt-from-env"),
            ("DATABRICKS_OIDC_TOKEN_ENV", "MY_TOKEN"),
            ("DATABRICKS_CLIENT_ID", "sp-1"),
        ]),
    )
    .err();
    // client_id (oauth group) + oidc_token_env (env-oidc group) is a conflict, as in the Go SDK.
    assert!(c.unwrap().message().contains("more than one authorization method configured"));
    let c =
        resolve_with("", env(&[("DATABRICKS_HOST", &s.url), ("DATABRICKS_OIDC_TOKEN", "jwt-from-env"), ("DATABRICKS_CLIENT_ID", "sp-1")]))
            .unwrap();
    assert_eq!(c.name(), "env-oidc");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer exchanged");
    let ex = s.seen().into_iter().find(|r| r.path == "/oidc/v1/token").unwrap();
    assert_eq!(form(&ex.body)["client_id"], "sp-1");
    assert!(!ex.headers.contains_key("authorization"), "no client authentication on token exchange");

    let bad = resolve_with("", env(&[("DATABRICKS_HOST", &s.url), ("DATABRICKS_OIDC_TOKEN", "other")])).unwrap();
    let e = bad.authorization().err().unwrap();
    assert_eq!(e.kind(), crate::error::ErrorKind::Auth);
    assert!(e.message().contains("invalid_grant") && !e.message().contains("other"), "{e}");
}

#[test]
fn file_oidc_reads_the_file_each_time() {
    let s = oidc_server("jwt-from-file");
    let dir = std::env::temp_dir().join(format!("lakebase-file-oidc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("token");
    std::fs::write(&path, "  jwt-from-file\n").unwrap();
    let c = resolve_with("", env(&[("DATABRICKS_HOST", &s.url), ("DATABRICKS_OIDC_TOKEN_FILEPATH", path.to_str().unwrap())])).unwrap();
    assert_eq!(c.name(), "file-oidc");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer exchanged");
    let e = resolve_with("", env(&[("DATABRICKS_HOST", &s.url), ("DATABRICKS_OIDC_TOKEN_FILEPATH", "/nonexistent/token")])).err().unwrap();
    assert!(e.message().starts_with("file-oidc auth: cannot read the OIDC token file"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn github_oidc_asks_for_the_token_endpoint_audience() {
    let s = oidc_server("jwt-from-github");
    let e = env(&[
        ("DATABRICKS_HOST", &s.url),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", &format!("{}/gh?api-version=2.0", s.url)),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token"),
        ("DATABRICKS_OIDC_TOKEN", "ignored: github-oidc comes first"),
    ]);
    let c = resolve_with("", e).unwrap();
    assert_eq!(c.name(), "github-oidc");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer exchanged");
    let gh = s.seen().into_iter().find(|r| r.path.starts_with("/gh")).unwrap();
    let want = format!(
        "/gh?api-version=2.0&audience={}",
        url::form_urlencoded::byte_serialize(format!("{}/oidc/v1/token", s.url).as_bytes()).collect::<String>()
    );
    assert_eq!(gh.path, want);
}

#[test]
fn github_oidc_with_azure_app_goes_to_azure() {
    let e = env(&[
        ("DATABRICKS_HOST", "https://adb-1.1.azuredatabricks.net"),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:9/gh"),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t"),
        ("ARM_CLIENT_ID", "app"),
        ("ARM_TENANT_ID", "tenant"),
    ]);
    assert_eq!(resolve_with("", e).unwrap().name(), "github-oidc-azure");
}

#[test]
fn azure_client_secret_with_tenant_discovery() {
    let s = Server::start(Box::new(|r: &Seen| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/aad/auth") => {
            (302, vec![("Location".into(), "https://login.microsoftonline.com/tenant-42/oauth2/authorize?x=1".into())], "".into())
        }
        ("POST", "/tenant-42/oauth2/token") => {
            let f = form(&r.body);
            if f["client_id"] != "app-1" || f["client_secret"] != "s3cret" || f["grant_type"] != "client_credentials" {
                return (401, vec![], r#"{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Trace ID: 1", "error_uri": "https://login.microsoftonline.com/error?code=7000215"}"#.into());
            }
            let tok = if f["resource"] == azure::AZURE_DATABRICKS_APP_ID { "dbx" } else { "mgmt" };
            (
                200,
                vec![],
                format!(r#"{{"token_type": "Bearer", "expires_in": "3599", "expires_on": "4102444800", "access_token": "{tok}"}}"#),
            )
        }
        _ => (404, vec![], "{}".into()),
    }));
    let rid = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Databricks/workspaces/ws";
    let mk = |secret: &str| {
        env(&[
            ("DATABRICKS_HOST", &s.url),
            ("DATABRICKS_AZURE_RESOURCE_ID", rid),
            ("ARM_CLIENT_ID", "app-1"),
            ("ARM_CLIENT_SECRET", secret),
            (azure::TEST_LOGIN_URL_ENV, &s.url),
        ])
    };
    let c = resolve_with("", mk("s3cret")).unwrap();
    assert_eq!(c.name(), "azure-client-secret");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer dbx");
    let h: Vec<_> = c.extra_headers().unwrap().into_iter().map(|(k, v)| format!("{k}={}", v.expose())).collect();
    assert_eq!(h, [format!("{}=mgmt", azure::MANAGEMENT_TOKEN_HEADER), format!("{}={rid}", azure::RESOURCE_ID_HEADER)]);
    assert_eq!(s.seen().iter().filter(|r| r.path == "/aad/auth").count(), 1, "tenant discovered once");

    let bad = resolve_with("", mk("wrong")).unwrap();
    let e = bad.authorization().err().unwrap();
    assert!(e.message().contains("AADSTS7000215: Invalid client secret provided. See https://login.microsoftonline.com/error"), "{e}");
    assert!(!e.message().contains("wrong"));

    // Without LAKEBASE_TEST_AZURE_LOGIN_URL, a non-loopback override is refused.
    let e = resolve_with(
        "",
        env(&[
            ("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net"),
            ("ARM_CLIENT_ID", "a"),
            ("ARM_CLIENT_SECRET", "b"),
            (azure::TEST_LOGIN_URL_ENV, "https://evil.example.com"),
        ]),
    )
    .err()
    .unwrap();
    assert!(e.message().contains("test setting"), "{e}");
}

#[test]
fn azure_msi_via_imds() {
    let s = Server::start(Box::new(|r: &Seen| {
        if r.headers.get("metadata").map(String::as_str) != Some("true")
            || !r.path.starts_with("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=")
        {
            return (400, vec![], r#"{"error": "invalid_request", "error_description": "Required metadata header not specified"}"#.into());
        }
        let tok = if r.path.contains(azure::AZURE_DATABRICKS_APP_ID) { "msi-dbx" } else { "msi-mgmt" };
        (200, vec![], format!(r#"{{"access_token": "{tok}", "expires_on": "4102444800", "token_type": "Bearer", "resource": "x"}}"#))
    }));
    let e = env(&[
        ("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net"),
        ("ARM_USE_MSI", "true"),
        ("ARM_CLIENT_ID", "uami"),
        (azure_msi::TEST_IMDS_URL_ENV, &s.url),
    ]);
    let c = resolve_with("", e).unwrap();
    assert_eq!(c.name(), "azure-msi");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer msi-dbx");
    assert_eq!(c.extra_headers().unwrap()[0].1.expose(), "msi-mgmt");
    assert!(s.seen().iter().all(|r| r.path.ends_with("&client_id=uami")));
}

/// A fake helper program at least 1 MiB large (the CLI size rule) printing `stdout`.
fn fake_program(dir: &std::path::Path, name: &str, script: &str, pad: bool) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    let mut text = format!("#!/bin/sh\n{script}\nexit 0\n");
    if pad {
        text.push_str(&format!("#{}\n", "x".repeat(databricks_cli::MIN_CLI_SIZE as usize)));
    }
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn databricks_cli_runs_once_while_resolving() {
    let dir = std::env::temp_dir().join(format!("lakebase-cli-test-{}", std::process::id()));
    let log = dir.join("log");
    let script = format!(
        "echo \"$@\" >> {log}\ncase \"$1\" in version) echo 'Databricks CLI v0.296.0';; auth) echo '{{\"access_token\": \"cli-token\", \"token_type\": \"Bearer\", \"expiry\": \"2099-01-01T00:00:00Z\"}}';; esac",
        log = log.display()
    );
    fake_program(&dir, "databricks", &script, true);
    let path = dir.to_str().unwrap().to_string();
    let c = resolve_with("", env(&[("DATABRICKS_HOST", "https://x.cloud.databricks.com"), ("PATH", &path)])).unwrap();
    assert_eq!(c.name(), "databricks-cli");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer cli-token");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls, "version\nauth token --host https://x.cloud.databricks.com --force-refresh\n");

    // The legacy Python CLI (a small pip entry point) is skipped, and the final error says why.
    let legacy = dir.join("legacy");
    fake_program(&legacy, "databricks", "# -*- coding: utf-8 -*-\n# from databricks_cli.cli import cli\nexit 1", false);
    let e =
        resolve_with("", env(&[("DATABRICKS_HOST", "https://x.cloud.databricks.com"), ("PATH", legacy.to_str().unwrap())])).err().unwrap();
    assert!(e.message().contains("is the legacy Databricks CLI"), "{e}");
    // ... and the search goes on to the next `databricks` on PATH.
    let both = format!("{}:{}", legacy.display(), dir.display());
    let c = resolve_with("", env(&[("DATABRICKS_HOST", "https://x.cloud.databricks.com"), ("PATH", &both)])).unwrap();
    assert_eq!(c.authorization().unwrap().expose(), "Bearer cli-token");
    // A small wrapper or shim that is not the old CLI is accepted (SDK 0.167's rule).
    let shim = dir.join("shim");
    fake_program(&shim, "databricks", &format!("exec {}/databricks \"$@\"", dir.display()), false);
    let c = resolve_with("", env(&[("DATABRICKS_HOST", "https://x.cloud.databricks.com"), ("PATH", shim.to_str().unwrap())])).unwrap();
    assert_eq!((c.name(), c.authorization().unwrap().expose()), ("databricks-cli", "Bearer cli-token"));

    // Not logged in: skipped in the chain, an error naming the method when forced.
    let nologin = dir.join("nologin");
    fake_program(&nologin, "databricks", "case \"$1\" in version) echo 'Databricks CLI v0.250.0';; *) echo 'Error: cache: databricks OAuth is not configured for this host. Try logging in again with `databricks auth login --host https://x.cloud.databricks.com` before retrying. eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl' >&2; exit 1;; esac", true);
    let p = nologin.to_str().unwrap();
    let e = resolve_with("", env(&[("DATABRICKS_HOST", "https://x.cloud.databricks.com"), ("PATH", p)])).err().unwrap();
    assert!(e.message().starts_with("cannot configure default credentials"), "{e}");
    assert!(e.message().contains("databricks OAuth is not configured for this host"), "{e}");
    let e =
        resolve_with("auth_type=databricks-cli", env(&[("DATABRICKS_HOST", "https://x.cloud.databricks.com"), ("PATH", p)])).err().unwrap();
    assert!(
        e.message().starts_with("databricks-cli auth: cannot get access token: Error: cache: databricks OAuth is not configured"),
        "{e}"
    );
    assert!(e.message().contains("exit status 1") && !e.message().contains("eyJ"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn azure_cli_tokens_and_optional_management_token() {
    let dir = std::env::temp_dir().join(format!("lakebase-az-test-{}", std::process::id()));
    let script = format!(
        "echo \"$@\" >> {}/log\ncase \"$*\" in *{}*) echo '{{\"accessToken\": \"az-dbx\", \"expiresOn\": \"2099-01-01 00:00:00.000000\", \"tokenType\": \"Bearer\"}}';; *) echo 'ERROR: no access to management' >&2; exit 1;; esac",
        dir.display(),
        azure::AZURE_DATABRICKS_APP_ID
    );
    fake_program(&dir, "az", &script, false);
    let rid = "/subscriptions/sub-9/resourceGroups/rg/providers/Microsoft.Databricks/workspaces/ws";
    let c = resolve_with(
        "",
        env(&[("DATABRICKS_HOST", "http://127.0.0.1:9"), ("DATABRICKS_AZURE_RESOURCE_ID", rid), ("PATH", dir.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(c.name(), "azure-cli");
    assert!(!dir.join("log").exists(), "nothing runs while resolving");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer az-dbx");
    let h = c.extra_headers().unwrap();
    assert_eq!(h.len(), 1, "management token omitted, resource id sent");
    assert_eq!(h[0].0, azure::RESOURCE_ID_HEADER);
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    assert!(
        log.starts_with(&format!(
            "account get-access-token --resource {} --output json --subscription sub-9\n",
            azure::AZURE_DATABRICKS_APP_ID
        )),
        "{log}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn token_methods_use_the_injected_clock() {
    // A token that expires in 100 s is refreshed by the cache, not reused.
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n2 = n.clone();
    let s = Server::start(Box::new(move |_r: &Seen| {
        let i = n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (200, vec![], format!(r#"{{"access_token": "t{i}", "token_type": "Bearer", "expires_on": 1000100}}"#))
    }));
    let clock = ManualClock::new(1_000_000_000);
    let e = env(&[("DATABRICKS_METADATA_SERVICE_URL", &s.url), ("DATABRICKS_HOST", "https://x.cloud.databricks.com")]);
    let cfg = Config::resolve(&[], &*e).unwrap();
    let shared: SharedClock = clock.clone();
    let ctx = AuthContext::new(&cfg, Arc::new(HttpClient::new(HttpOptions::default(), shared.clone())), shared, e);
    let c = resolve(&cfg, &ctx).unwrap();
    assert_eq!(c.authorization().unwrap().expose(), "Bearer t0");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer t0");
    clock.advance(std::time::Duration::from_secs(95));
    assert_eq!(c.authorization().unwrap().expose(), "Bearer t1");
}

/// Host metadata answered by `metadata` (status, body with `{base}` replaced); the fallback OIDC
/// document and a second one under `/custom-oidc` name different token endpoints.
fn discovery_server(metadata: (u16, &'static str), gate: Option<Arc<(Mutex<bool>, std::sync::Condvar)>>) -> Server {
    Server::start(Box::new(move |r: &Seen| {
        let base = format!("http://{}", r.headers["host"]);
        match r.path.as_str() {
            "/.well-known/databricks-config" => {
                if let Some(g) = &gate {
                    // Answer only once the fallback document has been asked for (or after 10 s,
                    // which fails the test): proves the two GETs are in flight together.
                    let seen = g.0.lock().unwrap();
                    drop(g.1.wait_timeout_while(seen, std::time::Duration::from_secs(10), |s| !*s).unwrap());
                }
                (metadata.0, vec![], metadata.1.replace("{base}", &base))
            }
            "/oidc/.well-known/oauth-authorization-server" => {
                if let Some(g) = &gate {
                    *g.0.lock().unwrap() = true;
                    g.1.notify_all();
                }
                (200, vec![], format!(r#"{{"token_endpoint": "{base}/oidc/v1/token"}}"#))
            }
            "/custom-oidc/.well-known/oauth-authorization-server" => {
                (200, vec![], format!(r#"{{"token_endpoint": "{base}/custom-oidc/v1/token"}}"#))
            }
            _ => (404, vec![], "{}".into()),
        }
    }))
}

fn discover_at(s: &Server) -> (Result<oidc::OidcEndpoints>, Vec<String>) {
    let e = env(&[("DATABRICKS_HOST", &s.url)]);
    let cfg = Config::resolve(&[], &*e).unwrap();
    let r = oidc::discover(&cfg, &ctx(e).http, None);
    let mut paths: Vec<String> = s.seen().into_iter().map(|r| r.path).collect();
    paths.sort();
    (r, paths)
}

#[test]
fn oidc_discovery_fetches_both_documents_at_once() {
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let s = discovery_server((200, r#"{"oidc_endpoint": "{base}/oidc"}"#), Some(gate.clone()));
    let t0 = crate::clock::Stopwatch::start();
    let (r, paths) = discover_at(&s);
    assert!(t0.elapsed() < std::time::Duration::from_secs(10), "host metadata waited for the fallback GET: sequential");
    assert!(r.unwrap().token_endpoint.ends_with("/oidc/v1/token"));
    // Host metadata names the fallback document: it is fetched once, not twice.
    assert_eq!(paths, ["/.well-known/databricks-config", "/oidc/.well-known/oauth-authorization-server"]);
}

#[test]
fn oidc_discovery_prefers_host_metadata_then_falls_back() {
    let s = discovery_server((200, r#"{"oidc_endpoint": "{base}/custom-oidc"}"#), None);
    let (r, paths) = discover_at(&s);
    assert!(r.unwrap().token_endpoint.ends_with("/custom-oidc/v1/token"), "host metadata wins");
    assert!(paths.contains(&"/custom-oidc/.well-known/oauth-authorization-server".to_string()), "{paths:?}");

    let s = discovery_server((404, "{}"), None);
    let (r, _) = discover_at(&s);
    assert!(r.unwrap().token_endpoint.ends_with("/oidc/v1/token"), "no host metadata: the fallback document");

    let s = discovery_server((200, r#"{"oidc_endpoint": "{base}/missing"}"#), None);
    let (r, _) = discover_at(&s);
    assert!(r.unwrap().token_endpoint.ends_with("/oidc/v1/token"), "host metadata names a missing document: fallback");
}

// --- SDK 0.167: group roles, azure-devops-oidc, model-serving, external-browser ----------------

/// A workspace OIDC server: client credentials for `sp-1`/`s3cret`, token exchange for `jwt-1`;
/// answers with the form it got, so tests can read `assume_group`.
fn group_server(metadata: &'static str) -> Server {
    Server::start(Box::new(move |r: &Seen| {
        let base = format!("http://{}", r.headers["host"]);
        match (r.method.as_str(), r.path.split('?').next().unwrap()) {
            ("GET", "/.well-known/databricks-config") => (200, vec![], metadata.replace("{base}", &base)),
            ("GET", p) if p.ends_with("/.well-known/oauth-authorization-server") => {
                let prefix = p.trim_end_matches("/.well-known/oauth-authorization-server");
                (200, vec![], format!(r#"{{"token_endpoint": "{base}{prefix}/v1/token"}}"#))
            }
            ("GET", "/gh") => (200, vec![], r#"{"value": "jwt-1"}"#.into()),
            ("POST", "/ado/proj/_apis/distributedtask/hubs/build/plans/plan-1/jobs/job-1/oidctoken") => {
                if r.headers.get("authorization").map(String::as_str) != Some("Bearer ado-access") || !r.body.is_empty() {
                    return (401, vec![], "{}".into());
                }
                (200, vec![], r#"{"oidcToken": "jwt-1"}"#.into())
            }
            ("POST", p) if p.ends_with("/v1/token") => {
                let f = form(&r.body);
                let ok = match f.get("grant_type").map(String::as_str) {
                    Some("client_credentials") => r.headers.get("authorization").map(String::as_str) == Some("Basic c3AtMTpzM2NyZXQ="),
                    Some(federation::TOKEN_EXCHANGE_GRANT) => f.get("subject_token").map(String::as_str) == Some("jwt-1"),
                    _ => false,
                };
                if !ok {
                    return (401, vec![], r#"{"error": "invalid_client", "error_description": "no"}"#.into());
                }
                let group = f.get("assume_group").cloned().unwrap_or_default();
                (200, vec![], format!(r#"{{"access_token": "tok-for-group-{group}", "token_type": "Bearer", "expires_in": 3600}}"#))
            }
            _ => (404, vec![], "{}".into()),
        }
    }))
}

#[test]
fn group_id_is_assumed_by_the_oauth_methods() {
    let s = group_server(r#"{"oidc_endpoint": "{base}/oidc", "workspace_id": "1"}"#);
    let c = resolve_with(
        "",
        env(&[
            ("DATABRICKS_HOST", &s.url),
            ("DATABRICKS_CLIENT_ID", "sp-1"),
            ("DATABRICKS_CLIENT_SECRET", "s3cret"),
            ("DATABRICKS_GROUP_ID", "42"),
        ]),
    )
    .unwrap();
    assert_eq!((c.name(), c.authorization().unwrap().expose()), ("oauth-m2m", "Bearer tok-for-group-42"));
    let c =
        resolve_with("", env(&[("DATABRICKS_HOST", &s.url), ("DATABRICKS_OIDC_TOKEN", "jwt-1"), ("DATABRICKS_GROUP_ID", "43")])).unwrap();
    assert_eq!((c.name(), c.authorization().unwrap().expose()), ("env-oidc", "Bearer tok-for-group-43"));
    // Without group_id, no assume_group is sent.
    let c = resolve_with("", env(&[("DATABRICKS_HOST", &s.url), ("DATABRICKS_CLIENT_ID", "sp-1"), ("DATABRICKS_CLIENT_SECRET", "s3cret")]))
        .unwrap();
    assert_eq!(c.authorization().unwrap().expose(), "Bearer tok-for-group-");
    let last = s.seen().into_iter().rfind(|r| r.path.ends_with("/v1/token")).unwrap();
    assert!(!form(&last.body).contains_key("assume_group"));
}

#[test]
fn methods_that_cannot_assume_a_group_step_aside_or_refuse() {
    let h = "https://x.cloud.databricks.com";
    // Default chain: the PAT is skipped, and the message says why.
    let e = resolve_with("", env(&[("DATABRICKS_HOST", h), ("DATABRICKS_TOKEN", "dapiX"), ("DATABRICKS_GROUP_ID", "42")])).err().unwrap();
    assert!(e.message().starts_with("cannot configure default credentials"), "{e}");
    assert!(e.message().contains("pat (group_id is set and this method cannot assume a group;"), "{e}");
    assert!(
        e.message().contains("group_id is set: only oauth-m2m, github-oidc, azure-devops-oidc, env-oidc and file-oidc can assume a group"),
        "{e}"
    );
    assert!(!e.message().contains("dapiX"), "{e}");
    // Named in auth_type: the SDK's message.
    for t in ["pat", "basic", "databricks-cli", "metadata-service", "azure-cli", "azure-msi", "model-serving"] {
        let e = resolve_with(
            &format!("auth_type={t}"),
            env(&[("DATABRICKS_HOST", h), ("DATABRICKS_TOKEN", "dapiX"), ("DATABRICKS_GROUP_ID", "42")]),
        )
        .err()
        .unwrap();
        assert_eq!(e.kind(), crate::error::ErrorKind::Config);
        let want = format!("{t} auth: auth type \"{t}\" does not support group role assumption. Use Databricks OAuth authentication");
        assert!(e.message().starts_with(&want), "{e}");
    }
    // A CLI on PATH is not even run.
    let dir = std::env::temp_dir().join(format!("lakebase-group-cli-{}", std::process::id()));
    let log = dir.join("log");
    fake_program(&dir, "databricks", &format!("echo ran >> {}", log.display()), true);
    let e = resolve_with("", env(&[("DATABRICKS_HOST", h), ("DATABRICKS_GROUP_ID", "42"), ("PATH", dir.to_str().unwrap())]));
    assert!(e.is_err());
    assert!(!log.exists(), "databricks-cli stepped aside before running the CLI");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn external_browser_points_to_the_cli_login() {
    let e = resolve_with("auth_type=external-browser host=https://x.cloud.databricks.com", env(&[])).err().unwrap();
    assert_eq!(e.kind(), crate::error::ErrorKind::Config);
    assert!(e.message().starts_with("external-browser auth: liblakebase cannot run an interactive browser login"), "{e}");
    assert!(e.message().contains("databricks auth login --host") && e.message().contains("auth_type=databricks-cli"), "{e}");
}

#[test]
fn azure_devops_oidc_exchanges_the_pipeline_token() {
    let s = group_server(r#"{"oidc_endpoint": "{base}/oidc"}"#);
    let ado = format!("{}/ado/", s.url);
    let pipeline: Vec<(&str, &str)> = vec![
        ("DATABRICKS_HOST", &s.url),
        ("DATABRICKS_CLIENT_ID", "sp-fed"),
        ("SYSTEM_ACCESSTOKEN", "ado-access"),
        ("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI", &ado),
        ("SYSTEM_TEAMPROJECTID", "proj"),
        ("SYSTEM_PLANID", "plan-1"),
        ("SYSTEM_JOBID", "job-1"),
        ("SYSTEM_HOSTTYPE", "build"),
        ("DATABRICKS_GROUP_ID", "7"),
    ];
    let c = resolve_with("", env(&pipeline)).unwrap();
    assert_eq!(c.name(), "azure-devops-oidc");
    assert!(s.seen().is_empty(), "nothing is requested while configuring");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer tok-for-group-7");
    let seen = s.seen();
    let asked = seen.iter().find(|r| r.path.starts_with("/ado/")).unwrap();
    assert_eq!(asked.path, "/ado/proj/_apis/distributedtask/hubs/build/plans/plan-1/jobs/job-1/oidctoken?api-version=7.2-preview.1");
    let ex = form(&seen.iter().find(|r| r.path == "/oidc/v1/token").unwrap().body);
    assert_eq!((ex["client_id"].as_str(), ex["subject_token"].as_str(), ex["assume_group"].as_str()), ("sp-fed", "jwt-1", "7"));
    // Outside a pipeline: not configured, with the reason when forced.
    let e =
        resolve_with("auth_type=azure-devops-oidc", env(&[("DATABRICKS_HOST", &s.url), ("DATABRICKS_CLIENT_ID", "sp-fed")])).err().unwrap();
    assert!(
        e.message().starts_with("azure-devops-oidc auth: not configured (not in an Azure Pipelines job (missing SYSTEM_ACCESSTOKEN"),
        "{e}"
    );
}

#[test]
fn github_oidc_audience_comes_from_host_metadata() {
    // A unified host: the default OIDC audience is the account id, the endpoints the account's.
    let s = group_server(
        r#"{"oidc_endpoint": "{base}/oidc/accounts/{account_id}", "account_id": "acc-9", "workspace_id": "5", "host_type": "unified", "token_federation_default_oidc_audiences": ["acc-9"]}"#,
    );
    let e = env(&[
        ("DATABRICKS_HOST", &s.url),
        ("DATABRICKS_CLIENT_ID", "sp-fed"),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", &format!("{}/gh?api-version=2.0", s.url)),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token"),
    ]);
    let c = resolve_with("", e).unwrap();
    assert_eq!(c.authorization().unwrap().expose(), "Bearer tok-for-group-");
    let seen = s.seen();
    assert!(seen.iter().any(|r| r.path == "/gh?api-version=2.0&audience=acc-9"), "{:?}", seen.iter().map(|r| &r.path).collect::<Vec<_>>());
    assert!(seen.iter().any(|r| r.path == "/oidc/accounts/acc-9/v1/token"));
}

#[test]
fn model_serving_reads_and_rereads_the_token_file() {
    let dir = std::env::temp_dir().join(format!("lakebase-model-serving-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |tok: &str| {
        let tmp = dir.join("tmp");
        std::fs::write(&tmp, format!(r#"{{"OAUTH_TOKEN": [{{"oauthTokenValue": "{tok}"}}]}}"#)).unwrap();
        std::fs::rename(&tmp, dir.join(model_serving::TOKEN_FILE_NAME)).unwrap();
    };
    write("serving-1");
    let d = dir.to_str().unwrap();
    let e = env(&[
        ("IS_IN_DB_MODEL_SERVING_ENV", "true"),
        ("SERVING_CREDENTIALS_DIR", d),
        ("DATABRICKS_MODEL_SERVING_HOST_URL", "https://ws.cloud.databricks.com/"),
    ]);
    let cfg = Config::resolve(&[], &*e).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let shared: SharedClock = clock.clone();
    let ctx = AuthContext::new(&cfg, Arc::new(HttpClient::new(HttpOptions::default(), shared.clone())), shared, e.clone());
    let c = resolve(&cfg, &ctx).unwrap();
    assert_eq!((c.name(), c.host().as_deref()), ("model-serving", Some("https://ws.cloud.databricks.com")));
    assert_eq!(c.authorization().unwrap().expose(), "Bearer serving-1");
    write("serving-2");
    assert_eq!(c.authorization().unwrap().expose(), "Bearer serving-1", "kept for a while");
    clock.advance(model_serving::REREAD_AFTER);
    assert_eq!(c.authorization().unwrap().expose(), "Bearer serving-2", "the rotated file is read again");

    // A configured host wins and is not reported back; not in Model Serving: not configured.
    let c = resolve_with("host=https://mine.cloud.databricks.com", e.clone()).unwrap();
    assert_eq!((c.name(), c.host()), ("model-serving", None));
    let off = env(&[
        ("IS_IN_DB_MODEL_SERVING_ENV", "false"),
        ("SERVING_CREDENTIALS_DIR", d),
        ("DATABRICKS_HOST", "https://h.cloud.databricks.com"),
    ]);
    let err = resolve_with("", off).err().unwrap();
    assert!(err.message().contains("model-serving (needs Databricks Model Serving"), "{err}");
    // A broken file: named in the error when forced, the token never shown.
    std::fs::write(dir.join(model_serving::TOKEN_FILE_NAME), r#"{"OAUTH_TOKEN": "sekrit-value"}"#).unwrap();
    let err = resolve_with("auth_type=model-serving", e).err().unwrap();
    assert!(err.message().starts_with("model-serving auth: the Model Serving token file") && !err.message().contains("sekrit"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
