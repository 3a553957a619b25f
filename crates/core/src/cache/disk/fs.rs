//! The file-system rules of the shared cache, on raw descriptors: a private directory (ours,
//! 0700, never reached through a symlink at its own name), private files in it (ours, 0600, one
//! link, regular, opened with `O_NOFOLLOW`), atomic replacement (temporary file + `fsync` +
//! `rename`) and a per-entry `flock` with a bounded wait.
//!
//! Every descriptor is opened `O_CLOEXEC` (a program's children inherit nothing across `exec`)
//! and closed when the operation ends: no descriptor is kept between calls, so a program that
//! closes every descriptor (daemons, `closefrom`) cannot make us write through a reused number.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// Why a file or directory of the cache is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    Symlink,
    NotRegular,
    NotDirectory,
    /// Owned by this uid, not ours.
    Owner(u32),
    /// Group or other permission bits set.
    Mode(u32),
    /// More than one hard link.
    Links(u64),
    TooLarge(u64),
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Symlink => f.write_str("it is a symbolic link"),
            Untrusted::NotRegular => f.write_str("it is not a regular file"),
            Untrusted::NotDirectory => f.write_str("it is not a directory"),
            Untrusted::Owner(uid) => write!(f, "it is owned by uid {uid}, not by this user (uid {})", euid()),
            Untrusted::Mode(m) => write!(f, "its mode {m:04o} gives access to other users"),
            Untrusted::Links(n) => write!(f, "it has {n} hard links"),
            Untrusted::TooLarge(n) => write!(f, "it is too large ({n} bytes)"),
        }
    }
}

/// What went wrong with a cache path.
#[derive(Debug)]
pub enum FsError {
    Io(io::Error),
    Untrusted(Untrusted),
}

impl From<io::Error> for FsError {
    fn from(e: io::Error) -> Self {
        FsError::Io(e)
    }
}

impl std::fmt::Display for FsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsError::Io(e) => e.fmt(f),
            FsError::Untrusted(u) => u.fmt(f),
        }
    }
}

pub fn euid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() }
}

fn cstring(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Retry a system call interrupted by a signal.
fn cvt(mut f: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

fn openat(dir: RawFd, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; the returned descriptor is owned by the OwnedFd.
    let fd = cvt(|| unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: a zeroed `stat` is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(|| unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// `fstatat` without following a symlink at `name`.
fn lstatat(dir: &OwnedFd, name: &CStr) -> io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, NUL-terminated name, valid out-buffer.
    cvt(|| unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

fn unlinkat(dir: &OwnedFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated name.
    cvt(|| unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

fn is_type(st: &libc::stat, t: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == t
}

/// Check a file we opened: ours, regular, private, one link, at most `max` bytes.
#[allow(clippy::unnecessary_cast)] // nlink_t and off_t differ in width between targets
fn check_file(st: &libc::stat, max: u64) -> Result<(), Untrusted> {
    if !is_type(st, libc::S_IFREG) {
        return Err(Untrusted::NotRegular);
    }
    if st.st_uid != euid() {
        return Err(Untrusted::Owner(st.st_uid));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(Untrusted::Mode(st.st_mode & 0o7777));
    }
    if st.st_nlink != 1 {
        return Err(Untrusted::Links(st.st_nlink as u64));
    }
    if st.st_size as u64 > max {
        return Err(Untrusted::TooLarge(st.st_size as u64));
    }
    Ok(())
}

/// Open the directory `path` as our private directory, creating it (0700) when `create` is set.
/// Its parent is opened normally (it may be reached through symlinks, like any home directory);
/// `path` itself never is: a symlink there is removed and replaced by a directory (never
/// followed), a directory of ours with a wider mode is narrowed to 0700, and a directory of
/// another user is refused. `parent_owned`: refuse a parent that is not ours either (the
/// automatic locations: `XDG_RUNTIME_DIR` or `HOME` inherited from another user after `su`).
pub fn private_dir(path: &Path, create: bool, create_parent: bool, parent_owned: bool) -> Result<Option<OwnedFd>, FsError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(FsError::Io(io::Error::new(io::ErrorKind::InvalidInput, "not a directory path")));
    };
    let parent_c = cstring(parent.as_os_str())?;
    let name_c = cstring(name)?;
    let dflags = libc::O_RDONLY | libc::O_DIRECTORY;
    let pfd = match openat(libc::AT_FDCWD, &parent_c, dflags, 0) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound && create && create_parent => {
            // SAFETY: NUL-terminated path.
            match cvt(|| unsafe { libc::mkdir(parent_c.as_ptr(), 0o700) }) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
            openat(libc::AT_FDCWD, &parent_c, dflags, 0)?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if parent_owned {
        let st = fstat(&pfd)?;
        if st.st_uid != euid() {
            return Err(FsError::Untrusted(Untrusted::Owner(st.st_uid)));
        }
    }
    for _ in 0..3 {
        if create {
            // SAFETY: valid descriptor, NUL-terminated name.
            match cvt(|| unsafe { libc::mkdirat(pfd.as_raw_fd(), name_c.as_ptr(), 0o700) }) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
        }
        let fd = match openat(pfd.as_raw_fd(), &name_c, dflags | libc::O_NOFOLLOW, 0) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                let st = lstatat(&pfd, &name_c)?;
                let what = if is_type(&st, libc::S_IFLNK) { Untrusted::Symlink } else { Untrusted::NotDirectory };
                if !create || (st.st_uid != euid() && !is_type(&st, libc::S_IFLNK)) {
                    return Err(FsError::Untrusted(what));
                }
                // A symlink (whoever made it) or a file of ours where the directory belongs:
                // remove it (unlink never follows a symlink) and create the directory.
                crate::log_warn!("shared cache: replacing {} ({what})", path.display());
                unlinkat(&pfd, &name_c, 0)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let st = fstat(&fd)?;
        if st.st_uid != euid() {
            return Err(FsError::Untrusted(Untrusted::Owner(st.st_uid)));
        }
        if st.st_mode & 0o077 != 0 {
            if !create {
                return Err(FsError::Untrusted(Untrusted::Mode(st.st_mode & 0o7777)));
            }
            crate::log_warn!("shared cache: {} had mode {:04o}; narrowing it to 0700", path.display(), st.st_mode & 0o7777);
            // SAFETY: valid descriptor.
            cvt(|| unsafe { libc::fchmod(fd.as_raw_fd(), 0o700) })?;
        }
        return Ok(Some(fd));
    }
    Err(FsError::Untrusted(Untrusted::Symlink))
}

/// Read the private file `name` of `dir` (at most `max` bytes). `Ok(None)` when it does not
/// exist; an untrusted file (symlink, another owner, wider mode, links, size, not regular) is an
/// error, and is replaced by the next write.
pub fn read_private(dir: &OwnedFd, name: &str, max: u64) -> Result<Option<Zeroizing<Vec<u8>>>, FsError> {
    let name_c = cstring(OsStr::new(name))?;
    let fd = match openat(dir.as_raw_fd(), &name_c, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY, 0) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(FsError::Untrusted(Untrusted::Symlink)),
        Err(e) => return Err(e.into()),
    };
    let st = fstat(&fd)?;
    check_file(&st, max).map_err(FsError::Untrusted)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(st.st_size as usize + 1));
    let mut file = std::fs::File::from(fd);
    use std::io::Read;
    // Bounded even if the file grows under us (it cannot: it is replaced, never rewritten).
    (&mut file).take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(FsError::Untrusted(Untrusted::TooLarge(buf.len() as u64)));
    }
    Ok(Some(buf))
}

/// Replace `name` in `dir` with `data`, atomically: readers see the old file or the new one,
/// never a part. A temporary file (0600, `O_EXCL | O_NOFOLLOW`) is written, synced and renamed
/// over `name` (a rename replaces a symlink or an untrusted file at `name` without following it).
pub fn write_private(dir: &OwnedFd, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = format!(".{name}.{}.{:016x}.tmp", std::process::id(), fastrand::u64(..));
    let tmp_c = cstring(OsStr::new(&tmp))?;
    let name_c = cstring(OsStr::new(name))?;
    let fd = openat(dir.as_raw_fd(), &tmp_c, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, 0o600)?;
    let mut file = std::fs::File::from(fd);
    let written = (|| {
        use std::io::Write;
        file.write_all(data)?;
        file.sync_data()?;
        drop(file);
        // SAFETY: valid descriptors and NUL-terminated names.
        cvt(|| unsafe { libc::renameat(dir.as_raw_fd(), tmp_c.as_ptr(), dir.as_raw_fd(), name_c.as_ptr()) }).map(drop)
    })();
    if written.is_err() {
        let _ = unlinkat(dir, &tmp_c, 0);
    }
    written
}

/// Remove `name` from `dir` if it is a file (or symlink); a missing file is not an error.
pub fn remove(dir: &OwnedFd, name: &str) -> io::Result<bool> {
    let name_c = cstring(OsStr::new(name))?;
    match unlinkat(dir, &name_c, 0) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The names in `dir` (not `.` and `..`).
pub fn list(dir: &OwnedFd) -> io::Result<Vec<String>> {
    // SAFETY: dup gives fdopendir a descriptor of its own, released by closedir.
    let fd = cvt(|| unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
    let d = unsafe { libc::fdopendir(fd) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        unsafe { libc::close(fd) };
        return Err(e);
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: `d` is a valid DIR*; the entry is valid until the next readdir.
        let ent = unsafe { libc::readdir(d) };
        if ent.is_null() {
            break;
        }
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        if let Ok(n) = name.to_str() {
            if n != "." && n != ".." {
                names.push(n.to_string());
            }
        }
    }
    unsafe { libc::closedir(d) };
    names.sort();
    Ok(names)
}

/// An exclusive `flock` on a lock file of the cache, released (explicitly, `LOCK_UN`) on drop.
/// The kernel releases it too when the holding process dies, so a killed holder never blocks
/// anyone. The explicit unlock matters after `fork()`: a child that inherited the descriptor
/// shares the lock, and only an unlock (not the parent's close) ends it for both.
pub struct FileLock {
    fd: OwnedFd,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: valid descriptor.
        unsafe { libc::flock(self.fd.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Outcome of [`lock`].
pub enum Locked {
    Held(FileLock),
    /// Another holder kept it for the whole wait.
    TimedOut,
}

/// Open (or create) the lock file `name` in `dir` and lock it, waiting at most `wait`. A lock
/// file that is not a private regular file of ours is replaced first. Polls with a short backoff
/// (1 ms doubling to 8 ms): `flock` has no timed wait, and a signal-based timeout would touch the
/// host program's signal handling.
pub fn lock(dir: &OwnedFd, name: &str, wait: Duration) -> Result<Locked, FsError> {
    let name_c = cstring(OsStr::new(name))?;
    let deadline = crate::clock::real_deadline(wait);
    let mut replaced = false;
    let mut pause = Duration::from_millis(1);
    loop {
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        let opened = openat(dir.as_raw_fd(), &name_c, flags, 0o600).map_err(FsError::from).and_then(|fd| {
            let st = fstat(&fd)?;
            check_file(&st, 4096).map_err(FsError::Untrusted)?;
            Ok((fd, st))
        });
        let (fd, st) = match opened {
            Ok(x) => x,
            Err(e) => {
                let untrusted =
                    matches!(e, FsError::Untrusted(_)) || matches!(&e, FsError::Io(io) if io.raw_os_error() == Some(libc::ELOOP));
                if untrusted && !replaced {
                    crate::log_warn!("shared cache: replacing the lock file {name} ({e})");
                    replaced = true;
                    let _ = unlinkat(dir, &name_c, 0);
                    continue;
                }
                return Err(e);
            }
        };
        loop {
            // SAFETY: valid descriptor.
            let r = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if r == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) => {
                    let left = deadline.left();
                    if left.is_zero() {
                        return Ok(Locked::TimedOut);
                    }
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(Duration::from_millis(8));
                }
                _ => return Err(e.into()),
            }
        }
        let lock = FileLock { fd };
        // The file we locked must still be the one at `name` (not removed or replaced while we
        // waited, e.g. by `lakebase cache clear`); otherwise lock the new one.
        match lstatat(dir, &name_c) {
            Ok(now) if now.st_ino == st.st_ino && now.st_dev == st.st_dev => return Ok(Locked::Held(lock)),
            _ => {
                drop(lock);
                if deadline.left().is_zero() {
                    return Ok(Locked::TimedOut);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("lakebase-fs-test-{tag}-{}-{:x}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir(&d).unwrap();
        d
    }

    #[test]
    fn the_directory_is_created_private_and_a_symlink_there_is_replaced_not_followed() {
        let base = tmpdir("dir");
        let victim = base.join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = base.join("lakebase");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        let fd = private_dir(&p, true, false, false).unwrap().unwrap();
        let md = std::fs::symlink_metadata(&p).unwrap();
        assert!(md.is_dir() && md.permissions().mode() & 0o777 == 0o700);
        assert_eq!(fstat(&fd).unwrap().st_ino, md.ino());
        // The symlink's target was left alone.
        assert_eq!(std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777, 0o755);
        // A wider mode on our own directory is narrowed.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        private_dir(&p, true, false, false).unwrap().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o700);
        // Not created when only reading.
        assert!(private_dir(&base.join("absent"), false, false, false).unwrap().is_none());
        assert!(!base.join("absent").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn files_are_written_atomically_and_read_only_when_private() {
        let base = tmpdir("files");
        let fd = private_dir(&base.join("c"), true, false, false).unwrap().unwrap();
        write_private(&fd, "a", b"hello").unwrap();
        assert_eq!(&**read_private(&fd, "a", 100).unwrap().unwrap(), b"hello");
        let path = base.join("c/a");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(read_private(&fd, "missing", 100).unwrap().is_none());
        assert!(matches!(read_private(&fd, "a", 3), Err(FsError::Untrusted(Untrusted::TooLarge(5)))));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_private(&fd, "a", 100), Err(FsError::Untrusted(Untrusted::Mode(0o644)))));
        std::fs::hard_link(&path, base.join("c/b")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(read_private(&fd, "a", 100), Err(FsError::Untrusted(Untrusted::Links(2)))));
        std::fs::remove_file(base.join("c/b")).unwrap();
        // A symlink is never followed, and the next write replaces it.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(base.join("target"), b"outside").unwrap();
        std::os::unix::fs::symlink(base.join("target"), &path).unwrap();
        assert!(matches!(read_private(&fd, "a", 100), Err(FsError::Untrusted(Untrusted::Symlink))));
        write_private(&fd, "a", b"new").unwrap();
        assert_eq!(std::fs::read(base.join("target")).unwrap(), b"outside");
        assert_eq!(&**read_private(&fd, "a", 100).unwrap().unwrap(), b"new");
        // No temporary file is left behind.
        assert_eq!(list(&fd).unwrap(), vec!["a".to_string()]);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_lock_is_exclusive_bounded_and_released_on_drop() {
        let base = tmpdir("lock");
        let fd = private_dir(&base.join("c"), true, false, false).unwrap().unwrap();
        let held = match lock(&fd, "k.lock", Duration::from_secs(1)).unwrap() {
            Locked::Held(l) => l,
            Locked::TimedOut => panic!("free lock not taken"),
        };
        // flock conflicts between two open file descriptions, even in one process.
        let t0 = crate::clock::Stopwatch::start();
        assert!(matches!(lock(&fd, "k.lock", Duration::from_millis(30)).unwrap(), Locked::TimedOut));
        assert!(t0.elapsed() >= Duration::from_millis(30));
        drop(held);
        assert!(matches!(lock(&fd, "k.lock", Duration::ZERO).unwrap(), Locked::Held(_)));
        // A symlinked lock file is replaced by a private one.
        std::fs::remove_file(base.join("c/k.lock")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", base.join("c/k.lock")).unwrap();
        assert!(matches!(lock(&fd, "k.lock", Duration::ZERO).unwrap(), Locked::Held(_)));
        assert!(std::fs::symlink_metadata(base.join("c/k.lock")).unwrap().is_file());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
