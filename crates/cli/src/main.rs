//! The `lakebase` command: passwords for scripts and GUI tools, `exec` with the library preloaded,
//! `whoami`, `cache list|clear` (the shared cache), and `doctor`, which walks the whole path from configuration to a real Postgres login.
//!
//! Exit codes (every command): 0 success, 1 runtime failure (auth, API, network, a failed doctor
//! check), 2 usage or configuration error; `exec` returns 126/127 when the program cannot be run
//! (as env(1) does) and otherwise becomes the program. Errors go to stderr as `lakebase: <message>`.
//! No token or secret is ever printed, except the password on `lakebase password`'s stdout.

mod cache;
mod cli;
mod doctor;
mod exec;
mod gendocs;
mod pgwire;
mod whoami;

use cli::{Cli, Command, Global};
use lakebase_core::{Error, ErrorKind};
use std::io::Write;
use std::process::ExitCode;

/// Exit codes.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Print `lakebase: <message>` on stderr.
pub fn eprint_error(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "lakebase: {msg}");
}

/// The exit code for a library error: configuration and argument problems are usage-class (2).
pub fn exit_code_for(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Config | ErrorKind::InvalidArgument => EXIT_USAGE,
        _ => EXIT_FAILURE,
    }
}

/// Report a library error and give its exit code.
pub fn fail(e: &Error) -> u8 {
    eprint_error(e.message());
    exit_code_for(e)
}

/// Write to stdout; a closed pipe (`lakebase whoami | head -1`) is not an error worth a panic.
pub fn out(s: &str) -> u8 {
    let mut o = std::io::stdout().lock();
    match o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_FAILURE,
        Err(e) => {
            eprint_error(&format!("writing to stdout failed: {e}"));
            EXIT_FAILURE
        }
    }
}

fn password(g: &Global) -> u8 {
    let client = match g.builder().build() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    match client.password() {
        Ok(secret) => {
            let mut line = zeroize::Zeroizing::new(String::with_capacity(secret.len() + 1));
            line.push_str(secret.expose());
            line.push('\n');
            out(&line)
        }
        Err(e) => fail(&e),
    }
}

/// Wall-clock now, through the library's one real clock.
pub fn now_ms() -> i64 {
    use lakebase_core::clock::Clock;
    lakebase_core::clock::SystemClock.wall_ms()
}

/// RFC 3339 (UTC, whole seconds) for Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// "in 59 min", "in 40 s", "2 min ago".
pub fn relative(ms_from_now: i64) -> String {
    let s = ms_from_now / 1000;
    let (n, past) = (s.abs(), s < 0);
    let amount = if n < 120 {
        format!("{n} s")
    } else if n < 3 * 3600 {
        format!("{} min", n / 60)
    } else {
        format!("{} h", n / 3600)
    };
    if past {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// `lakebase proxy`: the tokio runtime lives only in this command.
fn proxy(g: &Global, mut args: lakebase_proxy::ProxyArgs) -> u8 {
    let rt = match lakebase_proxy::runtime(args.threads) {
        Ok((rt, threads)) => {
            args.threads = threads;
            rt
        }
        Err(e) => {
            eprint_error(&format!("cannot start the proxy's runtime: {e}"));
            return EXIT_FAILURE;
        }
    };
    match rt.block_on(lakebase_proxy::run(args, g.all_options(), lakebase_proxy::shutdown_signal())) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprint_error(&e.to_string());
            u8::try_from(e.exit_code()).unwrap_or(EXIT_FAILURE)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Not a clap command, so that help and completions never show it: `make dist` runs it.
    if args.get(1).is_some_and(|a| a == gendocs::COMMAND) {
        return ExitCode::from(gendocs::run(&args[2..]));
    }
    let code = match cli::parse(args) {
        Err(code) => code,
        Ok(Cli { global, command }) => match command {
            Command::Password => password(&global),
            Command::Exec(a) => exec::run(&global, &a.program),
            Command::Whoami(a) => whoami::run(&global, a.json),
            Command::Doctor => doctor::run(&global),
            Command::Proxy(a) => proxy(&global, *a),
            Command::Cache(a) => match a.action {
                cli::CacheAction::List { json } => cache::list(&global, json),
                cli::CacheAction::Clear => cache::clear(&global),
            },
        },
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(relative(3_599_000), "in 59 min");
        assert_eq!(relative(40_000), "in 40 s");
        assert_eq!(relative(-300_000), "5 min ago");
    }
}
