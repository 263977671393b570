//! `pipeline demo`: the whole job on the local sandbox, with no cloud account and no GitHub: the prod hosts
//! (`prod up --provider local`), iTrust and checkbox.io deployed from the bundled example apps, then a canary
//! of the bundled preview service, `master` against `broken`. One progress line per stage; at the end, where
//! the reports are. The prod hosts are kept (so they can be looked at); the canary hosts are destroyed.
//! What each stage does lives in [`crate::demo`]; this file runs them in order and prints.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::canary::example;
use crate::canary::judge::Verdict;
use crate::canary::settings::CanarySettings;
use crate::commands::canary as canary_cmd;
use crate::commands::deploy::{self, App, DeployArgs};
use crate::demo::{self, DemoOutcome, DemoRequest, Stages, StandIn};
use crate::provision;
use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Length of the canary's load window.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Where the reports go [default: demo-report/<UTC time>].
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Keep the canary hosts too (blue, green, proxy); the prod hosts are always kept.
    #[arg(long)]
    pub keep: bool,
    /// Environment of the prod hosts (itrust, checkbox, monitor).
    #[arg(long, default_value = "prod")]
    pub prod_env: String,
    /// Environment of the canary hosts (blue, green, proxy).
    #[arg(long, default_value = "canary")]
    pub canary_env: String,
}

pub async fn run(args: DemoArgs, global: &Global) -> anyhow::Result<Outcome> {
    demo::prerequisites().map_err(anyhow::Error::msg)?;
    let ui = &global.ui;
    let req = DemoRequest::new(
        args.duration,
        args.report_dir,
        args.keep,
        args.prod_env,
        args.canary_env,
    );
    std::fs::create_dir_all(&req.report_dir).with_context(|| {
        format!(
            "cannot create the report directory {}",
            req.report_dir.display()
        )
    })?;
    let stages = Stages::new(ui);

    // 1. The prod hosts.
    stages.start(
        1,
        "prod up --provider local: itrust, checkbox and monitor as local containers",
    )?;
    let request = req.prod_request(&global.config)?;
    // The prod hosts stay after the demo by design; a run a signal stops names them.
    crate::signals::leftover(req.prod_leftover(), String::new(), None).keep();
    tokio::select! {
        r = provision::up(global, &request) => r,
        sig = crate::signals::cancelled() => Err(crate::signals::Interrupted(sig).into()),
    }
    .context("demo: failed to bring up the prod hosts")?;

    // 2-3. The apps, from the bundled stand-ins (no GitHub, no Maven Central).
    let work = global.state_dir.join("demo");
    crate::fsutil::ensure_private_dir(&work)
        .with_context(|| format!("cannot create {}", work.display()))?;
    let mut deploy_reports = Vec::new();
    for (n, app) in [(2, App::Itrust), (3, App::Checkbox)] {
        stages.start(
            n,
            &format!("deploy {} from the bundled stand-in", app.display()),
        )?;
        let report = req.deploy_report(app);
        let mut args = DeployArgs::new(app, req.inventory());
        args.run.report = Some(report.clone());
        match demo::stand_in(app, &work).context("demo")? {
            StandIn::Artifact(war) => args.artifact = Some(war),
            StandIn::Source { repo, extra_vars } => {
                args.source = Some(repo.display().to_string());
                args.run.extra_vars.extend(extra_vars);
            }
        }
        let outcome = deploy::run(args, global)
            .await
            .with_context(|| format!("demo: failed to deploy {}", app.display()))?;
        if outcome != Outcome::Success {
            anyhow::bail!(
                "demo: the {} deploy failed; its report is {}",
                app.display(),
                report.display()
            );
        }
        deploy_reports.push(report);
    }

    // 4. The canary.
    stages.start(
        4,
        "canary of the bundled preview service: master (blue) against broken (green)",
    )?;
    let repo = example::make_repo(&global.state_dir.join("demo").join("preview-service"))
        .context("demo: failed to build the example repository")?;
    let settings = CanarySettings::resolve("master", "broken", req.canary_options(&repo), global)?;
    let result = canary_cmd::execute(&settings, global)
        .await
        .context("demo: the canary failed to run")?;

    print!(
        "{}",
        demo::summary(&DemoOutcome {
            elapsed: stages.elapsed(),
            inventory: &req.inventory(),
            prod_env: &req.prod_env,
            deploy_reports: &deploy_reports,
            canary: &result,
        })
    );
    match result.judgement.verdict {
        Verdict::Fail => Ok(Outcome::Success),
        other => {
            ui.warn(format!(
                "the canary of master against broken should FAIL but gave {}: see the report",
                other.as_str()
            ));
            Ok(other.outcome())
        }
    }
}
