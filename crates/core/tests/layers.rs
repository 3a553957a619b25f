//! The layer rule of lakebase-core (see the crate documentation): a module only uses modules of
//! its own layer or below. This test reads the sources and fails on an upward `crate::` path,
//! naming the file, the line and both layers, and on a module missing from the table (a new
//! module must be placed in a layer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bottom to top. Modules of one layer may use each other.
const LAYERS: &[&[&str]] = &[
    &["secret", "clock", "timefmt", "env", "fs", "sanitize"],
    &["log"],
    &["fork", "sync", "deadline", "connect"],
    &["error"],
    &["cache"],
    &["http"],
    &["config"],
    &["auth"],
    &["api"],
    &["target"],
    &["refresher"],
    &["client"],
];

fn layer_of(module: &str) -> Option<usize> {
    // The crate-root logging macros (`crate::log_debug!` ...) belong to `log`.
    let module = if module.starts_with("log_") || module == "lb_log" { "log" } else { module };
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments (line comments, doc comments, block comments) and string
/// literals, so paths mentioned in prose do not count.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

#[test]
fn modules_only_use_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut unplaced = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue; // the crate root re-exports the public API from every layer
        }
        let Some(mine) = layer_of(&module) else {
            unplaced.insert(module, rel.display().to_string());
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in code_only(&text).lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let used: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                match layer_of(&used) {
                    Some(theirs) if theirs > mine => violations.push(format!(
                        "{}:{}: `{module}` (layer {mine}) uses `crate::{used}` (layer {theirs})",
                        rel.display(),
                        n + 1
                    )),
                    Some(_) => {}
                    None => {
                        unplaced.insert(used.clone(), format!("{}:{}", rel.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(unplaced.is_empty(), "modules missing from LAYERS (place them in a layer): {unplaced:?}");
    assert!(violations.is_empty(), "upward dependencies:\n{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_an_upward_use() {
    // The parser the rule depends on: a path in code counts, one in a comment or string does not.
    let code = code_only("use crate::client::Client; // crate::api\nlet s = \"crate::auth\"; /* crate::target */");
    assert!(code.contains("crate::client"));
    assert!(!code.contains("crate::api") && !code.contains("crate::auth") && !code.contains("crate::target"));
    assert!(layer_of("client") > layer_of("cache"));
    assert_eq!(layer_of("log_debug"), layer_of("log"));
}
