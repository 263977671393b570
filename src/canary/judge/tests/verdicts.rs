//! Unit tests of the judge: per-metric classification, scoring and the run's verdict, on synthetic data.

#![allow(clippy::excessive_precision, clippy::approx_constant)]

use super::*;

fn metric(name: &str, fail_on: FailOn, b: Vec<f64>, c: Vec<f64>) -> MetricInput {
    MetricInput::new(name, fail_on, b, c)
}

/// Deterministic pseudo-latencies: a spread of values around `base`.
fn latencies(n: usize, base: f64, seed: u64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let h = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
            base * (1.0 + (h % 1000) as f64 / 1000.0)
        })
        .collect()
}

fn input(metrics: Vec<MetricInput>) -> JudgeInput {
    JudgeInput {
        metrics,
        unanswered: None,
    }
}

#[test]
fn clear_latency_increase_is_high_and_fails_the_run() {
    let b = latencies(200, 100.0, 1);
    let c: Vec<f64> = latencies(200, 100.0, 2).iter().map(|v| v * 1.5).collect();
    let j = judge(
        &input(vec![metric("latency_ms", FailOn::Increase, b, c)]),
        &JudgeConfig::default(),
    )
    .unwrap();
    let m = &j.metrics[0];
    assert_eq!(m.classification, Classification::High, "{}", m.reason);
    assert!(m.reason.contains("canary higher"), "{}", m.reason);
    assert_eq!((j.verdict, j.score), (Verdict::Fail, 0.0));
}

#[test]
fn increase_on_a_decrease_only_metric_passes() {
    let b = latencies(200, 100.0, 1);
    let c: Vec<f64> = latencies(200, 100.0, 2).iter().map(|v| v * 1.5).collect();
    let j = judge(
        &input(vec![metric("rps", FailOn::Decrease, b, c)]),
        &JudgeConfig::default(),
    )
    .unwrap();
    assert_eq!(j.metrics[0].classification, Classification::Pass);
    assert_eq!(j.verdict, Verdict::Pass);
}

#[test]
fn swapping_arms_swaps_high_and_low_and_keeps_p() {
    let b = latencies(300, 100.0, 1);
    let c: Vec<f64> = latencies(300, 100.0, 2).iter().map(|v| v + 20.0).collect();
    let cfg = JudgeConfig::default();
    let j1 = judge(
        &input(vec![metric("x", FailOn::Either, b.clone(), c.clone())]),
        &cfg,
    )
    .unwrap();
    let j2 = judge(&input(vec![metric("x", FailOn::Either, c, b)]), &cfg).unwrap();
    let (m1, m2) = (&j1.metrics[0], &j2.metrics[0]);
    assert_eq!(m1.classification, Classification::High);
    assert_eq!(m2.classification, Classification::Low);
    assert_eq!(m1.p_value, m2.p_value);
    assert_eq!(m1.estimate.map(|e| -e), m2.estimate);
}

#[test]
fn significant_change_within_allowance_passes() {
    let b = latencies(2000, 100.0, 1);
    let c: Vec<f64> = latencies(2000, 100.0, 2).iter().map(|v| v * 1.03).collect();
    let mut m = metric("latency_ms", FailOn::Increase, b, c);
    let cfg = JudgeConfig::default();
    let strict = judge(&input(vec![m.clone()]), &cfg).unwrap();
    assert_eq!(strict.metrics[0].classification, Classification::High);
    m.allowed_increase = Some(0.10);
    let lenient = judge(&input(vec![m]), &cfg).unwrap();
    assert_eq!(
        lenient.metrics[0].classification,
        Classification::Pass,
        "{}",
        lenient.metrics[0].reason
    );
    assert!(lenient.metrics[0].reason.contains("within the allowance"));
}

#[test]
fn one_empty_arm_is_no_data_and_the_run_is_inconclusive_not_pass() {
    let j = judge(
        &input(vec![
            metric(
                "latency_ms",
                FailOn::Increase,
                latencies(100, 10.0, 1),
                latencies(100, 10.0, 2),
            ),
            metric("cpu", FailOn::Increase, latencies(100, 1.0, 1), vec![]),
        ]),
        &JudgeConfig::default(),
    )
    .unwrap();
    assert_eq!(j.metrics[1].classification, Classification::NoData);
    assert!(
        j.metrics[1].reason.contains("canary 0"),
        "{}",
        j.metrics[1].reason
    );
    assert_eq!(j.metrics[1].u, None);
    assert_eq!(j.metrics[1].canary.p50, None);
    assert_eq!(j.verdict, Verdict::Inconclusive);
    assert_eq!(j.score, 100.0);
    assert!(j.reason.contains("not enough data for cpu"), "{}", j.reason);
}

#[test]
fn no_metrics_or_too_few_samples_is_inconclusive_with_score_zero() {
    let cfg = JudgeConfig::default();
    let empty = judge(&input(vec![]), &cfg).unwrap();
    assert_eq!((empty.verdict, empty.score), (Verdict::Inconclusive, 0.0));
    let thin = judge(
        &input(vec![metric(
            "x",
            FailOn::Either,
            latencies(10, 1.0, 1),
            latencies(10, 1.0, 2),
        )]),
        &cfg,
    )
    .unwrap();
    assert_eq!((thin.verdict, thin.score), (Verdict::Inconclusive, 0.0));
}

#[test]
fn failing_metric_beats_missing_data() {
    let b = latencies(200, 100.0, 1);
    let c: Vec<f64> = b.iter().map(|v| v * 3.0).collect();
    let j = judge(
        &input(vec![
            metric("latency_ms", FailOn::Increase, b, c),
            metric("cpu", FailOn::Increase, vec![], vec![]),
        ]),
        &JudgeConfig::default(),
    )
    .unwrap();
    assert_eq!(j.verdict, Verdict::Fail);
}

#[test]
fn critical_failure_zeroes_the_score() {
    let ok = metric(
        "size",
        FailOn::Decrease,
        latencies(200, 10.0, 1),
        latencies(200, 10.0, 2),
    );
    let mut errors = metric(
        "errors",
        FailOn::Increase,
        (0..1000).map(|i| (i % 100 == 0) as u8 as f64).collect(),
        (0..1000).map(|i| (i % 10 == 0) as u8 as f64).collect(),
    );
    errors.critical = true;
    errors.weight = Some(0.1);
    let j = judge(&input(vec![ok, errors]), &JudgeConfig::default()).unwrap();
    assert_eq!(j.metrics[1].kind, MetricKind::Proportion);
    assert_eq!(j.metrics[1].classification, Classification::High);
    assert_eq!((j.verdict, j.score), (Verdict::Fail, 0.0));
    assert!(
        j.reason.contains("critical metric `errors`"),
        "{}",
        j.reason
    );
}

#[test]
fn weighted_score_decides_marginal() {
    let same = |name: &str, w: f64| {
        let mut m = metric(
            name,
            FailOn::Increase,
            latencies(200, 10.0, 1),
            latencies(200, 10.0, 2),
        );
        m.weight = Some(w);
        m
    };
    let b = latencies(200, 100.0, 1);
    let mut bad = metric(
        "slow",
        FailOn::Increase,
        b.clone(),
        b.iter().map(|v| v * 2.0).collect(),
    );
    bad.weight = Some(1.0);
    let j = judge(
        &input(vec![same("a", 4.0), same("b", 4.0), bad]),
        &JudgeConfig::default(),
    )
    .unwrap();
    assert_eq!(j.score, 88.89);
    assert_eq!(j.verdict, Verdict::Marginal);
    assert_eq!(j.verdict.outcome().code(), 3);
}

#[test]
fn slow_tail_is_caught_by_the_tail_test_when_the_median_does_not_move() {
    let b = latencies(5000, 10.0, 1);
    let mut c = latencies(5000, 10.0, 2);
    for v in c.iter_mut().step_by(50) {
        *v *= 10.0; // 2 % of requests 10× slower
    }
    let j = judge(
        &input(vec![metric("latency_ms", FailOn::Increase, b, c)]),
        &JudgeConfig::default(),
    )
    .unwrap();
    let m = &j.metrics[0];
    assert_eq!(m.classification, Classification::High, "{}", m.reason);
    assert!(
        m.tails[0].flagged && m.reason.contains("tail"),
        "{}",
        m.reason
    );
}

#[test]
fn proportion_judged_by_rates_with_absolute_allowance() {
    let b: Vec<f64> = (0..2000).map(|i| (i % 100 == 0) as u8 as f64).collect(); // 1 %
    let c: Vec<f64> = (0..2000).map(|i| (i % 25 == 0) as u8 as f64).collect(); // 4 %
    let mut m = metric("error_rate", FailOn::Increase, b, c);
    let j = judge(&input(vec![m.clone()]), &JudgeConfig::default()).unwrap();
    let r = &j.metrics[0];
    assert_eq!(r.test.as_deref(), Some("two-proportions"));
    assert_eq!(r.classification, Classification::High);
    close(r.estimate.unwrap(), 0.03, 1e-12);
    m.allowed_increase = Some(0.05);
    let j = judge(&input(vec![m]), &JudgeConfig::default()).unwrap();
    assert_eq!(j.metrics[0].classification, Classification::Pass);
}

#[test]
fn invalid_input_and_config_are_errors_naming_the_problem() {
    let cfg = JudgeConfig::default();
    let dup = input(vec![
        metric("a", FailOn::Either, vec![1.0], vec![1.0]),
        metric("a", FailOn::Either, vec![1.0], vec![1.0]),
    ]);
    assert!(judge(&dup, &cfg).unwrap_err().to_string().contains("twice"));
    let mut bad_time = metric("a", FailOn::Either, vec![1.0, 2.0], vec![1.0]);
    bad_time.baseline_time_s = Some(vec![0.0]);
    let e = judge(&input(vec![bad_time]), &cfg).unwrap_err().to_string();
    assert!(
        e.contains("baseline_time_s has 1 offsets for 2 samples"),
        "{e}"
    );
    let mut prop = metric("e", FailOn::Either, vec![0.0, 2.0], vec![1.0]);
    prop.kind = Some(MetricKind::Proportion);
    assert!(judge(&input(vec![prop]), &cfg)
        .unwrap_err()
        .to_string()
        .contains("only 0 and 1"));
    let nan = metric("n", FailOn::Either, vec![f64::NAN], vec![1.0]);
    assert!(judge(&input(vec![nan]), &cfg)
        .unwrap_err()
        .to_string()
        .contains("baseline[0]"));
    let bad_cfg = JudgeConfig {
        confidence: 1.5,
        ..JudgeConfig::default()
    };
    let e = judge(&input(vec![]), &bad_cfg).unwrap_err().to_string();
    assert!(e.contains("`confidence` = 1.5"), "{e}");
}

#[test]
fn judging_twice_gives_identical_results() {
    let mut m = metric(
        "latency_ms",
        FailOn::Increase,
        latencies(500, 10.0, 1),
        latencies(500, 10.5, 2),
    );
    m.baseline_time_s = Some((0..500).map(|i| i as f64 * 0.1).collect());
    m.canary_time_s = Some((0..500).map(|i| i as f64 * 0.1).collect());
    let i = input(vec![m]);
    let a = serde_json::to_string(&judge(&i, &JudgeConfig::default()).unwrap()).unwrap();
    let b = serde_json::to_string(&judge(&i, &JudgeConfig::default()).unwrap()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn numbers_are_formatted_with_four_significant_digits() {
    assert_eq!(num(123.456), "123.5");
    assert_eq!(num(0.012345), "0.01235");
    assert_eq!(num(2.0), "2");
    assert_eq!(num(1234567.0), "1.235e6");
    assert_eq!(pct(0.1), "+10%");
    assert_eq!(fmt_p(1e-12), "1.00e-12");
}

#[test]
fn a_quarter_of_tiny_error_bodies_fails_response_size_even_with_an_allowance() {
    // Discrete data: the Hodges–Lehmann shift stays 0 (75 % of pairs tie), so the location rule alone
    // cannot see it; the mass at the pooled p1 must count in the lower tail test.
    let b = vec![5120.0; 3000];
    let c: Vec<f64> = (0..3000)
        .map(|i| if i % 4 == 0 { 21.0 } else { 5120.0 })
        .collect();
    let mut m = metric("response_bytes", FailOn::Decrease, b, c);
    for allowed in [None, Some(0.10)] {
        m.allowed_decrease = allowed;
        let j = judge(&input(vec![m.clone()]), &JudgeConfig::default()).unwrap();
        let r = &j.metrics[0];
        assert_eq!(r.estimate, Some(0.0));
        assert_eq!(
            r.classification,
            Classification::Low,
            "{allowed:?}: {}",
            r.reason
        );
        assert!(r.tails[0].flagged, "{}", r.reason);
    }
}

#[test]
fn all_weights_zero_is_inconclusive_never_pass() {
    let mut a = metric(
        "latency_ms",
        FailOn::Increase,
        latencies(200, 100.0, 1),
        latencies(200, 100.0, 2),
    );
    a.weight = Some(0.0);
    let mut b = metric(
        "bytes",
        FailOn::Decrease,
        vec![512.0; 200],
        vec![512.0; 200],
    );
    b.weight = Some(0.0);
    let j = judge(&input(vec![a, b]), &JudgeConfig::default()).unwrap();
    assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
    assert!(j.reason.contains("weight 0"), "{}", j.reason);
    assert_eq!(j.score.to_bits(), 0.0f64.to_bits());
}

#[test]
fn a_score_is_never_negative_zero() {
    let b = latencies(200, 100.0, 1);
    let c: Vec<f64> = latencies(200, 100.0, 2).iter().map(|v| v * 1.5).collect();
    let mut low = metric(
        "bytes",
        FailOn::Decrease,
        vec![512.0; 200],
        vec![100.0; 200],
    );
    low.weight = Some(2.0);
    for metrics in [
        vec![metric("latency_ms", FailOn::Increase, b.clone(), c.clone())],
        vec![
            metric("latency_ms", FailOn::Increase, b.clone(), c.clone()),
            low,
        ],
        vec![],
    ] {
        let j = judge(&input(metrics), &JudgeConfig::default()).unwrap();
        assert_eq!(j.score.to_bits(), 0.0f64.to_bits(), "score {:?}", j.score);
        assert!(!format!("{}", j.score).starts_with('-'));
    }
}

#[test]
fn a_metric_min_samples_below_the_judges_floor_is_refused_naming_the_metric() {
    let mut m = metric(
        "latency_ms",
        FailOn::Increase,
        latencies(200, 100.0, 1),
        latencies(200, 100.0, 2),
    );
    m.min_samples = Some(1);
    let err = judge(&input(vec![m.clone()]), &JudgeConfig::default()).unwrap_err();
    assert!(matches!(err, JudgeError::Metric { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("latency_ms") && text.contains("min_samples = 1"),
        "{text}"
    );
    // A floor of its own below the config's default is allowed (host metrics sampled once a second).
    m.min_samples = Some(10);
    judge(&input(vec![m.clone()]), &JudgeConfig::default()).unwrap();
    m.min_samples = Some(80);
    judge(&input(vec![m]), &JudgeConfig::default()).unwrap();
}

#[test]
fn samples_near_the_f64_limits_give_finite_summaries() {
    let huge: Vec<f64> = (0..100)
        .map(|i| if i % 2 == 0 { f64::MAX } else { -f64::MAX })
        .collect();
    let near: Vec<f64> = (0..100).map(|i| 1e308 - i as f64 * 1e305).collect();
    for (b, c) in [(huge.clone(), huge.clone()), (near.clone(), huge.clone())] {
        let j = judge(
            &input(vec![metric("x", FailOn::Increase, b, c)]),
            &JudgeConfig::default(),
        )
        .unwrap();
        for s in [&j.metrics[0].baseline, &j.metrics[0].canary] {
            let values = [s.mean, s.min, s.p50, s.p90, s.p99, s.p999, s.max];
            assert!(
                values.iter().all(|v| v.is_some_and(f64::is_finite)),
                "{s:?}"
            );
            assert!(s.std.is_none_or(f64::is_finite), "{s:?}");
        }
        assert!(j.score.is_finite());
    }
    let s = summarize(&sorted(&huge));
    assert_eq!(s.mean, Some(0.0));
    assert_eq!(s.std, None, "a standard deviation above f64::MAX is null");
    assert_eq!(s.p50, Some(0.0));
}

#[test]
fn threaded_hodges_lehmann_on_large_samples_equals_the_direct_order_statistics() {
    let x = latencies(60_000, 20.0, 7);
    let y = latencies(60_000, 20.5, 8);
    let (xs, ys) = stats::sorted_pair(&x, &y);
    assert_eq!(
        (xs.clone(), ys.clone()),
        (stats::sorted(&x), stats::sorted(&y))
    );
    assert!(xs.len() + ys.len() >= stats::PARALLEL_MIN);
    let s = hodges_lehmann(&xs, &ys, 0.98);
    let nm = (xs.len() * ys.len()) as u64;
    let mid = (
        kth_pairwise_diff(&xs, &ys, nm / 2),
        kth_pairwise_diff(&xs, &ys, nm / 2 + 1),
    );
    assert_eq!(
        s.estimate.to_bits(),
        (mid.0 + (mid.1 - mid.0) / 2.0).to_bits()
    );
    assert!(s.lower < s.estimate && s.estimate < s.upper);
}
