//! A rollout as the command line asks for it, minus the printing: the fleet a new rollout starts from
//! (the app's hosts and the front door of the inventory), which recorded rollout `status`, `resume` and
//! `abort` mean (the app's, or the only one of the environment), and the start, resume and abort of a
//! rollout on the environment's hosts ([`RealWorld`]); an abort first stops a live rollout of the app.
//! `commands/rollout.rs` resolves the settings, calls one of these and prints.

use crate::apps::App;
use crate::exit::UsageError;
use crate::settings::Global;

use super::exec::{self, RunResult};
use super::monitor::Monitor;
use super::plan::{self, Plan};
use super::real::RealWorld;
use super::state::{Phase, Recorded, RolloutState, StateStore};
use super::target::Target;
use super::world::LB_GROUP;
use super::RolloutError;

/// The environment a recorded rollout is looked up in when none is named.
pub const DEFAULT_ENVIRONMENT: &str = "prod";

/// The hosts a new rollout starts from, as the inventory has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// The app's hosts (promoted at the end), in inventory order.
    pub stable: Vec<String>,
    /// The front door host (the `[lb]` group's first host).
    pub front_door: String,
    /// The monitor host (the `[monitor]` group's first host), whose Prometheus scrapes the canary.
    pub monitor: Option<String>,
}

/// The app's hosts and the front door of `s`'s inventory; a missing group is the user's to fix.
pub fn fleet(s: &Recorded) -> anyhow::Result<Fleet> {
    let app = App::parse(&s.app).map_err(UsageError)?;
    let inventory = crate::commands::playbook::load_inventory(&s.inventory)?;
    let stable = inventory
        .group(app.key())
        .map_err(|e| UsageError(e.to_string()))?
        .iter()
        .map(|h| h.name.clone())
        .collect();
    let front_door = inventory
        .group(LB_GROUP)
        .map_err(|e| {
            UsageError(format!(
                "{e}; a rollout splits the app's requests at the front door, the [lb] host of a fleet (`[prod.hosts.{}] count` or `[prod] front_door = true`, then `pipeline prod up`)",
                app.key()
            ))
        })?[0]
        .name
        .clone();
    let monitor = super::scrape::monitor_host(&inventory);
    Ok(Fleet {
        stable,
        front_door,
        monitor,
    })
}

/// What a new rollout of `s` over `fleet` will do (`--dry-run`); touches nothing.
pub fn plan(global: &Global, s: &Recorded, fleet: &Fleet) -> anyhow::Result<Plan> {
    let judge = exec::judge_config(global)?;
    let state_file = StateStore::new(&global.state_dir).path(&s.environment, &s.app);
    let section: crate::deploy::DeploySection = global.config.section("deploy")?;
    let target = target(&section, s)?;
    let mut p = plan::plan(
        s,
        &fleet.stable,
        &fleet.front_door,
        &judge,
        &state_file.display().to_string(),
        &section.serial.unwrap_or_default(),
        &target,
    );
    super::scrape::plan_actions(&mut p, fleet.monitor.as_deref());
    Ok(p)
}

/// For `--dry-run`: the `[canary]` Prometheus metrics a rollout of `s` would judge, checked (exit 2 on a
/// mistake) and named in a line of the plan; empty without metrics.
pub fn plan_metrics(
    global: &Global,
    s: &Recorded,
    fleet: &Fleet,
    prometheus: Option<String>,
) -> anyhow::Result<String> {
    let mut preview = RolloutState::new(
        s.clone(),
        fleet.stable.clone(),
        plan::canary_host(&s.app),
        fleet.front_door.clone(),
    );
    preview.prometheus = prometheus;
    super::monitor::dry_run_line(&preview, global)
}

/// Where the app of `s` will answer on the canary host (`[deploy.vars]` and `-e`); a variable that
/// says nothing usable is the user's to fix, before any host is made.
fn target(section: &crate::deploy::DeploySection, s: &Recorded) -> anyhow::Result<Target> {
    let app = App::parse(&s.app).map_err(UsageError)?;
    let vars = super::target::user_vars(section.vars_json(), &s.extra_vars).map_err(UsageError)?;
    Ok(Target::resolve(app, &vars).map_err(|e| UsageError(e.to_string()))?)
}

/// Starts a new rollout of `s` over `fleet` on the environment's hosts; `prometheus` (`--prometheus`)
/// is recorded for a resume.
pub async fn start(
    global: &Global,
    s: Recorded,
    fleet: Fleet,
    prometheus: Option<String>,
) -> anyhow::Result<RunResult> {
    target(&global.config.section("deploy")?, &s)?;
    let store = StateStore::new(&global.state_dir);
    let judge = exec::judge_config(global)?;
    let canary = plan::canary_host(&s.app);
    let mut state = RolloutState::new(s, fleet.stable, canary, fleet.front_door);
    state.prometheus = prometheus;
    let mut real = RealWorld::new(&state, global)?;
    real.monitor = Monitor::resolve(&state, global)?;
    let key = key(&state);
    let result = exec::start(&store, state, &mut real, &global.ui, &judge).await;
    finish(real.monitor, &store, key, result, true, global).await
}

fn key(state: &RolloutState) -> (String, String) {
    (
        state.settings.environment.clone(),
        state.settings.app.clone(),
    )
}

/// The dashboard's last view of the rollout and (with `record`) its event (see [`Monitor::finish`]), then
/// the result.
async fn finish(
    monitor: Monitor,
    store: &StateStore,
    (env, app): (String, String),
    result: anyhow::Result<RunResult>,
    record: bool,
    global: &Global,
) -> anyhow::Result<RunResult> {
    let state = store.load(&env, &app).ok().flatten();
    let ending = result.as_ref().ok().filter(|_| record).map(|r| &r.ending);
    if let Some(state) = &state {
        monitor.finish(state, ending, &global.ui).await;
    }
    result
}

/// Continues the recorded rollout of `app` (or the environment's only one) from its recorded action.
pub async fn resume(
    global: &Global,
    environment: Option<&str>,
    app: Option<App>,
) -> anyhow::Result<RunResult> {
    let store = StateStore::new(&global.state_dir);
    let judge = exec::judge_config(global)?;
    let state = recorded(&store, environment, app)?;
    if let Phase::Done { outcome } = state.phase {
        return Err(RolloutError::Finished {
            app: state.settings.app.clone(),
            outcome: outcome.as_str(),
        }
        .into());
    }
    let mut real = RealWorld::new(&state, global)?;
    real.monitor = Monitor::resolve(&state, global)?;
    let key = key(&state);
    let result = exec::resume(&store, state, &mut real, &global.ui, &judge).await;
    finish(real.monitor, &store, key, result, true, global).await
}

/// Ends the recorded rollout of `app` (or the environment's only one): 100 % stable, no canary host,
/// from any phase; a rollout still running is stopped first.
pub async fn abort(
    global: &Global,
    environment: Option<&str>,
    app: Option<App>,
) -> anyhow::Result<RunResult> {
    let store = StateStore::new(&global.state_dir);
    let judge = exec::judge_config(global)?;
    let state = recorded(&store, environment, app)?;
    let mut real = RealWorld::new(&state, global)?;
    let _lock = stop_running(&store, &state, &global.ui).await?;
    // The state as the stopped rollout left it.
    let state = recorded(&store, environment, App::parse(&state.settings.app).ok())?;
    real.monitor = Monitor::dashboard_only(&state, global);
    // An abort of a rollout that had already ended changes nothing: no new event.
    let record = !(state.phase.is_done() && !state.canary_exists && state.weight == 0);
    let key = key(&state);
    let result = exec::abort(&store, state, &mut real, &global.ui, &judge).await;
    finish(real.monitor, &store, key, result, record, global).await
}

/// A recorded rollout and whether a process is running it now.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: RolloutState,
    /// The pid of the rollout holding the lock, `None` when none runs.
    pub running: Option<u32>,
}

/// The recorded rollout of `app` (or the environment's only one), and whether it runs.
pub fn status(
    global: &Global,
    environment: Option<&str>,
    app: Option<App>,
) -> anyhow::Result<Status> {
    let store = StateStore::new(&global.state_dir);
    let state = recorded(&store, environment, app)?;
    let running = match store.lock(&state.settings.environment, &state.settings.app) {
        Ok(_free) => None,
        Err(RolloutError::Busy { .. }) => Some(state.pid),
        Err(e) => return Err(e.into()),
    };
    Ok(Status { state, running })
}

/// The recorded rollout `app` names in `environment` (default prod), or the only one recorded there.
pub fn recorded(
    store: &StateStore,
    environment: Option<&str>,
    app: Option<App>,
) -> Result<RolloutState, anyhow::Error> {
    let environment = environment.unwrap_or(DEFAULT_ENVIRONMENT).to_string();
    crate::provision::check_environment(&environment)?;
    let found = match app {
        Some(app) => store
            .load(&environment, app.key())?
            .ok_or(RolloutError::NoneRecorded {
                app: Some(app.display().into()),
                environment,
            })?,
        None => {
            let mut all = store.all(&environment)?;
            match all.len() {
                0 => {
                    return Err(RolloutError::NoneRecorded {
                        app: None,
                        environment,
                    }
                    .into())
                }
                1 => all.remove(0),
                n => {
                    return Err(RolloutError::Ambiguous {
                        count: n,
                        environment,
                        apps: all
                            .iter()
                            .map(|s| s.settings.app.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                    .into())
                }
            }
        }
    };
    Ok(found)
}

/// The rollout lock; a live rollout holding it is sent SIGTERM first (it stops where it is, the state
/// says what was under way) and given 60 s to let go.
async fn stop_running(
    store: &StateStore,
    state: &RolloutState,
    ui: &crate::ui::Ui,
) -> anyhow::Result<crate::lock::FileLock> {
    let (env, app) = (&state.settings.environment, &state.settings.app);
    match store.lock(env, app) {
        Ok(lock) => Ok(lock),
        Err(RolloutError::Busy { pid, .. }) => {
            if let Some(pid) = pid.filter(|p| *p > 1 && *p != std::process::id()) {
                ui.info(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path, app: &str) -> Recorded {
        Recorded {
            app: app.into(),
            provider: "local".into(),
            environment: "prod".into(),
            inventory: dir.join("inventory.ini"),
            source: None,
            git_ref: Some("v2".into()),
            artifact: None,
            extra_vars: Vec::new(),
            steps: vec![5, 100],
            step_time_s: 10.0,
            max_step_time_s: 30.0,
            look_every_s: 5.0,
            warmup_s: 0.0,
            load: None,
            report_dir: dir.join("report"),
        }
    }

    fn save(store: &StateStore, s: Recorded) {
        let mut state = RolloutState::new(s, vec!["x".into()], "x-canary".into(), "lb".into());
        store.save(&mut state).unwrap();
    }

    #[test]
    fn the_recorded_rollout_is_the_apps_or_the_only_one_and_two_need_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join(".pipeline"));
        let e = recorded(&store, None, None).unwrap_err();
        assert!(
            e.downcast_ref::<RolloutError>()
                .is_some_and(RolloutError::is_usage),
            "{e}"
        );
        save(&store, settings(dir.path(), "itrust"));
        let found = recorded(&store, None, None).unwrap();
        assert_eq!(found.settings.app, "itrust");
        assert!(recorded(&store, Some("prod"), Some(App::Checkbox)).is_err());
        save(&store, settings(dir.path(), "checkbox"));
        let e = recorded(&store, None, None).unwrap_err();
        assert!(e.to_string().contains("2 rollouts"), "{e}");
        let found = recorded(&store, None, Some(App::Itrust)).unwrap();
        assert_eq!(found.settings.app, "itrust");
        assert!(recorded(&store, Some("Bad_Env"), None).is_err());
        assert!(recorded(&store, Some("staging"), None)
            .unwrap_err()
            .to_string()
            .contains("environment staging"));
    }
}
