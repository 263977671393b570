//! Ending every process in a host's cgroups before they are removed. A container whose systemd-nspawn is
//! gone (killed `up`, crashed supervisor) can leave its systemd, journald, dbus, logind and sshd running,
//! reparented to PID 1; their cgroups then refuse removal with EBUSY. [`end_processes`] reads
//! `cgroup.procs` of each recorded cgroup and every group below it, sends SIGTERM, repeats until the
//! groups are empty, escalates to SIGKILL, and finally uses `cgroup.kill` where the kernel has it (5.14+).
//! Every step is bounded; what still runs at the end is named in the error.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Error;

/// How long processes get to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);
/// How long SIGKILL (re-sent each round, for processes forked meanwhile) may take.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// Pause between rounds.
const ROUND: Duration = Duration::from_millis(100);

/// `dir` and every cgroup below it, parents before children.
pub(super) fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        if let Ok(rd) = fs::read_dir(&dirs[i]) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(e.path());
                }
            }
        }
        i += 1;
    }
    dirs
}

/// The PIDs in `dirs` and every group below them (our own PID never: we are not in a container's group).
pub fn processes(dirs: &[PathBuf]) -> Vec<i32> {
    // SAFETY: getpid has no preconditions and cannot fail.
    let me = unsafe { libc::getpid() };
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter(|d| d.exists())
        .flat_map(|d| tree(d))
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .filter(|p| *p > 1 && *p != me)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn signal_all(pids: &[i32], sig: i32) {
    for p in pids {
        // SAFETY: kill has no memory-safety preconditions; the PIDs were just read from our cgroups.
        unsafe {
            libc::kill(*p, sig);
        }
    }
}

/// Signals what runs in `dirs` with `sig` each round until the groups are empty or `grace` is over.
fn rounds(dirs: &[PathBuf], sig: i32, grace: Duration) -> Vec<i32> {
    let deadline = Instant::now() + grace;
    loop {
        let pids = processes(dirs);
        if pids.is_empty() || Instant::now() >= deadline {
            return pids;
        }
        signal_all(&pids, sig);
        std::thread::sleep(ROUND);
    }
}

/// A process's command name, for the error.
fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Ends every process in the host's cgroups `dirs` (and the groups below them): SIGTERM until empty for a
/// few seconds, then SIGKILL, then `cgroup.kill`. A no-op when they are already empty or gone.
pub fn end_processes(host: &str, dirs: &[PathBuf]) -> Result<(), Error> {
    if processes(dirs).is_empty() {
        return Ok(());
    }
    if rounds(dirs, libc::SIGTERM, TERM_GRACE).is_empty() {
        return Ok(());
    }
    let left = rounds(dirs, libc::SIGKILL, KILL_GRACE);
    if left.is_empty() {
        return Ok(());
    }
    // Last resort (cgroup v2, Linux 5.14+): the kernel kills the whole subtree at once.
    for d in dirs {
        let _ = fs::write(d.join("cgroup.kill"), "1");
    }
    let left = rounds(dirs, libc::SIGKILL, Duration::from_secs(2));
    if left.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = left.iter().map(|p| format!("{p} ({})", comm(*p))).collect();
    Err(Error::Unexpected(format!(
        "host {host}: processes {} in its cgroups ({}) survived SIGTERM, SIGKILL and cgroup.kill; \
         look at them with `ps -o pid,stat,cmd -p {}`, end them, then run `pipeline prod down` again",
        named.join(", "),
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        left.iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_read_from_every_group_below_and_missing_groups_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("pipeline-t-web");
        let deep = top.join("payload/system.slice/sshd.service");
        fs::create_dir_all(&deep).unwrap();
        fs::write(top.join("cgroup.procs"), "4242\n").unwrap();
        fs::write(deep.join("cgroup.procs"), "4243\n4242\n1\n").unwrap();
        assert_eq!(processes(std::slice::from_ref(&top)), vec![4242, 4243]);
        assert!(processes(&[dir.path().join("gone")]).is_empty());
        end_processes("web", &[dir.path().join("gone")]).unwrap();
    }

    #[test]
    #[ignore = "needs root and a writable cgroup hierarchy; run with --ignored as root"]
    fn processes_that_ignore_sigterm_in_a_real_cgroup_are_killed_and_the_group_empties() {
        let root = [
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup/systemd",
            "/sys/fs/cgroup",
        ]
        .iter()
        .map(Path::new)
        .find(|r| r.join("cgroup.procs").exists())
        .expect("a cgroup hierarchy");
        let dir = root.join(format!("pipeline-cgtest-{}", std::process::id()));
        fs::create_dir_all(dir.join("payload")).unwrap();
        let procs = dir.join("payload/cgroup.procs");
        // A shell that ignores SIGTERM (so does its background child) moves itself into the group.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}; trap '' TERM; sleep 300 & wait",
                procs.display()
            ))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while processes(std::slice::from_ref(&dir)).len() < 2 {
            assert!(
                Instant::now() < deadline,
                "processes never joined the group"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let waiter = std::thread::spawn(move || child.wait());
        let started = Instant::now();
        end_processes("test", std::slice::from_ref(&dir)).unwrap();
        assert!(
            started.elapsed() >= TERM_GRACE,
            "SIGTERM alone cannot have ended them"
        );
        assert!(processes(std::slice::from_ref(&dir)).is_empty());
        waiter.join().unwrap().unwrap();
        fs::remove_dir(dir.join("payload")).unwrap();
        fs::remove_dir(&dir).unwrap();
    }
}
