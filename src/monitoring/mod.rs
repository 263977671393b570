//! Monitoring: node_exporter on the app hosts, Prometheus + blackbox exporter + Alertmanager + the
//! dashboard on the monitor host. [`plan`] works out, from the inventory's groups, which hosts are scraped
//! at which address, which app URLs are probed and which addresses may scrape the exporters; [`prepare`]
//! turns the plan into one run of the static entry playbook `playbooks/monitor.yml`, whose roles get
//! everything as typed variables in `vars.json`.
//!
//! Where the apps answer comes from the same variables `pipeline deploy` uses (`itrust_port`,
//! `itrust_context_path`, `checkbox_http_port`: role defaults < `[deploy.vars]` < `-e`, see
//! [`crate::apps`]), so the probes follow a deploy's settings. The old `[monitor] itrust_port` … keys
//! still work with a deprecation warning.
//!
//! - [`access`]: the dashboard login and Alertmanager's receivers.
//! - [`events`]: deploy, canary and rollout events pushed to the dashboard.
//! - [`rollout`]: a running rollout's weight and verdict so far on the dashboard.

pub mod access;
pub mod endpoint;
pub mod events;
pub mod rollout;

use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::ansible::PlaybookRun;
use crate::apps::{self, App, AppError};
use crate::inventory::Inventory;
use access::{
    auth_disabled, htpasswd_hash, AlertsConfig, AlertsError, DASHBOARD_SECRET, DASHBOARD_USER,
};

/// The entry playbook.
pub const PLAYBOOK: &str = "monitor.yml";
/// The inventory group of the host that runs Prometheus and the dashboard.
pub const MONITOR_GROUP: &str = "monitor";

/// The `[monitor]` section of pipeline.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Port node_exporter listens on (default 9100); `-e node_exporter_port=…` wins.
    pub node_exporter_port: Option<u16>,
    /// Deprecated: set `itrust_port` in `[deploy.vars]` (or `-e`) instead.
    pub itrust_port: Option<u16>,
    /// Deprecated: set `itrust_context_path` in `[deploy.vars]` (or `-e`) instead.
    pub itrust_path: Option<String>,
    /// Deprecated: set `checkbox_http_port` in `[deploy.vars]` (or `-e`) instead.
    pub checkbox_port: Option<u16>,
    /// Deprecated: the path the probe fetches on checkbox.io hosts (checkbox.io answers at `/`).
    pub checkbox_path: Option<String>,
    /// `[monitor.alerts]`: Alertmanager's receivers.
    #[serde(default)]
    pub alerts: AlertsConfig,
}

impl MonitorConfig {
    /// The deprecated `[monitor]` app keys as the app variables they stand for, and one warning per key.
    pub fn deprecated_app_vars(&self) -> (Map<String, Value>, Vec<String>) {
        let mut vars = Map::new();
        let mut warnings = Vec::new();
        let mut map = |old: &str, var: &str, value: Value| {
            warnings.push(format!(
                "[monitor] {old} is deprecated: set `{var} = {value}` in [deploy.vars] instead, so deploy and monitoring agree (it is used for now)"
            ));
            vars.insert(var.to_string(), value);
        };
        let it = App::Itrust.facts();
        let cb = App::Checkbox.facts();
        if let Some(p) = self.itrust_port {
            map("itrust_port", it.port_var, json!(p));
        }
        if let (Some(p), Some(var)) = (&self.itrust_path, it.path_var) {
            map("itrust_path", var, json!(p));
        }
        if let Some(p) = self.checkbox_port {
            map("checkbox_port", cb.port_var, json!(p));
        }
        if let Some(p) = &self.checkbox_path {
            warnings.push(format!(
                "[monitor] checkbox_path = {p:?} is deprecated: checkbox.io answers at {}, so remove it (the probe uses it for now)",
                cb.default_path
            ));
        }
        (vars, warnings)
    }
}

/// An app the dashboard watches: the inventory group it runs on and where it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub group: &'static str,
    pub app: &'static str,
    pub port: u16,
    pub path: String,
}

/// Every app with where it answers under `vars` (the apps' variables; defaults for what is unset).
pub fn app_specs(vars: &Map<String, Value>) -> Result<Vec<AppSpec>, AppError> {
    App::ALL
        .iter()
        .map(|app| {
            let e = app.endpoint(vars)?;
            Ok(AppSpec {
                group: app.key(),
                app: app.display(),
                port: e.port,
                path: e.path,
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("inventory {inventory} has no host in group [monitor], which runs Prometheus and the dashboard; `pipeline prod up` writes one (groups present: {present})")]
    NoMonitor { inventory: String, present: String },
    #[error("inventory {inventory} has no host to monitor: it needs a host in [itrust] or [checkbox] (groups present: {present})")]
    NothingToMonitor { inventory: String, present: String },
    #[error("monitor host {host} has address `{address}`, but the exporters' firewall needs an IPv4 address; set ansible_host=<IPv4> for it in the inventory")]
    MonitorNotIpv4 { host: String, address: String },
}

/// One monitored host: scraped at `exporter` and its app probed at `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Inventory host name; the `host` label in Prometheus and the card title on the dashboard.
    pub host: String,
    pub group: String,
    pub app: String,
    /// node_exporter's `address:port`.
    pub exporter: String,
    pub url: String,
}

/// What monitor-setup will set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorPlan {
    /// Hosts of [monitor] with their IPv4 addresses: each runs Prometheus and the dashboard, and only they
    /// may scrape the exporters.
    pub monitors: Vec<(String, Ipv4Addr)>,
    /// Inventory groups that get node_exporter, in playbook order.
    pub monitored_groups: Vec<String>,
    pub targets: Vec<Target>,
    /// App groups absent from the inventory (set up nothing for them; worth a warning).
    pub missing_groups: Vec<String>,
    /// Each monitored app probed through the front door (`lb`), when the inventory has one.
    pub front_door: Vec<Target>,
}

/// Works out the plan from the inventory's groups. Pure.
pub fn plan(
    inventory: &Inventory,
    apps: &[AppSpec],
    exporter_port: u16,
) -> Result<MonitorPlan, PlanError> {
    let present = || {
        let names: Vec<&str> = inventory.groups.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let inventory_name = inventory.path.display().to_string();
    let monitor_hosts = inventory
        .groups
        .get(MONITOR_GROUP)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| PlanError::NoMonitor {
            inventory: inventory_name.clone(),
            present: present(),
        })?;
    let monitors = monitor_hosts
        .iter()
        .map(|h| {
            h.address()
                .parse::<Ipv4Addr>()
                .map(|ip| (h.name.clone(), ip))
                .map_err(|_| PlanError::MonitorNotIpv4 {
                    host: h.name.clone(),
                    address: h.address().to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut targets = Vec::new();
    let mut monitored_groups = Vec::new();
    let mut missing_groups = Vec::new();
    for spec in apps {
        match inventory.groups.get(spec.group).filter(|h| !h.is_empty()) {
            None => missing_groups.push(spec.group.to_string()),
            Some(hosts) => {
                monitored_groups.push(spec.group.to_string());
                let endpoint = apps::Endpoint {
                    port: spec.port,
                    path: if spec.path.starts_with('/') {
                        spec.path.clone()
                    } else {
                        format!("/{}", spec.path)
                    },
                };
                for h in hosts {
                    let address = h.address();
                    let host_part = if address.contains(':') {
                        format!("[{address}]") // IPv6 literal
                    } else {
                        address.to_string()
                    };
                    targets.push(Target {
                        host: h.name.clone(),
                        group: spec.group.to_string(),
                        app: spec.app.to_string(),
                        exporter: format!("{host_part}:{exporter_port}"),
                        url: endpoint.url(address, true),
                    });
                }
            }
        }
    }
    if targets.is_empty() {
        return Err(PlanError::NothingToMonitor {
            inventory: inventory_name,
            present: present(),
        });
    }
    let front_door = crate::fleet::front_door_probes(inventory, apps, &monitored_groups);
    Ok(MonitorPlan {
        monitors,
        monitored_groups,
        targets,
        missing_groups,
        front_door,
    })
}

impl MonitorPlan {
    /// Typed variables for the roles (node_exporter, prometheus, dashboard); see each role's defaults.
    pub fn role_vars(&self, exporter_port: u16) -> Map<String, Value> {
        let scrapers: Vec<String> = self.monitors.iter().map(|(_, ip)| ip.to_string()).collect();
        let probes: Vec<Value> = self
            .targets
            .iter()
            .chain(&self.front_door)
            .map(|t| json!({"host": t.host, "app": t.app, "url": t.url}))
            .collect();
        // The dashboard groups its cards by app; `group` `lb` marks the front door's card.
        let cards: Vec<Value> = self
            .targets
            .iter()
            .chain(&self.front_door)
            .map(|t| json!({"host": t.host, "app": t.app, "url": t.url, "group": t.group}))
            .collect();
        let nodes: Vec<Value> = self
            .targets
            .iter()
            .map(|t| json!({"host": t.host, "address": t.exporter}))
            .collect();
        let mut vars = Map::new();
        vars.insert(apps::NODE_EXPORTER_PORT_VAR.into(), json!(exporter_port));
        vars.insert("node_exporter_allowed_scrapers".into(), json!(scrapers));
        vars.insert("prometheus_node_targets".into(), json!(nodes));
        vars.insert("prometheus_http_probes".into(), json!(probes));
        vars.insert("dashboard_hosts".into(), json!(cards));
        vars
    }

    /// The variables the static entry playbook reads: its host patterns and the groups it names.
    pub fn playbook_vars(&self) -> Map<String, Value> {
        let mut vars = Map::new();
        vars.insert(
            "pipeline_monitored_groups".into(),
            json!(self.monitored_groups),
        );
        vars.insert(
            "pipeline_monitored_hosts".into(),
            json!(self.monitored_groups.join(":")),
        );
        vars.insert("pipeline_monitor_hosts".into(), json!(MONITOR_GROUP));
        vars
    }

    /// The dashboard's address on each monitor host.
    pub fn dashboard_urls(&self) -> Vec<String> {
        self.monitors
            .iter()
            .map(|(_, ip)| format!("http://{ip}/dashboard/"))
            .collect()
    }
}

/// What monitor-setup was asked for, resolved by the command layer.
#[derive(Debug, Clone, Default)]
pub struct MonitorSettings {
    pub config: MonitorConfig,
    /// The apps' variables: `[deploy.vars]` < deprecated `[monitor]` keys < `-e`.
    pub app_vars: Map<String, Value>,
}

impl MonitorSettings {
    /// node_exporter's port: `-e node_exporter_port` > `[monitor] node_exporter_port` > 9100.
    pub fn exporter_port(&self) -> Result<u16, AppError> {
        match self.app_vars.get(apps::NODE_EXPORTER_PORT_VAR) {
            None => Ok(self
                .config
                .node_exporter_port
                .unwrap_or(apps::NODE_EXPORTER_PORT)),
            Some(v) => apps::port_of(v).ok_or_else(|| AppError::BadPort {
                var: apps::NODE_EXPORTER_PORT_VAR,
                value: v.to_string(),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Alerts(#[from] AlertsError),
    #[error(transparent)]
    Secret(#[from] crate::deploy::SecretError),
}

impl MonitorError {
    /// Whether the user fixes it in the inventory, config or flags (exit 2).
    pub fn is_usage(&self) -> bool {
        !matches!(self, MonitorError::Secret(_))
    }
}

/// A monitor-setup ready to run: apply `-e`, check mode and roles to `run`, then [`MonitorSetup::finalize`].
#[derive(Debug)]
pub struct MonitorSetup {
    pub plan: MonitorPlan,
    pub run: PlaybookRun,
    /// The dashboard login's password, once finalized (`None` with `dashboard_auth=false`).
    pub password: Option<String>,
}

/// Plans monitoring for `inventory` and builds the run: the plan's role variables and the receivers.
pub fn prepare(
    settings: &MonitorSettings,
    inventory: &Inventory,
    state_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<MonitorSetup, MonitorError> {
    let exporter_port = settings.exporter_port()?;
    let mut specs = app_specs(&settings.app_vars)?;
    if let Some(path) = &settings.config.checkbox_path {
        // Deprecated, warned about by `deprecated_app_vars`; checkbox.io has no path variable.
        specs
            .iter_mut()
            .filter(|s| s.group == App::Checkbox.key())
            .for_each(|s| s.path.clone_from(path));
    }
    let plan = plan(inventory, &specs, exporter_port)?;
    let mut run = PlaybookRun::new("monitor-setup", PLAYBOOK, &inventory.path, state_dir);
    run.extra_vars = plan.role_vars(exporter_port);
    run.extra_vars
        .extend(settings.config.alerts.role_vars(env)?);
    Ok(MonitorSetup {
        plan,
        run,
        password: None,
    })
}

impl MonitorSetup {
    /// After `-e`: the playbook's host patterns, and the dashboard login (generated once into the
    /// secrets store; only its hash goes to the host) unless `dashboard_auth=false`.
    pub fn finalize(&mut self, state_dir: &Path) -> Result<(), MonitorError> {
        self.run.extra_vars.extend(self.plan.playbook_vars());
        if auth_disabled(&self.run.extra_vars) {
            self.password = None;
            return Ok(());
        }
        let password = crate::deploy::secret(state_dir, DASHBOARD_SECRET)?;
        self.run
            .extra_vars
            .entry("dashboard_auth_password_hash")
            .or_insert_with(|| htpasswd_hash(&password).into());
        self.run
            .extra_vars
            .insert("dashboard_auth_user".into(), DASHBOARD_USER.into());
        self.password = Some(password);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
