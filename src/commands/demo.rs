//! `pipeline demo`: the whole job on the local sandbox, with no cloud account and no GitHub: the prod hosts
//! (`prod up --provider local`), iTrust and checkbox.io deployed from the bundled example apps, then a canary
//! of the bundled preview service, `master` against `broken`. One progress line per stage; at the end, where
//! the reports are. The prod hosts are kept (so they can be looked at); the canary hosts are destroyed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::canary::example;
use crate::canary::judge::Verdict;
use crate::canary::settings::{CanaryOptions, CanarySettings};
use crate::commands::canary as canary_cmd;
use crate::commands::deploy::{self, App, DeployArgs};
use crate::commands::playbook::RunOptions;
use crate::providers::ProviderKind;
use crate::provision::{self, HostOverride, ProdSection, UpRequest};
use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Length of the canary's load window.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Where the reports go [default: demo-report/<UTC time>].
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Keep the canary hosts too (blue, green, proxy); the prod hosts are always kept.
    #[arg(long)]
    pub keep: bool,
    /// Environment of the prod hosts (itrust, checkbox, monitor).
    #[arg(long, default_value = "prod")]
    pub prod_env: String,
    /// Environment of the canary hosts (blue, green, proxy).
    #[arg(long, default_value = "canary")]
    pub canary_env: String,
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

pub async fn run(args: DemoArgs, global: &Global) -> anyhow::Result<Outcome> {
    prerequisites().map_err(anyhow::Error::msg)?;
    let ui = &global.ui;
    let started = Instant::now();
    let report_dir = args.report_dir.clone().unwrap_or_else(|| {
        PathBuf::from(crate::canary::run::timestamped_dir(
            "demo-report",
            std::time::SystemTime::now(),
        ))
    });
    std::fs::create_dir_all(&report_dir).with_context(|| {
        format!(
            "cannot create the report directory {}",
            report_dir.display()
        )
    })?;
    // A signal between stages stops the demo before the next one starts.
    let stage = |n: u8, what: &str| -> anyhow::Result<()> {
        if let Some(sig) = crate::signals::received() {
            return Err(crate::signals::Interrupted(sig))
                .with_context(|| format!("demo: stopped before stage {n}"));
        }
        ui.info(format!(
            "demo [{n}/4] {what} ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    };

    // 1. The prod hosts.
    stage(
        1,
        "prod up --provider local: itrust, checkbox and monitor as local containers",
    )?;
    let inventory = PathBuf::from("inventory.ini");
    let specs = provision::prod_host_specs(
        &ProdSection::load(&global.config)?,
        &HostOverride::default(),
    )?;
    let request = UpRequest::new(
        ProviderKind::Local,
        args.prod_env.clone(),
        specs,
        &inventory,
        "demo",
    );
    // The prod hosts stay after the demo by design; a run a signal stops names them.
    crate::signals::leftover(
        format!(
            "prod hosts itrust, checkbox and monitor (environment {}); destroy them with `pipeline prod down --provider local --env {}`",
            args.prod_env, args.prod_env
        ),
        String::new(),
        None,
    )
    .keep();
    tokio::select! {
        r = provision::up(global, &request) => r,
        sig = crate::signals::cancelled() => Err(crate::signals::Interrupted(sig).into()),
    }
    .context("demo: failed to bring up the prod hosts")?;

    // 2-3. The apps, from the bundled stand-ins (no GitHub, no Maven Central).
    let work = global.state_dir.join("demo");
    crate::fsutil::ensure_private_dir(&work)
        .with_context(|| format!("cannot create {}", work.display()))?;
    let mut deploy_reports = Vec::new();
    for (n, app) in [(2, App::Itrust), (3, App::Checkbox)] {
        stage(
            n,
            &format!("deploy {} from the bundled stand-in", app.display()),
        )?;
        let report = report_dir.join(format!("deploy-{}.json", app.key()));
        let mut args = DeployArgs {
            app,
            inventory: inventory.clone(),
            source: None,
            git_ref: None,
            artifact: None,
            run: RunOptions {
                report: Some(report.clone()),
                ..RunOptions::default()
            },
            syntax_check: false,
        };
        match app {
            App::Itrust => {
                args.artifact = Some(
                    example::itrust_war(&work)
                        .context("demo: failed to build the iTrust stand-in")?,
                );
            }
            App::Checkbox => {
                let repo = example::checkbox_repo(&work)
                    .context("demo: failed to prepare the checkbox.io stand-in")?;
                args.source = Some(repo.display().to_string());
                // The stand-in keeps no data: no MongoDB to install.
                args.run
                    .extra_vars
                    .push("checkbox_mongodb_install=false".into());
            }
        }
        let outcome = deploy::run(args, global)
            .await
            .with_context(|| format!("demo: failed to deploy {}", app.display()))?;
        if outcome != Outcome::Success {
            anyhow::bail!(
                "demo: the {} deploy failed; its report is {}",
                app.display(),
                report.display()
            );
        }
        deploy_reports.push(report);
    }

    // 4. The canary.
    stage(
        4,
        "canary of the bundled preview service: master (blue) against broken (green)",
    )?;
    let repo = example::make_repo(&global.state_dir.join("demo").join("preview-service"))
        .context("demo: failed to build the example repository")?;
    let settings = CanarySettings::resolve(
        "master",
        "broken",
        CanaryOptions {
            provider: Some(ProviderKind::Local),
            repo: Some(repo.display().to_string()),
            duration: Some(args.duration),
            report_dir: Some(report_dir.join("canary")),
            keep: args.keep,
            env: Some(args.canary_env.clone()),
            ..CanaryOptions::default()
        },
        global,
    )?;
    let result = canary_cmd::execute(&settings, global)
        .await
        .context("demo: the canary failed to run")?;

    println!();
    println!("demo finished in {:.0} s", started.elapsed().as_secs_f64());
    println!(
        "  prod hosts:     {} (destroy them with `pipeline prod down --provider local --env {}`)",
        inventory.display(),
        args.prod_env
    );
    for r in &deploy_reports {
        println!("  deploy report:  {}", r.display());
    }
    println!("  canary report:  {}", result.files.html.display());
    println!("                  {}", result.files.markdown.display());
    println!("                  {}", result.files.json.display());
    println!("  canary stages:  {}", result.times.line());
    match result.judgement.verdict {
        Verdict::Fail => {
            println!("  verdict:        FAIL, as it should be: the broken branch answers 500s with tiny bodies");
            Ok(Outcome::Success)
        }
        other => {
            ui.warn(format!(
                "the canary of master against broken should FAIL but gave {}: see the report",
                other.as_str()
            ));
            Ok(other.outcome())
        }
    }
}
