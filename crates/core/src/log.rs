//! Opt-in logging to stderr, controlled by `LAKEBASE_LOG=error|warn|info|debug` (read once).
//! Messages are built from redacted data only; never pass a [`crate::secret::Secret`]'s contents.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

const UNSET: u8 = u8::MAX;
static LEVEL: AtomicU8 = AtomicU8::new(UNSET);

pub fn parse_level(s: &str) -> Level {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" => Level::Error,
        "warn" | "warning" => Level::Warn,
        "info" => Level::Info,
        "debug" | "trace" => Level::Debug,
        _ => Level::Off,
    }
}

pub fn level() -> Level {
    let v = LEVEL.load(Ordering::Relaxed);
    let v = if v == UNSET {
        let l = std::env::var("LAKEBASE_LOG").map(|s| parse_level(&s)).unwrap_or(Level::Off) as u8;
        LEVEL.store(l, Ordering::Relaxed);
        l
    } else {
        v
    };
    match v {
        1 => Level::Error,
        2 => Level::Warn,
        3 => Level::Info,
        4 => Level::Debug,
        _ => Level::Off,
    }
}

pub fn enabled(l: Level) -> bool {
    l != Level::Off && l <= level()
}

pub fn write(l: Level, args: std::fmt::Arguments<'_>) {
    let tag = match l {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Off => return,
    };
    let line = format!("liblakebase {tag}: {args}\n");
    // One write(2) straight to fd 2, not through std's stderr lock: a lock held by another
    // thread at fork() would deadlock a child that logs.
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        let n = unsafe { libc::write(2, rest.as_ptr() as *const libc::c_void, rest.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        rest = &rest[n as usize..];
    }
}

#[macro_export]
macro_rules! lb_log {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::log::enabled($lvl) { $crate::log::write($lvl, format_args!($($arg)*)) }
    };
}
#[macro_export]
macro_rules! log_error { ($($arg:tt)*) => { $crate::lb_log!($crate::log::Level::Error, $($arg)*) }; }
#[macro_export]
macro_rules! log_warn { ($($arg:tt)*) => { $crate::lb_log!($crate::log::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! log_info { ($($arg:tt)*) => { $crate::lb_log!($crate::log::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! log_debug { ($($arg:tt)*) => { $crate::lb_log!($crate::log::Level::Debug, $($arg)*) }; }
