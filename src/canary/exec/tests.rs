//! The executor's control flow against a loopback world: a split "proxy" on 127.0.0.1 that answers as
//! baseline or canary (the canary optionally with 5xx), driven by the real load generator; the other stages
//! are recorded so their order, the teardown and the exit codes can be checked without root.

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::*;
use crate::ansible::DeployReport;
use crate::canary::judge::{Classification, MetricInput, Verdict};
use crate::canary::load::{self, LoadRun, Progress};
use crate::canary::metrics::{HostSample, HostSeries};
use crate::canary::report::{self, Extras, ReportFiles};
use crate::canary::run::HealthError;
use crate::canary::source::Export;
use crate::canary::world::World;

/// A loopback split proxy: every other request is the canary's; the canary answers `canary_status`.
async fn split_proxy(canary_status: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let k = counter.fetch_add(1, Ordering::Relaxed);
                    async move {
                        // A service time well above loopback jitter, so that equal arms look equal.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let canary = k % 2 == 1;
                        let (status, body) = if canary && canary_status >= 500 {
                            (canary_status, "error".to_string())
                        } else {
                            (200, format!("<p>preview {}</p>", "x".repeat(200)))
                        };
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .header(
                                    "x-canary-backend",
                                    if canary { "canary" } else { "baseline" },
                                )
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}/preview")
}

/// The fake world: records each stage it was asked for.
struct Loopback {
    calls: Vec<&'static str>,
    proxy: String,
    fail_at: Option<&'static str>,
    baseline_unhealthy: bool,
    /// The arms' host samples the load returns (default: [`hosts`] over 60 s).
    host_samples: Option<Vec<HostSeries>>,
}

impl Loopback {
    async fn new(canary_status: u16) -> Self {
        Loopback {
            calls: Vec::new(),
            proxy: split_proxy(canary_status).await,
            fail_at: None,
            baseline_unhealthy: false,
            host_samples: None,
        }
    }

    fn step(&mut self, name: &'static str) -> anyhow::Result<()> {
        self.calls.push(name);
        match self.fail_at {
            Some(f) if f == name => anyhow::bail!("{name} failed (injected)"),
            _ => Ok(()),
        }
    }
}

/// Both arms' hosts with the same steady CPU and memory, once a second over `secs`.
fn hosts(secs: usize) -> Vec<HostSeries> {
    ["blue", "green"]
        .iter()
        .map(|h| HostSeries {
            host: h.to_string(),
            samples: (0..secs)
                .map(|i| HostSample {
                    offset_s: i as f64,
                    cpu_percent: 10.0 + (i % 3) as f64,
                    memory_percent: 20.0 + (i % 2) as f64,
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

impl World for Loopback {
    async fn provision(&mut self) -> anyhow::Result<Vec<(String, Option<Ipv4Addr>)>> {
        self.step("provision")?;
        Ok(["blue", "green", "proxy"]
            .iter()
            .map(|h| (h.to_string(), Some(Ipv4Addr::LOCALHOST)))
            .collect())
    }

    async fn fetch(&mut self) -> anyhow::Result<(Export, Export)> {
        self.step("fetch")?;
        let export = |b: &str| Export {
            branch: b.into(),
            revision: b.into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            tree: format!("tree-{b}"),
            archive: PathBuf::from(format!("/nonexistent/{b}.tar.gz")),
        };
        Ok((export("master"), export("broken")))
    }

    async fn deploy(&mut self, _: &ArmDeploy, _: &ArmDeploy) -> anyhow::Result<DeployReport> {
        self.calls.push("deploy");
        Ok(DeployReport {
            name: "canary".into(),
            inventory: "inventory.ini".into(),
            check_mode: false,
            started_at: "2026-12-01T00:00:00Z".into(),
            duration_secs: 0.1,
            ansible_rc: if self.fail_at == Some("deploy") { 2 } else { 0 },
            success: self.fail_at != Some("deploy"),
            hosts: Vec::new(),
            roles: Vec::new(),
            tasks: Vec::new(),
            failures: Vec::new(),
            problem: None,
        })
    }

    fn proxy_url(&self, _: Ipv4Addr, _: &str) -> String {
        self.proxy.clone()
    }

    async fn health(&mut self, baseline: &ArmDeploy, _: &ArmDeploy, _: &str) -> anyhow::Result<()> {
        self.step("health")?;
        if self.baseline_unhealthy {
            return Err(HealthError::BaselineUnhealthy {
                arm: baseline.label.clone(),
                host: baseline.host.clone(),
                branch: baseline.branch.clone(),
                status: 500,
                body_start: "error".into(),
            }
            .into());
        }
        Ok(())
    }

    async fn warmup(&mut self, plan: LoadPlan) -> anyhow::Result<()> {
        self.step("warmup")?;
        load::run(plan, &mut load::NoProgress).await?;
        Ok(())
    }

    async fn load(
        &mut self,
        plan: LoadPlan,
        _: [&ArmDeploy; 2],
        progress: &mut dyn Progress,
    ) -> anyhow::Result<(LoadRun, Vec<HostSeries>)> {
        self.step("load")?;
        let run = load::run(plan, progress).await?;
        // As many host samples as the judge's default min_samples asks for.
        Ok((run, self.host_samples.clone().unwrap_or_else(|| hosts(60))))
    }

    async fn metrics(
        &mut self,
        _: SystemTime,
        _: SystemTime,
    ) -> anyhow::Result<(Vec<MetricInput>, Vec<String>)> {
        self.step("metrics")?;
        Ok((Vec::new(), Vec::new()))
    }

    async fn teardown(&mut self) -> anyhow::Result<()> {
        self.calls.push("teardown");
        Ok(())
    }

    fn report(
        &mut self,
        dir: &Path,
        j: &Judgement,
        extras: &Extras,
    ) -> anyhow::Result<ReportFiles> {
        self.step("report")?;
        Ok(report::write_all(dir, j, extras)?)
    }
}

fn settings(dir: &Path, extra: &[&str]) -> CanarySettings {
    settings_for(dir, "4s", extra)
}

fn settings_for(dir: &Path, window: &str, extra: &[&str]) -> CanarySettings {
    use crate::cli::{Cli, Command};
    use clap::Parser;
    let report = dir.join("report");
    let mut argv = vec![
        "pipeline",
        "canary",
        "master",
        "broken",
        "--provider",
        "local",
        "--duration",
        window,
        "--warmup",
        "0s",
        "--rate",
        "200",
        "--concurrency",
        "16",
        "--look-every",
        "1s",
        "--report-dir",
        report.to_str().unwrap(),
    ];
    argv.extend(extra);
    let Command::Canary(args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let global = crate::settings::Global {
        config: crate::settings::Config::parse("", "pipeline.toml".into()).unwrap(),
        state_dir: dir.join("state"),
        ui: Ui::new(true),
    };
    CanarySettings::resolve(&args.baseline, &args.canary, args.options, &global).unwrap()
}

const ALL_STAGES: [&str; 7] = [
    "provision",
    "fetch",
    "deploy",
    "health",
    "load",
    "metrics",
    "report",
];

fn report_json(s: &CanarySettings) -> serde_json::Value {
    let text = std::fs::read_to_string(s.report_dir.join("report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_answering_5xx_stops_the_load_at_the_first_look_with_min_samples() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), &[]);
    let mut world = Loopback::new(500).await;
    let result = execute(&s, &mut world, &Ui::new(true)).await.unwrap();
    assert_eq!(result.judgement.verdict, Verdict::Fail);
    assert_eq!(result.judgement.verdict.outcome().code(), 4);
    let mut expected = ALL_STAGES.to_vec();
    expected.push("teardown");
    assert_eq!(world.calls, expected);
    let seq = result
        .judgement
        .sequential
        .as_ref()
        .expect("a sequential section");
    assert!(seq.stopped_early, "{seq:?}");
    // 200 req/s split evenly: 100 per arm by the first look at 1 s, past min_samples (50).
    assert_eq!(seq.stopped_at_s, 1.0, "{seq:?}");
    assert_eq!(seq.looks.len(), 1, "{seq:?}");
    assert!(seq.looks[0].n.canary >= s.judge.min_samples, "{seq:?}");
    let json = report_json(&s);
    assert_eq!(json["sequential"]["stopped_early"], true);
    assert_eq!(json["sequential"]["looks"].as_array().unwrap().len(), 1);
    let md = std::fs::read_to_string(&result.files.markdown).unwrap();
    assert!(md.contains("look"), "{md}");
    // The load ran about a second, not the 4 s window.
    let load = result
        .times
        .stages
        .iter()
        .find(|t| t.name == "load")
        .unwrap();
    assert!(load.seconds < 3.0, "{:?}", result.times);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_stopped_report_judges_the_host_samples_taken_up_to_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), &[]);
    let mut world = Loopback::new(500).await;
    // A sample every 50 ms for 4 s; the canary's CPU runs at 80 %, the baseline's at 10 %.
    world.host_samples = Some(
        [("blue", 10.0), ("green", 80.0)]
            .iter()
            .map(|(h, cpu)| HostSeries {
                host: h.to_string(),
                samples: (0..80)
                    .map(|i| HostSample {
                        offset_s: i as f64 * 0.05,
                        cpu_percent: cpu + (i % 3) as f64,
                        memory_percent: 20.0 + (i % 2) as f64,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    );
    let result = execute(&s, &mut world, &Ui::new(true)).await.unwrap();
    let j = &result.judgement;
    assert_eq!(j.verdict, Verdict::Fail);
    let seq = j.sequential.as_ref().unwrap();
    assert!(seq.stopped_early && seq.looks.len() == 1, "{seq:?}");
    let t = seq.stopped_at_s;
    let metric = |name: &str| j.metrics.iter().find(|m| m.name == name).unwrap();
    // The samples up to the stop (offsets 0, 0.05, …, t), not NoData and not the whole series.
    let upto = (t / 0.05 + 1e-9).floor() as usize + 1;
    for name in ["cpu_percent", "memory_percent"] {
        let m = metric(name);
        assert_eq!((m.baseline.n, m.canary.n), (upto, upto), "{m:?}");
        assert_ne!(m.classification, Classification::NoData, "{m:?}");
    }
    // The report shows the arms' figures up to the stop: the canary's CPU about 70 points above.
    let cpu = metric("cpu_percent");
    assert_eq!(
        (cpu.baseline.p50, cpu.canary.p50),
        (Some(11.0), Some(81.0)),
        "{cpu:?}"
    );
    assert!(
        cpu.estimate.is_some_and(|e| (e - 70.0).abs() < 1.5),
        "{cpu:?}"
    );
    assert_eq!(metric("error_rate").classification, Classification::High);
    let json = report_json(&s);
    assert_eq!(json["sequential"]["looks"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_early_stop_the_failing_canary_runs_the_whole_window() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), &["--no-early-stop"]);
    let mut world = Loopback::new(500).await;
    let result = execute(&s, &mut world, &Ui::new(true)).await.unwrap();
    assert_eq!(result.judgement.verdict, Verdict::Fail);
    let seq = result.judgement.sequential.as_ref().unwrap();
    assert!(
        seq.stopped_early,
        "the FAIL was final at the first look: {seq:?}"
    );
    assert_eq!(seq.stopped_at_s, 1.0);
    assert_eq!(
        seq.looks.len(),
        4,
        "looks at 1, 2, 3 s and the end: {seq:?}"
    );
    let load = result
        .times
        .stages
        .iter()
        .find(|t| t.name == "load")
        .unwrap();
    assert!(load.seconds >= 3.9, "{:?}", result.times);
    assert_eq!(world.calls.last(), Some(&"teardown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_is_judged_at_the_last_look_and_torn_down() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), &[]);
    let mut world = Loopback::new(200).await;
    let result = execute(&s, &mut world, &Ui::new(true)).await.unwrap();
    let seq = result.judgement.sequential.as_ref().unwrap();
    assert!(!seq.stopped_early, "{seq:?}");
    assert_eq!(seq.looks.len(), 4, "{seq:?}");
    assert!(
        matches!(
            result.judgement.verdict,
            Verdict::Pass | Verdict::Inconclusive
        ),
        "{:?}: {}",
        result.judgement.verdict,
        result.judgement.reason
    );
    let code = result.judgement.verdict.outcome().code();
    assert!(code == 0 || code == 5, "{code}");
    assert_eq!(world.calls.last(), Some(&"teardown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_skips_the_teardown() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings_for(dir.path(), "1s", &["--keep"]);
    let mut world = Loopback::new(200).await;
    execute(&s, &mut world, &Ui::new(true)).await.unwrap();
    assert_eq!(world.calls, ALL_STAGES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_in_any_stage_stops_the_run_tears_down_and_exits_1() {
    for stage in ["provision", "fetch", "deploy", "health", "load"] {
        let dir = tempfile::tempdir().unwrap();
        let s = settings_for(dir.path(), "1s", &[]);
        let mut world = Loopback::new(200).await;
        world.fail_at = Some(stage);
        let err = execute(&s, &mut world, &Ui::new(true)).await.unwrap_err();
        let upto = ALL_STAGES.iter().position(|s| *s == stage).unwrap();
        let mut expected = ALL_STAGES[..=upto].to_vec();
        expected.push("teardown");
        assert_eq!(world.calls, expected, "{stage}: {err:#}");
        assert_eq!(
            crate::exit::error_code(&err),
            std::process::ExitCode::from(1)
        );
        assert!(!s.report_dir.join("report.json").exists(), "{stage}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_baseline_is_an_error_that_says_so_and_tears_down() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings_for(dir.path(), "1s", &[]);
    let mut world = Loopback::new(200).await;
    world.baseline_unhealthy = true;
    let err = execute(&s, &mut world, &Ui::new(true)).await.unwrap_err();
    assert!(format!("{err:#}").contains("nothing to compare"), "{err:#}");
    assert_eq!(
        crate::exit::error_code(&err),
        std::process::ExitCode::from(1)
    );
    assert_eq!(
        world.calls,
        ["provision", "fetch", "deploy", "health", "teardown"]
    );
}

#[test]
fn a_usage_mistake_exits_2_before_any_stage() {
    use crate::cli::{Cli, Command};
    use clap::Parser;
    let argv = [
        "pipeline",
        "canary",
        "a",
        "b",
        "--provider",
        "local",
        "--split",
        "0",
    ];
    let Command::Canary(args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let global = crate::settings::Global {
        config: crate::settings::Config::parse("", "pipeline.toml".into()).unwrap(),
        state_dir: ".pipeline".into(),
        ui: Ui::new(true),
    };
    let err =
        CanarySettings::resolve(&args.baseline, &args.canary, args.options, &global).unwrap_err();
    assert_eq!(
        crate::exit::error_code(&err),
        std::process::ExitCode::from(2)
    );
}

#[test]
fn the_plan_lists_the_stages_in_order_and_the_looks() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), &[]);
    let plan = crate::canary::plan::plan(&s);
    let names: Vec<_> = plan.stages.iter().map(|s| s.stage.name()).collect();
    assert_eq!(
        names,
        ["provision", "fetch", "deploy", "health", "load", "judge"]
    );
    assert_eq!(plan.looks.planned, 4);
    assert!(plan.looks.early_stop && plan.teardown);
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["hosts"][1]["branch"], "broken");
    assert_eq!(json["load"]["rate"], 200.0);
    let text = plan.render();
    assert!(text.contains("[5/6] load"), "{text}");
    assert!(text.contains("4 every 1 s, early stop"), "{text}");
}
