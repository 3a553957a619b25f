//! Tests for [`Config::resolve`] and friends. File-level parsing is tested in `file.rs`, the
//! options string in `options.rs`.

use super::profiles::tests::TempDir;
use super::*;
use crate::error::ErrorKind;

fn env(pairs: &[(&str, &str)]) -> MapEnv {
    MapEnv::from_pairs(pairs.iter().copied())
}

/// An environment with nothing set and a HOME without a config file.
fn bare() -> MapEnv {
    env(&[("HOME", "/nonexistent/lakebase-test-home")])
}

fn opts(s: &str) -> Vec<(String, String)> {
    parse_options(s).unwrap()
}

fn resolve(options: &str, env: &MapEnv) -> Config {
    Config::resolve(&opts(options), env).unwrap_or_else(|e| panic!("{e}"))
}

fn resolve_err(options: &str, env: &MapEnv) -> Error {
    Config::resolve(&opts(options), env).unwrap_err()
}

fn secret(s: &Option<Secret>) -> Option<&str> {
    s.as_ref().map(Secret::expose)
}

const PROFILES: &str = "[DEFAULT]
host = https://default.cloud.databricks.com
token = dapiDEFAULT

[dev]
host = https://dev.cloud.databricks.com/some/path
token = dapiDEV
instance = dev-instance
endpoint = projects/p/branches/b/endpoints/e
ca_file = /etc/ssl/dev.pem
workspace_id = 1234

[basic]
host = https://basic.cloud.databricks.com
username = abc
password = \"%Y#X$Z\" # comment
";

/// A temp dir used as $HOME, holding `.databrickscfg`.
fn home_with(text: &str) -> TempDir {
    let dir = TempDir::new("resolve");
    dir.write(".databrickscfg", text);
    dir
}

#[test]
fn nothing_configured() {
    let home = TempDir::new("resolve");
    let cfg = resolve("", &env(&[("HOME", home.path())]));
    assert_eq!(cfg.host, None);
    assert_eq!(cfg.profile, None);
    assert_eq!(cfg.loaded_file, None);
    assert_eq!(cfg.debug_string(), "");
    assert_eq!(cfg.scopes(), vec!["all-apis"]);
}

#[test]
fn default_profile_is_read_and_pinned() {
    let home = home_with(PROFILES);
    let cfg = resolve("", &env(&[("HOME", home.path())]));
    assert_eq!(cfg.host.as_deref(), Some("https://default.cloud.databricks.com"));
    assert_eq!(secret(&cfg.token), Some("dapiDEFAULT"));
    assert_eq!(cfg.profile.as_deref(), Some("DEFAULT"));
    assert_eq!(cfg.loaded_file, Some(home.0.join(".databrickscfg")));
    assert_eq!(cfg.source_of("host"), Some(Source::File));
}

#[test]
fn config_profile_env_selects_a_section() {
    let home = home_with(PROFILES);
    let cfg = resolve("", &env(&[("HOME", home.path()), ("DATABRICKS_CONFIG_PROFILE", "dev")]));
    assert_eq!(cfg.host.as_deref(), Some("https://dev.cloud.databricks.com"));
    assert_eq!(secret(&cfg.token), Some("dapiDEV"));
    assert_eq!(cfg.profile.as_deref(), Some("dev"));
    assert_eq!(cfg.source_of("profile"), Some(Source::Env("DATABRICKS_CONFIG_PROFILE")));
    assert_eq!(cfg.workspace_id.as_deref(), Some("1234"));
}

#[test]
fn precedence_options_over_env_over_file() {
    let home = home_with(PROFILES);
    let e = env(&[
        ("HOME", home.path()),
        ("DATABRICKS_CONFIG_PROFILE", "dev"),
        ("LAKEBASE_INSTANCE", "env-instance"),
        ("DATABRICKS_TOKEN", "dapiENV"),
    ]);
    let cfg = resolve("instance=opt-instance", &e);
    assert_eq!(cfg.instance.as_deref(), Some("opt-instance"));
    assert_eq!(cfg.source_of("instance"), Some(Source::Option));
    assert_eq!(secret(&cfg.token), Some("dapiENV"));
    assert_eq!(cfg.source_of("token"), Some(Source::Env("DATABRICKS_TOKEN")));
    assert_eq!(cfg.endpoint.as_deref(), Some("projects/p/branches/b/endpoints/e"));
    assert_eq!(cfg.source_of("endpoint"), Some(Source::File));
    assert_eq!(cfg.host.as_deref(), Some("https://dev.cloud.databricks.com"));

    let cfg = resolve("", &e);
    assert_eq!(cfg.instance.as_deref(), Some("env-instance"));

    // An explicit profile option beats DATABRICKS_CONFIG_PROFILE.
    let e = env(&[("HOME", home.path()), ("DATABRICKS_CONFIG_PROFILE", "dev")]);
    let cfg = resolve("profile=basic", &e);
    assert_eq!(cfg.profile.as_deref(), Some("basic"));
    assert_eq!(cfg.username.as_deref(), Some("abc"));
}

#[test]
fn file_skipped_when_host_in_env_and_no_profile() {
    let home = home_with(PROFILES);
    let cfg = resolve("", &env(&[("HOME", home.path()), ("DATABRICKS_HOST", "https://env.cloud.databricks.com")]));
    assert_eq!(cfg.host.as_deref(), Some("https://env.cloud.databricks.com"));
    assert_eq!(cfg.token, None, "DEFAULT must not be combined with DATABRICKS_HOST");
    assert_eq!(cfg.loaded_file, None);
    assert_eq!(cfg.profile, None);
}

#[test]
fn file_skipped_when_any_auth_attribute_or_resource_id_set() {
    let home = home_with(PROFILES);
    let cfg = resolve("", &env(&[("HOME", home.path()), ("DATABRICKS_CLIENT_ID", "cid")]));
    assert_eq!(cfg.host, None);
    assert_eq!(cfg.loaded_file, None);
    let cfg = resolve("token=abc", &env(&[("HOME", home.path())]));
    assert_eq!(cfg.host, None);
    let cfg = resolve("", &env(&[("HOME", home.path()), ("DATABRICKS_AZURE_RESOURCE_ID", "/subscriptions/x")]));
    assert_eq!(cfg.host, None);
    // A non-auth attribute does not stop the file from being read.
    let cfg = resolve("instance=i", &env(&[("HOME", home.path())]));
    assert_eq!(cfg.host.as_deref(), Some("https://default.cloud.databricks.com"));
}

#[test]
fn file_read_when_profile_named_even_with_host_set() {
    let home = home_with(PROFILES);
    let e = env(&[("HOME", home.path()), ("DATABRICKS_HOST", "https://env.cloud.databricks.com"), ("DATABRICKS_CONFIG_PROFILE", "dev")]);
    let cfg = resolve("", &e);
    // The environment still wins for host; the profile fills the rest.
    assert_eq!(cfg.host.as_deref(), Some("https://env.cloud.databricks.com"));
    assert_eq!(secret(&cfg.token), Some("dapiDEV"));
}

#[test]
fn empty_env_values_are_unset() {
    let home = home_with(PROFILES);
    let cfg = resolve("", &env(&[("HOME", home.path()), ("DATABRICKS_HOST", ""), ("DATABRICKS_CONFIG_PROFILE", "")]));
    assert_eq!(cfg.host.as_deref(), Some("https://default.cloud.databricks.com"));
}

#[test]
fn config_file_env_and_tilde() {
    let home = TempDir::new("resolve");
    let path = home.write("sub/my.cfg", "[x]\nhost = h.cloud.databricks.com\ntoken = t\n");
    let e = env(&[("HOME", home.path()), ("DATABRICKS_CONFIG_FILE", "~/sub/my.cfg")]);
    let cfg = resolve("profile=x", &e);
    assert_eq!(cfg.host.as_deref(), Some("https://h.cloud.databricks.com"));
    assert_eq!(cfg.loaded_file, Some(path.clone()));
    // config_file option beats the env var.
    let other = home.write("other.cfg", "[x]\nhost = o\n");
    let cfg = resolve(&format!("profile=x config_file='{}'", other.display()), &e);
    assert_eq!(cfg.host.as_deref(), Some("https://o"));
    assert_eq!(cfg.loaded_file, Some(other));
}

#[test]
fn missing_named_profile_error() {
    let home = home_with(PROFILES);
    let path = home.0.join(".databrickscfg");
    let e = resolve_err("", &env(&[("HOME", home.path()), ("DATABRICKS_CONFIG_PROFILE", "nope")]));
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(
        e.message(),
        format!("resolve: {} has no nope profile configured. Config: profile=nope. Env: DATABRICKS_CONFIG_PROFILE", path.display())
    );
}

#[test]
fn missing_file_with_named_profile_is_skipped_like_go() {
    let home = TempDir::new("resolve");
    let cfg = resolve("profile=dev", &env(&[("HOME", home.path())]));
    assert_eq!(cfg.profile.as_deref(), Some("dev"));
    assert_eq!(cfg.loaded_file, None);
    assert_eq!(cfg.host, None);
}

#[test]
fn settings_default_profile() {
    let home = home_with(
        "[__settings__]\ndefault_profile = my-workspace\n\n[DEFAULT]\nhost = https://default.cloud.databricks.com\ntoken = dapiOLD\n\n[my-workspace]\nhost = https://my-workspace.cloud.databricks.com\ntoken = dapiXYZ\n",
    );
    let cfg = resolve("", &env(&[("HOME", home.path())]));
    assert_eq!(cfg.host.as_deref(), Some("https://my-workspace.cloud.databricks.com"));
    assert_eq!(secret(&cfg.token), Some("dapiXYZ"));
    assert_eq!(cfg.profile.as_deref(), Some("my-workspace"));
}

#[test]
fn settings_reserved_error_is_prefixed() {
    let home = home_with("[__settings__]\ndefault_profile = __settings__\n[DEFAULT]\nhost = h\n");
    let e = resolve_err("", &env(&[("HOME", home.path())]));
    assert_eq!(
        e.message(),
        format!(
            "resolve: {}: __settings__ is a reserved section name and cannot be used as a profile",
            home.0.join(".databrickscfg").display()
        )
    );
}

#[test]
fn quoted_password_with_inline_comment() {
    let home = home_with(PROFILES);
    let cfg = resolve("profile=basic", &env(&[("HOME", home.path())]));
    assert_eq!(secret(&cfg.password), Some("%Y#X$Z"));
    assert_eq!(cfg.username.as_deref(), Some("abc"));
}

#[test]
fn lakebase_attributes_from_env_and_profile() {
    let home = home_with(PROFILES);
    let cfg = resolve(
        "",
        &env(&[
            ("HOME", home.path()),
            ("DATABRICKS_HOST", "https://h.cloud.databricks.com"),
            ("LAKEBASE_INSTANCE", "inst"),
            ("LAKEBASE_ENDPOINT", "projects/a/branches/b/endpoints/c"),
            ("LAKEBASE_CA_FILE", "/ca.pem"),
        ]),
    );
    assert_eq!(cfg.instance.as_deref(), Some("inst"));
    assert_eq!(cfg.endpoint.as_deref(), Some("projects/a/branches/b/endpoints/c"));
    assert_eq!(cfg.ca_file.as_deref(), Some("/ca.pem"));
    assert_eq!(cfg.source_of("instance"), Some(Source::Env("LAKEBASE_INSTANCE")));

    let cfg = resolve("profile=dev", &env(&[("HOME", home.path())]));
    assert_eq!(cfg.instance.as_deref(), Some("dev-instance"));
    assert_eq!(cfg.endpoint.as_deref(), Some("projects/p/branches/b/endpoints/e"));
    assert_eq!(cfg.ca_file.as_deref(), Some("/etc/ssl/dev.pem"));
}

#[test]
fn conflict_between_auth_groups() {
    let e = resolve_err(
        "",
        &env(&[
            ("DATABRICKS_HOST", "https://x.cloud.databricks.com"),
            ("DATABRICKS_TOKEN", "dapi-secret-value"),
            ("DATABRICKS_CLIENT_ID", "cid"),
        ]),
    );
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(
        e.message(),
        "validate: more than one authorization method configured: oauth and pat. \
         Config: host=https://x.cloud.databricks.com, token=***, client_id=cid. \
         Env: DATABRICKS_HOST, DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID"
    );
    assert!(!e.message().contains("dapi-secret-value"));

    // Three groups, sorted.
    let e = resolve_err("token=t username=u client_secret=s", &bare());
    assert!(e.message().starts_with("validate: more than one authorization method configured: basic and oauth and pat. "));

    // auth_type settles it.
    let cfg = resolve("auth_type=pat token=t client_id=c host=h", &bare());
    assert_eq!(cfg.auth_type.as_deref(), Some("pat"));
}

#[test]
fn go_quirk_file_oidc_with_client_id_needs_auth_type() {
    let e = resolve_err("host=h client_id=c oidc_token_filepath=/t", &bare());
    assert!(e.message().starts_with("validate: more than one authorization method configured: file-oidc and oauth"), "{e}");
    resolve("host=h client_id=c oidc_token_filepath=/t auth_type=file-oidc", &bare());
}

#[test]
fn azure_msi_false_is_zero_like_go() {
    // ARM_USE_MSI=false does not count as an azure attribute, so no conflict with the token.
    let cfg = resolve("host=h", &env(&[("ARM_USE_MSI", "false"), ("DATABRICKS_TOKEN", "t")]));
    assert_eq!(cfg.azure_use_msi, Some(false));
    let e = resolve_err("host=h", &env(&[("ARM_USE_MSI", "TRUE"), ("DATABRICKS_TOKEN", "t")]));
    assert!(e.message().contains("azure and pat"), "{e}");
}

#[test]
fn host_normalisation() {
    let cases: &[(&str, &str)] = &[
        ("x.cloud.databricks.com", "https://x.cloud.databricks.com"),
        ("https://x.cloud.databricks.com/", "https://x.cloud.databricks.com"),
        ("https://x.cloud.databricks.com/some/path?x=1#frag", "https://x.cloud.databricks.com"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("127.0.0.1:8080", "https://127.0.0.1:8080"),
        ("HTTPS://Mixed.Case.com:443/a", "https://Mixed.Case.com:443"),
        ("https://user:pw@x.com/", "https://x.com"),
        ("https://[::1]:9/", "https://[::1]:9"),
        ("x.com/path", "https://x.com"),
        ("  https://x.com/\n", "https://x.com"),
    ];
    for (input, want) in cases {
        let cfg = resolve(&format!("host='{input}'"), &bare());
        assert_eq!(cfg.host.as_deref(), Some(*want), "{input}");
    }
    let e = resolve_err("host=https://", &bare());
    assert!(e.message().starts_with("resolve: host \"https://\" has no host name"), "{e}");
}

#[test]
fn host_query_promotes_ids() {
    let ids = |host: &str, extra: &str| {
        let cfg = resolve(&format!("host='{host}' {extra}"), &bare());
        assert_eq!(cfg.host.as_deref(), Some("https://acme.databricks.net"));
        (cfg.workspace_id, cfg.account_id)
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(ids("https://acme.databricks.net/?o=12345", ""), (s("12345"), None));
    assert_eq!(ids("acme.databricks.net?workspace_id=77", ""), (s("77"), None));
    assert_eq!(ids("https://acme.databricks.net/?a=acc-1", ""), (None, s("acc-1")));
    assert_eq!(ids("https://acme.databricks.net/?account_id=acc-2&o=9", ""), (s("9"), s("acc-2")));
    assert_eq!(
        ids("https://acme.databricks.net/?w=7a99b43c-b46c-432b-b0a7-814217701909", ""),
        (s("7a99b43c-b46c-432b-b0a7-814217701909"), None)
    );
    // ?w= wins over ?o=; non-numeric ?o= is dropped.
    assert_eq!(ids("https://acme.databricks.net/?o=1&w=2", ""), (s("2"), None));
    assert_eq!(ids("https://acme.databricks.net/?o=abc", ""), (None, None));
    // Existing values are never overwritten.
    assert_eq!(ids("https://acme.databricks.net/?o=1&a=x", "workspace_id=5 account_id=y"), (s("5"), s("y")));
    // A '?' inside the fragment is not a query.
    assert_eq!(ids("https://acme.databricks.net/#x?o=1", ""), (None, None));
    // Percent-encoding is decoded; the first value of a repeated key is used.
    assert_eq!(ids("https://acme.databricks.net/?a=ab%2Dc&a=zz", ""), (None, s("ab-c")));
    // Workspace id from env beats the query string too.
    let cfg = resolve("", &env(&[("DATABRICKS_HOST", "https://acme.databricks.net/?o=1"), ("DATABRICKS_WORKSPACE_ID", "2")]));
    assert_eq!(cfg.workspace_id.as_deref(), Some("2"));
}

#[test]
fn debug_string_format_and_masking() {
    let home = home_with(PROFILES);
    let cfg = resolve(
        "client_secret=shh auth_type=oauth-m2m",
        &env(&[
            ("HOME", home.path()),
            ("DATABRICKS_HOST", "https://x.cloud.databricks.com"),
            ("DATABRICKS_TOKEN", "dapi-top-secret"),
            ("DATABRICKS_CONFIG_PROFILE", "dev"),
            ("DATABRICKS_METADATA_SERVICE_URL", "http://localhost:1/secret-path"),
        ]),
    );
    let d = cfg.debug_string();
    assert_eq!(
        d,
        "Config: host=https://x.cloud.databricks.com, workspace_id=1234, token=***, client_secret=***, \
         profile=dev, metadata_service_url=***, instance=dev-instance, \
         endpoint=projects/p/branches/b/endpoints/e, ca_file=/etc/ssl/dev.pem. \
         Env: DATABRICKS_HOST, DATABRICKS_TOKEN, DATABRICKS_CONFIG_PROFILE, DATABRICKS_METADATA_SERVICE_URL"
    );
    let dbg = format!("{cfg:?}");
    for s in ["dapi-top-secret", "shh", "secret-path", "dapiDEV"] {
        assert!(!d.contains(s) && !dbg.contains(s), "{s} leaked");
    }
    assert!(dbg.contains("host: Some(\"https://x.cloud.databricks.com\")"), "{dbg}");
}

#[test]
fn debug_string_brief_example() {
    let e = env(&[("HOME", "/nonexistent/lakebase-test-home"), ("DATABRICKS_HOST", "https://x"), ("DATABRICKS_TOKEN", "t")]);
    let cfg = resolve("profile=p", &e);
    assert_eq!(cfg.debug_string(), "Config: host=https://x, token=***, profile=p. Env: DATABRICKS_HOST, DATABRICKS_TOKEN");
}

#[test]
fn unknown_option_key() {
    let e = resolve_err("host=h foo=bar", &bare());
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().starts_with("unknown option \"foo\"; valid options are: host, account_id,"), "{e}");
    assert!(!e.message().contains("bar"));
    // A key that does not look like a name is not echoed.
    let e = resolve_err("p@ss=x", &bare());
    assert!(e.message().starts_with("unknown option; valid options are:"), "{e}");
}

#[test]
fn option_aliases_and_last_wins() {
    let cfg = resolve("audience=a1 databricks_id_token_filepath=/f auth_type=file-oidc", &bare());
    assert_eq!(cfg.token_audience.as_deref(), Some("a1"));
    assert_eq!(cfg.oidc_token_filepath.as_deref(), Some("/f"));
    let cfg = resolve("token_audience=a1 audience=a2 instance=x instance=y", &bare());
    assert_eq!(cfg.token_audience.as_deref(), Some("a2"));
    assert_eq!(cfg.instance.as_deref(), Some("y"));
    // As in libpq the last value wins even when empty; an empty value then counts as unset.
    let e = env(&[("HOME", "/nonexistent/lakebase-test-home"), ("LAKEBASE_INSTANCE", "from-env")]);
    let cfg = resolve("instance=x instance=''", &e);
    assert_eq!(cfg.instance.as_deref(), Some("from-env"));
}

#[test]
fn env_and_file_aliases() {
    let cfg = resolve("host=h", &env(&[("DATABRICKS_OIDC_TOKEN_FILE", "/py"), ("DATABRICKS_TOKEN_AUDIENCE", "aud")]));
    assert_eq!(cfg.oidc_token_filepath.as_deref(), Some("/py"));
    assert_eq!(cfg.source_of("oidc_token_filepath"), Some(Source::Env("DATABRICKS_OIDC_TOKEN_FILE")));
    assert_eq!(cfg.token_audience.as_deref(), Some("aud"));
    let cfg = resolve("host=h", &env(&[("DATABRICKS_OIDC_TOKEN_FILE", "/py"), ("DATABRICKS_OIDC_TOKEN_FILEPATH", "/go")]));
    assert_eq!(cfg.oidc_token_filepath.as_deref(), Some("/go"));

    let home = home_with(
        "[go]\nhost = h\nauth_type = file-oidc\ndatabricks_id_token_filepath = /go\naudience = ga\n\
         [py]\nhost = h\noidc_token_filepath = /py\ntoken_audience = pa\n\
         [both]\nhost = h\noidc_token_filepath = /py\ndatabricks_id_token_filepath = /go\n",
    );
    let get = |p: &str| {
        let cfg = resolve(&format!("profile={p}"), &env(&[("HOME", home.path())]));
        (cfg.oidc_token_filepath, cfg.token_audience)
    };
    assert_eq!(get("go"), (Some("/go".into()), Some("ga".into())));
    assert_eq!(get("py"), (Some("/py".into()), Some("pa".into())));
    assert_eq!(get("both").0, Some("/py".into()));
}

#[test]
fn typed_values() {
    let cfg = resolve("host=h http_timeout_seconds=30 retry_timeout_seconds=-1 azure_use_msi=1 auth_type=azure-msi", &bare());
    assert_eq!(cfg.http_timeout_seconds, Some(30));
    assert_eq!(cfg.retry_timeout_seconds, Some(-1));
    assert_eq!(cfg.azure_use_msi, Some(true));

    let e = resolve_err("host=h http_timeout_seconds=abc", &bare());
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(e.message(), "resolve: set http_timeout_seconds: invalid non-negative integer \"abc\". Config: host=h");
    let e = resolve_err("", &env(&[("ARM_USE_MSI", "yes")]));
    // As in Go, the attribute that failed is not set, so the debug string does not list it.
    assert_eq!(e.message(), "resolve: set azure_use_msi: invalid boolean \"yes\"");

    let home = home_with("[p]\nhost = h\nretry_timeout_seconds = soon\n");
    let e = resolve_err("profile=p", &env(&[("HOME", home.path())]));
    assert_eq!(
        e.message(),
        format!(
            "resolve: {} p profile: set retry_timeout_seconds: invalid integer \"soon\". Config: host=h, profile=p",
            home.0.join(".databrickscfg").display()
        )
    );
}

#[test]
fn scopes_from_file_sorted_and_default() {
    // Go testdata/scopes
    let home = home_with(
        "[scope-empty]\nhost = https://example.cloud.databricks.com\n\n[scope-single]\nhost = https://example.cloud.databricks.com\nscopes = clusters\n\n[scope-multiple]\nhost = https://example.cloud.databricks.com\nscopes = clusters, jobs, pipelines, iam:read, files:read, mlflow, model-serving\n\n[messy]\nhost = h\nscopes = b,, a , ,b\n",
    );
    let scopes = |p: &str| resolve(&format!("profile={p}"), &env(&[("HOME", home.path())])).scopes();
    assert_eq!(scopes("scope-empty"), vec!["all-apis"]);
    assert_eq!(scopes("scope-single"), vec!["clusters"]);
    assert_eq!(scopes("scope-multiple"), vec!["clusters", "files:read", "iam:read", "jobs", "mlflow", "model-serving", "pipelines"]);
    assert_eq!(scopes("messy"), vec!["a", "b"]);
    let cfg = resolve("scopes='sql, all-apis'", &bare());
    assert_eq!(cfg.scopes, vec!["all-apis", "sql"]);
}

#[test]
fn cloud_detection() {
    let c = |o: &str| resolve(o, &bare());
    assert!(c("host=adb-123.4.azuredatabricks.net").is_azure());
    assert!(c("host=https://x.databricks.azure.us").is_azure());
    assert!(c("host=https://x.databricks.azure.cn:443").is_azure());
    assert!(!c("host=https://x.cloud.databricks.com").is_azure());
    assert!(!c("").is_azure());
    assert!(c("host=https://x.cloud.databricks.com azure_workspace_resource_id=/s/x").is_azure());
    assert!(c("host=https://x.example.com cloud=Azure").is_azure());
    assert!(!c("host=https://adb-1.azuredatabricks.net cloud=aws").is_azure());

    assert!(c("host=accounts.cloud.databricks.com").is_account_host());
    assert!(c("host=https://accounts-dod.cloud.databricks.us").is_account_host());
    assert!(!c("host=https://x.cloud.databricks.com").is_account_host());
}

#[test]
fn attribute_table_is_consistent() {
    let mut keys = BTreeSet::new();
    let mut envs = BTreeSet::new();
    for a in attributes() {
        for k in std::iter::once(a.name).chain(a.aliases.iter().copied()) {
            assert!(keys.insert(k), "duplicate key {k}");
        }
        for e in a.env {
            assert!(envs.insert(*e), "duplicate env {e}");
        }
        assert_eq!(a.sensitive, a.kind == AttrKind::Secret, "{}", a.name);
        // Every attribute can be set from an option and read back.
        let value = match a.kind {
            AttrKind::Bool => "true",
            AttrKind::U64 | AttrKind::I64 => "7",
            _ => "v",
        };
        let mut cfg = Config::default();
        a.set_str(&mut cfg, value, "from a test").unwrap();
        assert!(a.is_set(&cfg), "{}", a.name);
    }
}

/// Issue 13: a credential with a stray byte is trimmed or refused when the configuration is
/// read, never sent. The error names the variable and the position, never the value.
#[test]
fn credentials_are_trimmed_and_checked_when_read() {
    let pat = "dapi0123456789abcdef0123456789abcdef";
    let env = |k: &str, v: &str| MapEnv::from_pairs([("HOME", "/nonexistent"), ("DATABRICKS_HOST", "https://h"), (k, v)]);
    for ws in ["\n", "\r\n", " ", "\t"] {
        let cfg = Config::resolve(&[], &env("DATABRICKS_TOKEN", &format!("{pat}{ws}"))).unwrap();
        assert_eq!(cfg.token.unwrap().expose(), pat);
    }
    for (bad, byte, what) in [
        (format!("{}\r{}", &pat[..10], &pat[10..]), 11, "a carriage return (0x0D)"),
        (format!("\u{feff}{pat}"), 1, "a byte-order mark"),
        (format!("{}\u{7f}{}", &pat[..5], &pat[5..]), 6, "a DEL character"),
        (format!("{}é{}", &pat[..5], &pat[5..]), 6, "a non-ASCII character"),
        (format!("{} {}", &pat[..5], &pat[5..]), 6, "a space"),
    ] {
        let e = Config::resolve(&[], &env("DATABRICKS_TOKEN", &bad)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().starts_with(&format!("resolve: token (DATABRICKS_TOKEN): byte {byte} of the value is {what}")), "{e}");
        assert!(!e.message().contains(&pat[6..]), "the value leaked: {e}");
    }
    // Options and M2M secrets: the same rule; spaces inside an encoded secret are fine.
    let e = Config::resolve(&opts("host=h token='dapi\u{1}x'"), &env("X", "y")).unwrap_err();
    assert!(e.message().contains("token (from the options): byte 5 of the value is a control character (0x01)"), "{e}");
    let cfg = Config::resolve(&[], &env("DATABRICKS_CLIENT_SECRET", "dose secret\n")).unwrap();
    assert_eq!(cfg.client_secret.unwrap().expose(), "dose secret");
    let e = Config::resolve(&[], &env("DATABRICKS_CLIENT_SECRET", "dose\x1b[0msecret")).unwrap_err();
    assert!(e.message().contains("client_secret (DATABRICKS_CLIENT_SECRET): byte 5 of the value is an escape character (0x1B)"), "{e}");
    assert!(!e.message().contains("dose"), "{e}");
    // The config file: the file and profile are named.
    let dir = crate::config::profiles::tests::TempDir::new("cred");
    let p = dir.write("cfg", "[p]\nhost = https://h\ntoken = dapi\u{200b}abc\n");
    let e = Config::resolve(&opts(&format!("config_file={} profile=p", p.display())), &MapEnv::default()).unwrap_err();
    assert!(e.message().contains("p profile: token (from the config file): byte 5 of the value is an invisible"), "{e}");
}

#[test]
fn group_settings_from_options_environment_and_profile() {
    let c = resolve("host=h", &env(&[("HOME", "/nonexistent"), ("DATABRICKS_GROUP_ID", "123"), ("LAKEBASE_GROUP_NAME", "writers")]));
    assert_eq!((c.group_id.as_deref(), c.group_name.as_deref()), (Some("123"), Some("writers")));
    assert_eq!(c.source_of("group_id"), Some(Source::Env("DATABRICKS_GROUP_ID")));
    assert!(c.debug_string().contains("group_id=123") && c.debug_string().contains("group_name=writers"), "{}", c.debug_string());
    let home = home_with("[g]\nhost = https://g.cloud.databricks.com\ntoken = dapiX\ngroup_id = 77\ngroup_name = readers\n");
    let c = resolve("profile=g", &env(&[("HOME", home.path())]));
    assert_eq!((c.group_id.as_deref(), c.group_name.as_deref()), (Some("77"), Some("readers")));
    // Not an auth method: no conflict with a token or a client secret.
    let c = resolve("host=h token=t group_id=1", &bare());
    assert_eq!(c.group_id.as_deref(), Some("1"));
    for name in ["group_id", "group_name"] {
        assert!(attributes().iter().find(|a| a.name == name).unwrap().cache_key, "{name} decides the token: part of the cache key");
    }
}
