//! A rollout judged on a real Prometheus (Debian's package, its TSDB filled by `promtool tsdb
//! create-blocks-from openmetrics`): the `[[canary.metric]]` of pipeline.toml, resolved by the rollout's
//! monitor with `$arm` = the stable hosts (`checkbox-1|checkbox-2`) and the canary host, queried at every
//! look for the step's window so far. The front door's requests come from a loopback world on a virtual
//! clock set inside the stored data; they are as good on both arms, so the Prometheus metric alone decides:
//! a canary whose CPU runs 30 points higher is rolled back in the first step, an equal one is promoted.

use pipeline::canary::judge::{Classification, JudgeConfig};
use pipeline::rollout::exec::{self, Ending};
use pipeline::rollout::monitor::{self, Monitor};
use pipeline::rollout::state::{Recorded, RolloutState, StateStore};
use pipeline::rollout::world::{Arm, DeploySummary, Observed, RolloutWorld};
use pipeline::settings::{Config, Global};
use pipeline::ui::Ui;

use crate::analyze_prometheus::{base_time, openmetrics, Prometheus};

/// Requests through a front door that splits by weight; both arms answer alike.
struct Loopback {
    clock: f64,
    weight: u8,
    seq: u64,
    log: Vec<Observed>,
    monitor: Monitor,
}

/// A pseudo-random number in [0, 1) (splitmix64): reproducible runs.
fn unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

fn done(what: &str) -> DeploySummary {
    DeploySummary {
        what: what.into(),
        success: true,
        text: "ok".into(),
        duration_s: 0.0,
        batches: Vec::new(),
    }
}

impl RolloutWorld for Loopback {
    fn now(&self) -> f64 {
        self.clock
    }
    async fn wait(&mut self, seconds: f64) {
        let n = (40.0 * seconds) as u64;
        for i in 0..n {
            self.seq += 1;
            let k = self.seq;
            let canary = unit(k * 3 + 1) * 100.0 < f64::from(self.weight);
            self.log.push(Observed {
                at: self.clock + seconds * (i as f64 + 0.5) / n as f64,
                arm: if canary { Arm::Canary } else { Arm::Stable },
                status: Some(200),
                latency_ms: 20.0 + 10.0 * unit(k * 3 + 2),
                bytes: 1000,
                synthetic: false,
            });
        }
        self.clock += seconds;
    }
    async fn provision_canary(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn deploy_canary(&mut self) -> anyhow::Result<DeploySummary> {
        Ok(done("canary"))
    }
    async fn check_canary(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn set_weight(&mut self, weight: u8) -> anyhow::Result<()> {
        self.weight = weight;
        Ok(())
    }
    async fn load(&mut self, _rate: Option<f64>) -> anyhow::Result<()> {
        Ok(())
    }
    async fn observe(&mut self) -> anyhow::Result<Vec<Observed>> {
        Ok(std::mem::take(&mut self.log))
    }
    async fn promote(&mut self) -> anyhow::Result<DeploySummary> {
        Ok(done("promotion"))
    }
    async fn retire_canary(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    fn metric_plan(&self) -> Vec<pipeline::canary::judge::MetricInput> {
        self.monitor.metric_plan()
    }
    async fn metrics(
        &mut self,
        from: f64,
        to: f64,
    ) -> anyhow::Result<(Vec<pipeline::canary::judge::MetricInput>, Vec<String>)> {
        self.monitor.metrics(from, to).await
    }
}

const PIPELINE_TOML: &str = r#"
[canary]
prometheus_step = "5s"

[[canary.metric]]
name = "cpu_percent"
unit = "%"
fail_on = "increase"
critical = true
query = 'avg(cpu{host=~"$arm"})'
"#;

/// Runs a rollout of checkbox.io (steps 5, 25, 100 of 60 s, a look every 10 s) against `prom`.
async fn roll_out(
    prom: &Prometheus,
    t0: u64,
) -> (exec::RunResult, RolloutState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let global = Global {
        config: Config::parse(PIPELINE_TOML, dir.path().join("pipeline.toml")).unwrap(),
        state_dir: dir.path().join(".pipeline"),
        ui: Ui::new(true),
    };
    let mut state = RolloutState::new(
        Recorded {
            app: "checkbox".into(),
            provider: "local".into(),
            environment: "prod".into(),
            inventory: dir.path().join("no-monitor.ini"),
            source: None,
            git_ref: Some("v2".into()),
            artifact: None,
            extra_vars: Vec::new(),
            steps: vec![5, 25, 100],
            step_time_s: 60.0,
            max_step_time_s: 120.0,
            look_every_s: 10.0,
            warmup_s: 0.0,
            load: None,
            report_dir: dir.path().join("report"),
        },
        vec!["checkbox-1".into(), "checkbox-2".into()],
        "checkbox-canary".into(),
        "lb".into(),
    );
    state.prometheus = Some(prom.url.clone());
    let monitor = Monitor::resolve(&state, &global).unwrap();
    let mut world = Loopback {
        clock: (t0 + 30) as f64,
        weight: 0,
        seq: 0,
        log: Vec::new(),
        monitor,
    };
    let store = StateStore::new(&global.state_dir);
    let judge = JudgeConfig {
        min_samples: 10,
        ..JudgeConfig::default()
    };
    let result = exec::start(&store, state, &mut world, &global.ui, &judge)
        .await
        .unwrap();
    let state = store.load("prod", "checkbox").unwrap().unwrap();
    (result, state, dir)
}

/// `cpu` per host, a sample a second for 15 minutes from `t0`; the canary `shift` points higher.
fn cpu_data(t0: u64, shift: f64) -> String {
    let n = 900;
    let v = |salt: u64, add: f64| -> Vec<f64> {
        (0..n as u64)
            .map(|i| 30.0 + add + 4.0 * unit(i * 5 + salt))
            .collect()
    };
    let (a, b, c) = (v(1, 0.0), v(2, 0.0), v(3, shift));
    format!(
        "{}# EOF\n",
        openmetrics(
            "cpu",
            &[
                ("host=\"checkbox-1\"", &a),
                ("host=\"checkbox-2\"", &b),
                ("host=\"checkbox-canary\"", &c)
            ],
            t0
        )
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_step_fails_on_a_prometheus_metric_of_the_canary_host_and_rolls_back() {
    let t0 = base_time();
    let prom = Prometheus::start(&cpu_data(t0, 30.0));
    let (result, state, _dir) = roll_out(&prom, t0).await;
    let Ending::RolledBack { reason } = &result.ending else {
        panic!("{:?}", result.ending)
    };
    assert!(
        reason.contains("FAIL at step 1") && reason.contains("cpu_percent"),
        "{reason}"
    );
    assert_eq!(state.steps.len(), 1);
    let (_, j) = &result.judgements[0];
    let cpu = j.metrics.iter().find(|m| m.name == "cpu_percent").unwrap();
    assert_eq!(cpu.classification, Classification::High, "{cpu:?}");
    assert!(cpu.baseline.n >= 10 && cpu.canary.n >= 10, "{cpu:?}");
    for m in j.metrics.iter().filter(|m| m.name != "cpu_percent") {
        assert_ne!(m.classification, Classification::High, "{m:?}");
    }
    assert_eq!((state.weight, state.canary_exists), (0, false));
    assert_eq!(
        monitor::arms(&state).baseline.as_deref(),
        Some("checkbox-1|checkbox-2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_whose_canary_host_matches_the_stable_hosts_in_prometheus_is_promoted() {
    let t0 = base_time();
    let prom = Prometheus::start(&cpu_data(t0, 0.0));
    let (result, _state, _dir) = roll_out(&prom, t0).await;
    assert_eq!(result.ending, Ending::Promoted);
    for (_, j) in &result.judgements {
        let cpu = j.metrics.iter().find(|m| m.name == "cpu_percent").unwrap();
        assert_eq!(cpu.classification, Classification::Pass, "{cpu:?}");
        // A 60 s step at a 5 s resolution: 13 points per arm (the stable hosts averaged into one).
        assert_eq!((cpu.baseline.n, cpu.canary.n), (13, 13), "{cpu:?}");
    }
}

#[test]
fn the_dry_run_names_the_prometheus_metrics_and_refuses_a_bad_one_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[checkbox]\ncheckbox-1 ansible_host=10.0.0.2\ncheckbox-2 ansible_host=10.0.0.3\n[lb]\nlb ansible_host=10.0.0.4\n",
    )
    .unwrap();
    let run = |toml: &str| {
        std::fs::write(dir.path().join("pipeline.toml"), toml).unwrap();
        let out = crate::support::pipeline(dir.path())
            .args([
                "rollout",
                "checkbox.io",
                "--ref",
                "v2",
                "--provider",
                "local",
                "--prometheus",
                "http://127.0.0.1:9",
                "--dry-run",
            ])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(PIPELINE_TOML);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Prometheus metrics judged with the requests at every look: cpu_percent from http://127.0.0.1:9 ($arm = checkbox-1|checkbox-2 for stable, checkbox-canary for the canary)"),
        "{out}"
    );
    // A query without `$arm` would judge one series against itself: refused before anything runs.
    let (code, _, err) = run("[[canary.metric]]\nname = 'cpu'\nquery = 'avg(cpu)'\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no `$arm`"), "{err}");
}
