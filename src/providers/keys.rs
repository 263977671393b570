//! Which SSH key a provider's hosts are reached with, shared by both providers: the user's home, `~`
//! expansion, and the usual key files tried in order (`~/.ssh/id_ed25519`, then `~/.ssh/id_rsa`).

use std::path::{Path, PathBuf};

/// The key files tried when none is configured, in order of preference.
pub const USUAL_KEYS: [&str; 2] = ["id_ed25519", "id_rsa"];

/// The user's home directory (`$HOME`), unless unset or empty.
pub fn home() -> Option<PathBuf> {
    std::env::var("HOME")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from)
}

/// `path` with a leading `~` replaced by `home`; unchanged without one (or without a home).
pub fn expand_home(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(h)) => h.join(rest),
        _ => path.to_owned(),
    }
}

/// The paths of [`USUAL_KEYS`] under `home/.ssh`, in order.
pub fn usual_keys(home: &Path) -> Vec<PathBuf> {
    USUAL_KEYS
        .iter()
        .map(|f| home.join(".ssh").join(f))
        .collect()
}

/// The first of [`usual_keys`] that exists.
pub fn first_usual_key(home: &Path) -> Option<PathBuf> {
    usual_keys(home).into_iter().find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_expands_to_home_and_other_paths_stay() {
        let h = Path::new("/home/u");
        assert_eq!(
            expand_home(Path::new("~/.ssh/k"), Some(h)),
            h.join(".ssh/k")
        );
        assert_eq!(
            expand_home(Path::new("/etc/k"), Some(h)),
            PathBuf::from("/etc/k")
        );
        assert_eq!(expand_home(Path::new("~/k"), None), PathBuf::from("~/k"));
    }

    #[test]
    fn ed25519_is_preferred_over_rsa() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path();
        assert_eq!(first_usual_key(h), None);
        std::fs::create_dir(h.join(".ssh")).unwrap();
        std::fs::write(h.join(".ssh/id_rsa"), "").unwrap();
        assert_eq!(first_usual_key(h), Some(h.join(".ssh/id_rsa")));
        std::fs::write(h.join(".ssh/id_ed25519"), "").unwrap();
        assert_eq!(first_usual_key(h), Some(h.join(".ssh/id_ed25519")));
    }
}
