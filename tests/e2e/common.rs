//! The shared e2e fixture: the `prod` hosts (itrust, checkbox, monitor) of environment [`env`] on the
//! local sandbox, built ONCE per suite by the first test that asks ([`prod`]) and torn down by
//! [`teardown`], which `scripts/e2e.sh` runs last. Work files (inventory, playbooks, state) live in
//! `target/e2e-work/<environment>/`. Also: [`up`]/[`down`] for tests that need their own environment,
//! ssh into a host, run ansible, and [`leftovers`] to prove `down` removed everything.

#![allow(dead_code)] // each test module uses a different part of the fixture

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pipeline::inventory::Inventory;
use pipeline::process::{Cmd, Output};
use pipeline::providers::local::state::EnvState;
use pipeline::providers::local::Settings;

/// The environment of the shared hosts: `e2e`, or `$PIPELINE_E2E_ENV` so that two people running the
/// suite on one machine do not tear down each other's hosts.
pub fn env() -> String {
    std::env::var("PIPELINE_E2E_ENV").unwrap_or_else(|_| "e2e".to_string())
}

/// An environment of its own for one test, named after the shared one (`e2e-sbx`, …).
pub fn test_env(suffix: &str) -> String {
    format!("{}-{suffix}", env())
}
/// The shared hosts.
pub const PROD_HOSTS: [&str; 3] = ["itrust", "checkbox", "monitor"];

/// One environment's hosts, as `pipeline prod up` left them.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub environment: String,
    /// `target/e2e-work/<environment>`: inventory, state dir, scratch files.
    pub work: PathBuf,
    /// The inventory `prod up` wrote.
    pub inventory: PathBuf,
    /// The private key the inventory names.
    pub key: PathBuf,
    /// Host name → address, from the inventory.
    pub hosts: Vec<(String, Ipv4Addr)>,
}

impl Sandbox {
    pub fn ip(&self, host: &str) -> Ipv4Addr {
        self.hosts
            .iter()
            .find(|(n, _)| n == host)
            .unwrap_or_else(|| panic!("no host {host} in {:?}", self.hosts))
            .1
    }

    /// Runs `command` on `host` over SSH as root; returns the output whatever the exit status.
    pub fn ssh(&self, host: &str, command: &str) -> Output {
        pipeline::providers::local::ssh_command(
            &self.key,
            self.ip(host),
            format!("run `{command}` on {host}"),
            command,
        )
        .run_unchecked()
        .expect("ssh runs")
    }

    /// Runs `command` on `host` and returns its stdout; panics with stderr when it fails.
    pub fn ssh_ok(&self, host: &str, command: &str) -> String {
        let out = self.ssh(host, command);
        assert!(
            out.success(),
            "`{command}` on {host} failed ({}):\n{}\n{}",
            out.status,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// `program` (ansible, ansible-playbook) against this inventory, with the settings a test wants:
    /// no host key prompts, no colour, no retry files. Returns the output whatever the exit status.
    pub fn ansible(&self, program: &str, args: &[&str]) -> Output {
        Cmd::new(format!("run {program}"), program)
            .arg("-i")
            .arg(&self.inventory)
            .args(args)
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
            .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
            .dir(&self.work)
            .install_hint("; run scripts/setup.sh (it installs ansible into /opt/pipeline/venv)")
            .run_unchecked()
            .expect("ansible runs")
    }
}

/// `target/e2e-work`, next to the build output (absolute).
pub fn work_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-work")
}

/// The shared `e2e` environment with itrust, checkbox and monitor, brought up on first use.
pub fn prod() -> &'static Sandbox {
    static PROD: OnceLock<Sandbox> = OnceLock::new();
    PROD.get_or_init(|| up(&env()))
}

/// The provider's settings the tests run with (pipeline.toml is not read: the defaults).
pub fn settings() -> Settings {
    Settings::default()
}

fn state_file(environment: &str) -> PathBuf {
    settings()
        .state_root
        .join("envs")
        .join(environment)
        .join("state.json")
}

/// The provider's state of `environment`, if it has any.
pub fn state(environment: &str) -> Option<EnvState> {
    EnvState::load(&state_file(environment)).expect("state readable")
}

/// `pipeline prod up --provider local --env <environment>` (itrust, checkbox, monitor; running hosts are
/// reused), then reads the inventory it wrote.
pub fn up(environment: &str) -> Sandbox {
    let work = work_root().join(environment);
    std::fs::create_dir_all(&work).expect("create work dir");
    let inventory = work.join("inventory.ini");
    run_up(environment, &inventory);
    read_sandbox(environment)
}

/// The sandbox as the inventory of `environment`'s last `up` describes it.
pub fn read_sandbox(environment: &str) -> Sandbox {
    let work = work_root().join(environment);
    let inventory = work.join("inventory.ini");
    let inv = Inventory::load(&inventory).expect("inventory written");
    let mut addrs = Vec::new();
    let mut key = None;
    for name in PROD_HOSTS {
        let h = &inv.group(name).expect("host in inventory")[0];
        addrs.push((
            h.name.clone(),
            h.address()
                .parse()
                .expect("inventory holds an IPv4 address"),
        ));
        key = h.vars.get("ansible_ssh_private_key_file").cloned();
    }
    Sandbox {
        environment: environment.to_string(),
        work,
        inventory,
        key: key.expect("inventory names the key").into(),
        hosts: addrs,
    }
}

/// The `pipeline` binary under test.
pub fn pipeline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pipeline"))
}

/// `pipeline prod … --provider local --env <environment>` with the environment's own state dir.
pub fn prod_cmd(environment: &str, action: &str) -> Cmd {
    let work = work_root().join(environment);
    Cmd::new(
        format!("pipeline prod {action} --env {environment}"),
        pipeline(),
    )
    .arg("--state-dir")
    .arg(work.join(".pipeline"))
    .args(["prod", action, "--provider", "local", "--env", environment])
    .dir(work_root())
}

fn run_up(environment: &str, inventory: &Path) {
    prod_cmd(environment, "up")
        .arg("--inventory")
        .arg(inventory)
        .args(["--timeout", "5m"])
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `pipeline prod down` for `environment`; returns the hosts destroyed (as the command prints them).
pub fn down(environment: &str) -> Vec<String> {
    std::fs::create_dir_all(work_root().join(environment)).expect("create work dir");
    let out = prod_cmd(environment, "down")
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    // "destroyed a, b in environment X" or "nothing to destroy in environment X"
    let mut hosts: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("destroyed "))
        .filter_map(|l| l.split(" in environment ").next())
        .flat_map(|l| l.split(", ").map(str::to_string))
        .collect();
    hosts.sort();
    hosts
}

/// What is left on the machine of the resources `before` recorded (call `state(env)` before `down`),
/// plus anything else carrying the environment's names: one line per leftover.
pub fn leftovers(before: &EnvState) -> Vec<String> {
    let env = &before.environment;
    let mut left = Vec::new();
    let netns = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let prefix = format!("pipeline-{env}-");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let procs = nspawn_cmdlines();
    for h in before.hosts.values() {
        if netns.contains(&h.machine) {
            left.push(format!("network namespace {}", h.machine));
        }
        if Path::new("/sys/class/net").join(&h.veth).exists() {
            left.push(format!("veth {}", h.veth));
        }
        if mountinfo.contains(&h.dir.display().to_string()) {
            left.push(format!("mount under {}", h.dir.display()));
        }
        if h.dir.exists() {
            left.push(format!("directory {}", h.dir.display()));
        }
        for cg in &h.cgroups {
            if cg.exists() {
                left.push(format!("cgroup {}", cg.display()));
            }
        }
        if procs.iter().any(|c| c.contains(&h.machine)) {
            left.push(format!("systemd-nspawn process of {}", h.machine));
        }
    }
    left.extend(
        netns
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .map(|n| format!("network namespace {n} (not in the state)")),
    );
    left.extend(
        procs
            .iter()
            .filter(|c| c.contains(&prefix))
            .map(|c| format!("process {c}")),
    );
    let table = format!("pipeline_{}", env.replace('-', "_"));
    let tables = Cmd::new("list nftables tables", "nft")
        .args(["list", "tables"])
        .run()
        .expect("nft list tables")
        .stdout;
    if tables
        .lines()
        .any(|l| l.trim().ends_with(&format!(" {table}")))
    {
        left.push(format!("nftables table {table}"));
    }
    if state_file(env).exists() {
        left.push(format!("state file {}", state_file(env).display()));
    }
    left.sort();
    left.dedup();
    left
}

/// Command lines of running systemd-nspawn processes.
fn nspawn_cmdlines() -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.contains("systemd-nspawn"))
                .collect()
        })
        .unwrap_or_default()
}

/// Tears the shared environment down; `scripts/e2e.sh` runs it after all other tests.
#[test]
#[ignore = "run by scripts/e2e.sh after the suite"]
fn teardown() {
    // The fleet too, in case a test failed before `rollout_9_teardown`, the canary tests' hosts, in case
    // one failed before `canary_signals_9_hosts_are_gone_at_the_end`, and the iTrust rollout's
    // environment, in case it stopped before `rollout_itrust_9_teardown` (no-ops when they are gone).
    for environment in [
        env(),
        test_env(FLEET_SUFFIX),
        test_env(crate::canary::SUFFIX),
        test_env(crate::rollout_itrust::SUFFIX),
    ] {
        let before = state(&environment);
        down(&environment);
        if let Some(before) = before {
            assert_eq!(leftovers(&before), Vec::<String>::new());
        }
    }
}

/// The bundled example apps in the suite's work dir, made once per suite and then reused so that later
/// deploys of them are no-ops: the iTrust stand-in WAR and a git checkout of the checkbox.io stand-in
/// (the same functions `pipeline demo` uses).
pub fn example_apps(sandbox: &Sandbox) -> (PathBuf, PathBuf) {
    let war = sandbox.work.join("iTrust2.war");
    if !war.exists() {
        pipeline::canary::example::itrust_war(&sandbox.work)
            .expect("build the iTrust stand-in WAR");
    }
    let repo = sandbox.work.join("checkbox-standin");
    if !repo.join(".git").exists() {
        let _ = std::fs::remove_dir_all(&repo);
        pipeline::canary::example::checkbox_repo(&sandbox.work)
            .expect("commit the checkbox.io stand-in");
    }
    (war, repo)
}

/// Builds the suite's three sandbox images if they are not cached yet: Node.js and npm (the canary
/// tests and the fleet start with it), the plain one (the `e2e` hosts, the sandbox tests, the demo),
/// and iTrust's (the JDK's runtime and MariaDB, `rollout_itrust`). `scripts/test.sh` runs it in the
/// background while the loopback tests run, so that on a fresh machine the e2e suite finds them built;
/// an `up` that needs one still being built waits on the image lock. On a machine that has them, it
/// takes a second.
#[test]
#[ignore = "run by scripts/test.sh before the e2e suite"]
fn images() {
    for (what, config) in [
        ("Node.js", NODE_IMAGE_TOML.to_string()),
        ("plain", String::new()),
        ("iTrust", crate::rollout_itrust::config("")),
    ] {
        let started = std::time::Instant::now();
        // `[local]` read as `pipeline` reads the tests' pipeline.toml (`Local::new`), so the recipe is theirs.
        let settings = pipeline::settings::Config::parse(&config, "pipeline.toml".into())
            .and_then(|c| c.section("local"))
            .unwrap_or_else(|e| panic!("{e}"));
        let local = pipeline::providers::local::Local::with_settings(
            settings,
            "e2e-images",
            pipeline::ui::Ui::new(false),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let root = local
            .ensure_base_image()
            .unwrap_or_else(|e| panic!("the {what} image: {e}"));
        eprintln!(
            "images: the {what} image is {} ({:.0?})",
            root.display(),
            started.elapsed()
        );
    }
}

/// What a canary suite on sandbox hosts shares: a state directory, an empty `reports/` directory and the
/// bundled preview service as a git repository, all in `target/e2e-work/<env>`.
pub struct CanaryFixture {
    pub state_dir: PathBuf,
    pub repo: PathBuf,
    pub reports: PathBuf,
    /// `pipeline.toml` of the canary runs: Node.js and npm baked into the hosts' image, as for the
    /// fleet ([`NODE_IMAGE_TOML`]).
    pub config: PathBuf,
}

/// `[local]` with Node.js and npm baked into the hosts' image (a snapshot, as a droplet image would be):
/// every host that runs Node (checkbox hosts, a rollout's canary, the canary's blue and green) would
/// otherwise spend a minute or more of the suite unpacking the same ~300 packages. The roles still run
/// their install tasks (no-ops then); `deploy.rs` and the demo install everything from scratch on the
/// default image.
pub const NODE_IMAGE_TOML: &str = "[local]\nextra_packages = [\"nodejs\", \"npm\"]\n";

impl CanaryFixture {
    pub fn new(env: &str) -> Self {
        let work = work_root().join(env);
        let reports = work.join("reports");
        let _ = std::fs::remove_dir_all(&reports);
        std::fs::create_dir_all(&reports).unwrap();
        let repo = pipeline::canary::example::make_repo(&work.join("preview-service"))
            .expect("the bundled example becomes a git repository");
        let config = work.join("pipeline.toml");
        std::fs::write(&config, NODE_IMAGE_TOML).unwrap();
        CanaryFixture {
            state_dir: work.join(".pipeline"),
            reports,
            repo,
            config,
        }
    }
}

// ---- A fleet of checkbox hosts behind the front door, and a client counting every answer through it
// (shared by tests/e2e/fleet.rs and tests/e2e/rollout.rs).

/// `status`, stdout and stderr of a finished command, for assertion messages.
pub fn show(out: &std::process::Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `pipeline --config <work>/<config> --state-dir <work>/.pipeline ARGS` in `work`, with neither
/// `PIPELINE_CONFIG` nor `PIPELINE_ENV` from the caller's environment.
pub fn pipeline_in(work: &Path, config: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(pipeline());
    cmd.current_dir(work)
        .env_remove("PIPELINE_CONFIG")
        .env_remove("PIPELINE_ENV")
        .arg("--config")
        .arg(work.join(config))
        .arg("--state-dir")
        .arg(work.join(".pipeline"))
        .args(args);
    cmd
}

/// `git -C repo ARGS` as user e2e; panics when it fails.
pub fn git(repo: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=e2e", "-c", "user.email=e2e@localhost"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", show(&out));
}

/// Where a committed stand-in version answers 500 to everything its node server gets (the static site,
/// which nginx serves, still answers).
#[derive(Debug, Clone, Copy)]
pub enum Broken<'a> {
    Nowhere,
    /// Only on the host of this name.
    On(&'a str),
    Everywhere,
}

/// Commits the checkbox.io stand-in's `server.js` with `version` in an X-Version header of every answer,
/// broken where `broken` says, and tags the commit `version`.
pub fn commit_version(repo: &Path, version: &str, broken: Broken) {
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/checkbox-standin/server-side/site/server.js"),
    )
    .unwrap();
    let broken = match broken {
        Broken::Nowhere => "false".to_string(),
        Broken::On(h) => format!("require('os').hostname() === '{h}'"),
        Broken::Everywhere => "true".to_string(),
    };
    let patched = original.replacen(
        "http.createServer((req, res) => {",
        &format!(
            "const E2E_BROKEN = {broken};\nhttp.createServer((req, res) => {{\n  if (E2E_BROKEN) {{ res.writeHead(500); res.end('broken'); return; }}\n  res.setHeader('X-Version', '{version}');"
        ),
        1,
    );
    assert_ne!(
        patched, original,
        "the stand-in's server.js has its createServer line"
    );
    std::fs::write(repo.join("server-side/site/server.js"), patched).unwrap();
    git(repo, &["commit", "-qam", &format!("e2e {version}")]);
    git(repo, &["tag", "-f", version]);
}

/// One answer over HTTP.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// The front door's `X-Backend`: the host that served.
    pub backend: String,
    /// The stand-in's `X-Version` (see [`commit_version`]).
    pub version: String,
}

/// One `GET path` to `ip:80` on a connection of its own, or the I/O error.
pub fn request(ip: Ipv4Addr, path: &str) -> Result<Answer, String> {
    request_to(ip, 80, path)
}

/// [`request`] to another port (iTrust's 8080).
pub fn request_to(ip: Ipv4Addr, port: u16, path: &str) -> Result<Answer, String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&(ip, port).into(), std::time::Duration::from_secs(5))
            .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n"
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
    let header = |name: &str| {
        buf.lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    Ok(Answer {
        status,
        backend: header("X-Backend"),
        version: header("X-Version"),
    })
}

/// What the client saw for one request: when the answer (or error) came, and which.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: std::time::Instant,
    pub answer: Result<Answer, String>,
}

impl Seen {
    pub fn ok(&self) -> bool {
        matches!(&self.answer, Ok(a) if a.status == 200)
    }

    pub fn backend(&self) -> &str {
        self.answer.as_ref().map_or("", |a| a.backend.as_str())
    }

    /// The failure in a few words, for an assertion message.
    pub fn describe(&self) -> String {
        match &self.answer {
            Ok(a) => format!("{} from {} ({})", a.status, a.backend, a.version),
            Err(e) => e.clone(),
        }
    }
}

/// A client sending one `GET /api/env` every 20 ms through the front door until [`Client::finish`],
/// recording every answer.
pub struct Client {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Vec<Seen>>,
}

impl Client {
    pub fn start(lb: Ipv4Addr) -> Client {
        Client::start_on(lb, 80, &["/api/env"])
    }

    /// A client of `lb:port` asking for `paths` in turn.
    pub fn start_on(lb: Ipv4Addr, port: u16, paths: &'static [&'static str]) -> Client {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut k = 0;
            while !flag.load(Ordering::Relaxed) {
                let answer = request_to(lb, port, paths[k % paths.len()]);
                k += 1;
                seen.push(Seen {
                    at: std::time::Instant::now(),
                    answer,
                });
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            seen
        });
        Client { stop, handle }
    }

    pub fn finish(self) -> Vec<Seen> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// After `at` (strictly: `at` may be the last canary answer): every answer a 200 from one of `stable`,
/// on `version`; at least `min` of them.
pub fn assert_only_stable_after(
    seen: &[Seen],
    at: std::time::Instant,
    stable: &[&str],
    version: &str,
    min: usize,
) {
    let after: Vec<&Seen> = seen.iter().filter(|s| s.at > at).collect();
    let bad: Vec<String> = after
        .iter()
        .filter(|s| {
            !s.ok()
                || !stable.contains(&s.backend())
                || s.answer.as_ref().map(|a| a.version.as_str()) != Ok(version)
        })
        .map(|s| s.describe())
        .collect();
    assert_eq!(bad, Vec::<String>::new(), "of {} answers", after.len());
    assert!(
        after.len() >= min,
        "the client kept sending: {}",
        after.len()
    );
}

/// The failed requests of `seen` (not a 200), described.
pub fn failures(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| !s.ok())
        .map(Seen::describe)
        .collect()
}

/// The suite's one fleet (environment `<e2e env>-fleet`, three checkbox hosts): made by the first test
/// that needs it (`fleet.rs`, then `rollout.rs` on the same hosts), torn down by
/// `rollout::rollout_9_teardown`, the last of them in name order (and by [`teardown`] whatever failed).
pub fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| Fleet::up(FLEET_SUFFIX, 3))
}

/// The environment suffix of [`fleet`].
pub const FLEET_SUFFIX: &str = "fleet";

/// `count` checkbox hosts (`checkbox-1…`) behind the front door `lb`, plus the idle `itrust` and
/// `monitor`, in environment `<e2e env>-<suffix>`, with a checkout of the stand-in at `v1` deployed on
/// every checkbox host in one batch. Configs in the work dir: `first.toml` (`serial = "100%"`) and
/// `rolling.toml` (`serial = 1`, `max_fail_percentage = 0`).
pub struct Fleet {
    pub environment: String,
    pub work: PathBuf,
    pub inventory: PathBuf,
    pub repo: PathBuf,
    pub lb: Ipv4Addr,
    /// The checkbox hosts: name, address.
    pub hosts: Vec<(String, Ipv4Addr)>,
}

impl Fleet {
    pub fn up(suffix: &str, count: u32) -> Fleet {
        let environment = test_env(suffix);
        let work = work_root().join(&environment);
        std::fs::create_dir_all(&work).unwrap();
        // Node.js and npm baked into the hosts' image, so every rollout's canary host has them too.
        let fleet_toml = format!("[prod.hosts.checkbox]\ncount = {count}\n\n{NODE_IMAGE_TOML}\n");
        std::fs::write(
            work.join("first.toml"),
            format!("{fleet_toml}[deploy]\nserial = \"100%\"\n"),
        )
        .unwrap();
        std::fs::write(
            work.join("rolling.toml"),
            format!("{fleet_toml}[deploy]\nserial = 1\nmax_fail_percentage = 0\n"),
        )
        .unwrap();
        let inventory = work.join("inventory.ini");
        let inv_arg = inventory.display().to_string();
        let started = std::time::Instant::now();
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
                "10m",
            ],
        )
        .output()
        .expect("pipeline runs");
        assert!(out.status.success(), "prod up: {}", show(&out));
        eprintln!("{suffix}: prod up took {:?}", started.elapsed());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("front door (lb): checkbox http://"),
            "{stdout}"
        );
        let inv = Inventory::load(&inventory).unwrap();
        let hosts: Vec<(String, Ipv4Addr)> = inv
            .group("checkbox")
            .unwrap()
            .iter()
            .map(|h| (h.name.clone(), h.address().parse().unwrap()))
            .collect();
        let lb = inv.group("lb").unwrap()[0].address().parse().unwrap();
        // A checkout of the stand-in of its own (commits are added to it).
        let repo = work.join("checkbox-standin");
        if !repo.join(".git").exists() {
            let _ = std::fs::remove_dir_all(&repo);
            pipeline::canary::example::checkbox_repo(&work).expect("commit the stand-in");
        }
        commit_version(&repo, "v1", Broken::Nowhere);
        let fleet = Fleet {
            environment,
            work,
            inventory,
            repo,
            lb,
            hosts,
        };
        let started = std::time::Instant::now();
        let out = fleet.deploy("first.toml", "first.json", &[]);
        assert!(out.status.success(), "first deploy: {}", show(&out));
        eprintln!(
            "{suffix}: first deploy (one batch of {count}) took {:?}",
            started.elapsed()
        );
        fleet
    }

    /// `pipeline` with `config` of the work dir; see [`pipeline_in`].
    pub fn pipeline(&self, config: &str, args: &[&str]) -> std::process::Command {
        pipeline_in(&self.work, config, args)
    }

    /// `pipeline deploy checkbox.io` of the stand-in checkout's HEAD over the fleet's inventory.
    pub fn deploy(&self, config: &str, report: &str, extra: &[&str]) -> std::process::Output {
        let repo = self.repo.display().to_string();
        let inv = self.inventory.display().to_string();
        let report = self.work.join(report).display().to_string();
        let mut args = vec![
            "deploy",
            "checkbox.io",
            "-i",
            &inv,
            "--source",
            &repo,
            "-e",
            "checkbox_mongodb_install=false",
            "--report",
            &report,
        ];
        args.extend(extra);
        self.pipeline(config, &args)
            .output()
            .expect("pipeline runs")
    }
}
