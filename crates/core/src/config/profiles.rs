//! Profiles of `.databrickscfg`: finding the file, reading it, choosing the section.
//!
//! Profile resolution (config_file.go `resolveProfile`): an explicit profile must exist; else
//! `[__settings__] default_profile` (must exist); else `DEFAULT`, silently skipped when absent or
//! empty. An empty section counts as absent. `DEFAULT` is never merged into other sections.
//! A missing file is skipped silently, even when a profile was named (Go returns early on
//! `os.IsNotExist` before looking at the profile).
//!

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::ini::{IniFile, Section, DEFAULT_SECTION, SETTINGS_SECTION};
use super::Env;
use crate::error::{Error, Result};

/// Where the SDKs look when `config_file` / `DATABRICKS_CONFIG_FILE` is not set.
pub const DEFAULT_CONFIG_FILE: &str = "~/.databrickscfg";
/// Expand a leading `~` with `$HOME` from `env`, exactly as Go's `LoadFile`: the rest of the path
/// is appended as written, so `~/x` becomes `$HOME/x` (and `~x` becomes `$HOMEx`).
pub fn expand_home(path: &str, env: &dyn Env) -> Result<PathBuf> {
    match path.strip_prefix('~') {
        None => Ok(PathBuf::from(path)),
        Some(rest) => match env.var("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Ok(PathBuf::from(format!("{home}{rest}"))),
            None => Err(Error::config("cannot find homedir: $HOME is not defined")),
        },
    }
}

/// Read and parse the file at `path`. `Ok(None)` when it does not exist. Only a regular file of
/// at most 1 MiB is read: a FIFO, a device or a huge file is an error at once.
pub fn read_file(path: &Path) -> Result<Option<IniFile>> {
    let bytes = match crate::fs::read_capped(path, crate::fs::CONFIG_FILE_MAX) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::config(format!("cannot parse config file: open {}: {e}", path.display())));
        }
    };
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) => IniFile::parse(text),
        // go-ini works on bytes; keep going with replacement characters rather than fail on,
        // say, a Latin-1 comment in an unrelated profile.
        Err(_) => {
            let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
            IniFile::parse(&text)
        }
    };
    parsed.map(Some).map_err(|e| Error::config(format!("cannot parse config file: {}: {e}", path.display())))
}

/// Go `resolveProfile`: the profile to read and whether it is the legacy `DEFAULT` fallback.
/// The error message is relative: the caller prefixes the file path.
pub fn resolve_profile(requested: Option<&str>, file: &IniFile) -> std::result::Result<(String, bool), String> {
    let reserved = || format!("{SETTINGS_SECTION} is a reserved section name and cannot be used as a profile");
    if let Some(p) = requested.filter(|p| !p.is_empty()) {
        if p == SETTINGS_SECTION {
            return Err(reserved());
        }
        return Ok((p.to_string(), false));
    }
    if let Some(v) = file.section(SETTINGS_SECTION).and_then(|s| s.get("default_profile")) {
        let v = v.trim();
        if !v.is_empty() {
            if v == SETTINGS_SECTION {
                return Err(reserved());
            }
            return Ok((v.to_string(), false));
        }
    }
    Ok((DEFAULT_SECTION.to_string(), true))
}

/// The outcome of reading the config file for a profile.
#[derive(Clone, Debug)]
pub struct LoadedFile {
    /// The file that was read, after `~` expansion.
    pub path: PathBuf,
    /// The profile read from it; `None` when the `DEFAULT` fallback was absent or empty.
    pub profile: Option<LoadedProfile>,
}

#[derive(Clone, Debug)]
pub struct LoadedProfile {
    /// The resolved profile (section) name.
    pub name: String,
    /// True when no profile was named and `DEFAULT` was used.
    pub is_fallback: bool,
    pub section: Section,
}

/// Find and read the profile the way Go's config-file loader does. `config_file` defaults to
/// `~/.databrickscfg`. `Ok(None)` when the file does not exist. Errors are
/// [`crate::error::ErrorKind::Config`] without the `resolve: ` prefix:
/// `cannot parse config file: ...`, `<path>: __settings__ is a reserved section name ...`,
/// `<path> has no <profile> profile configured`.
pub fn load_profile(config_file: Option<&str>, profile: Option<&str>, env: &dyn Env) -> Result<Option<LoadedFile>> {
    let raw = config_file.filter(|p| !p.is_empty()).unwrap_or(DEFAULT_CONFIG_FILE);
    let path = expand_home(raw, env).map_err(|e| e.context("cannot parse config file"))?;
    let Some(ini) = read_file(&path)? else {
        return Ok(None);
    };
    let (name, is_fallback) = resolve_profile(profile, &ini).map_err(|m| Error::config(format!("{}: {m}", path.display())))?;
    let section = ini.section(&name).filter(|s| !s.is_empty()).cloned();
    match section {
        Some(section) => Ok(Some(LoadedFile { path, profile: Some(LoadedProfile { name, is_fallback, section }) })),
        None if is_fallback => Ok(Some(LoadedFile { path, profile: None })),
        None => Err(Error::config(format!("{} has no {name} profile configured", path.display()))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::MapEnv;
    use crate::error::ErrorKind;

    /// A fresh empty directory under the system temp dir; removed on drop.
    pub(crate) struct TempDir(pub PathBuf);
    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let p =
                std::env::temp_dir().join(format!("lakebase-config-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).unwrap();
            }
            std::fs::write(&p, text).unwrap();
            p
        }
        pub(crate) fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn env_home(home: &str) -> MapEnv {
        MapEnv::from_pairs([("HOME", home)])
    }

    #[test]
    fn home_expansion() {
        let env = env_home("/h");
        assert_eq!(expand_home("~/.databrickscfg", &env).unwrap(), PathBuf::from("/h/.databrickscfg"));
        assert_eq!(expand_home("~x", &env).unwrap(), PathBuf::from("/hx"));
        assert_eq!(expand_home("/abs/~", &env).unwrap(), PathBuf::from("/abs/~"));
        let e = expand_home("~/x", &MapEnv::default()).unwrap_err();
        assert_eq!(e.message(), "cannot find homedir: $HOME is not defined");
        // No HOME is fine when there is nothing to expand.
        assert_eq!(expand_home("rel/cfg", &MapEnv::default()).unwrap(), PathBuf::from("rel/cfg"));
    }

    /// Go SDK config/testdata/default_profile/.databrickscfg
    const DEFAULT_PROFILE: &str = "[__settings__]
default_profile = my-workspace

[DEFAULT]
host = https://default.cloud.databricks.com
token = dapiOLD

[my-workspace]
host = https://my-workspace.cloud.databricks.com
token = dapiXYZ

[other]
host = https://other.cloud.databricks.com
token = dapiOTHER
";

    fn load(text: &str, profile: Option<&str>) -> Result<Option<LoadedFile>> {
        let dir = TempDir::new("file");
        dir.write(".databrickscfg", text);
        load_profile(None, profile, &env_home(dir.path()))
    }

    fn loaded_host(r: Result<Option<LoadedFile>>) -> (String, bool, String) {
        let lf = r.unwrap().unwrap();
        let p = lf.profile.unwrap();
        (p.name, p.is_fallback, p.section.get("host").unwrap().to_string())
    }

    #[test]
    fn settings_default_profile_wins_over_default() {
        assert_eq!(
            loaded_host(load(DEFAULT_PROFILE, None)),
            ("my-workspace".into(), false, "https://my-workspace.cloud.databricks.com".into())
        );
    }

    #[test]
    fn explicit_profile_wins_over_settings() {
        assert_eq!(loaded_host(load(DEFAULT_PROFILE, Some("other"))), ("other".into(), false, "https://other.cloud.databricks.com".into()));
    }

    #[test]
    fn default_profile_without_default_section() {
        // testdata/default_profile_no_default
        let text = "[__settings__]\ndefault_profile = my-workspace\n\n[my-workspace]\nhost = https://my-workspace.cloud.databricks.com\ntoken = dapiXYZ\n";
        assert_eq!(loaded_host(load(text, None)).0, "my-workspace");
    }

    #[test]
    fn legacy_fallback_to_default() {
        // testdata/default_profile_empty: an empty [__settings__] falls back to DEFAULT.
        let text = "[__settings__]\n\n[DEFAULT]\nhost = https://default.cloud.databricks.com\ntoken = dapiXYZ\n";
        assert_eq!(loaded_host(load(text, None)), ("DEFAULT".into(), true, "https://default.cloud.databricks.com".into()));
        // Whitespace-only default_profile is empty too.
        let text = "[__settings__]\ndefault_profile =   \n[DEFAULT]\nhost = h\n";
        assert!(loaded_host(load(text, None)).1);
        // testdata/default_profile_explicit_default: naming DEFAULT is not a fallback.
        let text = "[__settings__]\ndefault_profile = DEFAULT\n\n[DEFAULT]\nhost = https://default.cloud.databricks.com\n";
        assert!(!loaded_host(load(text, None)).1);
    }

    #[test]
    fn missing_default_is_silently_skipped() {
        let lf = load("[other]\nhost = h\n", None).unwrap().unwrap();
        assert!(lf.profile.is_none());
        let lf = load("[DEFAULT]\n[other]\nhost = h\n", None).unwrap().unwrap();
        assert!(lf.profile.is_none(), "an empty DEFAULT counts as absent");
    }

    #[test]
    fn missing_named_profile_is_an_error() {
        let dir = TempDir::new("file");
        let path = dir.write("cfg", DEFAULT_PROFILE);
        let env = MapEnv::default();
        let e = load_profile(Some(path.to_str().unwrap()), Some("nope"), &env).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.message(), format!("{} has no nope profile configured", path.display()));
        // An empty section counts as missing.
        let path = dir.write("cfg2", "[empty]\n[x]\nk = v\n");
        let e = load_profile(Some(path.to_str().unwrap()), Some("empty"), &env).unwrap_err();
        assert_eq!(e.message(), format!("{} has no empty profile configured", path.display()));
    }

    #[test]
    fn default_profile_pointing_nowhere_is_an_error() {
        // testdata/default_profile_nonexistent
        let dir = TempDir::new("file");
        let path = dir.write(".databrickscfg", "[__settings__]\ndefault_profile = deleted-profile\n\n[my-workspace]\nhost = h\n");
        let e = load_profile(None, None, &env_home(dir.path())).unwrap_err();
        assert_eq!(e.message(), format!("{} has no deleted-profile profile configured", path.display()));
    }

    #[test]
    fn settings_section_is_reserved() {
        let dir = TempDir::new("file");
        let path = dir.write(".databrickscfg", "[__settings__]\ndefault_profile = __settings__\n[DEFAULT]\nhost = h\n");
        let env = env_home(dir.path());
        let want = format!("{}: __settings__ is a reserved section name and cannot be used as a profile", path.display());
        assert_eq!(load_profile(None, None, &env).unwrap_err().message(), want);
        dir.write(".databrickscfg", DEFAULT_PROFILE);
        assert_eq!(load_profile(None, Some("__settings__"), &env).unwrap_err().message(), want);
    }

    #[test]
    fn missing_file_is_skipped_even_with_a_named_profile() {
        let dir = TempDir::new("file");
        let env = env_home(dir.path());
        assert!(load_profile(None, None, &env).unwrap().is_none());
        assert!(load_profile(None, Some("dev"), &env).unwrap().is_none());
        let missing = format!("{}/nope/cfg", dir.path());
        assert!(load_profile(Some(&missing), Some("dev"), &env).unwrap().is_none());
    }

    #[test]
    fn unreadable_or_unparsable_file_is_an_error() {
        let dir = TempDir::new("file");
        let e = load_profile(Some(dir.path()), None, &MapEnv::default()).unwrap_err();
        assert!(e.message().starts_with(&format!("cannot parse config file: open {}: ", dir.path())), "{}", e.message());
        let path = dir.write("bad", "[p]\nsecret-without-equals\n");
        let e = load_profile(Some(path.to_str().unwrap()), Some("p"), &MapEnv::default()).unwrap_err();
        assert_eq!(e.message(), format!("cannot parse config file: {}: line 2: key-value delimiter not found", path.display()));
        let e = load_profile(None, None, &MapEnv::default()).unwrap_err();
        assert_eq!(e.message(), "cannot parse config file: cannot find homedir: $HOME is not defined");
    }

    #[test]
    fn non_utf8_file_still_parses() {
        let dir = TempDir::new("file");
        let path = dir.0.join("cfg");
        std::fs::write(&path, b"# caf\xe9\n[p]\nhost = h\n").unwrap();
        let lf = load_profile(Some(path.to_str().unwrap()), Some("p"), &MapEnv::default()).unwrap().unwrap();
        assert_eq!(lf.profile.unwrap().section.get("host"), Some("h"));
    }
}
