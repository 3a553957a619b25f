//! Structured logs on stderr: `text` (`2025-01-01T00:00:00.000Z INFO message key=value`) or
//! `json` (one object a line). Nothing logged ever holds a password.

use crate::args::{LogFormat, LogLevel};
use std::fmt::{Display, Write as _};
use std::io::Write as _;
use std::sync::OnceLock;

static CONFIG: OnceLock<(LogFormat, LogLevel)> = OnceLock::new();

/// Set the format and level (the first call wins; later calls are ignored).
pub fn init(format: LogFormat, level: LogLevel) {
    let _ = CONFIG.set((format, level));
}

fn config() -> (LogFormat, LogLevel) {
    *CONFIG.get().unwrap_or(&(LogFormat::Text, LogLevel::Info))
}

pub fn enabled(level: LogLevel) -> bool {
    level <= config().1
}

pub type Fields<'a> = &'a [(&'a str, &'a dyn Display)];

pub fn emit(level: LogLevel, msg: &str, fields: Fields<'_>) {
    let (format, max) = config();
    if level > max {
        return;
    }
    let lv = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    };
    let ts = timestamp();
    let mut line = String::with_capacity(128);
    match format {
        LogFormat::Text => {
            let _ = write!(line, "{ts} {} {msg}", lv.to_uppercase());
            for (k, v) in fields {
                let v = v.to_string();
                if v.is_empty() || v.contains([' ', '"', '=']) {
                    let _ = write!(line, " {k}={v:?}");
                } else {
                    let _ = write!(line, " {k}={v}");
                }
            }
        }
        LogFormat::Json => {
            line.push_str("{\"time\":");
            json_str(&mut line, &ts);
            line.push_str(",\"level\":");
            json_str(&mut line, lv);
            line.push_str(",\"msg\":");
            json_str(&mut line, msg);
            for (k, v) in fields {
                line.push(',');
                json_str(&mut line, k);
                line.push(':');
                json_str(&mut line, &v.to_string());
            }
            line.push('}');
        }
    }
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub fn error(msg: &str, fields: Fields<'_>) {
    emit(LogLevel::Error, msg, fields)
}
pub fn warn(msg: &str, fields: Fields<'_>) {
    emit(LogLevel::Warn, msg, fields)
}
pub fn info(msg: &str, fields: Fields<'_>) {
    emit(LogLevel::Info, msg, fields)
}
pub fn debug(msg: &str, fields: Fields<'_>) {
    if enabled(LogLevel::Debug) {
        emit(LogLevel::Debug, msg, fields)
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RFC 3339 UTC with milliseconds, from the library's one real clock.
fn timestamp() -> String {
    use lakebase_core::clock::Clock;
    lakebase_core::timefmt::fmt_wall_millis(lakebase_core::clock::SystemClock.wall_ms())
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_escapes() {
        let mut s = String::new();
        super::json_str(&mut s, "a\"b\\c\n\u{1}");
        assert_eq!(s, r#""a\"b\\c\n\u0001""#);
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = super::timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
