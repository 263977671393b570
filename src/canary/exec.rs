//! The canary's executor: runs the [`Plan`](super::plan::Plan)'s stages in order against a [`World`],
//! numbering ("[k/N]") and timing them, judges sequentially while the load runs (a look every
//! `look_every`; a final FAIL stops the load unless `--no-early-stop`), writes the report, and tears the
//! hosts down (after a verdict, an error or a signal) unless `--keep`.

use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use crate::canary::judge::{self, sequential::SequentialJudge, Judgement};
use crate::canary::load::{LoadPlan, Snapshot, Stop, Tap};
use crate::canary::metrics::HostSeries;
use crate::canary::plan::Stage;
use crate::canary::report::{Extras, ReportFiles};
use crate::canary::run::{self, ArmDeploy, StageTimes};
use crate::canary::samples::{self, RequestObs};
use crate::canary::settings::CanarySettings;
use crate::canary::world::World;
use crate::provision;
use crate::ui::Ui;

mod summary;
#[cfg(test)]
mod tests;

/// What a finished run produced.
#[derive(Debug)]
pub struct CanaryResult {
    pub judgement: Judgement,
    pub files: ReportFiles,
    pub times: StageTimes,
}

/// Runs the whole canary, then destroys the hosts unless `s.keep` (also after an error or a signal).
pub async fn execute<W: World>(
    s: &CanarySettings,
    world: &mut W,
    ui: &Ui,
) -> anyhow::Result<CanaryResult> {
    let mut times = StageTimes::default();
    let down_hint = format!(
        "pipeline prod down --env {} --provider {}",
        s.environment,
        provision::kind_name(s.provider)
    );
    let hosts = crate::signals::leftover(
        format!(
            "canary hosts blue, green and proxy (environment {}); destroy them with `{down_hint}`",
            s.environment
        ),
        format!(
            "destroyed the canary hosts blue, green and proxy (environment {})",
            s.environment
        ),
        None,
    );
    // A signal stops the stages wherever they are (ansible-playbook is stopped by `signals` itself);
    // the teardown below runs as after an error.
    let result = tokio::select! {
        r = stages(s, world, ui, &mut times) => r,
        sig = crate::signals::cancelled() => {
            Err(anyhow::Error::from(crate::signals::Interrupted(sig)).context("the canary was stopped"))
        }
    };
    if s.keep {
        hosts.keep();
        ui.info(format!(
            "canary: keeping blue, green and proxy (environment {}); destroy them with `{down_hint}`",
            s.environment
        ));
    } else {
        ui.info(format!(
            "canary: destroying blue, green and proxy (environment {})",
            s.environment
        ));
        match times.time("teardown", world.teardown()).await {
            Ok(()) => drop(hosts),
            Err(e) => {
                ui.warn(format!(
                    "could not destroy the canary hosts: {}; destroy them with `{down_hint}`",
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

fn announce(ui: &Ui, stage: Stage, what: impl AsRef<str>) {
    let k = Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0) + 1;
    ui.info(format!(
        "canary: [{k}/{}] {}",
        Stage::ALL.len(),
        what.as_ref()
    ));
}

async fn stages<W: World>(
    s: &CanarySettings,
    world: &mut W,
    ui: &Ui,
    times: &mut StageTimes,
) -> anyhow::Result<CanaryResult> {
    std::fs::create_dir_all(&s.report_dir).with_context(|| {
        format!(
            "cannot create the report directory {}",
            s.report_dir.display()
        )
    })?;
    let plan = super::plan::plan(s);
    let what = |stage: Stage| &plan.stages[stage as usize].what;

    announce(ui, Stage::Provision, what(Stage::Provision));
    let addresses = times.time("provision", world.provision()).await?;
    let address = |name: &str| {
        addresses
            .iter()
            .find(|(h, _)| h == name)
            .and_then(|(_, ip)| *ip)
            .with_context(|| format!("the provider returned no address for host {name}"))
    };

    announce(ui, Stage::Fetch, what(Stage::Fetch));
    let (b, c) = times.time("fetch", world.fetch()).await?;
    let arm = |label: &str, host: &str, e: &crate::canary::source::Export| {
        anyhow::Ok(ArmDeploy {
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
    let baseline = arm(run::BASELINE_LABEL, run::BASELINE_HOST, &b)?;
    let canary = arm(run::CANARY_LABEL, run::CANARY_HOST, &c)?;
    let proxy_ip = address(run::PROXY_HOST)?;

    announce(ui, Stage::Deploy, what(Stage::Deploy));
    let deploy = times
        .time("deploy", world.deploy(&baseline, &canary))
        .await?;
    let deploy_file = s.report_dir.join("deploy.json");
    summary::write_json(&deploy_file, &deploy)?;
    if !deploy.success {
        anyhow::bail!(
            "the canary deploy failed, so there is nothing to judge:\n{}\n(the deploy report is in {})",
            deploy.render_text(),
            deploy_file.display()
        );
    }

    announce(ui, Stage::Health, what(Stage::Health));
    let proxy_url = world.proxy_url(proxy_ip, &s.probe.path);
    times
        .time("health", world.health(&baseline, &canary, &proxy_url))
        .await?;

    announce(ui, Stage::Load, what(Stage::Load));
    if !s.warmup.is_zero() {
        let warm = load_plan(s, &proxy_url, s.warmup, None)?;
        times.time("warmup", world.warmup(warm)).await?;
    }
    let tap = Tap::new();
    let mut looks = Looks::new(s, ui, tap.clone())?;
    let load = load_plan(
        s,
        &proxy_url,
        s.duration,
        looks.judge.is_some().then_some(tap),
    )?;
    let load_started = SystemTime::now();
    let (load_run, hosts) = {
        let spinner = ui.spinner(&ui.multi(), "load");
        let mut progress = |snap: &Snapshot| {
            spinner.set_message(format!(
                "{:.0}/{:.0} s, {} requests, {} without a response",
                snap.elapsed.as_secs_f64().min(s.duration.as_secs_f64()),
                s.duration.as_secs_f64(),
                snap.requests,
                snap.errors
            ));
            looks.on_progress(snap)
        };
        let r = times
            .time(
                "load",
                world.load(load, [&baseline, &canary], &mut progress),
            )
            .await;
        spinner.finish_and_clear();
        r?
    };
    let load_ended = SystemTime::now();

    announce(ui, Stage::Judge, what(Stage::Judge));
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
    let (external, notes) = world.metrics(load_started, load_ended).await?;
    for n in &notes {
        ui.warn(n);
    }
    input.metrics.extend(external);
    let samples_file = s.report_dir.join("samples.json");
    summary::write_json(&samples_file, &input)?;
    summary::write_json(&s.report_dir.join("hosts.json"), &hosts)?;
    let judging = std::time::Instant::now();
    let judgement = match looks.judge.take() {
        Some(mut seq) => {
            // The last look, on every sample, unless a FAIL already stopped the load; then that look
            // is judged again with the host samples up to it (they come only with the load's end).
            if load_run.stopped_early() {
                looks.amend(&mut seq, &hosts)?;
            } else {
                let t = load_run
                    .elapsed()
                    .as_secs_f64()
                    .min(s.duration.as_secs_f64());
                seq.look(t, &input, true)
                    .context("failed to judge the samples")?;
            }
            seq.finish()
                .context("the sequential judge has no final look")?
        }
        None => judge::judge(&input, &s.judge).context("failed to judge the samples")?,
    };
    times.record("judge", judging.elapsed());
    let extras = Extras {
        run: Some(crate::canary::report::RunInfo::Canary(Box::new(
            summary::run_summary(
                s,
                &baseline,
                &canary,
                &proxy_url,
                &load_run,
                &split,
                &hosts,
                times,
                &samples_file,
            ),
        ))),
        deploy: Some(summary::deploy_summary(&deploy, &deploy_file)),
    };
    let files = world.report(&s.report_dir, &judgement, &extras)?;
    Ok(CanaryResult {
        judgement,
        files,
        times: StageTimes::default(),
    })
}

/// The sequential judge's looks while the load runs.
struct Looks<'a> {
    ui: &'a Ui,
    /// `None`: judged once after the window (Prometheus metrics are queried only then).
    judge: Option<SequentialJudge>,
    tap: Tap,
    every: Duration,
    window: Duration,
    next: Duration,
    early_stop: bool,
    so_far: Vec<crate::canary::load::Tapped>,
    /// The time of the look whose FAIL stopped the load.
    stopped_at: Option<f64>,
}

impl<'a> Looks<'a> {
    fn new(s: &CanarySettings, ui: &'a Ui, tap: Tap) -> anyhow::Result<Self> {
        let empty = no_samples(run::BASELINE_HOST);
        let shape = samples::judge_input(
            &samples::split_requests([], run::BASELINE_LABEL, run::CANARY_LABEL),
            &empty,
            &no_samples(run::CANARY_HOST),
        );
        let judge = match s.prometheus {
            Some(_) => None,
            None => Some(
                SequentialJudge::new(&shape, &s.judge, s.look_every.as_secs_f64())
                    .context("invalid judge settings")?,
            ),
        };
        Ok(Looks {
            ui,
            judge,
            tap,
            every: s.look_every,
            window: s.duration,
            next: s.look_every,
            early_stop: s.early_stop,
            so_far: Vec::new(),
            stopped_at: None,
        })
    }

    /// The per-request samples of the looks so far with `hosts`' samples, and the requests per arm.
    fn input(&self, baseline: &HostSeries, canary: &HostSeries) -> (judge::JudgeInput, (u64, u64)) {
        let split = samples::split_requests(
            self.so_far.iter().map(|r| RequestObs {
                offset_s: r.offset_s,
                latency_ms: r.latency_ms,
                status: r.status,
                bytes: r.bytes,
                backend: r.backend.as_deref(),
            }),
            run::BASELINE_LABEL,
            run::CANARY_LABEL,
        );
        let n = (split.baseline.requests, split.canary.requests);
        (samples::judge_input(&split, baseline, canary), n)
    }

    /// Judges the look that stopped the load again with the host samples taken up to it: the same
    /// requests, and the arms' CPU and memory instead of no data.
    fn amend(&self, seq: &mut SequentialJudge, hosts: &[HostSeries]) -> anyhow::Result<()> {
        let (Some(t), [baseline, canary, ..]) = (self.stopped_at, hosts) else {
            return Ok(());
        };
        let upto = judge::sequential::truncate(&self.input(baseline, canary).0, t);
        seq.amend_last_look(&upto)
            .context("failed to judge the host samples up to the early stop")?;
        Ok(())
    }

    /// Takes an interim look when one is due (the last look is taken after the load, on every sample).
    fn on_progress(&mut self, snap: &Snapshot) -> ControlFlow<()> {
        if self.judge.is_none() {
            return ControlFlow::Continue(());
        }
        if snap.elapsed < self.next || self.next >= self.window {
            return ControlFlow::Continue(());
        }
        let t = self.next;
        while self.next <= snap.elapsed {
            self.next += self.every;
        }
        self.so_far.extend(self.tap.drain());
        let (input, n) = self.input(
            &no_samples(run::BASELINE_HOST),
            &no_samples(run::CANARY_HOST),
        );
        let t_s = t.as_secs_f64();
        let upto = judge::sequential::truncate(&input, t_s);
        let Some(judge) = &mut self.judge else {
            return ControlFlow::Continue(());
        };
        match judge.look(t_s, &upto, false) {
            Ok(j) => {
                self.ui.info(format!(
                    "canary: look at {t_s:.1} s ({} baseline, {} canary requests): {}{}",
                    n.0,
                    n.1,
                    j.verdict.as_str(),
                    if j.verdict == judge::Verdict::Fail {
                        " (final)"
                    } else {
                        ""
                    }
                ));
                if j.verdict == judge::Verdict::Fail && self.early_stop {
                    self.ui.info(format!("canary: stopping the load early at {t_s:.1} s: the verdict is a final FAIL"));
                    self.stopped_at = Some(t_s);
                    return ControlFlow::Break(());
                }
            }
            Err(e) => self
                .ui
                .warn(format!("canary: the look at {t_s:.1} s failed: {e}")),
        }
        ControlFlow::Continue(())
    }
}

/// The load generator's plan: the probe request through the proxy for `window`, at the settings' rate.
fn load_plan(
    s: &CanarySettings,
    proxy_url: &str,
    window: Duration,
    tap: Option<Tap>,
) -> anyhow::Result<LoadPlan> {
    let mut p = LoadPlan::new(proxy_url).context("invalid proxy URL for the load")?;
    p.method = s.probe.method.as_str().parse().context("invalid method")?;
    p.body = s.probe.body.clone().into();
    if let Some(ct) = &s.probe.content_type {
        p.headers.insert(
            http::header::CONTENT_TYPE,
            ct.parse()
                .with_context(|| format!("invalid content type {ct:?}"))?,
        );
    }
    // Longer than the proxy's own timeouts: a hung arm is answered 504 by the proxy, tagged with its arm.
    p.timeout = run::CLIENT_TIMEOUT;
    p.concurrency = s.concurrency;
    p.rate = s.rate;
    p.stop = Stop::Duration(window);
    p.backend_header = Some(http::header::HeaderName::from_static("x-canary-backend"));
    p.tap = tap;
    Ok(p)
}

/// A host without samples (the interim looks judge the per-request metrics; host metrics come at the end).
fn no_samples(host: &str) -> HostSeries {
    HostSeries {
        host: host.into(),
        url: String::new(),
        samples: Vec::new(),
        failed_scrapes: 0,
        last_error: None,
    }
}
