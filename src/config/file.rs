//! `.databrickscfg`: the INI file the Databricks CLI and SDKs share, read the way the Go SDK reads it.
//!
//! The Go SDK (config/config_file.go `LoadFile`) parses the file with gopkg.in/ini.v1 and the
//! options `SpaceBeforeInlineComment: true`, everything else default. This module reproduces that
//! parser's behaviour (parser.go `parse`, `readKeyName`, `readValue`):
//! - keys before the first `[section]` belong to `DEFAULT`; `[DEFAULT]` is the same section;
//! - section and key names are case-sensitive (`Insensitive` is off); a section name is taken
//!   verbatim between `[` and the last `]` on the line; a repeated section continues the first one
//!   and a repeated key overwrites the earlier value;
//! - full-line comments start with `#` or `;`; an inline comment starts at ` #` or ` ;` (a space
//!   is required, so `%Y#X$Z` stays whole) and the rest is trimmed;
//! - `key = value` and `key: value` (delimiters `=` and `:`); surrounding whitespace is trimmed;
//! - one pair of surrounding `"` or `'` is removed when that quote character appears nowhere else;
//! - a value starting with `` ` `` or `"""` runs to the last matching quote, possibly over several
//!   lines, and is taken verbatim; a value ending in `\` continues on the next line;
//! - a UTF-8 byte-order mark is skipped; a line with no delimiter is an error.
//!
//! Profile resolution (config_file.go `resolveProfile`): an explicit profile must exist; else
//! `[__settings__] default_profile` (must exist); else `DEFAULT`, silently skipped when absent or
//! empty. An empty section counts as absent. `DEFAULT` is never merged into other sections.
//! A missing file is skipped silently, even when a profile was named (Go returns early on
//! `os.IsNotExist` before looking at the profile).
//!
//! Values are kept in zeroizing storage and never printed: `Debug` shows key names only, and
//! parse errors give a line number, never the line.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::Env;
use crate::error::{Error, Result};

/// Where the SDKs look when `config_file` / `DATABRICKS_CONFIG_FILE` is not set.
pub const DEFAULT_CONFIG_FILE: &str = "~/.databrickscfg";
/// The section used when no profile is named and `[__settings__]` names none.
pub const DEFAULT_SECTION: &str = "DEFAULT";
/// Reserved section for tool settings (`databricks auth switch` writes `default_profile` there).
pub const SETTINGS_SECTION: &str = "__settings__";

/// One `[section]` of the file. Values are wiped from memory on drop. Immutable once parsed, so
/// it is safe to share between threads.
#[derive(Clone)]
pub struct Section {
    name: String,
    keys: Vec<(String, Zeroizing<String>)>,
}

impl Section {
    fn new(name: &str) -> Self {
        Section {
            name: name.to_string(),
            keys: Vec::new(),
        }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The value of `key` (case-sensitive), if the section has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// Key names in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| k.as_str())
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    fn set(&mut self, key: String, value: Zeroizing<String>) {
        match self.keys.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.keys.push((key, value)),
        }
    }
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key names only: values may be secrets.
        f.debug_struct("Section")
            .field("name", &self.name)
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A parsed INI file: its sections in file order, `DEFAULT` first. Immutable once parsed, so it
/// is safe to share between threads.
#[derive(Clone, Debug)]
pub struct IniFile {
    sections: Vec<Section>,
}

/// Why a file failed to parse: the 1-based line and a reason that never quotes the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IniError {
    pub line: usize,
    pub reason: &'static str,
}

impl fmt::Display for IniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The file's lines, each with its `\n` (the last may lack one), consumed front to back.
struct Lines<'a> {
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<&'a str> {
        let l = self.lines.get(self.next).copied();
        if l.is_some() {
            self.next += 1;
        }
        l
    }
    /// 1-based number of the line returned last.
    fn number(&self) -> usize {
        self.next
    }
}

impl IniFile {
    /// Parse INI text the way go-ini does with the SDK's options (see the module docs).
    pub fn parse(text: &str) -> std::result::Result<IniFile, IniError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Lines {
            lines: text.split_inclusive('\n').collect(),
            next: 0,
        };
        let mut file = IniFile {
            sections: vec![Section::new(DEFAULT_SECTION)],
        };
        let mut current = 0usize;

        while let Some(raw) = lines.next_line() {
            let lineno = lines.number();
            let err = |reason| IniError {
                line: lineno,
                reason,
            };
            let line = raw.trim_start();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                let close = line
                    .rfind(']')
                    .ok_or_else(|| err("unclosed section header"))?;
                let name = &line[1..close];
                if name.is_empty() {
                    return Err(err("empty section name"));
                }
                current = match file.sections.iter().position(|s| s.name == name) {
                    Some(i) => i,
                    None => {
                        file.sections.push(Section::new(name));
                        file.sections.len() - 1
                    }
                };
                continue;
            }
            let (key, offset) = read_key_name(line).map_err(err)?;
            let value = read_value(&line[offset..], &mut lines).map_err(err)?;
            if key.is_empty() {
                return Err(err("empty key name"));
            }
            file.sections[current].set(key, value);
        }
        Ok(file)
    }

    /// The section called `name` (case-sensitive), if the file has it (it may be empty).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// All sections in file order, `DEFAULT` first (possibly empty), `__settings__` included.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter()
    }

    /// Names of the non-empty sections that are profiles (everything but `__settings__`).
    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.sections
            .iter()
            .filter(|s| !s.is_empty() && s.name != SETTINGS_SECTION)
            .map(|s| s.name.as_str())
    }
}

/// go-ini `readKeyName` with delimiters `=:`: the key (trimmed) and the offset just past the
/// delimiter. A key may be quoted with `"`, `"""` or `` ` ``.
fn read_key_name(line: &str) -> std::result::Result<(String, usize), &'static str> {
    const DELIMS: &[char] = &['=', ':'];
    let quote = if line.starts_with('"') {
        if line.len() > 6 && line.starts_with("\"\"\"") {
            "\"\"\""
        } else {
            "\""
        }
    } else if line.starts_with('`') {
        "`"
    } else {
        ""
    };
    if !quote.is_empty() {
        let start = quote.len();
        let pos = line[start..]
            .find(quote)
            .ok_or("missing closing key quote")?
            + start;
        let i = line[pos + start..]
            .find(DELIMS)
            .ok_or("key-value delimiter not found")?;
        let end = pos + i;
        return Ok((line[start..pos].trim().to_string(), end + start + 1));
    }
    let end = line.find(DELIMS).ok_or("key-value delimiter not found")?;
    Ok((line[..end].trim().to_string(), end + 1))
}

/// go-ini `hasSurroundedQuote`: `q` first and last, and nowhere in between.
fn has_surrounded_quote(s: &str, q: u8) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0] == q
        && b[b.len() - 1] == q
        && b[1..].iter().position(|&c| c == q) == Some(b.len() - 2)
}

/// go-ini `readValue` with `SpaceBeforeInlineComment`, `IgnoreContinuation: false`.
fn read_value(
    input: &str,
    lines: &mut Lines<'_>,
) -> std::result::Result<Zeroizing<String>, &'static str> {
    let line = input.trim_start();
    if line.is_empty() {
        return Ok(Zeroizing::new(String::new()));
    }

    let quote = if line.len() > 3 && line.starts_with("\"\"\"") {
        "\"\"\""
    } else if line.starts_with('`') {
        "`"
    } else {
        ""
    };
    if !quote.is_empty() {
        let start = quote.len();
        return match line[start..].rfind(quote) {
            Some(pos) => Ok(Zeroizing::new(line[start..start + pos].to_string())),
            None => read_multilines(&line[start..], quote, lines),
        };
    }

    let mut line = line.trim();
    if let Some(stripped) = line.strip_suffix('\\') {
        return Ok(read_continuation_lines(stripped, lines));
    }

    let comment = line.find(" #").or_else(|| line.find(" ;"));
    if let Some(i) = comment {
        line = line[..i].trim();
    }

    if has_surrounded_quote(line, b'\'') || has_surrounded_quote(line, b'"') {
        line = &line[1..line.len() - 1];
    }
    Ok(Zeroizing::new(line.to_string()))
}

/// go-ini `readMultilines`: append whole lines until one contains the closing quote.
fn read_multilines(
    first: &str,
    quote: &str,
    lines: &mut Lines<'_>,
) -> std::result::Result<Zeroizing<String>, &'static str> {
    let mut value = Zeroizing::new(first.to_string());
    loop {
        let Some(next) = lines.next_line() else {
            return Err("missing closing value quote");
        };
        if let Some(pos) = next.rfind(quote) {
            value.push_str(&next[..pos]);
            return Ok(value);
        }
        value.push_str(next);
        if !next.ends_with('\n') {
            return Err("missing closing value quote");
        }
    }
}

/// go-ini `readContinuationLines`: join trimmed lines while the value keeps ending in `\`; a
/// blank line or the end of the file stops it.
fn read_continuation_lines(first: &str, lines: &mut Lines<'_>) -> Zeroizing<String> {
    let mut value = Zeroizing::new(first.to_string());
    while let Some(next) = lines.next_line() {
        let next = next.trim();
        if next.is_empty() {
            break;
        }
        value.push_str(next);
        if !value.ends_with('\\') {
            break;
        }
        value.pop();
    }
    value
}

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

/// Read and parse the file at `path`. `Ok(None)` when it does not exist.
pub fn read_file(path: &Path) -> Result<Option<IniFile>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::config(format!(
                "cannot parse config file: open {}: {e}",
                path.display()
            )));
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
    parsed
        .map(Some)
        .map_err(|e| Error::config(format!("cannot parse config file: {}: {e}", path.display())))
}

/// Go `resolveProfile`: the profile to read and whether it is the legacy `DEFAULT` fallback.
/// The error message is relative: the caller prefixes the file path.
pub fn resolve_profile(
    requested: Option<&str>,
    file: &IniFile,
) -> std::result::Result<(String, bool), String> {
    let reserved =
        || format!("{SETTINGS_SECTION} is a reserved section name and cannot be used as a profile");
    if let Some(p) = requested.filter(|p| !p.is_empty()) {
        if p == SETTINGS_SECTION {
            return Err(reserved());
        }
        return Ok((p.to_string(), false));
    }
    if let Some(v) = file
        .section(SETTINGS_SECTION)
        .and_then(|s| s.get("default_profile"))
    {
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
pub fn load_profile(
    config_file: Option<&str>,
    profile: Option<&str>,
    env: &dyn Env,
) -> Result<Option<LoadedFile>> {
    let raw = config_file
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_CONFIG_FILE);
    let path = expand_home(raw, env).map_err(|e| e.context("cannot parse config file"))?;
    let Some(ini) = read_file(&path)? else {
        return Ok(None);
    };
    let (name, is_fallback) = resolve_profile(profile, &ini)
        .map_err(|m| Error::config(format!("{}: {m}", path.display())))?;
    let section = ini.section(&name).filter(|s| !s.is_empty()).cloned();
    match section {
        Some(section) => Ok(Some(LoadedFile {
            path,
            profile: Some(LoadedProfile {
                name,
                is_fallback,
                section,
            }),
        })),
        None if is_fallback => Ok(Some(LoadedFile {
            path,
            profile: None,
        })),
        None => Err(Error::config(format!(
            "{} has no {name} profile configured",
            path.display()
        ))),
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
            let p = std::env::temp_dir().join(format!(
                "lakebase-config-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
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

    fn parse(text: &str) -> IniFile {
        IniFile::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }
    fn get<'a>(f: &'a IniFile, section: &str, key: &str) -> Option<&'a str> {
        f.section(section).and_then(|s| s.get(key))
    }

    /// Go SDK config/testdata/.databrickscfg (with the inline comments of the newer version).
    const GO_TESTDATA: &str = "[DEFAULT]
host = https://dbc-XXXXXXXX-YYYY.cloud.databricks.com/
token = PT0+IC9kZXYvdXJhbmRvbSA8PT0KYFZ
rate_limit=34
debug_truncate=829374

[nohost]
token = PT0+IC9kZXYvdXJhbmRvbSA8PT0KYFZ

[azure-spn]
host = https://adb-123.4.azuredatabricks.net/
azure_tenant_id = 12345678
azure_client_id = 87654321
azure_client_secret = 10000002

[pat.with.dot]
host = https://dbc-XXXXXXXX-YYYY.cloud.databricks.com/
token = PT0+IC9kZXYvdXJhbmRvbSA8PT0KYFZ

[password-with-double-quotes]
host = https://dbc-XXXXXXXX-YYYY.cloud.databricks.com/
username = abc
password = \"%Y#X$Z\" # comment

[password-with-single-quotes]
host = https://dbc-XXXXXXXX-YYYY.cloud.databricks.com/
username = abc
password = '%Y#X$Z' # comment

[password-without-quotes]
host = https://dbc-XXXXXXXX-YYYY.cloud.databricks.com/
username = abc
password = %Y#X$Z # comment
";

    #[test]
    fn go_testdata_passwords() {
        let f = parse(GO_TESTDATA);
        for s in [
            "password-with-double-quotes",
            "password-with-single-quotes",
            "password-without-quotes",
        ] {
            assert_eq!(get(&f, s, "password"), Some("%Y#X$Z"), "{s}");
            assert_eq!(get(&f, s, "username"), Some("abc"));
        }
        assert_eq!(get(&f, "DEFAULT", "rate_limit"), Some("34"));
        assert_eq!(
            get(&f, "pat.with.dot", "token"),
            Some("PT0+IC9kZXYvdXJhbmRvbSA8PT0KYFZ")
        );
        // DEFAULT is not inherited by other sections, and dots do not make child sections here.
        assert_eq!(get(&f, "nohost", "host"), None);
    }

    #[test]
    fn go_testdata_passwords_without_comment() {
        let f =
            parse("[a]\npassword = \"%Y#X$Z\"\n[b]\npassword = '%Y#X$Z'\n[c]\npassword = %Y#X$Z\n");
        for s in ["a", "b", "c"] {
            assert_eq!(get(&f, s, "password"), Some("%Y#X$Z"), "{s}");
        }
    }

    #[test]
    fn comments() {
        let f = parse("# top\n; also\n  # indented\n[p]\n# c\nk = v ; trailing\nh = a#b;c\nx = 1 # one ; two\ny =   #not-a-comment\n");
        assert_eq!(get(&f, "p", "k"), Some("v"));
        assert_eq!(get(&f, "p", "h"), Some("a#b;c"));
        assert_eq!(get(&f, "p", "x"), Some("1"));
        assert_eq!(get(&f, "p", "y"), Some("#not-a-comment"));
        // " #" is looked for before " ;", as go-ini does.
        let f = parse("[p]\nk = a ;b #c\n");
        assert_eq!(get(&f, "p", "k"), Some("a ;b"));
    }

    #[test]
    fn quotes_stripped_only_when_surrounding_alone() {
        let f = parse(
            "[p]\na = \"x\"\nb = 'x'\nc = \"x\"y\"\nd = \"x'\ne = \"\"\nf = \"\nkey = ' spaced '\n",
        );
        assert_eq!(get(&f, "p", "a"), Some("x"));
        assert_eq!(get(&f, "p", "b"), Some("x"));
        assert_eq!(get(&f, "p", "c"), Some("\"x\"y\""));
        assert_eq!(get(&f, "p", "d"), Some("\"x'"));
        assert_eq!(get(&f, "p", "e"), Some(""));
        assert_eq!(get(&f, "p", "f"), Some("\""));
        assert_eq!(get(&f, "p", "key"), Some(" spaced "));
    }

    #[test]
    fn whitespace_and_delimiters() {
        let f = parse(
            "[p]\n   host=https://x  \nk2 :  v2\n\tk3\t=\tv3\r\nempty =\nurl = https://a:8080/b\n",
        );
        assert_eq!(get(&f, "p", "host"), Some("https://x"));
        assert_eq!(get(&f, "p", "k2"), Some("v2"));
        assert_eq!(get(&f, "p", "k3"), Some("v3"));
        assert_eq!(get(&f, "p", "empty"), Some(""));
        assert_eq!(get(&f, "p", "url"), Some("https://a:8080/b"));
    }

    #[test]
    fn names_are_case_sensitive_and_verbatim() {
        let f = parse("[Dev]\nHost = a\n[dev]\nhost = b\n[ spaced ]\nk = v\n");
        assert_eq!(get(&f, "Dev", "Host"), Some("a"));
        assert_eq!(get(&f, "Dev", "host"), None);
        assert_eq!(get(&f, "dev", "host"), Some("b"));
        assert_eq!(get(&f, " spaced ", "k"), Some("v"));
        assert!(f.section("spaced").is_none());
    }

    #[test]
    fn default_section_and_keys_before_any_header() {
        let f = parse("host = top\n[DEFAULT]\ntoken = t\n[p]\nk = v\n[default]\nx = y\n");
        assert_eq!(get(&f, "DEFAULT", "host"), Some("top"));
        assert_eq!(get(&f, "DEFAULT", "token"), Some("t"));
        assert_eq!(get(&f, "default", "x"), Some("y"));
        assert_eq!(
            f.profile_names().collect::<Vec<_>>(),
            vec!["DEFAULT", "p", "default"]
        );
    }

    #[test]
    fn repeated_sections_merge_and_repeated_keys_overwrite() {
        let f = parse("[p]\na = 1\nb = 2\n[q]\n[p]\na = 3\n");
        assert_eq!(get(&f, "p", "a"), Some("3"));
        assert_eq!(get(&f, "p", "b"), Some("2"));
        assert_eq!(
            f.section("p").unwrap().keys().collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert!(f.section("q").unwrap().is_empty());
    }

    #[test]
    fn bom_and_crlf() {
        let f = parse("\u{feff}[p]\r\nk = v\r\n");
        assert_eq!(get(&f, "p", "k"), Some("v"));
    }

    #[test]
    fn continuation_and_multiline_values() {
        let f = parse("[p]\na = one\\\n  two\\\n three\nb = x\\\n\nc = `multi\nline` ignored\nd = \"\"\"tri\"\"\"\ne = `x`\n");
        assert_eq!(get(&f, "p", "a"), Some("onetwothree"));
        assert_eq!(get(&f, "p", "b"), Some("x"));
        assert_eq!(get(&f, "p", "c"), Some("multi\nline"));
        assert_eq!(get(&f, "p", "d"), Some("tri"));
        assert_eq!(get(&f, "p", "e"), Some("x"));
    }

    #[test]
    fn quoted_key_names() {
        let f = parse("[p]\n\"my key\" = v\n`k2`: w\n");
        assert_eq!(get(&f, "p", "my key"), Some("v"));
        assert_eq!(get(&f, "p", "k2"), Some("w"));
    }

    #[test]
    fn parse_errors_give_line_not_content() {
        let e = IniFile::parse("[p]\nhost = x\ndapiSECRET\n").unwrap_err();
        assert_eq!(
            e,
            IniError {
                line: 3,
                reason: "key-value delimiter not found"
            }
        );
        assert!(!e.to_string().contains("dapi"));
        assert_eq!(
            IniFile::parse("[p\n").unwrap_err().reason,
            "unclosed section header"
        );
        assert_eq!(
            IniFile::parse("[]\n").unwrap_err().reason,
            "empty section name"
        );
        assert_eq!(
            IniFile::parse("[p]\n= v\n").unwrap_err().reason,
            "empty key name"
        );
        assert_eq!(
            IniFile::parse("[p]\nk = `open\nnever closed\n")
                .unwrap_err()
                .reason,
            "missing closing value quote"
        );
    }

    #[test]
    fn debug_hides_values() {
        let f = parse("[p]\ntoken = dapi-secret\n");
        let d = format!("{f:?}");
        assert!(d.contains("token") && !d.contains("dapi-secret"), "{d}");
    }

    fn env_home(home: &str) -> MapEnv {
        MapEnv::from_pairs([("HOME", home)])
    }

    #[test]
    fn home_expansion() {
        let env = env_home("/h");
        assert_eq!(
            expand_home("~/.databrickscfg", &env).unwrap(),
            PathBuf::from("/h/.databrickscfg")
        );
        assert_eq!(expand_home("~x", &env).unwrap(), PathBuf::from("/hx"));
        assert_eq!(
            expand_home("/abs/~", &env).unwrap(),
            PathBuf::from("/abs/~")
        );
        let e = expand_home("~/x", &MapEnv::default()).unwrap_err();
        assert_eq!(e.message(), "cannot find homedir: $HOME is not defined");
        // No HOME is fine when there is nothing to expand.
        assert_eq!(
            expand_home("rel/cfg", &MapEnv::default()).unwrap(),
            PathBuf::from("rel/cfg")
        );
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
        (
            p.name,
            p.is_fallback,
            p.section.get("host").unwrap().to_string(),
        )
    }

    #[test]
    fn settings_default_profile_wins_over_default() {
        assert_eq!(
            loaded_host(load(DEFAULT_PROFILE, None)),
            (
                "my-workspace".into(),
                false,
                "https://my-workspace.cloud.databricks.com".into()
            )
        );
    }

    #[test]
    fn explicit_profile_wins_over_settings() {
        assert_eq!(
            loaded_host(load(DEFAULT_PROFILE, Some("other"))),
            (
                "other".into(),
                false,
                "https://other.cloud.databricks.com".into()
            )
        );
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
        assert_eq!(
            loaded_host(load(text, None)),
            (
                "DEFAULT".into(),
                true,
                "https://default.cloud.databricks.com".into()
            )
        );
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
        let lf = load("[DEFAULT]\n[other]\nhost = h\n", None)
            .unwrap()
            .unwrap();
        assert!(lf.profile.is_none(), "an empty DEFAULT counts as absent");
    }

    #[test]
    fn missing_named_profile_is_an_error() {
        let dir = TempDir::new("file");
        let path = dir.write("cfg", DEFAULT_PROFILE);
        let env = MapEnv::default();
        let e = load_profile(Some(path.to_str().unwrap()), Some("nope"), &env).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(
            e.message(),
            format!("{} has no nope profile configured", path.display())
        );
        // An empty section counts as missing.
        let path = dir.write("cfg2", "[empty]\n[x]\nk = v\n");
        let e = load_profile(Some(path.to_str().unwrap()), Some("empty"), &env).unwrap_err();
        assert_eq!(
            e.message(),
            format!("{} has no empty profile configured", path.display())
        );
    }

    #[test]
    fn default_profile_pointing_nowhere_is_an_error() {
        // testdata/default_profile_nonexistent
        let dir = TempDir::new("file");
        let path = dir.write(
            ".databrickscfg",
            "[__settings__]\ndefault_profile = deleted-profile\n\n[my-workspace]\nhost = h\n",
        );
        let e = load_profile(None, None, &env_home(dir.path())).unwrap_err();
        assert_eq!(
            e.message(),
            format!(
                "{} has no deleted-profile profile configured",
                path.display()
            )
        );
    }

    #[test]
    fn settings_section_is_reserved() {
        let dir = TempDir::new("file");
        let path = dir.write(
            ".databrickscfg",
            "[__settings__]\ndefault_profile = __settings__\n[DEFAULT]\nhost = h\n",
        );
        let env = env_home(dir.path());
        let want = format!(
            "{}: __settings__ is a reserved section name and cannot be used as a profile",
            path.display()
        );
        assert_eq!(load_profile(None, None, &env).unwrap_err().message(), want);
        dir.write(".databrickscfg", DEFAULT_PROFILE);
        assert_eq!(
            load_profile(None, Some("__settings__"), &env)
                .unwrap_err()
                .message(),
            want
        );
    }

    #[test]
    fn missing_file_is_skipped_even_with_a_named_profile() {
        let dir = TempDir::new("file");
        let env = env_home(dir.path());
        assert!(load_profile(None, None, &env).unwrap().is_none());
        assert!(load_profile(None, Some("dev"), &env).unwrap().is_none());
        let missing = format!("{}/nope/cfg", dir.path());
        assert!(load_profile(Some(&missing), Some("dev"), &env)
            .unwrap()
            .is_none());
    }

    #[test]
    fn unreadable_or_unparsable_file_is_an_error() {
        let dir = TempDir::new("file");
        let e = load_profile(Some(dir.path()), None, &MapEnv::default()).unwrap_err();
        assert!(
            e.message()
                .starts_with(&format!("cannot parse config file: open {}: ", dir.path())),
            "{}",
            e.message()
        );
        let path = dir.write("bad", "[p]\nsecret-without-equals\n");
        let e =
            load_profile(Some(path.to_str().unwrap()), Some("p"), &MapEnv::default()).unwrap_err();
        assert_eq!(
            e.message(),
            format!(
                "cannot parse config file: {}: line 2: key-value delimiter not found",
                path.display()
            )
        );
        let e = load_profile(None, None, &MapEnv::default()).unwrap_err();
        assert_eq!(
            e.message(),
            "cannot parse config file: cannot find homedir: $HOME is not defined"
        );
    }

    #[test]
    fn non_utf8_file_still_parses() {
        let dir = TempDir::new("file");
        let path = dir.0.join("cfg");
        std::fs::write(&path, b"# caf\xe9\n[p]\nhost = h\n").unwrap();
        let lf = load_profile(Some(path.to_str().unwrap()), Some("p"), &MapEnv::default())
            .unwrap()
            .unwrap();
        assert_eq!(lf.profile.unwrap().section.get("host"), Some("h"));
    }
}
