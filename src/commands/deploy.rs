//! `pipeline deploy iTrust|checkbox.io`: resolves the flags and `[deploy]` into [`DeploySettings`], has
//! [`crate::deploy`] pick the targets and build the run of the app's entry playbook, runs it, prints the
//! report and where the app answers (on each host and through the front door), and records the deploy on
//! the dashboard. A rolling deploy that stopped says at which batch, on which host, at which task and why.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::commands::playbook::{execute, load_inventory, RunOptions};
use crate::deploy::{self, DeployError, DeploySection, DeploySettings, Targets};
use crate::exit::UsageError;
use crate::monitoring::events;
use crate::settings::Global;
use crate::Outcome;

pub use crate::apps::App;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The app to deploy: iTrust or checkbox.io (case-insensitive; `itrust` and `checkbox` work too).
    #[arg(value_parser = App::parse)]
    pub app: App,
    /// Inventory with an [itrust] or [checkbox] group (written by `pipeline prod up`).
    #[arg(short, long, value_name = "FILE", default_value = "inventory.ini")]
    pub inventory: PathBuf,
    /// Where the app comes from: a git URL the host clones, or a local git checkout, shipped from this
    /// machine as a git bundle (default: the app's upstream repository).
    #[arg(long, value_name = "GIT_URL_OR_PATH")]
    pub source: Option<String>,
    /// Branch, tag or commit of --source to deploy (default: the remote's default branch, or HEAD of a
    /// local checkout).
    #[arg(long = "ref", value_name = "BRANCH_OR_COMMIT")]
    pub git_ref: Option<String>,
    /// iTrust only: deploy this WAR instead of building from source with Maven.
    #[arg(long, value_name = "WAR")]
    pub artifact: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunOptions,
    /// Only render the run and have ansible-playbook parse it (`--syntax-check`); no host is contacted.
    #[arg(long)]
    pub syntax_check: bool,
}

impl DeployArgs {
    /// `pipeline deploy APP -i INVENTORY` with every other flag at its default (what `pipeline demo`
    /// starts from); a new flag gets its default here, next to its declaration.
    pub fn new(app: App, inventory: PathBuf) -> Self {
        DeployArgs {
            app,
            inventory,
            source: None,
            git_ref: None,
            artifact: None,
            run: RunOptions::default(),
            syntax_check: false,
        }
    }
}

impl DeploySettings {
    /// The flags over `[deploy]` in pipeline.toml.
    pub fn resolve(args: &DeployArgs, global: &Global) -> anyhow::Result<DeploySettings> {
        let section: DeploySection = global.config.section("deploy")?;
        let max_fail_percentage = section.max_fail_percentage.unwrap_or(0);
        crate::fleet::check_max_fail(max_fail_percentage)?;
        Ok(DeploySettings {
            app: args.app,
            inventory: args.inventory.clone(),
            source: args.source.clone(),
            git_ref: args.git_ref.clone(),
            artifact: args.artifact.clone(),
            forks: section.forks,
            ssh_timeout: section.ssh_timeout,
            config_vars: section.vars_json(),
            serial: section.serial.clone().unwrap_or_default(),
            max_fail_percentage,
        })
    }
}

/// A usage mistake in what was passed is exit 2; anything else keeps its own error.
fn deploy_error(e: DeployError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

pub async fn run(args: DeployArgs, global: &Global) -> anyhow::Result<Outcome> {
    let settings = DeploySettings::resolve(&args, global)?;
    let app = settings.app;
    let inventory = load_inventory(&args.inventory)?;
    let Targets { hosts, lb } = Targets::of(&inventory, app).map_err(deploy_error)?;
    let mut deployment = deploy::prepare(&settings, &global.state_dir).map_err(deploy_error)?;
    args.run.apply(&mut deployment.run, global)?;
    deployment
        .finalize(&hosts, lb.as_ref())
        .map_err(deploy_error)?;
    let rollout = deployment.rollout.clone();
    let urls = deployment
        .urls(&hosts)
        .map_err(|e| deploy_error(e.into()))?;

    if args.syntax_check {
        let run = deployment.run;
        let prepared = tokio::task::spawn_blocking(move || run.syntax_check())
            .await
            .context("the syntax check panicked")??;
        let shown = if args.run.emit.is_some() {
            prepared.playbook.display().to_string()
        } else {
            app.playbook()
        };
        global.ui.info(format!(
            "{}: the rendered playbook {shown} and its roles pass ansible-playbook --syntax-check",
            app.display()
        ));
        return Ok(Outcome::Success);
    }

    global.ui.info(format!(
        "Deploying {} to {} with Ansible{}",
        app.display(),
        hosts
            .iter()
            .map(|h| format!("{} ({})", h.name, h.address()))
            .collect::<Vec<_>>()
            .join(", "),
        if args.run.check { " (check mode)" } else { "" }
    ));
    let report = execute(
        deployment.run,
        &global.ui,
        format!("failed to deploy {}", app.display()),
    )
    .await?;
    let succeeded = args
        .run
        .finish(&report, &format!("deploying {}", app.display()))?;
    if !args.run.check {
        let event = deploy::event(app, &deployment.version, succeeded);
        events::record(&args.inventory, &global.state_dir, &global.ui, &event).await;
    }
    if !succeeded {
        if let Some(summary) = rollout.and_then(|r| r.stopped_summary(&report.failures)) {
            eprintln!("{summary}");
        }
        return Ok(Outcome::Fail);
    }
    if !args.run.check {
        for (host, url) in urls {
            println!("{} on {host}: {url}", app.display());
        }
        if let Some(url) = rollout.and_then(|r| r.front_door_url()) {
            println!("{} through the front door: {url}", app.display());
        }
    }
    Ok(Outcome::Success)
}
