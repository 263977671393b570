//! Prometheus metrics in `pipeline canary`: the `[canary]` keys (`prometheus`, `prometheus_step`,
//! `metrics_file` or inline `[[canary.metric]]`, `[canary.arms]`) resolved before anything is deployed, and
//! the queries run for the load window afterwards, judged in the same family as the per-request metrics.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::canary::judge::MetricInput;
use crate::monitoring::endpoint::Dashboard;

use super::{
    collect, time, Arms, Auth, Client, MetricSpec, MetricsFile, PlannedMetric, PromError, Window,
};

/// The Prometheus keys of the `[canary]` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CanaryPromSection {
    /// Root URL of the Prometheus to query (`--prometheus` wins).
    pub prometheus: Option<String>,
    /// Range-query resolution, e.g. "5s" (default 15s).
    pub prometheus_step: Option<String>,
    /// A metrics file as for `pipeline analyze --prometheus`.
    pub metrics_file: Option<PathBuf>,
    /// Inline `[[canary.metric]]` tables.
    #[serde(default)]
    pub metric: Vec<MetricSpec>,
    /// `[canary.arms]` for inline metrics (default: the hosts, `blue` and `green`).
    pub arms: Option<Arms>,
}

/// Resolved Prometheus queries of a canary run.
#[derive(Debug, Clone)]
pub struct CanaryQueries {
    client: Client,
    metrics: Vec<PlannedMetric>,
    step: f64,
}

/// What `$arm` means in a canary when no `[arms]` says otherwise: the host each arm runs on.
pub const DEFAULT_ARMS: (&str, &str) = ("blue", "green");

/// Checks the keys and the metrics before anything is deployed; `None` when no metric is configured.
/// The server is `flag_url`, else `[canary] prometheus` (credentials from the environment), else the
/// monitor's Prometheus through its dashboard's nginx, from `monitor` (asked only then), with the
/// dashboard's login.
pub fn resolve(
    flag_url: Option<String>,
    section: CanaryPromSection,
    config_path: &Path,
    monitor: impl FnOnce() -> Result<Dashboard, String>,
) -> Result<Option<CanaryQueries>, PromError> {
    resolve_with_arms(flag_url, section, config_path, monitor, None)
}

/// [`resolve`], with `$arm` standing for `arms` whatever `[arms]` the file or section names (`None`: theirs,
/// else [`DEFAULT_ARMS`]). `pipeline rollout` passes its own hosts here.
pub fn resolve_with_arms(
    flag_url: Option<String>,
    section: CanaryPromSection,
    config_path: &Path,
    monitor: impl FnOnce() -> Result<Dashboard, String>,
    arms: Option<Arms>,
) -> Result<Option<CanaryQueries>, PromError> {
    let url = flag_url.or(section.prometheus);
    let mut file = match (&section.metrics_file, section.metric.is_empty()) {
        (Some(_), false) => {
            return Err(PromError::MetricsFile {
                path: config_path.to_path_buf(),
                why: "[canary] has both `metrics_file` and inline [[canary.metric]] tables; use one".into(),
            })
        }
        (Some(path), true) => MetricsFile::read(path)?,
        (None, false) => MetricsFile {
            arms: section.arms.clone().unwrap_or_default(),
            metrics: section.metric,
        },
        (None, true) => {
            return match url {
                Some(url) => Err(PromError::MetricsFile {
                    path: config_path.to_path_buf(),
                    why: format!("a Prometheus ({url}) is given but no metric to query; add `metrics_file` or [[canary.metric]] tables to [canary]"),
                }),
                None => Ok(None),
            }
        }
    };
    let origin = section.metrics_file.as_deref().unwrap_or(config_path);
    let (url, auth) = match url {
        Some(url) => (url, Auth::from_env()?),
        None => {
            let dashboard = monitor().map_err(|why| PromError::MetricsFile {
                path: origin.to_path_buf(),
                why: format!(
                    "Prometheus metrics are configured but no server: no --prometheus URL, no [canary] prometheus, \
                     and the monitor's Prometheus cannot be found ({why}); pass one of the first two, or \
                     --monitor-inventory FILE naming the inventory `pipeline monitor-setup` was run with"
                ),
            })?;
            let auth = match dashboard.login {
                Some((user, password)) => Auth::Basic { user, password },
                // A dashboard set up with `-e dashboard_auth=false`.
                None => Auth::from_env()?,
            };
            (dashboard.base_url, auth)
        }
    };
    if let Some(arms) = arms {
        file.arms = arms;
    }
    file.arms
        .baseline
        .get_or_insert_with(|| DEFAULT_ARMS.0.into());
    file.arms
        .canary
        .get_or_insert_with(|| DEFAULT_ARMS.1.into());
    let metrics = file.plan(origin)?;
    let step = time::parse_duration(section.prometheus_step.as_deref().unwrap_or("15s"))?;
    let client = Client::new(&url, auth)?;
    Ok(Some(CanaryQueries {
        client,
        metrics,
        step,
    }))
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl CanaryQueries {
    /// Queries every metric for the load window `[start, end]`; time offsets count from `start`, as the
    /// per-request samples' do. Returns the metrics and notes (empty results, dropped points).
    pub async fn query(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<(Vec<MetricInput>, Vec<String>), PromError> {
        self.query_unix(unix(start), unix(end)).await
    }

    /// [`CanaryQueries::query`] over `[start, end]` in Unix seconds.
    pub async fn query_unix(
        &self,
        start: f64,
        end: f64,
    ) -> Result<(Vec<MetricInput>, Vec<String>), PromError> {
        let window = Window {
            start,
            end,
            step: self.step,
        };
        let collected = collect(&self.client, &self.metrics, &window).await?;
        Ok((collected.input.metrics, collected.notes))
    }

    /// Every metric without samples: what a sequential judge plans its family from.
    pub fn plan(&self) -> Vec<MetricInput> {
        self.metrics
            .iter()
            .map(|m| m.input(Default::default(), Default::default()))
            .collect()
    }

    /// Each metric's name and its two queries, as resolved.
    pub fn metrics(&self) -> &[PlannedMetric] {
        &self.metrics
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_monitor() -> Result<Dashboard, String> {
        Err("inventory.ini has no [monitor] host".into())
    }

    #[test]
    fn without_a_url_the_monitor_s_dashboard_is_queried_with_its_login() {
        let s = "[[metric]]\nname = 'x'\nquery = '$arm'\n";
        let monitor = || {
            Ok(Dashboard {
                base_url: "http://10.0.0.5:8080".into(),
                login: Some(("pipeline".into(), "pw".into())),
            })
        };
        let q = resolve(None, section(s), Path::new("p.toml"), monitor)
            .unwrap()
            .unwrap();
        assert_eq!(q.url(), "http://10.0.0.5:8080");
        assert!(
            format!("{:?}", q.client).contains("Basic(pipeline, ***)"),
            "{:?}",
            q.client
        );
        // A URL given means the inventory is never read.
        let given = "prometheus = 'http://a:1'\n[[metric]]\nname = 'x'\nquery = '$arm'\n";
        let q = resolve(None, section(given), Path::new("p.toml"), || {
            panic!("the monitor must not be looked up")
        })
        .unwrap()
        .unwrap();
        assert_eq!(q.url(), "http://a:1");
    }

    fn section(toml_text: &str) -> CanaryPromSection {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn no_metrics_and_no_server_means_no_prometheus_queries() {
        assert!(resolve(None, section(""), Path::new("p.toml"), no_monitor)
            .unwrap()
            .is_none());
    }

    #[test]
    fn inline_metrics_default_arm_names_to_the_hosts() {
        let s = section("prometheus = 'http://127.0.0.1:9090'\n[[metric]]\nname = 'cpu'\nquery = 'cpu{host=\"$arm\"}'\n");
        let q = resolve(None, s, Path::new("p.toml"), no_monitor)
            .unwrap()
            .unwrap();
        assert_eq!(q.metrics[0].baseline_query, r#"cpu{host="blue"}"#);
        assert_eq!(q.metrics[0].canary_query, r#"cpu{host="green"}"#);
        assert_eq!(q.step, 15.0);
    }

    #[test]
    fn the_flag_beats_the_section_and_metrics_need_a_server() {
        let s = "prometheus = 'http://a:1'\n[[metric]]\nname = 'x'\nquery = '$arm'\n";
        let q = resolve(
            Some("http://b:2".into()),
            section(s),
            Path::new("p.toml"),
            no_monitor,
        )
        .unwrap()
        .unwrap();
        assert_eq!(q.url(), "http://b:2");
        let e = resolve(
            None,
            section("[[metric]]\nname = 'x'\nquery = '$arm'\n"),
            Path::new("p.toml"),
            no_monitor,
        )
        .unwrap_err();
        assert!(
            e.is_usage()
                && e.to_string().contains("--prometheus")
                && e.to_string()
                    .contains("inventory.ini has no [monitor] host"),
            "{e}"
        );
        let e = resolve(
            Some("http://b:2".into()),
            section(""),
            Path::new("p.toml"),
            no_monitor,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no metric"), "{e}");
    }

    #[test]
    fn a_metrics_file_and_inline_metrics_together_are_refused() {
        let s = "metrics_file = 'm.toml'\n[[metric]]\nname = 'x'\nquery = '$arm'\n";
        let e = resolve(
            Some("http://b:2".into()),
            section(s),
            Path::new("p.toml"),
            no_monitor,
        )
        .unwrap_err();
        assert!(e.to_string().contains("use one"), "{e}");
    }
}
