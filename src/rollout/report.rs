//! The rollout's report. Each judged step gets the canary's full report (`step-N/report.json` with its
//! schema, `report.md`, self-contained `report.html`: the judge's table, the looks, the charts), with the
//! step's weight, duration and request counts per arm (real and synthetic) as its run section. The
//! rollout as a whole is `rollout.md` and `rollout.json` (the recorded state plus the decision in words),
//! rewritten whenever the rollout stops, however it stopped.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::canary::judge::{num, Judgement};
use crate::canary::report::{self, Extras, ReportError, ReportFiles, RunInfo};

use super::state::{Phase, RolloutState, StepRecord};

/// Writes step `rec`'s report into `dir/step-N/`.
pub fn write_step(
    dir: &Path,
    state: &RolloutState,
    rec: &StepRecord,
    judgement: &Judgement,
) -> Result<ReportFiles, ReportError> {
    let run = json!({
        "app": state.settings.app,
        "environment": state.settings.environment,
        "step": format!("{}/{}", rec.index + 1, state.settings.steps.len()),
        "canary weight (%)": rec.weight,
        "duration (s)": num(rec.duration_s),
        "extended past the step time": rec.extended,
        "stable host(s)": state.stable_hosts.join(", "),
        "canary host": state.canary_host,
        "stable requests (real)": rec.stable.real,
        "stable requests (synthetic)": rec.stable.synthetic,
        "canary requests (real)": rec.canary.real,
        "canary requests (synthetic)": rec.canary.synthetic,
        "requests no host answered": rec.unattributed,
    });
    let extras = Extras {
        run: Some(RunInfo::Other(run)),
        deploy: None,
    };
    report::write_all(&step_dir(dir, rec.index), judgement, &extras)
}

pub fn step_dir(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("step-{}", index + 1))
}

/// The decision so far, in words.
pub fn decision(state: &RolloutState) -> String {
    let app = &state.settings.app;
    match &state.phase {
        Phase::Done { outcome } => match outcome {
            super::state::Finished::Promoted => format!(
                "Promoted: the canary passed every judged step; {} now run the new version and the canary host is gone.",
                state.stable_hosts.join(", ")
            ),
            super::state::Finished::RolledBack => format!(
                "Rolled back: {}; 100 % of {app}'s requests go to the stable hosts again and the canary host is gone.",
                state.last_error.as_deref().unwrap_or("the canary failed")
            ),
            super::state::Finished::Aborted => format!(
                "Aborted on request: 100 % of {app}'s requests go to the stable hosts and the canary host is gone."
            ),
        },
        Phase::Paused { index, verdict } => format!(
            "Paused at step {} ({} % to the canary): {}; the weight stays until `pipeline rollout resume {app}` or `pipeline rollout abort {app}`.",
            index + 1,
            state.weight,
            verdict.as_str()
        ),
        other => format!(
            "Stopped while {}: {}; traffic stays as the last step left it ({} % to the canary).",
            other.describe(&state.settings.steps),
            state.last_error.as_deref().unwrap_or("interrupted"),
            state.weight
        ),
    }
}

/// `rollout.md`: the steps as a table and the decision.
pub fn to_markdown(state: &RolloutState) -> String {
    let s = &state.settings;
    let mut out = format!(
        "# Rollout of {} in {}\n\n{}\n\n| Step | Weight | Duration | Stable (real + synthetic) | Canary (real + synthetic) | Canary errors | Looks | Verdict |\n|---|---|---|---|---|---|---|---|\n",
        s.app,
        s.environment,
        decision(state)
    );
    for r in &state.steps {
        let verdict = match (r.judged, r.verdict) {
            (false, _) => "not judged".to_string(),
            (true, None) => "interrupted".to_string(),
            (true, Some(v)) => format!("[{}](step-{}/report.md)", v.as_str(), r.index + 1),
        };
        out.push_str(&format!(
            "| {}/{} | {} % | {} s{} | {} + {} | {} + {} | {} | {} | {} |\n",
            r.index + 1,
            s.steps.len(),
            r.weight,
            num(r.duration_s),
            if r.extended { " (extended)" } else { "" },
            r.stable.real,
            r.stable.synthetic,
            r.canary.real,
            r.canary.synthetic,
            r.canary.errors,
            r.looks.len(),
            verdict
        ));
    }
    out
}

/// Writes `rollout.json` and `rollout.md` into `dir`.
pub fn write_summary(dir: &Path, state: &RolloutState) -> std::io::Result<()> {
    crate::fsutil::ensure_private_dir(dir)?;
    let doc = json!({
        "schema": "pipeline-rollout-report/1",
        "decision": decision(state),
        "state": state,
    });
    let mut text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    text.push('\n');
    crate::fsutil::write_atomic(&dir.join("rollout.json"), text.as_bytes(), 0o600)?;
    crate::fsutil::write_atomic(
        &dir.join("rollout.md"),
        to_markdown(state).as_bytes(),
        0o644,
    )
}
