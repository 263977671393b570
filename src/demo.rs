//! `pipeline demo` as a domain: one [`DemoRequest`] (what the command's flags resolve to), the four stages
//! numbered, timed and stopped by a signal between them ([`Stages`]), what each stage brings up or deploys
//! (the prod hosts' [`UpRequest`], the bundled stand-ins of the apps, the canary's [`CanaryOptions`] filled
//! with `..Default::default()`, so a new canary or deploy flag cannot break the demo), and the closing
//! summary as text. The command runs the stages and prints.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::apps::App;
use crate::canary::example;
use crate::canary::exec::CanaryResult;
use crate::canary::judge::Verdict;
use crate::canary::settings::CanaryOptions;
use crate::providers::ProviderKind;
use crate::provision::{self, HostOverride, ProdSection, UpRequest};
use crate::settings::{Config, ConfigError};
use crate::ui::Ui;

/// The stages, in order: what `demo [n/4]` says.
pub const STAGES: u8 = 4;

/// What to run: the command's flags, resolved.
#[derive(Debug, Clone)]
pub struct DemoRequest {
    /// Length of the canary's load window.
    pub duration: Duration,
    /// Where the reports go.
    pub report_dir: PathBuf,
    /// Keep the canary hosts too.
    pub keep: bool,
    /// Environment of the prod hosts (itrust, checkbox, monitor).
    pub prod_env: String,
    /// Environment of the canary hosts (blue, green, proxy).
    pub canary_env: String,
}

impl DemoRequest {
    /// The request; without a report directory, `demo-report/<UTC time>`.
    pub fn new(
        duration: Duration,
        report_dir: Option<PathBuf>,
        keep: bool,
        prod_env: String,
        canary_env: String,
    ) -> Self {
        DemoRequest {
            duration,
            report_dir: report_dir.unwrap_or_else(|| {
                PathBuf::from(crate::canary::run::timestamped_dir(
                    "demo-report",
                    SystemTime::now(),
                ))
            }),
            keep,
            prod_env,
            canary_env,
        }
    }

    /// Where the prod hosts' inventory goes.
    pub fn inventory(&self) -> PathBuf {
        PathBuf::from("inventory.ini")
    }

    /// Stage 1: the prod hosts as local containers, `[prod]` applied.
    pub fn prod_request(&self, config: &Config) -> Result<UpRequest, ConfigError> {
        let specs =
            provision::prod_host_specs(&ProdSection::load(config)?, &HostOverride::default())?;
        Ok(UpRequest::new(
            ProviderKind::Local,
            self.prod_env.clone(),
            specs,
            self.inventory(),
            "demo",
        ))
    }

    /// What a signal leaves behind once the prod hosts exist (they stay by design).
    pub fn prod_leftover(&self) -> String {
        format!(
            "prod hosts itrust, checkbox and monitor (environment {}); destroy them with `pipeline prod down --provider local --env {}`",
            self.prod_env, self.prod_env
        )
    }

    /// Where the deploy report of `app` goes.
    pub fn deploy_report(&self, app: App) -> PathBuf {
        self.report_dir.join(format!("deploy-{}.json", app.key()))
    }

    /// Stage 4: the canary of the bundled preview service at `repo`, `master` against `broken`.
    pub fn canary_options(&self, repo: &Path) -> CanaryOptions {
        CanaryOptions {
            provider: Some(ProviderKind::Local),
            repo: Some(repo.display().to_string()),
            duration: Some(self.duration),
            report_dir: Some(self.report_dir.join("canary")),
            keep: self.keep,
            env: Some(self.canary_env.clone()),
            ..CanaryOptions::default()
        }
    }
}

/// Why the demo cannot run here, if it cannot: it builds systemd-nspawn containers.
pub fn prerequisites() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err(
            "`pipeline demo` runs its hosts as systemd-nspawn containers, which needs Linux".into(),
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        return Err(format!(
            "`pipeline demo` creates containers, network namespaces and firewall rules, which needs root (you are uid {uid}); run `sudo ./scripts/setup.sh` once, then `sudo pipeline demo`"
        ));
    }
    Ok(())
}

/// The demo's stages: each [`Stages::start`] checks for a signal first (a signal between stages stops the
/// demo before the next one), then says `demo [n/4] what (t s so far)`.
pub struct Stages<'a> {
    ui: &'a Ui,
    started: Instant,
}

/// A signal arrived before stage `stage` started.
#[derive(Debug, thiserror::Error)]
#[error("demo: stopped before stage {stage}")]
pub struct Stopped {
    pub stage: u8,
    #[source]
    pub signal: crate::signals::Interrupted,
}

impl<'a> Stages<'a> {
    pub fn new(ui: &'a Ui) -> Self {
        Stages {
            ui,
            started: Instant::now(),
        }
    }

    /// Starts stage `n`, unless a signal arrived.
    pub fn start(&self, n: u8, what: &str) -> Result<(), Stopped> {
        if let Some(sig) = crate::signals::received() {
            return Err(Stopped {
                stage: n,
                signal: crate::signals::Interrupted(sig),
            });
        }
        self.ui.info(format!(
            "demo [{n}/{STAGES}] {what} ({:.0} s so far)",
            self.started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Time since the demo started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// How an app is deployed in the demo: from its bundled stand-in (no GitHub, no Maven Central).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StandIn {
    /// iTrust: a WAR built here.
    Artifact(PathBuf),
    /// checkbox.io: a local git checkout, with `-e` variables.
    Source {
        repo: PathBuf,
        extra_vars: Vec<String>,
    },
}

/// Errors preparing a stand-in.
#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    #[error("failed to build the iTrust stand-in")]
    Itrust(#[source] example::ExampleError),
    #[error("failed to prepare the checkbox.io stand-in")]
    Checkbox(#[source] example::ExampleError),
}

/// Builds (or reuses) the stand-in of `app` under `work`.
pub fn stand_in(app: App, work: &Path) -> Result<StandIn, StandInError> {
    match app {
        App::Itrust => example::itrust_war(work)
            .map(StandIn::Artifact)
            .map_err(StandInError::Itrust),
        App::Checkbox => example::checkbox_repo(work)
            .map(|repo| StandIn::Source {
                repo,
                // The stand-in keeps no data: no MongoDB to install.
                extra_vars: vec!["checkbox_mongodb_install=false".into()],
            })
            .map_err(StandInError::Checkbox),
    }
}

/// What the demo produced, for [`summary`].
pub struct DemoOutcome<'a> {
    pub elapsed: Duration,
    pub inventory: &'a Path,
    pub prod_env: &'a str,
    pub deploy_reports: &'a [PathBuf],
    pub canary: &'a CanaryResult,
}

/// The closing summary: where the hosts and reports are, the stage times, and the verdict line when it is
/// the expected FAIL. Pure.
pub fn summary(o: &DemoOutcome) -> String {
    let mut lines = vec![
        String::new(),
        format!("demo finished in {:.0} s", o.elapsed.as_secs_f64()),
        format!(
            "  prod hosts:     {} (destroy them with `pipeline prod down --provider local --env {}`)",
            o.inventory.display(),
            o.prod_env
        ),
    ];
    for r in o.deploy_reports {
        lines.push(format!("  deploy report:  {}", r.display()));
    }
    let files = &o.canary.files;
    lines.push(format!("  canary report:  {}", files.html.display()));
    lines.push(format!("                  {}", files.markdown.display()));
    lines.push(format!("                  {}", files.json.display()));
    lines.push(format!("  canary stages:  {}", o.canary.times.line()));
    if o.canary.judgement.verdict == Verdict::Fail {
        lines.push(
            "  verdict:        FAIL, as it should be: the broken branch answers 500s with tiny bodies"
                .into(),
        );
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> DemoRequest {
        DemoRequest::new(
            Duration::from_secs(20),
            Some("out".into()),
            true,
            "p".into(),
            "c".into(),
        )
    }

    #[test]
    fn the_request_puts_every_stage_in_its_environment_and_report_directory() {
        let r = request();
        let up = r.prod_request(&Config::default()).unwrap();
        assert_eq!(up.provider, ProviderKind::Local);
        assert_eq!(up.environment, "p");
        assert_eq!(up.inventory, PathBuf::from("inventory.ini"));
        let names: Vec<_> = up.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["itrust", "checkbox", "monitor"]);
        assert_eq!(
            r.deploy_report(App::Checkbox),
            PathBuf::from("out/deploy-checkbox.json")
        );
        let c = r.canary_options(Path::new("/repo"));
        assert_eq!(c.provider, Some(ProviderKind::Local));
        assert_eq!(c.repo.as_deref(), Some("/repo"));
        assert_eq!(c.duration, Some(Duration::from_secs(20)));
        assert_eq!(c.report_dir, Some(PathBuf::from("out/canary")));
        assert_eq!(c.env.as_deref(), Some("c"));
        assert!(c.keep);
        // Everything else is the canary's own default.
        assert_eq!(c.rate, None);
        assert_eq!(c.endpoint, None);
    }

    #[test]
    fn without_a_report_directory_the_demo_writes_under_demo_report() {
        let r = DemoRequest::new(Duration::from_secs(1), None, false, "p".into(), "c".into());
        assert!(r.report_dir.starts_with("demo-report"), "{r:?}");
    }
}
