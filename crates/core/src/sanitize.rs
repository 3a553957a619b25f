//! Text that crosses a trust boundary: credentials read from the configuration (checked), text a
//! server or a helper sent (control characters escaped), and error bodies that may echo what the
//! library sent (its secrets replaced by `***`).

use std::borrow::Cow;
use zeroize::Zeroizing;

/// What is wrong with a credential: the first offending character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadChar {
    /// 1-based byte position in the value as given (before trimming).
    pub byte: usize,
    /// What the character is, without the character itself when it could be part of a secret
    /// (`"a carriage return (0x0D)"`, `"a non-ASCII character"`, `"a space"`).
    pub what: String,
}

/// How strict a credential check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// Sent verbatim in an HTTP header (`Authorization: Bearer <token>`): visible ASCII only.
    HeaderToken,
    /// Encoded before it is sent (Basic, form body): anything but control and invisible
    /// formatting characters (spaces inside and non-ASCII letters are allowed).
    Encoded,
}

/// The whitespace the SDKs' config-file parsers trim around values (go-ini and Python's
/// configparser strip ASCII spaces, tabs and line ends): trimmed around credentials from every
/// source, so a trailing `\r` or `\n` from a CRLF file or a Kubernetes secret is harmless.
pub fn trim_ascii_ws(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
}

/// Trim surrounding whitespace ([`trim_ascii_ws`]) and check what remains. The error names the
/// first offending character's position and class, never the value.
pub fn check_credential(raw: &str, kind: CredentialKind) -> Result<&str, BadChar> {
    let t = trim_ascii_ws(raw);
    let offset = t.as_ptr() as usize - raw.as_ptr() as usize;
    for (i, c) in t.char_indices() {
        let bad = match kind {
            CredentialKind::HeaderToken => !(c as u32 >= 0x21 && c as u32 <= 0x7e),
            CredentialKind::Encoded => is_control_or_invisible(c),
        };
        if bad {
            return Err(BadChar { byte: offset + i + 1, what: describe(c) });
        }
    }
    Ok(t)
}

/// C0 and C1 controls, DEL, and invisible formatting characters (zero-width spaces and joiners,
/// bidirectional overrides, line/paragraph separators, the byte-order mark), plus U+FFFD, which
/// stands for bytes that were not UTF-8.
pub fn is_control_or_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
            | 0xFEFF | 0xFFF9..=0xFFFB | 0xFFFD)
}

/// What `c` is, for messages about credentials: named for controls (which no secret holds), only
/// classified for anything else (it could be part of a secret).
pub fn describe(c: char) -> String {
    let name = match c {
        '\r' => "a carriage return",
        '\n' => "a line feed",
        '\t' => "a tab",
        '\0' => "a NUL byte",
        '\x1b' => "an escape character",
        '\x7f' => "a DEL character",
        ' ' => return "a space".into(),
        '\u{feff}' => return "a byte-order mark (U+FEFF)".into(),
        '\u{fffd}' => return "not valid UTF-8".into(),
        c if c.is_ascii_control() => "a control character",
        c if is_control_or_invisible(c) => return "an invisible control or formatting character".into(),
        _ => return "a non-ASCII character".into(),
    };
    format!("{name} (0x{:02X})", c as u32)
}

/// `s` with every control and invisible formatting character escaped (`\n`, `\r`, `\t`, `\x1b`,
/// `\u{202e}`), so server or helper text can neither move a terminal's cursor, change its title,
/// forge a log line nor reorder what is shown.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control_or_invisible) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control_or_invisible(c) && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_control_or_invisible(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` for a message: at most `max` characters (then `...`), quoted and escaped like `{:?}`.
pub fn quoted(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(max).collect();
    format!("{head:?}...")
}

/// The secrets one request carried, in every form a server could echo them in: raw,
/// percent-encoded (form bodies), Base64 (HTTP Basic), JSON-escaped. Wiped on drop.
#[derive(Default)]
pub struct Redactor {
    needles: Vec<Zeroizing<Vec<u8>>>,
}

/// Secrets shorter than this are not searched for (replacing every `ab` would garble messages
/// while hiding nothing of value).
const MIN_SECRET_LEN: usize = 4;

impl Redactor {
    /// Add `secret` and its encodings.
    pub fn add(&mut self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let pct = form.replace('+', "%20");
        let json = serde_json::to_string(secret).unwrap_or_default();
        let json = json.strip_prefix('"').and_then(|j| j.strip_suffix('"')).unwrap_or(&json);
        let variants = [secret.to_string(), form, pct, json.to_string(), json.replace('/', "\\/")];
        for v in variants {
            let v = Zeroizing::new(v.into_bytes());
            if v.len() >= MIN_SECRET_LEN && !self.needles.iter().any(|n| **n == *v) {
                self.needles.push(v);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    /// Add the credential of an `Authorization` value: the part after the scheme (the whole value
    /// when there is none) and, for `Basic`, the decoded `user:password`, the password and its URL-decoded form.
    pub fn add_authorization(&mut self, value: &str) {
        let Some((scheme, cred)) = value.split_once(' ') else {
            self.add(value);
            return;
        };
        self.add(cred);
        if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine;
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(cred.trim()) {
                let raw = Zeroizing::new(raw);
                if let Ok(pair) = std::str::from_utf8(&raw) {
                    self.add(pair);
                    if let Some((_, secret)) = pair.split_once(':') {
                        self.add(secret);
                        let decoded: Zeroizing<String> = Zeroizing::new(
                            url::form_urlencoded::parse(format!("x={secret}").as_bytes())
                                .map(|(_, v)| v.into_owned())
                                .next()
                                .unwrap_or_default(),
                        );
                        self.add(&decoded);
                    }
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Replace every occurrence of a secret in `bytes` by `***`, in place (the old buffer is
    /// wiped when it is replaced).
    pub fn redact_bytes(&self, bytes: &mut Vec<u8>) {
        // Until none is left: a replacement can join text into a new occurrence (a secret with
        // `*` in it). Each replacement shortens the text (needles are longer than `***`), so
        // this ends.
        while self.needles.iter().any(|n| find(bytes, n).is_some()) {
            self.redact_pass(bytes);
        }
    }

    fn redact_pass(&self, bytes: &mut Vec<u8>) {
        for n in &self.needles {
            if find(bytes, n).is_none() {
                continue;
            }
            let mut out = Vec::with_capacity(bytes.len());
            let mut rest: &[u8] = bytes;
            while let Some(i) = find(rest, n) {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(b"***");
                rest = &rest[i + n.len()..];
            }
            out.extend_from_slice(rest);
            zeroize::Zeroize::zeroize(bytes);
            *bytes = out;
        }
    }

    /// `text` with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut b = text.as_bytes().to_vec();
        self.redact_bytes(&mut b);
        String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_trimmed_and_checked() {
        use CredentialKind::*;
        assert_eq!(check_credential("dapi123\r\n", HeaderToken), Ok("dapi123"));
        assert_eq!(check_credential(" \tdapi123 ", HeaderToken), Ok("dapi123"));
        let e = check_credential("dapi\x01123", HeaderToken).unwrap_err();
        assert_eq!(e, BadChar { byte: 5, what: "a control character (0x01)".into() });
        let e = check_credential("  dapi\r123", HeaderToken).unwrap_err();
        assert_eq!((e.byte, e.what.as_str()), (7, "a carriage return (0x0D)"));
        assert_eq!(check_credential("\u{feff}dapi", HeaderToken).unwrap_err().what, "a byte-order mark (U+FEFF)");
        assert_eq!(check_credential("da pi", HeaderToken).unwrap_err().what, "a space");
        assert_eq!(check_credential("daé", HeaderToken).unwrap_err().what, "a non-ASCII character");
        assert_eq!(check_credential("da\x7fpi", HeaderToken).unwrap_err().what, "a DEL character (0x7F)");
        // Encoded secrets may hold spaces and letters of any script, but no controls.
        assert_eq!(check_credential("pass word é\n", Encoded), Ok("pass word é"));
        assert!(check_credential("pass\u{200b}word", Encoded).is_err());
        assert!(check_credential("pass\x1b[31m", Encoded).is_err());
        assert_eq!(check_credential("a\u{fffd}", Encoded).unwrap_err(), BadChar { byte: 2, what: "not valid UTF-8".into() });
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(escape_controls("plain 'text'"), "plain 'text'");
        assert_eq!(escape_controls("\x1b[31mred\x1b[0m\n2026 INFO forged\r\n\x07"), "\\x1b[31mred\\x1b[0m\\n2026 INFO forged\\r\\n\\x07");
        assert_eq!(escape_controls("a\u{202e}b\u{9b}"), "a\\u{202e}b\\x9b");
    }

    #[test]
    fn every_form_of_a_sent_secret_is_redacted() {
        let mut r = Redactor::default();
        let secret = "dose+se/cret=1\"";
        let id = "client-id";
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        use base64::Engine;
        let blob = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)));
        r.add_authorization(&format!("Basic {blob}"));
        r.add("subject-jwt-token");
        let echo = format!(
            "Request was: Authorization: Basic {blob}\r\nbody client_secret={} raw {secret} json {} jwt subject-jwt-token",
            enc(secret),
            serde_json::to_string(secret).unwrap()
        );
        let out = r.redact(&echo);
        assert!(!out.contains("se/cret") && !out.contains("se%2Fcret") && !out.contains(&blob) && !out.contains("subject-jwt"), "{out}");
        assert!(out.contains("client_secret=***") && out.contains("Basic ***"), "{out}");
        let mut r = Redactor::default();
        r.add("ab");
        assert!(r.is_empty());
        // A replacement that joins into a new occurrence is replaced too.
        let mut r = Redactor::default();
        r.add("a***");
        assert!(!r.redact("aa***").contains("a***"));
    }
}
