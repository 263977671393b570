//! A running rollout on the dashboard: the canary's current weight, the phase and the verdict so far, pushed
//! to the monitor's Pushgateway (through the dashboard's nginx, as the events are) into one group per app,
//! `id/rollout-<app>`, so each push replaces the last. Prometheus scrapes it as
//! `pipeline_rollout_canary_weight{app, version, phase, verdict, active}` (the value is the weight); the
//! page shows `rollout: canary 25 %, verdict so far PASS` on the app's group while `active="true"` and
//! clears it once the rollout has ended (`active="false"`, pushed when it is done).
//!
//! [`Progress`] pushes from a background task fed by a watch channel: the rollout never waits for the
//! monitor, states that come faster than the pushes collapse into the newest, and a monitor that does not
//! answer costs one warning (and is not asked again, not even for the rollout's event), never the rollout.

use tokio::sync::watch;

use super::endpoint::Dashboard;
use super::events::{push_text, EventError};
use crate::ui::Ui;

/// What the dashboard shows of one rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutStatus {
    /// The app as the dashboard names it (`checkbox.io`, `iTrust`).
    pub app: String,
    /// The inventory group (`checkbox`, `itrust`): the Pushgateway group's name.
    pub key: String,
    pub version: String,
    /// The phase in a few words (`step 2/4 (25 % to the canary)`).
    pub phase: String,
    /// The share of requests the front door sends to the canary.
    pub weight: u8,
    /// The verdict so far (`PASS`, `INCONCLUSIVE`, …; `none yet` before the first look).
    pub verdict: String,
    /// Whether the rollout still has a canary or a step to run (false once it is done).
    pub active: bool,
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl RolloutStatus {
    /// The status in Prometheus' text format, as the Pushgateway takes it.
    pub fn exposition(&self) -> String {
        format!(
            "# HELP pipeline_rollout_canary_weight The canary's share of the requests (percent) of a rollout recorded by pipeline.\n\
             # TYPE pipeline_rollout_canary_weight gauge\n\
             pipeline_rollout_canary_weight{{app=\"{}\",version=\"{}\",phase=\"{}\",verdict=\"{}\",active=\"{}\"}} {}\n",
            escape(&self.app),
            escape(&self.version),
            escape(&self.phase),
            escape(&self.verdict),
            self.active,
            self.weight
        )
    }

    /// One Pushgateway group per app: each push replaces the app's previous status.
    pub fn group_path(&self) -> String {
        format!("id/rollout-{}", self.key)
    }
}

/// Pushes `status` to the dashboard site at `base`, with the login if given.
pub async fn push(
    base: &str,
    login: Option<(&str, &str)>,
    status: &RolloutStatus,
) -> Result<(), EventError> {
    push_text(base, login, &status.group_path(), status.exposition()).await
}

/// The background pusher of one rollout's status.
pub struct Progress {
    tx: watch::Sender<Option<RolloutStatus>>,
    /// Ends `true` when the dashboard did not take a push (and the warning said so).
    task: tokio::task::JoinHandle<bool>,
}

impl Progress {
    /// Starts pushing to `dashboard` (within a Tokio runtime).
    pub fn start(dashboard: Dashboard, ui: Ui) -> Progress {
        let (tx, mut rx) = watch::channel::<Option<RolloutStatus>>(None);
        let task = tokio::spawn(async move {
            let login = dashboard
                .login
                .as_ref()
                .map(|(u, p)| (u.as_str(), p.as_str()));
            let mut last: Option<RolloutStatus> = None;
            loop {
                let open = rx.changed().await.is_ok();
                let current = rx.borrow_and_update().clone();
                if let Some(status) = current.filter(|s| last.as_ref() != Some(s)) {
                    if let Err(e) = push(&dashboard.base_url, login, &status).await {
                        // A monitor that does not answer is not asked again during this run, not even
                        // for the rollout's event at the end.
                        ui.warn(format!(
                            "rollout: the dashboard does not show this rollout (nor its event at the end): {e}"
                        ));
                        return true;
                    }
                    last = Some(status);
                }
                if !open {
                    return false;
                }
            }
        });
        Progress { tx, task }
    }

    /// The newest status (pushed when the pusher is free; an unchanged status is not pushed again).
    pub fn update(&self, status: RolloutStatus) {
        self.tx.send_replace(Some(status));
    }

    /// Pushes the newest status if it is not out yet, then stops (at most 15 s). Returns whether the
    /// dashboard did not take a push during the run (the warning is out: do not ask it again).
    pub async fn finish(self) -> bool {
        let Progress { tx, task } = self;
        drop(tx);
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(15), task).await,
            Ok(Ok(true))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(weight: u8) -> RolloutStatus {
        RolloutStatus {
            app: "checkbox.io".into(),
            key: "checkbox".into(),
            version: "v2".into(),
            phase: "step 1/4 (5 % to the canary)".into(),
            weight,
            verdict: "none yet".into(),
            active: true,
        }
    }

    #[tokio::test]
    async fn a_monitor_that_does_not_answer_is_given_up_at_once_and_does_not_hold_up_the_end() {
        // A port nothing listens on: the first push is refused, the rest are not tried.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let progress = Progress::start(
            Dashboard {
                base_url: format!("http://127.0.0.1:{port}"),
                login: None,
            },
            Ui::new(true),
        );
        progress.update(status(5));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(progress.task.is_finished(), "the pusher gave up");
        progress.update(status(25));
        let began = std::time::Instant::now();
        assert!(progress.finish().await, "it says the dashboard gave up");
        assert!(began.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn the_status_is_one_gauge_per_app_whose_value_is_the_weight() {
        let s = RolloutStatus {
            app: "checkbox.io".into(),
            key: "checkbox".into(),
            version: "v\"2\"".into(),
            phase: "step 2/4 (25 % to the canary)".into(),
            weight: 25,
            verdict: "PASS".into(),
            active: true,
        };
        assert!(s.exposition().ends_with(
            "pipeline_rollout_canary_weight{app=\"checkbox.io\",version=\"v\\\"2\\\"\",phase=\"step 2/4 (25 % to the canary)\",verdict=\"PASS\",active=\"true\"} 25\n"
        ), "{}", s.exposition());
        assert_eq!(s.group_path(), "id/rollout-checkbox");
    }
}
