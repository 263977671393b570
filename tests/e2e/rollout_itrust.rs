//! e2e: `pipeline rollout iTrust --artifact WAR` on sandbox hosts, on a fleet of one: an environment of
//! its own (`<e2e env>-itr`: the iTrust host `itrust` behind the front door `lb`, the idle `checkbox` and
//! `monitor`), with an independent client sending requests to `/iTrust2/…` through the front door the
//! whole time and recording every answer's status, `X-Backend` and `X-Version`:
//! 0. the bundled stand-in WAR is deployed; then a second build of it that answers with `X-Version: v2`
//!    is rolled out with `--steps 50,100 --step-time 8s` and the default warm-up (30 s: the fresh JVM on
//!    the canary host is not judged on latency while it warms) and promoted (exit 0): the one stable
//!    host is drained and redeployed while the canary serves every request, then the canary host
//!    `itrust-canary` is retired (rollout state, `prod status`, the provider's state); asked directly,
//!    the host serves v2, and **0 of the client's requests failed**;
//! 1. a build whose pages below the start page answer 500 (the start page, the health check, answers) is
//!    rolled back in the first step's warm-up (exit 4: errors are judged there), the canary host is
//!    gone, the host still serves v2, and only the canary's answers failed;
//! 9. teardown (`prod down`, nothing left on the machine).
//!
//! A real JVM and a real MariaDB on each iTrust host and on the canary (the stand-in's database round
//! trip on every page), which is why the fleet has one host: the checkbox.io scenarios (`rollout.rs`)
//! cover a fleet of three. `scripts/e2e.sh` runs these next to the fleet's tests, in their own process.
//! By name: `PIPELINE_E2E_ENV=me cargo test --release --test e2e -- --ignored --test-threads=1 --nocapture rollout_itrust::`.
//!
//! The two WAR versions are the stand-in's own sources (`examples/itrust-standin`), patched here before
//! its `build.sh` runs, as `common::commit_version` patches the checkbox.io stand-in: an `X-Version`
//! header on every answer and, for the broken build, a 500 for every path below the start page.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pipeline::inventory::Inventory;

use crate::common::{self, assert_only_stable_after, pipeline_in, show, Client, Seen};

/// The environment's suffix (`<e2e env>-itr`).
pub const SUFFIX: &str = "itr";
const CANARY: &str = "itrust-canary";
/// The fleet: one host (a count of 1 keeps the plain name).
const STABLE: [&str; 1] = ["itrust"];
/// iTrust's port, on its hosts and on the front door.
const PORT: u16 = 8080;
/// The paths the client asks for, in turn (the stand-in answers every path below its context path).
const PATHS: [&str; 3] = [
    "/iTrust2/",
    "/iTrust2/patient/viewRecords",
    "/iTrust2/login",
];
/// The steps of both rollouts: a judged one at 50 % (both arms get data fast), then 100 %; the default
/// warm-up before the first.
const SHORT_STEPS: [&str; 8] = [
    "--steps",
    "50,100",
    "--step-time",
    "8s",
    "--look-every",
    "2s",
    "--max-step-time",
    "40s",
];

/// The environment's hosts and work dir.
struct Env {
    environment: String,
    work: PathBuf,
    inventory: PathBuf,
    lb: Ipv4Addr,
    /// The iTrust hosts: name, address.
    hosts: Vec<(String, Ipv4Addr)>,
}

/// The JDK's runtime and the database server the `java` and `mysql` roles install on Debian 12
/// (`openjdk-17-jre-headless`: `java_version` 17, `java_jdk` false; `mariadb-server` and
/// `python3-pymysql`: `roles/mysql/vars/Debian.yml`), baked into the hosts' image as a droplet snapshot
/// would have them: every host and the canary would otherwise unpack them on each deploy. The roles still
/// run their install tasks (no-ops then).
pub fn config(serial: &str) -> String {
    format!(
        "[prod]\nfront_door = true\n\n[prod.hosts.itrust]\ncount = 1\n\n[local]\nextra_packages = [\"openjdk-17-jre-headless\", \"mariadb-server\", \"python3-pymysql\"]\n\n[deploy]\n{serial}\n\n[judge]\nconfidence = 0.999\n"
    )
}

/// The environment, made by the first test that asks: `prod up` with `first.toml`, then the bundled
/// stand-in WAR deployed on the iTrust host.
fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let environment = common::test_env(SUFFIX);
        let work = common::work_root().join(&environment);
        std::fs::create_dir_all(&work).unwrap();
        // `first.toml` deploys every host at once; `rolling.toml` (the rollouts' config: the promotion is
        // a rolling deploy, one host at a time, stopping at a failing host) is what an operator with a
        // fleet would have; with one host, the canary serves while it is redeployed.
        std::fs::write(work.join("first.toml"), config("serial = \"100%\"")).unwrap();
        std::fs::write(
            work.join("rolling.toml"),
            config("serial = 1\nmax_fail_percentage = 0"),
        )
        .unwrap();
        let inventory = work.join("inventory.ini");
        let inv_arg = inventory.display().to_string();
        let started = Instant::now();
        let out = pipeline_in(
            &work,
            "first.toml",
            &[
                "prod",
                "up",
                "--provider",
                "local",
                "--env",
                &environment,
                "-i",
                &inv_arg,
                "--timeout",
                "15m",
            ],
        )
        .output()
        .expect("pipeline runs");
        assert!(out.status.success(), "prod up: {}", show(&out));
        eprintln!("rollout_itrust: prod up took {:?}", started.elapsed());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(":8080/iTrust2") && stdout.contains("front door (lb)"),
            "{stdout}"
        );
        let inv = Inventory::load(&inventory).unwrap();
        let hosts: Vec<(String, Ipv4Addr)> = inv
            .group("itrust")
            .unwrap()
            .iter()
            .map(|h| (h.name.clone(), h.address().parse().unwrap()))
            .collect();
        assert_eq!(
            hosts.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
            STABLE
        );
        let lb = inv.group("lb").unwrap()[0].address().parse().unwrap();
        let env = Env {
            environment,
            work,
            inventory,
            lb,
            hosts,
        };
        let war = pipeline::canary::example::itrust_war(&env.work)
            .expect("build the iTrust stand-in WAR");
        let started = Instant::now();
        let out = env.pipeline(
            "first.toml",
            &[
                "deploy",
                "iTrust",
                "-i",
                &inv_arg,
                "--artifact",
                &war.display().to_string(),
                "--report",
                &env.work.join("first.json").display().to_string(),
            ],
        );
        assert!(out.status.success(), "first deploy: {}", show(&out));
        eprintln!(
            "rollout_itrust: first deploy (the bundled WAR) took {:?}",
            started.elapsed()
        );
        // The bundled WAR sends no X-Version.
        env.assert_stable_on("");
        env
    })
}

impl Env {
    fn pipeline(&self, config: &str, args: &[&str]) -> Output {
        pipeline_in(&self.work, config, args)
            .output()
            .expect("pipeline runs")
    }

    /// `pipeline rollout iTrust --artifact WAR` with `rolling.toml` and the short steps.
    fn rollout(&self, war: &Path) -> Output {
        let inv = self.inventory.display().to_string();
        let war = war.display().to_string();
        let mut args = vec![
            "rollout",
            "iTrust",
            "--provider",
            "local",
            "--env",
            &self.environment,
            "-i",
            &inv,
            "--artifact",
            &war,
        ];
        args.extend(SHORT_STEPS);
        self.pipeline("rolling.toml", &args)
    }

    /// The rollout's state file.
    fn state(&self) -> serde_json::Value {
        let path = self.work.join(format!(
            ".pipeline/rollout-{}-itrust.json",
            self.environment
        ));
        serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Each iTrust host, asked directly, answers its start page and a page below it with a 200 from the
    /// stand-in (its database round trip done) carrying `X-Version: version`.
    fn assert_stable_on(&self, version: &str) {
        for (name, ip) in &self.hosts {
            for path in ["/iTrust2/", "/iTrust2/patient/viewRecords"] {
                let a = common::request_to(*ip, PORT, path)
                    .unwrap_or_else(|e| panic!("{name}{path}: {e}"));
                assert_eq!(
                    (a.status, a.version.as_str()),
                    (200, version),
                    "{name}{path}"
                );
            }
        }
    }

    /// The canary host is gone: the rollout's state, `prod status`, both inventories and the provider's
    /// state do not have it.
    fn assert_no_canary_host(&self) {
        let s = self.state();
        assert_eq!(s["weight"], 0, "{s:#}");
        assert_eq!(s["canary_exists"], false, "{s:#}");
        let out = common::prod_cmd(&self.environment, "status").run().unwrap();
        assert!(!out.stdout.contains(CANARY), "prod status:\n{}", out.stdout);
        let canary_inventory = self.work.join(format!(
            ".pipeline/rollout-{}-itrust-canary.ini",
            self.environment
        ));
        assert!(!canary_inventory.exists(), "{}", canary_inventory.display());
        let inventory = std::fs::read_to_string(&self.inventory).unwrap();
        assert!(!inventory.contains(CANARY), "{inventory}");
        let now = common::state(&self.environment).expect("the environment is still up");
        assert!(!now.hosts.contains_key(CANARY), "{:?}", now.hosts.keys());
    }
}

/// A build of the stand-in WAR (in `<work>/war-<version>/iTrust2.war`) that sends `X-Version: version`
/// with every answer; `broken`: every path below the start page answers 500 (the start page, which the
/// deploy's and the rollout's health checks ask for, still answers).
fn war(env: &Env, version: &str, broken: bool) -> PathBuf {
    let dir = env.work.join(format!("war-{version}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The stand-in's sources, as `itrust_war` writes and builds them.
    let built = pipeline::canary::example::itrust_war(&dir).expect("the stand-in's sources");
    let main = dir.join("itrust-standin/src/standin/Main.java");
    let original = std::fs::read_to_string(&main).unwrap();
    let send = "exchange.sendResponseHeaders(result.status, body.length);";
    let patched = original.replacen(
        send,
        &format!(
            "exchange.getResponseHeaders().set(\"X-Version\", \"{version}\");\n            String e2ePath = exchange.getRequestURI().getPath();\n            boolean e2eBroken = {broken} && !e2ePath.equals(context) && !e2ePath.equals(context + \"/\");\n            exchange.sendResponseHeaders(e2eBroken ? 500 : result.status, body.length);"
        ),
        1,
    );
    assert_ne!(patched, original, "the stand-in's Main.java has `{send}`");
    std::fs::write(&main, patched).unwrap();
    let out = std::process::Command::new("bash")
        .arg(dir.join("itrust-standin/build.sh"))
        .arg(&built)
        .output()
        .unwrap();
    assert!(out.status.success(), "build.sh: {}", show(&out));
    built
}

fn from_canary(s: &Seen) -> bool {
    s.backend() == CANARY
}

fn steps(s: &serde_json::Value) -> Vec<(u64, u64, serde_json::Value)> {
    s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["weight"].as_u64().unwrap(),
                r["verdict"].clone(),
            )
        })
        .collect()
}

#[test]
#[ignore = "sandbox hosts (root); run by scripts/e2e.sh"]
fn rollout_itrust_0_of_a_second_war_build_on_a_fleet_of_one_is_promoted_with_no_failed_request() {
    let env = env();
    let v2 = war(env, "v2", false);
    let client = Client::start_on(env.lb, PORT, &PATHS);
    std::thread::sleep(Duration::from_secs(2));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap();
    let began = Instant::now();
    let out = env.rollout(&v2);
    let took = began.elapsed();
    let ended = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let seen = client.finish();
    eprintln!(
        "rollout_itrust: bench: --artifact v2 --steps 50,100 --step-time 8s took {took:?} (load average before: {}, after: {}); client sent {}, failed {}, {} from the canary\n{}",
        load.trim(),
        std::fs::read_to_string("/proc/loadavg").unwrap().trim(),
        seen.len(),
        common::failures(&seen).len(),
        seen.iter().filter(|s| from_canary(s)).count(),
        show(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let s = env.state();
    assert!(s["phase"] == "done" && s["outcome"] == "promoted", "{s:#}");
    let steps = steps(&s);
    eprintln!("rollout_itrust: steps (index, weight, verdict): {steps:?}");
    assert_eq!(
        steps.iter().map(|r| r.1).collect::<Vec<_>>(),
        [50, 100],
        "{s:#}"
    );
    assert_eq!(steps[0].2, "PASS", "{s:#}");
    let warmup = &s["steps"][0]["warmup"];
    eprintln!("rollout_itrust: warm-up of step 1: {warmup}");
    assert!(
        warmup["duration_s"].as_f64().unwrap()
            >= pipeline::rollout::settings::DEFAULT_WARMUP.as_secs_f64(),
        "{warmup}"
    );
    assert_eq!(warmup["canary"]["errors"], 0, "{warmup}");
    assert_eq!(
        common::failures(&seen),
        Vec::<String>::new(),
        "of {}",
        seen.len()
    );
    assert!(seen.iter().any(from_canary), "the canary served");
    for h in STABLE {
        assert!(
            seen.iter().any(|s| s.backend() == h),
            "{h} served through the front door"
        );
    }
    env.assert_no_canary_host();
    env.assert_stable_on("v2");
    assert_only_stable_after(&seen, ended, &STABLE, "v2", 100);
}

#[test]
#[ignore = "sandbox hosts (root); run by scripts/e2e.sh"]
fn rollout_itrust_1_of_a_war_whose_pages_fail_is_rolled_back_in_the_first_step() {
    let env = env();
    // After rollout_itrust_0 the hosts serve v2; run alone, the bundled WAR (no X-Version).
    let stable = common::request_to(env.hosts[0].1, PORT, "/iTrust2/")
        .unwrap()
        .version;
    let broken = war(env, "v3-broken", true);
    let client = Client::start_on(env.lb, PORT, &PATHS);
    std::thread::sleep(Duration::from_secs(2));
    let began = Instant::now();
    let out = env.rollout(&broken);
    let ended = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let seen = client.finish();
    eprintln!(
        "rollout_itrust: broken WAR took {:?}\n{}",
        ended - began,
        show(&out)
    );
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let s = env.state();
    let steps = steps(&s);
    assert_eq!(steps.len(), 1, "{s:#}");
    assert_eq!(steps[0].2, "FAIL", "{s:#}");
    // Its errors are judged in the warm-up already.
    let warmup = &s["steps"][0]["warmup"];
    eprintln!("rollout_itrust: FAIL in the warm-up of step 1: {warmup}");
    assert_eq!(warmup["verdict"], "FAIL", "{s:#}");
    assert!(warmup["canary"]["errors"].as_u64().unwrap() > 0, "{warmup}");
    env.assert_no_canary_host();
    // During the step only the canary's answers failed; afterwards only the stable host answers, on the
    // version it had.
    let during: Vec<&Seen> = seen.iter().filter(|s| s.at < ended).collect();
    let canary = during.iter().filter(|s| from_canary(s)).count();
    let failed: Vec<String> = during
        .iter()
        .filter(|s| !s.ok() && !from_canary(s))
        .map(|s| s.describe())
        .collect();
    eprintln!(
        "rollout_itrust: client sent {} requests ({} during the rollout: {canary} to the canary, {} failed)",
        seen.len(),
        during.len(),
        common::failures(&seen).len(),
    );
    assert!(canary > 0, "the canary saw client traffic");
    assert_eq!(
        failed,
        Vec::<String>::new(),
        "only the canary's answers failed"
    );
    env.assert_stable_on(&stable);
    assert_only_stable_after(&seen, ended, &STABLE, &stable, 100);
}

#[test]
#[ignore = "sandbox hosts (root); run by scripts/e2e.sh after the iTrust rollout tests"]
fn rollout_itrust_9_teardown() {
    let environment = common::test_env(SUFFIX);
    let before = common::state(&environment);
    common::down(&environment);
    if let Some(before) = before {
        assert_eq!(common::leftovers(&before), Vec::<String>::new());
    }
}
