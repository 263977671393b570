//! e2e: `pipeline rollout` on a 1-host checkbox fleet behind the front door (`lb`) on the sandbox
//! (environment `<e2e env>-ro`, torn down at the end of the test). An independent client sends steady
//! requests through the front door for the whole rollout and records who answered; measured, not
//! asserted: a version whose API answers 500 is rolled back within the first step with exit 4, the
//! canary host is destroyed, and afterwards every response comes from the stable host and none fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common;

fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn pipeline(work: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .current_dir(work)
        .env_remove("PIPELINE_CONFIG")
        .env_remove("PIPELINE_ENV")
        .arg("--config")
        .arg(work.join("pipeline.toml"))
        .arg("--state-dir")
        .arg(work.join(".pipeline"))
        .args(args)
        .output()
        .expect("pipeline runs")
}

fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=e2e", "-c", "user.email=e2e@localhost"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", show(&out));
}

/// Commits the stand-in with `version` in an X-Version header; `broken`: its API answers 500 (the
/// static site, which the deploy's health check asks for, still answers).
fn commit_version(repo: &Path, version: &str, broken: bool) {
    let path = repo.join("server-side/site/server.js");
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/checkbox-standin/server-side/site/server.js"),
    )
    .unwrap();
    let patched = original.replacen(
        "http.createServer((req, res) => {",
        &format!(
            "http.createServer((req, res) => {{\n  if ({broken}) {{ res.writeHead(500); res.end('broken'); return; }}\n  res.setHeader('X-Version', '{version}');"
        ),
        1,
    );
    assert_ne!(patched, original);
    std::fs::write(path, patched).unwrap();
    git(repo, &["commit", "-qam", &format!("e2e {version}")]);
    git(repo, &["tag", "-f", version]);
}

/// One request through `ip:80`: (status, X-Backend).
fn request(ip: Ipv4Addr, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&(ip, 80).into(), Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: ro\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)
        .map_err(|e| format!("read: {e}"))?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line: {buf:?}"))?;
    let backend = buf
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-backend")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok((status, backend))
}

/// (when, status or error, X-Backend) of every request of the client.
type Seen = Vec<(Instant, Result<u16, String>, String)>;

struct Client {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    handle: std::thread::JoinHandle<()>,
}

impl Client {
    fn start(lb: Ipv4Addr) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (flag, log) = (stop.clone(), seen.clone());
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let r = request(lb, "/api/env");
                let entry = match r {
                    Ok((code, backend)) => (Instant::now(), Ok(code), backend),
                    Err(e) => (Instant::now(), Err(e), String::new()),
                };
                log.lock().unwrap().push(entry);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Client { stop, seen, handle }
    }

    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap();
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn rollout_of_a_version_whose_api_fails_is_rolled_back_in_the_first_step_and_the_client_then_sees_only_stable_answers(
) {
    let environment = common::test_env("ro");
    let work = common::work_root().join(&environment);
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("pipeline.toml"),
        "[prod]\nfront_door = true\n\n[prod.hosts.checkbox]\ncount = 1\n\n[deploy]\nserial = 1\n",
    )
    .unwrap();
    let inventory = work.join("inventory.ini").display().to_string();
    let started = Instant::now();
    let out = pipeline(
        &work,
        &[
            "prod",
            "up",
            "--provider",
            "local",
            "--env",
            &environment,
            "-i",
            &inventory,
            "--timeout",
            "10m",
        ],
    );
    assert!(out.status.success(), "prod up: {}", show(&out));
    let inv = pipeline::inventory::Inventory::load(Path::new(&inventory)).unwrap();
    let lb: Ipv4Addr = inv.group("lb").unwrap()[0].address().parse().unwrap();
    let stable: Vec<String> = inv
        .group("checkbox")
        .unwrap()
        .iter()
        .map(|h| h.name.clone())
        .collect();
    let repo = work.join("checkbox-standin");
    if !repo.join(".git").exists() {
        let _ = std::fs::remove_dir_all(&repo);
        pipeline::canary::example::checkbox_repo(&work).expect("commit the stand-in");
    }
    commit_version(&repo, "v1", false);
    let repo_arg = repo.display().to_string();
    let common_args = [
        "--source",
        repo_arg.as_str(),
        "-e",
        "checkbox_mongodb_install=false",
    ];
    let mut args = vec!["deploy", "checkbox.io", "-i", &inventory];
    args.extend(common_args);
    let out = pipeline(&work, &args);
    assert!(out.status.success(), "first deploy: {}", show(&out));
    eprintln!("rollout: fleet up and on v1 after {:?}", started.elapsed());
    commit_version(&repo, "v2-broken", true);

    let client = Client::start(lb);
    std::thread::sleep(Duration::from_secs(2));
    let began = Instant::now();
    let mut args = vec![
        "rollout",
        "checkbox.io",
        "--provider",
        "local",
        "--env",
        &environment,
        "-i",
        &inventory,
        "--ref",
        "v2-broken",
        "--steps",
        "20,50,100",
        "--step-time",
        "40s",
        "--max-step-time",
        "60s",
        "--look-every",
        "5s",
    ];
    args.extend(common_args);
    let out = pipeline(&work, &args);
    let ended = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    let seen = client.finish();
    let took = ended - began;
    eprintln!("rollout: took {took:?}\n{}", show(&out));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));

    // Rolled back within the first step.
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(work.join(format!(".pipeline/rollout-{environment}-checkbox.json")))
            .unwrap(),
    )
    .unwrap();
    let steps = state["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{state:#}");
    assert_eq!(steps[0]["verdict"], "FAIL", "{state:#}");
    assert_eq!(state["weight"], 0);
    assert_eq!(state["canary_exists"], false);

    // The canary host is gone from the environment.
    let out = pipeline(
        &work,
        &[
            "prod",
            "status",
            "--provider",
            "local",
            "--env",
            &environment,
        ],
    );
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(!status.contains("checkbox-canary"), "{status}");

    // During the step the canary's answers were the broken ones; afterwards only the stable host, and
    // nothing failed.
    let during: Vec<_> = seen.iter().filter(|s| s.0 < ended).collect();
    let after: Vec<_> = seen.iter().filter(|s| s.0 >= ended).collect();
    let canary_during = during.iter().filter(|s| s.2 == "checkbox-canary").count();
    let failed_during = during.iter().filter(|s| s.1 != Ok(200)).count();
    let stable_failed = during
        .iter()
        .filter(|s| s.1 != Ok(200) && s.2 != "checkbox-canary")
        .count();
    eprintln!(
        "rollout: client sent {} requests ({} during the rollout: {canary_during} to the canary, {failed_during} failed, {stable_failed} of those not from the canary; {} after it)",
        seen.len(),
        during.len(),
        after.len()
    );
    assert!(canary_during > 0, "the canary saw client traffic");
    assert_eq!(stable_failed, 0, "only the canary's answers failed");
    assert!(
        after.len() > 100,
        "the client kept sending: {}",
        after.len()
    );
    let bad_after: Vec<_> = after
        .iter()
        .filter(|s| s.1 != Ok(200) || !stable.contains(&s.2))
        .map(|s| format!("{:?} from {}", s.1, s.2))
        .collect();
    assert_eq!(bad_after, Vec::<String>::new(), "after the rollback");

    common::down(&environment);
}
