//! A rollout and the monitor host. [`Monitor`] holds what the real world needs of it:
//!
//! - **Prometheus metrics.** The `[[metric]]` tables of `[canary]` (`metrics_file` or inline
//!   `[[canary.metric]]`), resolved by the canary's resolver before anything runs, from `--prometheus URL`,
//!   `[canary] prometheus` or the inventory's monitor host (through its dashboard, with its login). `$arm`
//!   stands for the rollout's hosts, whatever `[arms]` says: the baseline is the stable hosts as a regex
//!   alternation (`checkbox-1|checkbox-2`), the canary the canary host (`checkbox-canary`), so queries match
//!   the monitor's `host` label with `=~` and aggregate the stable hosts into one series, e.g.
//!   `avg(rate(node_cpu_seconds_total{mode!="idle",host=~"$arm"}[30s]))`. Each look queries the step's
//!   window so far; the metrics join the per-request ones in the step's family.
//! - **The dashboard.** Every write of the state pushes the canary's weight, the phase and the verdict so
//!   far ([`crate::monitoring::rollout`]); at the end the rollout records an event (kind `rollout`, how it
//!   ended) on the time axis, as deploys and canaries do.

use std::path::PathBuf;

use crate::apps::App;
use crate::canary::judge::MetricInput;
use crate::canary::prometheus::canary::{self as prom_canary, CanaryPromSection, CanaryQueries};
use crate::canary::prometheus::Arms;
use crate::exit::UsageError;
use crate::monitoring::endpoint;
use crate::monitoring::events::{self, Event};
use crate::monitoring::rollout::{Progress, RolloutStatus};
use crate::settings::Global;
use crate::ui::Ui;

use super::exec::Ending;
use super::state::{Phase, RolloutState};

/// The monitor-side parts of a rollout on real hosts.
#[derive(Default)]
pub struct Monitor {
    metrics: Option<CanaryQueries>,
    progress: Option<Progress>,
    /// Where the rollout event goes: the rollout's inventory, and the state directory with the login.
    inventory: PathBuf,
    state_dir: PathBuf,
}

/// What `$arm` stands for in a rollout: the stable hosts (an alternation) and the canary host.
pub fn arms(state: &RolloutState) -> Arms {
    Arms {
        baseline: Some(state.stable_hosts.join("|")),
        canary: Some(state.canary_host.clone()),
    }
}

/// The Prometheus queries of a rollout, `None` when no metric is configured; a mistake in them is a usage
/// error (exit 2). `monitor` finds the monitor's dashboard when no URL is given.
pub fn resolve_metrics(
    state: &RolloutState,
    global: &Global,
    monitor: impl FnOnce() -> Result<endpoint::Dashboard, String>,
) -> anyhow::Result<Option<CanaryQueries>> {
    let section: CanaryPromSection = global.config.section("canary")?;
    let config_path = global
        .config
        .path()
        .unwrap_or(std::path::Path::new("pipeline.toml"));
    prom_canary::resolve_with_arms(
        state.prometheus.clone(),
        section,
        config_path,
        monitor,
        Some(arms(state)),
    )
    .map_err(|e| {
        if e.is_usage() {
            UsageError(e.to_string()).into()
        } else {
            anyhow::Error::new(e)
        }
    })
}

/// For `--dry-run`: checks the Prometheus metrics a rollout of `state` would judge (a mistake is exit 2, as
/// at the start) and names them in a line of the plan; empty without metrics.
pub fn dry_run_line(state: &RolloutState, global: &Global) -> anyhow::Result<String> {
    let inventory = &state.settings.inventory;
    let metrics = resolve_metrics(state, global, || {
        endpoint::dashboard(inventory, &global.state_dir)
            .map_err(|e| format!("{}: {e}", inventory.display()))
    })?;
    let Some(q) = metrics else {
        return Ok(String::new());
    };
    let arms = arms(state);
    Ok(format!(
        "Prometheus metrics judged with the requests at every look: {} from {} ($arm = {} for stable, {} for the canary)\n",
        q.metrics()
            .iter()
            .map(|m| m.spec.name.trim().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        q.url(),
        arms.baseline.unwrap_or_default(),
        arms.canary.unwrap_or_default()
    ))
}

/// The dashboard's view of `state`.
pub fn status(state: &RolloutState) -> RolloutStatus {
    let s = &state.settings;
    let app = App::parse(&s.app).map_or_else(|_| s.app.clone(), |a| a.display().to_string());
    // The running step's latest look, else the last verdict a step reached; a first step in its warm-up
    // has neither yet.
    let warming = matches!(state.phase, Phase::Step { .. })
        && state
            .steps
            .last()
            .is_some_and(|r| r.warmup.is_some() && r.looks.is_empty() && r.verdict.is_none());
    let verdict = if warming {
        "warming up".to_string()
    } else {
        state
            .steps
            .iter()
            .rev()
            .find_map(|r| r.verdict.or_else(|| r.looks.last().map(|l| l.verdict)))
            .map_or_else(|| "none yet".to_string(), |v| v.as_str().to_string())
    };
    RolloutStatus {
        app,
        key: s.app.clone(),
        version: version(state),
        phase: state.phase.describe(&s.steps),
        weight: state.weight,
        verdict,
        active: !matches!(state.phase, Phase::Done { .. })
            || state.canary_exists
            || state.weight > 0,
    }
}

fn version(state: &RolloutState) -> String {
    let s = &state.settings;
    match (&s.artifact, &s.git_ref) {
        (Some(war), _) => war
            .file_name()
            .map_or_else(|| war.display().to_string(), |n| n.to_string_lossy().into()),
        (None, Some(r)) => r.clone(),
        (None, None) => "default".into(),
    }
}

/// How a rollout ended, as its event's verdict.
pub fn ending_verdict(ending: &Ending) -> &'static str {
    match ending {
        Ending::Promoted => "promoted",
        Ending::RolledBack { .. } => "rolled-back",
        Ending::Paused { .. } => "paused",
        Ending::Aborted => "aborted",
    }
}

impl Monitor {
    /// For `rollout` and `resume`: the metrics (checked now) and the dashboard of the rollout's inventory.
    pub fn resolve(state: &RolloutState, global: &Global) -> anyhow::Result<Monitor> {
        let inventory = state.settings.inventory.clone();
        let dashboard = endpoint::dashboard(&inventory, &global.state_dir)
            .map_err(|e| format!("{}: {e}", inventory.display()));
        let metrics = resolve_metrics(state, global, || dashboard.clone())?;
        if let Some(q) = &metrics {
            global.ui.info(format!(
                "rollout: judging {} Prometheus metric(s) from {} with the requests ($arm: {} | {})",
                q.metrics().len(),
                q.url(),
                state.stable_hosts.join("|"),
                state.canary_host
            ));
        }
        Ok(Monitor {
            metrics,
            progress: dashboard
                .ok()
                .map(|d| Progress::start(d, global.ui.clone())),
            inventory,
            state_dir: global.state_dir.clone(),
        })
    }

    /// For `abort`: the dashboard only (a broken metrics setting never keeps a canary in).
    pub fn dashboard_only(state: &RolloutState, global: &Global) -> Monitor {
        let inventory = state.settings.inventory.clone();
        Monitor {
            metrics: None,
            progress: endpoint::dashboard(&inventory, &global.state_dir)
                .ok()
                .map(|d| Progress::start(d, global.ui.clone())),
            inventory,
            state_dir: global.state_dir.clone(),
        }
    }

    /// A monitor with these queries and no dashboard (for loopback tests of the judging).
    pub fn with_metrics(metrics: Option<CanaryQueries>) -> Monitor {
        Monitor {
            metrics,
            ..Monitor::default()
        }
    }

    pub fn metric_plan(&self) -> Vec<MetricInput> {
        self.metrics
            .as_ref()
            .map(CanaryQueries::plan)
            .unwrap_or_default()
    }

    pub async fn metrics(
        &self,
        from: f64,
        to: f64,
    ) -> anyhow::Result<(Vec<MetricInput>, Vec<String>)> {
        let Some(q) = &self.metrics else {
            return Ok((Vec::new(), Vec::new()));
        };
        q.query_unix(from, to).await.map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "failed to query the [canary] metrics from {} for this step",
                q.url()
            ))
        })
    }

    pub fn recorded(&mut self, state: &RolloutState) {
        if let Some(p) = &self.progress {
            p.update(status(state));
        }
    }

    /// Pushes the last status, then records the rollout's event when it ended (not after an error: the
    /// rollout is still under way, and the dashboard keeps showing its weight).
    /// A dashboard that did not take the status during the run has had its warning and is not asked again.
    pub async fn finish(self, state: &RolloutState, ending: Option<&Ending>, ui: &Ui) {
        let gave_up = match self.progress {
            Some(p) => p.finish().await,
            None => false,
        };
        if let Some(ending) = ending.filter(|_| !gave_up) {
            let event = Event::new(
                "rollout",
                &status(state).app,
                &version(state),
                ending_verdict(ending),
            );
            events::record(&self.inventory, &self.state_dir, ui, &event).await;
        }
    }
}
