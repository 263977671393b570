//! `report.html` in a real browser: Debian's headless Chromium (the shared DevTools driver in
//! tests/shared/browser.rs) loads the report without console messages (errors, failed loads) and lays out
//! every chart with visible lines and bars; a screenshot and the reports are kept in `target/test-artifacts/report-browser/` for a human to look at.
//!
//! Needs `/usr/bin/chromium` (installed by scripts/setup.sh); the test fails with that hint otherwise.

use std::path::{Path, PathBuf};

use pipeline::canary::judge::{judge, FailOn, JudgeConfig, JudgeInput, MetricInput};
use pipeline::canary::report::{self, Extras};

use crate::shared::artifacts_dir;
use crate::shared::browser::Browser;

/// `target/test-artifacts/report-browser/`, created.
fn artifacts() -> PathBuf {
    let dir = artifacts_dir().join("report-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn file_url(page: &Path) -> String {
    format!("file://{}", page.display())
}

/// A judgement with every chart kind: latency (CDF + over time), error rate (bars + over time), size (CDF).
fn judgement() -> pipeline::canary::judge::Judgement {
    let n = 3000;
    let t: Vec<f64> = (0..n).map(|i| i as f64 * 60.0 / n as f64).collect();
    let lat = |scale: f64, salt: usize| -> Vec<f64> {
        (0..n)
            .map(|i| {
                let v = 8.0 + ((i * 7919 + salt) % 1000) as f64 / 40.0;
                if (i + salt) % 50 == 0 {
                    v * 10.0 * scale
                } else {
                    v * scale
                }
            })
            .collect()
    };
    let mut latency = MetricInput::new("latency_ms", FailOn::Increase, lat(1.0, 0), lat(1.1, 7));
    latency.unit = Some("ms".into());
    latency.baseline_time_s = Some(t.clone());
    latency.canary_time_s = Some(t.clone());
    let mut errors = MetricInput::new(
        "error_rate",
        FailOn::Increase,
        (0..n).map(|i| (i % 100 == 0) as u8 as f64).collect(),
        (0..n).map(|i| (i % 33 == 0) as u8 as f64).collect(),
    );
    errors.critical = true;
    errors.baseline_time_s = Some(t.clone());
    errors.canary_time_s = Some(t);
    let size = MetricInput::new(
        "response_bytes",
        FailOn::Decrease,
        vec![5120.0; n],
        (0..n)
            .map(|i| if i % 4 == 0 { 21.0 } else { 5120.0 })
            .collect(),
    );
    judge(
        &JudgeInput {
            metrics: vec![latency, errors, size],
            unanswered: None,
        },
        &JudgeConfig::default(),
    )
    .unwrap()
}

#[test]
fn console_check_detects_errors_on_a_broken_page() {
    // Control: proves the console check below would see a script error or a failed load.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        r#"<!DOCTYPE html><html><body><img src="missing.png"><script>console.error("marker"); nope();</script></body></html>"#,
    )
    .unwrap();
    let mut browser = Browser::launch();
    browser.open(&file_url(&page));
    let lines = browser.console_messages().join("\n");
    assert!(
        lines.contains("marker") && lines.contains("nope is not defined"),
        "{lines}"
    );
}

#[test]
fn report_html_loads_without_console_messages_and_renders_every_chart() {
    let dir = artifacts();
    let j = judgement();
    let extras = Extras {
        run: Some(report::RunInfo::Other(
            serde_json::json!({"baseline": "master", "canary": "broken <i>", "seed": 7}),
        )),
        deploy: Some(
            serde_json::from_value(serde_json::json!({
                "name": "canary", "success": true, "duration_secs": 41.5, "changed": 3, "ansible_rc": 0,
                "hosts": [{"name": "blue", "verdict": "ok", "stats": {"ok": 12, "changed": 3, "failures": 0,
                    "unreachable": 0, "skipped": 1, "rescued": 0, "ignored": 0}}],
                "roles": [{"role": "preview_service", "tasks": 9, "changed": 3, "failed": 0, "duration_secs": 20.0}],
                "failures": [], "report": "canary-report/deploy.json"
            }))
            .unwrap(),
        ),
    };
    let files = report::write_all(&dir, &j, &extras).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files.json).unwrap()).unwrap();
    crate::shared::report_schema::assert_valid(&json);

    // 1. The report itself: no console output at all, and the DOM holds the charts.
    let mut browser = Browser::launch();
    browser.open(&file_url(&files.html));
    let messages = browser.console_messages();
    assert!(
        messages.is_empty(),
        "console messages:\n{}",
        messages.join("\n")
    );
    let dom = browser.eval("document.documentElement.outerHTML");
    let dom = dom.as_str().expect("the DOM as text");
    assert!(
        dom.contains(r#"id="verdict">FAIL<"#),
        "verdict badge missing"
    );
    assert!(dom.contains("broken &lt;i&gt;"), "run metadata not escaped");
    let charts = dom
        .matches(r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart""#)
        .count();
    assert_eq!(
        charts, 5,
        "latency CDF + timeline, error-rate bars + timeline, size CDF"
    );

    // 2. The browser's own layout of every chart, measured in the page (the report has no scripts).
    let probe = r"[...document.querySelectorAll('svg.chart')].map(svg => {
        const marks = [...svg.querySelectorAll('path.line, rect.bar')];
        const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
        const r = svg.getBoundingClientRect();
        return `${Math.round(r.width)}x${Math.round(r.height)}:${drawn.length}/${marks.length}`;
      }).join(' ')";
    let check = browser.eval(probe);
    let check = check.as_str().expect("probe output");
    let entries: Vec<&str> = check.split_whitespace().collect();
    assert_eq!(entries.len(), 5, "{check}");
    for e in &entries {
        let (size, marks) = e.split_once(':').unwrap();
        let (w, h) = size.split_once('x').unwrap();
        assert!(
            w.parse::<u32>().unwrap() >= 300 && h.parse::<u32>().unwrap() >= 120,
            "chart too small: {e}"
        );
        let (drawn, total) = marks.split_once('/').unwrap();
        assert!(total != "0" && drawn == total, "undrawn marks: {e}");
    }
    let messages = browser.console_messages();
    assert!(messages.is_empty(), "{}", messages.join("\n"));

    // 3. A screenshot of the whole page for people (kept in target/test-artifacts/report-browser/report.png).
    let shot = dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    browser.screenshot(&shot);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 50_000,
        "screenshot suspiciously small ({} bytes)",
        png.len()
    );
    eprintln!("report and screenshot in {}", dir.display());
}
