//! The INI dialect of `.databrickscfg`, parsed the way the Go SDK parses it.
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
//! Values are kept in zeroizing storage and never printed: `Debug` shows key names only, and
//! parse errors give a line number, never the line.

use std::fmt;

use zeroize::Zeroizing;

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
        Section { name: name.to_string(), keys: Vec::new() }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The value of `key` (case-sensitive), if the section has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
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
        f.debug_struct("Section").field("name", &self.name).field("keys", &self.keys().collect::<Vec<_>>()).finish()
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
        let mut lines = Lines { lines: text.split_inclusive('\n').collect(), next: 0 };
        let mut file = IniFile { sections: vec![Section::new(DEFAULT_SECTION)] };
        let mut current = 0usize;

        while let Some(raw) = lines.next_line() {
            let lineno = lines.number();
            let err = |reason| IniError { line: lineno, reason };
            let line = raw.trim_start();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                let close = line.rfind(']').ok_or_else(|| err("unclosed section header"))?;
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
        self.sections.iter().filter(|s| !s.is_empty() && s.name != SETTINGS_SECTION).map(|s| s.name.as_str())
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
        let pos = line[start..].find(quote).ok_or("missing closing key quote")? + start;
        let i = line[pos + start..].find(DELIMS).ok_or("key-value delimiter not found")?;
        let end = pos + i;
        return Ok((line[start..pos].trim().to_string(), end + start + 1));
    }
    let end = line.find(DELIMS).ok_or("key-value delimiter not found")?;
    Ok((line[..end].trim().to_string(), end + 1))
}

/// go-ini `hasSurroundedQuote`: `q` first and last, and nowhere in between.
fn has_surrounded_quote(s: &str, q: u8) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == q && b[b.len() - 1] == q && b[1..].iter().position(|&c| c == q) == Some(b.len() - 2)
}

/// go-ini `readValue` with `SpaceBeforeInlineComment`, `IgnoreContinuation: false`.
fn read_value(input: &str, lines: &mut Lines<'_>) -> std::result::Result<Zeroizing<String>, &'static str> {
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
fn read_multilines(first: &str, quote: &str, lines: &mut Lines<'_>) -> std::result::Result<Zeroizing<String>, &'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        for s in ["password-with-double-quotes", "password-with-single-quotes", "password-without-quotes"] {
            assert_eq!(get(&f, s, "password"), Some("%Y#X$Z"), "{s}");
            assert_eq!(get(&f, s, "username"), Some("abc"));
        }
        assert_eq!(get(&f, "DEFAULT", "rate_limit"), Some("34"));
        assert_eq!(get(&f, "pat.with.dot", "token"), Some("PT0+IC9kZXYvdXJhbmRvbSA8PT0KYFZ"));
        // DEFAULT is not inherited by other sections, and dots do not make child sections here.
        assert_eq!(get(&f, "nohost", "host"), None);
    }

    #[test]
    fn go_testdata_passwords_without_comment() {
        let f = parse("[a]\npassword = \"%Y#X$Z\"\n[b]\npassword = '%Y#X$Z'\n[c]\npassword = %Y#X$Z\n");
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
        let f = parse("[p]\na = \"x\"\nb = 'x'\nc = \"x\"y\"\nd = \"x'\ne = \"\"\nf = \"\nkey = ' spaced '\n");
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
        let f = parse("[p]\n   host=https://x  \nk2 :  v2\n\tk3\t=\tv3\r\nempty =\nurl = https://a:8080/b\n");
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
        assert_eq!(f.profile_names().collect::<Vec<_>>(), vec!["DEFAULT", "p", "default"]);
    }

    #[test]
    fn repeated_sections_merge_and_repeated_keys_overwrite() {
        let f = parse("[p]\na = 1\nb = 2\n[q]\n[p]\na = 3\n");
        assert_eq!(get(&f, "p", "a"), Some("3"));
        assert_eq!(get(&f, "p", "b"), Some("2"));
        assert_eq!(f.section("p").unwrap().keys().collect::<Vec<_>>(), vec!["a", "b"]);
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
        assert_eq!(e, IniError { line: 3, reason: "key-value delimiter not found" });
        assert!(!e.to_string().contains("dapi"));
        assert_eq!(IniFile::parse("[p\n").unwrap_err().reason, "unclosed section header");
        assert_eq!(IniFile::parse("[]\n").unwrap_err().reason, "empty section name");
        assert_eq!(IniFile::parse("[p]\n= v\n").unwrap_err().reason, "empty key name");
        assert_eq!(IniFile::parse("[p]\nk = `open\nnever closed\n").unwrap_err().reason, "missing closing value quote");
    }

    #[test]
    fn debug_hides_values() {
        let f = parse("[p]\ntoken = dapi-secret\n");
        let d = format!("{f:?}");
        assert!(d.contains("token") && !d.contains("dapi-secret"), "{d}");
    }
}
