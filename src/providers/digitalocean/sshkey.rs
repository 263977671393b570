//! The user's SSH key pair: which file to use, its public half, and the MD5 fingerprint DigitalOcean knows
//! keys by.

use std::path::{Path, PathBuf};

use base64::Engine;
use md5::{Digest, Md5};

use crate::providers::keys;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no SSH key found: tried {tried}; create one with `ssh-keygen -t ed25519` or pass --ssh-key PATH"
    )]
    NoDefaultKey { tried: String },
    #[error("SSH private key {path} does not exist (from --ssh-key or [digitalocean] ssh_key)")]
    MissingPrivate { path: PathBuf },
    #[error(
        "SSH public key {path} does not exist; write it with `ssh-keygen -y -f {private} > {path}`"
    )]
    MissingPublic { path: PathBuf, private: PathBuf },
    #[error("cannot read SSH public key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not an OpenSSH public key (expected `ssh-ed25519 AAAA… comment`): {message}"
    )]
    Malformed { path: PathBuf, message: String },
}

/// The key pair `prod up` registers on DigitalOcean and writes into the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The private key (what Ansible uses), absolute.
    pub private: PathBuf,
    /// The public key line, as in the `.pub` file.
    pub public_line: String,
    /// MD5 fingerprint, `aa:bb:…` (DigitalOcean's key id format).
    pub fingerprint: String,
}

/// The private key to use: `explicit` if given, else `~/.ssh/id_ed25519`, else `~/.ssh/id_rsa`.
pub fn choose(explicit: Option<&Path>, home: Option<&Path>) -> Result<PathBuf, KeyError> {
    if let Some(p) = explicit {
        if !p.exists() {
            return Err(KeyError::MissingPrivate { path: p.to_owned() });
        }
        return Ok(p.to_owned());
    }
    let candidates: Vec<PathBuf> = home.map(keys::usual_keys).unwrap_or_default();
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| KeyError::NoDefaultKey {
            tried: if candidates.is_empty() {
                "nothing ($HOME is not set)".to_string()
            } else {
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            },
        })
}

/// Loads the public half (`<private>.pub`) and fingerprints it.
pub fn load(private: &Path) -> Result<KeyPair, KeyError> {
    let private = std::path::absolute(private).unwrap_or_else(|_| private.to_owned());
    let mut public = private.clone().into_os_string();
    public.push(".pub");
    let public = PathBuf::from(public);
    let text = std::fs::read_to_string(&public).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            KeyError::MissingPublic {
                path: public.clone(),
                private: private.clone(),
            }
        } else {
            KeyError::Read {
                path: public.clone(),
                source,
            }
        }
    })?;
    let public_line = text.trim().to_string();
    let fingerprint = md5_fingerprint(&public_line).map_err(|message| KeyError::Malformed {
        path: public,
        message,
    })?;
    Ok(KeyPair {
        private,
        public_line,
        fingerprint,
    })
}

/// MD5 of the decoded key blob, as colon-separated hex (what `ssh-keygen -l -E md5` prints after `MD5:`).
pub fn md5_fingerprint(public_line: &str) -> Result<String, String> {
    let mut words = public_line.split_whitespace();
    let kind = words.next().ok_or("the file is empty")?;
    if !kind.starts_with("ssh-") && !kind.starts_with("ecdsa-") && !kind.starts_with("sk-") {
        return Err(format!("unknown key type `{kind}`"));
    }
    let blob = words.next().ok_or("no key data after the key type")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|e| format!("key data is not base64: {e}"))?;
    let digest = Md5::digest(&bytes);
    Ok(digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with `ssh-keygen -t ed25519`; `ssh-keygen -l -E md5 -f` prints the fingerprint below.
    const PUB: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvSvZAgQLq0X/lahbxG6A5GHHNfGK8n+Zn8vzMc4alP test@pipeline";
    const FP: &str = "d3:2c:91:84:35:47:53:dc:07:5e:bd:af:07:3b:9c:8e";

    #[test]
    fn fingerprint_matches_ssh_keygen_md5() {
        assert_eq!(md5_fingerprint(PUB).unwrap(), FP);
    }

    #[test]
    fn malformed_public_keys_are_rejected_with_a_reason() {
        assert!(md5_fingerprint("").unwrap_err().contains("empty"));
        assert!(md5_fingerprint("-----BEGIN OPENSSH PRIVATE KEY-----")
            .unwrap_err()
            .contains("unknown key type"));
        assert!(md5_fingerprint("ssh-ed25519 !!!")
            .unwrap_err()
            .contains("base64"));
    }

    #[test]
    fn default_key_prefers_ed25519_then_rsa_and_names_what_it_tried() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        let err = choose(None, Some(home.path())).unwrap_err().to_string();
        assert!(
            err.contains("id_ed25519") && err.contains("id_rsa"),
            "{err}"
        );
        std::fs::write(ssh.join("id_rsa"), "k").unwrap();
        assert_eq!(choose(None, Some(home.path())).unwrap(), ssh.join("id_rsa"));
        std::fs::write(ssh.join("id_ed25519"), "k").unwrap();
        assert_eq!(
            choose(None, Some(home.path())).unwrap(),
            ssh.join("id_ed25519")
        );
    }

    #[test]
    fn missing_public_half_says_how_to_make_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "private").unwrap();
        let err = load(&key).unwrap_err().to_string();
        assert!(err.contains("ssh-keygen -y -f"), "{err}");
        std::fs::write(dir.path().join("id_ed25519.pub"), format!("{PUB}\n")).unwrap();
        let pair = load(&key).unwrap();
        assert_eq!(pair.fingerprint, FP);
        assert_eq!(pair.public_line, PUB);
    }
}
