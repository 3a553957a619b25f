//! The command line, declared with clap (derive). Errors keep the command's own format —
//! `lakebase: <message>` and a pointer to the right `--help` on stderr, exit status 2 — and help
//! goes to stdout with status 0.

use clap::error::ErrorKind as ClapErrorKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;

const ABOUT: &str = "lakebase gives Postgres clients a rotating Databricks Lakebase OAuth password.";

const AFTER_HELP: &str = "\
Configuration is read like the Databricks CLI and SDKs: options, then DATABRICKS_HOST,
DATABRICKS_TOKEN or DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET, DATABRICKS_CONFIG_PROFILE,
then ~/.databrickscfg. The database is LAKEBASE_INSTANCE (Lakebase Provisioned) or
LAKEBASE_ENDPOINT=projects/<p>/branches/<b>/endpoints/<e> (Lakebase Autoscaling).

Exit status: 0 success, 1 failure (auth, API, network, a failed check), 2 usage or configuration error.

Use \"lakebase <command> --help\" for more information about a command.";

const PASSWORD_AFTER: &str = "\
Examples:
  PGPASSWORD=$(lakebase password) psql \"host=instance-....database.cloud.databricks.com dbname=databricks_postgres sslmode=require\"
  lakebase password --profile dev --options instance=my-db    # a GUI's \"password command\"

The password is valid for one hour and only for the identity's own Postgres role
(see \"lakebase whoami\"). Connect with sslmode=require or stricter.

Exit status: 0 success, 1 auth/API/network failure, 2 usage or configuration error.";

const EXEC_AFTER: &str = "\
Examples:
  lakebase exec -- psql \"host=instance-....database.cloud.databricks.com dbname=databricks_postgres\"
  lakebase --profile dev exec -- pgbench -c 4 -T 600

The library is found next to this executable (build tree), in ../lib relative to it (installed
layout: liblakebase.so.0 or liblakebase.so; Debian packages: ../lib/<multiarch>/liblakebase.so.0),
or at LAKEBASE_LIBRARY. Existing LD_PRELOAD entries
are kept. --options and --profile are passed to the program as their environment variables
(e.g. instance= becomes LAKEBASE_INSTANCE), except secrets (token=, client_secret=, password=...):
those are passed in an inherited file descriptor named by LAKEBASE_SECRETS_FD, never in the
environment. Secrets given on the command line are briefly visible in this command's arguments:
prefer a profile or the environment.

Exit status: the program's; 126 if it cannot be executed, 127 if it is not found, 2 usage or
configuration error (including a library that cannot be found).";

const PROXY_AFTER: &str = "\
Examples:
  lakebase proxy my-database                      # then: psql \"host=127.0.0.1 port=5432 dbname=databricks_postgres\"
  lakebase proxy --unix-socket ~/.lakebase projects/p/branches/production/endpoints/primary
  lakebase proxy --run-connection-test my-database

Anyone who can reach the listening port logs in as you: the default address is loopback, and a
non-loopback address needs --allow-non-loopback (and --tls-cert/--tls-key). On a shared machine
loopback TCP is open to every local user too; a unix socket in a directory only you can enter is
the private option.

Exit status: 0 after a clean shutdown (SIGTERM/SIGINT) or a passed connection test, 1 on failure,
2 usage or configuration error.";

const CACHE_AFTER: &str = "\
Processes of one user share what they learn from the workspace: the database password and its
expiry, the identity, the Postgres host and discovered databases, one entry per workspace, auth
method and credentials, and database. The directory is $XDG_RUNTIME_DIR/lakebase, else
$XDG_CACHE_HOME/lakebase or ~/.cache/lakebase (LAKEBASE_CACHE_DIR or --options cache_dir=DIR
instead). LAKEBASE_CACHE=off (or --options cache=off) turns it off. Passwords are never printed.

Exit status: 0 success, 1 the directory cannot be used, 2 usage error.";

const WHOAMI_AFTER: &str = "Exit status: 0 success, 1 auth/API/network failure, 2 usage or configuration error.";

const DOCTOR_AFTER: &str = "\
The Postgres host is PGHOST, else the database's host from the API; the port PGPORT, else 5432;
the user PGUSER, else the identity; the database PGDATABASE, else databricks_postgres.
The server certificate is checked against the system CAs, PGSSLROOTCERT and
~/.postgresql/root.crt. As the library does, the token is sent only to a server whose
certificate verifies for the host and only when the host is one of the configured database's
hosts; otherwise the login check is skipped and the reason printed (LAKEBASE_VERIFY_SERVER=0
turns verification off: the login then runs over unverified TLS, as sslmode=require does).
The TLS handshake and the login together end within 15 s.

Exit status: 0 when no check failed (warnings allowed), 1 when a check failed, 2 usage error.";

/// The whole command line.
#[derive(Parser, Debug)]
#[command(
    name = "lakebase",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    override_usage = "lakebase [global options] <command> [options]",
    disable_help_subcommand = false,
    subcommand_required = false,
    arg_required_else_help = false
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts (before or after the command name).
#[derive(Args, Debug, Default, Clone)]
pub struct Global {
    /// Settings as key=value pairs, as for lakebase_client_new() (e.g. "instance=my-db
    /// profile=dev"); they win over the environment
    #[arg(long = "options", value_name = "STRING", global = true, value_parser = parse_options_arg, action = clap::ArgAction::Append)]
    options: Vec<Vec<(String, String)>>,
    /// Profile in ~/.databrickscfg (same as --options profile=NAME)
    #[arg(short = 'p', long = "profile", value_name = "NAME", global = true, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    profile: Option<String>,
}

fn parse_options_arg(s: &str) -> Result<Vec<(String, String)>, String> {
    lakebase_core::config::parse_options(s).map_err(|e| e.message().to_string())
}

impl Global {
    /// All options, in order, `--profile` last so it wins over a `profile=` inside `--options`.
    pub fn all_options(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self.options.iter().flatten().cloned().collect();
        if let Some(p) = &self.profile {
            v.push(("profile".to_string(), p.clone()));
        }
        v
    }

    /// A client builder with these options.
    pub fn builder(&self) -> lakebase_core::Builder {
        lakebase_core::Client::builder().options(self.all_options())
    }
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print a database password (an OAuth token, valid for one hour)
    #[command(
        long_about = "Print a Lakebase database password (an OAuth token) and a newline on stdout, nothing else.",
        override_usage = "lakebase password [global options]",
        after_help = PASSWORD_AFTER
    )]
    Password,
    /// Run a program with liblakebase preloaded: libpq logins get the password
    #[command(
        long_about = "Run a program with liblakebase preloaded (LD_PRELOAD). The program's libpq logins to Lakebase\nhosts get the current password, the identity's role as default user and TLS to a verified server\n(sslmode=verify-full); other connections are untouched.",
        override_usage = "lakebase exec [global options] [--] <program> [args...]",
        after_help = EXEC_AFTER
    )]
    Exec(ExecArgs),
    /// Show the identity (Postgres role), auth method, database and token expiry
    #[command(
        long_about = "Show who the password is for: the identity (its SCIM userName is the Postgres role), the auth\nmethod, the workspace, the database (instance or endpoint) with its Postgres host, and when the\ntoken expires. Mints a token to learn its expiry; never prints it.",
        override_usage = "lakebase whoami [global options] [--json]",
        after_help = WHOAMI_AFTER
    )]
    Whoami(WhoamiArgs),
    /// Check configuration, credentials, the database and a real login; explain failures
    #[command(
        long_about = "Check the whole path to a Lakebase login and explain what is wrong: the configuration and where\neach setting came from, which auth method was picked and why the others were not, the workspace\nAPI (identity, database, password), then DNS, TCP, TLS and a real PostgreSQL login to the\ndatabase host with the minted password. One line per check: [ok], [warn] or [fail].",
        override_usage = "lakebase doctor [global options]",
        after_help = DOCTOR_AFTER
    )]
    Doctor,
    /// Serve a local Postgres endpoint for clients without libpq (JDBC, node-postgres, asyncpg, ...)
    #[command(
        long_about = "A local Postgres endpoint: clients connect to it with no password over loopback (or a unix\nsocket); for each client connection it opens a verified-TLS connection to the Lakebase database,\nanswers the server's password request with the current token, then relays bytes both ways.\nNew connections after a rotation get the new token; open connections are unaffected.",
        override_usage = "lakebase proxy [global options] [OPTIONS] [TARGET...]",
        after_help = PROXY_AFTER
    )]
    Proxy(Box<lakebase_proxy::ProxyArgs>),
    /// List or clear the shared cache of passwords, identities and hosts (this user's)
    #[command(
        long_about = "List or clear the per-user shared cache: the database passwords, identities and hosts that this\nuser's processes share, so that a new process needs no workspace request. Never prints a password.",
        override_usage = "lakebase cache [global options] list [--json] | clear",
        after_help = CACHE_AFTER
    )]
    Cache(CacheArgs),
}

/// `lakebase cache`.
#[derive(Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

/// `lakebase cache list|clear`.
#[derive(Subcommand, Debug)]
pub enum CacheAction {
    /// List the entries: workspace, auth method, database, identity, password expiry (never the password)
    List {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Remove every entry (the next process mints again)
    Clear,
}

/// `lakebase exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The program and its arguments
    #[arg(value_name = "PROGRAM", required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub program: Vec<OsString>,
}

/// `lakebase whoami`.
#[derive(Args, Debug)]
pub struct WhoamiArgs {
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

/// The subcommand named on the command line, for pointing at its help.
fn named_command(args: &[OsString]) -> Option<String> {
    let names: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
    args.iter().skip(1).filter_map(|a| a.to_str()).find(|a| names.iter().any(|n| n == a)).map(String::from)
}

/// Parse the command line. `Err(exit status)` when the parse already did everything (help,
/// version, a usage error reported on stderr).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, u8> {
    let args: Vec<OsString> = args.into_iter().collect();
    if args.len() <= 1 {
        return Err(print_help(&mut Cli::command()));
    }
    let mut cmd = Cli::command();
    match cmd.try_get_matches_from_mut(&args).and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => Ok(cli),
        Err(e) => match e.kind() {
            ClapErrorKind::DisplayHelp | ClapErrorKind::DisplayVersion => {
                let _ = e.print();
                Err(crate::EXIT_OK)
            }
            ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ClapErrorKind::MissingSubcommand => {
                Err(print_help(&mut Cli::command()))
            }
            _ => {
                let rendered = e.render().to_string();
                let first = rendered.lines().next().unwrap_or("invalid arguments");
                let msg = first.strip_prefix("error: ").unwrap_or(first);
                crate::eprint_error(msg);
                let hint = match named_command(&args) {
                    Some(c) => format!("Try \"lakebase {c} --help\" for more information."),
                    None => "Try \"lakebase --help\" for more information.".to_string(),
                };
                let _ = writeln!(std::io::stderr().lock(), "{hint}");
                Err(crate::EXIT_USAGE)
            }
        },
    }
}

fn print_help(cmd: &mut clap::Command) -> u8 {
    let help = cmd.render_help().to_string();
    crate::out(&format!("{help}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, u8> {
        parse(std::iter::once("lakebase").chain(args.iter().copied()).map(OsString::from))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parsing() {
        assert_eq!(p(&[]).err(), Some(crate::EXIT_OK));
        assert_eq!(p(&["--version"]).err(), Some(crate::EXIT_OK));
        assert_eq!(p(&["doctor", "--help"]).err(), Some(crate::EXIT_OK));
        assert_eq!(p(&["help", "exec"]).err(), Some(crate::EXIT_OK));
        for bad in [
            &["nope"][..],
            &["password", "extra"],
            &["password", "--json"],
            &["password", "--options"],
            &["password", "--options", "bad"],
            &["exec"],
            &["help", "nope"],
        ] {
            assert_eq!(p(bad).err(), Some(crate::EXIT_USAGE), "{bad:?}");
        }
        let c = p(&["-p", "dev", "whoami", "--json", "--options=instance=x"]).unwrap();
        assert!(matches!(c.command, Command::Whoami(WhoamiArgs { json: true })));
        assert_eq!(c.global.all_options(), vec![("instance".into(), "x".into()), ("profile".into(), "dev".into())]);
        let c = p(&["exec", "--profile=dev", "psql", "-h", "x", "--", "y"]).unwrap();
        match c.command {
            Command::Exec(a) => assert_eq!(a.program, ["psql", "-h", "x", "--", "y"].map(OsString::from)),
            _ => panic!("not exec"),
        }
        assert_eq!(c.global.all_options(), vec![("profile".into(), "dev".into())]);
        assert!(matches!(
            p(&["cache", "list", "--json"]).unwrap().command,
            Command::Cache(CacheArgs { action: CacheAction::List { json: true } })
        ));
        assert!(matches!(p(&["cache", "clear"]).unwrap().command, Command::Cache(CacheArgs { action: CacheAction::Clear })));
        assert_eq!(p(&["cache"]).err(), Some(crate::EXIT_OK), "help, as for a bare lakebase");
        assert_eq!(p(&["cache", "nope"]).err(), Some(crate::EXIT_USAGE));
        match p(&["exec", "--", "--weird", "a"]).unwrap().command {
            Command::Exec(a) => assert_eq!(a.program.len(), 2),
            _ => panic!("not exec"),
        }
    }
}
