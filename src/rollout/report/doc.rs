//! The rollout's `report.json`: one document per rollout, built from the recorded state (so it is the same
//! after a crash and `resume`) and the judgement each judged step wrote into its own directory
//! (`step-N/report.json`, the canary's report format). Its JSON Schema is `report.schema.json` next to
//! this file ([`JSON_SCHEMA`]); the steps' embedded judgements follow the canary's schema.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::canary::judge::Judgement;

use super::super::plan;
use super::super::state::{
    ArmTally, Finished, LookRecord, Phase, RolloutState, StepRecord, WarmupRecord,
};
use super::super::world::DeploySummary;

/// Identifies the rollout's `report.json` format; bumped on incompatible changes.
pub const SCHEMA: &str = "pipeline-rollout-report/1";

/// The JSON Schema of the rollout's `report.json`.
pub const JSON_SCHEMA: &str = include_str!("report.schema.json");

/// The rollout's report.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub schema: &'static str,
    pub app: String,
    pub environment: String,
    pub provider: String,
    /// What was rolled out, in words.
    pub version: String,
    pub front_door: String,
    pub stable_hosts: Vec<String>,
    pub canary_host: String,
    pub settings: Settings,
    /// Unix seconds.
    pub started_at: f64,
    pub updated_at: f64,
    pub duration_s: f64,
    /// `promoted`, `rolled_back`, `aborted`, `paused` or `stopped` (interrupted; `resume` or `abort`).
    pub outcome: &'static str,
    /// The phase as recorded, in words.
    pub phase: String,
    /// The decision in words.
    pub decision: String,
    /// The canary's share the front door was last given.
    pub weight: u8,
    pub canary_exists: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The canary host's deploy, then the promotion's rolling deploy (with its batches).
    pub deploys: Vec<DeploySummary>,
    pub steps: Vec<Step>,
}

/// The settings the rollout ran with.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub steps: Vec<u8>,
    pub step_time_s: f64,
    pub max_step_time_s: f64,
    pub look_every_s: f64,
    /// The first step's warm-up before its judged window (0: none).
    pub warmup_s: f64,
    /// Synthetic requests per second (`--load`), if any.
    pub load: Option<f64>,
}

/// One run of a step (a step run again after a pause is a second entry).
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// 1-based.
    pub step: usize,
    /// Which run of the step this is, from 1.
    pub run: usize,
    pub weight: u8,
    pub judged: bool,
    pub started_at: f64,
    pub duration_s: f64,
    pub extended: bool,
    /// `PASS`, `MARGINAL`, `FAIL`, `INCONCLUSIVE`; `None` when not judged or interrupted.
    pub verdict: Option<&'static str>,
    pub reason: String,
    pub requests: Requests,
    /// The rollout's looks: requests per arm so far and the verdict at each.
    pub looks: Vec<LookRecord>,
    /// The warm-up before the judged window (the first step with `--warmup`): its requests per arm,
    /// judged on errors only, are not in `requests`.
    pub warmup: Option<WarmupRecord>,
    /// The step's own report directory (relative to the rollout's), when it was judged to the end.
    pub report: Option<String>,
    /// The step's judgement as its `report.json` holds it (the canary report's format).
    pub judgement: Option<Value>,
}

/// A step's requests per arm, real and synthetic counted apart.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Requests {
    pub stable: ArmTally,
    pub canary: ArmTally,
    /// Requests no host answered (the front door's own 502/504).
    pub unattributed: u64,
    pub real: u64,
    pub synthetic: u64,
    pub total: u64,
}

impl Requests {
    fn of(r: &StepRecord) -> Requests {
        let real = r.stable.real + r.canary.real;
        let synthetic = r.stable.synthetic + r.canary.synthetic;
        Requests {
            stable: r.stable,
            canary: r.canary,
            unattributed: r.unattributed,
            real,
            synthetic,
            total: real + synthetic + r.unattributed,
        }
    }
}

/// The directory name of each step record's own report: `step-N`, `step-N-run-K` for a later run of it.
pub fn step_dirs(state: &RolloutState) -> Vec<String> {
    state
        .steps
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let run = state.steps[..i]
                .iter()
                .filter(|p| p.index == r.index)
                .count();
            if run == 0 {
                format!("step-{}", r.index + 1)
            } else {
                format!("step-{}-run-{}", r.index + 1, run + 1)
            }
        })
        .collect()
}

/// `promoted`, `rolled_back`, `aborted`, `paused` or `stopped`.
pub fn outcome(state: &RolloutState) -> &'static str {
    match state.phase {
        Phase::Done {
            outcome: Finished::Promoted,
        } => "promoted",
        Phase::Done {
            outcome: Finished::RolledBack,
        } => "rolled_back",
        Phase::Done {
            outcome: Finished::Aborted,
        } => "aborted",
        Phase::Paused { .. } => "paused",
        _ => "stopped",
    }
}

/// The document of `state`, with the judgements found in `dir`.
pub fn document(dir: &Path, state: &RolloutState) -> Document {
    let s = &state.settings;
    let dirs = step_dirs(state);
    let steps = state
        .steps
        .iter()
        .zip(&dirs)
        .map(|(r, d)| {
            let judgement = r
                .verdict
                .and_then(|_| std::fs::read(dir.join(d).join("report.json")).ok())
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
            Step {
                step: r.index + 1,
                run: d
                    .rsplit_once("-run-")
                    .and_then(|(_, k)| k.parse().ok())
                    .unwrap_or(1),
                weight: r.weight,
                judged: r.judged,
                started_at: r.started_at,
                duration_s: r.duration_s,
                extended: r.extended,
                verdict: r.verdict.map(crate::canary::judge::Verdict::as_str),
                reason: r.reason.clone(),
                requests: Requests::of(r),
                looks: r.looks.clone(),
                warmup: r.warmup,
                report: judgement.as_ref().map(|_| d.clone()),
                judgement,
            }
        })
        .collect();
    Document {
        schema: SCHEMA,
        app: s.app.clone(),
        environment: s.environment.clone(),
        provider: s.provider.clone(),
        version: plan::version(s),
        front_door: state.front_door.clone(),
        stable_hosts: state.stable_hosts.clone(),
        canary_host: state.canary_host.clone(),
        settings: Settings {
            steps: s.steps.clone(),
            step_time_s: s.step_time_s,
            max_step_time_s: s.max_step_time_s,
            look_every_s: s.look_every_s,
            warmup_s: s.warmup_s,
            load: s.load,
        },
        started_at: state.started_at,
        updated_at: state.updated_at,
        duration_s: (state.updated_at - state.started_at).max(0.0),
        outcome: outcome(state),
        phase: state.phase.describe(&s.steps),
        decision: super::decision(state),
        weight: state.weight,
        canary_exists: state.canary_exists,
        last_error: state.last_error.clone(),
        deploys: state.deploys.clone(),
        steps,
    }
}

/// A step's judgement as a [`Judgement`] (from the canary report it embeds), for the renderers.
pub fn judgement(step: &Step) -> Option<Judgement> {
    serde_json::from_value(step.judgement.clone()?).ok()
}

/// The `report.json` text (pretty-printed, trailing newline).
pub fn to_json(doc: &Document) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("the report serializes");
    s.push('\n');
    s
}
