//! Unit tests of the report writers: report.json against the schema, report.md, report.html and the terminal table.

use super::*;
use crate::canary::judge::{judge, FailOn, JudgeConfig, JudgeInput, MetricInput};

fn sample() -> Judgement {
    let b: Vec<f64> = (0..400).map(|i| 100.0 + (i * 37 % 101) as f64).collect();
    let c: Vec<f64> = b.iter().map(|v| v * 1.4).collect();
    let t: Vec<f64> = (0..400).map(|i| i as f64 * 0.15).collect();
    let mut lat = MetricInput::new("latency_ms", FailOn::Increase, b, c);
    lat.unit = Some("ms".into());
    lat.baseline_time_s = Some(t.clone());
    lat.canary_time_s = Some(t);
    let errors = MetricInput::new(
        "error_rate",
        FailOn::Increase,
        (0..400).map(|i| (i % 50 == 0) as u8 as f64).collect(),
        (0..400).map(|i| (i % 40 == 0) as u8 as f64).collect(),
    );
    let mut cpu = MetricInput::new("cpu <b>&", FailOn::Increase, vec![], vec![]);
    cpu.critical = true;
    judge(
        &JudgeInput {
            metrics: vec![lat, errors, cpu],
            unanswered: None,
        },
        &JudgeConfig::default(),
    )
    .unwrap()
}

#[test]
fn terminal_report_shows_every_metric_and_the_verdict_in_words() {
    let j = sample();
    let mut out = Vec::new();
    let extras = Extras {
        run: Some(RunInfo::Other(
            serde_json::json!({"baseline": "master", "canary": "broken"}),
        )),
        deploy: None,
    };
    print_terminal(&mut out, &j, &extras).unwrap();
    let text = String::from_utf8(out).unwrap();
    for needle in [
        "latency_ms",
        "High",
        "error_rate",
        "NoData",
        "Score 50 / 100 → FAIL",
        "do not promote",
        "broken",
        "98% CI",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn html_is_escaped_self_contained_and_has_charts() {
    let html = to_html(&sample(), &Extras::default()).unwrap();
    assert!(html.contains("cpu &lt;b&gt;&amp;"));
    assert!(!html.contains("cpu <b>"));
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "latency CDF and timeline, error-rate bars"
    );
    for banned in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(banned), "found {banned}");
    }
}

#[test]
fn markdown_has_a_row_per_metric() {
    let md = to_markdown(&sample(), &Extras::default()).unwrap();
    assert!(md.contains("| latency_ms | High |"), "{md}");
    assert!(md.contains("**FAIL**"));
}

#[test]
fn write_all_writes_three_files_and_json_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let j = sample();
    let files = write_all(&dir.path().join("r"), &j, &Extras::default()).unwrap();
    let first = std::fs::read(&files.json).unwrap();
    write_all(&dir.path().join("r"), &j, &Extras::default()).unwrap();
    assert_eq!(first, std::fs::read(&files.json).unwrap());
    assert!(files.markdown.exists() && files.html.exists());
}
