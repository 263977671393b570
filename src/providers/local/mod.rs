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
mod error;
mod hostfs;
mod image;
mod lifecycle;
pub mod plan;
mod settings;
pub mod state;
mod system;

pub use self::error::Error;
pub use self::settings::Settings;
use self::settings::{home, resolve_key};
/// An `ssh` command into a sandbox host as root with the host's key and no known_hosts bookkeeping (the
/// provider's own probes use it; so do the end-to-end tests).
pub use self::system::ssh as ssh_command;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use self::plan::{Recipe, Subnet};
use self::state::{EnvState, HostRecord};
use crate::process::Cmd;
use crate::providers::{Connection, Host, HostSpec, Provider, ProviderKind, WaitFor};
use crate::settings::Global;
use crate::ui::Ui;

/// How long a host gets to power off cleanly on `down` before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

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
        Recipe {
            suite: self.settings.suite.clone(),
            mirror: self.settings.mirror.clone(),
            packages: plan::BASE_PACKAGES
                .iter()
                .map(ToString::to_string)
                .collect(),
            extra: self.settings.extra_packages.clone(),
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
