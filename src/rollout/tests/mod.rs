//! The rollout's state machine against a fake world: virtual time, a front door that splits generated
//! requests by the weight it was last given, a canary that answers well or with 5xx (from some weight on),
//! and injected crashes (an action that never returns, as under `kill -9`). Each test checks the calls in
//! order, the state on disk before each action, and where traffic and hosts converge.

use std::sync::{Arc, Mutex};

mod canary_vars;
mod dashboard;
mod fake;
mod load;
mod prom;
mod report;
mod scrape;
mod warmup;
use fake::{Fake, Infra};

use super::exec::{self, Ending};
use super::state::{Finished, Phase, Recorded, RolloutState, StateStore};
use super::RolloutError;
use crate::canary::judge::{JudgeConfig, Verdict};
use crate::ui::Ui;

fn settings(dir: &std::path::Path) -> Recorded {
    Recorded {
        app: "checkbox".into(),
        provider: "local".into(),
        environment: "prod".into(),
        inventory: "inventory.ini".into(),
        source: None,
        git_ref: Some("v2".into()),
        artifact: None,
        extra_vars: Vec::new(),
        steps: vec![5, 25, 50, 100],
        step_time_s: 10.0,
        max_step_time_s: 30.0,
        look_every_s: 2.5,
        warmup_s: 0.0,
        load: None,
        report_dir: dir.join("report"),
    }
}

/// The world's calls of a rollout that brings the canary up (provision, deploy, check), gives it
/// `weights` in turn, then makes the calls `then`.
fn calls_through(weights: &[u8], then: &[&str]) -> Vec<String> {
    ["provision", "deploy", "check"]
        .into_iter()
        .map(String::from)
        .chain(weights.iter().map(|w| format!("weight {w}")))
        .chain(then.iter().map(|c| (*c).to_string()))
        .collect()
}

/// The calls of a rollout promoted after `weights`: the promotion, then the canary out of the front
/// door and retired.
fn promoted_through(weights: &[u8]) -> Vec<String> {
    calls_through(weights, &["promote", "weight 0", "retire"])
}

/// The calls of a rollout rolled back after `weights`: the canary's share back to 0, the host retired.
fn rolled_back_after(weights: &[u8]) -> Vec<String> {
    calls_through(weights, &["weight 0", "retire"])
}

/// The judge's defaults, with fewer samples per arm so the fake's steps stay short.
fn judge() -> JudgeConfig {
    JudgeConfig {
        min_samples: 10,
        ..JudgeConfig::default()
    }
}

/// A setup for rollouts with little traffic: looks 5 s apart, steps of 10 s extended up to 20 s.
fn quiet_setup() -> Setup {
    let mut t = setup();
    t.settings.look_every_s = 5.0;
    t.settings.max_step_time_s = 20.0;
    t
}

struct Setup {
    _dir: tempfile::TempDir,
    store: StateStore,
    infra: Arc<Mutex<Infra>>,
    settings: Recorded,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path().join(".pipeline"));
    let settings = settings(dir.path());
    let infra = Arc::new(Mutex::new(Infra {
        clock: 1_000_000.0,
        stable_version: "v1",
        ..Default::default()
    }));
    Setup {
        _dir: dir,
        store,
        infra,
        settings,
    }
}

impl Setup {
    fn state(&self) -> RolloutState {
        RolloutState::new(
            self.settings.clone(),
            vec!["checkbox-1".into(), "checkbox-2".into()],
            "checkbox-canary".into(),
            "lb".into(),
        )
    }

    fn fake(&self) -> Fake {
        Fake::new(&self.infra, &self.store)
    }

    fn recorded(&self) -> RolloutState {
        self.store.load("prod", "checkbox").unwrap().unwrap()
    }

    fn calls(&self) -> Vec<String> {
        self.infra
            .lock()
            .unwrap()
            .calls
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }

    /// Traffic all stable, no canary host.
    fn assert_all_stable(&self) {
        let infra = self.infra.lock().unwrap();
        assert_eq!(infra.weight, 0, "the canary still has weight");
        assert!(!infra.canary_host, "the canary host is left");
        let r = self.recorded();
        assert_eq!((r.weight, r.canary_exists), (0, false));
    }

    async fn start(&self, fake: &mut Fake) -> anyhow::Result<exec::RunResult> {
        exec::start(&self.store, self.state(), fake, &Ui::new(true), &judge()).await
    }

    async fn resume(&self, fake: &mut Fake) -> anyhow::Result<exec::RunResult> {
        exec::resume(&self.store, self.recorded(), fake, &Ui::new(true), &judge()).await
    }

    async fn abort(&self, fake: &mut Fake) -> anyhow::Result<exec::RunResult> {
        let _lock = self.store.lock("prod", "checkbox").unwrap();
        exec::abort(&self.store, self.recorded(), fake, &Ui::new(true), &judge()).await
    }

    /// Starts a rollout whose `crash_at` action never returns, and stops it there (as `kill -9` would).
    async fn crash(&self, crash_at: (&'static str, usize)) {
        let mut fake = self.fake();
        fake.crash_at = Some(crash_at);
        let crashed = fake.crashed.clone();
        tokio::select! {
            r = self.start(&mut fake) => panic!("the rollout did not reach {crash_at:?}: {:?}", r.map(|r| r.ending)),
            () = crashed.notified() => {}
        }
    }
}

#[tokio::test]
async fn a_good_version_goes_through_every_step_then_is_promoted_and_the_canary_retired() {
    let t = setup();
    let r = t.start(&mut t.fake()).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    assert_eq!(r.ending.outcome().code(), 0);
    assert_eq!(t.calls(), promoted_through(&[5, 25, 50, 100]));
    t.assert_all_stable();
    assert_eq!(t.infra.lock().unwrap().stable_version, "v2");
    let s = t.recorded();
    assert_eq!(
        s.phase,
        Phase::Done {
            outcome: Finished::Promoted
        }
    );
    let verdicts: Vec<_> = s
        .steps
        .iter()
        .map(|r| (r.weight, r.judged, r.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            (5, true, Some(Verdict::Pass)),
            (25, true, Some(Verdict::Pass)),
            (50, true, Some(Verdict::Pass)),
            // 100 % leaves no stable requests to compare with: the canary serves alone during the promotion.
            (100, false, None),
        ]
    );
    // Each judged step ran its whole time, with a look every 2.5 s, and both arms had traffic.
    for rec in &s.steps[..3] {
        assert!((rec.duration_s - 10.0).abs() < 1e-6, "{rec:?}");
        assert_eq!(rec.looks.len(), 4);
        assert!(rec.canary.real > 0 && rec.stable.real > 0);
        assert_eq!(rec.canary.errors, 0);
    }
    assert_eq!(r.judgements.len(), 3);
    let report = &s.settings.report_dir;
    for file in ["report.json", "report.md", "report.html"] {
        assert!(
            report.join("step-3").join(file).is_file(),
            "no step-3/{file}"
        );
    }
    assert!(
        !report.join("step-4").exists(),
        "the 100 % step is not judged"
    );
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("Promoted: the canary passed every judged step"),
        "{md}"
    );
    assert!(
        md.contains("| 1/4 | 5 % | 10 s |")
            && md.contains("[PASS](step-1/report.md)")
            && md.contains("not judged"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["outcome"], "promoted");
}

#[tokio::test]
async fn a_broken_version_is_rolled_back_within_the_first_step_before_its_end() {
    let t = setup();
    let mut fake = t.fake();
    fake.broken_from = Some(1);
    let r = t.start(&mut fake).await.unwrap();
    let Ending::RolledBack { reason } = &r.ending else {
        panic!("{:?}", r.ending)
    };
    assert!(reason.contains("FAIL at step 1"), "{reason}");
    assert_eq!(r.ending.outcome().code(), 4);
    assert_eq!(t.calls(), rolled_back_after(&[5]));
    t.assert_all_stable();
    let s = t.recorded();
    assert_eq!(
        s.phase,
        Phase::Done {
            outcome: Finished::RolledBack
        }
    );
    assert_eq!(s.steps.len(), 1);
    assert_eq!(s.steps[0].verdict, Some(Verdict::Fail));
    assert!(
        s.steps[0].duration_s < 10.0,
        "not an early stop: {:?}",
        s.steps[0]
    );
    assert_eq!(t.infra.lock().unwrap().stable_version, "v1");
    let md = std::fs::read_to_string(s.settings.report_dir.join("report.md")).unwrap();
    assert!(md.contains("Rolled back: FAIL at step 1"), "{md}");
    assert!(md.contains("[FAIL](step-1/report.md)"), "{md}");
}

#[tokio::test]
async fn a_version_that_breaks_under_more_traffic_is_rolled_back_at_that_step() {
    let t = setup();
    let mut fake = t.fake();
    fake.broken_from = Some(50);
    let r = t.start(&mut fake).await.unwrap();
    assert!(
        matches!(r.ending, Ending::RolledBack { .. }),
        "{:?}",
        r.ending
    );
    assert_eq!(t.calls(), rolled_back_after(&[5, 25, 50]));
    let s = t.recorded();
    let v: Vec<_> = s.steps.iter().map(|r| r.verdict).collect();
    assert_eq!(
        v,
        [
            Some(Verdict::Pass),
            Some(Verdict::Pass),
            Some(Verdict::Fail)
        ]
    );
    t.assert_all_stable();
}

#[tokio::test]
async fn too_little_traffic_extends_the_step_to_the_longest_time_then_pauses_keeping_the_weight() {
    let t = quiet_setup();
    let mut fake = t.fake();
    fake.rate = 1.0;
    let r = t.start(&mut fake).await.unwrap();
    assert_eq!(
        r.ending,
        Ending::Paused {
            index: 0,
            verdict: Verdict::Inconclusive
        }
    );
    assert_eq!(r.ending.outcome().code(), 5);
    let s = t.recorded();
    assert_eq!(
        s.phase,
        Phase::Paused {
            index: 0,
            verdict: Verdict::Inconclusive
        }
    );
    assert!(s.steps[0].extended);
    assert!(
        (s.steps[0].duration_s - 20.0).abs() < 1e-6,
        "{:?}",
        s.steps[0]
    );
    assert_eq!(s.steps[0].looks.len(), 4);
    // Never promoted, the canary keeps its share until a human decides.
    assert_eq!(t.calls(), ["provision", "deploy", "check", "weight 5"]);
    assert_eq!((s.weight, s.canary_exists), (5, true));

    // `resume` with the traffic back (synthetic load added) runs the step again and completes.
    let mut fake = t.fake();
    fake.rate = 1.0;
    let mut state = t.recorded();
    state.settings.load = Some(40.0);
    t.store.save(&mut state).unwrap();
    let r = t.resume(&mut fake).await.unwrap();
    assert_eq!(r.ending, Ending::Promoted);
    t.assert_all_stable();
    let s = t.recorded();
    assert_eq!(
        s.steps.len(),
        5,
        "the paused step is recorded, then run again"
    );
    assert!(
        s.steps[1].canary.synthetic > 0 && s.steps[1].stable.real > 0,
        "{:?}",
        s.steps[1]
    );
}

#[tokio::test]
async fn a_paused_rollout_is_aborted_to_all_stable() {
    let t = quiet_setup();
    let mut fake = t.fake();
    fake.rate = 1.0;
    t.start(&mut fake).await.unwrap();
    let r = t.abort(&mut t.fake()).await.unwrap();
    assert_eq!(r.ending, Ending::Aborted);
    assert_eq!(
        t.recorded().phase,
        Phase::Done {
            outcome: Finished::Aborted
        }
    );
    t.assert_all_stable();
    assert_eq!(t.infra.lock().unwrap().stable_version, "v1");
}

#[tokio::test]
async fn the_state_on_disk_names_each_action_before_it_runs() {
    let t = setup();
    t.start(&mut t.fake()).await.unwrap();
    let calls = t.infra.lock().unwrap().calls.clone();
    let phase = |name: &str| {
        calls
            .iter()
            .find(|c| c.0 == name)
            .and_then(|c| c.1.clone())
            .unwrap_or_else(|| panic!("no {name} call"))
    };
    assert_eq!(phase("provision"), Phase::Provision);
    assert_eq!(phase("deploy"), Phase::Deploy);
    assert_eq!(phase("check"), Phase::Check);
    assert_eq!(phase("weight 5"), Phase::Step { index: 0 });
    assert_eq!(phase("weight 100"), Phase::Step { index: 3 });
    assert_eq!(phase("promote"), Phase::Promote);
    assert_eq!(phase("weight 0"), Phase::Retire);
    assert_eq!(phase("retire"), Phase::Retire);
}

#[tokio::test]
async fn the_state_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = setup();
    t.start(&mut t.fake()).await.unwrap();
    let path = t.store.path("prod", "checkbox");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// Every action a rollout can be killed in, as (action, occurrence).
const CRASH_POINTS: [(&str, usize); 9] = [
    ("provision", 1),
    ("deploy", 1),
    ("check", 1),
    ("weight", 1),
    ("weight", 2),
    ("weight", 4),
    ("promote", 1),
    ("weight 0", 1),
    ("retire", 1),
];

#[tokio::test]
async fn a_rollout_killed_in_any_action_resumes_to_a_promotion() {
    for point in CRASH_POINTS {
        let t = setup();
        t.crash(point).await;
        assert!(!t.recorded().phase.is_done(), "{point:?}");
        let r = t
            .resume(&mut t.fake())
            .await
            .unwrap_or_else(|e| panic!("{point:?}: {e:#}"));
        assert_eq!(r.ending, Ending::Promoted, "{point:?}");
        t.assert_all_stable();
        assert_eq!(t.infra.lock().unwrap().stable_version, "v2", "{point:?}");
    }
}

#[tokio::test]
async fn a_rollout_killed_in_any_action_aborts_to_all_stable_without_a_canary_host() {
    for point in CRASH_POINTS {
        let t = setup();
        t.crash(point).await;
        let r = t
            .abort(&mut t.fake())
            .await
            .unwrap_or_else(|e| panic!("{point:?}: {e:#}"));
        assert_eq!(r.ending, Ending::Aborted, "{point:?}");
        assert_eq!(
            t.recorded().phase,
            Phase::Done {
                outcome: Finished::Aborted
            }
        );
        t.assert_all_stable();
    }
}

#[tokio::test]
async fn an_abort_killed_itself_is_finished_by_a_second_abort() {
    let t = setup();
    t.crash(("weight", 2)).await;
    let mut fake = t.fake();
    fake.crash_at = Some(("retire", 1));
    let crashed = fake.crashed.clone();
    tokio::select! {
        r = t.abort(&mut fake) => panic!("the abort did not reach the retirement: {:?}", r.map(|r| r.ending)),
        () = crashed.notified() => {}
    }
    assert_eq!(t.recorded().phase, Phase::Abort);
    assert_eq!(t.recorded().weight, 0);
    t.abort(&mut t.fake()).await.unwrap();
    t.assert_all_stable();
}

#[tokio::test]
async fn a_second_rollout_of_the_same_app_is_refused_while_one_runs_or_is_recorded() {
    let t = setup();
    let held = t.store.lock("prod", "checkbox").unwrap();
    let e = t.start(&mut t.fake()).await.unwrap_err();
    assert!(
        matches!(
            e.downcast_ref::<RolloutError>(),
            Some(RolloutError::Busy { .. })
        ),
        "{e:#}"
    );
    drop(held);
    t.crash(("weight", 2)).await;
    let e = t.start(&mut t.fake()).await.unwrap_err();
    assert!(
        matches!(
            e.downcast_ref::<RolloutError>(),
            Some(RolloutError::InProgress { .. })
        ),
        "{e:#}"
    );
    // Once finished, a new rollout may start, and a finished one cannot be resumed.
    t.abort(&mut t.fake()).await.unwrap();
    let e = t.resume(&mut t.fake()).await.unwrap_err();
    assert!(
        matches!(
            e.downcast_ref::<RolloutError>(),
            Some(RolloutError::Finished { .. })
        ),
        "{e:#}"
    );
    assert_eq!(
        t.start(&mut t.fake()).await.unwrap().ending,
        Ending::Promoted
    );
}
