//! What the canary's stages do to the world, behind one small trait: [`World`]. [`RealWorld`] provisions
//! with the configured provider, clones with git, deploys with ansible-playbook and scrapes the arms; the
//! executor ([`super::exec`]) only sees the trait, so its control flow is tested against a loopback fake.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use crate::ansible::{DeployReport, PlaybookRun, RolesSource};
use crate::canary::cgroup::{self, CgroupScraper, HostScraper};
use crate::canary::judge::{Judgement, MetricInput};
use crate::canary::load::{self, LoadPlan, LoadRun, Progress};
use crate::canary::metrics::{self, HostSeries, HttpScraper};
use crate::canary::report::{self, Extras, ReportFiles};
use crate::canary::run::{self, ArmDeploy};
use crate::canary::settings::CanarySettings;
use crate::canary::source::{self, Export, RepoClone};
use crate::providers::local::plan as local_plan;
use crate::providers::ProviderKind;
use crate::provision::{self, UpRequest};
use crate::settings::Global;

/// The effects of a canary run's stages.
#[allow(async_fn_in_trait)]
pub trait World {
    /// Creates (or reuses) blue, green and proxy; their addresses by host name.
    async fn provision(&mut self) -> anyhow::Result<Vec<(String, Option<Ipv4Addr>)>>;
    /// The baseline's and the canary's tree archives.
    async fn fetch(&mut self) -> anyhow::Result<(Export, Export)>;
    /// Deploys both arms and the split proxy.
    async fn deploy(
        &mut self,
        baseline: &ArmDeploy,
        canary: &ArmDeploy,
    ) -> anyhow::Result<DeployReport>;
    /// The proxy's URL for `path`.
    fn proxy_url(&self, proxy: Ipv4Addr, path: &str) -> String {
        format!("http://{proxy}:{}{path}", run::PROXY_PORT)
    }
    /// Fails when the baseline does not answer 2xx or the proxy does not route to both arms; a canary
    /// that fails is only warned about (the load shows it).
    async fn health(
        &mut self,
        baseline: &ArmDeploy,
        canary: &ArmDeploy,
        proxy_url: &str,
    ) -> anyhow::Result<()>;
    /// Runs `plan` (the warm-up: not recorded).
    async fn warmup(&mut self, plan: LoadPlan) -> anyhow::Result<()>;
    /// Runs `plan` while sampling both arms' hosts; `progress` may stop it early.
    async fn load(
        &mut self,
        plan: LoadPlan,
        arms: [&ArmDeploy; 2],
        progress: &mut dyn Progress,
    ) -> anyhow::Result<(LoadRun, Vec<HostSeries>)>;
    /// External metrics (Prometheus) over the load window, with notes to warn about.
    async fn metrics(
        &mut self,
        from: SystemTime,
        to: SystemTime,
    ) -> anyhow::Result<(Vec<MetricInput>, Vec<String>)>;
    /// Destroys the hosts.
    async fn teardown(&mut self) -> anyhow::Result<()>;
    /// Writes the report into `dir` and shows it.
    fn report(
        &mut self,
        dir: &Path,
        judgement: &Judgement,
        extras: &Extras,
    ) -> anyhow::Result<ReportFiles>;
}

/// The real world: the provider, git, ansible-playbook, the arms' cgroups or node_exporter.
pub struct RealWorld<'a> {
    pub settings: &'a CanarySettings,
    pub global: &'a Global,
}

impl World for RealWorld<'_> {
    async fn provision(&mut self) -> anyhow::Result<Vec<(String, Option<Ipv4Addr>)>> {
        let s = self.settings;
        crate::fsutil::ensure_private_dir(&s.work_dir).with_context(|| {
            format!(
                "cannot create the canary's state directory {}",
                s.work_dir.display()
            )
        })?;
        let request = UpRequest::new(
            s.provider,
            s.environment.clone(),
            s.specs.clone(),
            s.inventory(),
            "canary",
        );
        let up = provision::up(self.global, &request)
            .await
            .context("failed to provision the canary hosts")?;
        Ok(up.hosts.into_iter().map(|h| (h.name, h.ip)).collect())
    }

    async fn fetch(&mut self) -> anyhow::Result<(Export, Export)> {
        let s = self.settings;
        let (repo, baseline, canary, dir) = (
            s.repo.clone(),
            s.baseline.clone(),
            s.canary.clone(),
            s.work_dir.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<_, source::SourceError> {
            let src = RepoClone::fetch(&repo, &dir)?;
            Ok((src.export(&baseline, &dir)?, src.export(&canary, &dir)?))
        })
        .await
        .context("the fetch task panicked")?
        .context("failed to fetch the code to deploy")
    }

    async fn deploy(
        &mut self,
        baseline: &ArmDeploy,
        canary: &ArmDeploy,
    ) -> anyhow::Result<DeployReport> {
        let s = self.settings;
        let mut playbook = PlaybookRun::new(
            "canary",
            run::PLAYBOOK,
            s.inventory(),
            self.global.state_dir.clone(),
        );
        playbook.extra_vars = run::playbook_vars(baseline, canary, s.split);
        playbook.roles = s
            .roles
            .clone()
            .map_or(RolesSource::Embedded, RolesSource::Dir);
        let ui = self.global.ui.clone();
        tokio::task::spawn_blocking(move || playbook.run(&ui))
            .await
            .context("the deploy task panicked")?
            .context("failed to deploy the canary")
    }

    async fn health(
        &mut self,
        baseline: &ArmDeploy,
        canary: &ArmDeploy,
        proxy_url: &str,
    ) -> anyhow::Result<()> {
        let probe = &self.settings.probe;
        let client = reqwest::Client::builder()
            .timeout(run::CLIENT_TIMEOUT)
            .build()
            .context("failed to build an HTTP client")?;
        let patience = Duration::from_secs(30);
        run::check_baseline(&client, baseline, probe, patience).await?;
        let ui = &self.global.ui;
        match run::check_arm(&client, canary, probe, patience).await {
            Ok(a) if a.is_success() => {}
            Ok(a) => ui.warn(format!(
                "canary: the canary ({}) answered the probe with HTTP {} ({:?}); going on, the load will show it",
                canary.branch, a.status, a.body_start
            )),
            Err(e) => ui.warn(format!("canary: {e}; going on, the load will show it")),
        }
        run::check_proxy(&client, proxy_url, probe, 50).await?;
        Ok(())
    }

    async fn warmup(&mut self, plan: LoadPlan) -> anyhow::Result<()> {
        load::run(plan, &mut load::NoProgress)
            .await
            .context("the warm-up load failed")?;
        Ok(())
    }

    async fn load(
        &mut self,
        plan: LoadPlan,
        [baseline, canary]: [&ArmDeploy; 2],
        progress: &mut dyn Progress,
    ) -> anyhow::Result<(LoadRun, Vec<HostSeries>)> {
        let s = self.settings;
        // On the sandbox each arm's own cgroup (node_exporter in a container reads the whole machine's
        // /proc); on droplets node_exporter (the droplet is the arm).
        let (targets, scraper) = match s.provider {
            ProviderKind::Local => {
                let arms = [baseline, canary].map(|a| {
                    let machine = local_plan::host_names(&s.environment, &a.host, 0).machine;
                    (a.host.clone(), machine)
                });
                (
                    arms.iter()
                        .map(|(h, _)| (h.clone(), cgroup::target(h)))
                        .collect::<Vec<_>>(),
                    HostScraper::Cgroup(CgroupScraper::new(Path::new(cgroup::CGROUP_ROOT), arms)),
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
        let load = async {
            let result = load::run(plan, progress).await;
            let _ = stop_tx.send(true);
            result
        };
        let (load_run, hosts) = tokio::join!(
            load,
            metrics::sample_hosts(&scraper, &targets, Duration::from_secs(1), stop_rx)
        );
        Ok((load_run.context("the load generator failed")?, hosts))
    }

    async fn metrics(
        &mut self,
        from: SystemTime,
        to: SystemTime,
    ) -> anyhow::Result<(Vec<MetricInput>, Vec<String>)> {
        let Some(queries) = &self.settings.prometheus else {
            return Ok((Vec::new(), Vec::new()));
        };
        let (metrics, notes) = queries.query(from, to).await.with_context(|| {
            format!(
                "failed to query the [canary] metrics from {}",
                queries.url()
            )
        })?;
        Ok((metrics, notes))
    }

    async fn teardown(&mut self) -> anyhow::Result<()> {
        let s = self.settings;
        provision::down(self.global, s.provider, &s.environment).await?;
        Ok(())
    }

    fn report(
        &mut self,
        dir: &Path,
        judgement: &Judgement,
        extras: &Extras,
    ) -> anyhow::Result<ReportFiles> {
        let files = report::write_all(dir, judgement, extras)
            .with_context(|| format!("failed to write the report to {}", dir.display()))?;
        let mut stdout = std::io::stdout().lock();
        report::print_terminal(&mut stdout, judgement, extras)
            .context("failed to print the report")?;
        Ok(files)
    }
}
