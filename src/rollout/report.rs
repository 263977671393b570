//! The rollout's report. Each judged step gets the canary's full report (`step-N/report.json` with its
//! schema, `report.md`, self-contained `report.html`: the judge's table, the looks, the charts), with the
//! step's weight, duration and request counts per arm (real and synthetic) as its run section. The
//! rollout as a whole is one report in the same directory, rewritten whenever the rollout stops, however
//! it stopped: `report.json` ([`doc`], schema `report/report.schema.json`), `report.md` and a
//! self-contained `report.html` ([`render`]; every step with its weight, duration, requests per arm real
//! and synthetic, looks and judge table), and the same on the terminal.

pub mod doc;
pub mod render;

use std::path::Path;

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
        "warm-up before it (s)": num(rec.warmup.map_or(0.0, |w| w.duration_s)),
        // The canary schema's `run` values are strings or numbers.
        "extended past the step time": if rec.extended { "yes" } else { "no" },
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
    let name = doc::step_dirs(state)
        .pop()
        .unwrap_or_else(|| format!("step-{}", rec.index + 1));
    report::write_all(&dir.join(name), judgement, &extras)
}

/// The decision so far, in words.
pub fn decision(state: &RolloutState) -> String {
    let app = &state.settings.app;
    let mut text = match &state.phase {
        Phase::Done { outcome } => match outcome {
            super::state::Finished::Promoted => format!(
                "Promoted: the canary passed every judged step; {} now {} the new version and the canary host is gone.",
                state.stable_hosts.join(", "),
                if state.stable_hosts.len() == 1 { "runs" } else { "run" }
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
    };
    if state.phase.is_done() && state.canary_scraped {
        text.push_str(&format!(
            " The monitor's Prometheus did not answer when the canary went and still lists {}'s targets; `pipeline rollout abort {app}` removes them.",
            state.canary_host
        ));
    }
    text
}

/// Writes the rollout's `report.json`, `report.md` and `report.html` into `dir`; returns the terminal text.
pub fn write_summary(dir: &Path, state: &RolloutState) -> Result<String, ReportError> {
    crate::fsutil::ensure_private_dir(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let d = doc::document(dir, state);
    let files = [
        ("report.json", doc::to_json(&d)),
        ("report.md", render::to_markdown(&d)?),
        ("report.html", render::to_html(&d)?),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        crate::fsutil::write_atomic(&path, text.as_bytes(), 0o644)
            .map_err(|source| ReportError::Write { path, source })?;
    }
    Ok(render::terminal(&d))
}
