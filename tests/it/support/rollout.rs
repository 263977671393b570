//! A recorded rollout of checkbox.io, for the tests that start from a state file instead of a run of
//! `pipeline rollout` (status, resume, the dashboard, the DigitalOcean canary host).

use std::path::PathBuf;

use pipeline::rollout::state::{Recorded, RolloutState};

/// What `pipeline rollout checkbox.io --ref v2 --provider local` records with the default steps
/// (5, 25, 50, 100 %), 20 s a step extended up to 60 s, a look every 5 s and no synthetic load; the
/// canary `checkbox-canary` joins `stable` behind the front door `lb`. Adjust the fields a test needs.
pub fn checkbox_rollout(report_dir: impl Into<PathBuf>, stable: &[&str]) -> RolloutState {
    RolloutState::new(
        Recorded {
            app: "checkbox".into(),
            provider: "local".into(),
            environment: "prod".into(),
            inventory: "inventory.ini".into(),
            source: None,
            git_ref: Some("v2".into()),
            artifact: None,
            extra_vars: Vec::new(),
            steps: vec![5, 25, 50, 100],
            step_time_s: 20.0,
            max_step_time_s: 60.0,
            look_every_s: 5.0,
            warmup_s: 0.0,
            load: None,
            report_dir: report_dir.into(),
        },
        stable.iter().map(|h| (*h).to_string()).collect(),
        "checkbox-canary".into(),
        "lb".into(),
    )
}
