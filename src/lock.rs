//! Exclusive advisory locks on files (`flock`), released when the guard drops or the process dies: the
//! local provider's machine-wide lock and DigitalOcean's per-environment lock, so two `prod up`s at once
//! never both create the same hosts.

use std::fs;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// An exclusive `flock` on a file, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: fs::File,
}

fn open(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

fn flock(file: &fs::File, flags: i32) -> io::Result<()> {
    // SAFETY: flock on a valid, open descriptor owned by `file`.
    if unsafe { libc::flock(file.as_raw_fd(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl FileLock {
    /// Waits until the lock on `path` (created if missing) is ours.
    pub fn acquire(path: &Path) -> io::Result<FileLock> {
        let file = open(path)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(FileLock { _file: file })
    }

    /// The lock if it is free now, `None` if someone else holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<FileLock>> {
        let file = open(path)?;
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_to_a_second_taker_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env.lock");
        let first = FileLock::acquire(&path).unwrap();
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        drop(first);
        assert!(FileLock::try_acquire(&path).unwrap().is_some());
    }
}
