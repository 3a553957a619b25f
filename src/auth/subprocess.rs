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
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Run `program args...` and wait at most `timeout`. A helper still running then is killed and
/// the result is an auth error naming `what`.
pub fn run(program: &Path, args: &[String], timeout: Duration, what: &str) -> Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::auth(format!("{what}: cannot run {}: {e}", program.display())))?;
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.take(MAX_OUTPUT).read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.take(MAX_OUTPUT).read_to_end(&mut buf);
        }
        buf
    });
    // Poll in 10 ms steps: the deadline is a number of steps, so no clock is read here.
    let step = Duration::from_millis(10);
    let mut steps = (timeout.as_millis() / step.as_millis()).max(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if steps == 0 => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(Error::auth(format!("{what}: {} did not finish within {} s", program.display(), timeout.as_secs())));
            }
            Ok(None) => {
                steps -= 1;
                std::thread::sleep(step);
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(Error::auth(format!("{what}: waiting for {} failed: {e}", program.display())));
            }
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let status = status?;
    Ok(Output { code: status.code(), stdout, stderr: redact(&String::from_utf8_lossy(&stderr)) })
}

/// Text for an error message: anything that looks like a token replaced by `***` (JWTs, PATs,
/// long base64/hex runs), whitespace collapsed, at most 500 characters.
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
                out.push(c);
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
        assert_eq!(redact("run `databricks auth login --host https://x.cloud.databricks.com`"),
                   "run `databricks auth login --host https://x.cloud.databricks.com`");
        assert_eq!(redact("see /home/user/.databricks/token-cache.json"), "see /home/user/.databricks/token-cache.json");
        assert!(redact(&"x ".repeat(400)).ends_with("..."));
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
}
