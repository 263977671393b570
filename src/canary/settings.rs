//! The canary's settings: its options (flags, also built directly by `pipeline demo`), the `[canary]`
//! section of pipeline.toml, and [`CanarySettings::resolve`] (flags > config > defaults, every value checked).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::canary::judge::JudgeConfig;
use crate::canary::prometheus::canary::{self as prom_canary, CanaryPromSection, CanaryQueries};
use crate::canary::run::{self, Probe};
use crate::canary::source;
use crate::exit::UsageError;
use crate::providers::{HostSpec, ProviderKind};
use crate::provision::{self, HostDefault, HostOverride};
use crate::settings::{pick, Global};

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

/// The environment the canary's hosts belong to by default.
pub const DEFAULT_ENV: &str = "canary";
/// The inventory `--monitor-inventory` defaults to.
pub const DEFAULT_MONITOR_INVENTORY: &str = "inventory.ini";

/// Everything about a canary run but its two branches; `None` = from pipeline.toml or the default.
/// The `pipeline canary` flags, and what `pipeline demo` fills (with `..Default::default()`).
#[derive(Debug, Clone, Default, Args)]
pub struct CanaryOptions {
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
    /// Time between the sequential judge's looks while the load runs, e.g. 5s [config: look_every;
    /// default: 5s].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "TIME")]
    pub look_every: Option<Duration>,
    /// Keep the load running for the whole window even when a look has already decided FAIL.
    #[arg(long)]
    pub no_early_stop: bool,
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
    /// Environment the hosts belong to (hosts blue, green, proxy) [default: canary].
    #[arg(long, env = "PIPELINE_CANARY_ENV")]
    pub env: Option<String>,
    /// Prometheus to query for the `[canary]` metrics (`metrics_file` or `[[canary.metric]]`) over the
    /// load window [config: prometheus; default: the monitor host's, through its dashboard];
    /// credentials from PIPELINE_PROMETHEUS_* variables.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Inventory whose [monitor] host's dashboard records the verdict as an event, and whose
    /// Prometheus answers the `[canary]` metrics unless --prometheus or [canary] prometheus names one
    /// [default: inventory.ini].
    #[arg(long = "monitor-inventory", value_name = "FILE")]
    pub monitor_inventory: Option<PathBuf>,
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
    /// e.g. "5s".
    pub look_every: Option<String>,
    /// Host overrides for all canary hosts (region, image, size, memory_limit).
    #[serde(flatten)]
    pub hosts: HostOverride,
    /// `prometheus`, `prometheus_step`, `metrics_file`, `[[canary.metric]]`, `[canary.arms]`.
    #[serde(flatten)]
    pub prometheus: CanaryPromSection,
}

/// A fully resolved canary run.
#[derive(Debug, Clone)]
pub struct CanarySettings {
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
    /// Time between the sequential judge's looks.
    pub look_every: Duration,
    /// Stop the load at a look that decided FAIL.
    pub early_stop: bool,
    /// Roles from this directory instead of the built-in ones.
    pub roles: Option<PathBuf>,
    /// Prometheus queries judged with the per-request metrics (`None`: none configured).
    pub prometheus: Option<CanaryQueries>,
    /// The inventory, vars.json and archives of this environment.
    pub work_dir: PathBuf,
    /// The inventory with the monitor host (events, and its Prometheus for the `[canary]` metrics).
    pub monitor_inventory: PathBuf,
}

impl CanarySettings {
    pub fn inventory(&self) -> PathBuf {
        self.work_dir.join("inventory.ini")
    }

    /// Resolves flags > pipeline.toml `[canary]` > defaults, and checks every value.
    pub fn resolve(
        baseline: &str,
        canary: &str,
        opts: CanaryOptions,
        global: &Global,
    ) -> anyhow::Result<CanarySettings> {
        let section: CanarySection = global.config.section("canary")?;
        let provider = provision::resolve_provider_kind(opts.provider, &global.config)?;
        let environment = opts.env.unwrap_or_else(|| DEFAULT_ENV.into());
        provision::check_environment(&environment)?;
        let duration =
            duration_setting("duration", opts.duration, section.duration.as_deref(), 60)?;
        if duration < Duration::from_secs(1) {
            return Err(usage(format!(
                "--duration {}: the load window must be at least 1s",
                humantime::format_duration(duration)
            )));
        }
        let warmup = duration_setting("warmup", opts.warmup, section.warmup.as_deref(), 5)?;
        let look_every = duration_setting(
            "look_every",
            opts.look_every,
            section.look_every.as_deref(),
            5,
        )?;
        if look_every < Duration::from_millis(100) {
            return Err(usage(format!(
                "--look-every {}: looks must be at least 100ms apart (e.g. 5s)",
                humantime::format_duration(look_every)
            )));
        }
        let rate = pick(opts.rate, section.rate, || 100.0);
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(usage(format!(
                "--rate {rate}: expected requests per second ≥ 0 (0 = unlimited)"
            )));
        }
        let concurrency = pick(opts.concurrency, section.concurrency, || 16);
        if concurrency == 0 {
            return Err(usage(
                "--concurrency 0: at least one connection is needed".into(),
            ));
        }
        let split = pick(opts.split, section.split, || 50);
        if !(1..=99).contains(&split) {
            return Err(usage(format!(
                "--split {split}: the canary's share must be 1 to 99 percent, so both arms get traffic"
            )));
        }
        let endpoint = pick(opts.endpoint, section.endpoint, || "/preview".into());
        if !endpoint.starts_with('/') {
            return Err(usage(format!(
                "--endpoint {endpoint:?}: must start with `/`"
            )));
        }
        let method_text = pick(opts.method, section.method, || "POST".into());
        let method = reqwest::Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
            .map_err(|_| usage(format!("--method {method_text:?} is not an HTTP method")))?;
        let body = match opts.body_file.or(section.body_file) {
            Some(path) => std::fs::read(&path).map_err(|e| {
                usage(format!(
                    "cannot read the request body --body-file {}: {e}; give a readable file",
                    path.display()
                ))
            })?,
            None => crate::canary::example::SURVEY_JSON.as_bytes().to_vec(),
        };
        let content_type = pick(opts.content_type, section.content_type, || {
            "application/json".into()
        });
        let specs = provision::build_specs(
            "canary",
            &CANARY_HOSTS,
            &section.hosts,
            &std::collections::BTreeMap::default(),
            &HostOverride::default(),
        )?;
        let judge: JudgeConfig = global.config.section("judge")?;
        let config_path = global.config.path().unwrap_or(Path::new("pipeline.toml"));
        let monitor_inventory = opts
            .monitor_inventory
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MONITOR_INVENTORY));
        let monitor = || {
            crate::monitoring::endpoint::dashboard(&monitor_inventory, &global.state_dir)
                .map_err(|e| format!("{}: {e}", monitor_inventory.display()))
        };
        let prometheus =
            prom_canary::resolve(opts.prometheus, section.prometheus, config_path, monitor)
                .map_err(|e| {
                    if e.is_usage() {
                        usage(e.to_string())
                    } else {
                        anyhow::Error::new(e)
                    }
                })?;
        Ok(CanarySettings {
            monitor_inventory,
            provider,
            work_dir: global.state_dir.join(format!("canary-{environment}")),
            environment,
            repo: opts
                .repo
                .or(section.repo)
                .unwrap_or_else(|| source::DEFAULT_REPO.to_string()),
            baseline: baseline.into(),
            canary: canary.into(),
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
            report_dir: opts.report_dir.unwrap_or_else(|| {
                PathBuf::from(run::timestamped_dir(
                    "canary-report",
                    std::time::SystemTime::now(),
                ))
            }),
            keep: opts.keep,
            judge,
            look_every,
            early_stop: !opts.no_early_stop,
            roles: match opts.roles {
                Some(dir) => Some(dir),
                None => global.config.string("roles_dir")?.map(PathBuf::from),
            },
            prometheus,
        })
    }
}

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

/// A duration from the flag, else `[canary] key = "…"`, else `default_secs`.
fn duration_setting(
    key: &str,
    flag: Option<Duration>,
    config: Option<&str>,
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

    fn plan(args: &[&str], config: &str) -> anyhow::Result<CanarySettings> {
        let argv = ["pipeline", "canary"].iter().chain(args).copied();
        let Command::Canary(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!("parsed as canary")
        };
        CanarySettings::resolve(&args.baseline, &args.canary, args.options, &global(config))
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
        assert_eq!(p.look_every, Duration::from_secs(5));
        assert!(p.early_stop);
        assert_eq!(p.work_dir, PathBuf::from(".pipeline/canary-canary"));
    }

    #[test]
    fn look_every_comes_from_the_flag_then_the_config_and_no_early_stop_turns_it_off() {
        let p = plan(
            &["a", "b", "--provider", "local"],
            "[canary]\nlook_every = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(p.look_every, Duration::from_secs(2));
        let p = plan(
            &[
                "a",
                "b",
                "--provider",
                "local",
                "--look-every",
                "500ms",
                "--no-early-stop",
            ],
            "[canary]\nlook_every = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(p.look_every, Duration::from_millis(500));
        assert!(!p.early_stop);
        let err = plan(
            &["a", "b", "--provider", "local", "--look-every", "1ms"],
            "",
        )
        .unwrap_err();
        assert!(
            is_usage_error(&err) && format!("{err:#}").contains("100ms"),
            "{err:#}"
        );
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
