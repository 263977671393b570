//! Tests of the rules that make a comparison meaningless or incomplete: an unhealthy baseline, and requests
//! that got no response at all.

use super::*;

/// A critical 0/1 error metric gating the baseline, `baseline_errors` and `canary_errors` of 1000 each,
/// plus a latency metric that passes.
fn run(baseline_errors: usize, canary_errors: usize, unanswered: Option<Unanswered>) -> Judgement {
    let rate = |k: usize| (0..1000).map(|i| f64::from(u8::from(i < k))).collect();
    let mut errors = MetricInput::new(
        "error_rate",
        FailOn::Increase,
        rate(baseline_errors),
        rate(canary_errors),
    );
    errors.kind = Some(MetricKind::Proportion);
    errors.critical = true;
    errors.allowed_increase = Some(0.005);
    errors.baseline_health = true;
    let latency: Vec<f64> = (0..1000).map(|i| 10.0 + f64::from(i % 17)).collect();
    let input = JudgeInput {
        metrics: vec![
            errors,
            MetricInput::new("latency_ms", FailOn::Increase, latency.clone(), latency),
        ],
        unanswered,
    };
    judge(&input, &JudgeConfig::default()).unwrap()
}

#[test]
fn a_healthy_pair_passes() {
    assert_eq!(run(0, 0, None).verdict, Verdict::Pass);
}

#[test]
fn an_unhealthy_baseline_is_inconclusive_never_pass_or_fail() {
    // Both arms fail alike: the scoring alone would PASS (no difference).
    let j = run(1000, 1000, None);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
    assert!(
        j.reason.contains("the baseline is unhealthy"),
        "{}",
        j.reason
    );
    assert!(j.reason.contains("100%"), "{}", j.reason);
    // 6 % errors in the baseline is above the default 5 %, whatever the canary does.
    assert_eq!(run(60, 60, None).verdict, Verdict::Inconclusive);
    assert_eq!(run(60, 900, None).verdict, Verdict::Inconclusive);
    // 4 % is still a usable reference.
    assert_eq!(run(40, 40, None).verdict, Verdict::Pass);
}

#[test]
fn the_baseline_bound_is_a_setting() {
    let mut errors = MetricInput::new("error_rate", FailOn::Increase, vec![1.0; 60], vec![1.0; 60]);
    errors.kind = Some(MetricKind::Proportion);
    errors.baseline_health = true;
    let input = JudgeInput {
        metrics: vec![errors],
        unanswered: None,
    };
    let lenient = JudgeConfig {
        max_baseline_error_rate: 1.0,
        ..JudgeConfig::default()
    };
    assert_eq!(judge(&input, &lenient).unwrap().verdict, Verdict::Pass);
    let bad = JudgeConfig {
        max_baseline_error_rate: 1.5,
        ..JudgeConfig::default()
    };
    assert!(matches!(
        judge(&input, &bad),
        Err(JudgeError::Config {
            key: "max_baseline_error_rate",
            ..
        })
    ));
}

#[test]
fn requests_without_any_response_above_the_share_make_a_pass_inconclusive() {
    let few = Some(Unanswered {
        requests: 10,
        total: 2010,
    });
    assert_eq!(run(0, 0, few).verdict, Verdict::Pass, "0.5 % is tolerated");
    let many = Some(Unanswered {
        requests: 100,
        total: 2100,
    });
    let j = run(0, 0, many);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
    assert!(j.reason.contains("100 of 2100 requests"), "{}", j.reason);
    // A failure the attributed requests show is not undone by the missing ones.
    assert_eq!(run(0, 500, many).verdict, Verdict::Fail);
}

#[test]
fn unanswered_counts_are_checked() {
    let input = JudgeInput {
        metrics: vec![],
        unanswered: Some(Unanswered {
            requests: 3,
            total: 2,
        }),
    };
    assert!(matches!(
        judge(&input, &JudgeConfig::default()),
        Err(JudgeError::Input(_))
    ));
}
