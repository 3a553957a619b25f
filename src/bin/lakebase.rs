//! The `lakebase` command: passwords for scripts and GUI tools, `exec` with the library preloaded,
//! `whoami`, and `doctor`, which walks the whole path from configuration to a real Postgres login.
//!
//! Exit codes (every command): 0 success, 1 runtime failure (auth, API, network, a failed doctor
//! check), 2 usage or configuration error; `exec` returns 126/127 when the program cannot be run
//! (as env(1) does) and otherwise becomes the program. Errors go to stderr as `lakebase: <message>`.
//! No token or secret is ever printed, except the password on `lakebase password`'s stdout.

#[path = "lakebase/doctor.rs"]
mod doctor;
#[path = "lakebase/exec.rs"]
mod exec;
#[path = "lakebase/pgwire.rs"]
mod pgwire;
#[path = "lakebase/whoami.rs"]
mod whoami;

use lakebase::{Error, ErrorKind};
use std::io::Write;
use std::process::ExitCode;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Exit codes.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

const MAIN_HELP: &str = "\
lakebase gives Postgres clients a rotating Databricks Lakebase OAuth password.

Usage:
  lakebase [global options] <command> [options]

Commands:
  password    Print a database password (an OAuth token, valid for one hour)
  exec        Run a program with liblakebase preloaded: libpq logins get the password
  whoami      Show the identity (Postgres role), auth method, database and token expiry
  doctor      Check configuration, credentials, the database and a real login; explain failures
  help        Help about a command

Global options:
      --options STRING   settings as key=value pairs, as for lakebase_client_new()
                         (e.g. \"instance=my-db profile=dev\"); they win over the environment
  -p, --profile NAME     profile in ~/.databrickscfg (same as --options profile=NAME)
  -h, --help             show help
  -V, --version          show the version

Configuration is read like the Databricks CLI and SDKs: options, then DATABRICKS_HOST,
DATABRICKS_TOKEN or DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET, DATABRICKS_CONFIG_PROFILE,
then ~/.databrickscfg. The database is LAKEBASE_INSTANCE (Lakebase Provisioned) or
LAKEBASE_ENDPOINT=projects/<p>/branches/<b>/endpoints/<e> (Lakebase Autoscaling).

Exit status: 0 success, 1 failure (auth, API, network, a failed check), 2 usage or configuration error.

Use \"lakebase <command> --help\" for more information about a command.
";

const PASSWORD_HELP: &str = "\
Print a Lakebase database password (an OAuth token) and a newline on stdout, nothing else.

Usage:
  lakebase password [global options]

Examples:
  PGPASSWORD=$(lakebase password) psql \"host=instance-....database.cloud.databricks.com dbname=databricks_postgres sslmode=require\"
  lakebase password --profile dev --options instance=my-db    # a GUI's \"password command\"

The password is valid for one hour and only for the identity's own Postgres role
(see \"lakebase whoami\"). Connect with sslmode=require or stricter.

Exit status: 0 success, 1 auth/API/network failure, 2 usage or configuration error.
";

const EXEC_HELP: &str = "\
Run a program with liblakebase preloaded (LD_PRELOAD). The program's libpq logins to Lakebase
hosts get the current password, the identity's role as default user and sslmode=require; other
connections are untouched.

Usage:
  lakebase exec [global options] [--] <program> [args...]

Examples:
  lakebase exec -- psql \"host=instance-....database.cloud.databricks.com dbname=databricks_postgres\"
  lakebase --profile dev exec -- pgbench -c 4 -T 600

The library is found next to this executable (build tree), in ../lib relative to it (installed
layout: liblakebase.so.0 or liblakebase.so), or at LAKEBASE_LIBRARY. Existing LD_PRELOAD entries
are kept. --options and --profile are passed to the program as their environment variables
(e.g. instance= becomes LAKEBASE_INSTANCE).

Exit status: the program's; 126 if it cannot be executed, 127 if it is not found, 2 usage or
configuration error (including a library that cannot be found).
";

const WHOAMI_HELP: &str = "\
Show who the password is for: the identity (its SCIM userName is the Postgres role), the auth
method, the workspace, the database (instance or endpoint) with its Postgres host, and when the
token expires. Mints a token to learn its expiry; never prints it.

Usage:
  lakebase whoami [global options] [--json]

Options:
      --json   machine-readable output
  -h, --help   show help

Exit status: 0 success, 1 auth/API/network failure, 2 usage or configuration error.
";

const DOCTOR_HELP: &str = "\
Check the whole path to a Lakebase login and explain what is wrong: the configuration and where
each setting came from, which auth method was picked and why the others were not, the workspace
API (identity, database, password), then DNS, TCP, TLS and a real PostgreSQL login to the
database host with the minted password. One line per check: [ok], [warn] or [fail].

Usage:
  lakebase doctor [global options]

The Postgres host is PGHOST, else the database's host from the API; the port PGPORT, else 5432;
the user PGUSER, else the identity; the database PGDATABASE, else databricks_postgres.
The server certificate is checked against the system CAs, PGSSLROOTCERT and
~/.postgresql/root.crt; if that fails the login check still runs without verification (as
sslmode=require does) and says so.

Exit status: 0 when no check failed (warnings allowed), 1 when a check failed, 2 usage error.
";

/// A usage error: the message and the command whose help to point at.
pub struct Usage {
    msg: String,
    cmd: Option<&'static str>,
}

impl Usage {
    fn new(msg: impl Into<String>, cmd: Option<&'static str>) -> Self {
        Usage { msg: msg.into(), cmd }
    }
}

/// Options every command accepts.
#[derive(Default)]
pub struct Global {
    /// Parsed `key=value` pairs, in order (`--options` strings first, then `--profile`).
    pub options: Vec<(String, String)>,
    profile: Option<String>,
}

impl Global {
    /// All options, `--profile` last so it wins over a `profile=` inside `--options`.
    pub fn all_options(&self) -> Vec<(String, String)> {
        let mut v = self.options.clone();
        if let Some(p) = &self.profile {
            v.push(("profile".to_string(), p.clone()));
        }
        v
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Command {
    Password,
    Exec,
    Whoami,
    Doctor,
}

impl Command {
    fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "password" => Command::Password,
            "exec" => Command::Exec,
            "whoami" => Command::Whoami,
            "doctor" => Command::Doctor,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Command::Password => "password",
            Command::Exec => "exec",
            Command::Whoami => "whoami",
            Command::Doctor => "doctor",
        }
    }
    fn help(self) -> &'static str {
        match self {
            Command::Password => PASSWORD_HELP,
            Command::Exec => EXEC_HELP,
            Command::Whoami => WHOAMI_HELP,
            Command::Doctor => DOCTOR_HELP,
        }
    }
}

/// What the command line asks for.
enum Parsed {
    Help(Option<Command>),
    Version,
    Run {
        cmd: Command,
        global: Global,
        json: bool,
        program: Vec<std::ffi::OsString>,
    },
}

/// `--name value` / `--name=value` (and the short form `-p value` / `-pvalue` where given).
fn flag_value(
    args: &[std::ffi::OsString],
    i: &mut usize,
    arg: &str,
    long: &str,
    short: Option<&str>,
    cmd: Option<&'static str>,
) -> Result<Option<String>, Usage> {
    let eq = format!("{long}=");
    let inline = if let Some(v) = arg.strip_prefix(&eq) {
        Some(v.to_string())
    } else if let Some(v) = short.and_then(|s| arg.strip_prefix(s)).filter(|v| !v.is_empty()) {
        Some(v.to_string())
    } else if arg == long || short == Some(arg) {
        None
    } else {
        return Ok(None);
    };
    if let Some(v) = inline {
        return Ok(Some(v));
    }
    *i += 1;
    match args.get(*i) {
        Some(v) => match v.to_str() {
            Some(s) => Ok(Some(s.to_string())),
            None => Err(Usage::new(format!("the value of {long} is not valid UTF-8"), cmd)),
        },
        None => Err(Usage::new(format!("flag needs an argument: {long}"), cmd)),
    }
}

/// Try the global flags on `arg`; `Ok(true)` if consumed.
fn global_flag(
    args: &[std::ffi::OsString],
    i: &mut usize,
    arg: &str,
    g: &mut Global,
    cmd: Option<&'static str>,
) -> Result<bool, Usage> {
    if let Some(v) = flag_value(args, i, arg, "--options", None, cmd)? {
        let parsed = lakebase::config::parse_options(&v)
            .map_err(|e| Usage::new(format!("invalid --options: {}", e.message()), cmd))?;
        g.options.extend(parsed);
        return Ok(true);
    }
    if let Some(v) = flag_value(args, i, arg, "--profile", Some("-p"), cmd)? {
        if v.is_empty() {
            return Err(Usage::new("--profile needs a profile name", cmd));
        }
        g.profile = Some(v);
        return Ok(true);
    }
    Ok(false)
}

fn parse_args(args: &[std::ffi::OsString]) -> Result<Parsed, Usage> {
    let mut g = Global::default();
    let mut cmd: Option<Command> = None;
    let mut json = false;
    let mut help = false;
    let mut program = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let cname = cmd.map(Command::name);
        let Some(arg) = args[i].to_str() else {
            if cmd == Some(Command::Exec) {
                program.extend(args[i..].iter().cloned());
                break;
            }
            return Err(Usage::new(format!("invalid argument {:?} (not UTF-8)", args[i]), cname));
        };
        if arg == "--" {
            if cmd == Some(Command::Exec) {
                program.extend(args[i + 1..].iter().cloned());
                break;
            }
            if i + 1 < args.len() {
                return Err(Usage::new(
                    format!("unexpected argument {:?}", args[i + 1].to_string_lossy()),
                    cname,
                ));
            }
            i += 1;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            help = true;
        } else if (arg == "-V" || arg == "--version") && cmd.is_none() {
            return Ok(Parsed::Version);
        } else if global_flag(args, &mut i, arg, &mut g, cname)? {
        } else if arg == "--json" && cmd == Some(Command::Whoami) {
            json = true;
        } else if arg.starts_with('-') && arg.len() > 1 {
            return Err(Usage::new(format!("unknown flag: {arg}"), cname));
        } else if let Some(c) = cmd {
            if c == Command::Exec {
                program.extend(args[i..].iter().cloned());
                break;
            }
            return Err(Usage::new(format!("unexpected argument {arg:?}"), cname));
        } else if arg == "help" {
            let topic = args.get(i + 1).and_then(|a| a.to_str());
            return match topic {
                None => Ok(Parsed::Help(None)),
                Some(t) => match Command::parse(t) {
                    Some(c) => Ok(Parsed::Help(Some(c))),
                    None => Err(Usage::new(format!("unknown help topic {t:?}"), None)),
                },
            };
        } else {
            match Command::parse(arg) {
                Some(c) => cmd = Some(c),
                None => return Err(Usage::new(format!("unknown command {arg:?} for \"lakebase\""), None)),
            }
        }
        i += 1;
    }
    if help {
        return Ok(Parsed::Help(cmd));
    }
    let Some(cmd) = cmd else { return Ok(Parsed::Help(None)) };
    if cmd == Command::Exec && program.is_empty() {
        return Err(Usage::new(
            "exec needs a program to run: lakebase exec -- <program> [args...]",
            Some("exec"),
        ));
    }
    Ok(Parsed::Run {
        cmd,
        global: g,
        json,
        program,
    })
}

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
    let client = match lakebase::Client::builder().build(&g.all_options()) {
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
    use lakebase::clock::Clock;
    lakebase::clock::SystemClock.wall_ms()
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

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = match parse_args(&args) {
        Err(u) => {
            eprint_error(&u.msg);
            let hint = match u.cmd {
                Some(c) => format!("Try \"lakebase {c} --help\" for more information."),
                None => "Try \"lakebase --help\" for more information.".to_string(),
            };
            let _ = writeln!(std::io::stderr().lock(), "{hint}");
            EXIT_USAGE
        }
        Ok(Parsed::Version) => out(&format!("lakebase {VERSION}\n")),
        Ok(Parsed::Help(None)) => out(MAIN_HELP),
        Ok(Parsed::Help(Some(c))) => out(c.help()),
        Ok(Parsed::Run {
            cmd,
            global,
            json,
            program,
        }) => match cmd {
            Command::Password => password(&global),
            Command::Exec => exec::run(&global, &program),
            Command::Whoami => whoami::run(&global, json),
            Command::Doctor => doctor::run(&global),
        },
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, Usage> {
        let v: Vec<std::ffi::OsString> = std::iter::once("lakebase")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect();
        parse_args(&v)
    }

    #[test]
    fn parsing() {
        assert!(matches!(p(&[]), Ok(Parsed::Help(None))));
        assert!(matches!(p(&["--version"]), Ok(Parsed::Version)));
        assert!(matches!(
            p(&["doctor", "--help"]),
            Ok(Parsed::Help(Some(Command::Doctor)))
        ));
        assert!(matches!(p(&["help", "exec"]), Ok(Parsed::Help(Some(Command::Exec)))));
        assert!(p(&["nope"]).is_err());
        assert!(p(&["password", "extra"]).is_err());
        assert!(p(&["password", "--json"]).is_err());
        assert!(p(&["password", "--options"]).is_err());
        assert!(p(&["password", "--options", "bad"]).is_err());
        assert!(p(&["exec"]).is_err());
        match p(&["-p", "dev", "whoami", "--json", "--options=instance=x"]) {
            Ok(Parsed::Run {
                cmd: Command::Whoami,
                global,
                json: true,
                ..
            }) => {
                assert_eq!(
                    global.all_options(),
                    vec![("instance".into(), "x".into()), ("profile".into(), "dev".into())]
                );
            }
            _ => panic!(),
        }
        match p(&["exec", "--profile=dev", "psql", "-h", "x", "--", "y"]) {
            Ok(Parsed::Run {
                cmd: Command::Exec,
                program,
                global,
                ..
            }) => {
                assert_eq!(program, ["psql", "-h", "x", "--", "y"].map(std::ffi::OsString::from));
                assert_eq!(global.profile.as_deref(), Some("dev"));
            }
            _ => panic!(),
        }
        match p(&["exec", "--", "--weird", "a"]) {
            Ok(Parsed::Run { program, .. }) => assert_eq!(program.len(), 2),
            _ => panic!(),
        }
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative(3_599_000), "in 59 min");
        assert_eq!(relative(40_000), "in 40 s");
        assert_eq!(relative(-300_000), "5 min ago");
    }
}
