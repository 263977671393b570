//! `pipeline rollout APP --ref R` and `pipeline rollout status|abort|resume [APP]`: resolves the settings
//! ([`crate::rollout::settings`]), has [`crate::rollout::control`] plan, start, resume or abort the
//! rollout (or read its state), prints the plan, the status or how it ended, and exits with its outcome.

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::apps::App;
use crate::rollout::control;
use crate::rollout::exec;
use crate::rollout::settings::{self, RolloutOptions};
use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: Option<RolloutCommand>,
    /// The app to roll out: iTrust or checkbox.io.
    #[arg(value_parser = App::parse, required = true)]
    pub app: Option<App>,
    #[command(flatten)]
    pub options: RolloutOptions,
    /// Print what the rollout would do (actions, steps, hosts, decisions) and touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the plan as JSON.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show a recorded rollout: phase, weights, hosts, each step's verdict so far.
    Status(RecordedArgs),
    /// Send 100 % back to the stable hosts now and destroy the canary host, however far the rollout got
    /// (a running rollout of the app is stopped first).
    Abort(RecordedArgs),
    /// Continue an interrupted or paused rollout from its recorded step.
    Resume(RecordedArgs),
}

/// Which recorded rollout.
#[derive(Debug, Args)]
pub struct RecordedArgs {
    /// The app (may be left out when one rollout is recorded in the environment).
    #[arg(value_parser = App::parse)]
    pub app: Option<App>,
    /// The app's environment [default: prod].
    #[arg(long = "env", env = "PIPELINE_ENV", value_name = "NAME")]
    pub environment: Option<String>,
    /// Print the state as JSON (status only).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RolloutArgs, global: &Global) -> anyhow::Result<Outcome> {
    let result = match args.command {
        Some(RolloutCommand::Status(r)) => return status(&r, global),
        Some(RolloutCommand::Abort(r)) => {
            control::abort(global, r.environment.as_deref(), r.app).await?
        }
        Some(RolloutCommand::Resume(r)) => {
            control::resume(global, r.environment.as_deref(), r.app).await?
        }
        None => {
            let app = args.app.expect("clap requires APP without a subcommand");
            let prometheus = args.options.prometheus.clone();
            let s = settings::resolve(app, args.options, global)?;
            let fleet = control::fleet(&s)?;
            if args.dry_run {
                let p = control::plan(global, &s, &fleet)?;
                let metrics = control::plan_metrics(global, &s, &fleet, prometheus)?;
                let text = if args.json {
                    serde_json::to_string_pretty(&p).context("failed to serialize the plan")? + "\n"
                } else {
                    p.render() + &metrics
                };
                print!("{text}");
                return Ok(Outcome::Success);
            }
            control::start(global, s, fleet, prometheus).await?
        }
    };
    Ok(ended(&result.ending, global))
}

/// Says how the rollout ended; its exit status.
fn ended(ending: &exec::Ending, global: &Global) -> Outcome {
    match ending {
        exec::Ending::Promoted => global
            .ui
            .info("rollout: promoted: every stable host runs the new version, the canary is retired"),
        exec::Ending::Aborted => global
            .ui
            .info("rollout: aborted: 100 % of the requests to the stable hosts, no canary host"),
        exec::Ending::RolledBack { reason } => global.ui.warn(format!(
            "rollout: rolled back ({reason}): 100 % of the requests to the stable hosts, canary host destroyed"
        )),
        exec::Ending::Paused { index, verdict } => global.ui.warn(format!(
            "rollout: paused at step {} ({verdict:?}): traffic stays as it is; `pipeline rollout resume` or `pipeline rollout abort` decides",
            index + 1
        )),
    }
    ending.outcome()
}

fn status(r: &RecordedArgs, global: &Global) -> anyhow::Result<Outcome> {
    let control::Status { state, running } =
        control::status(global, r.environment.as_deref(), r.app)?;
    if r.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&state).context("failed to serialize the state")?
        );
    } else {
        print!("{}", state.render());
        match running {
            Some(pid) => println!("  process: running (pid {pid})"),
            None => println!("  process: not running"),
        }
    }
    Ok(Outcome::Success)
}
