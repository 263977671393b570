//! The rollout's report from fake-world rollouts: `report.json` against its JSON Schema (and each step's
//! embedded judgement against the canary report's), `report.md`, the self-contained `report.html` and
//! the terminal text, with every step's weight, duration, requests per arm (real and synthetic), looks and
//! judge table, the deploys with the promotion's batches, and the decision in words.

use super::*;
use crate::rollout::report::doc;

/// Every way `value` breaks `schema` (a valid Draft 2020-12 schema), as `pointer: message` lines.
fn violations(schema: &str, value: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(schema).expect("the schema is JSON");
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "the schema declares another draft than the validator enforces"
    );
    jsonschema::meta::validate(&schema).expect("a valid Draft 2020-12 schema");
    let v = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    v.iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(value: &serde_json::Value) {
    let errors = violations(doc::JSON_SCHEMA, value);
    assert!(
        errors.is_empty(),
        "report.json breaks its schema:\n{}",
        errors.join("\n")
    );
    for step in value["steps"].as_array().unwrap() {
        if !step["judgement"].is_null() {
            let errors = violations(crate::canary::report::JSON_SCHEMA, &step["judgement"]);
            assert!(
                errors.is_empty(),
                "a step's judgement:\n{}",
                errors.join("\n")
            );
        }
    }
}

fn read(t: &Setup, name: &str) -> String {
    std::fs::read_to_string(t.settings.report_dir.join(name)).unwrap()
}

#[tokio::test]
async fn the_report_of_a_promoted_rollout_follows_its_schema_and_shows_steps_deploys_and_the_decision(
) {
    let mut t = quiet_setup();
    t.settings.load = Some(40.0);
    let mut fake = t.fake();
    fake.rate = 3.0;
    assert_eq!(t.start(&mut fake).await.unwrap().ending, Ending::Promoted);

    let json: serde_json::Value = serde_json::from_str(&read(&t, "report.json")).unwrap();
    assert_valid(&json);
    assert_eq!(json["schema"], "pipeline-rollout-report/1");
    assert_eq!(json["outcome"], "promoted");
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    let s = t.recorded();
    for (j, rec) in steps.iter().zip(&s.steps) {
        assert_eq!(j["weight"], rec.weight);
        assert_eq!(j["requests"]["canary"]["synthetic"], rec.canary.synthetic);
        assert_eq!(j["requests"]["stable"]["real"], rec.stable.real);
        assert_eq!(
            j["requests"]["synthetic"],
            rec.canary.synthetic + rec.stable.synthetic
        );
    }
    for j in &steps[..3] {
        assert_eq!(j["judgement"]["verdict"], "PASS", "{j}");
        assert!(j["looks"].as_array().unwrap().len() >= 2, "{j}");
        assert!(j["requests"]["synthetic"].as_u64().unwrap() > 0);
    }
    assert!(steps[3]["judgement"].is_null() && !steps[3]["judged"].as_bool().unwrap());
    let deploys = json["deploys"].as_array().unwrap();
    assert_eq!(deploys.len(), 2, "the canary's deploy and the promotion");
    assert_eq!(deploys[1]["batches"][1]["hosts"][0], "checkbox-2");

    let md = read(&t, "report.md");
    for needle in [
        "# Rollout of checkbox in prod: **PROMOTED**",
        "Promoted: the canary passed every judged step",
        "| synthetic load | 40 req/s through the front door |",
        "| 1/4 | 5 % | 10 s |",
        "[PASS](step-1/report.md)",
        "  - batch 2: checkbox-2 (ok)",
        "## Step 2/4: 25 % to the canary: PASS",
        "### Metrics",
        "| error_rate | Pass |",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }

    let html = read(&t, "report.html");
    assert!(html.contains(r#"id="outcome">PROMOTED<"#));
    for banned in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(banned), "found {banned}");
    }
    // The judge tables of the three judged steps, with their own ids and charts.
    for k in 1..=3 {
        assert!(
            html.contains(&format!(r#"id="step-{k}-metrics""#)),
            "step {k}"
        );
    }
    assert!(html.matches("<svg").count() >= 6, "no charts");

    let text = crate::rollout::report::write_summary(&s.settings.report_dir, &s).unwrap();
    for needle in [
        "Rollout of checkbox in prod: PROMOTED",
        "STEP",
        "synth.",
        "batch 1: checkbox-1 (ok)",
        "The judge at Step 3/4: 50 % to the canary:",
        "Score ",
        "Promoted: the canary passed",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[tokio::test]
async fn a_step_run_again_after_a_pause_keeps_both_runs_in_the_report() {
    let t = quiet_setup();
    let mut fake = t.fake();
    fake.rate = 1.0;
    let r = t.start(&mut fake).await.unwrap();
    assert!(matches!(r.ending, Ending::Paused { .. }), "{:?}", r.ending);
    let json: serde_json::Value = serde_json::from_str(&read(&t, "report.json")).unwrap();
    assert_valid(&json);
    assert_eq!(json["outcome"], "paused");
    assert!(read(&t, "report.md").contains("**PAUSED**"));

    let mut fake = t.fake();
    fake.rate = 40.0;
    assert_eq!(t.resume(&mut fake).await.unwrap().ending, Ending::Promoted);
    let json: serde_json::Value = serde_json::from_str(&read(&t, "report.json")).unwrap();
    assert_valid(&json);
    let runs: Vec<_> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_u64().unwrap(),
                s["run"].as_u64().unwrap(),
                s["report"].clone(),
            )
        })
        .collect();
    assert_eq!(runs[0], (1, 1, "step-1".into()));
    assert_eq!(runs[1].0, 1);
    assert_eq!(
        (runs[1].1, &runs[1].2),
        (2, &serde_json::json!("step-1-run-2"))
    );
    assert!(t.settings.report_dir.join("step-1/report.html").is_file());
    assert!(t
        .settings
        .report_dir
        .join("step-1-run-2/report.html")
        .is_file());
    assert!(read(&t, "report.md").contains("Step 1/4 (run 2): 5 % to the canary: PASS"));
}

#[tokio::test]
async fn a_rollout_stopped_by_an_error_reports_where_it_stopped() {
    let t = setup();
    let mut fake = t.fake();
    fake.fail_at = Some(("promote", 1));
    t.start(&mut fake).await.unwrap_err();
    let json: serde_json::Value = serde_json::from_str(&read(&t, "report.json")).unwrap();
    assert_valid(&json);
    assert_eq!(json["outcome"], "stopped");
    assert!(
        json["decision"]
            .as_str()
            .unwrap()
            .starts_with("Stopped while promoting"),
        "{}",
        json["decision"]
    );
    assert!(json["last_error"]
        .as_str()
        .unwrap()
        .contains("promote failed"));
}

#[tokio::test]
async fn a_rolled_back_rollout_reports_the_fail_and_the_canary_deploy() {
    let t = setup();
    let mut fake = t.fake();
    fake.broken_from = Some(1);
    t.start(&mut fake).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&read(&t, "report.json")).unwrap();
    assert_valid(&json);
    assert_eq!(json["outcome"], "rolled_back");
    assert_eq!(json["steps"][0]["verdict"], "FAIL");
    assert_eq!(json["deploys"].as_array().unwrap().len(), 1);
    let html = read(&t, "report.html");
    assert!(html.contains(r#"id="outcome">ROLLED BACK<"#), "{html}");
    assert!(html.contains(r#"<span class="tag fail">FAIL</span>"#));
}

#[tokio::test]
async fn a_step_whose_looks_wake_a_little_late_is_not_reported_as_extended() {
    let t = setup();
    let mut fake = t.fake();
    fake.late_s = 0.002;
    assert_eq!(t.start(&mut fake).await.unwrap().ending, Ending::Promoted);
    let s = t.recorded();
    for rec in s.steps.iter().filter(|r| r.judged) {
        assert!(!rec.extended, "{rec:?}");
        assert!(rec.duration_s >= 10.0 && rec.duration_s < 10.1, "{rec:?}");
    }
    assert!(!read(&t, "report.md").contains("(extended)"));
}
