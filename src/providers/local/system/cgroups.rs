//! The cgroups a host's container runs in: creating them (with a memory limit), and removing them.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::create_dir;
use crate::providers::local::Error;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroups a host's container runs in, one per hierarchy systemd uses, plus the v1 memory hierarchy
/// (and, without a unified hierarchy, the v1 cpuacct one) whether or not the host has a memory limit, so
/// the container's own memory and CPU use can be read (see `canary::cgroup`): `<hierarchy>/pipeline/<machine>`.
/// Each container needs its own: nspawn puts the container into `payload/` below its *current* cgroup, so
/// containers started from the same cgroup would share every unit's cgroup with each other.
pub fn cgroup_dirs(machine: &str) -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        return vec![root.join("pipeline").join(machine)];
    }
    let mut dirs: Vec<PathBuf> = ["systemd", "unified"]
        .iter()
        .map(|h| root.join(h))
        .filter(|h| h.join("cgroup.procs").exists())
        .map(|h| h.join("pipeline").join(machine))
        .collect();
    let unified = root.join("unified/cgroup.procs").exists();
    for (hierarchy, file, wanted) in [
        ("memory", "memory.usage_in_bytes", true),
        ("cpuacct", "cpuacct.usage", !unified),
    ] {
        if wanted && root.join(hierarchy).join(file).exists() {
            dirs.push(root.join(hierarchy).join("pipeline").join(machine));
        }
    }
    dirs
}

/// Whether `dir` (from [`cgroup_dirs`]) can carry a memory limit.
pub fn has_memory_controller(dir: &Path) -> bool {
    let root = Path::new(CGROUP_ROOT);
    dir.starts_with(root.join("memory")) || root.join("cgroup.controllers").exists()
}

/// Creates the cgroups; with `memory_limit`, sets it (and no swap beyond it, where the kernel allows)
/// on those that have the memory controller.
pub fn create_cgroups(dirs: &[PathBuf], memory_limit: Option<u64>) -> Result<(), Error> {
    let v2 = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
    for dir in dirs {
        let parent = dir.parent().expect("cgroup dir has a parent");
        create_dir(parent)?;
        if v2 && memory_limit.is_some() {
            // Let the root and our parent group hand the memory controller down.
            let _ = fs::write(
                Path::new(CGROUP_ROOT).join("cgroup.subtree_control"),
                "+memory",
            );
            let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory");
        }
        create_dir(dir)?;
        let Some(bytes) = memory_limit.filter(|_| has_memory_controller(dir)) else {
            continue;
        };
        let (limit, swap, swap_value) = if v2 {
            ("memory.max", "memory.swap.max", "0".to_string())
        } else {
            (
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                bytes.to_string(),
            )
        };
        fs::write(dir.join(limit), bytes.to_string())
            .map_err(|e| Error::io(format!("set the memory limit in {}", dir.display()), e))?;
        let _ = fs::write(dir.join(swap), swap_value);
    }
    Ok(())
}

/// Removes a cgroup directory and the groups systemd made inside it (deepest first), after ending any
/// process still in them (see [`crate::providers::local::cgroup::end_processes`]).
pub fn remove_cgroup(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    let host = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    crate::providers::local::cgroup::end_processes(
        host.as_deref().unwrap_or("?"),
        &[dir.to_path_buf()],
    )?;
    let dirs = crate::providers::local::cgroup::tree(dir);
    for d in dirs.iter().rev() {
        match fs::remove_dir(d) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(Error::io(format!("remove cgroup {}", d.display()), e))
            }
            _ => {}
        }
    }
    // The shared `pipeline` parent goes with the last host (it is busy while others use it).
    if let Some(parent) = dir.parent() {
        let _ = fs::remove_dir(parent);
    }
    Ok(())
}
