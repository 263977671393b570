//! Report text for the power figures of a metric and the looks of a sequential judgement, shared by the
//! terminal, Markdown and HTML renderers.

use crate::canary::judge::power::Power;
use crate::canary::judge::sequential::SequentialReport;
use crate::canary::judge::{fmt_p, num, pct, Judgement, MetricKind, MetricResult};

/// The MDE cell: `±4.1%` of the median (continuous) or `2.3 pp` (proportions); `–` when unknown.
pub fn mde_text(m: &MetricResult) -> String {
    match m.power.as_ref().and_then(|p| p.mde) {
        None => "–".into(),
        Some(v) => match m.kind {
            MetricKind::Continuous => pct(v),
            MetricKind::Proportion => format!("{} pp", num(v * 100.0)),
        },
    }
}

/// A details row on the metric's power: MDE, target, samples needed.
pub fn power_row(m: &MetricResult) -> Option<(String, String)> {
    let p: &Power = m.power.as_ref()?;
    let target = match m.kind {
        MetricKind::Continuous => format!("{} of the baseline median", pct(p.target)),
        MetricKind::Proportion => format!("{} pp", num(p.target * 100.0)),
    };
    let mut text = format!(
        "minimum detectable effect {} at n = {}/{} (level {}); to detect {target}: ",
        mde_text(m),
        m.baseline.n,
        m.canary.n,
        fmt_p(p.level)
    );
    match (p.needed_per_arm, p.more_per_arm) {
        (Some(need), Some(0)) => text.push_str(&format!("{need} per arm, reached")),
        (Some(need), Some(more)) => text.push_str(&format!(
            "{need} per arm, {more} more{}",
            p.more_seconds
                .map(|s| format!(" (about {} s at this run's rate)", num(s)))
                .unwrap_or_default()
        )),
        (None, Some(more)) if more > 0 => {
            text.push_str(&format!("at least {more} more per arm (min_samples)"));
        }
        _ => text.push_str("unknown (no spread in the baseline)"),
    }
    Some((format!("power ({}%)", num(p.power * 100.0)), text))
}

/// Rows of the looks table: header first.
pub fn look_rows(s: &SequentialReport) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "LOOK".to_string(),
        "t (s)".into(),
        "n baseline".into(),
        "n canary".into(),
        "verdict".into(),
        "score".into(),
        "α spent".into(),
    ]];
    for (i, l) in s.looks.iter().enumerate() {
        rows.push(vec![
            (i + 1).to_string(),
            num(l.t_s),
            l.n.baseline.to_string(),
            l.n.canary.to_string(),
            format!(
                "{}{}",
                l.verdict.as_str(),
                if l.is_final { " (final)" } else { "" }
            ),
            num(l.score),
            fmt_p(l.alpha_spent),
        ]);
    }
    rows
}

/// One sentence on the sequential judgement.
pub fn summary(j: &Judgement) -> Option<String> {
    let s = j.sequential.as_ref()?;
    Some(format!(
        "Sequential ({}): {} looks every {} s; the verdict became final at {} s{}.",
        s.method,
        s.looks.len(),
        num(s.look_every_s),
        num(s.stopped_at_s),
        if s.stopped_early {
            ", before the end of the window (stopped early)"
        } else {
            ", at the last look"
        }
    ))
}
