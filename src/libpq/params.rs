//! What a libpq call asks for, computed the way libpq computes it: conninfo strings and URIs are
//! parsed by the real libpq's `PQconninfoParse`; keyword arrays are applied in order exactly as
//! libpq's `conninfo_array_parse` does (only the first non-NULL `dbname` is considered for
//! expansion, and only when `expand_dbname` is set; values a parsed string sets, even to "", win
//! over earlier ones and block the defaults); defaults (PGHOST, PGUSER, PGPASSWORD, PGSSLMODE,
//! PGSERVICE, the OS user...) come from the real `PQconndefaults`. Only two things libpq does not
//! export are done here: reading a service named in the conninfo (`pg_service.conf`) and looking
//! for a password-file entry.
//!
//! An injected call is made with exactly the parameters the decision was made on: one conninfo
//! string built from them ([`conninfo_string`]), checked with libpq's own parser before use.

use super::resolve::{cstr_opt, Libpq};
use super::sys::PQconninfoOption;
use libc::c_char;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

pub type Options = BTreeMap<String, String>;

/// The arguments of a hooked call, as keyword/value arrays (how every variant is forwarded).
#[derive(Default)]
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

    /// `PQconnectdbParams(keywords, values, expand_dbname)`, read whole (up to the NULL keyword,
    /// however long, as libpq does).
    ///
    /// # Safety
    /// `keys`/`vals` must be NULL-terminated arrays as libpq requires.
    pub unsafe fn params(keys: *const *const c_char, vals: *const *const c_char, expand: bool) -> Call {
        let mut c = Call { keys: vec![], vals: vec![], expand_dbname: expand };
        if keys.is_null() || vals.is_null() {
            return c;
        }
        let mut i = 0;
        loop {
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

    /// NULL-terminated copies of the arrays (for passing the call through).
    pub fn arrays(&self) -> (Vec<*const c_char>, Vec<*const c_char>) {
        let mut k = self.keys.clone();
        let mut v = self.vals.clone();
        k.push(std::ptr::null());
        v.push(std::ptr::null());
        (k, v)
    }
}

/// libpq's `recognized_connection_string`: a URI, or anything with an `=`.
fn is_connection_string(s: &[u8]) -> bool {
    s.starts_with(b"postgresql://") || s.starts_with(b"postgres://") || s.contains(&b'=')
}

/// Options as libpq hands them out: keyword → value, for the options that have a value.
unsafe fn raw_options_of(list: *mut PQconninfoOption, lib: &Libpq) -> Vec<(String, Zeroizing<Vec<u8>>)> {
    let mut out = Vec::new();
    if list.is_null() {
        return out;
    }
    let mut p = list;
    while !(*p).keyword.is_null() {
        if let (Some(k), false) = (cstr_opt((*p).keyword), (*p).val.is_null()) {
            out.push((k, Zeroizing::new(CStr::from_ptr((*p).val).to_bytes().to_vec())));
        }
        p = p.add(1);
    }
    (lib.conninfo_free)(list);
    out
}

unsafe fn options_of(list: *mut PQconninfoOption, lib: &Libpq) -> Options {
    raw_options_of(list, lib).into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect()
}

/// Parse a NUL-terminated conninfo string or URI with the real libpq. `None` if libpq rejects it.
fn parse_raw(lib: &Libpq, s: &CStr) -> Option<Vec<(String, Zeroizing<Vec<u8>>)>> {
    let mut err: *mut c_char = std::ptr::null_mut();
    let list = unsafe { (lib.conninfo_parse)(s.as_ptr(), &mut err) };
    if !err.is_null() {
        unsafe { (lib.freemem)(err as *mut libc::c_void) };
    }
    if list.is_null() {
        return None;
    }
    Some(unsafe { raw_options_of(list, lib) })
}

/// Parse a conninfo string or URI with the real libpq. `None` if libpq rejects it (the caller then
/// passes the call through untouched and libpq reports its own error).
pub fn parse_conninfo(lib: &Libpq, s: &str) -> Option<Options> {
    let c = CString::new(s).ok()?;
    let raw = parse_raw(lib, &c)?;
    Some(raw.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect())
}

/// The parameters a call sets explicitly, after libpq's array and expansion rules, as raw bytes
/// (values need not be UTF-8). A value present here, even "", is what libpq uses: defaults and
/// service-file values only fill options that are absent.
#[derive(Default)]
pub struct Explicit {
    values: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl Explicit {
    /// The value as text (lossy), "" included.
    pub fn get(&self, k: &str) -> Option<String> {
        self.values.get(k).map(|v| String::from_utf8_lossy(v).into_owned())
    }
    /// Whether `k` is present, "" included.
    pub fn has(&self, k: &str) -> bool {
        self.values.contains_key(k)
    }
    pub fn set(&mut self, k: &str, v: &[u8]) {
        self.values.insert(k.to_string(), Zeroizing::new(v.to_vec()));
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// The options the caller set explicitly, following libpq's `conninfo_array_parse`: entries with
/// a NULL or empty value are skipped; when `expand_dbname` is set, the first `dbname` with a
/// non-NULL value (even "") is the only candidate for expansion, and if it is a connection string
/// its parsed options (every one with a value, "" included) replace earlier ones at that point.
/// `None` if libpq would reject the expanded string.
pub fn explicit(lib: &Libpq, call: &Call) -> Option<Explicit> {
    let pairs: Vec<(Option<String>, *const c_char)> =
        call.keys.iter().zip(&call.vals).map(|(k, v)| (unsafe { cstr_opt(*k) }, *v)).collect();
    let mut expanded: Option<Vec<(String, Zeroizing<Vec<u8>>)>> = None;
    if call.expand_dbname {
        if let Some((_, v)) = pairs.iter().find(|(k, v)| k.as_deref() == Some("dbname") && !v.is_null()) {
            let s = unsafe { CStr::from_ptr(*v) };
            if is_connection_string(s.to_bytes()) {
                expanded = Some(parse_raw(lib, s)?);
            }
        }
    }
    let mut out = Explicit::default();
    for (k, v) in pairs {
        let (Some(k), false) = (k, v.is_null()) else { continue };
        let v = unsafe { CStr::from_ptr(v) }.to_bytes();
        if v.is_empty() {
            continue;
        }
        if k == "dbname" {
            if let Some(opts) = expanded.take() {
                for (ek, ev) in opts {
                    out.values.insert(ek, ev);
                }
                continue;
            }
        }
        out.set(&k, v);
    }
    Some(out)
}

/// `key='value' ...` for every option, quoted for libpq's parser (`\'` and `\\` escaped),
/// NUL-terminated, in a buffer wiped on drop (it carries the password).
pub fn conninfo_string<'a>(opts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Zeroizing<Vec<u8>> {
    let mut s = Zeroizing::new(Vec::with_capacity(2048));
    for (k, v) in opts {
        if !s.is_empty() {
            s.push(b' ');
        }
        s.extend_from_slice(k.as_bytes());
        s.extend_from_slice(b"='");
        for &b in v {
            if b == 0 {
                continue;
            }
            if b == b'\\' || b == b'\'' {
                s.push(b'\\');
            }
            s.push(b);
        }
        s.push(b'\'');
    }
    s.push(0);
    s
}

/// Check a conninfo string with libpq's own parser: the options libpq reads from it (values
/// wiped on drop), or `None` if libpq rejects it.
pub fn check_conninfo(lib: &Libpq, s: &[u8]) -> Option<BTreeMap<String, Zeroizing<Vec<u8>>>> {
    let c = CStr::from_bytes_with_nul(s).ok()?;
    Some(parse_raw(lib, c)?.into_iter().collect())
}

/// Wipe the values of an options map that may hold a password.
pub fn wipe(o: &mut Options) {
    for v in o.values_mut() {
        v.zeroize();
    }
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
        let Some(text) = read_small(&f) else { continue };
        if let Some(out) = parse_service_file(&text, service) {
            return out;
        }
    }
    Options::new()
}

/// A regular file of at most 1 MiB (`None` otherwise: a FIFO, a device or a huge file is skipped
/// at once instead of blocking or filling memory), as text: bytes, not UTF-8, so a Latin-1 comment
/// or value does not make the file invisible.
fn read_small(path: &Path) -> Option<Zeroizing<String>> {
    let bytes = match lakebase_core::fs::read_capped(path, lakebase_core::fs::CONFIG_FILE_MAX) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            lakebase_core::log_warn!("libpq: ignoring {}: {e}", path.display());
            return None;
        }
    };
    Some(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()))
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
    let Some(text) = read_small(path) else { return false };
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

    /// The system libpq (the tests run where libpq5 is installed, as CI does).
    fn libpq() -> std::sync::Arc<Libpq> {
        super::super::resolve::resolve(c"PQconnectdbParams", None).expect("libpq.so.5 is installed").1
    }

    fn call(pairs: &[(&CStr, Option<&CStr>)], expand: bool) -> Call {
        Call {
            keys: pairs.iter().map(|(k, _)| k.as_ptr()).collect(),
            vals: pairs.iter().map(|(_, v)| v.map_or(std::ptr::null(), |v| v.as_ptr())).collect(),
            expand_dbname: expand,
        }
    }

    #[test]
    fn only_the_first_non_null_dbname_is_expanded_as_libpq_does() {
        let lib = libpq();
        // dbname="" first: libpq considers only that one (not a connection string), so the
        // second is a plain database name, never a host.
        let c = call(&[(c"dbname", None), (c"dbname", Some(c"")), (c"dbname", Some(c"host=evil.example user=x"))], true);
        let e = explicit(&lib, &c).unwrap();
        assert_eq!(e.get("host"), None);
        assert_eq!(e.get("dbname").as_deref(), Some("host=evil.example user=x"));
        // The first non-NULL dbname is a connection string: expanded where it stands; later
        // keywords override it, earlier ones are overridden, "" values in it count.
        let c = call(
            &[
                (c"host", Some(c"a.example")),
                (c"dbname", Some(c"host=b.example port='' dbname=db")),
                (c"port", Some(c"6000")),
                (c"dbname", Some(c"host=c.example")),
            ],
            true,
        );
        let e = explicit(&lib, &c).unwrap();
        assert_eq!(e.get("host").as_deref(), Some("b.example"));
        assert_eq!(e.get("port").as_deref(), Some("6000"));
        assert_eq!(e.get("dbname").as_deref(), Some("host=c.example"), "a second dbname is a plain name");
        // expand_dbname = 0: nothing is expanded.
        let c = call(&[(c"dbname", Some(c"host=b.example"))], false);
        assert_eq!(explicit(&lib, &c).unwrap().get("host"), None);
        // An explicit "" from a connection string blocks the defaults (libpq: host='' is the socket).
        let c = call(&[(c"dbname", Some(c"host='' dbname=x"))], true);
        let e = explicit(&lib, &c).unwrap();
        assert!(e.has("host") && e.get("host").as_deref() == Some(""));
        // A string libpq rejects: no decision.
        let c = call(&[(c"dbname", Some(c"host='unterminated"))], true);
        assert!(explicit(&lib, &c).is_none());
    }

    #[test]
    fn keyword_arrays_are_read_whole() {
        let keys: Vec<CString> = (0..1500).map(|i| CString::new(if i == 1400 { "sslmode" } else { "application_name" }).unwrap()).collect();
        let vals: Vec<CString> =
            (0..1500).map(|i| CString::new(if i == 1400 { "verify-full".to_string() } else { format!("a{i}") }).unwrap()).collect();
        let mut k: Vec<*const c_char> = keys.iter().map(|c| c.as_ptr()).collect();
        let mut v: Vec<*const c_char> = vals.iter().map(|c| c.as_ptr()).collect();
        k.push(std::ptr::null());
        v.push(std::ptr::null());
        let c = unsafe { Call::params(k.as_ptr(), v.as_ptr(), false) };
        assert_eq!(c.keys.len(), 1500);
        let e = explicit(&libpq(), &c).unwrap();
        assert_eq!(e.get("sslmode").as_deref(), Some("verify-full"));
        assert_eq!(e.get("application_name").as_deref(), Some("a1499"));
    }

    #[test]
    fn the_final_conninfo_string_reads_back_through_libpq_exactly() {
        let lib = libpq();
        let tricky: &[u8] = b"it's a \\ 'quoted' value = with spaces\xe9";
        let s = conninfo_string([("host", &b"h.example"[..]), ("application_name", tricky), ("dbname", b"host=evil"), ("port", b"")]);
        let back = check_conninfo(&lib, &s).unwrap();
        assert_eq!(back["host"].as_slice(), b"h.example");
        assert_eq!(back["application_name"].as_slice(), tricky);
        assert_eq!(back["dbname"].as_slice(), b"host=evil", "a dbname inside the string is a plain name");
        assert_eq!(back["port"].as_slice(), b"");
        let bad = conninfo_string([("no_such_option", &b"x"[..])]);
        assert!(check_conninfo(&lib, &bad).is_none());
    }

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
        std::fs::write(&f, b"# \xff\xfe\nlocalhost:*:*:carol:p\xe4ss\n").unwrap();
        assert!(passfile_has_entry(&f, "localhost", "5432", "db", "carol"), "non-UTF-8 bytes do not hide the file");
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
        std::fs::write(&f, "[other]\nhost=a\n[lb]\n# c\nhost=instance-x.database.cloud.databricks.com\ndbname = databricks_postgres\n")
            .unwrap();
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
        // A byte that is not UTF-8 (a Latin-1 comment, a password) does not hide the file.
        std::fs::write(&f, b"# caf\xe9\n[lb]\nhost=h.example\npassword=p\xe4ss\n").unwrap();
        let o = service_options("lb", &env);
        assert_eq!(o.get("host").map(String::as_str), Some("h.example"));
        assert!(o.get("password").is_some_and(|p| !p.is_empty()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
