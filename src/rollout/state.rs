//! A rollout's recorded state: what it rolls out (app, version, steps), where (provider, environment,
//! hosts), and how far it got (the phase, the weight the front door was last told, each step's verdict).
//! The executor writes it, atomically and mode 0600, to `.pipeline/rollout-<env>-<app>.json` **before**
//! every action, so after a crash (even `kill -9`) `status`, `abort` and `resume` know what was under way.
//! One rollout per app and environment at a time: [`StateStore::lock`] holds an `flock` for the whole run.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::canary::judge::Verdict;
use crate::lock::FileLock;

use super::RolloutError;

/// The version of the state file's layout.
pub const STATE_VERSION: u32 = 1;

/// Where a rollout is. Every phase but [`Phase::Done`] names the action that is (or was, after a crash)
/// under way; `resume` redoes that action (each is idempotent) and goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Creating (or reusing) the canary host.
    Provision,
    /// Deploying the new version on the canary host.
    Deploy,
    /// Checking the canary host directly, before it sees traffic.
    Check,
    /// Making the monitor's Prometheus scrape the canary host (node_exporter on it, its targets added),
    /// after its check and before any traffic; only when the inventory has a `[monitor]` host.
    Scrape,
    /// Step `index` (0-based) of the steps: the canary's weight is set, requests are judged.
    Step { index: usize },
    /// Stopped after step `index` without a decision (INCONCLUSIVE up to the longest step time, or
    /// MARGINAL): the weight stays; `resume` runs the step again, `abort` goes back to stable.
    Paused { index: usize, verdict: Verdict },
    /// Updating the stable hosts to the new version, a rolling deploy through the front door.
    Promote,
    /// Taking the canary out of the front door and destroying its host after a promotion.
    Retire,
    /// Weight 0 on the canary and its host destroyed after a FAIL.
    Rollback,
    /// Weight 0 on the canary and its host destroyed on request.
    Abort,
    /// Finished; nothing is left to do.
    Done { outcome: Finished },
}

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finished {
    Promoted,
    RolledBack,
    Aborted,
}

impl Finished {
    pub fn as_str(self) -> &'static str {
        match self {
            Finished::Promoted => "promoted",
            Finished::RolledBack => "rolled back",
            Finished::Aborted => "aborted",
        }
    }
}

impl Phase {
    /// The phase in a few words, for `status` and messages.
    pub fn describe(&self, steps: &[u8]) -> String {
        let step = |i: usize| {
            format!(
                "step {}/{} ({} % to the canary)",
                i + 1,
                steps.len(),
                steps.get(i).copied().unwrap_or(0)
            )
        };
        match self {
            Phase::Provision => "provisioning the canary host".into(),
            Phase::Deploy => "deploying the new version on the canary host".into(),
            Phase::Check => "checking the canary host".into(),
            Phase::Scrape => "adding the canary host to the monitor's Prometheus".into(),
            Phase::Step { index } => step(*index),
            Phase::Paused { index, verdict } => {
                format!("paused at {} ({})", step(*index), verdict.as_str())
            }
            Phase::Promote => "promoting: rolling deploy of the stable hosts".into(),
            Phase::Retire => "retiring the canary after the promotion".into(),
            Phase::Rollback => "rolling back: canary out".into(),
            Phase::Abort => "aborting: canary out".into(),
            Phase::Done { outcome } => format!("finished: {}", outcome.as_str()),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Phase::Done { .. })
    }
}

/// Requests of one arm during a step, real and synthetic (`--load`) counted apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmTally {
    pub real: u64,
    pub synthetic: u64,
    /// Of all of them: answered 5xx or not at all.
    pub errors: u64,
}

/// What one step (one run of it: a resumed step is a new record) saw and decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub weight: u8,
    /// Whether the step was judged: a step at 100 % leaves no stable requests to compare with, so it
    /// only hands all requests to the canary for the promotion.
    #[serde(default = "yes")]
    pub judged: bool,
    /// When the step began (its warm-up, if any, first), Unix seconds.
    pub started_at: f64,
    /// How long its judged window ran (after any warm-up).
    pub duration_s: f64,
    /// Whether the step ran past `--step-time` (INCONCLUSIVE at its end).
    pub extended: bool,
    /// `None` while it runs (or when it was interrupted).
    pub verdict: Option<Verdict>,
    pub stable: ArmTally,
    pub canary: ArmTally,
    /// Requests the front door logged that neither arm served (no upstream: 502 before any backend).
    pub unattributed: u64,
    pub looks: Vec<LookRecord>,
    /// The judge's reason for the verdict.
    pub reason: String,
    /// The warm-up before the step's judged window (the first step with `--warmup`), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupRecord>,
}

/// A first step's warm-up (`--warmup`): the canary already serves the step's share, but its requests are
/// judged on the error rate only (a FAIL rolls back at once), not on latency or size, so a cold start is
/// not taken for the new version's speed. `started_at` of its step is the warm-up's start, and the step's
/// judged window follows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmupRecord {
    /// How long it ran so far.
    pub duration_s: f64,
    pub stable: ArmTally,
    pub canary: ArmTally,
    pub unattributed: u64,
    /// The error-rate check at its last look (`None` before the first).
    pub verdict: Option<Verdict>,
}

fn yes() -> bool {
    true
}

/// One look of a step: requests per arm so far and the judge's verdict on them (final or not; the
/// looks' boundaries and α spent are in the step's judgement, `step-N.json` in the report directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookRecord {
    pub t_s: f64,
    pub stable: u64,
    pub canary: u64,
    pub verdict: Verdict,
    pub score: f64,
}

/// A rollout's settings as recorded (what `resume` continues with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The inventory group: `checkbox` or `itrust`.
    pub app: String,
    pub provider: String,
    pub environment: String,
    pub inventory: PathBuf,
    pub source: Option<String>,
    pub git_ref: Option<String>,
    pub artifact: Option<PathBuf>,
    /// `-e` values as given (the file is 0600).
    pub extra_vars: Vec<String>,
    pub steps: Vec<u8>,
    pub step_time_s: f64,
    pub max_step_time_s: f64,
    pub look_every_s: f64,
    /// The first step's warm-up (`--warmup`); 0 in state files written before it existed.
    #[serde(default)]
    pub warmup_s: f64,
    pub load: Option<f64>,
    pub report_dir: PathBuf,
}

/// The state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    pub version: u32,
    pub settings: Recorded,
    /// The app's hosts before the rollout (they are promoted at the end).
    pub stable_hosts: Vec<String>,
    pub canary_host: String,
    /// The front door host (`lb`).
    pub front_door: String,
    #[serde(flatten)]
    pub phase: Phase,
    /// The share of requests the front door was last told to send to the canary (set before the reload).
    pub weight: u8,
    /// Whether the canary host may exist (set before it is created, cleared once it is destroyed).
    pub canary_exists: bool,
    /// Whether the monitor's Prometheus may have the canary host as a target (set before they are added,
    /// cleared once they are removed).
    #[serde(default)]
    pub canary_scraped: bool,
    pub steps: Vec<StepRecord>,
    /// The process running the rollout (for `abort` of a live one).
    pub pid: u32,
    pub started_at: f64,
    pub updated_at: f64,
    /// The last error that stopped the rollout, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// `--prometheus URL` as given at the start (`resume` queries the same server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
    /// The deploys so far, in order (the canary host's, the promotion), for the report.
    #[serde(default)]
    pub deploys: Vec<super::world::DeploySummary>,
}

pub fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl RolloutState {
    pub fn new(
        settings: Recorded,
        stable_hosts: Vec<String>,
        canary_host: String,
        front_door: String,
    ) -> Self {
        let now = now_s();
        RolloutState {
            version: STATE_VERSION,
            settings,
            stable_hosts,
            canary_host,
            front_door,
            phase: Phase::Provision,
            weight: 0,
            canary_exists: false,
            canary_scraped: false,
            steps: Vec::new(),
            pid: std::process::id(),
            started_at: now,
            updated_at: now,
            last_error: None,
            prometheus: None,
            deploys: Vec::new(),
        }
    }

    /// The verdicts so far, step by step.
    pub fn verdicts(&self) -> Vec<(usize, Option<Verdict>)> {
        self.steps.iter().map(|s| (s.index, s.verdict)).collect()
    }

    /// `status` in a few lines.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let version = match (&s.git_ref, &s.artifact) {
            (_, Some(war)) => format!("WAR {}", war.display()),
            (Some(r), None) => format!("ref {r}"),
            (None, None) => "the default ref".into(),
        };
        let mut out = format!(
            "rollout of {} ({version}) in environment {} ({})\n  {}\n  weight: {} % canary ({}), {} % stable ({})\n",
            s.app,
            s.environment,
            s.provider,
            self.phase.describe(&s.steps),
            self.weight,
            if self.canary_exists {
                self.canary_host.as_str()
            } else {
                "no canary host"
            },
            100 - self.weight.min(100),
            self.stable_hosts.join(", "),
        );
        out.push_str(&format!(
            "  steps: {} every {} s (up to {} s)\n",
            s.steps
                .iter()
                .map(|w| format!("{w} %"))
                .collect::<Vec<_>>()
                .join(", "),
            crate::canary::judge::num(s.step_time_s),
            crate::canary::judge::num(s.max_step_time_s)
        ));
        for r in &self.steps {
            out.push_str(&format!(
                "  step {} ({} %): {} after {:.0} s{}; stable {} real + {} synthetic, canary {} real + {} synthetic\n",
                r.index + 1,
                r.weight,
                match (r.judged, r.verdict) {
                    (false, _) => "not judged (no stable requests at 100 %)",
                    (true, None) => "interrupted",
                    (true, Some(v)) => v.as_str(),
                },
                r.duration_s,
                if r.extended { " (extended)" } else { "" },
                r.stable.real,
                r.stable.synthetic,
                r.canary.real,
                r.canary.synthetic
            ));
            if let Some(w) = &r.warmup {
                out.push_str(&format!(
                    "    after a warm-up of {:.0} s (judged on errors only): stable {} requests, canary {} ({} failed)\n",
                    w.duration_s,
                    w.stable.real + w.stable.synthetic,
                    w.canary.real + w.canary.synthetic,
                    w.canary.errors
                ));
            }
        }
        if self.canary_scraped {
            out.push_str(&format!(
                "  monitor: {} is a scrape target of the monitor's Prometheus\n",
                self.canary_host
            ));
        }
        if let Some(e) = &self.last_error {
            out.push_str(&format!("  last error: {e}\n"));
        }
        out
    }
}

/// The state files of one state directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    pub dir: PathBuf,
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateStore { dir: dir.into() }
    }

    pub fn path(&self, environment: &str, app: &str) -> PathBuf {
        self.dir.join(format!("rollout-{environment}-{app}.json"))
    }

    fn lock_path(&self, environment: &str, app: &str) -> PathBuf {
        self.dir.join(format!("rollout-{environment}-{app}.lock"))
    }

    /// The rollout lock of this app and environment, or [`RolloutError::Busy`] when another process
    /// holds it.
    pub fn lock(&self, environment: &str, app: &str) -> Result<FileLock, RolloutError> {
        let path = self.lock_path(environment, app);
        self.ensure_dir()?;
        match FileLock::try_acquire(&path) {
            Ok(Some(l)) => Ok(l),
            Ok(None) => Err(RolloutError::Busy {
                app: app.into(),
                environment: environment.into(),
                pid: self.load(environment, app).ok().flatten().map(|s| s.pid),
            }),
            Err(source) => Err(RolloutError::State { path, source }),
        }
    }

    /// Waits up to `patience` for the lock (a rollout that was told to stop lets go of it).
    pub async fn lock_within(
        &self,
        environment: &str,
        app: &str,
        patience: std::time::Duration,
    ) -> Result<FileLock, RolloutError> {
        let until = std::time::Instant::now() + patience;
        loop {
            match self.lock(environment, app) {
                Err(RolloutError::Busy { .. }) if std::time::Instant::now() < until => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    fn ensure_dir(&self) -> Result<(), RolloutError> {
        crate::fsutil::ensure_private_dir(&self.dir).map_err(|source| RolloutError::State {
            path: self.dir.clone(),
            source,
        })
    }

    /// Writes `state` (0600, atomically), stamping `updated_at`.
    pub fn save(&self, state: &mut RolloutState) -> Result<(), RolloutError> {
        self.ensure_dir()?;
        state.updated_at = now_s();
        let path = self.path(&state.settings.environment, &state.settings.app);
        let mut text = serde_json::to_vec_pretty(state).expect("the state serializes");
        text.push(b'\n');
        crate::fsutil::write_atomic(&path, &text, 0o600)
            .map_err(|source| RolloutError::State { path, source })
    }

    /// The recorded state, `None` when there is none.
    pub fn load(&self, environment: &str, app: &str) -> Result<Option<RolloutState>, RolloutError> {
        let path = self.path(environment, app);
        read(&path)
    }

    /// Every recorded rollout of `environment` (any app), sorted by app.
    pub fn all(&self, environment: &str) -> Result<Vec<RolloutState>, RolloutError> {
        let prefix = format!("rollout-{environment}-");
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix)
                && Path::new(&name).extension().is_some_and(|x| x == "json")
            {
                if let Some(s) = read(&e.path())? {
                    out.push(s);
                }
            }
        }
        out.sort_by(|a, b| a.settings.app.cmp(&b.settings.app));
        Ok(out)
    }
}

fn read(path: &Path) -> Result<Option<RolloutState>, RolloutError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RolloutError::State {
                path: path.into(),
                source,
            })
        }
    };
    let state: RolloutState = serde_json::from_slice(&text).map_err(|e| RolloutError::Corrupt {
        path: path.into(),
        message: e.to_string(),
    })?;
    if state.version != STATE_VERSION {
        return Err(RolloutError::Corrupt {
            path: path.into(),
            message: format!(
                "layout version {} (this pipeline reads version {STATE_VERSION})",
                state.version
            ),
        });
    }
    Ok(Some(state))
}
