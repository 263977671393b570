//! Overlay mounts of a host's root over the base image, and reading /proc/self/mountinfo.

use std::fs;
use std::path::Path;

use crate::process::Cmd;
use crate::providers::local::state::HostRecord;
use crate::providers::local::Error;

/// Whether `path` is a mount point (per /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> Result<bool, Error> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    let want = path.to_string_lossy();
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mount(m) == want))
}

/// Decodes the octal escapes (`\040` for a space) mountinfo uses.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn mount_overlay(lower: &Path, h: &HostRecord) -> Result<(), Error> {
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        h.upper().display(),
        h.work().display()
    );
    Cmd::new(
        format!("mount the overlay root of host {}", h.name),
        "mount",
    )
    .args(["-t", "overlay", "overlay", "-o", &opts])
    .arg(h.root())
    .run()?;
    Ok(())
}

pub fn unmount(path: &Path) -> Result<(), Error> {
    if !is_mounted(path)? {
        return Ok(());
    }
    Cmd::new(format!("unmount {}", path.display()), "umount")
        .arg(path)
        .run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mount(r"/a\040b/root"), "/a b/root");
        assert_eq!(unescape_mount("/plain"), "/plain");
        assert_eq!(unescape_mount(r"/end\04"), r"/end\04");
    }
}
