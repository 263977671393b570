//! `pipeline rollout APP --ref R` and `pipeline rollout status|abort|resume [APP]`: resolves the settings
//! ([`crate::rollout::settings`]) and the recorded state, prints the plan (`--dry-run`) or the status, or
//! hands the rollout to the executor ([`crate::rollout::exec`]) and exits with its outcome.

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::apps::App;
use crate::commands::playbook::load_inventory;
use crate::exit::UsageError;
use crate::rollout::exec;
use crate::rollout::monitor::Monitor;
use crate::rollout::plan;
use crate::rollout::real::RealWorld;
use crate::rollout::settings::{self, RolloutOptions};
use crate::rollout::state::{RolloutState, StateStore};
use crate::rollout::RolloutError;
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
    let store = StateStore::new(&global.state_dir);
    let judge = exec::judge_config(global)?;
    match args.command {
        Some(RolloutCommand::Status(r)) => status(&store, r, global),
        Some(RolloutCommand::Abort(r)) => {
            let state = recorded(&store, &r, global)?;
            let mut real = RealWorld::new(&state, global)?;
            let _lock = stop_running(&store, &state, global).await?;
            // The state as the stopped rollout left it.
            let state = recorded(&store, &r, global)?;
            real.monitor = Monitor::dashboard_only(&state, global);
            // An abort of a rollout that had already ended changes nothing: no new event.
            let record = !(state.phase.is_done() && !state.canary_exists && state.weight == 0);
            let key = (
                state.settings.environment.clone(),
                state.settings.app.clone(),
            );
            let result = exec::abort(&store, state, &mut real, &global.ui, &judge).await;
            finish(real.monitor, &store, key, result, record, global).await
        }
        Some(RolloutCommand::Resume(r)) => {
            let state = recorded(&store, &r, global)?;
            if let crate::rollout::state::Phase::Done { outcome } = state.phase {
                return Err(usage_or(RolloutError::Finished {
                    app: state.settings.app.clone(),
                    outcome: outcome.as_str(),
                }));
            }
            let mut real = RealWorld::new(&state, global)?;
            real.monitor = Monitor::resolve(&state, global)?;
            let key = (
                state.settings.environment.clone(),
                state.settings.app.clone(),
            );
            let result = exec::resume(&store, state, &mut real, &global.ui, &judge).await;
            finish(real.monitor, &store, key, result, true, global).await
        }
        None => {
            let app = args.app.expect("clap requires APP without a subcommand");
            let prometheus = args.options.prometheus.clone();
            let s = settings::resolve(app, args.options, global)?;
            let inventory = load_inventory(&s.inventory)?;
            let stable: Vec<String> = inventory
                .group(app.key())
                .map_err(|e| UsageError(e.to_string()))?
                .iter()
                .map(|h| h.name.clone())
                .collect();
            let front_door = inventory
                .group(crate::rollout::world::LB_GROUP)
                .map_err(|e| {
                    UsageError(format!(
                        "{e}; a rollout splits the app's requests at the front door, the [lb] host of a fleet (`[prod] {}_count` and `pipeline prod up`)",
                        app.key()
                    ))
                })?[0]
                .name
                .clone();
            let state_file = store.path(&s.environment, &s.app);
            if args.dry_run {
                let p = plan::plan(
                    &s,
                    &stable,
                    &front_door,
                    &judge,
                    &state_file.display().to_string(),
                );
                let mut preview =
                    RolloutState::new(s.clone(), stable, p.canary_host.clone(), front_door);
                preview.prometheus = prometheus;
                let metrics = crate::rollout::monitor::dry_run_line(&preview, global)?;
                let text = if args.json {
                    serde_json::to_string_pretty(&p).context("failed to serialize the plan")? + "\n"
                } else {
                    p.render() + &metrics
                };
                print!("{text}");
                return Ok(Outcome::Success);
            }
            let mut state = RolloutState::new(s, stable, plan::canary_host(app.key()), front_door);
            state.prometheus = prometheus;
            let mut real = RealWorld::new(&state, global)?;
            real.monitor = Monitor::resolve(&state, global)?;
            let key = (
                state.settings.environment.clone(),
                state.settings.app.clone(),
            );
            let result = exec::start(&store, state, &mut real, &global.ui, &judge).await;
            finish(real.monitor, &store, key, result, true, global).await
        }
    }
}

/// The dashboard's last view of the rollout and (with `record`) its event (see [`Monitor::finish`]), then
/// how it ended.
async fn finish(
    monitor: Monitor,
    store: &StateStore,
    (env, app): (String, String),
    result: anyhow::Result<exec::RunResult>,
    record: bool,
    global: &Global,
) -> anyhow::Result<Outcome> {
    let state = store.load(&env, &app).ok().flatten();
    let ending = result.as_ref().ok().filter(|_| record).map(|r| &r.ending);
    if let Some(state) = &state {
        monitor.finish(state, ending, &global.ui).await;
    }
    Ok(ended(&result?.ending, global))
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

fn usage_or(e: RolloutError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

/// The recorded rollout `r` names (or the only one in the environment).
fn recorded(
    store: &StateStore,
    r: &RecordedArgs,
    _global: &Global,
) -> anyhow::Result<RolloutState> {
    let environment = r.environment.clone().unwrap_or_else(|| "prod".into());
    crate::provision::check_environment(&environment)?;
    match r.app {
        Some(app) => store
            .load(&environment, app.key())
            .map_err(usage_or)?
            .ok_or_else(|| {
                usage_or(RolloutError::NoneRecorded {
                    app: Some(app.display().into()),
                    environment,
                })
            }),
        None => {
            let mut all = store.all(&environment).map_err(usage_or)?;
            match all.len() {
                0 => Err(usage_or(RolloutError::NoneRecorded {
                    app: None,
                    environment,
                })),
                1 => Ok(all.remove(0)),
                n => Err(usage_or(RolloutError::Ambiguous {
                    count: n,
                    environment,
                    apps: all
                        .iter()
                        .map(|s| s.settings.app.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                })),
            }
        }
    }
}

fn status(store: &StateStore, r: RecordedArgs, global: &Global) -> anyhow::Result<Outcome> {
    let state = recorded(store, &r, global)?;
    if r.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&state).context("failed to serialize the state")?
        );
    } else {
        let running = match store.lock(&state.settings.environment, &state.settings.app) {
            Ok(_free) => "not running",
            Err(RolloutError::Busy { .. }) => "running",
            Err(e) => return Err(e.into()),
        };
        print!("{}", state.render());
        println!(
            "  process: {running}{}",
            if running == "running" {
                format!(" (pid {})", state.pid)
            } else {
                String::new()
            }
        );
    }
    Ok(Outcome::Success)
}

/// The rollout lock; a live rollout holding it is sent SIGTERM first (it stops where it is, the state
/// says what was under way) and given 60 s to let go.
async fn stop_running(
    store: &StateStore,
    state: &RolloutState,
    global: &Global,
) -> anyhow::Result<crate::lock::FileLock> {
    let (env, app) = (&state.settings.environment, &state.settings.app);
    match store.lock(env, app) {
        Ok(lock) => Ok(lock),
        Err(RolloutError::Busy { pid, .. }) => {
            if let Some(pid) = pid.filter(|p| *p > 1 && *p != std::process::id()) {
                global.ui.info(format!(
                    "rollout: stopping the running rollout of {app} (pid {pid})"
                ));
                // SAFETY: kill has no memory-safety preconditions; the pid holds the rollout's lock.
                unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                }
            }
            Ok(store
                .lock_within(env, app, std::time::Duration::from_secs(60))
                .await?)
        }
        Err(e) => Err(e.into()),
    }
}
