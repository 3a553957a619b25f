//! `lakebase exec`: replace this process with the program, liblakebase.so first in LD_PRELOAD.

use crate::{eprint_error, Global, EXIT_USAGE};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Where to look for the library, relative to the directory of this executable's real path:
/// the build tree (`target/release/lakebase` next to `liblakebase.so`), then the installed layout
/// (`bin/lakebase`, `lib/liblakebase.so.0`).
const CANDIDATES: &[&str] = &["liblakebase.so", "../lib/liblakebase.so.0", "../lib/liblakebase.so"];

/// The absolute path of the library to preload.
pub fn find_library() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("LAKEBASE_LIBRARY").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(&p);
        return std::fs::canonicalize(&path)
            .ok()
            .filter(|c| c.is_file())
            .ok_or_else(|| format!("LAKEBASE_LIBRARY={} does not name a file", path.display()));
    }
    let exe = std::env::current_exe().and_then(std::fs::canonicalize).map_err(|e| {
        format!("cannot locate the lakebase executable to find liblakebase.so next to it: {e}; set LAKEBASE_LIBRARY")
    })?;
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

/// `--options`/`--profile` as the environment variables the preloaded library reads.
fn options_env(g: &Global) -> Result<Vec<(&'static str, String)>, String> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (k, v) in g.all_options() {
        let attr = lakebase::config::attributes()
            .iter()
            .find(|a| a.name == k || a.aliases.contains(&k.as_str()))
            .ok_or_else(|| format!("unknown option {k:?}"))?;
        let Some(var) = attr.env.first() else {
            return Err(format!(
                "option {k:?} has no environment variable, so it cannot be passed to the program; put it in a ~/.databrickscfg profile"
            ));
        };
        out.retain(|(n, _)| n != var);
        out.push((var, v));
    }
    Ok(out)
}

pub fn run(g: &Global, program: &[OsString]) -> u8 {
    let env = match options_env(g) {
        Ok(e) => e,
        Err(m) => {
            eprint_error(&m);
            return EXIT_USAGE;
        }
    };
    // Fail here, with the reason, rather than in the program's first login. No network I/O.
    if let Err(e) = lakebase::Client::builder().build(&g.all_options()) {
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
        assert_eq!(
            preload_value(lib, Some(OsStr::new("/a.so /x/liblakebase.so:/b.so"))),
            "/x/liblakebase.so:/a.so:/b.so"
        );
    }
}
