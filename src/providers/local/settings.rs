//! The `[local]` section of pipeline.toml and which SSH key the sandbox hosts take.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::providers::keys;

/// The `[local]` section of pipeline.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Debian release of the base image.
    pub suite: String,
    /// Debian mirror debootstrap and the hosts' apt use.
    pub mirror: String,
    /// Private IPv4 range the hosts' addresses come from (one /30 link per host); must not overlap
    /// any route of the machine.
    pub subnet: String,
    /// Base images and the shared package cache (kept across runs).
    pub cache_dir: PathBuf,
    /// Per-environment state, host overlays, console logs, generated SSH keys.
    pub state_root: PathBuf,
    /// Private key Ansible logs in with; default `~/.ssh/id_ed25519`, then `~/.ssh/id_rsa`, then a key
    /// generated under `state_root/ssh/`.
    pub ssh_key: Option<PathBuf>,
    /// Packages added to the base image (changing the list builds a new image).
    pub extra_packages: Vec<String>,
    /// Share downloaded apt packages between hosts and runs.
    pub share_package_cache: bool,
    /// Memory limit of hosts whose spec sets none (e.g. `2G`); none by default.
    pub memory_limit: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            subnet: "10.213.0.0/16".into(),
            cache_dir: "/var/cache/pipeline".into(),
            state_root: "/var/lib/pipeline/local".into(),
            ssh_key: None,
            extra_packages: Vec::new(),
            share_package_cache: true,
            memory_limit: None,
        }
    }
}

/// The user's home, `/root` when `$HOME` is unset or empty (the sandbox runs as root).
pub(super) fn home() -> PathBuf {
    keys::home().unwrap_or_else(|| "/root".into())
}

pub(super) fn generated_key_path(settings: &Settings) -> PathBuf {
    settings.state_root.join("ssh").join("id_ed25519")
}

/// The key to use: configured (`~` is `home`), else the user's usual keys in `home/.ssh`, else the
/// generated project key.
pub(super) fn resolve_key(settings: &Settings, home: &Path) -> PathBuf {
    if let Some(k) = &settings.ssh_key {
        return keys::expand_home(k, Some(home));
    }
    keys::first_usual_key(home).unwrap_or_else(|| generated_key_path(settings))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::settings::Config;

    #[test]
    fn key_is_configured_then_ed25519_then_rsa_then_generated() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let mut settings = Settings::default();
        let generated = PathBuf::from("/var/lib/pipeline/local/ssh/id_ed25519");
        assert_eq!(resolve_key(&settings, h), generated);
        fs::create_dir_all(h.join(".ssh")).unwrap();
        fs::write(h.join(".ssh/id_rsa"), "").unwrap();
        assert_eq!(resolve_key(&settings, h), h.join(".ssh/id_rsa"));
        fs::write(h.join(".ssh/id_ed25519"), "").unwrap();
        assert_eq!(resolve_key(&settings, h), h.join(".ssh/id_ed25519"));
        settings.ssh_key = Some("~/keys/sandbox".into());
        assert_eq!(resolve_key(&settings, h), h.join("keys/sandbox"));
    }

    #[test]
    fn local_section_parses_and_a_typo_is_an_error_naming_the_key() {
        let cfg = Config::parse(
            "[local]\nsubnet = \"10.99.0.0/16\"\nextra_packages = [\"curl\"]\n",
            "pipeline.toml".into(),
        )
        .unwrap();
        let s: Settings = cfg.section("local").unwrap();
        assert_eq!(s.subnet, "10.99.0.0/16");
        assert_eq!(s.extra_packages, ["curl"]);
        assert_eq!(s.suite, "bookworm");
        let bad = Config::parse("[local]\nsubnett = \"x\"\n", "pipeline.toml".into()).unwrap();
        let err = bad.section::<Settings>("local").unwrap_err().to_string();
        assert!(err.contains("subnett"), "{err}");
    }
}
