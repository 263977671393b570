//! A whole rollout through a real nginx front door on loopback (the role's template; the canary split,
//! the JSON access log and `--load` exactly as `pipeline rollout` drives them), judged on the requests the
//! front door logged: an independent client sends real requests the whole time, the rollout's own load
//! adds synthetic ones. Only the hosts are missing: the stable and canary "hosts" are nginx servers on
//! 127.0.0.1 and 127.0.0.2, so provisioning, deploying and promoting have nothing to do here (their
//! end-to-end test is `tests/e2e/rollout.rs`). Checks the rollout's report: `report.json` against its
//! schema with real and synthetic requests counted apart, and `report.html` in headless Chromium (no
//! console messages, every chart drawn), with a screenshot kept in `target/test-artifacts/rollout-report/`
//! (the README's `docs/img/rollout-report.png`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pipeline::canary::judge::JudgeConfig;
use pipeline::rollout::exec::{self, Ending};
use pipeline::rollout::front_door::LogTail;
use pipeline::rollout::load::{self, SyntheticLoad};
use pipeline::rollout::state::{Recorded, RolloutState, StateStore};
use pipeline::rollout::world::{DeployBatch, DeploySummary, Observed, RolloutWorld};
use pipeline::ui::Ui;

use super::rollout_front_door::{get, Door};
use crate::shared::artifacts_dir;
use crate::shared::browser::Browser;

/// The rollout's world on the loopback front door.
struct Loopback<'a> {
    door: &'a Door,
    tail: LogTail,
    synthetic: Option<SyntheticLoad>,
    ui: Ui,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn nothing_to_deploy(what: &str, batches: Vec<DeployBatch>) -> DeploySummary {
    DeploySummary {
        what: what.into(),
        success: true,
        text: format!("loopback: {what} is an nginx server, nothing to deploy"),
        duration_s: 0.0,
        batches,
    }
}

impl RolloutWorld for Loopback<'_> {
    fn now(&self) -> f64 {
        now()
    }

    async fn wait(&mut self, seconds: f64) {
        tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))).await;
    }

    async fn provision_canary(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    async fn deploy_canary(&mut self) -> anyhow::Result<DeploySummary> {
        Ok(nothing_to_deploy("checkbox-canary", Vec::new()))
    }

    async fn check_canary(&mut self) -> anyhow::Result<()> {
        // Directly, not through the front door.
        let addr: std::net::SocketAddr = self.door.canary.parse()?;
        let (status, _) = tokio::task::spawn_blocking(move || {
            crate::shared::http_get(addr, "/").map_err(anyhow::Error::from)
        })
        .await??;
        anyhow::ensure!(status == 200, "the canary answered {status}");
        Ok(())
    }

    async fn set_weight(&mut self, weight: u8) -> anyhow::Result<()> {
        self.door.set_weight(weight);
        Ok(())
    }

    async fn load(&mut self, rate: Option<f64>) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/", self.door.front);
        load::set(&mut self.synthetic, rate, || Ok(url), &self.ui).await
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observed>> {
        Ok(self.tail.read(&self.door.log)?)
    }

    async fn promote(&mut self) -> anyhow::Result<DeploySummary> {
        let hosts = ["checkbox-1".to_string()];
        Ok(nothing_to_deploy(
            "checkbox-1",
            DeployBatch::of(&[&hosts[..]], &[]),
        ))
    }

    async fn retire_canary(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn settings(report_dir: &Path) -> Recorded {
    Recorded {
        app: "checkbox".into(),
        provider: "local".into(),
        environment: "loopback".into(),
        inventory: "inventory.ini".into(),
        source: None,
        git_ref: Some("v2".into()),
        artifact: None,
        extra_vars: Vec::new(),
        steps: vec![20, 50, 100],
        step_time_s: 4.0,
        max_step_time_s: 8.0,
        look_every_s: 1.0,
        warmup_s: 2.0,
        load: Some(60.0),
        report_dir: report_dir.to_path_buf(),
    }
}

/// Runs a rollout against a canary answering `canary_answer`, with an independent client sending about
/// 25 real requests per second through the front door the whole time; the ending and the report's JSON.
async fn roll_out(
    dir: &Path,
    report_dir: &Path,
    canary_answer: &str,
) -> (Ending, serde_json::Value) {
    let door = Door::start(dir, canary_answer);
    let store = StateStore::new(dir.join(".pipeline"));
    let state = RolloutState::new(
        settings(report_dir),
        vec!["checkbox-1".into()],
        "checkbox-canary".into(),
        "lb".into(),
    );
    let mut tail = LogTail::new(Some(door.canary.clone()));
    tail.skip_existing(&door.log).unwrap();
    let mut world = Loopback {
        door: &door,
        tail,
        synthetic: None,
        ui: Ui::new(true),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (stop, front) = (stop.clone(), door.front);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                get(front, false);
                n += 1;
                std::thread::sleep(Duration::from_millis(40));
            }
            n
        })
    };
    let judge = JudgeConfig {
        min_samples: 20,
        ..JudgeConfig::default()
    };
    let result = exec::start(&store, state, &mut world, &Ui::new(true), &judge)
        .await
        .unwrap();
    assert!(world.synthetic.is_none(), "the synthetic load still runs");
    stop.store(true, Ordering::Relaxed);
    assert!(client.join().unwrap() > 50, "the client sent too little");
    let json =
        serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    (result.ending, json)
}

fn validate(json: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(pipeline::rollout::report::doc::JSON_SCHEMA).unwrap();
    jsonschema::meta::validate(&schema).expect("a valid Draft 2020-12 schema");
    let v = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(json)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report.json breaks its schema:\n{}",
        errors.join("\n")
    );
    for step in json["steps"].as_array().unwrap() {
        if !step["judgement"].is_null() {
            crate::shared::report_schema::assert_valid(&step["judgement"]);
        }
    }
}

/// Real and synthetic requests of both arms in every judged step.
fn assert_counted_apart(json: &serde_json::Value) {
    for step in json["steps"].as_array().unwrap() {
        if !step["judged"].as_bool().unwrap() {
            continue;
        }
        let r = &step["requests"];
        for arm in ["stable", "canary"] {
            for kind in ["real", "synthetic"] {
                assert!(
                    r[arm][kind].as_u64().unwrap() > 0,
                    "no {kind} {arm} requests: {step}"
                );
            }
        }
        // 60 synthetic and about 25 real requests a second.
        let (real, synthetic) = (
            r["real"].as_u64().unwrap(),
            r["synthetic"].as_u64().unwrap(),
        );
        assert!(
            synthetic > real,
            "{real} real, {synthetic} synthetic: {step}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_through_a_real_front_door_with_synthetic_load_is_promoted_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let report_dir: PathBuf = artifacts_dir().join("rollout-report");
    let _ = std::fs::remove_dir_all(&report_dir);
    let (ending, json) = roll_out(tmp.path(), &report_dir, r#"200 "canary version""#).await;
    assert_eq!(ending, Ending::Promoted, "{}", json["decision"]);
    validate(&json);
    assert_counted_apart(&json);
    assert_eq!(json["outcome"], "promoted");
    let verdicts: Vec<_> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verdict"].clone())
        .collect();
    assert_eq!(
        verdicts,
        [
            serde_json::json!("PASS"),
            serde_json::json!("PASS"),
            serde_json::Value::Null
        ]
    );
    // Step 1's warm-up (judged on errors only) is in the report, before its judged window.
    let warmup = &json["steps"][0]["warmup"];
    assert!(warmup["duration_s"].as_f64().unwrap() >= 2.0, "{warmup}");
    let canary = &warmup["canary"];
    assert!(
        canary["real"].as_u64().unwrap() + canary["synthetic"].as_u64().unwrap() > 0,
        "{warmup}"
    );
    assert_eq!(canary["errors"], 0, "{warmup}");
    assert!(json["steps"][1]["warmup"].is_null(), "{}", json["steps"][1]);

    // The report in a real browser: silent, every chart laid out with its marks drawn.
    let html = report_dir.join("report.html");
    let mut browser = Browser::launch();
    browser.open(&format!("file://{}", html.display()));
    let messages = browser.console_messages();
    assert!(
        messages.is_empty(),
        "console messages:\n{}",
        messages.join("\n")
    );
    let outcome = browser.eval("document.getElementById('outcome').textContent");
    assert_eq!(outcome, "PROMOTED");
    let probe = r"[...document.querySelectorAll('svg.chart')].map(svg => {
        const marks = [...svg.querySelectorAll('path.line, rect.bar')];
        const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
        return `${drawn.length}/${marks.length}`;
      }).join(' ')";
    let charts = browser.eval(probe);
    let charts: Vec<&str> = charts.as_str().unwrap().split_whitespace().collect();
    assert!(charts.len() >= 4, "{charts:?}");
    for c in &charts {
        let (drawn, total) = c.split_once('/').unwrap();
        assert!(total != "0" && drawn == total, "undrawn marks: {charts:?}");
    }
    let shot = report_dir.join("report.png");
    browser.screenshot(&shot);
    assert!(std::fs::metadata(&shot).unwrap().len() > 50_000);
    // The top of the page for the README: outcome, decision, settings, steps, deploys, the first step.
    let width = browser
        .eval("document.documentElement.scrollWidth")
        .as_f64()
        .unwrap();
    let top = browser.call(
        "Page.captureScreenshot",
        serde_json::json!({"format": "png", "captureBeyondViewport": true,
            "clip": {"x": 0, "y": 0, "width": width, "height": 2300, "scale": 1}}),
    );
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(top["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::write(report_dir.join("report-top.png"), png).unwrap();
    eprintln!("rollout report and screenshot in {}", report_dir.display());
}
