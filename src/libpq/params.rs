//! What a libpq call asks for, computed the way libpq computes it: conninfo strings and URIs are
//! parsed by the real libpq's `PQconninfoParse`; keyword arrays are applied in order, expanding the
//! first `dbname` when `expand_dbname` is set; defaults (PGHOST, PGUSER, PGPASSWORD, PGSSLMODE,
//! PGSERVICE, the OS user...) come from the real `PQconndefaults`. Only two things libpq does not
//! export are done here: reading a service named in the conninfo (`pg_service.conf`) and looking
//! for a password-file entry.

use super::resolve::{cstr_opt, Libpq};
use super::sys::PQconninfoOption;
use libc::c_char;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

pub type Options = BTreeMap<String, String>;

/// The arguments of a hooked call, as keyword/value arrays (how every variant is forwarded).
pub struct Call {
    pub keys: Vec<*const c_char>,
    pub vals: Vec<*const c_char>,
    pub expand_dbname: bool,
}

impl Call {
    /// `PQconnectdb(conninfo)` ≡ `PQconnectdbParams({"dbname"}, {conninfo}, 1)`.
    pub fn conninfo(conninfo: *const c_char) -> Call {
        Call { keys: vec![c"dbname".as_ptr()], vals: vec![conninfo], expand_dbname: true }
    }

    /// `PQconnectdbParams(keywords, values, expand_dbname)`.
    ///
    /// # Safety
    /// `keys`/`vals` must be NULL-terminated arrays as libpq requires.
    pub unsafe fn params(keys: *const *const c_char, vals: *const *const c_char, expand: bool) -> Call {
        let mut c = Call { keys: vec![], vals: vec![], expand_dbname: expand };
        if keys.is_null() || vals.is_null() {
            return c;
        }
        let mut i = 0;
        while i < 1000 {
            let k = *keys.add(i);
            if k.is_null() {
                break;
            }
            c.keys.push(k);
            c.vals.push(*vals.add(i));
            i += 1;
        }
        c
    }

    /// `PQsetdbLogin(host, port, options, tty, dbName, login, pwd)`: dbName may be a conninfo
    /// string; the other non-empty arguments override it.
    pub fn setdb_login(args: [*const c_char; 7]) -> Call {
        let [host, port, options, _tty, db, user, pwd] = args;
        Call {
            keys: vec![c"dbname".as_ptr(), c"host".as_ptr(), c"port".as_ptr(), c"options".as_ptr(), c"user".as_ptr(), c"password".as_ptr()],
            vals: vec![db, host, port, options, user, pwd],
            expand_dbname: true,
        }
    }

    /// NULL-terminated copies of the arrays with `extra` appended (later keywords win in libpq).
    pub fn with_overrides(&self, extra: &[(*const c_char, *const c_char)]) -> (Vec<*const c_char>, Vec<*const c_char>) {
        let mut k = self.keys.clone();
        let mut v = self.vals.clone();
        for (ek, ev) in extra {
            k.push(*ek);
            v.push(*ev);
        }
        k.push(std::ptr::null());
        v.push(std::ptr::null());
        (k, v)
    }
}

fn is_connection_string(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://") || s.contains('=')
}

unsafe fn options_of(list: *mut PQconninfoOption, lib: &Libpq) -> Options {
    let mut out = Options::new();
    if list.is_null() {
        return out;
    }
    let mut p = list;
    while !(*p).keyword.is_null() {
        if let (Some(k), Some(v)) = (cstr_opt((*p).keyword), cstr_opt((*p).val)) {
            out.insert(k, v);
        }
        p = p.add(1);
    }
    (lib.conninfo_free)(list);
    out
}

/// Parse a conninfo string or URI with the real libpq. `None` if libpq rejects it (the caller then
/// passes the call through untouched and libpq reports its own error).
pub fn parse_conninfo(lib: &Libpq, s: &str) -> Option<Options> {
    let c = CString::new(s).ok()?;
    let mut err: *mut c_char = std::ptr::null_mut();
    let list = unsafe { (lib.conninfo_parse)(c.as_ptr(), &mut err) };
    if !err.is_null() {
        unsafe { (lib.freemem)(err as *mut libc::c_void) };
    }
    if list.is_null() {
        return None;
    }
    Some(unsafe { options_of(list, lib) })
}

/// The options the caller set explicitly, after libpq's array and expansion rules. Empty values
/// count as unset, as in libpq.
pub fn explicit(lib: &Libpq, call: &Call) -> Option<Options> {
    let mut out = Options::new();
    let mut expanded = false;
    for (k, v) in call.keys.iter().zip(&call.vals) {
        let (Some(k), Some(v)) = (unsafe { cstr_opt(*k) }, unsafe { cstr_opt(*v) }) else { continue };
        if v.is_empty() {
            continue;
        }
        if k == "dbname" && call.expand_dbname && !expanded {
            expanded = true;
            if is_connection_string(&v) {
                for (ek, ev) in parse_conninfo(lib, &v)? {
                    if !ev.is_empty() {
                        out.insert(ek, ev);
                    }
                }
                continue;
            }
        }
        out.insert(k, v);
    }
    Some(out)
}

/// libpq's defaults as `PQconndefaults` reports them (environment, PGSERVICE, compiled-in).
pub fn defaults(lib: &Libpq) -> Options {
    unsafe { options_of((lib.conndefaults)(), lib) }
}

/// Options from `pg_service.conf` for `service` (user file first, then the system file).
pub fn service_options(service: &str, env: &dyn Fn(&str) -> Option<String>) -> Options {
    let mut files: Vec<PathBuf> = Vec::new();
    match env("PGSERVICEFILE") {
        Some(f) => files.push(f.into()),
        None => {
            if let Some(h) = env("HOME") {
                files.push(Path::new(&h).join(".pg_service.conf"));
            }
        }
    }
    match env("PGSYSCONFDIR") {
        Some(d) => files.push(Path::new(&d).join("pg_service.conf")),
        None => {
            files.push("/etc/postgresql-common/pg_service.conf".into());
            files.push("/etc/pg_service.conf".into());
        }
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        if let Some(out) = parse_service_file(&text, service) {
            return out;
        }
    }
    Options::new()
}

/// The options of section `[service]` in a `pg_service.conf` text (first value of a key wins);
/// `None` when the section is absent. Pure, for fuzzing.
pub fn parse_service_file(text: &str, service: &str) -> Option<Options> {
    let mut in_section = false;
    let mut found = false;
    let mut out = Options::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.len() >= 2 && line.starts_with('[') && line.ends_with(']') {
            in_section = &line[1..line.len() - 1] == service;
            found |= in_section;
            continue;
        }
        if in_section {
            if let Some((k, v)) = line.split_once('=') {
                out.entry(k.trim().to_string()).or_insert_with(|| v.trim().to_string());
            }
        }
    }
    found.then_some(out)
}

/// Whether the password file has an entry for this connection (libpq's `passwordFromFile`).
pub fn passfile_has_entry(path: &Path, host: &str, port: &str, db: &str, user: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else { return false };
    // libpq ignores a file that is not a plain file or is readable by group/others.
    if !meta.is_file() || meta.mode() & 0o077 != 0 {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    let host = if host.is_empty() || host.starts_with('/') { "localhost" } else { host };
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        let m = |f: &str, v: &str| f == "*" || f == v;
        if m(&fields[0], host) && m(&fields[1], port) && m(&fields[2], db) && m(&fields[3], user) && !fields[4].is_empty() {
            return true;
        }
    }
    false
}

/// The fields of one `.pgpass` line (`\\` escapes, at most 5 fields). Public for fuzzing.
pub fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap().push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_fields_and_wildcards() {
        assert_eq!(split_pgpass(r"h:5432:db:u:p\:w\\d"), vec!["h", "5432", "db", "u", r"p:w\d"]);
        let dir = std::env::temp_dir().join(format!("lakebase-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pgpass");
        std::fs::write(&f, "# comment\nother:*:*:*:x\n*.example:5432:*:bob:secret\nlocalhost:*:*:alice:pw\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(passfile_has_entry(&f, "localhost", "5432", "db", "alice"));
        assert!(passfile_has_entry(&f, "/tmp", "5432", "db", "alice"));
        assert!(!passfile_has_entry(&f, "localhost", "5432", "db", "bob"));
        assert!(passfile_has_entry(&f, "other", "1", "x", "y"));
        // Group-readable files are ignored, as libpq does.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(!passfile_has_entry(&f, "localhost", "5432", "db", "alice"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn service_file() {
        let dir = std::env::temp_dir().join(format!("lakebase-svc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("svc.conf");
        std::fs::write(&f, "[other]\nhost=a\n[lb]\n# c\nhost=instance-x.database.cloud.databricks.com\ndbname = databricks_postgres\n").unwrap();
        let fp = f.to_string_lossy().into_owned();
        let env = |k: &str| match k {
            "PGSERVICEFILE" => Some(fp.clone()),
            "PGSYSCONFDIR" => Some("/nonexistent".to_string()),
            _ => None,
        };
        let o = service_options("lb", &env);
        assert_eq!(o.get("host").map(String::as_str), Some("instance-x.database.cloud.databricks.com"));
        assert_eq!(o.get("dbname").map(String::as_str), Some("databricks_postgres"));
        assert!(service_options("missing", &env).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
