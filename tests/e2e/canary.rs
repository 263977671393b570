//! e2e: `pipeline canary` on local sandbox hosts (environment `e2e-canary`: blue, green, proxy) with the
//! bundled preview service turned into a git repository (branches master, broken, slow, hang, cpu). The stand-in
//! enforces the real service's contract (a survey without its JSON5 header is a 500), so the default body
//! is checked against it too.
//!
//! The hosts are built by the first test and kept (`--keep`) for the next ones, and then for
//! `canary_signals.rs` (same environment and fixture), whose SIGINT test runs without `--keep`, so the
//! canary itself destroys them, and whose last test makes sure nothing is left whatever failed before
//! (`common::teardown` too). libtest runs tests in name order, hence the numbers (`canary_3a` sorts after
//! `canary_3_` and before `canary_4`; `canary::` sorts before `canary_signals::`). Load windows are short
//! (15 s) to keep CI fast.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{self, CanaryFixture as Fixture};

/// The environment of the canary's hosts, shared with `canary_signals.rs`.
pub fn env() -> String {
    common::test_env(SUFFIX)
}

/// The suffix of [`env`] (`common::teardown` destroys what a failed run left).
pub const SUFFIX: &str = "canary";

/// A state directory and the example repository in `target/e2e-work/<env>`, shared by these tests and
/// `canary_signals.rs` (one repository: the arms' commits stay the same, so a redeploy changes little).
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::new(&env()))
}

fn pipeline(
    f: &Fixture,
    baseline: &str,
    canary: &str,
    report: &str,
    duration: &str,
    keep: bool,
) -> Command {
    pipeline_with(f, baseline, canary, report, duration, keep, "8")
}

fn pipeline_with(
    f: &Fixture,
    baseline: &str,
    canary: &str,
    report: &str,
    duration: &str,
    keep: bool,
    concurrency: &str,
) -> Command {
    let mut cmd = Command::new(common::pipeline());
    cmd.arg("--config")
        .arg(&f.config)
        .arg("--state-dir")
        .arg(&f.state_dir)
        .args([
            "canary",
            baseline,
            canary,
            "--provider",
            "local",
            "--env",
            &env(),
            "--repo",
        ])
        .arg(&f.repo)
        .args([
            "--duration",
            duration,
            "--warmup",
            "2s",
            "--rate",
            "100",
            "--concurrency",
            concurrency,
            "--report-dir",
        ])
        .arg(f.reports.join(report));
    if keep {
        cmd.arg("--keep");
    }
    cmd
}

/// The exit code and the report's `report.json`.
fn run(mut cmd: Command, report: &Path) -> (i32, Value) {
    let out = cmd.output().expect("pipeline runs");
    let code = out.status.code().unwrap_or(-1);
    let text = std::fs::read_to_string(report.join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report.json in {} ({e}); exit {code}\nstdout:\n{}\nstderr:\n{}",
            report.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let report: Value = serde_json::from_str(&text).expect("report.json is JSON");
    crate::shared::report_schema::assert_valid(&report);
    (code, report)
}

fn classification<'a>(report: &'a Value, metric: &str) -> &'a str {
    report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == metric)
        .unwrap_or_else(|| panic!("no metric {metric} in the report"))["classification"]
        .as_str()
        .unwrap()
}

fn assert_report_files(dir: &Path) {
    for file in [
        "report.json",
        "report.md",
        "report.html",
        "samples.json",
        "deploy.json",
        "hosts.json",
    ] {
        let path = dir.join(file);
        assert!(
            path.metadata().map(|m| m.len() > 0).unwrap_or(false),
            "{} is missing or empty",
            path.display()
        );
    }
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_1_master_against_broken_fails_on_error_rate_and_response_size() {
    let f = fixture();
    let dir = f.reports.join("broken");
    let (code, report) = run(pipeline(f, "master", "broken", "broken", "15s", true), &dir);
    assert_eq!(report["verdict"], "FAIL", "{report:#}");
    assert_eq!(code, 4);
    assert_eq!(classification(&report, "error_rate"), "High");
    assert_eq!(classification(&report, "response_bytes"), "Low");
    assert_report_files(&dir);
    // The sequential judge stopped the load early: the broken arm's 5xx are final at an interim look,
    // well before the 15 s window, and the report shows the looks up to that one.
    let seq = &report["sequential"];
    assert_eq!(seq["stopped_early"], true, "{seq:#}");
    let stopped = seq["stopped_at_s"].as_f64().expect("stopped_at_s");
    assert!(stopped < 15.0, "stopped at {stopped} s of 15: {seq:#}");
    let looks = seq["looks"].as_array().expect("looks");
    assert!(!looks.is_empty(), "{seq:#}");
    assert_eq!(looks.last().unwrap()["verdict"], "FAIL", "{seq:#}");
    // The report carries the Ansible deploy summary and the samples re-judge the same way.
    assert_eq!(report["deploy"]["success"], true, "{report:#}");
    let again = Command::new(common::pipeline())
        .args(["analyze", "--json"])
        .arg(dir.join("samples.json"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(4));
    let rejudged: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(rejudged["verdict"], "FAIL");
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_2_master_against_master_passes() {
    let f = fixture();
    let dir = f.reports.join("master");
    let (code, report) = run(pipeline(f, "master", "master", "master", "15s", true), &dir);
    assert_eq!(report["verdict"], "PASS", "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(classification(&report, "error_rate"), "Pass");
    // Per-arm CPU comes from each container's cgroup: two identical arms do not differ.
    assert_ne!(classification(&report, "cpu_percent"), "High", "{report:#}");
    assert_host_metrics_from_each_arms_cgroup(&report, &dir);
}

/// The arms' CPU and memory were read from their own cgroups, every second without a failed reading, and
/// judged (not NoData); the two arms' figures differ (machine-wide figures would be the same).
fn assert_host_metrics_from_each_arms_cgroup(report: &Value, dir: &Path) {
    let run = &report["run"];
    assert!(
        run["host_metrics"].as_str().unwrap().contains("own cgroup"),
        "{run:#}"
    );
    let hosts: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("hosts.json")).unwrap()).unwrap();
    let hosts = hosts.as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{hosts:#?}");
    for h in hosts {
        assert_eq!(
            h["url"],
            format!("cgroup://{}", h["host"].as_str().unwrap()),
            "{h:#}"
        );
        assert_eq!(h["failed_scrapes"], 0, "{h:#}");
        assert!(h["samples"].as_array().unwrap().len() >= 10, "{h:#}");
    }
    let memory = |h: &Value| h["samples"][0]["memory_percent"].as_f64().unwrap();
    assert!(
        memory(&hosts[0]) > 0.0 && memory(&hosts[1]) > 0.0,
        "{hosts:#?}"
    );
    assert_ne!(memory(&hosts[0]), memory(&hosts[1]), "{hosts:#?}");
    for metric in ["cpu_percent", "memory_percent"] {
        assert_ne!(classification(report, metric), "NoData", "{report:#}");
    }
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_3_master_against_slow_fails_on_latency() {
    let f = fixture();
    let dir = f.reports.join("slow");
    let (code, report) = run(pipeline(f, "master", "slow", "slow", "15s", true), &dir);
    assert_eq!(report["verdict"], "FAIL", "{report:#}");
    assert_eq!(code, 4);
    assert_eq!(classification(&report, "latency_ms"), "High");
    assert_eq!(classification(&report, "error_rate"), "Pass");
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_3a_a_canary_that_burns_cpu_on_every_request_is_cpu_percent_high() {
    let f = fixture();
    let dir = f.reports.join("cpu");
    // The extra CPU per answer also slows the answers: latency_ms (critical) FAILs at the first interim
    // look (5 s), whose judgement is final and has no host samples (they are judged at the last look
    // only). One look at the end of the window judges every sample, the hosts' 15 per arm included.
    let mut cmd = pipeline(f, "master", "cpu", "cpu", "15s", true);
    cmd.args(["--look-every", "30s"]);
    let (code, report) = run(cmd, &dir);
    assert_eq!(classification(&report, "cpu_percent"), "High", "{report:#}");
    // cpu_percent alone (weight ½, not critical) need not fail the run; the extra 3 ms per answer may
    // also show in latency_ms. The exit code is the verdict's either way.
    let expected = match report["verdict"].as_str() {
        Some("PASS") => 0,
        Some("MARGINAL") => 3,
        Some("FAIL") => 4,
        other => panic!("verdict {other:?}: {report:#}"),
    };
    assert_eq!(code, expected);
    // The answers are master's: only the CPU differs.
    assert_eq!(classification(&report, "error_rate"), "Pass");
    assert_eq!(classification(&report, "response_bytes"), "Pass");
    assert_host_metrics_from_each_arms_cgroup(&report, &dir);
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_4_a_hung_canary_fails_on_the_proxy_s_timeouts_attributed_to_it() {
    let f = fixture();
    let dir = f.reports.join("hang");
    // Every canary request holds its connection for the proxy's 5 s: enough connections that the
    // baseline still gets more than min_samples requests in the window.
    let (code, report) = run(
        pipeline_with(f, "master", "hang", "hang", "15s", true, "64"),
        &dir,
    );
    assert_eq!(report["verdict"], "FAIL", "{report:#}");
    assert_eq!(code, 4);
    assert_eq!(classification(&report, "error_rate"), "High");
    let requests = &report["run"]["requests"];
    assert_eq!(requests["no_response"], 0, "{requests}");
    let errors = report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "error_rate")
        .unwrap();
    assert_eq!(
        errors["canary"]["mean"], 1.0,
        "every canary request is a 504: {errors:#}"
    );
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_5_a_broken_baseline_stops_before_the_load_with_exit_1() {
    let f = fixture();
    let dir = f.reports.join("broken-baseline");
    let out = pipeline(f, "broken", "master", "broken-baseline", "15s", true)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "baseline arm",
        "blue",
        "HTTP 500",
        "data.split is not a function",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(
        !dir.join("report.json").exists(),
        "no verdict without a healthy baseline"
    );
}

/// Runs `command` on a sandbox host over SSH, with the address and key from the canary's inventory.
fn on_host(f: &Fixture, host: &str, command: &str) {
    let inventory_path = f
        .state_dir
        .join(format!("canary-{}", env()))
        .join("inventory.ini");
    let inventory = pipeline::inventory::Inventory::load(&inventory_path).unwrap();
    let h = &inventory.group(host).unwrap()[0];
    let out = pipeline::process::Cmd::new(format!("run `{command}` on {host}"), "ssh")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
        ])
        .arg("-i")
        .arg(&h.vars["ansible_ssh_private_key_file"])
        .arg(format!("{}@{}", h.vars["ansible_user"], h.address()))
        .arg(command)
        .run();
    out.unwrap_or_else(|e| panic!("{e}"));
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn canary_6_green_stopped_during_the_load_fails_with_the_report_intact_and_exit_4() {
    let f = fixture();
    let dir = f.reports.join("stopped");
    // --keep: canary_signals.rs reuses the hosts (its SIGINT run destroys them; a canary that destroys
    // its hosts after a verdict is `pipeline demo`'s, at the end of scripts/e2e.sh).
    let mut cmd = pipeline(f, "master", "master", "stopped", "15s", true);
    cmd.stderr(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let mut stopped = false;
    let started = Instant::now();
    for line in stderr.lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if !stopped && line.contains("[5/6]") {
            // 2 s of warm-up, then about a third of the 15 s window.
            std::thread::sleep(Duration::from_secs(7));
            on_host(f, "green", "pm2 stop preview-service");
            stopped = true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the canary hangs:\n{log}"
        );
    }
    let status = child.wait().unwrap();
    assert!(stopped, "the load never started:\n{log}");
    assert_eq!(status.code(), Some(4), "{log}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    crate::shared::report_schema::assert_valid(&report);
    assert_eq!(report["verdict"], "FAIL");
    assert_eq!(classification(&report, "error_rate"), "High");
    assert_report_files(&dir);
}
