//! The canary host on the monitor's Prometheus, the real side of the executor's scrape actions: when the
//! rollout's inventory has a `[monitor]` host, the canary host (`<app>-canary`, in an inventory of its
//! own) gets node_exporter firewalled to the monitor host(s), and the monitor's Prometheus scrapes it
//! through file_sd files (`/etc/prometheus/file_sd/{node,apps}-rollout-<env>-<app>.json`, read by the
//! prometheus role's `file_sd_configs`; no reload) with exactly the labels monitor-setup gives the app's
//! hosts: `host` on its node_exporter target, `host` and `app` on its blackbox probe. So `$arm`'s
//! `host=~"checkbox-canary"` finds it. Both come from [`crate::monitoring::plan`] over the monitor hosts and
//! the canary host, with monitor-setup's variables (`[deploy.vars]` < deprecated `[monitor]` keys < `-e`),
//! and reach the roles through vars.json only. Removing the files is the static `rollout-unscrape.yml`.
//!
//! [`plan_actions`] puts the two actions into the dry-run plan.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::plan::{Plan, PlannedAction};
use super::state::RolloutState;
use crate::ansible::PlaybookRun;
use crate::inventory::{Inventory, InventoryHost};
use crate::monitoring::{self, MonitorConfig, MonitorSettings, MONITOR_GROUP};
use crate::settings::Global;

/// The entry playbooks.
pub const SCRAPE_PLAYBOOK: &str = "rollout-scrape.yml";
pub const UNSCRAPE_PLAYBOOK: &str = "rollout-unscrape.yml";

/// The first host of the inventory's `[monitor]` group, if any.
pub fn monitor_host(inventory: &Inventory) -> Option<String> {
    inventory
        .groups
        .get(MONITOR_GROUP)
        .and_then(|h| h.first())
        .map(|h| h.name.clone())
}

/// The plan's scrape action (after `check`) and unscrape action (before `retire`), when the inventory
/// has a monitor host. Pure.
pub fn plan_actions(plan: &mut Plan, monitor: Option<&str>) {
    let Some(monitor) = monitor else {
        return;
    };
    let (canary, stable) = (&plan.canary_host, plan.stable_hosts.join(", "));
    let scrape = PlannedAction {
        action: "scrape",
        weight: None,
        what: format!(
            "node_exporter on {canary} (firewalled to {monitor}), and {monitor}'s Prometheus scrapes it with the labels of {stable} (host=\"{canary}\"), before it sees traffic"
        ),
    };
    let unscrape = PlannedAction {
        action: "unscrape",
        weight: None,
        what: format!("{monitor}'s Prometheus stops scraping {canary} (on promotion, rollback or abort, before {canary} is destroyed)"),
    };
    if let Some(i) = plan.actions.iter().position(|a| a.action == "check") {
        plan.actions.insert(i + 1, scrape);
    }
    if let Some(i) = plan.actions.iter().position(|a| a.action == "retire") {
        plan.actions.insert(i, unscrape);
    }
}

/// The name of a rollout's target files on the monitor host: `rollout-<env>-<app>`.
pub fn file_sd_name(state: &RolloutState) -> String {
    format!(
        "rollout-{}-{}",
        state.settings.environment, state.settings.app
    )
}

/// monitor-setup's settings for the rollout: `[monitor]`, and the apps' variables from `[deploy.vars]`,
/// the deprecated `[monitor]` keys and the rollout's `-e`.
fn settings(global: &Global, state: &RolloutState) -> anyhow::Result<MonitorSettings> {
    let config: MonitorConfig = global.config.section("monitor")?;
    let deploy: crate::deploy::DeploySection = global.config.section("deploy")?;
    let mut app_vars = deploy.vars_json();
    app_vars.extend(config.deprecated_app_vars().0);
    app_vars.extend(
        crate::deploy::vars::parse_extra_vars(&state.settings.extra_vars)
            .map_err(|e| anyhow::anyhow!(e))?,
    );
    Ok(MonitorSettings { config, app_vars })
}

/// The variables of the scrape run: node_exporter's port and scrapers, the target files' name and
/// content, the plays' host patterns. Pure: `inventory` is the rollout's (its monitor hosts are used),
/// `canary` the canary host, `app` its inventory group, `name` the target files' name.
pub fn scrape_vars(
    settings: &MonitorSettings,
    inventory: &Inventory,
    canary: &InventoryHost,
    app: &str,
    name: &str,
) -> anyhow::Result<Map<String, Value>> {
    let port = settings.exporter_port()?;
    let mut specs = monitoring::app_specs(&settings.app_vars)?;
    specs.retain(|s| s.group == app);
    // The monitor hosts and the canary as the app's only host: monitor-setup's plan of it.
    let mut groups = std::collections::BTreeMap::new();
    if let Some(m) = inventory.groups.get(MONITOR_GROUP) {
        groups.insert(MONITOR_GROUP.to_string(), m.clone());
    }
    groups.insert(app.to_string(), vec![canary.clone()]);
    let only = Inventory {
        path: inventory.path.clone(),
        groups,
    };
    let plan = monitoring::plan(&only, &specs, port)?;
    let role = plan.role_vars(port);
    let mut vars = Map::new();
    for key in [
        crate::apps::NODE_EXPORTER_PORT_VAR,
        "node_exporter_allowed_scrapers",
    ] {
        vars.insert(key.into(), role[key].clone());
    }
    vars.insert(
        "prometheus_file_sd_node_targets".into(),
        role["prometheus_node_targets"].clone(),
    );
    // The canary's own probe (the front door's are monitor-setup's).
    let probes: Vec<Value> = plan
        .targets
        .iter()
        .map(|t| json!({"host": t.host, "app": t.app, "url": t.url}))
        .collect();
    vars.insert("prometheus_file_sd_http_probes".into(), json!(probes));
    vars.extend(common_vars(&canary.name, name, "present"));
    Ok(vars)
}

/// The variables of the unscrape run (and the scrape run's own): the plays' host patterns, the target
/// files' name and `state` (`present`, `absent`).
pub fn common_vars(canary: &str, name: &str, state: &str) -> Map<String, Value> {
    let mut vars = Map::new();
    vars.insert("rollout_canary_host".into(), canary.into());
    vars.insert("rollout_monitor_hosts".into(), MONITOR_GROUP.into());
    vars.insert("prometheus_file_sd_name".into(), name.into());
    vars.insert("prometheus_file_sd_state".into(), state.into());
    vars
}

/// An inventory directory holding both inventories (the rollout's, with the monitor host, and the
/// canary's), as links; removed when dropped.
struct Both {
    dir: tempfile::TempDir,
}

impl Both {
    fn new(state_dir: &Path, rollout: &Path, canary: &Path) -> anyhow::Result<Both> {
        crate::fsutil::ensure_private_dir(state_dir)
            .with_context(|| format!("failed to create {}", state_dir.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("rollout-scrape-inventory.")
            .tempdir_in(state_dir)
            .context("failed to create the scrape run's inventory directory")?;
        for (link, target) in [("a-rollout", rollout), ("b-canary", canary)] {
            let target = std::fs::canonicalize(target)
                .with_context(|| format!("the inventory {} is missing", target.display()))?;
            let ext = target
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default();
            std::os::unix::fs::symlink(&target, dir.path().join(format!("{link}{ext}")))
                .context("failed to link an inventory into the scrape run's directory")?;
        }
        Ok(Both { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

async fn run(global: &Global, run: PlaybookRun, what: String) -> anyhow::Result<()> {
    let report =
        crate::commands::playbook::execute(run, &global.ui, format!("failed to {what}")).await?;
    if !report.success {
        anyhow::bail!("could not {what}: {}", report.render_text().trim());
    }
    Ok(())
}

/// node_exporter on the canary host and its targets on the monitor's Prometheus, waited for until
/// Prometheus scrapes them.
pub async fn add(
    global: &Global,
    state: &RolloutState,
    canary_inventory: &Path,
    canary: &InventoryHost,
) -> anyhow::Result<()> {
    let inventory = crate::commands::playbook::load_inventory(&state.settings.inventory)?;
    let vars = scrape_vars(
        &settings(global, state)?,
        &inventory,
        canary,
        &state.settings.app,
        &file_sd_name(state),
    )?;
    let both = Both::new(
        &global.state_dir,
        &state.settings.inventory,
        canary_inventory,
    )?;
    let mut r = PlaybookRun::new(
        format!("rollout-scrape-{}", state.settings.app),
        SCRAPE_PLAYBOOK,
        both.path(),
        &global.state_dir,
    );
    r.extra_vars = vars;
    run(
        global,
        r,
        format!(
            "make the monitor's Prometheus scrape {} (node_exporter, targets)",
            canary.name
        ),
    )
    .await
}

/// The canary's target files removed from the monitor host (fine when they are gone).
pub async fn remove(global: &Global, state: &RolloutState) -> anyhow::Result<()> {
    let mut r = PlaybookRun::new(
        format!("rollout-unscrape-{}", state.settings.app),
        UNSCRAPE_PLAYBOOK,
        &state.settings.inventory,
        &global.state_dir,
    );
    // An unreachable monitor must not hold up an abort for long.
    r.ssh_timeout_secs = 10;
    r.extra_vars = common_vars(&state.canary_host, &file_sd_name(state), "absent");
    run(
        global,
        r,
        format!(
            "remove {}'s targets from the monitor's Prometheus",
            state.canary_host
        ),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn host(name: &str, ip: &str) -> InventoryHost {
        InventoryHost {
            name: name.into(),
            vars: BTreeMap::from([("ansible_host".to_string(), ip.to_string())]),
        }
    }

    fn inventory() -> Inventory {
        Inventory {
            path: "inventory.ini".into(),
            groups: BTreeMap::from([
                (
                    "checkbox".to_string(),
                    vec![
                        host("checkbox-1", "10.0.0.2"),
                        host("checkbox-2", "10.0.0.3"),
                    ],
                ),
                ("monitor".to_string(), vec![host("monitor", "10.0.0.9")]),
                ("lb".to_string(), vec![host("lb", "10.0.0.8")]),
            ]),
        }
    }

    #[test]
    fn the_canary_gets_the_labels_monitor_setup_gives_the_apps_hosts_and_only_the_monitor_may_scrape_it(
    ) {
        let settings = MonitorSettings::default();
        let canary = host("checkbox-canary", "10.0.0.7");
        let vars = scrape_vars(
            &settings,
            &inventory(),
            &canary,
            "checkbox",
            "rollout-prod-checkbox",
        )
        .unwrap();
        // What monitor-setup writes for the app's own hosts, for comparison.
        let setup = monitoring::plan(
            &inventory(),
            &monitoring::app_specs(&Map::new()).unwrap(),
            9100,
        )
        .unwrap()
        .role_vars(9100);
        let stable_node = &setup["prometheus_node_targets"][0];
        assert_eq!(
            stable_node,
            &json!({"host": "checkbox-1", "address": "10.0.0.2:9100"})
        );
        assert_eq!(
            vars["prometheus_file_sd_node_targets"],
            json!([{"host": "checkbox-canary", "address": "10.0.0.7:9100"}])
        );
        let stable_probe = setup["prometheus_http_probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["host"] == "checkbox-1")
            .unwrap()
            .clone();
        let canary_probe = &vars["prometheus_file_sd_http_probes"][0];
        assert_eq!(canary_probe["app"], stable_probe["app"]);
        assert_eq!(
            canary_probe["url"],
            stable_probe["url"]
                .as_str()
                .unwrap()
                .replace("10.0.0.2", "10.0.0.7")
        );
        assert_eq!(
            vars["prometheus_file_sd_http_probes"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "no front door probe in the canary's files"
        );
        assert_eq!(vars["node_exporter_allowed_scrapers"], json!(["10.0.0.9"]));
        assert_eq!(vars["node_exporter_port"], json!(9100));
        assert_eq!(vars["rollout_canary_host"], "checkbox-canary");
        assert_eq!(vars["rollout_monitor_hosts"], "monitor");
        assert_eq!(vars["prometheus_file_sd_name"], "rollout-prod-checkbox");
        assert_eq!(vars["prometheus_file_sd_state"], "present");
    }

    fn plan(monitor: Option<&str>) -> Plan {
        let s = crate::rollout::state::Recorded {
            app: "checkbox".into(),
            provider: "local".into(),
            environment: "prod".into(),
            inventory: "inventory.ini".into(),
            source: None,
            git_ref: Some("v2".into()),
            artifact: None,
            extra_vars: Vec::new(),
            steps: vec![5, 100],
            step_time_s: 20.0,
            max_step_time_s: 60.0,
            look_every_s: 5.0,
            warmup_s: 0.0,
            load: None,
            report_dir: "r".into(),
        };
        let target =
            crate::rollout::target::Target::resolve(crate::apps::App::Checkbox, &Map::new())
                .unwrap();
        let mut p = crate::rollout::plan::plan(
            &s,
            &["checkbox-1".into(), "checkbox-2".into()],
            "lb",
            &crate::canary::judge::JudgeConfig::default(),
            "f",
            &crate::fleet::Serial::default(),
            &target,
        );
        plan_actions(&mut p, monitor);
        p
    }

    #[test]
    fn the_plan_scrapes_the_canary_after_its_check_and_unscrapes_it_before_it_is_destroyed() {
        let p = plan(Some("monitor"));
        let order: Vec<_> = p.actions.iter().map(|a| a.action).collect();
        assert_eq!(
            order,
            [
                "provision",
                "deploy",
                "check",
                "scrape",
                "step",
                "step",
                "promote",
                "unscrape",
                "retire"
            ]
        );
        let text = p.render();
        assert!(
            text.contains("[4/9] scrape    node_exporter on checkbox-canary (firewalled to monitor), and monitor's Prometheus scrapes it with the labels of checkbox-1, checkbox-2 (host=\"checkbox-canary\"), before it sees traffic"),
            "{text}"
        );
        assert!(
            text.contains("[8/9] unscrape  monitor's Prometheus stops scraping checkbox-canary"),
            "{text}"
        );
        // Without a monitor host: no such action.
        let order: Vec<_> = plan(None).actions.iter().map(|a| a.action).collect();
        assert!(
            !order.contains(&"scrape") && !order.contains(&"unscrape"),
            "{order:?}"
        );
    }

    #[test]
    fn the_exporter_port_and_app_port_follow_monitor_setups_variables() {
        let mut app_vars = Map::new();
        app_vars.insert("node_exporter_port".into(), json!(9200));
        app_vars.insert("checkbox_http_port".into(), json!(8081));
        let settings = MonitorSettings {
            config: MonitorConfig::default(),
            app_vars,
        };
        let vars = scrape_vars(
            &settings,
            &inventory(),
            &host("checkbox-canary", "10.0.0.7"),
            "checkbox",
            "n",
        )
        .unwrap();
        assert_eq!(
            vars["prometheus_file_sd_node_targets"][0]["address"],
            "10.0.0.7:9200"
        );
        let url = vars["prometheus_file_sd_http_probes"][0]["url"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("http://10.0.0.7:8081"), "{url}");
    }
}
