//! The canary host and the monitor's Prometheus, through the fake world: with a `[monitor]` host the
//! canary is added as a scrape target after its check and before the first weight, and removed after
//! weight 0 and before its host is destroyed, on a promotion, a rollback and an abort (after a crash in
//! any action too); an unreachable monitor never fails a rollback or an abort, and a later abort removes
//! what was left; without a monitor host there is no such action.

use super::*;

/// A setup whose inventory has a monitor host.
fn monitored(t: &Setup) -> Fake {
    let mut f = t.fake();
    f.monitor = true;
    f
}

impl Setup {
    fn scraped(&self) -> bool {
        self.infra.lock().unwrap().scraped
    }

    /// As [`Setup::crash`], with a monitor host.
    async fn crash_monitored(&self, crash_at: (&'static str, usize)) {
        let mut fake = monitored(self);
        fake.crash_at = Some(crash_at);
        let crashed = fake.crashed.clone();
        tokio::select! {
            r = self.start(&mut fake) => panic!("the rollout did not reach {crash_at:?}: {:?}", r.map(|r| r.ending)),
            () = crashed.notified() => {}
        }
    }
}

#[tokio::test]
async fn the_canary_is_scraped_after_its_check_before_any_traffic_and_unscraped_before_it_is_destroyed(
) {
    let t = setup();
    let mut fake = monitored(&t);
    let r = t.start(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    assert_eq!(
        t.calls(),
        [
            "provision",
            "deploy",
            "check",
            "scrape",
            "weight 5",
            "weight 25",
            "weight 50",
            "weight 100",
            "promote",
            "weight 0",
            "unscrape",
            "retire"
        ]
    );
    t.assert_all_stable();
    assert!(!t.scraped(), "the canary's targets are left");
    assert!(!t.recorded().canary_scraped);
    // The state names the action before it runs.
    let calls = t.infra.lock().unwrap().calls.clone();
    let phase = |name: &str| calls.iter().find(|c| c.0 == name).unwrap().1.clone();
    assert_eq!(phase("scrape"), Some(Phase::Scrape));
    assert_eq!(phase("unscrape"), Some(Phase::Retire));
    // Every step ran with the canary scraped: the dashboard was told so.
    assert!(fake
        .told
        .iter()
        .filter(|s| matches!(s.phase, Phase::Step { .. }))
        .all(|s| s.canary_scraped));
}

#[tokio::test]
async fn a_rolled_back_canary_leaves_the_monitor_before_its_host_is_destroyed() {
    let t = setup();
    let mut fake = monitored(&t);
    fake.broken_from = Some(1);
    let r = t.start(&mut fake).await.unwrap();
    assert!(
        matches!(r.ending, Ending::RolledBack { .. }),
        "{:?}",
        r.ending
    );
    assert_eq!(
        t.calls(),
        [
            "provision",
            "deploy",
            "check",
            "scrape",
            "weight 5",
            "weight 0",
            "unscrape",
            "retire"
        ]
    );
    assert!(!t.scraped());
    t.assert_all_stable();
}

#[tokio::test]
async fn a_canary_failing_its_check_is_never_scraped() {
    let t = setup();
    let mut fake = monitored(&t);
    fake.fail_at = Some(("check", 1));
    let r = t.start(&mut fake).await.unwrap();
    assert!(
        matches!(r.ending, Ending::RolledBack { .. }),
        "{:?}",
        r.ending
    );
    assert_eq!(
        t.calls(),
        ["provision", "deploy", "check", "weight 0", "retire"]
    );
    assert!(!t.scraped());
}

#[tokio::test]
async fn without_a_monitor_host_there_is_no_scrape_action() {
    let t = setup();
    let r = t.start(&mut t.fake()).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    let calls = t.calls();
    assert!(!calls.iter().any(|c| c.contains("scrape")), "{calls:?}");
    assert!(!t.recorded().canary_scraped);
}

#[tokio::test]
async fn a_rollout_killed_in_any_action_aborts_with_the_canary_out_of_the_monitor() {
    let points = [
        ("provision", 1),
        ("check", 1),
        ("scrape", 1),
        ("weight", 1),
        ("weight", 3),
        ("promote", 1),
        ("weight 0", 1),
        ("unscrape", 1),
        ("retire", 1),
    ];
    for point in points {
        let t = setup();
        t.crash_monitored(point).await;
        let r = t
            .abort(&mut monitored(&t))
            .await
            .unwrap_or_else(|e| panic!("{point:?}: {e:#}"));
        assert_eq!(r.ending, Ending::Aborted, "{point:?}");
        t.assert_all_stable();
        assert!(!t.scraped(), "{point:?}: the canary's targets are left");
        assert!(!t.recorded().canary_scraped, "{point:?}");
        // Removed only when it may have been added (at or after the scrape action).
        let unscraped = t.calls().iter().filter(|c| *c == "unscrape").count();
        let added = t.calls().iter().any(|c| c == "scrape");
        assert_eq!(unscraped > 0, added, "{point:?}: {:?}", t.calls());
    }
}

#[tokio::test]
async fn a_rollout_killed_while_scraping_resumes_by_scraping_again_then_promotes() {
    let t = setup();
    t.crash_monitored(("scrape", 1)).await;
    assert_eq!(t.recorded().phase, Phase::Scrape);
    assert_eq!(t.recorded().weight, 0, "no traffic before the scrape");
    let r = t.resume(&mut monitored(&t)).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    let calls = t.calls();
    assert_eq!(calls.iter().filter(|c| *c == "scrape").count(), 2);
    assert!(!t.scraped());
}

#[tokio::test]
async fn an_unreachable_monitor_does_not_fail_the_abort_and_a_later_abort_removes_the_targets() {
    let t = setup();
    t.crash_monitored(("weight", 2)).await;
    let mut fake = monitored(&t);
    fake.fail_at = Some(("unscrape", 1));
    let r = t.abort(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Aborted);
    // Traffic is stable and the host is gone; only the monitor's targets are left, and the state says so.
    t.assert_all_stable();
    assert!(t.scraped());
    let s = t.recorded();
    assert!(s.canary_scraped);
    assert_eq!(
        s.phase,
        Phase::Done {
            outcome: Finished::Aborted
        }
    );
    // `status` and the report say what is left and what removes it.
    assert!(
        s.render()
            .contains("monitor: checkbox-canary is a scrape target"),
        "{}",
        s.render()
    );
    let decision = crate::rollout::report::decision(&s);
    assert!(
        decision.contains(
            "still lists checkbox-canary's targets; `pipeline rollout abort checkbox` removes them"
        ),
        "{decision}"
    );
    // With the monitor back, a second abort removes them and touches nothing else.
    let before = t.calls().len();
    let r = t.abort(&mut monitored(&t)).await.unwrap();
    assert_eq!(r.ending, Ending::Aborted);
    assert_eq!(t.calls()[before..], ["unscrape"]);
    assert!(!t.scraped());
    assert!(!t.recorded().canary_scraped);
    assert!(!crate::rollout::report::decision(&t.recorded()).contains("still lists"));
    // And a third has nothing left to do.
    let before = t.calls().len();
    t.abort(&mut monitored(&t)).await.unwrap();
    assert_eq!(t.calls().len(), before);
}

#[tokio::test]
async fn a_promotion_whose_monitor_is_unreachable_at_the_end_still_promotes() {
    let t = setup();
    let mut fake = monitored(&t);
    fake.fail_at = Some(("unscrape", 1));
    let r = t.start(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    t.assert_all_stable();
    assert!(t.recorded().canary_scraped);
    // The later abort keeps the promotion as it was.
    let r = t.abort(&mut monitored(&t)).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    assert_eq!(
        t.recorded().phase,
        Phase::Done {
            outcome: Finished::Promoted
        }
    );
    assert!(!t.scraped());
}

#[tokio::test]
async fn a_failed_scrape_goes_on_without_prometheus_metrics_and_stops_the_rollout_with_them() {
    // No [[canary.metric]]: a warning, the rollout goes on.
    let t = setup();
    let mut fake = monitored(&t);
    fake.fail_at = Some(("scrape", 1));
    assert_eq!(t.start(&mut fake).await.unwrap().ending, Ending::Promoted);
    t.assert_all_stable();

    // With one, the canary's arm would be NoData: stopped before any traffic, resumable. Steps long
    // enough for a dozen Prometheus samples per arm.
    let mut t = setup();
    t.settings.step_time_s = 60.0;
    t.settings.max_step_time_s = 120.0;
    t.settings.look_every_s = 10.0;
    let mut fake = monitored(&t);
    fake.prom_shift = Some(0.0);
    fake.fail_at = Some(("scrape", 1));
    let e = t.start(&mut fake).await.unwrap_err();
    assert!(format!("{e:#}").contains("NoData"), "{e:#}");
    let s = t.recorded();
    assert_eq!((s.phase, s.weight), (Phase::Scrape, 0));
    let mut fake = monitored(&t);
    fake.prom_shift = Some(0.0);
    let r = t.resume(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    assert!(!t.scraped());
}
