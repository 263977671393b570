//! Real SIGINT/SIGTERM sent to the real binary while it runs a playbook: the child ansible-playbook (here
//! a stand-in script on PATH that forks a `sleep` ignoring SIGINT, as background jobs of a shell do) and
//! everything in its process group are stopped, the run directory holding vars.json is removed, the report
//! says so, and the exit code is 130 or 143. Also: a closed stdout/stderr never makes the binary panic.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const FAKE_ANSIBLE: &str = "#!/bin/sh\n\
echo $$ > \"$FAKE_ANSIBLE_PIDS/leader\"\n\
sleep 300 &\n\
echo $! > \"$FAKE_ANSIBLE_PIDS/sleep\"\n\
wait\n";

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let fake = bin.join("ansible-playbook");
        std::fs::write(&fake, FAKE_ANSIBLE).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("pids")).unwrap();
        std::fs::write(
            dir.path().join("inventory.ini"),
            "[itrust]\nitrust ansible_host=127.0.0.1\n\n[monitor]\nmonitor ansible_host=127.0.0.1\n\n\
             [checkbox]\ncheckbox ansible_host=127.0.0.1\n",
        )
        .unwrap();
        Scratch { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn pid(&self, which: &str) -> Option<i32> {
        std::fs::read_to_string(self.path().join("pids").join(which))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn run_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path().join(".pipeline"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("run-"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether a process exists and has not exited (a zombie has).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Runs `pipeline ARGS` with the stand-in ansible-playbook, sends `signal` once it runs, and returns the
/// exit code and stderr.
fn interrupt(scratch: &Scratch, args: &[&str], signal: i32) -> (Option<i32>, String) {
    let path = format!(
        "{}:{}",
        scratch.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = crate::support::pipeline(scratch.path())
        .args(args)
        .env("PATH", path)
        .env("FAKE_ANSIBLE_PIDS", scratch.path().join("pids"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while scratch.pid("sleep").is_none() {
        assert!(Instant::now() < deadline, "the playbook never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(scratch.run_dirs().len(), 1, "the run directory exists");
    // SAFETY: kill with a PID of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !waiter.is_finished() {
        assert!(
            Instant::now() < deadline,
            "pipeline did not exit after the signal"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = waiter.join().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_stopped_and_cleaned(scratch: &Scratch, stderr: &str, signal: &str) {
    let leader = scratch.pid("leader").unwrap();
    let sleep = scratch.pid("sleep").unwrap();
    assert!(!alive(leader), "ansible-playbook {leader} still runs");
    assert!(
        !alive(sleep),
        "its child {sleep} (same process group) still runs"
    );
    assert_eq!(
        scratch.run_dirs(),
        Vec::<PathBuf>::new(),
        "run directory left"
    );
    assert!(
        stderr.contains(&format!("interrupted by {signal}")),
        "{stderr}"
    );
    assert!(stderr.contains("stopped:"), "{stderr}");
    assert!(stderr.contains("removed run directory"), "{stderr}");
    assert!(
        stderr.contains("left behind: nothing this run created"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn sigint_to_deploy_stops_ansible_playbooks_process_group_removes_the_run_dir_and_exits_130() {
    let scratch = Scratch::new();
    let (code, stderr) = interrupt(
        &scratch,
        &["deploy", "itrust", "-i", "inventory.ini"],
        libc::SIGINT,
    );
    assert_eq!(code, Some(130), "{stderr}");
    assert_stopped_and_cleaned(&scratch, &stderr, "SIGINT");
    assert!(stderr.contains("stopped by SIGINT part-way"), "{stderr}");
}

#[test]
fn sigterm_to_monitor_setup_stops_ansible_playbook_removes_the_run_dir_and_exits_143() {
    let scratch = Scratch::new();
    let (code, stderr) = interrupt(
        &scratch,
        &["monitor-setup", "-i", "inventory.ini"],
        libc::SIGTERM,
    );
    assert_eq!(code, Some(143), "{stderr}");
    assert_stopped_and_cleaned(&scratch, &stderr, "SIGTERM");
}

/// Runs the binary with stdout and stderr the write end of a pipe whose read end is already closed.
fn run_with_closed_output(args: &[&str], dir: &Path) -> std::process::ExitStatus {
    let mut fds = [0i32; 2];
    // SAFETY: pipe writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: closing the read end we own; writes to the other end now fail with EPIPE.
    unsafe { libc::close(fds[0]) };
    use std::os::fd::FromRawFd;
    // SAFETY: fds[1] is an open descriptor we own; dup keeps one for each stream.
    let (out, err) = unsafe {
        (
            std::fs::File::from_raw_fd(libc::dup(fds[1])),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    crate::support::pipeline(dir)
        .args(args)
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .status()
        .unwrap()
}

#[test]
fn a_closed_stdout_and_stderr_never_make_the_binary_panic() {
    let scratch = Scratch::new();
    // An error message (missing inventory), a listing on stdout, and help text.
    for args in [
        &["deploy", "itrust", "-i", "missing.ini"][..],
        &["roles", "list"][..],
        &["prod", "status", "--provider", "local", "--env", "nothere"][..],
    ] {
        let status = run_with_closed_output(args, scratch.path());
        assert_ne!(status.code(), Some(101), "{args:?} panicked");
        assert!(status.code().is_some(), "{args:?} died of {status:?}");
    }
}
