//! The `options` string: libpq conninfo syntax (`key=value key2 = 'quoted \' value'`), parsed
//! exactly like libpq's `conninfo_parse` (src/interfaces/libpq/fe-connect.c).
//!
//! Rules, all from libpq:
//! - whitespace (C `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`) separates pairs and may surround `=`;
//! - an unquoted value runs to the next whitespace; `\x` stands for `x` anywhere in it;
//! - a value that starts with `'` runs to the next unescaped `'`; `\x` stands for `x` inside it;
//!   nothing has to separate the closing quote from the next pair (`a='x'b=y` is two pairs);
//! - `key=` at the end or `key=''` gives an empty value; `a= b=c` gives `a` the value `b=c`,
//!   because blanks after `=` are skipped before the value starts;
//! - a repeated key is returned twice; callers let the last one win, as libpq does.
//!
//! Error messages never contain a value, since values may be secrets. A name that is not a known
//! option key is not shown either: a name that has no `=` after it is most often a fragment of a
//! value with an unquoted space in it.

use crate::error::{Error, Result};

/// C `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Parse a libpq-style `key=value ...` string into `(key, value)` pairs, in order.
///
/// Errors are [`crate::error::ErrorKind::InvalidArgument`]; their messages never include a value.
pub fn parse_options(s: &str) -> Result<Vec<(String, String)>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // Skip blanks before the parameter name.
        if is_space(b[i]) {
            i += 1;
            continue;
        }

        // The parameter name runs to '=' or to whitespace.
        let name_start = i;
        while i < b.len() && b[i] != b'=' && !is_space(b[i]) {
            i += 1;
        }
        let name_end = i;
        // Blanks between the name and '='.
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        let name = &s[name_start..name_end];
        if i >= b.len() || b[i] != b'=' {
            return Err(Error::invalid_argument(format!("missing \"=\" after {} in options string", describe_name(name, name_start))));
        }
        if name.is_empty() {
            return Err(Error::invalid_argument(format!("missing option name before \"=\" at offset {name_start} in options string")));
        }
        i += 1; // '='

        // Skip blanks after the '='.
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }

        // The value. Only ASCII bytes are inspected, so building it byte by byte keeps UTF-8 intact.
        let mut value: Vec<u8> = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                if i >= b.len() {
                    return Err(Error::invalid_argument(format!(
                        "unterminated quoted string in options string (value of {})",
                        describe_name(name, name_start)
                    )));
                }
                match b[i] {
                    b'\\' => {
                        i += 1;
                        if i < b.len() {
                            value.push(b[i]);
                            i += 1;
                        }
                    }
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() {
                let c = b[i];
                if is_space(c) {
                    i += 1;
                    break;
                }
                if c == b'\\' {
                    i += 1;
                    if i < b.len() {
                        value.push(b[i]);
                        i += 1;
                    }
                } else {
                    value.push(c);
                    i += 1;
                }
            }
        }
        // Only whole UTF-8 sequences were copied (escapes copy the byte after an ASCII '\\', and a
        // multi-byte sequence is copied byte by byte in order), so this cannot fail; stay total anyway.
        let value = String::from_utf8(value).map_err(|_| Error::invalid_argument("options string is not valid UTF-8"))?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// How an option name appears in a parse error: quoted when it is a known option key, otherwise
/// by its byte offset only (it may be a fragment of a secret value).
fn describe_name(name: &str, offset: usize) -> String {
    if super::is_known_key(name) {
        format!("\"{name}\"")
    } else {
        format!("the option name at offset {offset}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn p(s: &str) -> Vec<(String, String)> {
        parse_options(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }
    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
    fn err(s: &str) -> String {
        let e = parse_options(s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        e.message().to_string()
    }

    #[test]
    fn empty_and_blank() {
        assert!(p("").is_empty());
        assert!(p("   \t\n ").is_empty());
    }

    #[test]
    fn simple_pairs() {
        assert_eq!(p("host=x profile=dev"), pairs(&[("host", "x"), ("profile", "dev")]));
        assert_eq!(p("  host=x\tprofile=dev\n"), pairs(&[("host", "x"), ("profile", "dev")]));
    }

    #[test]
    fn whitespace_around_equals() {
        assert_eq!(p("host = x  profile\t=\tdev"), pairs(&[("host", "x"), ("profile", "dev")]));
    }

    #[test]
    fn quoted_values() {
        assert_eq!(p(r"token = 'quoted value with \' and \\' b=c"), pairs(&[("token", r"quoted value with ' and \"), ("b", "c")]));
        assert_eq!(p("a='x y'"), pairs(&[("a", "x y")]));
        // Nothing needs to separate a closing quote from the next pair.
        assert_eq!(p("a='x'b=y"), pairs(&[("a", "x"), ("b", "y")]));
        // Escape of an ordinary character inside quotes gives the character.
        assert_eq!(p(r"a='\q'"), pairs(&[("a", "q")]));
    }

    #[test]
    fn escapes_outside_quotes() {
        assert_eq!(p(r"a=x\ y b=c"), pairs(&[("a", "x y"), ("b", "c")]));
        assert_eq!(p(r"a=it\'s"), pairs(&[("a", "it's")]));
        assert_eq!(p(r"a=back\\slash"), pairs(&[("a", r"back\slash")]));
        // A trailing lone backslash is dropped, as in libpq.
        assert_eq!(p(r"a=x\"), pairs(&[("a", "x")]));
        // Quotes inside an unquoted value are literal.
        assert_eq!(p("a=b'c"), pairs(&[("a", "b'c")]));
    }

    #[test]
    fn empty_values() {
        assert_eq!(p("a=''"), pairs(&[("a", "")]));
        assert_eq!(p("a= ''  b=1"), pairs(&[("a", ""), ("b", "1")]));
        assert_eq!(p("a="), pairs(&[("a", "")]));
        assert_eq!(p("a=   "), pairs(&[("a", "")]));
        // libpq skips blanks after '=', so the next "pair" becomes the value.
        assert_eq!(p("a= b=c"), pairs(&[("a", "b=c")]));
    }

    #[test]
    fn value_may_contain_equals_and_utf8() {
        assert_eq!(p("a=x=y"), pairs(&[("a", "x=y")]));
        assert_eq!(p("a='é ü' b=ß"), pairs(&[("a", "é ü"), ("b", "ß")]));
    }

    #[test]
    fn repeated_keys_are_kept_in_order() {
        assert_eq!(p("a=1 a=2"), pairs(&[("a", "1"), ("a", "2")]));
    }

    #[test]
    fn missing_equals_known_key_is_named() {
        assert_eq!(err("host"), "missing \"=\" after \"host\" in options string");
        assert_eq!(err("profile x=1"), "missing \"=\" after \"profile\" in options string");
    }

    #[test]
    fn missing_equals_unknown_name_is_not_shown() {
        // "secret" here is the second half of a value with an unquoted space.
        let m = err("password=abc secretpart");
        assert_eq!(m, "missing \"=\" after the option name at offset 13 in options string");
        assert!(!m.contains("secretpart"));
        let m = err("foo");
        assert!(m.starts_with("missing \"=\" after the option name at offset 0"), "{m}");
    }

    #[test]
    fn unterminated_quote() {
        let m = err("token='dapi-secret");
        assert!(m.starts_with("unterminated quoted string in options string"), "{m}");
        assert!(!m.contains("dapi"), "{m}");
        let m = err(r"token='abc\'");
        assert!(m.starts_with("unterminated quoted string in options string"), "{m}");
    }

    #[test]
    fn empty_name() {
        assert_eq!(err("=x"), "missing option name before \"=\" at offset 0 in options string");
        assert_eq!(err("a=1  = 2"), "missing option name before \"=\" at offset 5 in options string");
    }
}
