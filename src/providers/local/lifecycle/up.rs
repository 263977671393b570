//! `up`: generates the project SSH key when it is the one to use, creates the hosts that do not exist yet
//! (state written before anything is made) and starts those that are stopped.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::process::Cmd;
use crate::providers::local::hostfs::HostContext;
use crate::providers::local::plan::{self, Subnet};
use crate::providers::local::settings::generated_key_path;
use crate::providers::local::state::{EnvState, HostRecord};
use crate::providers::local::{cache, hostfs, image, state, system, Error, Local, STOP_GRACE};
use crate::providers::{Host, HostSpec};

impl Local {
    /// Generates the project key if it is the one to use and missing; returns the public key line.
    pub(in crate::providers::local) fn ensure_key(&self) -> Result<String, Error> {
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

    /// The blocking body of [`crate::providers::Provider::up`].
    pub(in crate::providers::local) fn up_blocking(
        &mut self,
        specs: &[HostSpec],
    ) -> Result<Vec<Host>, Error> {
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
        system::nft_apply(&system::nft_script(&table, subnet, &ips), &table)?;

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
            rec.base.clone_from(&ctx.base_id);
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
}
