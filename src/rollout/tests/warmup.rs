//! The first step's warm-up (`--warmup`) against the fake world: a cold canary (slow for its first
//! seconds, as a fresh JVM is) fails on latency without one and is promoted with one; a canary failing
//! its requests is rolled back within the warm-up; a rollout killed in its warm-up resumes with a new one.

use super::*;

/// A canary 20 ms slower for its first 10 s of traffic (the fake's latencies are 20–35 ms).
const COLD: (f64, f64) = (10.0, 20.0);

fn warm_setup(warmup_s: f64) -> Setup {
    let mut t = setup();
    t.settings.warmup_s = warmup_s;
    t
}

#[tokio::test]
async fn a_cold_canary_fails_its_first_step_on_latency_without_a_warm_up() {
    let t = warm_setup(0.0);
    let mut fake = t.fake();
    fake.cold = Some(COLD);
    let r = t.start(&mut fake).await.unwrap();
    let Ending::RolledBack { reason } = &r.ending else {
        panic!("{:?}", r.ending)
    };
    assert!(
        reason.contains("FAIL at step 1") && reason.contains("latency_ms"),
        "{reason}"
    );
    assert_eq!(t.recorded().steps[0].warmup, None);
    t.assert_all_stable();
}

#[tokio::test]
async fn a_warm_up_lets_a_cold_canary_warm_before_the_first_step_is_judged() {
    let t = warm_setup(12.0);
    let mut fake = t.fake();
    fake.cold = Some(COLD);
    let r = t.start(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted, "{:?}", t.recorded().steps);
    // No other action: the warm-up is the first step's weight, held longer.
    assert_eq!(t.calls(), promoted_through(&[5, 25, 50, 100]));
    let s = t.recorded();
    let first = &s.steps[0];
    let w = first.warmup.expect("the first step's warm-up is recorded");
    assert!((w.duration_s - 12.0).abs() < 1e-6, "{w:?}");
    assert!(w.canary.real > 0 && w.stable.real > 0, "{w:?}");
    assert_eq!(w.canary.errors, 0);
    assert_ne!(w.verdict, Some(Verdict::Fail));
    assert!(w.verdict.is_some(), "the warm-up had looks");
    // The judged window followed it, whole, and counts none of its requests.
    assert!((first.duration_s - 10.0).abs() < 1e-6, "{first:?}");
    assert_eq!(first.looks.len(), 4);
    let judged = first.canary.real + first.stable.real;
    assert!(
        (360..=440).contains(&judged),
        "10 s at 40 req/s in the judged window, not 22 s: {judged}"
    );
    assert_eq!(first.verdict, Some(Verdict::Pass));
    // Later steps have none.
    assert!(s.steps[1..].iter().all(|r| r.warmup.is_none()));
    let report = &s.settings.report_dir;
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("| 1/4 | 5 % | 10 s after 12 s of warm-up |"),
        "{md}"
    );
    assert!(
        md.contains(
            "Warm-up before the judged window: 12 s at this share, judged on errors only (no FAIL)"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "| warm-up | 12 s before step 1's judged window, its requests judged on errors only |"
        ),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["settings"]["warmup_s"], 12.0);
    assert_eq!(json["steps"][0]["warmup"]["duration_s"], 12.0);
    assert!(json["steps"][1]["warmup"].is_null());
}

#[tokio::test]
async fn a_canary_failing_requests_in_its_warm_up_is_rolled_back_before_the_judged_window() {
    let t = warm_setup(30.0);
    let mut fake = t.fake();
    fake.broken_from = Some(1);
    let r = t.start(&mut fake).await.unwrap();
    let Ending::RolledBack { reason } = &r.ending else {
        panic!("{:?}", r.ending)
    };
    assert!(
        reason.starts_with("FAIL at step 1 (5 % to the canary) in its warm-up, after")
            && reason.contains("error_rate"),
        "{reason}"
    );
    assert_eq!(t.calls(), rolled_back_after(&[5]));
    t.assert_all_stable();
    let s = t.recorded();
    let first = &s.steps[0];
    let w = first.warmup.unwrap();
    assert!(w.duration_s < 30.0, "rolled back within the warm-up: {w:?}");
    assert_eq!(w.verdict, Some(Verdict::Fail));
    assert!(w.canary.errors > 0 && w.canary.errors == w.canary.real);
    assert_eq!(first.verdict, Some(Verdict::Fail));
    assert!(first.looks.is_empty(), "no judged window: {first:?}");
    // The deciding judgement is the step's report: the error rate alone.
    let step: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.settings.report_dir.join("step-1/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(step["verdict"], "FAIL");
    let metrics: Vec<_> = step["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(metrics, ["error_rate"]);
}

#[tokio::test]
async fn a_rollout_killed_in_its_warm_up_resumes_with_a_new_warm_up_to_a_promotion() {
    let t = warm_setup(12.0);
    let mut fake = t.fake();
    fake.cold = Some(COLD);
    fake.crash_at_time = Some(t.infra.lock().unwrap().clock + 6.0);
    let crashed = fake.crashed.clone();
    tokio::select! {
        r = t.start(&mut fake) => panic!("the rollout did not crash: {:?}", r.map(|r| r.ending)),
        () = crashed.notified() => {}
    }
    drop(fake);
    let s = t.recorded();
    assert_eq!(s.phase, Phase::Step { index: 0 });
    assert_eq!(s.weight, 5);
    let w = s.steps[0].warmup.unwrap();
    assert!(w.duration_s > 0.0 && w.duration_s < 12.0, "{w:?}");
    assert_eq!(super::super::monitor::status(&s).verdict, "warming up");
    let mut fake = t.fake();
    fake.cold = Some(COLD);
    let r = t.resume(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    let s = t.recorded();
    assert_eq!(s.steps[0].verdict, None, "the interrupted run of step 1");
    let again = &s.steps[1];
    assert_eq!((again.index, again.verdict), (0, Some(Verdict::Pass)));
    assert!((again.warmup.unwrap().duration_s - 12.0).abs() < 1e-6);
    t.assert_all_stable();
}

#[test]
fn a_state_file_from_before_warm_ups_reads_as_none() {
    let t = warm_setup(30.0);
    let mut json = serde_json::to_value(t.state()).unwrap();
    json["settings"]
        .as_object_mut()
        .unwrap()
        .remove("warmup_s")
        .unwrap();
    let old: RolloutState = serde_json::from_value(json).unwrap();
    assert_eq!(old.settings.warmup_s, 0.0);
}
