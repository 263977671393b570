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
    let before = state(&env());
    down(&env());
    if let Some(before) = before {
        assert_eq!(leftovers(&before), Vec::<String>::new());
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

/// What a canary suite on sandbox hosts shares: a state directory, an empty `reports/` directory and the
/// bundled preview service as a git repository, all in `target/e2e-work/<env>`.
pub struct CanaryFixture {
    pub state_dir: PathBuf,
    pub repo: PathBuf,
    pub reports: PathBuf,
}

impl CanaryFixture {
    pub fn new(env: &str) -> Self {
        let work = work_root().join(env);
        let reports = work.join("reports");
        let _ = std::fs::remove_dir_all(&reports);
        std::fs::create_dir_all(&reports).unwrap();
        let repo = pipeline::canary::example::make_repo(&work.join("preview-service"))
            .expect("the bundled example becomes a git repository");
        CanaryFixture {
            state_dir: work.join(".pipeline"),
            reports,
            repo,
        }
    }
}
