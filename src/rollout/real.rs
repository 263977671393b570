//! The rollout's world on real hosts ([`RealWorld`]): the canary host comes from the environment's
//! provider ([`super::canary_host`]: `<app>-canary`, made like the app's hosts, in an inventory of its
//! own next to the state file); the app's deploy (same roles, the app's group variables, `-e` and
//! `[deploy.vars]`) puts the new version on it, without the front door, and it is checked directly
//! ([`super::target`]); the canary's
//! weight is written on the `lb` host as `split.conf`/`map.conf` by the static playbook
//! `rollout-weight.yml` (the text through vars.json) and nginx reloads gracefully; a step's samples are
//! the new lines of the front door's JSON access log, fetched over SSH from where the last read stopped;
//! the promotion is the app's rolling deploy of the stable hosts through the front door.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::canary_host::CanaryHost;
use super::front_door;
use super::state::RolloutState;
use super::target::{self, Target};
use super::world::{DeployBatch, DeploySummary, Observed, RolloutWorld, LB_GROUP};
use crate::apps::App;
use crate::deploy::{self, DeploySection, DeploySettings};
use crate::inventory::{Inventory, InventoryHost};
use crate::process::Cmd;
use crate::settings::Global;

/// The world of one recorded rollout on the environment's hosts.
pub struct RealWorld<'a> {
    global: &'a Global,
    app: App,
    state: RolloutState,
    /// The canary host through the environment's provider (its own inventory).
    host: CanaryHost<'a>,
    lb: InventoryHost,
    /// The canary host once known (from its inventory).
    canary: Option<InventoryHost>,
    /// Bytes of the remote access log already read (`None`: not read yet; the first read only notes
    /// the end).
    offset: Option<u64>,
    pending: Vec<u8>,
    /// The synthetic load (`--load`) while it runs.
    synthetic: Option<super::load::SyntheticLoad>,
    /// The Prometheus metrics and the dashboard ([`super::monitor`]); none until the command sets it.
    pub monitor: super::monitor::Monitor,
    /// The inventory has a `[monitor]` host: its Prometheus scrapes the canary ([`super::scrape`]).
    monitored: bool,
}

impl<'a> RealWorld<'a> {
    /// The world for `state`: its provider, the front door host of its inventory.
    pub fn new(state: &RolloutState, global: &'a Global) -> anyhow::Result<Self> {
        let s = &state.settings;
        let app = App::parse(&s.app).map_err(|e| anyhow::anyhow!("{e}"))?;
        let inventory = load(&s.inventory)?;
        let lb = inventory.group(LB_GROUP).map_err(|e| {
            anyhow::anyhow!(
                "{e}; a rollout needs the fleet's front door (`pipeline prod up` with a `count`)"
            )
        })?[0]
            .clone();
        let host = CanaryHost::new(state, global)?;
        let canary = host.known();
        Ok(RealWorld {
            global,
            app,
            state: state.clone(),
            host,
            lb,
            canary,
            offset: None,
            pending: Vec::new(),
            synthetic: None,
            monitor: super::monitor::Monitor::default(),
            monitored: super::scrape::monitor_host(&inventory).is_some(),
        })
    }

    fn section(&self) -> anyhow::Result<DeploySection> {
        Ok(self.global.config.section("deploy")?)
    }

    /// The deploy of the new version over `inventory`'s `hosts` (behind `lb`, if given).
    fn deployment(
        &self,
        inventory: &std::path::Path,
        hosts: &[InventoryHost],
        lb: Option<&InventoryHost>,
    ) -> anyhow::Result<deploy::Deployment> {
        let section = self.section()?;
        let s = &self.state.settings;
        let max_fail_percentage = section.max_fail_percentage.unwrap_or(0);
        let settings = DeploySettings {
            app: self.app,
            inventory: inventory.to_path_buf(),
            source: s.source.clone(),
            git_ref: s.git_ref.clone(),
            artifact: s.artifact.clone(),
            forks: section.forks,
            ssh_timeout: section.ssh_timeout,
            config_vars: section.vars_json(),
            serial: section.serial.clone().unwrap_or_default(),
            max_fail_percentage,
        };
        let mut d = deploy::prepare(&settings, &self.global.state_dir)?;
        d.run
            .extra_vars
            .extend(deploy::vars::parse_extra_vars(&s.extra_vars).map_err(|e| anyhow::anyhow!(e))?);
        d.finalize(hosts, lb)?;
        Ok(d)
    }

    async fn run_deploy(
        &self,
        d: deploy::Deployment,
        what: String,
    ) -> anyhow::Result<DeploySummary> {
        let started = Instant::now();
        let report = crate::commands::playbook::execute(
            d.run,
            &self.global.ui,
            format!("failed to run the deploy of {what}"),
        )
        .await?;
        let bad: Vec<String> = report.bad_hosts().iter().map(|h| h.name.clone()).collect();
        let batches = d
            .rollout
            .as_ref()
            // A deploy through the front door (the promotion) goes in batches; the canary's does not.
            .filter(|r| r.lb.is_some())
            .map(|r| {
                let names: Vec<String> = r.hosts.iter().map(|h| h.name.clone()).collect();
                DeployBatch::of(&r.serial.batches(&names), &bad)
            })
            .unwrap_or_default();
        let text = if report.success {
            format!("{} deployed on {what}", d.version)
        } else {
            let first = match (&report.problem, report.failures.first()) {
                (Some(p), _) => format!(": {p}"),
                (None, Some(f)) => format!(": {f:?}"),
                (None, None) => String::new(),
            };
            format!(
                "the deploy of {} failed on {}{}",
                d.version,
                if bad.is_empty() {
                    what.clone()
                } else {
                    bad.join(", ")
                },
                first.chars().take(600).collect::<String>()
            )
        };
        Ok(DeploySummary {
            what,
            success: report.success,
            text,
            duration_s: started.elapsed().as_secs_f64(),
            batches,
        })
    }

    /// The canary's deploy: over the app's inventory with the canary's own and its membership of the
    /// app's group after it ([`CanaryHost::deploy_inventories`]), so it gets the app's group variables
    /// (`group_vars/` next to the app's inventory included) below `[deploy.vars]` and `-e`, as the app's
    /// hosts do; limited to the canary host, whose name is the play's hosts.
    pub(crate) fn canary_deployment(&self) -> anyhow::Result<deploy::Deployment> {
        let canary = self.canary()?.clone();
        let mut d = self.deployment(
            &self.state.settings.inventory,
            std::slice::from_ref(&canary),
            None,
        )?;
        d.run.more_inventories = self.host.deploy_inventories()?;
        d.run.limit = Some(canary.name.clone());
        for key in ["pipeline_hosts", "pipeline_front_door_hosts"] {
            d.run
                .extra_vars
                .insert(key.into(), canary.name.clone().into());
        }
        Ok(d)
    }

    fn canary(&self) -> anyhow::Result<&InventoryHost> {
        self.canary.as_ref().with_context(|| {
            format!(
                "the canary host {} is not in {}; run `pipeline rollout resume` to provision it again, or `pipeline rollout abort`",
                self.state.canary_host,
                self.host.inventory.display()
            )
        })
    }

    /// `[deploy.vars]` with `-e` over them, as the canary's deploy gets them.
    fn user_vars(&self) -> anyhow::Result<serde_json::Map<String, Value>> {
        super::target::user_vars(self.section()?.vars_json(), &self.state.settings.extra_vars)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Where the app answers on the canary host and how it is checked.
    fn target(&self) -> anyhow::Result<Target> {
        Ok(Target::resolve(self.app, &self.user_vars()?)?)
    }

    /// The canary's `address:port` as the front door logs it.
    fn canary_addr(&self) -> Option<String> {
        let c = self.canary.as_ref()?;
        Some(self.target().ok()?.backend(c.address()))
    }

    /// A front door setting of the role (`front_door_conf_dir`, …) as the deploy sets it, else `default`.
    fn front_door_var(&self, key: &str, default: &str) -> String {
        self.user_vars()
            .ok()
            .and_then(|v| v.get(key).and_then(|v| v.as_str().map(String::from)))
            .unwrap_or_else(|| default.into())
    }

    fn conf_dir(&self) -> String {
        self.front_door_var("front_door_conf_dir", "/etc/nginx/front_door")
    }

    /// `sh -c`-free remote command on the lb host over SSH (key and user from the inventory).
    fn ssh_lb(&self, script: &str) -> anyhow::Result<Vec<u8>> {
        let v = &self.lb.vars;
        let user = v.get("ansible_user").map(String::as_str).unwrap_or("root");
        let mut cmd = Cmd::new("read the front door's access log", "ssh")
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
            .args(["-o", "StrictHostKeyChecking=accept-new"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                crate::ansible::PlaybookRun::known_hosts(&self.global.state_dir).display()
            ));
        if let Some(key) = v.get("ansible_ssh_private_key_file") {
            cmd = cmd.arg("-i").arg(key);
        }
        let out = cmd
            .arg(format!("{user}@{}", self.lb.address()))
            .arg(script)
            .run()
            .with_context(|| {
                format!(
                    "failed to read the access log on the front door {}",
                    self.lb.name
                )
            })?;
        Ok(out.stdout.into_bytes())
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Inventory> {
    crate::commands::playbook::load_inventory(path)
}

impl RolloutWorld for RealWorld<'_> {
    fn now(&self) -> f64 {
        super::state::now_s()
    }

    async fn wait(&mut self, seconds: f64) {
        tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))).await;
    }

    async fn provision_canary(&mut self) -> anyhow::Result<()> {
        self.canary = Some(self.host.provision().await?);
        Ok(())
    }

    async fn deploy_canary(&mut self) -> anyhow::Result<DeploySummary> {
        let d = self.canary_deployment()?;
        let name = self.canary()?.name.clone();
        self.run_deploy(d, name).await
    }

    async fn check_canary(&mut self) -> anyhow::Result<()> {
        let canary = self.canary()?.clone();
        let target = self.target()?;
        let url = target.health_url(canary.address());
        target::check(
            &url,
            &canary.name,
            target.health_timeout(),
            target::CHECK_EVERY,
        )
        .await?;
        Ok(())
    }

    async fn set_weight(&mut self, weight: u8) -> anyhow::Result<()> {
        let app = self.app.key();
        let addr = self.canary_addr();
        let split = front_door::split_conf(app, addr.as_deref(), weight);
        let map = match (&self.canary, &addr) {
            (Some(c), Some(a)) if weight > 0 => front_door::map_conf(Some((&c.name, a))),
            _ => front_door::map_conf(None),
        };
        let mut run = crate::ansible::PlaybookRun::new(
            format!("rollout-weight-{app}"),
            "rollout-weight.yml",
            &self.state.settings.inventory,
            &self.global.state_dir,
        );
        let vars = &mut run.extra_vars;
        vars.insert("rollout_app".into(), app.into());
        vars.insert("rollout_front_door".into(), self.lb.name.clone().into());
        vars.insert("rollout_conf_dir".into(), self.conf_dir().into());
        vars.insert("rollout_split".into(), split.into());
        vars.insert("rollout_map".into(), map.into());
        let report = crate::commands::playbook::execute(
            run,
            &self.global.ui,
            format!(
                "failed to set the canary weight {weight} % on the front door {}",
                self.lb.name
            ),
        )
        .await?;
        if !report.success {
            anyhow::bail!(
                "the front door {} did not take the canary weight {weight} %: {}",
                self.lb.name,
                report.render_text().trim()
            );
        }
        Ok(())
    }

    async fn load(&mut self, rate: Option<f64>) -> anyhow::Result<()> {
        let (lb, app) = (self.lb.address().to_string(), self.app.key());
        let url = || {
            crate::fleet::front_door_urls(&lb, &[app])
                .into_iter()
                .next()
                .map(|(_, url)| url)
                .with_context(|| format!("{app} has no front door URL"))
        };
        super::load::set(&mut self.synthetic, rate, url, &self.global.ui).await
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observed>> {
        let file = format!(
            "{}/front_door_{}.json",
            self.front_door_var("front_door_access_log_dir", "/var/log/nginx"),
            self.app.key()
        );
        let from = self.offset.unwrap_or(u64::MAX);
        // The size first, then the bytes from `from` up to that size (a log shorter than `from` was
        // rotated: read again from its start).
        let script = format!(
            "f='{file}'; s=$(stat -c %s \"$f\" 2>/dev/null || echo 0); echo \"$s\"; o={o}; if [ \"$s\" -lt \"$o\" ]; then o=0; fi; tail -c +$((o+1)) \"$f\" 2>/dev/null | head -c $((s-o))",
            o = if from == u64::MAX { 0 } else { from },
        );
        let script = if from == u64::MAX {
            format!("stat -c %s '{file}' 2>/dev/null || echo 0")
        } else {
            script
        };
        let out = self.ssh_lb(&script)?;
        let nl = out.iter().position(|b| *b == b'\n').unwrap_or(out.len());
        let size: u64 = String::from_utf8_lossy(&out[..nl])
            .trim()
            .parse()
            .context("the front door's access log size is not a number")?;
        if from == u64::MAX {
            self.offset = Some(size);
            return Ok(Vec::new());
        }
        if size < from {
            self.pending.clear();
        }
        self.offset = Some(size);
        self.pending
            .extend_from_slice(out.get(nl + 1..).unwrap_or_default());
        let mut seen = Vec::new();
        let canary = self.canary_addr();
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            if let Some(o) =
                front_door::parse_line(&String::from_utf8_lossy(&line), canary.as_deref())
            {
                seen.push(o);
            }
        }
        Ok(seen)
    }

    async fn promote(&mut self) -> anyhow::Result<DeploySummary> {
        let inventory = load(&self.state.settings.inventory)?;
        let hosts = inventory
            .group(self.app.key())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_vec();
        let d = self.deployment(&self.state.settings.inventory, &hosts, Some(&self.lb))?;
        let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
        self.run_deploy(d, names.join(", ")).await
    }

    async fn retire_canary(&mut self) -> anyhow::Result<()> {
        self.host.retire().await?;
        self.canary = None;
        Ok(())
    }

    fn scrapes_canary(&self) -> bool {
        self.monitored
    }

    async fn scrape_canary(&mut self) -> anyhow::Result<()> {
        let canary = self.canary()?.clone();
        super::scrape::add(self.global, &self.state, &self.host.inventory, &canary).await
    }

    async fn unscrape_canary(&mut self) -> anyhow::Result<()> {
        super::scrape::remove(self.global, &self.state).await
    }

    fn metric_plan(&self) -> Vec<crate::canary::judge::MetricInput> {
        self.monitor.metric_plan()
    }

    async fn metrics(
        &mut self,
        from: f64,
        to: f64,
    ) -> anyhow::Result<(Vec<crate::canary::judge::MetricInput>, Vec<String>)> {
        self.monitor.metrics(from, to).await
    }

    fn recorded(&mut self, state: &RolloutState) {
        self.monitor.recorded(state);
    }
}
