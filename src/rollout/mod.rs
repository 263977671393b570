//! `pipeline rollout`: progressive delivery to production on plain hosts. A canary host gets the new
//! version, the front door sends it a growing share of the app's real requests step by step, the
//! sequential judge compares it with the stable hosts on the requests the front door logged in each step,
//! and the rollout promotes (a rolling deploy of the stable hosts) or rolls back on its own.
//!
//! Layout as for the canary: [`plan`] (what a rollout will do, pure), [`state`] (the state file written
//! before every action), [`world`] (the effects behind a small trait), [`exec`] (the one loop that runs,
//! resumes and aborts), [`settings`] (flag > env > `[rollout]` > default), [`control`] (what the command
//! line starts, resumes, aborts and reads, on the real world of [`real`]), [`monitor`] (Prometheus metrics
//! judged per step, the weight and verdict on the dashboard, the rollout's event), [`load`] (the synthetic
//! requests of `--load`), [`report`] (one report per rollout, each judged step's inside), [`scrape`] (the
//! canary host on the monitor's Prometheus while it runs).

pub mod canary_host;
pub mod control;
pub mod exec;
pub mod front_door;
pub mod load;
pub mod monitor;
pub mod plan;
pub mod real;
pub mod report;
pub mod scrape;
pub mod settings;
pub mod state;
pub mod target;
pub mod world;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

/// What can stop a rollout besides a world action's own error.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("cannot write or read the rollout state {path}: {source}; check the state directory's permissions (--state-dir)")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the rollout state {path} cannot be read: {message}; move it away and clean up by hand (`pipeline prod status`), or fix it")]
    Corrupt { path: PathBuf, message: String },
    #[error("a rollout of {app} in environment {environment} is running{}; wait for it, or stop it with `pipeline rollout abort {app}`", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy {
        app: String,
        environment: String,
        pid: Option<u32>,
    },
    #[error("a rollout of {app} in environment {environment} is already recorded ({phase}); continue it with `pipeline rollout resume {app}` or end it with `pipeline rollout abort {app}`")]
    InProgress {
        app: String,
        environment: String,
        phase: String,
    },
    #[error("no rollout is recorded{}; start one with `pipeline rollout APP --ref REF`", app.as_ref().map(|a| format!(" for {a} in environment {environment}")).unwrap_or_else(|| format!(" in environment {environment}")))]
    NoneRecorded {
        app: Option<String>,
        environment: String,
    },
    #[error("{count} rollouts are recorded in environment {environment} ({apps}); name the app")]
    Ambiguous {
        count: usize,
        environment: String,
        apps: String,
    },
    #[error("the rollout of {app} has finished ({outcome}); there is nothing to resume")]
    Finished { app: String, outcome: &'static str },
    #[error("the canary deploy failed on {host}:\n{summary}")]
    CanaryDeploy { host: String, summary: String },
    #[error("the judge could not run: {0}")]
    Judge(#[from] crate::canary::judge::JudgeError),
}

impl RolloutError {
    /// Whether the mistake is the user's (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RolloutError::InProgress { .. }
                | RolloutError::NoneRecorded { .. }
                | RolloutError::Ambiguous { .. }
                | RolloutError::Finished { .. }
        )
    }
}
