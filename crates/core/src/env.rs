//! Where environment variables come from: the process, or a fixed map (tests, explicit callers).
//!
//! The process environment has one addition: secrets that `lakebase exec --options` passes to
//! the program it starts. They do not travel in the environment (which every descendant
//! inherits, `ps e` shows and programs print), but in a sealed anonymous file (`memfd`) whose
//! descriptor the program inherits, named by `LAKEBASE_SECRETS_FD=<fd>:<dev>:<inode>`. The
//! library reads it (with `pread`, so every process that inherits it can) the first time a
//! variable is asked for; its values win over the real environment, as `--options` did.

use crate::secret::Secret;
use arc_swap::ArcSwapOption;
use std::collections::HashMap;
use std::sync::Arc;

/// Where environment variables come from. An empty value is the same as an unset one, as in the
/// SDKs. Implementations must be safe to call from any thread.
pub trait Env: Send + Sync {
    fn var(&self, name: &str) -> Option<String>;
    /// A problem with this environment that makes resolving a configuration pointless (the
    /// secrets `lakebase exec` passed are gone), as a configuration error message.
    fn problem(&self) -> Option<String> {
        None
    }
}

/// The process environment (`std::env::var_os`), plus the secrets passed by `lakebase exec`
/// (see the module documentation). Empty values read as unset; bytes that are not UTF-8 read as
/// U+FFFD, so a credential holding them is reported rather than silently ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        if let Ok(passed) = &*exec_secrets() {
            if let Some((_, v)) = passed.iter().find(|(k, _)| k == name) {
                return Some(v.expose().to_string()).filter(|v| !v.is_empty());
            }
        }
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()).filter(|v| !v.is_empty())
    }
    fn problem(&self) -> Option<String> {
        match &*exec_secrets() {
            Err(e) => Some(e.clone()),
            Ok(_) => None,
        }
    }
}

/// The variable naming the descriptor of the secrets passed by `lakebase exec`.
pub const SECRETS_FD_VAR: &str = "LAKEBASE_SECRETS_FD";
/// The `memfd` name `lakebase exec` gives the file (shown in `/proc/<pid>/fd`).
pub const SECRETS_MEMFD_NAME: &str = "lakebase-exec-secrets";
/// Largest secrets file read.
const SECRETS_MAX: u64 = 64 << 10;

type Passed = std::result::Result<Vec<(String, Secret)>, String>;

/// The secrets passed by `lakebase exec`, read once per process (lock-free: racing first readers
/// each read; one result is kept, so a `fork()` at any moment leaves nothing locked).
fn exec_secrets() -> Arc<Passed> {
    static PASSED: ArcSwapOption<Passed> = ArcSwapOption::const_empty();
    if let Some(p) = PASSED.load_full() {
        return p;
    }
    let p = Arc::new(match std::env::var(SECRETS_FD_VAR) {
        Ok(spec) if !spec.is_empty() => read_passed(&spec),
        _ => Ok(Vec::new()),
    });
    PASSED.store(Some(p.clone()));
    p
}

/// Parse `<fd>:<dev>:<inode>`, check that the descriptor is still that file, and read
/// `NAME=value\0` records from it.
fn read_passed(spec: &str) -> Passed {
    let gone = |why: &str| {
        format!(
            "{SECRETS_FD_VAR}={spec}: the secrets `lakebase exec` passed to this program are not available ({why}); \
             pass them in the environment or a ~/.databrickscfg profile instead"
        )
    };
    let mut parts = spec.split(':').map(|p| p.parse::<u64>().ok());
    let (Some(Some(fd)), Some(Some(dev)), Some(Some(ino)), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(gone("the value is not <fd>:<device>:<inode>"));
    };
    let Ok(fd) = libc::c_int::try_from(fd) else { return Err(gone("bad descriptor number")) };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(gone("the descriptor is closed; did the program close inherited descriptors?"));
    }
    if st.st_dev != dev || st.st_ino != ino || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
        return Err(gone("the descriptor now names another file; did the program close inherited descriptors?"));
    }
    if st.st_size < 0 || st.st_size as u64 > SECRETS_MAX {
        return Err(gone("the file is too large"));
    }
    let mut buf = zeroize::Zeroizing::new(vec![0u8; st.st_size as usize]);
    let mut off = 0usize;
    while off < buf.len() {
        let n = unsafe { libc::pread(fd, buf[off..].as_mut_ptr() as *mut libc::c_void, buf.len() - off, off as libc::off_t) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return Err(gone("reading the descriptor failed"));
        }
        off += n as usize;
    }
    parse_records(&buf).ok_or_else(|| gone("the file is not what `lakebase exec` writes"))
}

/// `NAME=value\0NAME=value\0...`
pub fn parse_records(buf: &[u8]) -> Option<Vec<(String, Secret)>> {
    let mut out = Vec::new();
    for rec in buf.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let text = std::str::from_utf8(rec).ok()?;
        let (k, v) = text.split_once('=')?;
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            return None;
        }
        out.push((k.to_string(), Secret::new(v)));
    }
    Some(out)
}

/// The records [`parse_records`] reads, for `lakebase exec` (in zeroizing memory).
pub fn format_records<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(1024));
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// A fixed environment, for tests and for callers that pass variables explicitly.
#[derive(Clone, Debug, Default)]
pub struct MapEnv(pub HashMap<String, String>);

impl MapEnv {
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        MapEnv(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let buf = format_records([("DATABRICKS_TOKEN", "dapi x=y"), ("DATABRICKS_CLIENT_SECRET", "")]);
        let got = parse_records(&buf).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0.as_str(), got[0].1.expose()), ("DATABRICKS_TOKEN", "dapi x=y"));
        assert!(parse_records(b"lower=x\0").is_none());
        assert!(parse_records(b"NOEQUALS\0").is_none());
    }

    #[test]
    fn a_descriptor_that_is_not_the_passed_file_is_refused() {
        let f = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        let e = read_passed(&format!("{}:1:2", f.as_raw_fd())).unwrap_err();
        assert!(e.contains("now names another file"), "{e}");
        assert!(read_passed("999999:1:2").unwrap_err().contains("closed"));
        assert!(read_passed("x").unwrap_err().contains("not <fd>"));
    }

    #[test]
    fn the_passed_file_is_read_with_pread() {
        let buf = format_records([("DATABRICKS_TOKEN", "dapi-from-fd")]);
        let fd = unsafe { libc::memfd_create(c"lakebase-test".as_ptr(), 0) };
        assert!(fd >= 0);
        assert_eq!(unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) }, buf.len() as isize);
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
        let spec = format!("{fd}:{}:{}", st.st_dev, st.st_ino);
        // Twice: the shared file offset is not used, so every process that inherits it can read it.
        for _ in 0..2 {
            let got = read_passed(&spec).unwrap();
            assert_eq!(got[0].1.expose(), "dapi-from-fd");
        }
        unsafe { libc::close(fd) };
    }
}
