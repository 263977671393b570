//! The rollout's executor: one loop over the recorded [`Phase`], writing the state before every action
//! and then doing it against a [`RolloutWorld`]. A step sets the canary's weight, then judges canary
//! against stable on the requests the front door logged since, a look every `look_every`: a FAIL at any
//! look rolls back at once (weight 0, canary host destroyed, exit 4); at the step's end a PASS goes on
//! (after the last step: promotion, then the canary is retired, exit 0), an INCONCLUSIVE extends the step
//! up to `max_step_time` and then pauses (exit 5; the weight stays, `resume` or `abort` decides), a
//! MARGINAL pauses (exit 3). It never promotes without a PASS.
//!
//! The same loop resumes a recorded rollout (redoing the action under way: each is idempotent) and
//! aborts one from any phase (weight 0, canary host destroyed). A signal stops it where it is; the state
//! says what was under way.

use anyhow::Context;

use crate::canary::judge::{JudgeConfig, Judgement, Verdict};
use crate::ui::Ui;
use crate::Outcome;

use super::state::{Finished, Phase, RolloutState, StateStore};
use super::world::RolloutWorld;
use super::RolloutError;

mod scrape;
mod step;
mod warmup;
use step::StepEnd;

/// How a run of the executor ended (errors aside).
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Promoted,
    RolledBack { reason: String },
    Paused { index: usize, verdict: Verdict },
    Aborted,
}

impl Ending {
    /// 0 promoted or aborted, 4 rolled back, 5 paused INCONCLUSIVE, 3 paused MARGINAL.
    pub fn outcome(&self) -> Outcome {
        match self {
            Ending::Promoted | Ending::Aborted => Outcome::Success,
            Ending::RolledBack { .. } => Outcome::Fail,
            Ending::Paused { verdict, .. } => verdict.outcome(),
        }
    }
}

/// What a run produced: its ending and each judged step's judgement (step index, judgement).
#[derive(Debug)]
pub struct RunResult {
    pub ending: Ending,
    pub judgements: Vec<(usize, Judgement)>,
}

/// The executor over one recorded rollout.
pub struct Executor<'a, W> {
    pub store: &'a StateStore,
    pub state: RolloutState,
    pub world: &'a mut W,
    pub ui: &'a Ui,
    pub judge: JudgeConfig,
    judgements: Vec<(usize, Judgement)>,
}

/// Starts a new rollout of `state` (no unfinished one may be recorded for the app).
pub async fn start<W: RolloutWorld>(
    store: &StateStore,
    state: RolloutState,
    world: &mut W,
    ui: &Ui,
    judge: &JudgeConfig,
) -> anyhow::Result<RunResult> {
    let s = &state.settings;
    let _lock = store.lock(&s.environment, &s.app)?;
    if let Some(old) = store.load(&s.environment, &s.app)? {
        if !old.phase.is_done() {
            return Err(RolloutError::InProgress {
                app: s.app.clone(),
                environment: s.environment.clone(),
                phase: old.phase.describe(&old.settings.steps),
            }
            .into());
        }
    }
    Executor::new(store, state, world, ui, judge).run().await
}

/// Continues the recorded rollout of `app` from the action that was under way (a paused step runs again).
pub async fn resume<W: RolloutWorld>(
    store: &StateStore,
    mut state: RolloutState,
    world: &mut W,
    ui: &Ui,
    judge: &JudgeConfig,
) -> anyhow::Result<RunResult> {
    let _lock = store.lock(&state.settings.environment, &state.settings.app)?;
    if let Phase::Done { outcome } = state.phase {
        return Err(RolloutError::Finished {
            app: state.settings.app.clone(),
            outcome: outcome.as_str(),
        }
        .into());
    }
    if let Phase::Paused { index, .. } = state.phase {
        state.phase = Phase::Step { index };
    }
    state.pid = std::process::id();
    state.last_error = None;
    ui.info(format!(
        "rollout: resuming {} ({})",
        state.settings.app,
        state.phase.describe(&state.settings.steps)
    ));
    Executor::new(store, state, world, ui, judge).run().await
}

/// Ends the recorded rollout: weight 0 on the canary and its host destroyed, from any phase. The caller
/// holds the lock (it may first have had to stop a live rollout).
pub async fn abort<W: RolloutWorld>(
    store: &StateStore,
    mut state: RolloutState,
    world: &mut W,
    ui: &Ui,
    judge: &JudgeConfig,
) -> anyhow::Result<RunResult> {
    let was = state.phase.clone();
    if matches!(was, Phase::Done { .. }) && !state.canary_exists && state.weight == 0 {
        // A finished rollout stays as it finished (a promoted one promoted).
        let ending = match was {
            Phase::Done {
                outcome: Finished::Promoted,
            } => Ending::Promoted,
            _ => Ending::Aborted,
        };
        if state.canary_scraped {
            // Only the monitor's targets were left (it was unreachable when the canary went).
            Executor::new(store, state, world, ui, judge)
                .unscrape_leftover()
                .await?;
        } else {
            ui.info(format!(
                "rollout: {} has {}; the canary is already out, nothing to abort",
                state.settings.app,
                was.describe(&state.settings.steps)
            ));
        }
        return Ok(RunResult {
            ending,
            judgements: Vec::new(),
        });
    }
    if matches!(was, Phase::Promote | Phase::Retire) {
        ui.warn(format!(
            "rollout: the promotion of {} had begun: stable hosts it reached run the new version (they passed every step); redeploy the old version with `pipeline deploy` if you want it back",
            state.settings.app
        ));
    }
    state.phase = Phase::Abort;
    state.pid = std::process::id();
    ui.info(format!(
        "rollout: aborting {} (was: {}): canary weight 0, canary host out",
        state.settings.app,
        was.describe(&state.settings.steps)
    ));
    Executor::new(store, state, world, ui, judge).run().await
}

impl<'a, W: RolloutWorld> Executor<'a, W> {
    pub fn new(
        store: &'a StateStore,
        state: RolloutState,
        world: &'a mut W,
        ui: &'a Ui,
        judge: &JudgeConfig,
    ) -> Self {
        Executor {
            store,
            state,
            world,
            ui,
            judge: judge.clone(),
            judgements: Vec::new(),
        }
    }

    /// The rollout's report (`report.json`, `report.md`, `report.html`) from the state on disk (the last
    /// one written before any action), and its terminal text on stdout.
    fn write_summary(&self) {
        let (env, app) = (&self.state.settings.environment, &self.state.settings.app);
        let state = match self.store.load(env, app) {
            Ok(Some(s)) => s,
            _ => self.state.clone(),
        };
        let dir = &state.settings.report_dir;
        match super::report::write_summary(dir, &state) {
            Ok(text) => {
                use std::io::Write;
                let _ = write!(std::io::stdout(), "\n{text}");
                self.ui.info(format!(
                    "rollout: report in {} (report.md, report.json; each judged step's in step-N/)",
                    dir.join("report.html").display()
                ));
            }
            Err(e) => self.ui.warn(format!(
                "rollout: could not write the report into {}: {e}",
                dir.display()
            )),
        }
    }

    fn save(&mut self) -> anyhow::Result<()> {
        self.store.save(&mut self.state)?;
        self.world.recorded(&self.state);
        Ok(())
    }

    fn enter(&mut self, phase: Phase) -> anyhow::Result<()> {
        self.state.phase = phase;
        self.save()
    }

    /// Runs until the rollout is done or paused; a signal or an action's error leaves the state as it
    /// is (with the error recorded) for `status`, `resume` and `abort`.
    pub async fn run(mut self) -> anyhow::Result<RunResult> {
        self.save()?;
        let result = tokio::select! {
            r = self.phases() => r,
            sig = crate::signals::cancelled() => Err(anyhow::Error::from(crate::signals::Interrupted(sig))
                .context("the rollout was stopped")),
        };
        if result.is_err() {
            // A signal or an action's error: the synthetic load stops with the rollout.
            if let Err(e) = self.stop_load().await {
                self.ui.warn(format!("rollout: {e:#}"));
            }
        }
        match result {
            Ok(ending) => {
                self.write_summary();
                Ok(RunResult {
                    ending,
                    judgements: std::mem::take(&mut self.judgements),
                })
            }
            Err(e) => {
                // Reload the state as last written: a cancelled action may have left `self.state` ahead.
                let (env, app) = (
                    self.state.settings.environment.clone(),
                    self.state.settings.app.clone(),
                );
                if let Ok(Some(mut on_disk)) = self.store.load(&env, &app) {
                    on_disk.last_error = Some(crate::exit::error_message(&e));
                    let _ = self.store.save(&mut on_disk);
                    // The report says where the rollout stopped and why.
                    self.write_summary();
                    let what = on_disk.phase.describe(&on_disk.settings.steps);
                    return Err(e.context(format!(
                        "the rollout of {app} stopped while {what}; the front door sends {} % to the canary; see `pipeline rollout status {app}`, then `pipeline rollout resume {app}` or `pipeline rollout abort {app}`",
                        on_disk.weight
                    )));
                }
                self.write_summary();
                Err(e)
            }
        }
    }

    async fn phases(&mut self) -> anyhow::Result<Ending> {
        loop {
            let phase = self.state.phase.clone();
            match phase {
                Phase::Provision => {
                    self.state.canary_exists = true;
                    self.save()?;
                    self.ui.info(format!(
                        "rollout: provisioning the canary host {}",
                        self.state.canary_host
                    ));
                    self.world.provision_canary().await?;
                    self.enter(Phase::Deploy)?;
                }
                Phase::Deploy => {
                    self.ui.info(format!(
                        "rollout: deploying the new version on {}",
                        self.state.canary_host
                    ));
                    let d = self.world.deploy_canary().await?;
                    self.state.deploys.push(d.clone());
                    self.save()?;
                    if !d.success {
                        let reason = format!("the canary deploy failed: {}", d.text);
                        return self.roll_back(reason).await;
                    }
                    self.enter(Phase::Check)?;
                }
                Phase::Check => {
                    self.ui.info(format!(
                        "rollout: checking {} directly",
                        self.state.canary_host
                    ));
                    if let Err(e) = self.world.check_canary().await {
                        let reason = format!(
                            "the canary host failed its health check before any traffic: {}",
                            crate::exit::error_message(&e)
                        );
                        return self.roll_back(reason).await;
                    }
                    self.enter(if self.world.scrapes_canary() {
                        Phase::Scrape
                    } else {
                        Phase::Step { index: 0 }
                    })?;
                }
                Phase::Scrape => {
                    self.scrape().await?;
                    self.enter(Phase::Step { index: 0 })?;
                }
                Phase::Step { index } => match self.step(index).await? {
                    StepEnd::Pass if index + 1 < self.state.settings.steps.len() => {
                        self.enter(Phase::Step { index: index + 1 })?;
                    }
                    StepEnd::Pass => {
                        self.stop_load().await?;
                        self.enter(Phase::Promote)?;
                    }
                    StepEnd::Fail(reason) => {
                        self.stop_load().await?;
                        return self.roll_back(reason).await;
                    }
                    StepEnd::Pause(verdict) => {
                        self.stop_load().await?;
                        self.enter(Phase::Paused { index, verdict })?;
                        self.ui.warn(format!(
                            "rollout: paused at step {} ({} % to the canary): {}; the weight stays; `pipeline rollout resume {}` runs the step again, `pipeline rollout abort {}` goes back to stable",
                            index + 1,
                            self.state.weight,
                            match verdict {
                                Verdict::Inconclusive => "INCONCLUSIVE up to the longest step time (too little traffic? add --load RATE)".to_string(),
                                v => v.as_str().to_string(),
                            },
                            self.state.settings.app,
                            self.state.settings.app
                        ));
                        return Ok(Ending::Paused { index, verdict });
                    }
                },
                Phase::Paused { index, verdict } => return Ok(Ending::Paused { index, verdict }),
                Phase::Promote => {
                    self.ui.info(format!(
                        "rollout: promoting: rolling deploy of {} through the front door",
                        self.state.stable_hosts.join(", ")
                    ));
                    let d = self.world.promote().await?;
                    self.state.deploys.push(d.clone());
                    self.save()?;
                    if !d.success {
                        anyhow::bail!(
                            "the promotion (rolling deploy of the stable hosts) failed: {}",
                            d.text
                        );
                    }
                    self.enter(Phase::Retire)?;
                }
                Phase::Retire | Phase::Rollback | Phase::Abort => {
                    self.canary_out().await?;
                    let outcome = match phase {
                        Phase::Retire => Finished::Promoted,
                        Phase::Rollback => Finished::RolledBack,
                        _ => Finished::Aborted,
                    };
                    self.enter(Phase::Done { outcome })?;
                    self.ui.info(format!(
                        "rollout: {} {}: 100 % to {}",
                        self.state.settings.app,
                        outcome.as_str(),
                        self.state.stable_hosts.join(", ")
                    ));
                    return Ok(match outcome {
                        Finished::Promoted => Ending::Promoted,
                        Finished::Aborted => Ending::Aborted,
                        Finished::RolledBack => Ending::RolledBack {
                            reason: self.state.last_error.clone().unwrap_or_default(),
                        },
                    });
                }
                Phase::Done { outcome } => {
                    return Ok(match outcome {
                        Finished::Promoted => Ending::Promoted,
                        Finished::Aborted => Ending::Aborted,
                        Finished::RolledBack => Ending::RolledBack {
                            reason: String::new(),
                        },
                    })
                }
            }
        }
    }

    async fn roll_back(&mut self, reason: String) -> anyhow::Result<Ending> {
        self.ui.warn(format!("rollout: rolling back: {reason}"));
        self.state.last_error = Some(reason.clone());
        self.enter(Phase::Rollback)?;
        self.canary_out().await?;
        self.enter(Phase::Done {
            outcome: Finished::RolledBack,
        })?;
        self.ui.info(format!(
            "rollout: {} rolled back: 100 % to {}, canary host destroyed",
            self.state.settings.app,
            self.state.stable_hosts.join(", ")
        ));
        Ok(Ending::RolledBack { reason })
    }

    /// Weight 0 (the canary leaves the front door), its targets out of the monitor's Prometheus, then
    /// the canary host is destroyed.
    async fn canary_out(&mut self) -> anyhow::Result<()> {
        self.stop_load().await?;
        self.state.weight = 0;
        self.save()?;
        self.world.set_weight(0).await?;
        self.save()?;
        self.unscrape().await?;
        self.world.retire_canary().await?;
        self.state.canary_exists = false;
        self.save()
    }

    async fn stop_load(&mut self) -> anyhow::Result<()> {
        if self.state.settings.load.is_some() {
            self.world.load(None).await?;
        }
        Ok(())
    }
}

/// The judge settings of a rollout: `[judge]` of pipeline.toml.
pub fn judge_config(global: &crate::settings::Global) -> anyhow::Result<JudgeConfig> {
    global
        .config
        .section("judge")
        .context("invalid [judge] settings")
}
