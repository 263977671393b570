//! `pipeline monitor-setup`: plans monitoring from the inventory's groups (node_exporter on the itrust and
//! checkbox hosts, Prometheus + blackbox exporter + the dashboard on the monitor host), renders the entry
//! playbook `playbooks/monitor.yml.tera`, runs it through [`crate::ansible::PlaybookRun`] and prints the
//! dashboard's address.
//!
//! The plan is pure ([`plan`]): which hosts are scraped at which address, which app URLs are probed, and
//! which addresses may scrape the exporters. It reaches the roles as typed variables in `vars.json`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::ansible::PlaybookRun;
use crate::commands::deploy::App;
use crate::commands::playbook::{execute, load_inventory, RunOptions};
use crate::exit::UsageError;
use crate::inventory::Inventory;
use crate::settings::Global;
use crate::Outcome;

/// The entry playbook template.
pub const PLAYBOOK: &str = "monitor.yml";
/// The inventory group of the host that runs Prometheus and the dashboard.
pub const MONITOR_GROUP: &str = "monitor";

/// Set up Prometheus, node_exporter and the live dashboard for the hosts of an inventory.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Inventory written by `pipeline prod up` (groups [monitor] and [itrust] and/or [checkbox]).
    #[arg(short, long, value_name = "FILE", default_value = "inventory.ini")]
    pub inventory: PathBuf,
    #[command(flatten)]
    pub run: RunOptions,
}

/// The `[monitor]` section of pipeline.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Port node_exporter listens on (default 9100).
    pub node_exporter_port: Option<u16>,
    /// Where iTrust answers (default port 8080, path /iTrust2).
    pub itrust_port: Option<u16>,
    pub itrust_path: Option<String>,
    /// Where checkbox.io answers (default port 80, path /).
    pub checkbox_port: Option<u16>,
    pub checkbox_path: Option<String>,
}

/// An app the dashboard watches: the inventory group it runs on and where it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub group: &'static str,
    pub app: &'static str,
    pub port: u16,
    pub path: String,
}

impl MonitorConfig {
    /// The apps to monitor, with the config's ports and paths applied.
    pub fn apps(&self) -> Vec<AppSpec> {
        vec![
            AppSpec {
                group: App::Itrust.key(),
                app: App::Itrust.display(),
                port: self.itrust_port.unwrap_or(8080),
                path: self
                    .itrust_path
                    .clone()
                    .unwrap_or_else(|| "/iTrust2".into()),
            },
            AppSpec {
                group: App::Checkbox.key(),
                app: App::Checkbox.display(),
                port: self.checkbox_port.unwrap_or(80),
                path: self.checkbox_path.clone().unwrap_or_else(|| "/".into()),
            },
        ]
    }
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
                for h in hosts {
                    let address = h.address();
                    let host_part = if address.contains(':') {
                        format!("[{address}]") // IPv6 literal
                    } else {
                        address.to_string()
                    };
                    let path = if spec.path.starts_with('/') {
                        spec.path.clone()
                    } else {
                        format!("/{}", spec.path)
                    };
                    targets.push(Target {
                        host: h.name.clone(),
                        group: spec.group.to_string(),
                        app: spec.app.to_string(),
                        exporter: format!("{host_part}:{exporter_port}"),
                        url: format!("http://{host_part}:{}{path}", spec.port),
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
        let nodes: Vec<Value> = self
            .targets
            .iter()
            .map(|t| json!({"host": t.host, "address": t.exporter}))
            .collect();
        let mut vars = Map::new();
        vars.insert("node_exporter_port".into(), json!(exporter_port));
        vars.insert("node_exporter_allowed_scrapers".into(), json!(scrapers));
        vars.insert("prometheus_node_targets".into(), json!(nodes));
        vars.insert("prometheus_http_probes".into(), json!(probes));
        vars.insert("dashboard_hosts".into(), json!(probes));
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

pub async fn run(args: MonitorArgs, global: &Global) -> anyhow::Result<Outcome> {
    let ui = &global.ui;
    let config: MonitorConfig = global.config.section("monitor")?;
    let exporter_port = config.node_exporter_port.unwrap_or(9100);
    // A missing or malformed inventory, or one without the groups monitoring needs, is the user's to fix
    // (exit 2), as in `pipeline deploy`.
    let inventory = load_inventory(&args.inventory)?;
    let plan =
        plan(&inventory, &config.apps(), exporter_port).map_err(|e| UsageError(e.to_string()))?;
    for group in &plan.missing_groups {
        ui.warn(format!(
            "inventory {} has no [{group}] host: not monitoring it",
            args.inventory.display()
        ));
    }

    let mut run = PlaybookRun::new(
        "monitor-setup",
        PLAYBOOK,
        &args.inventory,
        &global.state_dir,
    );
    run.extra_vars = plan.role_vars(exporter_port);
    args.run.apply(&mut run, global)?;
    run.extra_vars.extend(plan.playbook_vars());
    ui.info(format!(
        "monitor-setup: node_exporter on {}; Prometheus and the dashboard on {}",
        plan.targets
            .iter()
            .map(|t| t.host.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        plan.monitors
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let report = execute(run, ui, "monitor-setup could not run Ansible".to_string()).await?;
    if !args.run.finish(&report, "monitor-setup")? {
        return Ok(Outcome::Fail);
    }
    if !args.run.check {
        for url in plan.dashboard_urls() {
            println!("Dashboard: {url}");
        }
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as the real ansible-inventory reads it.
    fn inventory(text: &str) -> Inventory {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.ini");
        std::fs::write(&path, text).unwrap();
        Inventory::load(&path).unwrap()
    }

    const FULL: &str = "[checkbox]\ncheckbox ansible_host=10.0.0.2\n[itrust]\nitrust ansible_host=10.0.0.1\n[monitor]\nmonitor ansible_host=10.0.0.3\n";

    fn default_plan(text: &str) -> Result<MonitorPlan, PlanError> {
        plan(&inventory(text), &MonitorConfig::default().apps(), 9100)
    }

    #[test]
    fn full_inventory_monitors_both_apps_from_the_monitor_host() {
        let p = default_plan(FULL).unwrap();
        assert_eq!(p.monitored_groups, vec!["itrust", "checkbox"]);
        assert!(p.missing_groups.is_empty());
        assert_eq!(
            p.targets,
            vec![
                Target {
                    host: "itrust".into(),
                    group: "itrust".into(),
                    app: "iTrust".into(),
                    exporter: "10.0.0.1:9100".into(),
                    url: "http://10.0.0.1:8080/iTrust2".into(),
                },
                Target {
                    host: "checkbox".into(),
                    group: "checkbox".into(),
                    app: "checkbox.io".into(),
                    exporter: "10.0.0.2:9100".into(),
                    url: "http://10.0.0.2:80/".into(),
                },
            ]
        );
        assert_eq!(p.dashboard_urls(), vec!["http://10.0.0.3/dashboard/"]);
    }

    #[test]
    fn role_vars_allow_only_the_monitor_to_scrape_and_list_every_target() {
        let vars = default_plan(FULL).unwrap().role_vars(9100);
        assert_eq!(vars["node_exporter_allowed_scrapers"], json!(["10.0.0.3"]));
        assert_eq!(
            vars["prometheus_node_targets"],
            json!([{"host": "itrust", "address": "10.0.0.1:9100"}, {"host": "checkbox", "address": "10.0.0.2:9100"}])
        );
        assert_eq!(
            vars["prometheus_http_probes"][1],
            json!({"host": "checkbox", "app": "checkbox.io", "url": "http://10.0.0.2:80/"})
        );
        assert_eq!(vars["dashboard_hosts"], vars["prometheus_http_probes"]);
    }

    #[test]
    fn a_fleet_is_probed_per_host_and_through_the_front_door() {
        let p = default_plan(
            "[checkbox]\ncheckbox-1 ansible_host=10.0.0.11\ncheckbox-2 ansible_host=10.0.0.12\n\
             [lb]\nlb ansible_host=10.0.0.9\n[monitor]\nm ansible_host=10.0.0.3\n",
        )
        .unwrap();
        let hosts: Vec<&str> = p.targets.iter().map(|t| t.host.as_str()).collect();
        assert_eq!(hosts, vec!["checkbox-1", "checkbox-2"]);
        let vars = p.role_vars(9100);
        assert_eq!(
            vars["prometheus_http_probes"][2],
            json!({"host": "lb", "app": "checkbox.io", "url": "http://10.0.0.9:80/"})
        );
        assert_eq!(
            vars["prometheus_node_targets"].as_array().unwrap().len(),
            2,
            "the lb is probed, not scraped"
        );
    }

    #[test]
    fn config_changes_ports_and_paths() {
        let config = MonitorConfig {
            node_exporter_port: Some(9200),
            itrust_port: Some(9090),
            itrust_path: Some("app".into()),
            ..MonitorConfig::default()
        };
        let p = plan(&inventory(FULL), &config.apps(), 9200).unwrap();
        assert_eq!(p.targets[0].url, "http://10.0.0.1:9090/app");
        assert_eq!(p.targets[0].exporter, "10.0.0.1:9200");
    }

    #[test]
    fn missing_app_group_is_skipped_and_reported() {
        let p = default_plan(
            "[itrust]\nitrust ansible_host=10.0.0.1\n[monitor]\nm ansible_host=10.0.0.3\n",
        )
        .unwrap();
        assert_eq!(p.monitored_groups, vec!["itrust"]);
        assert_eq!(p.missing_groups, vec!["checkbox"]);
    }

    #[test]
    fn inventory_without_monitor_group_is_refused_naming_the_groups_present() {
        let err = default_plan("[itrust]\nitrust ansible_host=10.0.0.1\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("[monitor]") && msg.contains("groups present: itrust"),
            "{msg}"
        );
    }

    #[test]
    fn inventory_without_app_hosts_is_refused() {
        let err = default_plan("[monitor]\nm ansible_host=10.0.0.3\n").unwrap_err();
        assert!(matches!(err, PlanError::NothingToMonitor { .. }), "{err}");
    }

    #[test]
    fn monitor_host_name_instead_of_ipv4_is_refused_for_the_firewall() {
        let err = default_plan(
            "[itrust]\nitrust ansible_host=10.0.0.1\n[monitor]\nmonitor ansible_host=mon.example.org\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("mon.example.org"), "{err}");
    }

    #[test]
    fn entry_playbook_gets_the_monitored_groups_as_variables() {
        let p = default_plan(FULL).unwrap();
        let vars = p.playbook_vars();
        assert_eq!(vars["pipeline_monitored_hosts"], "itrust:checkbox");
        assert_eq!(
            vars["pipeline_monitored_groups"],
            json!(["itrust", "checkbox"])
        );
        assert_eq!(vars["pipeline_monitor_hosts"], "monitor");
    }
}
