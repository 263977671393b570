//! e2e: a real SIGINT sent to the real `pipeline demo` process while its first deploy runs, on local
//! sandbox hosts (environment `e2e-dsig`). The demo stops its child ansible-playbook (the process group),
//! removes the run directory with `vars.json` as an error would, names what it leaves behind (the prod
//! hosts, which stay by design, with the command that destroys them) and exits 130.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::common;

fn env() -> String {
    common::test_env("dsig")
}

/// Destroys the environment's hosts when the test ends, whatever happened.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        common::down(&env());
    }
}

/// The state dir's `run-*` directories (one per ansible-playbook run in progress).
fn run_dirs(state_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state_dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose command line names `needle` (the demo's children name its state dir).
fn processes_naming(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .filter_map(|e| {
                    let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    cmdline
                        .contains(needle)
                        .then(|| format!("{} {cmdline}", e.file_name().to_string_lossy()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn demo_sigint_during_a_deploy_stops_ansible_removes_its_run_dir_names_the_kept_hosts_and_exits_130(
) {
    let _down = Down;
    let work = common::work_root().join(env());
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let state_dir = work.join(".pipeline");
    let mut child = Command::new(common::pipeline())
        .arg("--state-dir")
        .arg(&state_dir)
        .args([
            "demo",
            "--prod-env",
            &env(),
            "--canary-env",
            &common::test_env("dsig-canary"),
            "--duration",
            "10s",
        ])
        .current_dir(&work)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pipeline demo runs");
    let log = Arc::new(Mutex::new(String::new()));
    let (deploying, wait_deploy) = mpsc::channel();
    let reader = {
        let log = log.clone();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains("demo [2/4]") {
                    let _ = deploying.send(());
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        })
    };
    if wait_deploy.recv_timeout(Duration::from_secs(900)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the demo never reached its first deploy:\n{}",
            log.lock().unwrap()
        );
    }
    // Wait until ansible-playbook really runs: its run directory exists and a child names the state dir.
    let needle = state_dir.display().to_string();
    let started = Instant::now();
    while run_dirs(&state_dir).is_empty() || processes_naming(&needle).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no ansible-playbook run started within 120 s of stage 2:\n{}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !processes_naming(&needle).is_empty(),
        "ansible-playbook is running before the signal"
    );

    // SAFETY: kill with the PID of our own child, which has not been waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "pipeline demo did not exit within 120 s of SIGINT:\n{}",
                log.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    reader.join().unwrap();
    let stderr = log.lock().unwrap().clone();
    assert_eq!(
        status.code(),
        Some(130),
        "exit code after SIGINT:\n{stderr}"
    );
    // Give the killed process group a moment to be reaped, then nothing of the run may be left.
    std::thread::sleep(Duration::from_secs(1));
    let left = processes_naming(&needle);
    assert!(
        left.is_empty(),
        "processes left running: {left:#?}\n{stderr}"
    );
    let dirs = run_dirs(&state_dir);
    assert!(dirs.is_empty(), "run directories left: {dirs:?}\n{stderr}");
    assert!(
        stderr.contains("removed run directory"),
        "the run says it removed the run directory:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "pipeline prod down --provider local --env {}",
            env()
        )),
        "the run names the kept prod hosts and how to destroy them:\n{stderr}"
    );
}
