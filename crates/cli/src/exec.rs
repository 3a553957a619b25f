//! `lakebase exec`: replace this process with the program, liblakebase.so first in LD_PRELOAD.
//!
//! `--options` and `--profile` reach the program's copy of the library as the environment
//! variables it reads, except secrets (`token`, `client_secret`, `password`, ...): those would be
//! inherited by every descendant, shown by `ps e` and printed by programs that dump their
//! environment. They go into a sealed anonymous file (`memfd`, or an unlinked 0600 file where
//! memfd is unavailable) that the program inherits as a descriptor, named by
//! `LAKEBASE_SECRETS_FD=<fd>:<dev>:<inode>`; the library reads it with `pread` (see
//! `lakebase_core::config::ProcessEnv`). Still visible: the non-secret options in the
//! environment, and the descriptor itself to whoever may read the program's memory
//! (`/proc/<pid>/fd` is as protected as `/proc/<pid>/environ`: same user or root); descendants
//! inherit it unless the program closes it.

use crate::cli::Global;
use crate::{eprint_error, EXIT_USAGE};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Where to look for the library, relative to the directory of this executable's real path:
/// the build tree (`target/release/lakebase` next to `liblakebase.so`), then the installed
/// layouts: `make install` (`bin/lakebase`, `lib/liblakebase.so.0`), the Debian packages
/// (`/usr/bin/lakebase`, `/usr/lib/<multiarch>/liblakebase.so.0`) and lib64 distributions.
const CANDIDATES: &[&str] =
    &["liblakebase.so", "../lib/liblakebase.so.0", "../lib/liblakebase.so", DEBIAN_MULTIARCH, "../lib64/liblakebase.so.0"];

/// The library in Debian's multiarch directory for this build's target.
#[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
const DEBIAN_MULTIARCH: &str = "../lib/x86_64-linux-gnu/liblakebase.so.0";
#[cfg(all(target_arch = "aarch64", target_env = "gnu"))]
const DEBIAN_MULTIARCH: &str = "../lib/aarch64-linux-gnu/liblakebase.so.0";
#[cfg(not(any(all(target_arch = "x86_64", target_env = "gnu"), all(target_arch = "aarch64", target_env = "gnu"))))]
const DEBIAN_MULTIARCH: &str = "../lib/liblakebase.so.0";

/// The absolute path of the library to preload.
pub fn find_library() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("LAKEBASE_LIBRARY").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(&p);
        return std::fs::canonicalize(&path)
            .ok()
            .filter(|c| c.is_file())
            .ok_or_else(|| format!("LAKEBASE_LIBRARY={} does not name a file", path.display()));
    }
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| format!("cannot locate the lakebase executable to find liblakebase.so next to it: {e}; set LAKEBASE_LIBRARY"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let mut tried = Vec::new();
    for c in CANDIDATES {
        let p = dir.join(c);
        if let Ok(real) = std::fs::canonicalize(&p) {
            if real.is_file() {
                // Keep the name we found (liblakebase.so.0 rather than the versioned file it
                // links to) but make it absolute and free of "..".
                let parent = p.parent().and_then(|d| std::fs::canonicalize(d).ok());
                return Ok(match (parent, p.file_name()) {
                    (Some(d), Some(f)) => d.join(f),
                    _ => real,
                });
            }
        }
        tried.push(p.display().to_string());
    }
    Err(format!(
        "cannot find liblakebase.so (looked for {}); build it with \"cargo build --release\", install it with \"make install\", or set LAKEBASE_LIBRARY=/path/to/liblakebase.so",
        tried.join(", ")
    ))
}

/// `lib` followed by the existing LD_PRELOAD entries (minus `lib` itself).
pub fn preload_value(lib: &Path, existing: Option<&OsStr>) -> OsString {
    let mut v = OsString::from(lib.as_os_str());
    if let Some(old) = existing {
        for part in old.as_bytes().split(|b| *b == b':' || *b == b' ') {
            if part.is_empty() || part == lib.as_os_str().as_bytes() {
                continue;
            }
            v.push(":");
            v.push(OsStr::from_bytes(part));
        }
    }
    v
}

/// `--options`/`--profile` as the environment variables the preloaded library reads:
/// `(plain, secret)`, the secrets to be passed by [`secrets_fd`] rather than in the environment.
type EnvPairs = Vec<(&'static str, String)>;
fn options_env(g: &Global) -> Result<(EnvPairs, EnvPairs), String> {
    let mut out: Vec<(&'static str, String, bool)> = Vec::new();
    for (k, v) in g.all_options() {
        let attr = lakebase_core::config::attributes()
            .iter()
            .find(|a| a.name == k || a.aliases.contains(&k.as_str()))
            .ok_or_else(|| format!("unknown option {k:?}"))?;
        let Some(var) = attr.env.first() else {
            return Err(format!(
                "option {k:?} has no environment variable, so it cannot be passed to the program; put it in a ~/.databrickscfg profile"
            ));
        };
        out.retain(|(n, _, _)| n != var);
        out.push((var, v, attr.sensitive));
    }
    let (secret, plain): (Vec<_>, Vec<_>) = out.into_iter().partition(|(_, _, s)| *s);
    let strip = |v: Vec<(&'static str, String, bool)>| v.into_iter().map(|(n, v, _)| (n, v)).collect();
    Ok((strip(plain), strip(secret)))
}

/// `secrets` plus those an outer `lakebase exec` passed to this process and `secrets` does not
/// replace.
fn with_inherited_secrets(mut secrets: EnvPairs) -> EnvPairs {
    use lakebase_core::config::Env;
    if std::env::var_os(lakebase_core::config::SECRETS_FD_VAR).is_none() {
        return secrets;
    }
    for attr in lakebase_core::config::attributes().iter().filter(|a| a.sensitive) {
        for var in attr.env {
            if secrets.iter().any(|(n, _)| n == var) {
                continue;
            }
            let passed = lakebase_core::config::ProcessEnv.var(var);
            if passed.is_some() && passed != std::env::var(var).ok() {
                secrets.push((var, passed.unwrap_or_default()));
            }
        }
    }
    secrets
}

/// A sealed anonymous file holding `secrets`, open without close-on-exec so the program inherits
/// it; the value of `LAKEBASE_SECRETS_FD` naming it. A memfd where the kernel has them, else an
/// unlinked 0600 file in the temporary directory (never linked into it: `O_TMPFILE`).
fn secrets_fd(secrets: &[(&'static str, String)]) -> Result<String, String> {
    use std::os::unix::ffi::OsStrExt as _;
    let data = lakebase_core::config::format_records(secrets.iter().map(|(k, v)| (*k, v.as_str())));
    let name = std::ffi::CString::new(lakebase_core::config::SECRETS_MEMFD_NAME).unwrap_or_default();
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_ALLOW_SEALING) };
    let memfd = fd >= 0;
    if !memfd {
        let dir = std::env::temp_dir();
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| "bad temporary directory".to_string())?;
        fd = unsafe { libc::open(c.as_ptr(), libc::O_TMPFILE | libc::O_RDWR | libc::O_EXCL, 0o600) };
        if fd < 0 {
            return Err(format!(
                "cannot create a file to pass the secrets of --options to the program ({}); pass them in the environment or a ~/.databrickscfg profile instead",
                std::io::Error::last_os_error()
            ));
        }
    }
    let mut off = 0;
    while off < data.len() {
        let n = unsafe { libc::write(fd, data[off..].as_ptr() as *const libc::c_void, data.len() - off) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            let e = std::io::Error::last_os_error();
            unsafe { libc::close(fd) };
            return Err(format!("cannot write the secrets of --options for the program: {e}"));
        }
        off += n as usize;
    }
    if memfd {
        // Nobody who inherits it can change it.
        unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE) };
    } else {
        unsafe { libc::fchmod(fd, 0o400) };
    }
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(format!("cannot pass the secrets of --options: {}", std::io::Error::last_os_error()));
    }
    // Not closed: exec hands it to the program (it is not close-on-exec).
    Ok(format!("{fd}:{}:{}", st.st_dev, st.st_ino))
}

pub fn run(g: &Global, program: &[OsString]) -> u8 {
    let (env, secrets) = match options_env(g) {
        Ok(e) => e,
        Err(m) => {
            eprint_error(&m);
            return EXIT_USAGE;
        }
    };
    // Fail here, with the reason, rather than in the program's first login. No network I/O.
    if let Err(e) = g.builder().build() {
        return crate::fail(&e);
    }
    let lib = match find_library() {
        Ok(l) => l,
        Err(m) => {
            eprint_error(&m);
            return EXIT_USAGE;
        }
    };
    if lib.as_os_str().as_bytes().iter().any(|b| *b == b':' || *b == b' ') {
        eprint_error(&format!(
            "the library path {} contains a space or a colon, which LD_PRELOAD cannot express; copy or link liblakebase.so elsewhere and set LAKEBASE_LIBRARY",
            lib.display()
        ));
        return EXIT_USAGE;
    }
    let preload = preload_value(&lib, std::env::var_os("LD_PRELOAD").as_deref());
    let mut cmd = std::process::Command::new(&program[0]);
    cmd.args(&program[1..]).env("LD_PRELOAD", preload);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Without secrets of our own, an inherited descriptor from an outer `lakebase exec` stays
    // valid and keeps its variable; with some, the new file also carries the outer ones.
    if !secrets.is_empty() {
        let secrets = with_inherited_secrets(secrets);
        match secrets_fd(&secrets) {
            Ok(spec) => {
                cmd.env(lakebase_core::config::SECRETS_FD_VAR, spec);
            }
            Err(m) => {
                eprint_error(&m);
                return EXIT_USAGE;
            }
        }
    }
    // Only returns on failure.
    let err = cmd.exec();
    let name = program[0].to_string_lossy();
    match err.kind() {
        std::io::ErrorKind::NotFound => {
            eprint_error(&format!("{name}: command not found"));
            127
        }
        _ => {
            eprint_error(&format!("cannot run {name}: {err}"));
            126
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_keeps_others_once() {
        let lib = Path::new("/x/liblakebase.so");
        assert_eq!(preload_value(lib, None), "/x/liblakebase.so");
        assert_eq!(preload_value(lib, Some(OsStr::new("/a.so /x/liblakebase.so:/b.so"))), "/x/liblakebase.so:/a.so:/b.so");
    }
}
