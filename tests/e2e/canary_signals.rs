//! e2e: real SIGTERM and SIGINT sent to the real `pipeline canary` process during its load phase, on local
//! sandbox hosts (blue, green, proxy: `canary.rs`'s environment `e2e-canary` and fixture, whose tests
//! leave the hosts running for these). The run stops at once, its cleanup runs as
//! after an error, and the exit code is 143 (SIGTERM) or 130 (SIGINT):
//! - with `--keep` the hosts stay and the run says how to destroy them;
//! - without it the canary destroys its hosts: nothing of the environment is left on the machine (state,
//!   containers, network namespaces, cgroups, veths, nftables), and no nginx, pm2 or node process of its
//!   hosts outlives them.
//!
//! The first test reuses the hosts of `canary.rs` (or builds them, when run alone) and keeps them, the
//! second reuses and destroys them, the last makes sure nothing is left whatever failed before (libtest
//! runs tests in name order, hence the numbers, and `canary::` before `canary_signals::`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::canary::{env, fixture};
use super::common::{self, CanaryFixture as Fixture};

/// `pipeline canary master master` with a 60 s window (the signal comes long before its end).
fn canary(f: &Fixture, report: &str, keep: bool) -> Command {
    let mut cmd = Command::new(common::pipeline());
    cmd.arg("--config")
        .arg(&f.config)
        .arg("--state-dir")
        .arg(&f.state_dir)
        .args([
            "canary",
            "master",
            "master",
            "--provider",
            "local",
            "--env",
            &env(),
            "--repo",
        ])
        .arg(&f.repo)
        .args([
            "--duration",
            "60s",
            "--warmup",
            "2s",
            "--rate",
            "50",
            "--report-dir",
        ])
        .arg(f.reports.join(report));
    if keep {
        cmd.arg("--keep");
    }
    cmd
}

/// What a signalled run did: its exit code, its stderr, and how long it took to exit after the signal.
struct Stopped {
    code: Option<i32>,
    stderr: String,
    exit_after: Duration,
}

/// Starts `cmd`, waits for the load stage and 4 s into it (2 s of warm-up, 2 s of judged load), calls
/// `before_signal`, sends `signal` to the process and waits for it to exit.
fn interrupt_during_the_load(
    mut cmd: Command,
    signal: i32,
    before_signal: impl FnOnce(),
) -> Stopped {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child: Child = cmd.spawn().expect("pipeline runs");
    let log = Arc::new(Mutex::new(String::new()));
    let (load_started, wait_load) = mpsc::channel();
    let reader = {
        let log = log.clone();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains("[5/6]") {
                    let _ = load_started.send(());
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        })
    };
    // A first run builds the hosts: Node.js, npm, pm2 and nginx take minutes on a loaded machine.
    if wait_load.recv_timeout(Duration::from_secs(1500)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the load never started:\n{}", log.lock().unwrap());
    }
    std::thread::sleep(Duration::from_secs(4));
    before_signal();
    // SAFETY: kill with the PID of our own child, which has not been waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let signalled = Instant::now();
    let deadline = signalled + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "pipeline did not exit within 300 s of the signal:\n{}",
                log.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let exit_after = signalled.elapsed();
    reader.join().unwrap();
    let stderr = log.lock().unwrap().clone();
    Stopped {
        code: status.code(),
        stderr,
        exit_after,
    }
}

/// Processes named `names` whose cgroup lies under one of the environment's machines.
fn processes_of_the_hosts(names: &[&str]) -> Vec<String> {
    let machine = format!("pipeline-{}-", env());
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .filter_map(|e| {
                    let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                    let cgroup = std::fs::read_to_string(e.path().join("cgroup")).ok()?;
                    let comm = comm.trim();
                    let named = names.iter().any(|n| comm.starts_with(n));
                    (named && cgroup.contains(&machine)).then(|| {
                        format!(
                            "{} {comm}: {}",
                            e.file_name().to_string_lossy(),
                            cgroup.trim()
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

const HOST_PROGRAMS: [&str; 3] = ["nginx", "PM2", "node"];

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_signals_1_sigterm_during_the_load_with_keep_stops_and_exits_143_keeping_the_hosts() {
    let f = fixture();
    let run = interrupt_during_the_load(canary(f, "sigterm", true), libc::SIGTERM, || {});
    let log = &run.stderr;
    assert_eq!(run.code, Some(143), "{log}");
    assert!(log.contains("interrupted by SIGTERM"), "{log}");
    assert!(
        log.contains("canary: keeping blue, green and proxy"),
        "{log}"
    );
    assert!(
        log.contains("left behind:") && log.contains("canary hosts blue, green and proxy"),
        "the kept hosts are named with how to destroy them:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    // The 60 s window was cut short: the load stopped at the signal, not at the end of its window.
    assert!(
        run.exit_after < Duration::from_secs(30),
        "took {:?} to exit:\n{log}",
        run.exit_after
    );
    let state = common::state(&env()).expect("the kept hosts have a state");
    let mut hosts: Vec<&str> = state.hosts.keys().map(String::as_str).collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["blue", "green", "proxy"], "{log}");
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_signals_2_sigint_during_the_load_destroys_the_hosts_and_exits_130() {
    let f = fixture();
    let mut before = None;
    let mut running = Vec::new();
    let run = interrupt_during_the_load(canary(f, "sigint", false), libc::SIGINT, || {
        before = common::state(&env());
        running = processes_of_the_hosts(&HOST_PROGRAMS);
    });
    let log = &run.stderr;
    assert_eq!(run.code, Some(130), "{log}");
    let before = before.expect("the hosts have a state during the load");
    assert_eq!(before.hosts.len(), 3, "{before:?}");
    assert!(
        running.iter().any(|p| p.contains("nginx")) && running.iter().any(|p| p.contains("PM2")),
        "the check sees the hosts' nginx and pm2 while they run: {running:?}"
    );
    assert!(log.contains("interrupted by SIGINT"), "{log}");
    assert!(
        log.contains("canary: destroying blue, green and proxy"),
        "{log}"
    );
    assert!(
        log.contains("destroyed the canary hosts blue, green and proxy"),
        "{log}"
    );
    assert!(!log.contains("could not destroy"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(common::leftovers(&before), Vec::<String>::new(), "{log}");
    assert_eq!(
        processes_of_the_hosts(&HOST_PROGRAMS),
        Vec::<String>::new(),
        "host processes outlived the teardown:\n{log}"
    );
    // `pipeline prod status` agrees: nothing in the environment.
    let status = common::prod_cmd(&env(), "status")
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !["blue", "green", "proxy"]
            .iter()
            .any(|h| status.stdout.contains(h)),
        "prod status still lists hosts:\n{}",
        status.stdout
    );
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_signals_9_hosts_are_gone_at_the_end() {
    let _ = common::down(&env());
    let state = common::state(&env());
    assert!(
        state.as_ref().is_none_or(|s| s.hosts.is_empty()),
        "hosts left in environment {}: {state:?}",
        env()
    );
}
