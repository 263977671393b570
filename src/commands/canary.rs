//! `pipeline canary BASELINE CANARY`: resolves the settings, then either prints the plan (`--dry-run`)
//! or runs it ([`crate::canary::exec`]) against the real world, records the verdict on the monitoring
//! dashboard, and exits with the verdict's code.

use anyhow::Context;
use clap::Args;

use crate::canary::exec::{self, CanaryResult};
use crate::canary::settings::{CanaryOptions, CanarySettings};
use crate::canary::world::RealWorld;
use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// Baseline branch or revision, deployed on host `blue` (e.g. master).
    pub baseline: String,
    /// Canary branch or revision, deployed on host `green` (e.g. broken).
    pub canary: String,
    #[command(flatten)]
    pub options: CanaryOptions,
    /// Print what the run would do (stages, hosts, roles, request, load, judge, looks) and touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the plan as JSON.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
}

pub async fn run(args: CanaryArgs, global: &Global) -> anyhow::Result<Outcome> {
    let settings = CanarySettings::resolve(&args.baseline, &args.canary, args.options, global)?;
    if args.dry_run {
        let plan = crate::canary::plan::plan(&settings);
        let text = if args.json {
            serde_json::to_string_pretty(&plan).context("failed to serialize the plan")? + "\n"
        } else {
            plan.render()
        };
        print!("{text}");
        return Ok(Outcome::Success);
    }
    let result = execute(&settings, global).await?;
    let event = crate::monitoring::events::Event::new(
        "canary",
        crate::commands::deploy::App::Checkbox.display(),
        &format!("{}..{}", args.baseline, args.canary),
        result.judgement.verdict.as_str(),
    );
    crate::monitoring::events::record(
        &settings.monitor_inventory,
        &global.state_dir,
        &global.ui,
        &event,
    )
    .await;
    Ok(result.judgement.verdict.outcome())
}

/// Runs the canary against the real hosts (`pipeline demo` calls this too).
pub async fn execute(settings: &CanarySettings, global: &Global) -> anyhow::Result<CanaryResult> {
    let mut world = RealWorld { settings, global };
    exec::execute(settings, &mut world, &global.ui).await
}
