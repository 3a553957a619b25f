//! Reading files named by configuration (`.databrickscfg`, CA bundles, OIDC token files,
//! `.pgpass`, `pg_service.conf`): only regular files, never more than a size cap, and never
//! blocking on a FIFO or a device. A FIFO, `/dev/zero`, a directory or a huge file is an error
//! that says what the path is, in bounded time and memory.

use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// Cap for configuration files (`.databrickscfg`, `.pgpass`, `pg_service.conf`): 1 MiB.
pub const CONFIG_FILE_MAX: u64 = 1 << 20;
/// Cap for CA bundles (a full system bundle is about 200 KiB): 16 MiB.
pub const CA_FILE_MAX: u64 = 16 << 20;
/// Cap for files holding one token (an OIDC ID token is a few KiB): 64 KiB.
pub const TOKEN_FILE_MAX: u64 = 64 << 10;

/// The contents of the regular file at `path`, at most `max` bytes, in memory that is wiped when
/// dropped (the file may hold secrets).
///
/// The file is opened non-blocking (opening a FIFO without a writer would otherwise wait
/// forever) and checked with `fstat` on the open descriptor: anything but a regular file is
/// [`io::ErrorKind::InvalidInput`] naming its type; a file larger than `max` (or one that grows
/// past it while being read) is [`io::ErrorKind::InvalidData`]. `NotFound` and permission errors
/// are passed through, so callers can still treat a missing file as absent.
pub fn read_capped(path: &Path, max: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let meta = f.metadata()?;
    let ty = meta.file_type();
    if !ty.is_file() {
        let what = if ty.is_dir() {
            "a directory"
        } else if ty.is_fifo() {
            "a FIFO (named pipe)"
        } else if ty.is_char_device() {
            "a character device"
        } else if ty.is_block_device() {
            "a block device"
        } else if ty.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("it is {what}, not a regular file")));
    }
    if meta.len() > max {
        return Err(too_large(meta.len(), max));
    }
    // Sized up front: a zeroizing Vec that reallocates leaves an unwiped copy behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    // Files whose size reads 0 but which produce data (procfs) stay bounded by the cap too.
    (&f).take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(too_large(buf.len() as u64, max));
    }
    Ok(buf)
}

fn too_large(len: u64, max: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("it is larger than the {} limit ({len} bytes or more)", human(max)))
}

fn human(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n}-byte")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("lakebase-fs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn regular_files_are_read_up_to_the_cap() {
        let d = dir("reg");
        let p = d.join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(&read_capped(&p, 5).unwrap()[..], b"hello");
        let e = read_capped(&p, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than the 4-byte limit"), "{e}");
        assert_eq!(read_capped(&d.join("missing"), 5).unwrap_err().kind(), io::ErrorKind::NotFound);
        let e = read_capped(&d, 5).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn devices_and_fifos_are_refused_at_once() {
        let t0 = crate::clock::Stopwatch::start();
        let e = read_capped(Path::new("/dev/zero"), CONFIG_FILE_MAX).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let d = dir("fifo");
        let p = d.join("fifo");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would hang here.
        let e = read_capped(&p, CONFIG_FILE_MAX).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(2));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn procfs_files_that_claim_zero_bytes_are_still_bounded() {
        // /proc/self/maps reports size 0 but produces several KiB.
        let e = read_capped(Path::new("/proc/self/maps"), 64).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
