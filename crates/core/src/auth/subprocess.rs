//! Running a credential helper (`databricks`, `az`): no shell, stdin closed, bounded time,
//! stdout kept in zeroized memory, stderr redacted before it reaches an error message.

use crate::config::Env;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use zeroize::Zeroizing;

const MAX_OUTPUT: u64 = 1 << 20;

/// What a finished helper printed.
pub struct Output {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: Zeroizing<Vec<u8>>,
    /// Redacted and clipped; safe for messages.
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// `exit status N` / `killed by a signal`, for messages.
    pub fn status_text(&self) -> String {
        match self.code {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        }
    }
}

/// `name` as an executable: a path when it contains `/`, else the first match on `PATH` (read
/// through `env`). Directories and non-executable files do not count.
pub fn find_executable(name: &str, env: &dyn Env) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = env.var("PATH")?;
    std::env::split_paths(&path).filter(|d| !d.as_os_str().is_empty()).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// After the helper exits, how long its output pipes may stay open (a grandchild that inherited
/// them) before the rest of its process group is killed and the output read so far is used.
const EXIT_GRACE: Duration = Duration::from_millis(250);

/// Run `program args...` and wait at most `timeout` (real time), however the helper behaves.
///
/// The helper runs in a process group of its own. Its output is read in this thread (`poll(2)`,
/// no reader threads), so nothing is left waiting afterwards: a helper still running at the
/// deadline is killed with its whole process group; a helper that exits while something it
/// started (a grandchild) still holds its stdout or stderr gets `EXIT_GRACE`, then that process
/// group is killed too and the output read so far is used. The result is an auth error naming
/// `what` on time-out.
pub fn run(program: &Path, args: &[String], timeout: Duration, what: &str) -> Result<Output> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::auth(format!("{what}: cannot run {}: {e}", program.display())))?;
    let pgid = child.id() as libc::pid_t;
    let kill_group = || unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    };
    let deadline = crate::clock::real_deadline(timeout);
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    for fd in [out_pipe.as_ref().map(|p| p.as_raw_fd()), err_pipe.as_ref().map(|p| p.as_raw_fd())].into_iter().flatten() {
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    let mut stdout = Zeroizing::new(Vec::with_capacity(16 * 1024));
    let mut stderr = Zeroizing::new(Vec::new());
    let mut status: Option<std::process::ExitStatus> = None;
    let mut grace: Option<crate::clock::RealDeadline> = None;
    loop {
        if status.is_none() {
            match child.try_wait() {
                Ok(Some(st)) => {
                    status = Some(st);
                    grace = Some(crate::clock::real_deadline(EXIT_GRACE.min(deadline.left())));
                }
                Ok(None) => {}
                Err(e) => {
                    kill_group();
                    let _ = child.wait();
                    return Err(Error::auth(format!("{what}: waiting for {} failed: {e}", program.display())));
                }
            }
        }
        let open = out_pipe.is_some() || err_pipe.is_some();
        if status.is_some() && !open {
            break;
        }
        let left = grace.map_or_else(|| deadline.left(), |g| g.left());
        if left.is_zero() {
            kill_group();
            if status.is_none() {
                let _ = child.wait();
                return Err(Error::auth(format!("{what}: {} did not finish within {} s", program.display(), timeout.as_secs())));
            }
            crate::log_debug!("{what}: the helper exited but a process it started still holds its output; killed its process group");
            break;
        }
        // Wake at least every 10 ms to notice the exit (no SIGCHLD handler in a library).
        let mut fds: Vec<libc::pollfd> = [out_pipe.as_ref().map(|p| p.as_raw_fd()), err_pipe.as_ref().map(|p| p.as_raw_fd())]
            .into_iter()
            .flatten()
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        let wait_ms = left.min(Duration::from_millis(10)).as_millis().max(1) as libc::c_int;
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
        if drain(out_pipe.as_mut(), &mut stdout) {
            out_pipe = None;
        }
        if drain(err_pipe.as_mut(), &mut stderr) {
            err_pipe = None;
        }
    }
    // Our read ends close here: a grandchild that escaped the group gets EPIPE, not our wait.
    drop((out_pipe, err_pipe));
    let status = status.ok_or_else(|| Error::internal("helper status missing"))?;
    Ok(Output { code: status.code(), stdout, stderr: redact(&String::from_utf8_lossy(&stderr)) })
}

/// Read what `pipe` holds now (non-blocking) into `buf`, keeping at most [`MAX_OUTPUT`] bytes
/// (the rest is read and dropped, so the helper never blocks on a full pipe). True at EOF or on
/// an error: the pipe is done.
fn drain(pipe: Option<&mut impl Read>, buf: &mut Vec<u8>) -> bool {
    let Some(p) = pipe else { return false };
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        match p.read(&mut chunk[..]) {
            Ok(0) => return true,
            Ok(n) => {
                let room = (MAX_OUTPUT as usize).saturating_sub(buf.len()).min(n);
                if buf.len() + room > buf.capacity() {
                    // Grow by copying into a larger zeroizing buffer, wiping the old one.
                    let mut bigger = Vec::with_capacity((buf.len() + room).max(buf.capacity() * 2));
                    bigger.extend_from_slice(buf);
                    zeroize::Zeroize::zeroize(buf);
                    *buf = bigger;
                }
                buf.extend_from_slice(&chunk[..room]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// Text for an error message: anything that looks like a token replaced by `***` (JWTs, PATs,
/// long base64/hex runs), whitespace collapsed, control characters escaped, at most 500
/// characters.
pub fn redact(text: &str) -> String {
    let is_tok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=' | '~');
    let mut out = String::with_capacity(text.len().min(600));
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            let looks_secret = word.len() >= 32
                || (word.len() >= 8 && (word.starts_with("dapi") || word.starts_with("dose") || word.starts_with("eyJ")))
                || (word.matches('.').count() >= 2 && word.len() >= 20 && !word.contains("://"));
            if looks_secret && !is_plain_path(word) {
                out.push_str("***");
            } else {
                out.push_str(word);
            }
            word.clear();
        }
    };
    for c in text.chars() {
        if is_tok(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            if c.is_whitespace() {
                if !out.ends_with(' ') && !out.is_empty() {
                    out.push(' ');
                }
            } else {
                // Escape sequences from a helper's stderr never reach a terminal or a log.
                out.push_str(&crate::sanitize::escape_controls(c.encode_utf8(&mut [0; 4])));
            }
        }
    }
    flush(&mut word, &mut out);
    let out = out.trim().to_string();
    if out.chars().count() > 500 {
        let mut clipped: String = out.chars().take(500).collect();
        clipped.push_str("...");
        clipped
    } else {
        out
    }
}

/// Long words that are file paths or URLs stay readable.
fn is_plain_path(w: &str) -> bool {
    (w.starts_with('/') || w.starts_with("~/") || w.starts_with("./")) && w.matches('/').count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    #[test]
    fn redacts_tokens() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
        let s = redact(&format!("Error: token {jwt} rejected\n\n for dapi0123456789abcdef and abcdefghijklmnopqrstuvwxyz0123456789"));
        assert_eq!(s, "Error: token *** rejected for *** and ***");
        assert_eq!(
            redact("run `databricks auth login --host https://x.cloud.databricks.com`"),
            "run `databricks auth login --host https://x.cloud.databricks.com`"
        );
        assert_eq!(redact("see /home/user/.databricks/token-cache.json"), "see /home/user/.databricks/token-cache.json");
        assert!(redact(&"x ".repeat(400)).ends_with("..."));
        assert_eq!(redact("\x1b[31mError\x1b[0m: \x1b]0;t\x07x\r\nforged"), "\\x1b[31mError\\x1b[0m: \\x1b]0;t\\x07x forged");
    }

    #[test]
    fn finds_executables_on_path_from_env() {
        let env = MapEnv::from_pairs([("PATH", "/nonexistent:/bin:/usr/bin")]);
        assert!(find_executable("sh", &env).is_some());
        assert!(find_executable("definitely-not-a-program-xyz", &env).is_none());
        assert!(find_executable("/bin/sh", &MapEnv::default()).is_some());
        assert!(find_executable("/etc/passwd", &MapEnv::default()).is_none());
        assert!(find_executable("sh", &MapEnv::default()).is_none());
    }

    #[test]
    fn runs_with_timeout_and_captures() {
        let sh = PathBuf::from("/bin/sh");
        let o = run(&sh, &["-c".into(), "echo out; echo err >&2; exit 3".into()], Duration::from_secs(10), "t").unwrap();
        assert_eq!((o.code, &o.stdout[..], o.stderr.as_str()), (Some(3), &b"out\n"[..], "err"));
        let e = run(&sh, &["-c".into(), "sleep 5".into()], Duration::from_millis(100), "t").err().unwrap();
        assert!(e.message().contains("did not finish"), "{e}");
    }

    /// Whether `pid` is still running 2 s from now (SIGKILL is delivered asynchronously; a killed
    /// orphan may linger as a zombie until its new parent reaps it, which is not running).
    fn alive(pid: &str) -> bool {
        let running = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        };
        for _ in 0..200 {
            if !running() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Issue 13: a helper that exits while a grandchild still holds its stdout must not keep the
    /// caller waiting for the grandchild (Go's exec and Python's communicate() would wait for EOF).
    #[test]
    fn a_grandchild_holding_the_pipe_does_not_hold_the_caller() {
        let dir = std::env::temp_dir().join(format!("lakebase-sub-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let sh = PathBuf::from("/bin/sh");
        let script = format!("sleep 60 & echo $! > {}; echo '{{\"ok\": 1}}'", pidfile.display());
        let t0 = crate::clock::Stopwatch::start();
        let o = run(&sh, &["-c".into(), script], Duration::from_secs(30), "t").unwrap();
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(5), "waited {took:?} for the grandchild");
        assert_eq!((o.code, &o.stdout[..]), (Some(0), &b"{\"ok\": 1}\n"[..]));
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
        assert!(!alive(&pid), "the grandchild was left running");
        // A helper that hangs with a grandchild: both are gone at the deadline.
        let script = format!("sleep 60 & echo $! > {}; sleep 60", pidfile.display());
        let t0 = crate::clock::Stopwatch::start();
        let e = run(&sh, &["-c".into(), script], Duration::from_millis(300), "t").err().unwrap();
        assert!(e.message().contains("did not finish"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
        assert!(!alive(&pid), "the grandchild outlived the helper timeout");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn output_beyond_the_cap_is_drained_and_dropped() {
        let sh = PathBuf::from("/bin/sh");
        let o = run(&sh, &["-c".into(), "head -c 3000000 /dev/zero".into()], Duration::from_secs(20), "t").unwrap();
        assert_eq!((o.code, o.stdout.len()), (Some(0), MAX_OUTPUT as usize));
    }
}
