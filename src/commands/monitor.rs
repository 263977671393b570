//! `pipeline monitor-setup`: resolves `[monitor]`, `[deploy.vars]` and `-e` into [`MonitorSettings`], has
//! [`crate::monitoring`] plan the monitoring from the inventory's groups and build the run of
//! `playbooks/monitor.yml`, runs it, and prints the dashboard's address and login.

use std::path::PathBuf;

use clap::Args;

use crate::commands::playbook::{execute, load_inventory, RunOptions};
use crate::deploy::{vars::parse_extra_vars, DeploySection};
use crate::exit::UsageError;
use crate::monitoring::access::DASHBOARD_USER;
use crate::monitoring::{self, MonitorConfig, MonitorError, MonitorSettings};
use crate::settings::Global;
use crate::Outcome;

/// Set up Prometheus, node_exporter and the live dashboard for the hosts of an inventory.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Inventory written by `pipeline prod up` (groups [monitor] and [itrust] and/or [checkbox]).
    #[arg(short, long, value_name = "FILE", default_value = "inventory.ini")]
    pub inventory: PathBuf,
    #[command(flatten)]
    pub run: RunOptions,
}

impl MonitorSettings {
    /// `[monitor]`, and the apps' variables: `[deploy.vars]` < deprecated `[monitor]` keys (each one
    /// warned about) < `-e`.
    pub fn resolve(args: &MonitorArgs, global: &Global) -> anyhow::Result<MonitorSettings> {
        let config: MonitorConfig = global.config.section("monitor")?;
        let deploy: DeploySection = global.config.section("deploy")?;
        let mut app_vars = deploy.vars_json();
        let (deprecated, warnings) = config.deprecated_app_vars();
        for w in &warnings {
            global.ui.warn(w);
        }
        app_vars.extend(deprecated);
        app_vars.extend(parse_extra_vars(&args.run.extra_vars).map_err(UsageError)?);
        Ok(MonitorSettings { config, app_vars })
    }
}

fn monitor_error(e: MonitorError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

pub async fn run(args: MonitorArgs, global: &Global) -> anyhow::Result<Outcome> {
    let ui = &global.ui;
    let settings = MonitorSettings::resolve(&args, global)?;
    // A missing or malformed inventory, or one without the groups monitoring needs, is the user's to fix
    // (exit 2), as in `pipeline deploy`.
    let inventory = load_inventory(&args.inventory)?;
    let mut setup = monitoring::prepare(&settings, &inventory, &global.state_dir, |name| {
        std::env::var(name).ok()
    })
    .map_err(monitor_error)?;
    for group in &setup.plan.missing_groups {
        ui.warn(format!(
            "inventory {} has no [{group}] host: not monitoring it",
            args.inventory.display()
        ));
    }
    args.run.apply(&mut setup.run, global)?;
    setup.finalize(&global.state_dir).map_err(monitor_error)?;
    if setup.password.is_none() {
        ui.warn("dashboard_auth=false: the dashboard, its Prometheus queries and the alerts are open to anyone who can reach port 80 of the monitor host");
    }
    ui.info(format!(
        "monitor-setup: {}",
        settings.config.alerts.describe()
    ));
    ui.info(format!(
        "monitor-setup: node_exporter on {}; Prometheus, Alertmanager and the dashboard on {}",
        setup
            .plan
            .targets
            .iter()
            .map(|t| t.host.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        setup
            .plan
            .monitors
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let report = execute(
        setup.run,
        ui,
        "monitor-setup could not run Ansible".to_string(),
    )
    .await?;
    if !args.run.finish(&report, "monitor-setup")? {
        return Ok(Outcome::Fail);
    }
    if !args.run.check {
        for url in setup.plan.dashboard_urls() {
            println!("Dashboard: {url}");
        }
        match &setup.password {
            Some(p) => println!(
                "Login: user {DASHBOARD_USER}, password {p} (kept in {})",
                crate::deploy::secrets::path(
                    &global.state_dir,
                    monitoring::access::DASHBOARD_SECRET
                )
                .display()
            ),
            None => println!("Login: none (dashboard_auth=false)"),
        }
    }
    Ok(Outcome::Success)
}
