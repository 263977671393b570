//! The rollout's report for people: the terminal text, `report.md` and a self-contained `report.html`
//! (inline CSS and SVG, no scripts), from the [`Document`]. Each judged step's judge table, looks and
//! charts come from the canary report's own pieces: [`report::judge_view`] and the `judge` macros of
//! `templates/report/judge.{html,md}.tera` (the HTML one also gives the stylesheet), and on the terminal
//! [`report::terminal_text`].

use serde::Serialize;
use serde_json::Value;

use crate::canary::judge::num;
use crate::canary::report::{self, ReportError};

use super::doc::{judgement, Document, Step};

#[derive(Serialize)]
struct View<'a> {
    doc: &'a Document,
    css: &'static str,
    outcome_words: &'static str,
    summary: Vec<(String, String)>,
    steps: Vec<StepView<'a>>,
    deploys: Vec<DeployView>,
}

#[derive(Serialize)]
struct StepView<'a> {
    step: &'a Step,
    title: String,
    verdict: String,
    css: &'static str,
    duration: String,
    /// The warm-up before the judged window, in a sentence.
    warmup: Option<String>,
    judge: Option<Value>,
}

#[derive(Serialize)]
struct DeployView {
    what: String,
    result: &'static str,
    css: &'static str,
    duration: String,
    text: String,
    batches: Vec<(usize, String, String)>,
}

fn verdict_css(v: Option<&str>) -> &'static str {
    match v {
        Some("PASS") => "pass",
        Some("FAIL") => "fail",
        Some("MARGINAL") => "marginal",
        _ => "nodata",
    }
}

/// `2/4`, or `2/4 (run 2)` for a step run again after a resume.
fn step_number(doc: &Document, s: &Step) -> String {
    let run = if s.run > 1 {
        format!(" (run {})", s.run)
    } else {
        String::new()
    };
    format!("{}/{}{run}", s.step, doc.settings.steps.len())
}

fn step_title(doc: &Document, s: &Step) -> String {
    format!("Step {}: {} % to the canary", step_number(doc, s), s.weight)
}

fn step_verdict(s: &Step) -> String {
    match (s.judged, s.verdict) {
        (false, _) => "not judged".into(),
        (true, None) => "interrupted".into(),
        (true, Some(v)) => v.into(),
    }
}

fn duration(s: &Step) -> String {
    format!(
        "{} s{}{}",
        num(s.duration_s),
        if s.extended { " (extended)" } else { "" },
        s.warmup
            .map(|w| format!(" after {} s of warm-up", num(w.duration_s.round())))
            .unwrap_or_default()
    )
}

fn warmup(s: &Step) -> Option<String> {
    s.warmup.map(|w| {
        format!(
            "Warm-up before the judged window: {} s at this share, judged on errors only ({}): stable {} requests ({} failed), canary {} ({} failed).",
            num(w.duration_s.round()),
            match w.verdict {
                Some(crate::canary::judge::Verdict::Fail) => "FAIL",
                Some(_) => "no FAIL",
                None => "no look yet",
            },
            w.stable.real + w.stable.synthetic,
            w.stable.errors,
            w.canary.real + w.canary.synthetic,
            w.canary.errors
        )
    })
}

/// Unix seconds as `2025-12-01T12:34:56Z`.
fn utc(t: f64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0));
    humantime::format_rfc3339_seconds(at).to_string()
}

fn view(doc: &Document, with_charts: bool) -> View<'_> {
    let (css, outcome_words) = match doc.outcome {
        "promoted" => ("pass", "PROMOTED"),
        "rolled_back" => ("fail", "ROLLED BACK"),
        "aborted" => ("nodata", "ABORTED"),
        "paused" => ("marginal", "PAUSED"),
        _ => ("nodata", "STOPPED"),
    };
    let s = &doc.settings;
    let summary = vec![
        ("app".to_string(), doc.app.clone()),
        (
            "environment".into(),
            format!("{} ({})", doc.environment, doc.provider),
        ),
        ("version".into(), doc.version.clone()),
        ("front door".into(), doc.front_door.clone()),
        ("stable hosts".into(), doc.stable_hosts.join(", ")),
        ("canary host".into(), doc.canary_host.clone()),
        (
            "steps".into(),
            s.steps
                .iter()
                .map(|w| format!("{w} %"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "warm-up".into(),
            if s.warmup_s > 0.0 {
                format!(
                    "{} s before step 1's judged window, its requests judged on errors only",
                    num(s.warmup_s)
                )
            } else {
                "none".into()
            },
        ),
        (
            "step time".into(),
            format!(
                "{} s (up to {} s while INCONCLUSIVE), a look every {} s",
                num(s.step_time_s),
                num(s.max_step_time_s),
                num(s.look_every_s)
            ),
        ),
        (
            "synthetic load".into(),
            s.load
                .map(|r| format!("{} req/s through the front door", num(r)))
                .unwrap_or_else(|| "none (real requests only)".into()),
        ),
        ("started".into(), utc(doc.started_at)),
        ("took".into(), format!("{} s", num(doc.duration_s.round()))),
        ("phase".into(), doc.phase.clone()),
    ];
    let steps = doc
        .steps
        .iter()
        .map(|st| StepView {
            step: st,
            title: step_title(doc, st),
            verdict: step_verdict(st),
            css: if st.judged {
                verdict_css(st.verdict)
            } else {
                "nodata"
            },
            duration: duration(st),
            warmup: warmup(st),
            judge: judgement(st).map(|j| report::judge_view(&j, with_charts)),
        })
        .collect();
    let deploys = doc
        .deploys
        .iter()
        .map(|d| DeployView {
            what: d.what.clone(),
            result: if d.success { "ok" } else { "failed" },
            css: if d.success { "pass" } else { "fail" },
            duration: format!("{} s", num(d.duration_s.round())),
            text: d.text.clone(),
            batches: d
                .batches
                .iter()
                .enumerate()
                .map(|(i, b)| (i + 1, b.hosts.join(", "), b.result.clone()))
                .collect(),
        })
        .collect();
    View {
        doc,
        css,
        outcome_words,
        summary,
        steps,
        deploys,
    }
}

fn render(name: &str, doc: &Document, with_charts: bool) -> Result<String, ReportError> {
    let ctx = tera::Context::from_serialize(view(doc, with_charts))
        .expect("the view serializes to an object");
    Ok(crate::templates::render(name, &ctx)?)
}

/// `report.md`.
pub fn to_markdown(doc: &Document) -> Result<String, ReportError> {
    render("rollout.md.tera", doc, false)
}

/// `report.html`: self-contained (inline CSS and SVG charts, no scripts, no external assets).
pub fn to_html(doc: &Document) -> Result<String, ReportError> {
    render("rollout.html.tera", doc, true)
}

/// The terminal report: the steps as a table, the deploys, the deciding step's judge table, the decision.
pub fn terminal(doc: &Document) -> String {
    let mut out = format!(
        "Rollout of {} in {}: {}\n\n",
        doc.app,
        doc.environment,
        view(doc, false).outcome_words
    );
    let mut rows = vec![[
        "STEP", "WEIGHT", "DURATION", "STABLE", "CANARY", "ERRORS", "LOOKS", "VERDICT",
    ]
    .map(String::from)
    .to_vec()];
    for s in &doc.steps {
        let r = &s.requests;
        rows.push(vec![
            step_number(doc, s),
            format!("{} %", s.weight),
            duration(s),
            format!("{} + {} synth.", r.stable.real, r.stable.synthetic),
            format!("{} + {} synth.", r.canary.real, r.canary.synthetic),
            format!("{} / {}", r.stable.errors, r.canary.errors),
            s.looks.len().to_string(),
            step_verdict(s),
        ]);
    }
    for line in report::table(&rows) {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str("  (requests real + synthetic per arm; errors stable / canary)\n");
    for s in &doc.steps {
        if let Some(w) = warmup(s) {
            out.push_str(&format!("  Step {}: {w}\n", step_number(doc, s)));
        }
    }
    for d in &doc.deploys {
        out.push_str(&format!(
            "\nDeploy {}: {} in {} s: {}\n",
            d.what,
            if d.success { "ok" } else { "FAILED" },
            num(d.duration_s.round()),
            d.text
        ));
        for (i, b) in d.batches.iter().enumerate() {
            out.push_str(&format!(
                "  batch {}: {} ({})\n",
                i + 1,
                b.hosts.join(", "),
                b.result
            ));
        }
    }
    // The step that decided: the last judged one.
    if let Some((s, j)) = doc
        .steps
        .iter()
        .rev()
        .find_map(|s| judgement(s).map(|j| (s, j)))
    {
        out.push_str(&format!("\nThe judge at {}:\n\n", step_title(doc, s)));
        out.push_str(&report::terminal_text(&j));
    }
    out.push_str(&format!("\n{}\n", doc.decision));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(super::utc(1_764_592_496.7), "2025-12-01T12:34:56Z");
    }
}
