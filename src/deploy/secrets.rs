//! The secrets store: passwords the tool generates once into `<state_dir>/secrets/<name>` (0600, in a
//! directory only the user can read) and reuses on every later run. They reach Ansible only through the
//! 0600 `vars.json`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::fsutil;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Untrusted(#[from] fsutil::TrustError),
    #[error("failed to read random bytes from /dev/urandom for a new password: {0}")]
    Random(std::io::Error),
    #[error("failed to store the generated password in {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A password from 24 random bytes: letters and digits only, so it survives YAML, JSON, shells and URLs.
pub fn password_from(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Where secret `name` is kept.
pub fn path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("secrets").join(name)
}

/// The secret `name` from `<state_dir>/secrets/` (0600), generated on first use and reused after. A
/// secrets directory or file someone else could have planted or read (another owner, group/other
/// permissions) is refused, never used.
pub fn secret(state_dir: &Path, name: &str) -> Result<String, SecretError> {
    let dir = state_dir.join("secrets");
    let path = path(state_dir, name);
    fsutil::ensure_trusted_dir(state_dir, "state directory")?;
    fsutil::ensure_trusted_dir(&dir, "secrets directory")?;
    if let Some(existing) = fsutil::read_secret(&path)? {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(existing.to_string());
        }
    }
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(SecretError::Random)?;
    let password = password_from(&bytes);
    fsutil::write_atomic(&path, format!("{password}\n").as_bytes(), 0o600)
        .map_err(|source| SecretError::Write { path, source })?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_use_only_letters_and_digits() {
        let p = password_from(&[0, 1, 2, 255, 128, 77]);
        assert_eq!(p.len(), 6);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()), "{p}");
    }

    #[test]
    fn secret_is_generated_once_with_mode_0600_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = secret(dir.path(), "db").unwrap();
        let b = secret(dir.path(), "db").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 24);
        let mode = std::fs::metadata(dir.path().join("secrets/db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
