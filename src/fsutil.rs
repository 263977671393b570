//! File helpers every command shares: atomic writes (a failure never leaves a half-written file),
//! private (0600) files for state and secrets, and the trust checks on what already exists.
//!
//! Trust rules (what a root-run tool must not take from another user):
//! - a directory the tool keeps state, secrets or runs in ([`ensure_private_dir`], [`check_trusted_dir`])
//!   must be owned by the effective user (or root) and not writable by group or others;
//! - a secret file ([`read_secret`]) must be a regular file owned by the effective user with no group or
//!   other permission (0600 or stricter);
//! - a run or emit directory is created fresh, 0700 ([`create_fresh_dir`]), never reused.
//!
//! A refusal is a [`TrustError`] naming the path and the command that fixes it.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A path the tool refuses to use, and why.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("refusing to use {what} {path}: it is owned by uid {owner}, not by you (uid {euid}) or root; another user could have planted or changed it. Remove it, or take it over with `chown -R {euid} {path}` after checking its contents")]
    NotOwned {
        what: &'static str,
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    #[error("refusing to use {what} {path}: it is writable by group or others (mode {mode:04o}), so another user could have changed it. Fix it with `chmod go-w {path}` after checking its contents, or remove it")]
    Writable {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("refusing to read secret {path}: its mode is {mode:04o}, so others can read or change it; a secret file must be 0600. Fix it with `chmod 600 {path}` if you trust its contents, or delete it to have a new one generated")]
    SecretMode { path: PathBuf, mode: u32 },
    #[error(
        "refusing to use {what} {path}: it is not a {expected} (symbolic links are not followed)"
    )]
    WrongType {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("refusing to reuse {what} {path}: it already exists, and a run directory is always created fresh (0700); remove it or choose a directory that does not exist")]
    Exists { what: &'static str, path: PathBuf },
    #[error("cannot use {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl From<TrustError> for io::Error {
    fn from(e: TrustError) -> io::Error {
        let kind = match &e {
            TrustError::Io { source, .. } => source.kind(),
            TrustError::Exists { .. } => io::ErrorKind::AlreadyExists,
            _ => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, e)
    }
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn owner_ok(uid: u32) -> bool {
    uid == euid() || uid == 0
}

/// Checks an existing directory (a symlink is judged by its target): owned by the effective user or root,
/// not writable by group or others.
pub fn check_trusted_dir(dir: &Path, what: &'static str) -> Result<(), TrustError> {
    let meta = fs::metadata(dir).map_err(|source| TrustError::Io {
        what,
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(TrustError::WrongType {
            what,
            path: dir.to_owned(),
            expected: "directory",
        });
    }
    check_owner_and_mode(dir, &meta, what)
}

/// Checks an existing file someone else must not control (e.g. `known_hosts`): a regular file owned by
/// the effective user or root, not writable by group or others.
pub fn check_trusted_file(path: &Path, what: &'static str) -> Result<(), TrustError> {
    let meta = fs::symlink_metadata(path).map_err(|source| TrustError::Io {
        what,
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(TrustError::WrongType {
            what,
            path: path.to_owned(),
            expected: "regular file",
        });
    }
    check_owner_and_mode(path, &meta, what)
}

fn check_owner_and_mode(
    path: &Path,
    meta: &fs::Metadata,
    what: &'static str,
) -> Result<(), TrustError> {
    if !owner_ok(meta.uid()) {
        return Err(TrustError::NotOwned {
            what,
            path: path.to_owned(),
            owner: meta.uid(),
            euid: euid(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(TrustError::Writable {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Reads the secret file `path`: `Ok(None)` if it does not exist; refused unless it is a regular file
/// owned by the effective user with no group or other permission bits.
pub fn read_secret(path: &Path) -> Result<Option<String>, TrustError> {
    let io_err = |source| TrustError::Io {
        what: "secret",
        path: path.to_owned(),
        source,
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    if !meta.is_file() {
        return Err(TrustError::WrongType {
            what: "secret",
            path: path.to_owned(),
            expected: "regular file",
        });
    }
    if meta.uid() != euid() {
        return Err(TrustError::NotOwned {
            what: "secret",
            path: path.to_owned(),
            owner: meta.uid(),
            euid: euid(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TrustError::SecretMode {
            path: path.to_owned(),
            mode,
        });
    }
    fs::read_to_string(path).map(Some).map_err(io_err)
}

/// Creates `dir` fresh with mode 0700 (its missing parents too, each 0700); an existing `dir` is refused.
pub fn create_fresh_dir(dir: &Path, what: &'static str) -> Result<(), TrustError> {
    if fs::symlink_metadata(dir).is_ok() {
        return Err(TrustError::Exists {
            what,
            path: dir.to_owned(),
        });
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dirs(parent, what)?;
    }
    let mut builder = fs::DirBuilder::new();
    builder.mode(0o700);
    builder.create(dir).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => TrustError::Exists {
            what,
            path: dir.to_owned(),
        },
        _ => TrustError::Io {
            what,
            path: dir.to_owned(),
            source,
        },
    })?;
    set_mode(dir, 0o700, what)
}

/// Creates the missing directories of `dir` with mode 0700 (whatever the umask), leaving existing ones alone.
fn create_private_dirs(dir: &Path, what: &'static str) -> Result<(), TrustError> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder.create(dir).map_err(|source| TrustError::Io {
        what,
        path: dir.to_owned(),
        source,
    })
}

fn set_mode(path: &Path, mode: u32, what: &'static str) -> Result<(), TrustError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| TrustError::Io {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory, fsync, then rename.
/// `mode` sets the permissions of the new file before any byte is written (use 0o600 for secrets).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `dir` (and its missing parents) with mode 0700 if it does not exist yet; an existing `dir`
/// must pass [`check_trusted_dir`] (a refusal is a [`TrustError`] inside the `io::Error`).
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    ensure_trusted_dir(dir, "directory").map_err(io::Error::from)
}

/// [`ensure_private_dir`] with a [`TrustError`] that names what the directory is for (e.g. "state directory").
pub fn ensure_trusted_dir(dir: &Path, what: &'static str) -> Result<(), TrustError> {
    if fs::symlink_metadata(dir).is_err() {
        create_private_dirs(dir, what)?;
        return set_mode(dir, 0o700, what);
    }
    check_trusted_dir(dir, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_file_with_requested_mode_and_no_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_atomic(&path, b"hunter2", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hunter2");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn private_dirs_are_0700_with_their_parents_and_a_group_writable_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".pipeline");
        ensure_private_dir(&state.join("secrets")).unwrap();
        for d in [&state, &state.join("secrets")] {
            assert_eq!(fs::metadata(d).unwrap().permissions().mode() & 0o777, 0o700);
        }
        fs::set_permissions(&state, fs::Permissions::from_mode(0o775)).unwrap();
        let err = ensure_trusted_dir(&state, "state directory").unwrap_err();
        assert!(
            matches!(err, TrustError::Writable { mode: 0o775, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod go-w"), "{err}");
    }

    #[test]
    fn fresh_dirs_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("a/run");
        create_fresh_dir(&run, "emit directory").unwrap();
        assert_eq!(
            fs::metadata(&run).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let err = create_fresh_dir(&run, "emit directory").unwrap_err();
        assert!(matches!(err, TrustError::Exists { .. }), "{err}");
    }

    #[test]
    fn secrets_are_read_only_when_private_and_regular() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        assert!(read_secret(&path).unwrap().is_none());
        write_atomic(&path, b"pw\n", 0o600).unwrap();
        assert_eq!(read_secret(&path).unwrap().as_deref(), Some("pw\n"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret(&path).unwrap_err();
        assert!(
            matches!(err, TrustError::SecretMode { mode: 0o640, .. }),
            "{err}"
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            read_secret(&link).unwrap_err(),
            TrustError::WrongType { .. }
        ));
    }

    #[test]
    fn atomic_write_into_missing_directory_fails_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("inventory.ini");
        assert!(write_atomic(&path, b"x", 0o644).is_err());
        assert!(!path.exists());
    }
}
