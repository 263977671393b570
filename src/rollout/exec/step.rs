//! One step of a rollout: the canary's weight, then a look every `look_every` at the requests the front
//! door logged since (and the world's Prometheus metrics over the step so far, in the same family), until
//! the step decides (FAIL at any look; PASS, MARGINAL or, past the longest step time, INCONCLUSIVE at its
//! end). A step at 100 % is not judged: no stable requests are left. The first step may begin with a
//! warm-up ([`super::warmup`]) before its judged window.

use crate::canary::judge::{self, sequential::SequentialJudge, JudgeInput, Judgement, Verdict};
use crate::canary::metrics::HostSeries;
use crate::canary::samples::{self, RequestObs};

use super::super::state::{ArmTally, LookRecord, StepRecord};
use super::super::world::{Arm, Observed, RolloutWorld};
use super::Executor;

/// Header values the judge's split uses for the two arms.
const STABLE: &str = "stable";
const CANARY: &str = "canary";

impl<W: RolloutWorld> Executor<'_, W> {
    /// Runs step `index` once: weight, then looks until a decision.
    pub(super) async fn step(&mut self, index: usize) -> anyhow::Result<StepEnd> {
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
        let judged = weight < 100;
        self.state.steps.push(StepRecord {
            index,
            weight,
            judged,
            started_at: self.world.now(),
            duration_s: 0.0,
            extended: false,
            verdict: None,
            stable: ArmTally::default(),
            canary: ArmTally::default(),
            unattributed: 0,
            looks: Vec::new(),
            reason: String::new(),
            warmup: None,
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
        if index == 0 && s.warmup_s > 0.0 {
            if let Some(failed) = self.warm_up().await? {
                let reason = format!(
                    "FAIL at step {} ({weight} % to the canary) in its warm-up, after {} s: {}",
                    index + 1,
                    judge::num(self.current().warmup.map_or(0.0, |w| w.duration_s)),
                    failed.reason
                );
                self.conclude(index, &failed);
                return Ok(StepEnd::Fail(reason));
            }
        }
        // The judged window: from now (after any warm-up) for the step time.
        let start = self.world.now();
        let mut plan = input(&[], start);
        plan.metrics.extend(self.world.metric_plan());
        let mut seq = SequentialJudge::new(&plan, &self.judge, s.look_every_s)?;
        let mut seen: Vec<Observed> = Vec::new();
        let mut t = 0.0f64;
        loop {
            let deadline = if t < s.step_time_s - 1e-6 {
                s.step_time_s
            } else {
                s.max_step_time_s
            };
            let next = (t + s.look_every_s).min(deadline);
            t = self.until_look(start, next, &mut seen).await?;
            let mut data = input(&seen, start);
            // The Prometheus metrics of the step so far; their notes (no data, dropped points) are said
            // once, at the look that ends the step.
            let (external, notes) = self.world.metrics(start, start + t).await?;
            data.metrics.extend(external);
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
            // Extended: the look was due past the step time (not merely taken a little late).
            self.record_look(&seen, t, &j, next > s.step_time_s + 1e-6);
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
                    for note in &notes {
                        self.ui.warn(format!("rollout:   {note}"));
                    }
                    let judgement = seq.finish().unwrap_or(j);
                    self.conclude(index, &judgement);
                    return Ok(match end {
                        StepEnd::Fail(_) => StepEnd::Fail(format!(
                            "FAIL at step {} ({weight} % to the canary) after {} s: {}",
                            index + 1,
                            judge::num(t),
                            judgement.reason
                        )),
                        other => other,
                    });
                }
            }
        }
    }

    /// Waits until `next` seconds after `start`, adds the requests the front door logged since `start`
    /// to `seen`, and returns the look's time (`next`, or later when the clock woke late).
    pub(super) async fn until_look(
        &mut self,
        start: f64,
        next: f64,
        seen: &mut Vec<Observed>,
    ) -> anyhow::Result<f64> {
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
        Ok((self.world.now() - start).max(next))
    }

    /// Records the step's deciding judgement: its verdict and reason in the state, its report in the
    /// step's directory.
    fn conclude(&mut self, index: usize, judgement: &Judgement) {
        let rec = self.current_mut();
        rec.verdict = Some(judgement.verdict);
        rec.reason.clone_from(&judgement.reason);
        self.write_judgement(index, judgement);
        self.judgements.push((index, judgement.clone()));
    }

    pub(super) fn current(&self) -> &StepRecord {
        self.state.steps.last().expect("a step record")
    }

    pub(super) fn current_mut(&mut self) -> &mut StepRecord {
        self.state.steps.last_mut().expect("a step record")
    }

    /// Updates the running step's record after a look (the looks' boundaries are in the judgement).
    fn record_look(&mut self, seen: &[Observed], t: f64, j: &Judgement, extended: bool) {
        let rec = self.current_mut();
        rec.duration_s = t;
        rec.extended = extended;
        let (stable, canary, neither) = tally(seen);
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
        if let Err(e) =
            super::super::report::write_step(dir, &self.state, self.current(), judgement)
        {
            self.ui.warn(format!(
                "rollout: could not write the report of step {} into {}: {e}",
                index + 1,
                dir.display()
            ));
        }
    }
}

pub(super) enum StepEnd {
    Pass,
    Fail(String),
    Pause(Verdict),
}

/// The requests of `seen` per arm (stable, canary), real and synthetic apart, and those neither served.
pub(super) fn tally(seen: &[Observed]) -> (ArmTally, ArmTally, u64) {
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
    (stable, canary, neither)
}

/// The per-request metrics of the requests seen so far (offsets from the step's start).
pub(super) fn input(seen: &[Observed], start: f64) -> JudgeInput {
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
    for m in data.metrics.iter_mut().filter(|m| m.name == "latency_ms") {
        at_least_one_tick(m);
    }
    data
}

/// The front door logs `$upstream_response_time` in whole milliseconds.
const LATENCY_RESOLUTION_MS: f64 = 1.0;

/// Widens the latency's tolerated (relative) increase to one tick of the front door's clock at the
/// baseline's median: at a 1 ms median the default +20 % is 0.2 ms, below what the log can show, so a
/// one-tick shift (seen on the sandbox between a fresh canary and the stable hosts) failed good versions.
fn at_least_one_tick(m: &mut crate::canary::judge::MetricInput) {
    let mut b = m.baseline.clone();
    b.sort_by(f64::total_cmp);
    let Some(median) = b.get(b.len() / 2).copied().filter(|v| *v > 0.0) else {
        return;
    };
    let floor = LATENCY_RESOLUTION_MS / median;
    if m.allowed_increase.unwrap_or(0.0) < floor {
        m.allowed_increase = Some(floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::judge::JudgeConfig;

    /// Requests 0.05 s apart over 30 s, alternating arms: stable at `stable_ms`, canary at
    /// `canary_ms` (every third one a tick more, as on a real clock), all 200 with the same size.
    fn seen(stable_ms: f64, canary_ms: f64) -> Vec<Observed> {
        (0..600)
            .map(|k| {
                let canary = k % 2 == 1;
                let base = if canary { canary_ms } else { stable_ms };
                Observed {
                    at: 1000.0 + f64::from(k) * 0.05,
                    arm: if canary { Arm::Canary } else { Arm::Stable },
                    status: Some(200),
                    latency_ms: base
                        + if k % 3 == 0 {
                            LATENCY_RESOLUTION_MS
                        } else {
                            0.0
                        },
                    bytes: 301,
                    synthetic: false,
                }
            })
            .collect()
    }

    fn verdict(stable_ms: f64, canary_ms: f64) -> Verdict {
        let data = input(&seen(stable_ms, canary_ms), 1000.0);
        judge::judge(&data, &JudgeConfig::default())
            .unwrap()
            .verdict
    }

    #[test]
    fn a_canary_one_front_door_tick_slower_at_a_1_ms_median_passes() {
        assert_eq!(verdict(1.0, 2.0), Verdict::Pass);
    }

    #[test]
    fn a_canary_slower_by_more_than_a_tick_and_the_relative_allowance_still_fails() {
        assert_eq!(verdict(1.0, 4.0), Verdict::Fail);
        assert_eq!(verdict(20.0, 30.0), Verdict::Fail);
        assert_eq!(verdict(20.0, 21.0), Verdict::Pass);
    }
}
