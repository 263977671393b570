//! `pipeline canary BASELINE CANARY`: provision blue, green and proxy; deploy the baseline branch on blue
//! and the canary branch on green behind an nginx split proxy; check both arms answer; send load through
//! the proxy while sampling CPU and memory of blue and green; judge; write one report; exit with the
//! verdict's code. An arm that fails during the load is data (FAIL), never a crash and never a PASS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

use crate::ansible::{DeployReport, PlaybookRun, RolesSource};
use crate::canary::cgroup::{self, CgroupScraper, HostScraper};
use crate::canary::judge::{self, JudgeConfig, Judgement};
use crate::canary::load::{self, LoadPlan, LoadRun, Snapshot, Stop};
use crate::canary::metrics::{self, HostSeries, HttpScraper};
use crate::canary::prometheus::canary::{self as prom_canary, CanaryPromSection, CanaryQueries};
use crate::canary::report::{self, Extras, ReportFiles};
use crate::canary::run::{self, ArmDeploy, Probe, StageTimes};
use crate::canary::samples::{self, RequestObs, RequestSplit};
use crate::canary::source::{self, Source};
use crate::exit::UsageError;
use crate::providers::{HostSpec, ProviderKind};
use crate::provision::{self, HostDefault, HostOverride, UpRequest};
use crate::settings::{pick, Global};
use crate::Outcome;

/// The canary's hosts and their DigitalOcean sizes.
pub const CANARY_HOSTS: [HostDefault; 3] = [
    HostDefault {
        name: run::BASELINE_HOST,
        size: "s-1vcpu-1gb",
    },
    HostDefault {
        name: run::CANARY_HOST,
        size: "s-1vcpu-1gb",
    },
    HostDefault {
        name: run::PROXY_HOST,
        size: "s-1vcpu-1gb",
    },
];

#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// Baseline branch or revision, deployed on host `blue` (e.g. master).
    pub baseline: String,
    /// Canary branch or revision, deployed on host `green` (e.g. broken).
    pub canary: String,
    /// Where the hosts run [env: PIPELINE_PROVIDER; config: provider; default: digitalocean].
    #[arg(long, value_enum)]
    pub provider: Option<ProviderKind>,
    /// Repository to deploy: a URL or a local path, cloned on this machine [default: checkbox.io-micro-preview,
    /// whose `master` means its last revision serving POST /preview, ec9b647].
    #[arg(long, value_name = "URL_OR_PATH")]
    pub repo: Option<String>,
    /// Length of the load window, e.g. 60s, 2m [default: 60s].
    #[arg(long, short = 'd', value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Load sent before the measured window and not judged, so both arms are warm [default: 5s; 0 = none].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Requests per second through the proxy, both arms together (open model; 0 = as fast as the
    /// connections allow) [default: 100].
    #[arg(long, short = 'q', visible_short_alias = 'R')]
    pub rate: Option<f64>,
    /// Connections to the proxy [default: 16].
    #[arg(long, short = 'c')]
    pub concurrency: Option<usize>,
    /// Share of requests sent to the canary, in percent (1-99) [default: 50].
    #[arg(long)]
    pub split: Option<u8>,
    /// Endpoint the load requests [default: /preview].
    #[arg(long, value_name = "PATH")]
    pub endpoint: Option<String>,
    /// HTTP method of the load [default: POST].
    #[arg(long)]
    pub method: Option<String>,
    /// Request body [default: the bundled survey document, {"markdown": …}].
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Content-Type of the body [default: application/json].
    #[arg(long)]
    pub content_type: Option<String>,
    /// Where the report goes [default: canary-report/<UTC time>].
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Keep the hosts after the run (default: destroy them); a later run reuses them.
    #[arg(long)]
    pub keep: bool,
    /// Use the roles in DIR (e.g. an edited `pipeline roles export DIR`) instead of the built-in ones
    /// [config: roles_dir].
    #[arg(long, value_name = "DIR")]
    pub roles: Option<PathBuf>,
    /// Environment the hosts belong to (hosts blue, green, proxy).
    #[arg(long, env = "PIPELINE_CANARY_ENV", default_value = "canary")]
    pub env: String,
    /// Prometheus to query for the `[canary]` metrics (`metrics_file` or `[[canary.metric]]`) over the
    /// load window [config: prometheus]; credentials from PIPELINE_PROMETHEUS_* variables.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Inventory whose [monitor] host's dashboard records the verdict as an event.
    #[arg(
        long = "monitor-inventory",
        value_name = "FILE",
        default_value = "inventory.ini"
    )]
    pub monitor_inventory: PathBuf,
}

/// The `[canary]` section of pipeline.toml (flags win).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySection {
    pub repo: Option<String>,
    /// e.g. "60s".
    pub duration: Option<String>,
    /// e.g. "5s".
    pub warmup: Option<String>,
    pub rate: Option<f64>,
    pub concurrency: Option<usize>,
    pub split: Option<u8>,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub body_file: Option<PathBuf>,
    pub content_type: Option<String>,
    /// Host overrides for all canary hosts (region, image, size, memory_limit).
    #[serde(flatten)]
    pub hosts: HostOverride,
    /// `prometheus`, `prometheus_step`, `metrics_file`, `[[canary.metric]]`, `[canary.arms]`.
    #[serde(flatten)]
    pub prometheus: CanaryPromSection,
}

/// A fully resolved canary run; `pipeline demo` builds one directly.
#[derive(Debug, Clone)]
pub struct CanaryPlan {
    pub provider: ProviderKind,
    pub environment: String,
    pub repo: String,
    pub baseline: String,
    pub canary: String,
    pub specs: Vec<HostSpec>,
    pub duration: Duration,
    /// Unrecorded load before the window.
    pub warmup: Duration,
    /// `None`: closed model, as fast as `concurrency` connections allow.
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub split: u8,
    pub probe: Probe,
    pub report_dir: PathBuf,
    pub keep: bool,
    pub judge: JudgeConfig,
    /// Roles from this directory instead of the built-in ones.
    pub roles: Option<PathBuf>,
    /// Prometheus queries judged with the per-request metrics (`None`: none configured).
    pub prometheus: Option<CanaryQueries>,
}

impl CanaryPlan {
    /// Where this environment's inventory and shipped archives live.
    pub fn work_dir(&self, global: &Global) -> PathBuf {
        global
            .state_dir
            .join(format!("canary-{}", self.environment))
    }

    pub fn inventory(&self, global: &Global) -> PathBuf {
        self.work_dir(global).join("inventory.ini")
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct CanaryResult {
    pub judgement: Judgement,
    pub files: ReportFiles,
    pub times: StageTimes,
}

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

/// A duration from the flag, else `[canary] key = "…"`, else `default_secs`.
fn duration_setting(
    key: &str,
    flag: Option<Duration>,
    config: &Option<String>,
    default_secs: u64,
) -> anyhow::Result<Duration> {
    match (flag, config) {
        (Some(d), _) => Ok(d),
        (None, Some(text)) => humantime::parse_duration(text).map_err(|e| {
            usage(format!(
                "[canary] {key} = {text:?}: {e} (e.g. \"{default_secs}s\")"
            ))
        }),
        (None, None) => Ok(Duration::from_secs(default_secs)),
    }
}

/// Resolves flags > pipeline.toml `[canary]` > defaults, and checks every value.
pub fn resolve(args: CanaryArgs, global: &Global) -> anyhow::Result<CanaryPlan> {
    let section: CanarySection = global.config.section("canary")?;
    let provider = provision::resolve_provider_kind(args.provider, &global.config)?;
    provision::check_environment(&args.env)?;
    let duration = duration_setting("duration", args.duration, &section.duration, 60)?;
    if duration < Duration::from_secs(1) {
        return Err(usage(format!(
            "--duration {}: the load window must be at least 1s",
            humantime::format_duration(duration)
        )));
    }
    let warmup = duration_setting("warmup", args.warmup, &section.warmup, 5)?;
    let rate = pick(args.rate, section.rate, || 100.0);
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(usage(format!(
            "--rate {rate}: expected requests per second ≥ 0 (0 = unlimited)"
        )));
    }
    let concurrency = pick(args.concurrency, section.concurrency, || 16);
    if concurrency == 0 {
        return Err(usage(
            "--concurrency 0: at least one connection is needed".into(),
        ));
    }
    let split = pick(args.split, section.split, || 50);
    if !(1..=99).contains(&split) {
        return Err(usage(format!(
            "--split {split}: the canary's share must be 1 to 99 percent, so both arms get traffic"
        )));
    }
    let endpoint = pick(args.endpoint, section.endpoint, || "/preview".into());
    if !endpoint.starts_with('/') {
        return Err(usage(format!(
            "--endpoint {endpoint:?}: must start with `/`"
        )));
    }
    let method_text = pick(args.method, section.method, || "POST".into());
    let method = reqwest::Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
        .map_err(|_| usage(format!("--method {method_text:?} is not an HTTP method")))?;
    let body = match args.body_file.or(section.body_file) {
        Some(path) => std::fs::read(&path).map_err(|e| {
            usage(format!(
                "cannot read the request body --body-file {}: {e}; give a readable file",
                path.display()
            ))
        })?,
        None => crate::canary::example::SURVEY_JSON.as_bytes().to_vec(),
    };
    let content_type = pick(args.content_type, section.content_type, || {
        "application/json".into()
    });
    let specs = provision::build_specs(
        "canary",
        &CANARY_HOSTS,
        &section.hosts,
        &Default::default(),
        &HostOverride::default(),
    )?;
    let judge: JudgeConfig = global.config.section("judge")?;
    let config_path = global.config.path().unwrap_or(Path::new("pipeline.toml"));
    let prometheus = prom_canary::resolve(args.prometheus, section.prometheus, config_path)
        .map_err(|e| match e.is_usage() {
            true => usage(e.to_string()),
            false => anyhow::Error::new(e),
        })?;
    Ok(CanaryPlan {
        provider,
        environment: args.env,
        repo: args
            .repo
            .or(section.repo)
            .unwrap_or_else(|| source::DEFAULT_REPO.to_string()),
        baseline: args.baseline,
        canary: args.canary,
        specs,
        duration,
        warmup,
        rate: (rate > 0.0).then_some(rate),
        concurrency,
        split,
        probe: Probe {
            method,
            path: endpoint,
            content_type: Some(content_type),
            body,
        },
        report_dir: args.report_dir.unwrap_or_else(|| {
            PathBuf::from(run::timestamped_dir(
                "canary-report",
                std::time::SystemTime::now(),
            ))
        }),
        keep: args.keep,
        judge,
        roles: match args.roles {
            Some(dir) => Some(dir),
            None => global.config.string("roles_dir")?.map(PathBuf::from),
        },
        prometheus,
    })
}

pub async fn run(args: CanaryArgs, global: &Global) -> anyhow::Result<Outcome> {
    let monitor_inventory = args.monitor_inventory.clone();
    let version = format!("{}..{}", args.baseline, args.canary);
    let plan = resolve(args, global)?;
    let result = execute(&plan, global).await?;
    let event = crate::commands::monitor_events::Event::new(
        "canary",
        crate::commands::deploy::App::Checkbox.display(),
        &version,
        result.judgement.verdict.as_str(),
    );
    crate::commands::monitor_events::record(
        &monitor_inventory,
        &global.state_dir,
        &global.ui,
        &event,
    )
    .await;
    Ok(result.judgement.verdict.outcome())
}

/// Runs the whole canary, then destroys the hosts unless `plan.keep` (also after an error).
pub async fn execute(plan: &CanaryPlan, global: &Global) -> anyhow::Result<CanaryResult> {
    let mut times = StageTimes::default();
    let hosts = crate::signals::leftover(
        format!(
            "canary hosts blue, green and proxy (environment {}); destroy them with `pipeline prod down --env {} --provider {}`",
            plan.environment,
            plan.environment,
            provision::kind_name(plan.provider)
        ),
        format!(
            "destroyed the canary hosts blue, green and proxy (environment {})",
            plan.environment
        ),
        None,
    );
    // A signal stops the stages wherever they are (ansible-playbook is stopped by `signals` itself);
    // the teardown below runs as after an error.
    let result = tokio::select! {
        r = stages(plan, global, &mut times) => r,
        sig = crate::signals::cancelled() => {
            Err(anyhow::Error::from(crate::signals::Interrupted(sig)).context("the canary was stopped"))
        }
    };
    let ui = &global.ui;
    if plan.keep {
        hosts.keep();
        ui.info(format!(
            "canary: keeping blue, green and proxy (environment {}); destroy them with `pipeline prod down --env {} --provider {}`",
            plan.environment,
            plan.environment,
            provision::kind_name(plan.provider)
        ));
    } else {
        ui.info(format!(
            "canary: destroying blue, green and proxy (environment {})",
            plan.environment
        ));
        let down = times
            .time(
                "teardown",
                provision::down(global, plan.provider, &plan.environment),
            )
            .await;
        match down {
            Ok(_) => drop(hosts),
            Err(e) => {
                ui.warn(format!(
                    "could not destroy the canary hosts: {}",
                    crate::exit::error_message(&e)
                ));
                hosts.keep();
            }
        }
    }
    let mut result = result?;
    result.times = times;
    Ok(result)
}

async fn stages(
    plan: &CanaryPlan,
    global: &Global,
    times: &mut StageTimes,
) -> anyhow::Result<CanaryResult> {
    let ui = &global.ui;
    let work_dir = plan.work_dir(global);
    crate::fsutil::ensure_private_dir(&work_dir).with_context(|| {
        format!(
            "cannot create the canary's state directory {}",
            work_dir.display()
        )
    })?;
    std::fs::create_dir_all(&plan.report_dir).with_context(|| {
        format!(
            "cannot create the report directory {}",
            plan.report_dir.display()
        )
    })?;

    // 1. Hosts.
    ui.info(format!(
        "canary: [1/6] provisioning blue, green and proxy ({}, environment {})",
        provision::kind_name(plan.provider),
        plan.environment
    ));
    let request = UpRequest::new(
        plan.provider,
        plan.environment.clone(),
        plan.specs.clone(),
        plan.inventory(global),
        "canary",
    );
    let provisioned = times
        .time("provision", provision::up(global, &request))
        .await
        .context("failed to provision the canary hosts")?;
    let address = |name: &str| {
        provisioned
            .hosts
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| h.ip)
            .with_context(|| format!("the provider returned no address for host {name}"))
    };

    // 2. Code: cloned here, one tree archive per branch.
    ui.info(format!(
        "canary: [2/6] fetching {} and exporting {} and {}",
        plan.repo, plan.baseline, plan.canary
    ));
    let (repo, baseline_branch, canary_branch, export_dir) = (
        plan.repo.clone(),
        plan.baseline.clone(),
        plan.canary.clone(),
        work_dir.clone(),
    );
    let exports = times
        .time(
            "fetch",
            tokio::task::spawn_blocking(move || -> Result<_, source::SourceError> {
                let src = Source::fetch(&repo, &export_dir)?;
                Ok((
                    src.export(&baseline_branch, &export_dir)?,
                    src.export(&canary_branch, &export_dir)?,
                ))
            }),
        )
        .await
        .context("the fetch task panicked")?
        .context("failed to fetch the code to deploy")?;
    let arm = |label: &str, host: &str, e: &source::Export| -> anyhow::Result<ArmDeploy> {
        Ok(ArmDeploy {
            label: label.to_string(),
            host: host.to_string(),
            address: address(host)?,
            branch: e.branch.clone(),
            commit: e.commit.clone(),
            release: e.tree.clone(),
            archive: std::path::absolute(&e.archive)
                .unwrap_or_else(|_| e.archive.clone())
                .display()
                .to_string(),
        })
    };
    let baseline = arm(run::BASELINE_LABEL, run::BASELINE_HOST, &exports.0)?;
    let canary = arm(run::CANARY_LABEL, run::CANARY_HOST, &exports.1)?;
    let proxy_ip = address(run::PROXY_HOST)?;

    // 3. Deploy with Ansible: preview service + node_exporter on blue and green, the split proxy.
    ui.info(format!(
        "canary: [3/6] deploying {} on blue, {} on green, nginx split {}% to green on proxy",
        baseline.branch, canary.branch, plan.split
    ));
    let mut playbook = PlaybookRun::new(
        "canary",
        run::PLAYBOOK,
        plan.inventory(global),
        global.state_dir.clone(),
    );
    playbook.extra_vars = run::playbook_vars(&baseline, &canary, plan.split);
    playbook.roles = plan
        .roles
        .clone()
        .map_or(RolesSource::Embedded, RolesSource::Dir);
    let deploy_ui = ui.clone();
    let deploy: DeployReport = times
        .time(
            "deploy",
            tokio::task::spawn_blocking(move || playbook.run(&deploy_ui)),
        )
        .await
        .context("the deploy task panicked")?
        .context("failed to deploy the canary")?;
    write_json(&plan.report_dir.join("deploy.json"), &deploy)?;
    if !deploy.success {
        anyhow::bail!(
            "the canary deploy failed, so there is nothing to judge:\n{}\n(the deploy report is in {})",
            deploy.render_text(),
            plan.report_dir.join("deploy.json").display()
        );
    }

    // 4. Health: the baseline answers the load's request with a 2xx (else there is no reference), the
    // canary's answer is logged (failing is data), and the proxy routes to both.
    ui.info("canary: [4/6] checking both arms answer, directly and through the proxy");
    let proxy_url = format!("http://{proxy_ip}:{}{}", run::PROXY_PORT, plan.probe.path);
    let client = reqwest::Client::builder()
        .timeout(run::CLIENT_TIMEOUT)
        .build()
        .context("failed to build an HTTP client")?;
    times
        .time("health", async {
            let patience = Duration::from_secs(30);
            run::check_baseline(&client, &baseline, &plan.probe, patience).await?;
            match run::check_arm(&client, &canary, &plan.probe, patience).await {
                Ok(a) if a.is_success() => {}
                Ok(a) => ui.warn(format!(
                    "canary: the canary ({}) answered the probe with HTTP {} ({:?}); going on, the load will show it",
                    canary.branch, a.status, a.body_start
                )),
                Err(e) => ui.warn(format!("canary: {e}; going on, the load will show it")),
            }
            run::check_proxy(&client, &proxy_url, &plan.probe, 50).await
        })
        .await?;

    // 5. Load through the proxy while sampling blue and green every second.
    ui.info(format!(
        "canary: [5/6] load for {} through {proxy_url} ({}, {} connections), sampling blue and green",
        humantime::format_duration(plan.duration),
        plan.rate.map(|r| format!("{r} req/s")).unwrap_or_else(|| "as fast as possible".into()),
        plan.concurrency
    ));
    if !plan.warmup.is_zero() {
        times.time("warmup", warm_up(plan, &proxy_url)).await?;
    }
    let load_started = std::time::SystemTime::now();
    let (load_run, hosts) = times
        .time(
            "load",
            load_and_sample(plan, &proxy_url, &baseline, &canary, global),
        )
        .await?;
    let load_ended = std::time::SystemTime::now();

    // 6. Samples, judgement, report.
    ui.info("canary: [6/6] judging and writing the report");
    let split = samples::split_requests(
        load_run.records().map(|r| RequestObs {
            offset_s: r.offset.as_secs_f64(),
            latency_ms: r.latency.as_secs_f64() * 1e3,
            status: r.status(),
            bytes: r.bytes,
            backend: r.backend,
        }),
        run::BASELINE_LABEL,
        run::CANARY_LABEL,
    );
    let mut input = samples::judge_input(&split, &hosts[0], &hosts[1]);
    if let Some(queries) = &plan.prometheus {
        let metrics = queries.query(load_started, load_ended);
        let (metrics, notes) = metrics.await.with_context(|| {
            format!(
                "failed to query the [canary] metrics from {}",
                queries.url()
            )
        })?;
        notes.iter().for_each(|n| ui.warn(n));
        input.metrics.extend(metrics);
    }
    let samples_file = plan.report_dir.join("samples.json");
    write_json(&samples_file, &input)?;
    write_json(&plan.report_dir.join("hosts.json"), &hosts)?;
    let judging = std::time::Instant::now();
    let judgement = judge::judge(&input, &plan.judge).context("failed to judge the samples")?;
    times.record("judge", judging.elapsed());
    let extras = Extras {
        run: Some(run_summary(
            plan,
            &baseline,
            &canary,
            &proxy_url,
            &load_run,
            &split,
            &hosts,
            times,
            &samples_file,
        )),
        deploy: Some(deploy_summary(
            &deploy,
            &plan.report_dir.join("deploy.json"),
        )),
    };
    let files = report::write_all(&plan.report_dir, &judgement, &extras).with_context(|| {
        format!(
            "failed to write the report to {}",
            plan.report_dir.display()
        )
    })?;
    let mut stdout = std::io::stdout().lock();
    report::print_terminal(&mut stdout, &judgement, &extras)
        .context("failed to print the report")?;
    Ok(CanaryResult {
        judgement,
        files,
        times: StageTimes::default(),
    })
}

/// Runs the load through the proxy and, at the same time, the node_exporter sampler on blue and green;
/// the sampler stops when the load ends.
/// The load generator's plan: the probe request through the proxy for `window`, at the plan's rate.
fn load_plan(plan: &CanaryPlan, proxy_url: &str, window: Duration) -> anyhow::Result<LoadPlan> {
    let mut load_plan = LoadPlan::new(proxy_url).context("invalid proxy URL for the load")?;
    load_plan.method = plan
        .probe
        .method
        .as_str()
        .parse()
        .context("invalid method")?;
    load_plan.body = plan.probe.body.clone().into();
    if let Some(ct) = &plan.probe.content_type {
        load_plan.headers.insert(
            hyper::header::CONTENT_TYPE,
            ct.parse()
                .with_context(|| format!("invalid content type {ct:?}"))?,
        );
    }
    // Longer than the proxy's own timeouts: a hung arm is answered 504 by the proxy, tagged with its arm.
    load_plan.timeout = run::CLIENT_TIMEOUT;
    load_plan.concurrency = plan.concurrency;
    load_plan.rate = plan.rate;
    load_plan.stop = Stop::Duration(window);
    load_plan.backend_header = Some(hyper::header::HeaderName::from_static("x-canary-backend"));
    Ok(load_plan)
}

/// Sends the warm-up load (not recorded): a freshly (re)started arm is slower for its first seconds
/// (JIT, caches, connection pools), which would be judged against an arm that has been running for hours.
async fn warm_up(plan: &CanaryPlan, proxy_url: &str) -> anyhow::Result<()> {
    let run = load::run(
        load_plan(plan, proxy_url, plan.warmup)?,
        &mut load::NoProgress,
    )
    .await
    .context("the warm-up load failed")?;
    drop(run);
    Ok(())
}

async fn load_and_sample(
    plan: &CanaryPlan,
    proxy_url: &str,
    baseline: &ArmDeploy,
    canary: &ArmDeploy,
    global: &Global,
) -> anyhow::Result<(LoadRun, Vec<HostSeries>)> {
    let load_plan = load_plan(plan, proxy_url, plan.duration)?;
    // On the sandbox each arm's own cgroup; on droplets node_exporter (the droplet is the arm).
    let (targets, scraper) = match plan.provider {
        ProviderKind::Local => {
            let arms = [baseline, canary].map(|a| {
                (
                    a.host.clone(),
                    crate::providers::local::host_cgroup_dirs(&plan.environment, &a.host),
                )
            });
            (
                arms.iter()
                    .map(|(h, _)| (h.clone(), cgroup::target(h)))
                    .collect::<Vec<_>>(),
                HostScraper::Cgroup(CgroupScraper::new(arms)),
            )
        }
        ProviderKind::Digitalocean => (
            vec![
                (baseline.host.clone(), baseline.node_exporter_url()),
                (canary.host.clone(), canary.node_exporter_url()),
            ],
            HostScraper::Http(HttpScraper::new(Duration::from_millis(900))),
        ),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let spinner = global.ui.spinner(&global.ui.multi(), "load");
    let total = plan.duration;
    let mut progress = |s: &Snapshot| {
        spinner.set_message(format!(
            "{:.0}/{:.0} s, {} requests, {} without a response",
            s.elapsed.as_secs_f64().min(total.as_secs_f64()),
            total.as_secs_f64(),
            s.requests,
            s.errors
        ));
        std::ops::ControlFlow::Continue(())
    };
    let load = async {
        let result = load::run(load_plan, &mut progress).await;
        let _ = stop_tx.send(true);
        result
    };
    let (load_run, hosts) = tokio::join!(
        load,
        metrics::sample_hosts(&scraper, &targets, Duration::from_secs(1), stop_rx)
    );
    spinner.finish_and_clear();
    Ok((load_run.context("the load generator failed")?, hosts))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("failed to serialize")?;
    text.push('\n');
    crate::fsutil::write_atomic(path, text.as_bytes(), 0o644)
        .with_context(|| format!("failed to write {}", path.display()))
}

/// The deploy as the report shows it, one line per host and role (the whole report is `deploy.json`).
fn deploy_summary(deploy: &DeployReport, file: &Path) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let secs = |s: f64| format!("{:.1} s", s);
    out.insert(
        "result".into(),
        format!(
            "{} in {}, {} changed (ansible-playbook exit status {})",
            if deploy.success {
                "succeeded"
            } else {
                "FAILED"
            },
            secs(deploy.duration_secs),
            deploy.changed(),
            deploy.ansible_rc
        )
        .into(),
    );
    for h in &deploy.hosts {
        out.insert(
            format!("host {}", h.name),
            format!(
                "ok {}, changed {}, failed {}, unreachable {}, skipped {}",
                h.stats.ok, h.stats.changed, h.stats.failures, h.stats.unreachable, h.stats.skipped
            )
            .into(),
        );
    }
    for r in &deploy.roles {
        out.insert(
            format!("role {}", r.role),
            format!(
                "{} tasks, {} changed, {} failed, {}",
                r.tasks,
                r.changed,
                r.failed,
                secs(r.duration_secs)
            )
            .into(),
        );
    }
    for f in &deploy.failures {
        out.insert(
            format!("failure on {}", f.host),
            format!("{}: {}", f.task, f.message).into(),
        );
    }
    out.insert("full report".into(), file.display().to_string().into());
    serde_json::Value::Object(out)
}

#[allow(clippy::too_many_arguments)]
fn run_summary(
    plan: &CanaryPlan,
    baseline: &ArmDeploy,
    canary: &ArmDeploy,
    proxy_url: &str,
    load_run: &LoadRun,
    split: &RequestSplit,
    hosts: &[HostSeries],
    times: &StageTimes,
    samples_file: &Path,
) -> serde_json::Value {
    let summary = load_run.summary();
    serde_json::json!({
        "baseline": format!("{} ({}) on {} {}", baseline.branch, &baseline.commit[..baseline.commit.len().min(10)], baseline.host, baseline.address),
        "canary": format!("{} ({}) on {} {}", canary.branch, &canary.commit[..canary.commit.len().min(10)], canary.host, canary.address),
        "repository": plan.repo,
        "provider": provision::kind_name(plan.provider),
        "environment": plan.environment,
        "proxy": proxy_url,
        "split": format!("{}% canary", plan.split),
        "load": format!(
            "{} {} for {}, {} connections, {}",
            plan.probe.method,
            plan.probe.path,
            humantime::format_duration(plan.duration),
            plan.concurrency,
            plan.rate.map(|r| format!("{r} req/s (open model)")).unwrap_or_else(|| "closed model".into())
        ),
        "requests": format!(
            "{} total: {} baseline ({} 5xx), {} canary ({} 5xx), {} without an arm ({} without a response)",
            summary.requests,
            split.baseline.requests,
            split.baseline.errors,
            split.canary.requests,
            split.canary.errors,
            split.unattributed.requests,
            split.unattributed.no_response
        ),
        "host_samples": hosts.iter().map(|h| format!(
            "{}: {} samples, {} failed scrapes{}",
            h.host,
            h.samples.len(),
            h.failed_scrapes,
            h.last_error.as_ref().map(|e| format!(" (last: {e})")).unwrap_or_default()
        )).collect::<Vec<_>>().join("; "),
        "stages": times.line(),
        "host_metrics": match plan.provider {
            ProviderKind::Local => "each arm's own cgroup on this machine, once a second: CPU time as a share of all the machine's cores, memory in use as a share of the container's limit (or of the machine's memory without one)",
            ProviderKind::Digitalocean => "node_exporter on each droplet: CPU busy % and memory used %, once a second",
        },
        "samples": format!("{} (re-judge with `pipeline analyze {}`)", samples_file.display(), samples_file.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::settings::Config;
    use clap::Parser;

    fn global(config: &str) -> Global {
        Global {
            config: Config::parse(config, "pipeline.toml".into()).unwrap(),
            state_dir: ".pipeline".into(),
            ui: crate::ui::Ui::new(true),
        }
    }

    fn plan(args: &[&str], config: &str) -> anyhow::Result<CanaryPlan> {
        let argv = ["pipeline", "canary"].iter().chain(args).copied();
        let Command::Canary(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!("parsed as canary")
        };
        resolve(args, &global(config))
    }

    fn is_usage_error(err: &anyhow::Error) -> bool {
        err.chain()
            .any(|e| e.is::<UsageError>() || e.is::<crate::settings::ConfigError>())
    }

    #[test]
    fn defaults_are_the_issue_s_one_minute_even_split_of_the_survey_preview() {
        let p = plan(&["master", "broken", "--provider", "local"], "").unwrap();
        assert_eq!(
            (p.baseline.as_str(), p.canary.as_str()),
            ("master", "broken")
        );
        assert_eq!(p.repo, source::DEFAULT_REPO);
        assert_eq!(p.duration, Duration::from_secs(60));
        assert_eq!(p.warmup, Duration::from_secs(5));
        assert_eq!(p.split, 50);
        assert_eq!(p.rate, Some(100.0));
        assert_eq!(p.probe.method, reqwest::Method::POST);
        assert_eq!(p.probe.path, "/preview");
        assert_eq!(p.probe.body, crate::canary::example::SURVEY_JSON.as_bytes());
        assert_eq!(p.environment, "canary");
        assert!(!p.keep);
        assert!(
            p.report_dir.starts_with("canary-report"),
            "{}",
            p.report_dir.display()
        );
        let names: Vec<&str> = p.specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["blue", "green", "proxy"]);
    }

    #[test]
    fn flags_beat_the_config_section_which_beats_defaults() {
        let config =
            "[canary]\nduration = \"30s\"\nsplit = 20\nrate = 50.0\nendpoint = \"/render\"\nsize = \"s-2vcpu-4gb\"\n";
        let p = plan(
            &[
                "a",
                "b",
                "--provider",
                "local",
                "--split",
                "10",
                "--rate",
                "0",
            ],
            config,
        )
        .unwrap();
        assert_eq!(p.duration, Duration::from_secs(30));
        assert_eq!(p.split, 10);
        assert_eq!(p.rate, None, "--rate 0 is the closed model");
        assert_eq!(p.probe.path, "/render");
        assert!(p.specs.iter().all(|s| s.size == "s-2vcpu-4gb"));
    }

    #[test]
    fn out_of_range_values_are_usage_errors_that_say_why() {
        for (args, needle) in [
            (vec!["--split", "0"], "1 to 99 percent"),
            (vec!["--split", "100"], "1 to 99 percent"),
            (vec!["--concurrency", "0"], "at least one connection"),
            (vec!["--duration", "0s"], "at least 1s"),
            (vec!["--endpoint", "preview"], "must start with `/`"),
            (vec!["--method", "GE T"], "not an HTTP method"),
        ] {
            let mut argv = vec!["master", "broken", "--provider", "local"];
            argv.extend(args);
            let err = plan(&argv, "").unwrap_err();
            assert!(is_usage_error(&err), "{err:#}");
            assert!(format!("{err:#}").contains(needle), "{err:#}");
        }
    }

    #[test]
    fn prometheus_metrics_in_the_canary_section_are_checked_before_deploying() {
        let inline = "[canary]\nprometheus = 'http://127.0.0.1:9090'\n\
                      [[canary.metric]]\nname = 'cpu'\nquery = 'cpu{host=\"$arm\"}'\n";
        let p = plan(&["a", "b", "--provider", "local"], inline).unwrap();
        assert!(p.prometheus.is_some());
        let p = plan(&["a", "b", "--provider", "local"], "").unwrap();
        assert!(p.prometheus.is_none());
        let no_server = "[canary]\n[[canary.metric]]\nname = 'cpu'\nquery = 'cpu{host=\"$arm\"}'\n";
        let err = plan(&["a", "b", "--provider", "local"], no_server).unwrap_err();
        assert!(
            is_usage_error(&err) && format!("{err:#}").contains("--prometheus"),
            "{err:#}"
        );
        let err = plan(
            &["a", "b", "--provider", "local"],
            "[canary]\nprometheus_stepp = '5s'\n",
        )
        .unwrap_err();
        assert!(
            is_usage_error(&err) && format!("{err:#}").contains("prometheus_stepp"),
            "{err:#}"
        );
    }

    #[test]
    fn a_typo_in_the_canary_section_is_a_config_error() {
        let err = plan(&["a", "b", "--provider", "local"], "[canary]\nsplt = 3\n").unwrap_err();
        assert!(is_usage_error(&err), "{err:#}");
        assert!(format!("{err:#}").contains("splt"), "{err:#}");
    }
}
