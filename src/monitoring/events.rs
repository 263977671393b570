//! Deploy, canary and rollout events on the dashboard: [`record`] pushes one event (kind, app,
//! version, verdict, time) to the monitor host's Pushgateway through the dashboard's nginx
//! (`POST /events/id/<ms>`, with the dashboard's login from `<state_dir>/secrets/`), where Prometheus
//! scrapes it as `pipeline_event_timestamp_seconds{kind,app,version,verdict}` and the page marks it on
//! the cards' time axis. Recording never fails the command that records: without a monitor host it says
//! so in a note, and a push that fails is a warning.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::monitoring::MONITOR_GROUP;
use crate::ui::Ui;

/// One event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `deploy`, `canary` or `rollout`.
    pub kind: String,
    /// The app as the dashboard names it (`iTrust`, `checkbox.io`).
    pub app: String,
    /// What was deployed or judged (a commit, a branch, `master..feature`).
    pub version: String,
    /// `success`/`failed` for a deploy, the judge's verdict (`PASS`, `FAIL`, …) for a canary, how it ended
    /// for a rollout (`promoted`, `rolled-back`, `aborted`, `paused`).
    pub verdict: String,
    pub time: SystemTime,
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Event {
    pub fn new(kind: &str, app: &str, version: &str, verdict: &str) -> Event {
        Event {
            kind: kind.into(),
            app: app.into(),
            version: version.into(),
            verdict: verdict.into(),
            time: SystemTime::now(),
        }
    }

    fn seconds(&self) -> f64 {
        self.time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    }

    /// The event in Prometheus' text format, as the Pushgateway takes it.
    pub fn exposition(&self) -> String {
        format!(
            "# HELP pipeline_event_timestamp_seconds A deploy or canary recorded by pipeline, at its time.\n\
             # TYPE pipeline_event_timestamp_seconds gauge\n\
             pipeline_event_timestamp_seconds{{kind=\"{}\",app=\"{}\",version=\"{}\",verdict=\"{}\"}} {:.3}\n",
            escape(&self.kind),
            escape(&self.app),
            escape(&self.version),
            escape(&self.verdict),
            self.seconds()
        )
    }

    /// The Pushgateway grouping key path: one group per event, so each one is kept.
    pub fn group_path(&self) -> String {
        let ms = self
            .time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        format!("id/{}-{ms}", self.kind)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the monitor at {url} did not take the event: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the monitor at {url} refused the event with HTTP {status}{hint}")]
    Refused {
        url: String,
        status: u16,
        hint: &'static str,
    },
}

/// Pushes `event` to the dashboard site at `base` (e.g. `http://203.0.113.5`), with the login if given.
pub async fn push(
    base: &str,
    login: Option<(&str, &str)>,
    event: &Event,
) -> Result<(), EventError> {
    push_text(base, login, &event.group_path(), event.exposition()).await
}

/// Pushes `body` (Prometheus' text format) into the Pushgateway group `group` (e.g. `id/deploy-1`) through
/// the dashboard site at `base`: it replaces the metrics of the same names in that group.
pub async fn push_text(
    base: &str,
    login: Option<(&str, &str)>,
    group: &str,
    body: String,
) -> Result<(), EventError> {
    let url = format!("{}/events/{group}", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|source| EventError::Http {
            url: url.clone(),
            source,
        })?;
    let mut request = client
        .post(&url)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(body);
    if let Some((user, password)) = login {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.map_err(|source| EventError::Http {
        url: url.clone(),
        source,
    })?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let hint = match status {
            401 => " (the dashboard login in .pipeline/secrets/dashboard-password does not match; re-run `pipeline monitor-setup`)",
            404 | 405 => " (this monitor predates event recording; re-run `pipeline monitor-setup`)",
            _ => "",
        };
        return Err(EventError::Refused { url, status, hint });
    }
    Ok(())
}

/// Records `event` on the monitor host of `inventory_path`, if it has one. Never fails: a missing monitor
/// is a note, a failed push a warning (the deploy, canary or rollout itself has already happened).
pub async fn record(inventory_path: &Path, state_dir: &Path, ui: &Ui, event: &Event) {
    use crate::inventory::InventoryError;
    use crate::monitoring::endpoint::{self, EndpointError};
    let dashboard = match endpoint::dashboard(inventory_path, state_dir) {
        Ok(d) => d,
        Err(
            EndpointError::NoMonitor(_) | EndpointError::Inventory(InventoryError::Missing { .. }),
        ) => {
            ui.info(format!(
                "note: {} has no [{MONITOR_GROUP}] host, so this {} is not recorded on a dashboard",
                inventory_path.display(),
                event.kind
            ));
            return;
        }
        Err(e) => {
            ui.warn(format!(
                "the {} was not recorded on the dashboard: {e}",
                event.kind
            ));
            return;
        }
    };
    let login = dashboard
        .login
        .as_ref()
        .map(|(user, password)| (user.as_str(), password.as_str()));
    let host = dashboard.base_url.trim_start_matches("http://").to_string();
    match push(&format!("http://{host}"), login, event).await {
        Ok(()) => ui.info(format!(
            "Recorded the {} of {} {} ({}) on the dashboard at http://{host}/dashboard/",
            event.kind, event.app, event.version, event.verdict
        )),
        Err(e) => ui.warn(format!(
            "the {} was not recorded on the dashboard: {e}",
            event.kind
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_one_gauge_with_escaped_labels_and_its_time() {
        let mut e = Event::new("deploy", "checkbox.io", "v\"1\"", "success");
        e.time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let text = e.exposition();
        assert!(
            text.contains(
                "pipeline_event_timestamp_seconds{kind=\"deploy\",app=\"checkbox.io\",version=\"v\\\"1\\\"\",verdict=\"success\"} 1700000000.250\n"
            ),
            "{text}"
        );
        assert_eq!(e.group_path(), "id/deploy-1700000000250");
    }
}
