//! Prometheus metrics in a rollout's steps and the dashboard's view of it, through the fake world: a
//! canary whose requests look like the stable hosts' but whose `cpu_percent` (a Prometheus metric, a
//! sample every 5 s per arm) runs far higher is rolled back in the first step; an equal one is judged in
//! every step and promoted; the world is told the weight and the verdict so far at every write of the state.

use super::super::monitor;
use super::*;
use crate::canary::judge::Classification;

/// Steps of 60 s with a look every 10 s: a dozen Prometheus samples per arm at each step's end.
fn prom_setup() -> Setup {
    let mut t = setup();
    t.settings.step_time_s = 60.0;
    t.settings.max_step_time_s = 120.0;
    t.settings.look_every_s = 10.0;
    t
}

#[tokio::test]
async fn a_canary_whose_prometheus_cpu_is_far_higher_is_rolled_back_in_the_first_step_though_its_requests_look_fine(
) {
    let t = prom_setup();
    let mut fake = t.fake();
    fake.prom_shift = Some(30.0);
    let r = t.start(&mut fake).await.unwrap();
    let Ending::RolledBack { reason } = &r.ending else {
        panic!("{:?}", r.ending)
    };
    assert!(
        reason.contains("FAIL at step 1") && reason.contains("cpu_percent"),
        "{reason}"
    );
    assert_eq!(t.calls(), rolled_back_after(&[5]));
    t.assert_all_stable();
    let (index, j) = &r.judgements[0];
    assert_eq!(*index, 0);
    let cpu = j.metrics.iter().find(|m| m.name == "cpu_percent").unwrap();
    assert_eq!(cpu.classification, Classification::High, "{cpu:?}");
    // The per-request metrics did not fail: the Prometheus metric decided, in the same family.
    for m in j.metrics.iter().filter(|m| m.name != "cpu_percent") {
        assert_ne!(m.classification, Classification::High, "{m:?}");
    }
    // Every look queried the step's window so far: from the step's start to the look.
    let start = t.recorded().steps[0].started_at;
    assert!(!fake.queries.is_empty());
    for (i, (from, to)) in fake.queries.iter().enumerate() {
        assert_eq!(*from, start);
        assert!(
            (to - start - 10.0 * (i + 1) as f64).abs() < 1e-6,
            "{:?}",
            fake.queries
        );
    }
}

#[tokio::test]
async fn an_equal_prometheus_metric_is_judged_in_every_step_and_the_rollout_promotes() {
    let t = prom_setup();
    let mut fake = t.fake();
    fake.prom_shift = Some(0.0);
    let r = t.start(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    assert_eq!(r.judgements.len(), 3);
    for (_, j) in &r.judgements {
        let cpu = j.metrics.iter().find(|m| m.name == "cpu_percent").unwrap();
        assert_eq!(cpu.classification, Classification::Pass, "{cpu:?}");
        assert!(cpu.baseline.n >= 12 && cpu.canary.n >= 12, "{cpu:?}");
    }
}

#[tokio::test]
async fn the_world_is_told_the_weight_and_the_verdict_so_far_at_every_step_and_the_end() {
    let t = setup();
    let mut fake = t.fake();
    let r = t.start(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    let shown: Vec<(u8, String, bool)> = fake
        .told
        .iter()
        .map(monitor::status)
        .map(|s| (s.weight, s.verdict, s.active))
        .collect();
    let has = |w: u8, v: &str| shown.iter().any(|(sw, sv, a)| *sw == w && sv == v && *a);
    assert!(has(0, "none yet"), "{shown:?}");
    assert!(has(5, "none yet") && has(5, "PASS"), "{shown:?}");
    assert!(has(25, "PASS") && has(50, "PASS"), "{shown:?}");
    // The last the dashboard hears: done, no canary weight.
    let last = monitor::status(fake.told.last().unwrap());
    assert_eq!((last.weight, last.active), (0, false), "{last:?}");
    assert_eq!(last.phase, "finished: promoted");
    assert_eq!(last.app, "checkbox.io");
    assert_eq!(last.version, "v2");
}
