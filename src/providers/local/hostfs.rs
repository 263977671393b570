//! The files written into a host's root (through its mounted overlay) before it boots: hostname, hosts,
//! machine id, resolv.conf, root's authorized key, SSH host keys kept per (environment, host), and the
//! machine's extra CA certificates.

use std::fs;
use std::path::Path;

use super::{plan, system, Error};
use crate::process::Cmd;

/// What every host of one `up` shares.
pub struct HostContext {
    /// The public key line root accepts.
    pub pubkey: String,
    pub resolv_conf: String,
    /// The machine's CA bundle (PEM); certificates in it that the host lacks are added.
    pub machine_cas: String,
    /// The base image new hosts are made from.
    pub base_id: String,
}

/// Writes the per-host files into `root`. `kept_keys` holds the host's SSH host keys (`etc/ssh/…`),
/// generated there on first use and copied into every new overlay of the host.
pub fn configure(
    root: &Path,
    name: &str,
    kept_keys: &Path,
    ctx: &HostContext,
) -> Result<(), Error> {
    system::write_file(
        &root.join("etc/hostname"),
        format!("{name}\n").as_bytes(),
        0o644,
    )?;
    system::write_file(
        &root.join("etc/hosts"),
        format!(
            "127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        .as_bytes(),
        0o644,
    )?;
    let machine_id = root.join("etc/machine-id");
    if fs::read_to_string(&machine_id)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        let uuid = fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map_err(|e| Error::io("read a random machine id", e))?;
        system::write_file(
            &machine_id,
            format!("{}\n", uuid.trim().replace('-', "")).as_bytes(),
            0o444,
        )?;
    }
    system::write_file(
        &root.join("etc/resolv.conf"),
        ctx.resolv_conf.as_bytes(),
        0o644,
    )?;
    authorize_key(root, &ctx.pubkey)?;
    install_host_keys(root, name, kept_keys)?;
    add_machine_cas(root, &ctx.machine_cas)
}

/// Adds `pubkey` to root's authorized_keys in the host root (once).
pub fn authorize_key(root: &Path, pubkey: &str) -> Result<(), Error> {
    let dir = root.join("root/.ssh");
    system::create_dir(&dir)?;
    system::set_mode(&dir, 0o700)?;
    let file = dir.join("authorized_keys");
    let mut text = fs::read_to_string(&file).unwrap_or_default();
    if !text.lines().any(|l| l.trim() == pubkey) {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(pubkey);
        text.push('\n');
        system::write_file(&file, text.as_bytes(), 0o600)?;
    }
    Ok(())
}

fn install_host_keys(root: &Path, name: &str, kept: &Path) -> Result<(), Error> {
    let etc_ssh = root.join("etc/ssh");
    if etc_ssh.join("ssh_host_ed25519_key").exists() {
        return Ok(());
    }
    let kept_ssh = kept.join("etc/ssh");
    if !kept_ssh.join("ssh_host_ed25519_key").exists() {
        crate::fsutil::ensure_private_dir(&kept_ssh)
            .map_err(|e| Error::io(format!("create {}", kept_ssh.display()), e))?;
        Cmd::new(
            format!("generate SSH host keys for host {name}"),
            "ssh-keygen",
        )
        .arg("-A")
        .arg("-f")
        .arg(kept)
        .run()?;
    }
    let entries = fs::read_dir(&kept_ssh)
        .map_err(|e| Error::io(format!("list {}", kept_ssh.display()), e))?;
    for e in entries.flatten() {
        // fs::copy keeps the mode: 0600 private keys, 0644 public ones.
        fs::copy(e.path(), etc_ssh.join(e.file_name())).map_err(|err| {
            Error::io(format!("copy {} into host {name}", e.path().display()), err)
        })?;
    }
    Ok(())
}

/// Appends the machine's CA certificates the host lacks to its bundle, and keeps them in
/// /usr/local/share/ca-certificates so a later `update-ca-certificates` on the host keeps them too.
fn add_machine_cas(root: &Path, machine_cas: &str) -> Result<(), Error> {
    let bundle = root.join("etc/ssl/certs/ca-certificates.crt");
    let mut text = fs::read_to_string(&bundle).unwrap_or_default();
    let extra = plan::extra_cas(machine_cas, &text);
    if extra.is_empty() {
        return Ok(());
    }
    let local_cas = root.join("usr/local/share/ca-certificates");
    system::create_dir(&local_cas)?;
    for pem in &extra {
        let file = local_cas.join(format!(
            "pipeline-machine-{:016x}.crt",
            plan::fnv1a(pem.as_bytes())
        ));
        system::write_file(&file, pem.as_bytes(), 0o644)?;
        text.push_str(pem);
    }
    system::write_file(&bundle, text.as_bytes(), 0o644)
}

/// The resolv.conf hosts get (the machine's, or systemd-resolved's upstream list behind a stub).
pub fn resolv_conf() -> Result<String, Error> {
    let etc = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let upstream = fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
    plan::choose_resolv_conf(&etc, upstream.as_deref()).ok_or_else(|| {
        Error::Unexpected(
            "no usable nameserver for the sandbox hosts: /etc/resolv.conf lists only loopback resolvers and /run/systemd/resolve/resolv.conf has none either".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const PROXY_CA: &str = "-----BEGIN CERTIFICATE-----\nPPPP\n-----END CERTIFICATE-----\n";

    /// A root that looks like the base image, with host keys already there (no ssh-keygen run).
    fn fake_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("etc/ssh")).unwrap();
        fs::create_dir_all(r.join("etc/ssl/certs")).unwrap();
        fs::write(r.join("etc/ssh/ssh_host_ed25519_key"), "k").unwrap();
        fs::write(r.join("etc/ssl/certs/ca-certificates.crt"), CA).unwrap();
        fs::write(r.join("etc/machine-id"), "").unwrap();
        dir
    }

    fn ctx() -> HostContext {
        HostContext {
            pubkey: "ssh-ed25519 AAAAC3 test".into(),
            resolv_conf: "nameserver 10.0.0.2\n".into(),
            machine_cas: format!("{CA}{PROXY_CA}"),
            base_id: "base-x".into(),
        }
    }

    #[test]
    fn configure_names_the_host_authorizes_the_key_once_and_adds_missing_cas_once() {
        let dir = fake_root();
        let r = dir.path();
        let kept = dir.path().join("kept");
        configure(r, "itrust", &kept, &ctx()).unwrap();
        configure(r, "itrust", &kept, &ctx()).unwrap();

        assert_eq!(
            fs::read_to_string(r.join("etc/hostname")).unwrap(),
            "itrust\n"
        );
        assert!(fs::read_to_string(r.join("etc/hosts"))
            .unwrap()
            .contains("127.0.1.1\titrust"));
        let id = fs::read_to_string(r.join("etc/machine-id")).unwrap();
        assert_eq!(id.trim().len(), 32, "{id}");
        assert_eq!(
            fs::read_to_string(r.join("etc/resolv.conf")).unwrap(),
            "nameserver 10.0.0.2\n"
        );

        let keys = fs::read_to_string(r.join("root/.ssh/authorized_keys")).unwrap();
        assert_eq!(keys, "ssh-ed25519 AAAAC3 test\n");
        let mode = |p: &str| fs::metadata(r.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("root/.ssh"), 0o700);
        assert_eq!(mode("root/.ssh/authorized_keys"), 0o600);

        let bundle = fs::read_to_string(r.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
        assert_eq!(bundle, format!("{CA}{PROXY_CA}"));
        assert_eq!(
            fs::read_dir(r.join("usr/local/share/ca-certificates"))
                .unwrap()
                .count(),
            1
        );
        assert!(!kept.exists(), "host keys present: none generated");
    }

    #[test]
    fn authorize_key_keeps_existing_keys() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("root/.ssh")).unwrap();
        fs::write(
            dir.path().join("root/.ssh/authorized_keys"),
            "ssh-rsa OTHER",
        )
        .unwrap();
        authorize_key(dir.path(), "ssh-ed25519 NEW").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("root/.ssh/authorized_keys")).unwrap(),
            "ssh-rsa OTHER\nssh-ed25519 NEW\n"
        );
    }
}
