//! A rollout's settings: the `pipeline rollout` flags over their environment variables over the
//! `[rollout]` section of pipeline.toml over the defaults, checked once before anything runs. The
//! resolved settings are what the state file records ([`Recorded`]), so `resume` goes on with exactly
//! them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::apps::App;
use crate::exit::UsageError;
use crate::providers::ProviderKind;
use crate::provision;
use crate::settings::{pick, Global};

use super::state::Recorded;

/// The default steps: percent of the requests sent to the canary.
pub const DEFAULT_STEPS: [u8; 4] = [5, 25, 50, 100];

/// Where and how to roll out (everything but the app).
#[derive(Debug, Clone, Default, Args)]
pub struct RolloutOptions {
    /// Where the app's hosts run [env: PIPELINE_PROVIDER; config: provider; default: digitalocean].
    #[arg(long, value_enum)]
    pub provider: Option<ProviderKind>,
    /// The app's environment (the canary host joins it) [default: prod].
    #[arg(long = "env", env = "PIPELINE_ENV", value_name = "NAME")]
    pub environment: Option<String>,
    /// Inventory with the app's group and the front door's [lb] group (written by `pipeline prod up`)
    /// [config: [rollout] inventory; default: inventory.ini].
    #[arg(short, long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Where the new version comes from: a git URL the host clones, or a local git checkout (default: the
    /// app's upstream repository).
    #[arg(long, value_name = "GIT_URL_OR_PATH")]
    pub source: Option<String>,
    /// Branch, tag or commit of --source to roll out.
    #[arg(long = "ref", value_name = "BRANCH_OR_COMMIT")]
    pub git_ref: Option<String>,
    /// iTrust only: roll out this WAR instead of building from source.
    #[arg(long, value_name = "WAR")]
    pub artifact: Option<PathBuf>,
    /// The canary's share of the requests at each step, in percent, increasing, e.g. 5,25,50,100
    /// [config: [rollout] steps; default: 5,25,50,100].
    #[arg(long, value_delimiter = ',', value_name = "PERCENT,...")]
    pub steps: Option<Vec<u8>>,
    /// Shortest time of a step, e.g. 2m [config: [rollout] step_time; default: 2m].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub step_time: Option<Duration>,
    /// Longest time of a step that stays INCONCLUSIVE (too little traffic), then the rollout pauses
    /// [config: [rollout] max_step_time; default: 3 × --step-time].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_step_time: Option<Duration>,
    /// How long the canary serves the first step's share before that step is judged on latency and size
    /// (its requests are judged on errors only, so a cold start such as a JVM's JIT is not taken for the
    /// new version's speed); 0s for none [config: [rollout] warmup; default: 30s].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub warmup: Option<Duration>,
    /// Time between the judge's looks within a step [config: [rollout] look_every; default: 5s].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub look_every: Option<Duration>,
    /// Synthetic requests per second through the front door for apps with too little traffic (counted
    /// apart from real ones) [config: [rollout] load; default: none].
    #[arg(long, value_name = "RATE")]
    pub load: Option<f64>,
    /// A role variable, KEY=VALUE (repeatable), as for `pipeline deploy`.
    #[arg(short = 'e', long = "extra-var", value_name = "KEY=VALUE")]
    pub extra_vars: Vec<String>,
    /// Prometheus to query for the `[canary]` metrics (`metrics_file` or `[[canary.metric]]`) at each
    /// step [config: [canary] prometheus; default: the inventory's monitor host, through its dashboard];
    /// credentials from PIPELINE_PROMETHEUS_* variables.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Directory for the report [default: rollout-report-<env>-<app> under the state directory].
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

/// The `[rollout]` section of pipeline.toml (flags win).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSection {
    pub steps: Option<Vec<u8>>,
    /// e.g. "2m".
    pub step_time: Option<String>,
    pub max_step_time: Option<String>,
    pub look_every: Option<String>,
    pub warmup: Option<String>,
    pub load: Option<f64>,
    pub inventory: Option<PathBuf>,
}

fn usage(message: String) -> anyhow::Error {
    UsageError(message).into()
}

fn duration(
    key: &str,
    flag: Option<Duration>,
    config: Option<&String>,
) -> anyhow::Result<Option<Duration>> {
    match (flag, config) {
        (Some(d), _) => Ok(Some(d)),
        (None, Some(text)) => humantime::parse_duration(text)
            .map(Some)
            .map_err(|e| usage(format!("[rollout] {key} = {text:?}: {e} (e.g. \"2m\")"))),
        (None, None) => Ok(None),
    }
}

/// The first step's warm-up when neither flag nor pipeline.toml gives one. A freshly started JVM (iTrust's
/// stand-in on the sandbox) took 270–445 ms for its first requests against 3–6 ms once warm, and a step at
/// 5 % of a quiet app's traffic sees only a few requests in its first seconds.
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(30);

/// The steps must rise strictly within 1..=100, the first below 100 (a step at 100 % is not judged).
pub fn check_steps(steps: &[u8]) -> Result<(), String> {
    if steps.is_empty() {
        return Err("--steps: give at least one step, e.g. 5,25,50,100".into());
    }
    if let Some(w) = steps.iter().find(|w| !(1..=100).contains(*w)) {
        return Err(format!(
            "--steps: {w} is not a share of the requests; each step is 1 to 100 percent"
        ));
    }
    if steps[0] == 100 {
        return Err("--steps 100: no step would be judged (at 100 % no stable requests are left to compare with); start lower, e.g. 5,25,50,100".into());
    }
    if let Some([before, after]) = steps.windows(2).find(|p| p[1] <= p[0]) {
        return Err(format!(
            "--steps: {after} after {before}: the canary's share must rise from step to step"
        ));
    }
    Ok(())
}

/// The WAR of `--artifact`, absolute; a usage error when it is not a file.
fn artifact_path(war: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(war)
        .ok()
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            usage(format!(
                "--artifact {}: no such file; give the WAR to roll out (`mvn package` writes target/iTrust2-0.0.1-SNAPSHOT.war), or --ref REF to build it from source on the canary host",
                war.display()
            ))
        })
}

/// Resolves a new rollout of `app`: flags > env > `[rollout]` > defaults.
pub fn resolve(app: App, opts: RolloutOptions, global: &Global) -> anyhow::Result<Recorded> {
    let section: RolloutSection = global.config.section("rollout")?;
    let provider = provision::resolve_provider_kind(opts.provider, &global.config)?;
    let environment = opts.environment.unwrap_or_else(|| "prod".into());
    provision::check_environment(&environment)?;
    let steps = pick(opts.steps, section.steps, || DEFAULT_STEPS.to_vec());
    check_steps(&steps).map_err(usage)?;
    let step_time = duration("step_time", opts.step_time, section.step_time.as_ref())?
        .unwrap_or(Duration::from_secs(120));
    if step_time < Duration::from_secs(1) {
        return Err(usage(format!(
            "--step-time {}: a step lasts at least 1s",
            humantime::format_duration(step_time)
        )));
    }
    let max_step_time = duration(
        "max_step_time",
        opts.max_step_time,
        section.max_step_time.as_ref(),
    )?
    .unwrap_or(step_time * 3);
    if max_step_time < step_time {
        return Err(usage(format!(
            "--max-step-time {} is shorter than --step-time {}; give at least the step time",
            humantime::format_duration(max_step_time),
            humantime::format_duration(step_time)
        )));
    }
    let look_every = duration("look_every", opts.look_every, section.look_every.as_ref())?
        .unwrap_or(Duration::from_secs(5))
        .min(step_time);
    if look_every < Duration::from_millis(100) {
        return Err(usage(format!(
            "--look-every {}: looks must be at least 100ms apart",
            humantime::format_duration(look_every)
        )));
    }
    let warmup =
        duration("warmup", opts.warmup, section.warmup.as_ref())?.unwrap_or(DEFAULT_WARMUP);
    let load = opts.load.or(section.load);
    if let Some(rate) = load {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(usage(format!(
                "--load {rate}: expected synthetic requests per second above 0"
            )));
        }
    }
    if opts.artifact.is_some() && app != App::Itrust {
        return Err(usage(format!(
            "--artifact is for iTrust (a WAR); {} rolls out from --source/--ref",
            app.display()
        )));
    }
    if opts.artifact.is_none() && opts.git_ref.is_none() {
        return Err(usage(format!(
            "say what to roll out: --ref REF{}",
            if app == App::Itrust {
                " or --artifact WAR"
            } else {
                ""
            }
        )));
    }
    for e in &opts.extra_vars {
        crate::deploy::vars::parse_extra_var(e).map_err(usage)?;
    }
    // Checked now, before a canary host is made for it, and recorded absolute for `resume`.
    let artifact = opts.artifact.map(|war| artifact_path(&war)).transpose()?;
    let report_dir = opts.report_dir.unwrap_or_else(|| {
        global
            .state_dir
            .join(format!("rollout-report-{environment}-{}", app.key()))
    });
    Ok(Recorded {
        app: app.key().into(),
        provider: provision::kind_name(provider).into(),
        inventory: opts
            .inventory
            .or(section.inventory)
            .unwrap_or_else(|| PathBuf::from("inventory.ini")),
        environment,
        source: opts.source,
        git_ref: opts.git_ref,
        artifact,
        extra_vars: opts.extra_vars,
        steps,
        step_time_s: step_time.as_secs_f64(),
        max_step_time_s: max_step_time.as_secs_f64(),
        look_every_s: look_every.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        load,
        report_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_must_rise_within_one_to_a_hundred() {
        assert!(check_steps(&[5, 25, 50, 100]).is_ok());
        assert!(check_steps(&[50]).is_ok());
        assert!(check_steps(&[100])
            .unwrap_err()
            .contains("no step would be judged"));
        assert!(check_steps(&[]).unwrap_err().contains("at least one"));
        assert!(check_steps(&[0, 5]).unwrap_err().contains("1 to 100"));
        assert!(check_steps(&[5, 101]).unwrap_err().contains("1 to 100"));
        assert!(check_steps(&[25, 5]).unwrap_err().contains("rise"));
        assert!(check_steps(&[5, 5]).unwrap_err().contains("rise"));
    }

    fn global(toml: &str) -> Global {
        Global {
            config: crate::settings::Config::parse(toml, "pipeline.toml".into()).unwrap(),
            state_dir: ".pipeline".into(),
            ui: crate::ui::Ui::new(true),
        }
    }

    fn opts() -> RolloutOptions {
        RolloutOptions {
            provider: Some(ProviderKind::Local),
            git_ref: Some("v2".into()),
            ..Default::default()
        }
    }

    #[test]
    fn flag_beats_the_rollout_section_beats_the_default() {
        let g = global(
            "[rollout]\nsteps = [10, 100]\nstep_time = \"30s\"\nwarmup = \"1m\"\nload = 5.0\n",
        );
        let r = resolve(App::Checkbox, opts(), &g).unwrap();
        assert_eq!(r.steps, vec![10, 100]);
        assert_eq!(r.warmup_s, 60.0);
        assert_eq!(r.step_time_s, 30.0);
        assert_eq!(r.max_step_time_s, 90.0);
        assert_eq!(r.load, Some(5.0));
        let mut o = opts();
        o.steps = Some(vec![1, 50]);
        o.step_time = Some(Duration::from_secs(20));
        o.warmup = Some(Duration::ZERO);
        let r = resolve(App::Checkbox, o, &g).unwrap();
        assert_eq!(r.steps, vec![1, 50]);
        assert_eq!(r.step_time_s, 20.0);
        assert_eq!(r.warmup_s, 0.0, "--warmup 0s: no warm-up");
        let r = resolve(App::Checkbox, opts(), &global("")).unwrap();
        assert_eq!(r.steps, DEFAULT_STEPS.to_vec());
        assert_eq!((r.step_time_s, r.look_every_s), (120.0, 5.0));
        assert_eq!(r.warmup_s, DEFAULT_WARMUP.as_secs_f64());
        assert_eq!(r.environment, "prod");
        assert_eq!(r.app, "checkbox");
    }

    #[test]
    fn a_rollout_without_a_version_or_with_a_war_for_checkbox_is_a_usage_error() {
        let g = global("");
        let mut o = opts();
        o.git_ref = None;
        let e = resolve(App::Checkbox, o, &g).unwrap_err();
        assert!(
            e.is::<UsageError>() && e.to_string().contains("--ref"),
            "{e}"
        );
        let mut o = opts();
        o.artifact = Some("x.war".into());
        let e = resolve(App::Checkbox, o, &g).unwrap_err();
        assert!(e.to_string().contains("--artifact is for iTrust"), "{e}");
        let mut o = opts();
        o.max_step_time = Some(Duration::from_secs(1));
        let e = resolve(App::Checkbox, o, &g).unwrap_err();
        assert!(e.to_string().contains("shorter than --step-time"), "{e}");
        let mut o = opts();
        o.git_ref = None;
        o.artifact = Some("missing/iTrust2.war".into());
        let e = resolve(App::Itrust, o, &g).unwrap_err();
        assert!(
            e.is::<UsageError>()
                && e.to_string()
                    .contains("--artifact missing/iTrust2.war: no such file"),
            "{e}"
        );
        let e = resolve(App::Checkbox, opts(), &global("[rollout]\nstep = 1\n")).unwrap_err();
        assert!(format!("{e:#}").contains("step"), "{e:#}");
    }

    #[test]
    fn an_itrust_rollout_takes_a_ref_or_a_war_recorded_by_its_absolute_path() {
        let g = global("");
        let mut o = opts();
        o.git_ref = Some("v8".into());
        let r = resolve(App::Itrust, o, &g).unwrap();
        assert_eq!(
            (r.app.as_str(), r.git_ref.as_deref()),
            ("itrust", Some("v8"))
        );
        assert_eq!(r.artifact, None);
        let dir = tempfile::tempdir().unwrap();
        let war = dir.path().join("iTrust2.war");
        std::fs::write(&war, "PK").unwrap();
        let mut o = opts();
        o.git_ref = None;
        // Relative to the current directory, as given on the command line.
        let cwd = std::env::current_dir().unwrap();
        let relative: PathBuf = pathdiff(&war, &cwd);
        o.artifact = Some(relative);
        let r = resolve(App::Itrust, o, &g).unwrap();
        assert_eq!(r.artifact, Some(std::fs::canonicalize(&war).unwrap()));
        assert!(r.artifact.as_ref().unwrap().is_absolute());
        let mut o = opts();
        o.artifact = Some(dir.path().to_path_buf());
        let e = resolve(App::Itrust, o, &g).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
    }

    /// `path` relative to `base` (`../..` up to their common ancestor).
    fn pathdiff(path: &std::path::Path, base: &std::path::Path) -> PathBuf {
        let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
        let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let mut out = PathBuf::new();
        for _ in common..b.len() {
            out.push("..");
        }
        for c in &p[common..] {
            out.push(c);
        }
        out
    }
}
