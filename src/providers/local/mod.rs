//! Local sandbox hosts: each host a systemd-nspawn container booted with its own systemd, in its own
//! network namespace with a veth link and a stable IP, sshd taking the user's key, on an overlay over a
//! cached Debian base image; NAT through nftables so hosts reach the package archives.
//!
//! Layout on the machine (see the README's `sandbox` section):
//! - `<cache_dir>` (default `/var/cache/pipeline`): base images `base-<suite>-<hash>/rootfs` and the
//!   shared apt package cache `apt-archives/`, kept across runs.
//! - `<state_root>` (default `/var/lib/pipeline/local`): `envs/<env>/state.json` (what exists, written
//!   before it is created), `envs/<env>/hosts/<host>/{upper,work,root,console.log}`, the generated SSH
//!   key `ssh/id_ed25519` (when the user has none) and each host's SSH host keys `hostkeys/<env>/<host>`,
//!   kept so a host that comes back at the same IP has the same identity.
//!
//! Pure decisions live in [`plan`] and [`state`]; machine operations in `system`, `image`, `cache` and
//! `hostfs` (the files written into a host before it boots).

mod cache;
mod cgroup;
mod hostfs;
mod image;
pub mod plan;
pub mod state;
mod system;

/// An `ssh` command into a sandbox host as root with the host's key and no known_hosts bookkeeping (the
/// provider's own probes use it; so do the end-to-end tests).
pub use self::system::ssh as ssh_command;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use self::hostfs::HostContext;
use self::plan::{Recipe, Subnet};
use self::state::{Cleanup, EnvState, HostRecord, StateError};
use crate::process::{Cmd, ProcessError};
use crate::providers::{Connection, Host, HostSpec, Provider, ProviderKind, WaitFor};
use crate::settings::{ConfigError, Global};
use crate::ui::Ui;

/// How long a host gets to power off cleanly on `down` before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the local sandbox provider cannot run on this machine; missing: {}", .0.join("; "))]
    Prerequisites(Vec<String>),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid [local] setting in pipeline.toml: {0}")]
    Setting(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("sandbox subnet {subnet} overlaps the machine's route to {route}{dev}; set a free private range with `subnet = \"…\"` in the [local] section of pipeline.toml")]
    SubnetCollision {
        subnet: String,
        route: String,
        dev: String,
    },
    #[error("sandbox subnet {subnet} has no free address left for host {host}; use a larger `subnet` in the [local] section")]
    SubnetFull { subnet: String, host: String },
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("environment {environment} has no host {host} (hosts: {known}); create it with `pipeline prod up --provider local`")]
    UnknownHost {
        environment: String,
        host: String,
        known: String,
    },
    #[error("SSH key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("the container of host {host} exited right after it started; its console log {log} ends with:\n{tail}")]
    Exited {
        host: String,
        log: PathBuf,
        tail: String,
    },
    #[error("hosts not ready after {secs} s:\n{details}")]
    NotReady { secs: u64, details: String },
    #[error("{0}")]
    Unexpected(String),
}

impl Error {
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// The `[local]` section of pipeline.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Debian release of the base image.
    pub suite: String,
    /// Debian mirror debootstrap and the hosts' apt use.
    pub mirror: String,
    /// Private IPv4 range the hosts' addresses come from (one /30 link per host); must not overlap
    /// any route of the machine.
    pub subnet: String,
    /// Base images and the shared package cache (kept across runs).
    pub cache_dir: PathBuf,
    /// Per-environment state, host overlays, console logs, generated SSH keys.
    pub state_root: PathBuf,
    /// Private key Ansible logs in with; default `~/.ssh/id_ed25519`, then `~/.ssh/id_rsa`, then a key
    /// generated under `state_root/ssh/`.
    pub ssh_key: Option<PathBuf>,
    /// Packages added to the base image (changing the list builds a new image).
    pub extra_packages: Vec<String>,
    /// Share downloaded apt packages between hosts and runs.
    pub share_package_cache: bool,
    /// Memory limit of hosts whose spec sets none (e.g. `2G`); none by default.
    pub memory_limit: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            subnet: "10.213.0.0/16".into(),
            cache_dir: "/var/cache/pipeline".into(),
            state_root: "/var/lib/pipeline/local".into(),
            ssh_key: None,
            extra_packages: Vec::new(),
            share_package_cache: true,
            memory_limit: None,
        }
    }
}

/// One environment's sandbox hosts.
pub struct Local {
    environment: String,
    settings: Settings,
    key: PathBuf,
    ui: Ui,
}

impl Local {
    /// Reads the `[local]` section of pipeline.toml and checks prerequisites (Linux, root, tools).
    pub fn new(global: &Global, environment: &str) -> Result<Self, Error> {
        let settings: Settings = global.config.section("local")?;
        Self::with_settings(settings, environment, global.ui.clone())
    }

    /// Like [`Local::new`] with explicit settings (tests, harnesses).
    pub fn with_settings(settings: Settings, environment: &str, ui: Ui) -> Result<Self, Error> {
        plan::validate_name("environment", environment).map_err(Error::InvalidName)?;
        Subnet::parse(&settings.subnet).map_err(|e| Error::Setting(format!("subnet: {e}")))?;
        if let Some(m) = &settings.memory_limit {
            plan::parse_memory(m).map_err(|e| Error::Setting(format!("memory_limit: {e}")))?;
        }
        for p in &settings.extra_packages {
            if p.is_empty() || p.contains([',', ' ']) {
                return Err(Error::Setting(format!(
                    "extra_packages: `{p}` is not a package name"
                )));
            }
        }
        let missing = system::missing_prerequisites();
        if !missing.is_empty() {
            return Err(Error::Prerequisites(missing));
        }
        let key = resolve_key(&settings, &home());
        Ok(Local {
            environment: environment.to_string(),
            settings,
            key,
            ui,
        })
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// A host's logs for `pipeline prod logs HOST`: where they are, the end of its console (boot
    /// messages, written by systemd-nspawn) and the end of its journal (read from the machine with
    /// `journalctl -D`, so it works even when the host does not answer SSH).
    pub fn logs(&self, host: &str) -> Result<String, Error> {
        let state = self.load_state()?.unwrap_or_else(|| self.empty_state());
        let rec = self.record(&state, host)?;
        let journal = Cmd::new(format!("read the journal of host {host}"), "journalctl")
            .arg("-D")
            .arg(rec.journal_dir())
            .args(["--no-pager", "--lines=200"])
            .run_unchecked()
            .map(|o| {
                if o.success() {
                    o.stdout
                } else {
                    format!("(journalctl failed: {})\n", o.stderr.trim())
                }
            })
            .unwrap_or_else(|e| format!("({e})\n"));
        Ok(format!(
            "# host {host} ({}), environment {}\n# console log: {}\n# journal:     journalctl -D {}\n# shell:       ssh -i {} root@{}\n\n## console (last 50 lines)\n{}\n\n## journal (last 200 lines)\n{}",
            rec.machine,
            self.environment,
            rec.console_log().display(),
            rec.journal_dir().display(),
            self.key.display(),
            rec.ip,
            system::tail(&rec.console_log(), 50),
            journal
        ))
    }

    /// The base image recipe from the settings.
    pub fn recipe(&self) -> Recipe {
        let mut packages: Vec<String> = plan::BASE_PACKAGES.iter().map(|s| s.to_string()).collect();
        packages.extend(self.settings.extra_packages.iter().cloned());
        Recipe {
            suite: self.settings.suite.clone(),
            mirror: self.settings.mirror.clone(),
            packages,
        }
    }

    /// Builds (or finds) the cached base image; returns its root filesystem.
    pub fn ensure_base_image(&self) -> Result<PathBuf, Error> {
        let id = image::ensure(&self.settings.cache_dir, &self.recipe(), &self.ui)?;
        Ok(image::rootfs(&self.settings.cache_dir, &id))
    }

    fn envs_dir(&self) -> PathBuf {
        self.settings.state_root.join("envs")
    }

    fn state_file(&self) -> PathBuf {
        self.envs_dir().join(&self.environment).join("state.json")
    }

    fn forwarding_file(&self) -> PathBuf {
        self.settings.state_root.join("ip_forward.orig")
    }

    fn empty_state(&self) -> EnvState {
        EnvState::new(&self.environment, &self.settings.subnet)
    }

    fn load_state(&self) -> Result<Option<EnvState>, Error> {
        Ok(EnvState::load(&self.state_file())?)
    }

    /// Every environment's state on this machine.
    fn load_all_states(&self) -> Result<Vec<EnvState>, Error> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.envs_dir()) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            if let Some(s) = EnvState::load(&e.path().join("state.json"))? {
                out.push(s);
            }
        }
        Ok(out)
    }

    fn lock(&self) -> Result<system::Lock, Error> {
        crate::fsutil::ensure_private_dir(&self.settings.state_root)
            .map_err(|e| Error::io(format!("create {}", self.settings.state_root.display()), e))?;
        system::Lock::acquire(&self.settings.state_root.join("lock"))
    }

    fn record<'a>(&self, state: &'a EnvState, host: &str) -> Result<&'a HostRecord, Error> {
        state.hosts.get(host).ok_or_else(|| Error::UnknownHost {
            environment: self.environment.clone(),
            host: host.to_string(),
            known: if state.hosts.is_empty() {
                "none".into()
            } else {
                state.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
    }

    fn host_view(rec: &HostRecord) -> Host {
        let running = !system::nspawn_pids(&rec.machine).is_empty();
        Host {
            name: rec.name.clone(),
            id: rec.machine.clone(),
            status: if running { "running" } else { "stopped" }.into(),
            ip: Some(rec.ip),
            size: rec.size.clone(),
            region: "local".into(),
        }
    }

    /// Generates the project key if it is the one to use and missing; returns the public key line.
    fn ensure_key(&self) -> Result<String, Error> {
        if !self.key.exists() {
            if self.key != generated_key_path(&self.settings) {
                return Err(Error::Key {
                    path: self.key.clone(),
                    message: "does not exist; fix `ssh_key` in the [local] section".into(),
                });
            }
            let dir = self.key.parent().expect("key path has a directory");
            crate::fsutil::ensure_private_dir(dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
            self.ui.info(format!(
                "local: no SSH key in ~/.ssh, generating {}",
                self.key.display()
            ));
            Cmd::new("generate an SSH key for the sandbox hosts", "ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "pipeline local sandbox",
                    "-f",
                ])
                .arg(&self.key)
                .run()?;
        }
        let pubfile = PathBuf::from(format!("{}.pub", self.key.display()));
        let line = match fs::read_to_string(&pubfile) {
            Ok(l) => l,
            Err(_) => {
                Cmd::new(
                    format!("read the public half of {}", self.key.display()),
                    "ssh-keygen",
                )
                .args(["-y", "-f"])
                .arg(&self.key)
                .run()?
                .stdout
            }
        };
        let line = line.trim().to_string();
        if !line.starts_with("ssh-") && !line.starts_with("ecdsa-") {
            return Err(Error::Key {
                path: pubfile,
                message: "does not hold an OpenSSH public key".into(),
            });
        }
        Ok(line)
    }

    /// The blocking body of [`Provider::up`].
    fn up_blocking(&mut self, specs: &[HostSpec]) -> Result<Vec<Host>, Error> {
        let mut limits = BTreeMap::new();
        for s in specs {
            plan::validate_name("host", &s.name).map_err(Error::InvalidName)?;
            let limit = s
                .memory_limit
                .as_ref()
                .or(self.settings.memory_limit.as_ref());
            let bytes = limit
                .map(|m| {
                    plan::parse_memory(m)
                        .map_err(|e| Error::Setting(format!("host {}: {e}", s.name)))
                })
                .transpose()?;
            limits.insert(s.name.clone(), bytes);
        }
        let base_id = image::ensure(&self.settings.cache_dir, &self.recipe(), &self.ui)?;
        // Everything from here on (key, state, addresses, network) under the machine-wide lock.
        let _lock = self.lock()?;
        let pubkey = self.ensure_key()?;
        let all = self.load_all_states()?;
        let mut state = self.load_state()?.unwrap_or_else(|| self.empty_state());
        if state.subnet != self.settings.subnet {
            self.ui.warn(format!(
                "environment {} keeps its subnet {} (the [local] subnet {} applies after `prod down`)",
                self.environment, state.subnet, self.settings.subnet
            ));
        }
        let subnet = Subnet::parse(&state.subnet).map_err(Error::Setting)?;
        let routes = system::routes()?;
        if let Some(r) = plan::colliding_route(&subnet, &routes) {
            return Err(Error::SubnetCollision {
                subnet: subnet.to_string(),
                route: r.dst.clone(),
                dev: r
                    .dev
                    .as_ref()
                    .map(|d| format!(" (dev {d})"))
                    .unwrap_or_default(),
            });
        }

        // Record every new host (its names and address) before creating anything for it.
        let mut taken =
            state::taken_slots(all.iter().filter(|s| s.environment != self.environment));
        taken.extend(state.hosts.values().map(|h| h.slot));
        for spec in specs {
            if state.hosts.contains_key(&spec.name) {
                continue;
            }
            let slot = plan::allocate_slot(&self.environment, &spec.name, subnet.slots(), &taken)
                .ok_or_else(|| Error::SubnetFull {
                subnet: subnet.to_string(),
                host: spec.name.clone(),
            })?;
            taken.insert(slot);
            let names = plan::host_names(&self.environment, &spec.name, slot);
            let (gateway, ip) = subnet.link(slot);
            state.hosts.insert(
                spec.name.clone(),
                HostRecord {
                    name: spec.name.clone(),
                    slot,
                    ip,
                    gateway,
                    machine: names.machine,
                    veth: names.veth,
                    dir: self
                        .envs_dir()
                        .join(&self.environment)
                        .join("hosts")
                        .join(&spec.name),
                    base: base_id.clone(),
                    cgroups: Vec::new(),
                    pid: None,
                    size: spec.size.clone(),
                },
            );
        }
        let table = plan::nft_table(&self.environment);
        state.nft_table = Some(table.clone());
        state.save(&self.state_file())?;

        system::enable_forwarding(&self.forwarding_file())?;
        let ips: Vec<_> = state.hosts.values().map(|h| h.ip).collect();
        system::nft_apply(&system::nft_script(&table, &subnet, &ips), &table)?;

        let ctx = HostContext {
            pubkey,
            resolv_conf: hostfs::resolv_conf()?,
            machine_cas: fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
                .unwrap_or_default(),
            base_id,
        };
        for spec in specs {
            self.ensure_host(&mut state, &spec.name, limits[&spec.name], &ctx)?;
        }
        let mut keep: Vec<String> = all
            .iter()
            .flat_map(|s| s.hosts.values().map(|h| h.base.clone()))
            .collect();
        keep.extend(state.hosts.values().map(|h| h.base.clone()));
        keep.push(ctx.base_id.clone());
        image::collect_garbage(&self.settings.cache_dir, &keep, &self.ui)?;
        Ok(specs
            .iter()
            .map(|s| Self::host_view(&state.hosts[&s.name]))
            .collect())
    }

    /// Brings one recorded host to running: reuses it when everything is in place, otherwise (first
    /// start, a killed `up`, a reboot) rebuilds what is missing around its kept disk and starts it.
    fn ensure_host(
        &self,
        state: &mut EnvState,
        name: &str,
        memory: Option<u64>,
        ctx: &HostContext,
    ) -> Result<(), Error> {
        let mut rec = state.hosts[name].clone();
        let running = !system::nspawn_pids(&rec.machine).is_empty();
        if running
            && system::is_mounted(&rec.root())?
            && system::netns_exists(&rec.machine)
            && system::link_exists(&rec.veth)
        {
            hostfs::authorize_key(&rec.root(), &ctx.pubkey)?;
            self.ui
                .info(format!("local: {} already running at {}", name, rec.ip));
            return Ok(());
        }
        self.ui
            .info(format!("local: starting {} at {}", name, rec.ip));
        system::stop_machine(&rec.machine, STOP_GRACE)?;
        let fresh = fs::read_dir(rec.upper()).map_or(true, |mut d| d.next().is_none());
        if fresh && rec.base != ctx.base_id {
            rec.base = ctx.base_id.clone();
            state.hosts.insert(name.to_string(), rec.clone());
            state.save(&self.state_file())?;
        }
        let lower = image::rootfs(&self.settings.cache_dir, &rec.base);
        if !lower.is_dir() {
            return Err(Error::Unexpected(format!(
                "host {name} was made from base image {}, which is gone from {}; run `pipeline prod down` and `up` again to rebuild it",
                rec.base,
                self.settings.cache_dir.display()
            )));
        }
        for d in [rec.upper(), rec.work(), rec.root()] {
            system::create_dir(&d)?;
        }
        if fresh && self.settings.share_package_cache {
            let n = cache::seed(
                &image::package_cache(&self.settings.cache_dir),
                &rec.upper().join("var/cache/apt/archives"),
            )?;
            if n > 0 {
                self.ui
                    .info(format!("local: {name}: {n} cached packages linked in"));
            }
        }
        if !system::is_mounted(&rec.root())? {
            system::mount_overlay(&lower, &rec)?;
        }
        let kept_keys = self
            .settings
            .state_root
            .join("hostkeys")
            .join(&self.environment)
            .join(name);
        hostfs::configure(&rec.root(), name, &kept_keys, ctx)?;
        system::create_network(&rec)?;

        // Fresh cgroups for this start (recorded first), the old ones removed.
        for old in std::mem::take(&mut rec.cgroups) {
            system::remove_cgroup(&old)?;
        }
        rec.cgroups = system::cgroup_dirs(&rec.machine);
        if memory.is_some() && !rec.cgroups.iter().any(|d| system::has_memory_controller(d)) {
            self.ui.warn(format!(
                "host {name}: no memory cgroup controller on this machine, starting without a memory limit"
            ));
        }
        state.hosts.insert(name.to_string(), rec.clone());
        state.save(&self.state_file())?;
        system::create_cgroups(&rec.cgroups, memory)?;

        let pid = system::start_machine(&rec)?;
        rec.pid = Some(pid);
        state.hosts.insert(name.to_string(), rec.clone());
        state.save(&self.state_file())?;
        std::thread::sleep(Duration::from_millis(300));
        if system::nspawn_pids(&rec.machine).is_empty() {
            return Err(Error::Exited {
                host: name.to_string(),
                log: rec.console_log(),
                tail: system::tail(&rec.console_log(), 20),
            });
        }
        Ok(())
    }

    /// The blocking body of [`Provider::wait_ready`].
    fn wait_blocking(
        &self,
        names: &[String],
        wait: WaitFor,
        timeout: Duration,
    ) -> Result<Vec<Host>, Error> {
        let state = self.load_state()?.unwrap_or_else(|| self.empty_state());
        let recs: Vec<&HostRecord> = names
            .iter()
            .map(|n| self.record(&state, n))
            .collect::<Result<_, _>>()?;
        let deadline = Instant::now() + timeout;
        let results: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = recs
                .iter()
                .map(|rec| s.spawn(|| self.wait_one(rec, wait, deadline)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("readiness check panicked".into()))
                })
                .collect()
        });
        let failures: Vec<String> = recs
            .iter()
            .zip(&results)
            .filter_map(|(rec, r)| {
                r.as_ref().err().map(|why| {
                    format!(
                        "  {}: {why}\n    console log: {}\n    {}",
                        rec.name,
                        rec.console_log().display(),
                        system::tail(&rec.console_log(), 5).replace('\n', "\n    ")
                    )
                })
            })
            .collect();
        if !failures.is_empty() {
            return Err(Error::NotReady {
                secs: timeout.as_secs(),
                details: failures.join("\n"),
            });
        }
        Ok(recs.into_iter().map(Self::host_view).collect())
    }

    /// Waits for one host: its container running, and for [`WaitFor::Ssh`] systemd finished booting
    /// (`running`, or `degraded` with the failed units logged) as seen over SSH.
    fn wait_one(&self, rec: &HostRecord, wait: WaitFor, deadline: Instant) -> Result<(), String> {
        let mut last: String;
        loop {
            if system::nspawn_pids(&rec.machine).is_empty() {
                return Err("its container is not running (it exited; see the console log)".into());
            }
            if wait == WaitFor::Active {
                return Ok(());
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs()
                .clamp(1, 30);
            let probe = system::ssh(
                &self.key,
                rec.ip,
                format!("ask host {} whether systemd finished booting", rec.name),
                &format!("timeout {left} systemctl is-system-running --wait"),
            )
            .run_unchecked();
            match probe {
                Ok(out) => match out.stdout.trim() {
                    "running" => return Ok(()),
                    "degraded" => {
                        let failed = system::ssh(
                            &self.key,
                            rec.ip,
                            format!("list failed units on host {}", rec.name),
                            "systemctl --failed --no-legend --plain",
                        )
                        .run_unchecked()
                        .map(|o| o.stdout.trim().replace('\n', "; "))
                        .unwrap_or_default();
                        self.ui.warn(format!(
                            "host {} booted degraded (failed units: {failed})",
                            rec.name
                        ));
                        return Ok(());
                    }
                    "" => last = format!("SSH not answering yet ({})", out.stderr.trim()),
                    other => last = format!("systemd is `{other}`"),
                },
                Err(e) => return Err(e.to_string()),
            }
            if Instant::now() >= deadline {
                return Err(last);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Runs one cleanup step (each is a no-op when its resource is already gone).
    fn apply_cleanup(step: &Cleanup, package_cache: &Path) -> Result<(), Error> {
        match step {
            Cleanup::StopMachine { machine, .. } => system::stop_machine(machine, STOP_GRACE)?,
            Cleanup::Unmount(p) => system::unmount(p)?,
            Cleanup::RemoveCgroup(p) => system::remove_cgroup(p)?,
            Cleanup::DeleteNetns(n) => system::delete_netns(n)?,
            Cleanup::DeleteLink(n) => system::delete_link(n)?,
            Cleanup::HarvestPackages(upper) => {
                system::create_dir(package_cache)?;
                cache::harvest(&upper.join("var/cache/apt/archives"), package_cache, false)?;
            }
            Cleanup::RemoveDir(p) => system::remove_dir_all(p)?,
            Cleanup::DeleteNftTable(t) => system::nft_delete(t)?,
            Cleanup::RemoveState(p) => {
                system::remove_file(p)?;
                if let Some(dir) = p.parent() {
                    system::remove_dir_all(dir)?;
                }
            }
        }
        Ok(())
    }

    /// The blocking body of [`Provider::remove`]: each named host torn down like `down` does, then dropped
    /// from the state (saved after each, so an interruption loses nothing).
    fn remove_blocking(&mut self, names: &[String]) -> Result<Vec<String>, Error> {
        let _lock = self.lock()?;
        let Some(mut state) = self.load_state()? else {
            return Ok(Vec::new());
        };
        let package_cache = image::package_cache(&self.settings.cache_dir);
        let mut gone = Vec::new();
        for name in names {
            let Some(rec) = state.hosts.get(name).cloned() else {
                continue;
            };
            self.ui
                .info(format!("destroying host {name} ({})", rec.machine));
            for step in state::host_cleanup(&rec, self.settings.share_package_cache) {
                Self::apply_cleanup(&step, &package_cache)?;
            }
            state.hosts.remove(name);
            state.save(&self.state_file())?;
            gone.push(name.clone());
        }
        Ok(gone)
    }

    /// The blocking body of [`Provider::down`].
    fn down_blocking(&mut self) -> Result<Vec<String>, Error> {
        let _lock = self.lock()?;
        let Some(state) = self.load_state()? else {
            return Ok(Vec::new());
        };
        // Power all hosts off at once; the per-host steps below then find them stopped.
        let stops: Vec<Result<(), Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = state
                .hosts
                .values()
                .map(|h| {
                    s.spawn(|| {
                        system::stop_machine(&h.machine, STOP_GRACE)?;
                        // What nspawn left behind (a killed `up`): the container's own processes.
                        cgroup::end_processes(&h.name, &h.cgroups)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Unexpected("stop panicked".into())))
                })
                .collect()
        });
        stops.into_iter().collect::<Result<Vec<()>, Error>>()?;
        let package_cache = image::package_cache(&self.settings.cache_dir);
        for step in state::env_cleanup(
            &state,
            &self.state_file(),
            self.settings.share_package_cache,
        ) {
            Self::apply_cleanup(&step, &package_cache)?;
        }
        if self.load_all_states()?.is_empty() {
            system::restore_forwarding(&self.forwarding_file())?;
        }
        Ok(state.hosts.keys().cloned().collect())
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into())
}

fn generated_key_path(settings: &Settings) -> PathBuf {
    settings.state_root.join("ssh").join("id_ed25519")
}

/// The key to use: configured (`~` is `home`), else the user's usual keys in `home/.ssh`, else the
/// generated project key.
fn resolve_key(settings: &Settings, home: &Path) -> PathBuf {
    if let Some(k) = &settings.ssh_key {
        return match k.strip_prefix("~") {
            Ok(rest) => home.join(rest),
            Err(_) => k.clone(),
        };
    }
    ["id_ed25519", "id_rsa"]
        .iter()
        .map(|f| home.join(".ssh").join(f))
        .find(|p| p.exists())
        .unwrap_or_else(|| generated_key_path(settings))
}

impl Provider for Local {
    type Error = Error;

    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn connection(&self) -> Connection {
        Connection {
            user: "root".into(),
            private_key: self.key.clone(),
        }
    }

    async fn up(&mut self, specs: &[HostSpec], ui: &Ui) -> Result<Vec<Host>, Error> {
        self.ui = ui.clone();
        self.up_blocking(specs)
    }

    async fn list(&self) -> Result<Vec<Host>, Error> {
        Ok(self
            .load_state()?
            .map(|s| s.hosts.values().map(Self::host_view).collect())
            .unwrap_or_default())
    }

    async fn wait_ready(
        &self,
        names: &[String],
        wait: WaitFor,
        timeout: Duration,
        _ui: &Ui,
    ) -> Result<Vec<Host>, Error> {
        self.wait_blocking(names, wait, timeout)
    }

    async fn unrequested(&self, specs: &[HostSpec]) -> Result<Vec<String>, Error> {
        let state = self.load_state()?;
        Ok(crate::fleet::extras(
            specs,
            state
                .iter()
                .flat_map(|s| s.hosts.keys().map(String::as_str)),
        ))
    }

    async fn remove(&mut self, names: &[String], ui: &Ui) -> Result<Vec<String>, Error> {
        self.ui = ui.clone();
        self.remove_blocking(names)
    }

    async fn down(&mut self, ui: &Ui) -> Result<Vec<String>, Error> {
        self.ui = ui.clone();
        self.down_blocking()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Config;

    #[test]
    fn key_is_configured_then_ed25519_then_rsa_then_generated() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let mut settings = Settings::default();
        let generated = PathBuf::from("/var/lib/pipeline/local/ssh/id_ed25519");
        assert_eq!(resolve_key(&settings, h), generated);
        fs::create_dir_all(h.join(".ssh")).unwrap();
        fs::write(h.join(".ssh/id_rsa"), "").unwrap();
        assert_eq!(resolve_key(&settings, h), h.join(".ssh/id_rsa"));
        fs::write(h.join(".ssh/id_ed25519"), "").unwrap();
        assert_eq!(resolve_key(&settings, h), h.join(".ssh/id_ed25519"));
        settings.ssh_key = Some("~/keys/sandbox".into());
        assert_eq!(resolve_key(&settings, h), h.join("keys/sandbox"));
    }

    #[test]
    fn local_section_parses_and_a_typo_is_an_error_naming_the_key() {
        let cfg = Config::parse(
            "[local]\nsubnet = \"10.99.0.0/16\"\nextra_packages = [\"curl\"]\n",
            "pipeline.toml".into(),
        )
        .unwrap();
        let s: Settings = cfg.section("local").unwrap();
        assert_eq!(s.subnet, "10.99.0.0/16");
        assert_eq!(s.extra_packages, ["curl"]);
        assert_eq!(s.suite, "bookworm");
        let bad = Config::parse("[local]\nsubnett = \"x\"\n", "pipeline.toml".into()).unwrap();
        let err = bad.section::<Settings>("local").unwrap_err().to_string();
        assert!(err.contains("subnett"), "{err}");
    }

    #[test]
    fn invalid_settings_are_rejected_before_touching_the_machine() {
        let ui = Ui::new(true);
        let bad_subnet = Settings {
            subnet: "10.1.2.3/16".into(),
            ..Settings::default()
        };
        let err = Local::with_settings(bad_subnet, "dev", ui.clone())
            .err()
            .unwrap();
        assert!(err.to_string().contains("subnet"), "{err}");
        let bad_env = Local::with_settings(Settings::default(), "Dev_1", ui.clone())
            .err()
            .unwrap();
        assert!(
            bad_env.to_string().contains("environment name"),
            "{bad_env}"
        );
        let bad_memory = Settings {
            memory_limit: Some("lots".into()),
            ..Settings::default()
        };
        let err = Local::with_settings(bad_memory, "dev", ui).err().unwrap();
        assert!(err.to_string().contains("memory_limit"), "{err}");
    }
}
