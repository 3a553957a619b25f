//! The per-user shared cache: what one process learned (the database credential and its expiry,
//! the identity, the Postgres host, discovered targets), on disk for the user's other processes.
//!
//! * Where: `cache_dir` / `LAKEBASE_CACHE_DIR` when set; else `$XDG_RUNTIME_DIR/lakebase` (tmpfs,
//!   per user, gone at logout); else `$XDG_CACHE_HOME/lakebase`; else `$HOME/.cache/lakebase`.
//!   An automatic location is used only if its parent belongs to the user (after `su`, the
//!   variables may still name another user's directories); the first usable one wins.
//! * One entry per cache key (the SHA-256 of workspace, auth material and target that the
//!   in-memory registry uses), in `<key>.entry`, replaced atomically; `<key>.lock` serialises
//!   the processes that mint for that key (see `fs.rs` for the file rules).
//! * Nothing read from here is trusted beyond what the file rules and [`Record::decode`]
//!   check; anything else is ignored (and replaced by the next write), never an error.
//!
//! No descriptor, lock or thread outlives a call: each operation opens the directory, works and
//! closes everything, so `fork()` and `exec()` carry nothing over.

pub(crate) mod fs;
mod record;

pub use record::{Failure, Learned, LearnedTarget, Record, StoredToken};

use crate::clock::WallMs;
use crate::env::Env;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The cache key: a SHA-256 (see `client::registry::cache_key`).
pub type Key = [u8; 32];

/// Entries are small (~1.5 KiB); anything near this is not ours.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;

const ENTRY_SUFFIX: &str = ".entry";
const LOCK_SUFFIX: &str = ".lock";

/// The key as a file name stem.
pub fn key_hex(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Debug)]
struct Candidate {
    path: PathBuf,
    /// Create the parent too (`~/.cache`).
    create_parent: bool,
    /// The parent must be the user's own.
    parent_owned: bool,
}

/// Where the shared cache lives: one or more candidate directories, tried in order.
#[derive(Clone, Debug)]
pub struct Store {
    candidates: Vec<Candidate>,
}

/// Whether `LAKEBASE_CACHE` / the `cache` option turns the shared cache on (the default).
/// `Err` for a value that is neither on nor off.
pub fn enabled(value: Option<&str>) -> Result<bool, String> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("on") | Some("1") | Some("true") | Some("yes") => Ok(true),
        Some("off") | Some("0") | Some("false") | Some("no") => Ok(false),
        Some(other) => Err(format!("cache: expected on or off, got {other:?}")),
    }
}

fn absolute(v: Option<String>) -> Option<PathBuf> {
    v.map(PathBuf::from).filter(|p| p.is_absolute())
}

/// Warn once per process about unusable cache directories.
static WARNED: AtomicBool = AtomicBool::new(false);

impl Store {
    /// The cache location for this environment (no I/O). `dir`: an explicit directory
    /// (`cache_dir` option or `LAKEBASE_CACHE_DIR`), used alone.
    pub fn locate(env: &dyn Env, dir: Option<&str>) -> Option<Store> {
        let explicit = dir.map(str::to_string).or_else(|| env.var("LAKEBASE_CACHE_DIR"));
        if let Some(d) = explicit.filter(|d| !d.is_empty()) {
            let path = std::path::absolute(d).ok()?;
            return Some(Store { candidates: vec![Candidate { path, create_parent: false, parent_owned: false }] });
        }
        let mut c = Vec::new();
        if let Some(run) = absolute(env.var("XDG_RUNTIME_DIR")) {
            c.push(Candidate { path: run.join("lakebase"), create_parent: false, parent_owned: true });
        }
        if let Some(cache) = absolute(env.var("XDG_CACHE_HOME")) {
            c.push(Candidate { path: cache.join("lakebase"), create_parent: true, parent_owned: true });
        } else if let Some(home) = absolute(env.var("HOME")) {
            c.push(Candidate { path: home.join(".cache").join("lakebase"), create_parent: true, parent_owned: true });
        }
        (!c.is_empty()).then_some(Store { candidates: c })
    }

    /// The candidate directories, in order.
    pub fn paths(&self) -> Vec<&Path> {
        self.candidates.iter().map(|c| c.path.as_path()).collect()
    }

    /// Open (creating it if needed) the first usable directory.
    pub fn open_dir(&self) -> Result<(OwnedFd, &Path), String> {
        let mut why = Vec::new();
        for c in &self.candidates {
            match fs::private_dir(&c.path, true, c.create_parent, c.parent_owned) {
                Ok(Some(fd)) => return Ok((fd, &c.path)),
                Ok(None) => why.push(format!("{}: missing", c.path.display())),
                Err(e) => why.push(format!("{}: {e}", c.path.display())),
            }
        }
        let msg = format!("no usable shared cache directory ({})", why.join("; "));
        if !WARNED.swap(true, Ordering::Relaxed) {
            crate::log_warn!("{msg}; every process mints its own password");
        }
        Err(msg)
    }

    /// The entry for `key`, if there is a valid one (no lock: entries are replaced atomically).
    pub fn read(&self, key: &Key) -> Option<Record> {
        let (dir, _) = self.open_dir().ok()?;
        read_entry(&dir, &key_hex(key))
    }

    /// Open the entry for `key` for an update: its lock is held (waiting at most `wait`) until the
    /// session is dropped. When the lock cannot be had in time (a holder that hangs), the session
    /// proceeds without it: a duplicate mint is better than a caller that never gets a password.
    pub fn session(&self, key: &Key, wait: Duration) -> Option<Session> {
        let (dir, _) = self.open_dir().ok()?;
        let hex = key_hex(key);
        let t0 = crate::clock::Stopwatch::start();
        let lock = match fs::lock(&dir, &format!("{hex}{LOCK_SUFFIX}"), wait) {
            Ok(fs::Locked::Held(l)) => Some(l),
            Ok(fs::Locked::TimedOut) => {
                crate::log_warn!("shared cache: another process held the entry lock for {} s; going ahead without it", wait.as_secs());
                None
            }
            Err(e) => {
                crate::log_debug!("shared cache: cannot lock the entry ({e}); going ahead without the lock");
                None
            }
        };
        // More than a scheduling hiccup: another process held the lock while we waited.
        let waited = t0.elapsed() >= Duration::from_millis(1);
        Some(Session { dir, hex, _lock: lock, waited })
    }

    /// Every entry (valid or not, with the reason), and the directory they are in.
    pub fn list(&self) -> Result<(PathBuf, Vec<Listed>), String> {
        let (dir, path) = self.open_dir()?;
        let path = path.to_path_buf();
        let names = fs::list(&dir).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = Vec::new();
        for name in names {
            let Some(hex) = name.strip_suffix(ENTRY_SUFFIX) else { continue };
            let record = match fs::read_private(&dir, &name, MAX_ENTRY_BYTES) {
                Ok(Some(data)) => Record::decode(&data, hex),
                Ok(None) => continue,
                Err(e) => Err(e.to_string()),
            };
            out.push(Listed { key_hex: hex.to_string(), record });
        }
        Ok((path, out))
    }

    /// Remove every entry, lock and leftover temporary file; returns the number of entries
    /// removed and the directory.
    pub fn clear(&self) -> Result<(PathBuf, usize), String> {
        let (dir, path) = self.open_dir()?;
        let path = path.to_path_buf();
        let names = fs::list(&dir).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut n = 0;
        for name in names {
            let ours = name.ends_with(ENTRY_SUFFIX) || name.ends_with(LOCK_SUFFIX) || (name.starts_with('.') && name.ends_with(".tmp"));
            if !ours {
                continue;
            }
            match fs::remove(&dir, &name) {
                Ok(true) if name.ends_with(ENTRY_SUFFIX) => n += 1,
                Ok(_) => {}
                Err(e) => return Err(format!("removing {}: {e}", path.join(&name).display())),
            }
        }
        Ok((path, n))
    }
}

fn read_entry(dir: &OwnedFd, hex: &str) -> Option<Record> {
    let name = format!("{hex}{ENTRY_SUFFIX}");
    match fs::read_private(dir, &name, MAX_ENTRY_BYTES) {
        Ok(Some(data)) => match Record::decode(&data, hex) {
            Ok(r) => Some(r),
            Err(why) => {
                crate::log_warn!("shared cache: ignoring the entry {name}: {why}");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            crate::log_warn!("shared cache: ignoring the entry {name}: {e}");
            None
        }
    }
}

/// An entry of [`Store::list`].
#[derive(Debug)]
pub struct Listed {
    /// The cache key, hex.
    pub key_hex: String,
    /// The entry, or why it is ignored.
    pub record: Result<Record, String>,
}

/// The entry of one key, locked for an update (see [`Store::session`]).
pub struct Session {
    dir: OwnedFd,
    hex: String,
    _lock: Option<fs::FileLock>,
    /// Whether another process held the lock while this session waited for it.
    pub waited: bool,
}

impl Session {
    /// The entry as it is now.
    pub fn read(&self) -> Option<Record> {
        read_entry(&self.dir, &self.hex)
    }

    /// Replace the entry (stamped with `now` and this process); a failure is logged, not returned:
    /// the shared cache only ever saves work.
    pub fn write(&self, rec: &mut Record, now: WallMs) {
        rec.updated_ms = now;
        rec.writer_pid = std::process::id();
        let data = rec.encode(&self.hex);
        if let Err(e) = fs::write_private(&self.dir, &format!("{}{ENTRY_SUFFIX}", self.hex), &data) {
            crate::log_warn!("shared cache: cannot write the entry: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;
    use crate::secret::Secret;

    #[test]
    fn locations_in_order_of_preference() {
        let env = MapEnv::from_pairs([("XDG_RUNTIME_DIR", "/run/user/7"), ("HOME", "/home/u")]);
        assert_eq!(Store::locate(&env, None).unwrap().paths(), [Path::new("/run/user/7/lakebase"), Path::new("/home/u/.cache/lakebase")]);
        let env = MapEnv::from_pairs([("XDG_CACHE_HOME", "/c"), ("HOME", "/home/u"), ("XDG_RUNTIME_DIR", "relative")]);
        assert_eq!(Store::locate(&env, None).unwrap().paths(), [Path::new("/c/lakebase")]);
        let env = MapEnv::from_pairs([("LAKEBASE_CACHE_DIR", "/x/y"), ("HOME", "/home/u")]);
        assert_eq!(Store::locate(&env, None).unwrap().paths(), [Path::new("/x/y")]);
        assert_eq!(Store::locate(&env, Some("/o")).unwrap().paths(), [Path::new("/o")]);
        assert!(Store::locate(&MapEnv::default(), None).is_none());
    }

    #[test]
    fn the_switch() {
        assert_eq!(enabled(None), Ok(true));
        assert_eq!(enabled(Some("OFF")), Ok(false));
        assert_eq!(enabled(Some("0")), Ok(false));
        assert_eq!(enabled(Some("on")), Ok(true));
        assert!(enabled(Some("maybe")).unwrap_err().contains("expected on or off"));
    }

    #[test]
    fn a_session_writes_what_the_next_reader_sees_and_clear_removes_it() {
        let base = std::env::temp_dir().join(format!("lakebase-store-test-{}-{:x}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir(&base).unwrap();
        let env = MapEnv::from_pairs([("HOME", base.to_str().unwrap())]);
        let store = Store::locate(&env, None).unwrap();
        let key = [7u8; 32];
        assert!(store.read(&key).is_none());
        {
            let s = store.session(&key, Duration::from_secs(1)).unwrap();
            assert!(!s.waited);
            let mut r = Record {
                workspace: "https://w".into(),
                auth_type: "pat".into(),
                token: Some(StoredToken { secret: Secret::new("tok"), obtained_ms: 10, expiry_ms: 20 }),
                ..Record::default()
            };
            s.write(&mut r, 15);
        }
        let r = store.read(&key).unwrap();
        assert_eq!((r.token.unwrap().secret.expose(), r.updated_ms, r.writer_pid), ("tok", 15, std::process::id()));
        let (dir, listed) = store.list().unwrap();
        assert_eq!(dir, base.join(".cache/lakebase"));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key_hex, key_hex(&key));
        // A garbage entry is listed with its reason and ignored by readers.
        std::fs::write(dir.join(format!("{}.entry", key_hex(&[8; 32]))), b"garbage").unwrap();
        std::fs::set_permissions(dir.join(format!("{}.entry", key_hex(&[8; 32]))), std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        assert!(store.read(&[8; 32]).is_none());
        let listed = store.list().unwrap().1;
        assert_eq!(listed.len(), 2);
        assert!(listed[0].record.is_ok());
        assert!(listed[1].record.as_ref().unwrap_err().contains("not JSON"), "{:?}", listed[1].record);
        assert_eq!(store.clear().unwrap().1, 2);
        assert!(store.read(&key).is_none());
        assert!(fs::list(&store.open_dir().unwrap().0).unwrap().is_empty());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
