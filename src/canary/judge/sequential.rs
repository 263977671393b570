//! Sequential judging: interim looks while the load runs, with the family-wise false-positive rate held
//! across all looks.
//!
//! # Method
//! Every test of the family (Mann–Whitney, the tail tests, two proportions) is a normal statistic; at each
//! look its fixed-sample p-value becomes an always-valid mSPRT p-value ([`boundary::always_valid_p`];
//! Johari, Pekelis & Walsh 2022), and the judge keeps each test's running minimum over the looks. Holm then
//! runs within the look over the whole planned family (tests not yet computable count as p = 1). The
//! Kolmogorov–Smirnov shape tests are not sequential: they enter with their fixed-sample p-value at the
//! last look only (p = 1 before).
//!
//! Why the error rate holds: each running-minimum p-value, and the last look's KS p-value, is at any look
//! at least the test's value at the end of the run, which is a valid p-value (Ville's inequality for the
//! mSPRT). Holm over a fixed family is monotone in its p-values and valid under any dependence, so any
//! rejection at any look implies a rejection by Holm on the end-of-run p-values: P(a false FAIL at any
//! look) ≤ α.
//!
//! # Verdicts
//! A FAIL at a look is **final** (the boundary was crossed; later looks cannot undo it) and stops the run.
//! Any other verdict before the last look is provisional: PASS, MARGINAL and INCONCLUSIVE are decided at
//! the last look (the end of the window or the planned samples).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    boundary, Detail, JudgeConfig, JudgeError, JudgeInput, Judgement, MetricKind, Verdict,
};

/// The name of the method, as in the report.
pub const METHOD: &str = "mixture SPRT (normal mixture, τ = 0.2 per unit of information), always-valid p-values with the running minimum over looks, Holm within each look; Kolmogorov–Smirnov at the last look";

/// Samples per arm at a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmCounts {
    pub baseline: usize,
    pub canary: usize,
}

impl ArmCounts {
    /// The largest n of any metric in each arm.
    fn of(judgement: &Judgement) -> Self {
        let max = |n: fn(&super::MetricResult) -> usize| {
            judgement.metrics.iter().map(n).max().unwrap_or(0)
        };
        ArmCounts {
            baseline: max(|m| m.baseline.n),
            canary: max(|m| m.canary.n),
        }
    }
}

/// One look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Look {
    /// Seconds since the start of the run (the samples with offsets ≤ t_s are judged).
    pub t_s: f64,
    /// Samples per arm (the largest count over the metrics).
    pub n: ArmCounts,
    /// The judge's verdict on the data so far.
    pub verdict: Verdict,
    /// Whether this verdict is final: a FAIL, or any verdict at the last look.
    #[serde(rename = "final")]
    pub is_final: bool,
    pub score: f64,
    /// The probability under no change that one test's always-valid boundary at level α has been
    /// crossed by this look (exact for a normal statistic at these looks; Armitage–McPherson–Rowe).
    pub alpha_spent: f64,
}

/// The `sequential` section of a judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialReport {
    pub method: String,
    /// Seconds between looks.
    pub look_every_s: f64,
    pub looks: Vec<Look>,
    /// The time of the look at which the verdict became final.
    pub stopped_at_s: f64,
    /// Whether the verdict became final before the last planned look.
    pub stopped_early: bool,
}

/// The state of a sequential judgement across looks.
#[derive(Debug, Clone)]
pub struct SequentialJudge {
    config: JudgeConfig,
    look_every_s: f64,
    /// Planned number of tests in the family.
    family: usize,
    /// Running minimum of each test's always-valid p, by (metric index, test slot).
    running: BTreeMap<(usize, usize), f64>,
    looks: Vec<Look>,
    infos: Vec<f64>,
    /// Whether each look was the last planned one.
    last_flags: Vec<bool>,
    decided: Option<Judgement>,
}

/// Number of tests a metric contributes to the family (kind inferred from the data like the judge does).
fn planned_tests(m: &super::MetricInput) -> usize {
    let proportion = m.kind.map_or_else(
        || {
            let all = m.baseline.iter().chain(&m.canary);
            m.baseline.len() + m.canary.len() > 0 && all.clone().all(|v| *v == 0.0 || *v == 1.0)
        },
        |k| k == MetricKind::Proportion,
    );
    if proportion {
        1
    } else {
        1 + 2 * (m.fail_on.up() as usize + m.fail_on.down() as usize)
    }
}

impl SequentialJudge {
    /// Starts a sequential judgement of the metrics of `plan` (its samples only decide each metric's
    /// kind when it is not given).
    pub fn new(
        plan: &JudgeInput,
        config: &JudgeConfig,
        look_every_s: f64,
    ) -> Result<Self, JudgeError> {
        config.validate()?;
        plan.validate()?;
        Ok(SequentialJudge {
            config: config.clone(),
            look_every_s,
            family: plan.metrics.iter().map(planned_tests).sum(),
            running: BTreeMap::new(),
            looks: Vec::new(),
            infos: Vec::new(),
            last_flags: Vec::new(),
            decided: None,
        })
    }

    /// The final judgement once one exists (a FAIL, or the last look).
    pub fn decided(&self) -> Option<&Judgement> {
        self.decided.as_ref()
    }

    /// Judges the samples so far at time `t_s`; `last` marks the last look. Returns the look's judgement;
    /// its verdict is final when it is FAIL or `last`. A judgement that is not final carries only what
    /// the verdict depends on (no confidence interval of the shift, timeline or CDF: that is most of a
    /// look's cost on large samples, and it is never reported); a final one carries everything.
    pub fn look(
        &mut self,
        t_s: f64,
        input: &JudgeInput,
        last: bool,
    ) -> Result<Judgement, JudgeError> {
        input.validate_with(Some(&self.config))?;
        let detail = if last { Detail::Full } else { Detail::Verdict };
        let (mut judgement, mut info_max) = self.judge_now(input, last, detail);
        if detail == Detail::Verdict && judgement.verdict == Verdict::Fail {
            // A final FAIL is reported: judged again with every figure. The running minima already hold
            // this look's values, so the p-values, and with them the verdict, are the same.
            (judgement, info_max) = self.judge_now(input, last, Detail::Full);
        }
        let n = ArmCounts::of(&judgement);
        self.infos.push(info_max);
        self.last_flags.push(last);
        let bounds: Vec<f64> = self
            .infos
            .iter()
            .map(|&i| boundary::z_boundary(self.config.alpha(), i, boundary::TAU))
            .collect();
        let is_final = last || judgement.verdict == Verdict::Fail;
        self.looks.push(Look {
            t_s,
            n,
            verdict: judgement.verdict,
            is_final,
            score: judgement.score,
            alpha_spent: boundary::crossing_probability(&self.infos, &bounds),
        });
        if is_final && self.decided.is_none() {
            self.decided = Some(judgement.clone());
        }
        Ok(judgement)
    }

    /// The judgement of `input` with each sequential test's running-minimum always-valid p-value (updated
    /// by this look) and the KS tests at the last look only; also the look's largest information.
    fn judge_now(&mut self, input: &JudgeInput, last: bool, detail: Detail) -> (Judgement, f64) {
        let prepared: Vec<super::Prepared> = input
            .metrics
            .iter()
            .map(|m| super::prepare(m, &self.config, detail))
            .collect();
        let mut raw = Vec::new();
        let mut info_max = 0.0f64;
        for (i, p) in prepared.iter().enumerate() {
            let info = boundary::information(p.result.baseline.n, p.result.canary.n);
            info_max = info_max.max(info);
            let ps = p.raw_p();
            let shapes = p.result.shapes.len();
            let sequential_tests = ps.len() - shapes;
            for (slot, &pv) in ps.iter().enumerate() {
                let v = if slot < sequential_tests {
                    let av = boundary::always_valid_p(pv, info, boundary::TAU);
                    let e = self.running.entry((i, slot)).or_insert(1.0);
                    *e = e.min(av);
                    *e
                } else if last {
                    pv
                } else {
                    1.0
                };
                raw.push(v);
            }
        }
        let mut prepared = prepared;
        // Report the p-values the decision used.
        let mut values = raw.iter().copied();
        for p in &mut prepared {
            let r = &mut p.result;
            if r.p_value.is_some() {
                r.p_value = values.next();
            }
            for t in &mut r.tails {
                t.p_value = values.next().expect("one p per test");
            }
            for t in &mut r.shapes {
                t.p_value = values.next().expect("one p per test");
            }
        }
        let judgement = super::conclude(input, prepared, raw, self.family, &self.config, true);
        (judgement, info_max)
    }

    /// Judges the deciding look again, at its time, with `input`: the same samples plus what was not at
    /// hand when the look was taken (a canary's host metrics are collected only once the load stops). Only
    /// when that look is the last one taken (an early stop); otherwise nothing changes and `None` is
    /// returned. The tests the look had keep their running minima and the added ones enter with this
    /// look's values; Holm over the fixed family only gains rejections from smaller p-values, so the
    /// verdict stays (it is kept should it not). Returns the amended judgement.
    pub fn amend_last_look(&mut self, input: &JudgeInput) -> Result<Option<Judgement>, JudgeError> {
        let (Some(t_s), Some(before)) = (
            self.looks.last().map(|l| l.t_s),
            self.decided.as_ref().map(|d| d.verdict),
        ) else {
            return Ok(None);
        };
        if self.looks.iter().position(|l| l.is_final) != Some(self.looks.len() - 1) {
            return Ok(None);
        }
        input.validate_with(Some(&self.config))?;
        let last = self.last_flags.last().copied().unwrap_or(false);
        let (judgement, info) = self.judge_now(input, last, Detail::Full);
        if judgement.verdict != before {
            return Ok(None);
        }
        let n = ArmCounts::of(&judgement);
        if let Some(i) = self.infos.last_mut() {
            *i = i.max(info);
        }
        let bounds: Vec<f64> = self
            .infos
            .iter()
            .map(|&i| boundary::z_boundary(self.config.alpha(), i, boundary::TAU))
            .collect();
        let alpha_spent = boundary::crossing_probability(&self.infos, &bounds);
        if let Some(l) = self.looks.last_mut() {
            *l = Look {
                t_s,
                n,
                verdict: judgement.verdict,
                is_final: true,
                score: judgement.score,
                alpha_spent,
            };
        }
        self.decided = Some(judgement.clone());
        Ok(Some(judgement))
    }

    /// The final judgement with its `sequential` section; `None` before a final look.
    pub fn finish(self) -> Option<Judgement> {
        let mut j = self.decided?;
        let stop = self
            .looks
            .iter()
            .position(|l| l.is_final)
            .expect("a final look");
        let stopped_at_s = self.looks[stop].t_s;
        let stopped_early = !self.last_flags[stop];
        j.reason = format!(
            "sequential: {} final at look {} of {} (t = {} s); {}",
            j.verdict.as_str(),
            stop + 1,
            self.looks.len(),
            super::num(stopped_at_s),
            j.reason
        );
        j.sequential = Some(SequentialReport {
            method: METHOD.into(),
            look_every_s: self.look_every_s,
            looks: self.looks,
            stopped_at_s,
            stopped_early,
        });
        Some(j)
    }
}

/// Replays the looks of a recorded run over the samples' time offsets: a look every `look_every_s`
/// seconds and a last one at the last sample. With `early_stop` the replay ends at a final FAIL (as a live
/// canary would); without it every look is judged and the first final FAIL stays the verdict.
/// Every metric needs `baseline_time_s` and `canary_time_s`.
pub fn replay(
    input: &JudgeInput,
    config: &JudgeConfig,
    look_every_s: f64,
    early_stop: bool,
) -> Result<Judgement, ReplayError> {
    if !(look_every_s.is_finite() && look_every_s > 0.0) {
        return Err(ReplayError::LookEvery(look_every_s));
    }
    let mut judge = SequentialJudge::new(input, config, look_every_s)?;
    let mut end = 0.0f64;
    for m in &input.metrics {
        let (Some(tb), Some(tc)) = (&m.baseline_time_s, &m.canary_time_s) else {
            return Err(ReplayError::NoTimes(m.name.clone()));
        };
        end = tb.iter().chain(tc).fold(end, |a, &t| a.max(t));
    }
    let mut times: Vec<f64> = Vec::new();
    let mut k = 1u64;
    // A look within a microsecond of the end is the last look itself (offsets like i·W/n round either way).
    while (k as f64) * look_every_s < end - 1e-6 && times.len() < 10_000 {
        times.push(k as f64 * look_every_s);
        k += 1;
    }
    times.push(end);
    for (i, &t) in times.iter().enumerate() {
        let last = i + 1 == times.len();
        let upto = truncate(input, t);
        let j = judge.look(t, &upto, last)?;
        if early_stop && j.verdict == Verdict::Fail {
            break;
        }
    }
    // Looks after a final FAIL (no early stop) are kept for the report; the FAIL stays the verdict.
    Ok(judge.finish().expect("the last look is final"))
}

/// The samples with time offsets ≤ t.
pub fn truncate(input: &JudgeInput, t: f64) -> JudgeInput {
    let keep = |values: &[f64], times: &Option<Vec<f64>>| -> (Vec<f64>, Option<Vec<f64>>) {
        match times {
            Some(ts) => {
                let (v, tt): (Vec<f64>, Vec<f64>) = values
                    .iter()
                    .zip(ts)
                    .filter(|(_, &ti)| ti <= t)
                    .map(|(&v, &ti)| (v, ti))
                    .unzip();
                (v, Some(tt))
            }
            None => (values.to_vec(), None),
        }
    };
    JudgeInput {
        metrics: input
            .metrics
            .iter()
            .map(|m| {
                let (baseline, baseline_time_s) = keep(&m.baseline, &m.baseline_time_s);
                let (canary, canary_time_s) = keep(&m.canary, &m.canary_time_s);
                let mut out = m.clone();
                // Keep the kind the full run implies, so a metric cannot change kind between looks.
                out.kind = Some(m.kind.unwrap_or(if planned_tests(m) == 1 {
                    MetricKind::Proportion
                } else {
                    MetricKind::Continuous
                }));
                out.baseline = baseline;
                out.canary = canary;
                out.baseline_time_s = baseline_time_s;
                out.canary_time_s = canary_time_s;
                out
            })
            .collect(),
        // A share of the whole run: it can only turn the last look's PASS into INCONCLUSIVE.
        unanswered: input.unanswered,
    }
}

/// Why a replay cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReplayError {
    #[error("metric `{0}` has no baseline_time_s/canary_time_s; a sequential replay needs a time offset per sample (files written by `pipeline canary` have them)")]
    NoTimes(String),
    #[error("look interval {0} s: expected a positive number of seconds")]
    LookEvery(f64),
    #[error(transparent)]
    Judge(#[from] JudgeError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::judge::{FailOn, MetricInput};

    /// Latency (log-normal, canary × `factor`), errors (0/1, 1 %) and byte counts (integers), `n` per arm
    /// spread evenly over 30 s; deterministic.
    fn input(n: usize, factor: f64, seed: u64) -> JudgeInput {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut normal = move || {
            let (u1, u2) = (uniform(), uniform());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let mut arm = |f: f64| -> [Vec<f64>; 3] {
            let lat = (0..n).map(|_| f * 20.0 * (0.5 * normal()).exp()).collect();
            let err = (0..n).map(|_| (normal() > 2.326) as u8 as f64).collect();
            let bytes = (0..n).map(|_| (5000.0 + 50.0 * normal()).round()).collect();
            [lat, err, bytes]
        };
        let [bl, be, bb] = arm(1.0);
        let [cl, ce, cb] = arm(factor);
        let times: Vec<f64> = (0..n).map(|i| (i + 1) as f64 * 30.0 / n as f64).collect();
        let metrics = [
            ("latency_ms", FailOn::Increase, bl, cl),
            ("error_rate", FailOn::Increase, be, ce),
            ("response_bytes", FailOn::Decrease, bb, cb),
        ]
        .into_iter()
        .map(|(name, fail_on, b, c)| {
            let mut m = MetricInput::new(name, fail_on, b, c);
            m.baseline_time_s = Some(times.clone());
            m.canary_time_s = Some(times.clone());
            m
        })
        .collect();
        JudgeInput {
            metrics,
            unanswered: None,
        }
    }

    #[test]
    fn an_interim_look_decides_as_the_full_judgement_would_and_a_final_fail_carries_every_figure() {
        let mut failed = 0;
        for (seed, factor) in [(1, 1.0), (2, 1.02), (3, 1.3), (4, 1.0)] {
            let full = input(3000, factor, seed);
            let config = JudgeConfig::default();
            let mut interim = SequentialJudge::new(&full, &config, 3.0).unwrap();
            let mut reference = interim.clone();
            for k in 1..10 {
                let t = k as f64 * 3.0;
                let upto = truncate(&full, t);
                let a = interim.look(t, &upto, false).unwrap();
                let (b, _) = reference.judge_now(&upto, false, Detail::Full);
                assert_eq!((a.verdict, a.score), (b.verdict, b.score), "look {k}");
                for (ma, mb) in a.metrics.iter().zip(&b.metrics) {
                    assert_eq!(ma.classification, mb.classification, "{}", ma.name);
                    assert_eq!(
                        (ma.p_value, ma.p_adjusted, ma.estimate),
                        (mb.p_value, mb.p_adjusted, mb.estimate),
                        "{}",
                        ma.name
                    );
                }
                let continuous = |j: &Judgement| j.metrics[0].clone();
                if a.verdict == Verdict::Fail {
                    // Reported: the interval, timeline and CDF are there, as in the full judgement.
                    assert_eq!(continuous(&a), continuous(&b));
                    assert!(continuous(&a).ci.is_some());
                    assert!(continuous(&a).series.timeline.is_some());
                    failed += 1;
                    break;
                }
                assert_eq!(continuous(&a).ci, None, "not computed on an interim look");
                assert!(continuous(&a).series.timeline.is_none());
            }
        }
        assert_eq!(failed, 1, "only the +30 % canary fails early");
    }
}
