//! Secret strings: zeroized on drop, redacted in `Debug`/`Display`, compared in constant time.

use std::fmt;
use zeroize::Zeroizing;

/// A secret string (token, client secret, password). Its memory is wiped on drop and it never
/// prints: `{:?}` and `{}` both give `***`. Use [`Secret::expose`] only at the point of use.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Take ownership of a secret string.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Zeroizing::new(s.into()))
    }
    /// The secret itself. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Its length in bytes (not secret: tokens of one kind have similar lengths).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Constant time in the contents (the length may leak): no early exit at the first difference.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }
}
impl Eq for Secret {}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s)
    }
}
impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn never_prints() {
        let s = Secret::new("dapi-very-secret");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "dapi-very-secret");
        assert_eq!(s, Secret::new("dapi-very-secret"));
        assert_ne!(s, Secret::new("dapi-very-secreT"));
        assert_ne!(s, Secret::new("dapi"));
    }
}
