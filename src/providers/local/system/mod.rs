//! Machine-level operations of the local provider, each small and idempotent, one file per facility:
//! overlay mounts ([`mounts`]), network namespaces, veths, nftables NAT and ip_forward ([`net`]), memory
//! cgroups ([`cgroups`]) and starting, finding and stopping the detached systemd-nspawn of a host
//! ([`nspawn`]); here the prerequisites, locks, file helpers, routes and SSH probes. Every child process
//! goes through [`Cmd`]; files go through the helpers here so errors say which path failed.

mod cgroups;
mod mounts;
mod net;
mod nspawn;

pub use self::cgroups::{cgroup_dirs, create_cgroups, has_memory_controller, remove_cgroup};
pub use self::mounts::{is_mounted, mount_overlay, unmount};
pub use self::net::{
    create_network, delete_link, delete_netns, enable_forwarding, link_exists, netns_exists,
    nft_apply, nft_delete, nft_script, restore_forwarding,
};
pub use self::nspawn::{nspawn_pids, start_machine, stop_machine};

use std::fs;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::plan::{self, Route};
use super::Error;
use crate::process::Cmd;

/// Tools the provider runs, with the Debian package that has each.
pub const TOOLS: &[(&str, &str)] = &[
    ("systemd-nspawn", "systemd-container"),
    ("debootstrap", "debootstrap"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("mount", "mount"),
    ("setsid", "util-linux"),
];

/// Everything missing for the provider to work on this machine, named all at once.
pub fn missing_prerequisites() -> Vec<String> {
    let missing_tools: Vec<&str> = TOOLS
        .iter()
        .map(|(tool, _)| *tool)
        .filter(|tool| which::which(tool).is_err())
        .collect();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    describe_missing(cfg!(target_os = "linux"), root, &missing_tools)
}

/// One line per missing prerequisite (not Linux, not root, tools with the `apt-get install` line).
pub fn describe_missing(linux: bool, root: bool, missing_tools: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    if !linux {
        missing.push("Linux (systemd-nspawn containers exist only there)".to_string());
    }
    if !root {
        missing.push("root (run as root, e.g. with sudo)".to_string());
    }
    if !missing_tools.is_empty() {
        let mut packages: Vec<&str> = Vec::new();
        for (tool, package) in TOOLS {
            if missing_tools.contains(tool) && !packages.contains(package) {
                packages.push(package);
            }
        }
        missing.push(format!(
            "{} (install with: apt-get install -y {})",
            missing_tools.join(", "),
            packages.join(" ")
        ));
    }
    missing
}

/// An exclusive `flock` on a file, released when dropped (the shared [`crate::lock::FileLock`]).
pub struct Lock {
    _lock: crate::lock::FileLock,
}

impl Lock {
    pub fn acquire(path: &Path) -> Result<Lock, Error> {
        crate::lock::FileLock::acquire(path)
            .map(|l| Lock { _lock: l })
            .map_err(|e| Error::io(format!("lock {}", path.display()), e))
    }
}

pub fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("create directory {}", dir.display()), e))
}

pub fn remove_dir_all(dir: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

pub fn remove_file(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// Writes `bytes` atomically with `mode`.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    crate::fsutil::write_atomic(path, bytes, mode)
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

pub fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("set permissions of {}", path.display()), e))
}

/// The machine's IPv4 routes in all tables.
pub fn routes() -> Result<Vec<Route>, Error> {
    let out = Cmd::new("list the machine's routes", "ip")
        .args(["-j", "-4", "route", "show", "table", "all"])
        .run()?;
    plan::parse_routes(&out.stdout).map_err(Error::Unexpected)
}

/// The last `n` lines of a log file (empty when unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Ssh options for the provider's own probes: fresh hosts, so no known_hosts bookkeeping.
pub fn ssh(key: &Path, ip: Ipv4Addr, action: String, remote: &str) -> Cmd {
    Cmd::new(action, "ssh")
        .install_hint("; install it with: apt-get install openssh-client")
        .arg("-i")
        .arg(key)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=3",
        ])
        .arg(format!("root@{ip}"))
        .arg(remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_prerequisites_are_named_together_with_the_packages_to_install() {
        let all = describe_missing(
            false,
            false,
            &["systemd-nspawn", "nft", "ssh", "ssh-keygen"],
        );
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(
            all[0].contains("Linux") && all[1].contains("root"),
            "{all:?}"
        );
        assert!(
            all[2].starts_with("systemd-nspawn, nft, ssh, ssh-keygen "),
            "{all:?}"
        );
        assert!(
            all[2].ends_with("apt-get install -y systemd-container nftables openssh-client)"),
            "{all:?}"
        );
        assert!(describe_missing(true, true, &[]).is_empty());
    }
}
