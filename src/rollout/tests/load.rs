//! `--load RATE` through the executor: the synthetic load runs for the whole of every judged step, its
//! requests are judged with the real ones and counted apart, and it stops before the promotion, on a
//! FAIL, on an abort and when the rollout stops on an error or a signal; after a crash (the load dies with
//! the process) `resume` starts it again with the step.

use super::*;

/// The calls that concern the load, with the weights around them.
fn load_calls(t: &Setup) -> Vec<String> {
    t.calls()
        .into_iter()
        .filter(|c| c.starts_with("load") || c.starts_with("weight") || c == "promote")
        .collect()
}

#[tokio::test]
async fn a_synthetic_load_runs_for_every_judged_step_is_counted_apart_and_stops_before_the_promotion(
) {
    // One real request per second is too little to judge (the rollout would pause INCONCLUSIVE);
    // 40 synthetic ones per second through the same front door are enough.
    let mut t = quiet_setup();
    t.settings.load = Some(40.0);
    let mut fake = t.fake();
    fake.rate = 1.0;
    let r = t.start(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    assert_eq!(
        load_calls(&t),
        [
            "weight 5",
            "load 40",
            "weight 25",
            "load 40",
            "weight 50",
            "load 40",
            "weight 100",
            "load 40",
            "load off",
            "promote",
            "load off",
            "weight 0"
        ]
    );
    assert_eq!(fake.synthetic_rate, None, "the load still runs");
    let s = t.recorded();
    for rec in s.steps.iter().filter(|r| r.judged) {
        let synthetic = rec.stable.synthetic + rec.canary.synthetic;
        let real = rec.stable.real + rec.canary.real;
        // 40 req/s and 1 req/s for the whole step.
        assert!(
            (synthetic as f64 - 40.0 * rec.duration_s).abs() <= 2.0,
            "{synthetic} synthetic requests in {} s: {rec:?}",
            rec.duration_s
        );
        assert!(
            (real as f64 - rec.duration_s).abs() <= 2.0,
            "{real} real requests: {rec:?}"
        );
        assert!(
            rec.canary.synthetic > 0 && rec.stable.synthetic > 0,
            "{rec:?}"
        );
        assert_eq!(rec.verdict, Some(Verdict::Pass));
    }
}

#[tokio::test]
async fn a_fail_stops_the_synthetic_load_before_the_canary_leaves_the_front_door() {
    let mut t = setup();
    t.settings.load = Some(40.0);
    let mut fake = t.fake();
    fake.broken_from = Some(1);
    let r = t.start(&mut fake).await.unwrap();
    assert!(
        matches!(r.ending, Ending::RolledBack { .. }),
        "{:?}",
        r.ending
    );
    assert_eq!(
        load_calls(&t),
        ["weight 5", "load 40", "load off", "load off", "weight 0"]
    );
    assert_eq!(fake.synthetic_rate, None);
    t.assert_all_stable();
}

#[tokio::test]
async fn a_rollout_stopped_by_an_error_stops_the_synthetic_load() {
    // The path a signal takes too: the executor's loop ends with an error, the load is stopped.
    let mut t = setup();
    t.settings.load = Some(40.0);
    let mut fake = t.fake();
    fake.fail_at = Some(("weight", 2));
    let e = t.start(&mut fake).await.unwrap_err();
    assert!(
        format!("{e:#}").contains("weight failed (injected)"),
        "{e:#}"
    );
    assert_eq!(
        load_calls(&t),
        ["weight 5", "load 40", "weight 25", "load off"]
    );
    assert_eq!(fake.synthetic_rate, None);
    // Traffic stays as the step left it; the state says what was under way.
    assert_eq!(t.recorded().phase, Phase::Step { index: 1 });
}

#[tokio::test]
async fn a_rollout_killed_while_the_load_runs_resumes_it_with_the_step() {
    let mut t = setup();
    t.settings.load = Some(40.0);
    // Killed when step 2 sets its weight: step 1's load was running (it dies with the process).
    t.crash(("weight", 2)).await;
    let before = t.calls().len();
    let mut fake = t.fake();
    let r = t.resume(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    let after: Vec<String> = t.calls()[before..]
        .iter()
        .filter(|c| c.starts_with("load") || c.starts_with("weight"))
        .cloned()
        .collect();
    assert_eq!(&after[..2], ["weight 25", "load 40"], "{after:?}");
    assert_eq!(fake.synthetic_rate, None);
    let s = t.recorded();
    let step2 = s.steps.iter().rfind(|r| r.index == 1).unwrap();
    assert!(
        step2.canary.synthetic > 0 && step2.stable.synthetic > 0,
        "{step2:?}"
    );
}

#[tokio::test]
async fn an_abort_after_a_crash_leaves_no_load_running() {
    let mut t = setup();
    t.settings.load = Some(40.0);
    t.crash(("weight", 2)).await;
    let before = t.calls().len();
    let mut fake = t.fake();
    let r = t.abort(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Aborted);
    assert_eq!(t.calls()[before..], ["load off", "weight 0", "retire"]);
    assert_eq!(fake.synthetic_rate, None);
    t.assert_all_stable();
}
