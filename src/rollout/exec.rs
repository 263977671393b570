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

use crate::canary::judge::{
    self, sequential::SequentialJudge, JudgeConfig, JudgeInput, Judgement, Verdict,
};
use crate::canary::metrics::HostSeries;
use crate::canary::samples::{self, RequestObs};
use crate::ui::Ui;
use crate::Outcome;

use super::state::{ArmTally, Finished, LookRecord, Phase, RolloutState, StateStore, StepRecord};
use super::world::{Arm, Observed, RolloutWorld};
use super::RolloutError;

/// Header values the judge's split uses for the two arms.
const STABLE: &str = "stable";
const CANARY: &str = "canary";

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
    let (env, app) = (
        state.settings.environment.clone(),
        state.settings.app.clone(),
    );
    let _lock = store.lock(&env, &app)?;
    if let Some(old) = store.load(&env, &app)? {
        if !old.phase.is_done() {
            return Err(RolloutError::InProgress {
                app,
                environment: env,
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
    let (env, app) = (
        state.settings.environment.clone(),
        state.settings.app.clone(),
    );
    let _lock = store.lock(&env, &app)?;
    if let Phase::Done { outcome } = state.phase {
        return Err(RolloutError::Finished {
            app,
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
        "rollout: resuming {app} ({})",
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
        ui.info(format!(
            "rollout: {} has {}; the canary is already out, nothing to abort",
            state.settings.app,
            was.describe(&state.settings.steps)
        ));
        return Ok(RunResult {
            ending: match was {
                Phase::Done {
                    outcome: Finished::Promoted,
                } => Ending::Promoted,
                _ => Ending::Aborted,
            },
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

    fn save(&mut self) -> anyhow::Result<()> {
        self.store.save(&mut self.state)?;
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
        match result {
            Ok(ending) => Ok(RunResult {
                ending,
                judgements: std::mem::take(&mut self.judgements),
            }),
            Err(e) => {
                // Reload the state as last written: a cancelled action may have left `self.state` ahead.
                let (env, app) = (
                    self.state.settings.environment.clone(),
                    self.state.settings.app.clone(),
                );
                if let Ok(Some(mut on_disk)) = self.store.load(&env, &app) {
                    on_disk.last_error = Some(crate::exit::error_message(&e));
                    let _ = self.store.save(&mut on_disk);
                    let what = on_disk.phase.describe(&on_disk.settings.steps);
                    return Err(e.context(format!(
                        "the rollout of {app} stopped while {what}; the front door sends {} % to the canary; see `pipeline rollout status {app}`, then `pipeline rollout resume {app}` or `pipeline rollout abort {app}`",
                        on_disk.weight
                    )));
                }
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

    /// Weight 0 (the canary leaves the front door), then the canary host is destroyed.
    async fn canary_out(&mut self) -> anyhow::Result<()> {
        self.stop_load().await?;
        self.state.weight = 0;
        self.save()?;
        self.world.set_weight(0).await?;
        self.save()?;
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

    /// Runs step `index` once: weight, then looks until a decision.
    async fn step(&mut self, index: usize) -> anyhow::Result<StepEnd> {
        let s = self.state.settings.clone();
        let weight = s.steps[index];
        self.ui.info(format!(
            "rollout: [step {}/{}] {weight} % of the requests to the canary for {} s",
            index + 1,
            s.steps.len(),
            judge::num(s.step_time_s)
        ));
        self.state.weight = weight;
        self.save()?;
        self.world.set_weight(weight).await?;
        if let Some(rate) = s.load {
            self.world.load(Some(rate)).await?;
        }
        // Requests logged before the new weight took effect are not this step's.
        self.world.observe().await?;
        let start = self.world.now();
        let judged = weight < 100;
        self.state.steps.push(StepRecord {
            index,
            weight,
            judged,
            started_at: start,
            duration_s: 0.0,
            extended: false,
            verdict: None,
            stable: ArmTally::default(),
            canary: ArmTally::default(),
            unattributed: 0,
            looks: Vec::new(),
            reason: String::new(),
        });
        if !judged {
            self.current_mut().reason = "not judged: at 100 % no stable requests are left to compare with; the canary serves alone while the stable hosts are promoted".into();
            self.save()?;
            self.ui.info(
                "rollout:   100 % to the canary: nothing left to compare with, on to the promotion",
            );
            return Ok(StepEnd::Pass);
        }
        self.save()?;
        let mut seq = SequentialJudge::new(&input(&[], start), &self.judge, s.look_every_s)?;
        let mut seen: Vec<Observed> = Vec::new();
        let mut t = 0.0f64;
        loop {
            let deadline = if t < s.step_time_s - 1e-6 {
                s.step_time_s
            } else {
                s.max_step_time_s
            };
            let next = (t + s.look_every_s).min(deadline);
            let wait = next - (self.world.now() - start);
            if wait > 0.0 {
                self.world.wait(wait).await;
            }
            seen.extend(
                self.world
                    .observe()
                    .await?
                    .into_iter()
                    .filter(|o| o.at >= start),
            );
            t = (self.world.now() - start).max(next);
            let data = input(&seen, start);
            let at_end = t >= s.step_time_s - 1e-6;
            let (j, end) = if !at_end {
                let j = seq.look(t, &data, false)?;
                let end = (j.verdict == Verdict::Fail).then(|| StepEnd::Fail(String::new()));
                (j, end)
            } else {
                // A last look on a copy: kept when it decides, otherwise the step is extended and the
                // same look counts as an interim one.
                let mut last = seq.clone();
                let j = last.look(t, &data, true)?;
                let longest = t >= s.max_step_time_s - 1e-6;
                match j.verdict {
                    Verdict::Pass => {
                        seq = last;
                        (j, Some(StepEnd::Pass))
                    }
                    Verdict::Fail => {
                        seq = last;
                        (j, Some(StepEnd::Fail(String::new())))
                    }
                    Verdict::Marginal => {
                        seq = last;
                        (j, Some(StepEnd::Pause(Verdict::Marginal)))
                    }
                    Verdict::Inconclusive if longest => {
                        seq = last;
                        (j, Some(StepEnd::Pause(Verdict::Inconclusive)))
                    }
                    Verdict::Inconclusive => {
                        let j = seq.look(t, &data, false)?;
                        (j, None)
                    }
                }
            };
            self.record_look(&seen, t, &j, t > s.step_time_s + 1e-6);
            self.ui.info(format!(
                "rollout:   look at {t:.0} s ({} stable, {} canary requests): {}{}",
                self.current().stable.real + self.current().stable.synthetic,
                self.current().canary.real + self.current().canary.synthetic,
                j.verdict.as_str(),
                if end.is_some() { " (final)" } else { "" }
            ));
            match end {
                None => self.save()?,
                Some(end) => {
                    let judgement = seq.finish().unwrap_or(j);
                    let rec = self.current_mut();
                    rec.verdict = Some(judgement.verdict);
                    rec.reason = judgement.reason.clone();
                    self.write_judgement(index, &judgement);
                    self.judgements.push((index, judgement.clone()));
                    return Ok(match end {
                        StepEnd::Fail(_) => StepEnd::Fail(format!(
                            "FAIL at step {} ({weight} % to the canary) after {t:.0} s: {}",
                            index + 1,
                            judgement.reason
                        )),
                        other => other,
                    });
                }
            }
        }
    }

    fn current(&self) -> &StepRecord {
        self.state.steps.last().expect("a step record")
    }

    fn current_mut(&mut self) -> &mut StepRecord {
        self.state.steps.last_mut().expect("a step record")
    }

    /// Updates the running step's record after a look (the looks' boundaries are in the judgement).
    fn record_look(&mut self, seen: &[Observed], t: f64, j: &Judgement, extended: bool) {
        let rec = self.current_mut();
        rec.duration_s = t;
        rec.extended = extended;
        let (mut stable, mut canary, mut neither) = (ArmTally::default(), ArmTally::default(), 0);
        for o in seen {
            let tally = match o.arm {
                Arm::Stable => &mut stable,
                Arm::Canary => &mut canary,
                Arm::Neither => {
                    neither += 1;
                    continue;
                }
            };
            if o.synthetic {
                tally.synthetic += 1;
            } else {
                tally.real += 1;
            }
            if o.status.is_none_or(samples::is_error_status) {
                tally.errors += 1;
            }
        }
        rec.stable = stable;
        rec.canary = canary;
        rec.unattributed = neither;
        rec.looks.push(LookRecord {
            t_s: t,
            stable: stable.real + stable.synthetic,
            canary: canary.real + canary.synthetic,
            verdict: j.verdict,
            score: j.score,
        });
    }

    fn write_judgement(&self, index: usize, judgement: &Judgement) {
        let dir = &self.state.settings.report_dir;
        let path = dir.join(format!("step-{}.json", index + 1));
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            let text = serde_json::to_vec_pretty(judgement).map_err(std::io::Error::other)?;
            std::fs::write(&path, text)
        });
        if let Err(e) = written {
            self.ui.warn(format!(
                "rollout: could not write the judgement of step {} to {}: {e}",
                index + 1,
                path.display()
            ));
        }
    }
}

enum StepEnd {
    Pass,
    Fail(String),
    Pause(Verdict),
}

/// The per-request metrics of the requests seen so far (offsets from the step's start).
fn input(seen: &[Observed], start: f64) -> JudgeInput {
    let split = samples::split_requests(
        seen.iter().map(|o| RequestObs {
            offset_s: o.at - start,
            latency_ms: o.latency_ms,
            status: o.status,
            bytes: o.bytes,
            backend: match o.arm {
                Arm::Stable => Some(STABLE),
                Arm::Canary => Some(CANARY),
                Arm::Neither => None,
            },
        }),
        STABLE,
        CANARY,
    );
    let none = |h: &str| HostSeries {
        host: h.into(),
        url: String::new(),
        samples: Vec::new(),
        failed_scrapes: 0,
        last_error: None,
    };
    let mut data = samples::judge_input(&split, &none(STABLE), &none(CANARY));
    // Host metrics are not judged by the rollout: stable and canary hosts differ in number and load.
    data.metrics.retain(|m| {
        matches!(
            m.name.as_str(),
            "error_rate" | "latency_ms" | "response_bytes"
        )
    });
    data
}

/// The judge settings of a rollout: `[judge]` of pipeline.toml.
pub fn judge_config(global: &crate::settings::Global) -> anyhow::Result<JudgeConfig> {
    global
        .config
        .section("judge")
        .context("invalid [judge] settings")
}
