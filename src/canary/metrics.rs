//! Host metrics for the canary: parsing node_exporter's Prometheus text format, turning two scrapes into CPU
//! and memory figures, and the sampler that scrapes blue and green once a second while the load runs.
//!
//! CPU busy % between two scrapes is `100 · (1 − Δ(idle + iowait) / Δ(all modes))`, summed over every CPU
//! (`node_cpu_seconds_total`); memory used % is `100 · (1 − MemAvailable / MemTotal)`. A scrape that fails is
//! counted, never fatal: a host that dies mid-run simply stops producing samples.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricsError {
    #[error("line {line} of the metrics text is malformed: {message}")]
    Syntax { line: usize, message: String },
    #[error("the metrics text has no {0}: is this node_exporter's /metrics?")]
    Missing(&'static str),
}

/// One sample line of the Prometheus text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl PromSample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the Prometheus text format (version 0.0.4): comments and blank lines are skipped; each other
/// line is `name{label="value",…} value [timestamp]`. Label values may hold escaped `\\`, `\"` and `\n`.
pub fn parse_prometheus(text: &str) -> Result<Vec<PromSample>, MetricsError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: &str| MetricsError::Syntax {
            line: i + 1,
            message: format!("{message} in `{line}`"),
        };
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| err("no value"))?;
        let name = line[..name_end].to_string();
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(after) = rest.strip_prefix('{') {
            let (parsed, remaining) = parse_labels(after).map_err(|m| err(&m))?;
            labels = parsed;
            rest = remaining;
        }
        let value_text = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| err("no value"))?;
        let value = parse_value(value_text).ok_or_else(|| err("unreadable value"))?;
        out.push(PromSample {
            name,
            labels,
            value,
        });
    }
    Ok(out)
}

type Labels = Vec<(String, String)>;

/// Parses `key="value",…}` and returns the labels and the text after the closing brace.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without `=`")?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start();
        s = s.strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated escape".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((key, value));
        s = s[end + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The counters and gauges of one node_exporter scrape that the canary judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeStats {
    /// Seconds spent in any mode, summed over CPUs.
    pub cpu_total_seconds: f64,
    /// Seconds spent idle or waiting for I/O, summed over CPUs.
    pub cpu_idle_seconds: f64,
    pub mem_total_bytes: f64,
    pub mem_available_bytes: f64,
}

impl NodeStats {
    /// Extracts the canary's figures from node_exporter's `/metrics` text.
    pub fn from_text(text: &str) -> Result<Self, MetricsError> {
        let mut total = None::<f64>;
        let mut idle = 0.0;
        let mut mem_total = None;
        let mut mem_available = None;
        for s in parse_prometheus(text)? {
            match s.name.as_str() {
                "node_cpu_seconds_total" => {
                    *total.get_or_insert(0.0) += s.value;
                    if matches!(s.label("mode"), Some("idle" | "iowait")) {
                        idle += s.value;
                    }
                }
                "node_memory_MemTotal_bytes" => mem_total = Some(s.value),
                "node_memory_MemAvailable_bytes" => mem_available = Some(s.value),
                _ => {}
            }
        }
        Ok(NodeStats {
            cpu_total_seconds: total.ok_or(MetricsError::Missing("node_cpu_seconds_total"))?,
            cpu_idle_seconds: idle,
            mem_total_bytes: mem_total
                .ok_or(MetricsError::Missing("node_memory_MemTotal_bytes"))?,
            mem_available_bytes: mem_available
                .ok_or(MetricsError::Missing("node_memory_MemAvailable_bytes"))?,
        })
    }

    /// Memory in use, in percent of the total.
    pub fn memory_used_percent(&self) -> Option<f64> {
        (self.mem_total_bytes > 0.0)
            .then(|| 100.0 * (1.0 - self.mem_available_bytes / self.mem_total_bytes))
    }

    /// CPU busy % between an earlier scrape and this one; `None` when no CPU time passed (or counters reset).
    pub fn cpu_busy_percent_since(&self, earlier: &NodeStats) -> Option<f64> {
        let total = self.cpu_total_seconds - earlier.cpu_total_seconds;
        let idle = self.cpu_idle_seconds - earlier.cpu_idle_seconds;
        if total <= 0.0 || idle < 0.0 {
            return None;
        }
        Some((100.0 * (1.0 - idle / total)).clamp(0.0, 100.0))
    }
}

/// One second's figures for one host.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HostSample {
    /// Seconds since the sampler started.
    pub offset_s: f64,
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

/// What the sampler saw of one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostSeries {
    pub host: String,
    pub url: String,
    pub samples: Vec<HostSample>,
    /// Scrapes that failed (host down, timeout, unreadable text).
    pub failed_scrapes: u64,
    /// The last failure's message, for the report.
    pub last_error: Option<String>,
}

/// Turns a sequence of timed scrapes into per-interval samples: the first scrape only primes the CPU counters.
pub fn series_from_scrapes(scrapes: &[(f64, NodeStats)]) -> Vec<HostSample> {
    scrapes
        .windows(2)
        .filter_map(|w| {
            let (_, earlier) = w[0];
            let (offset_s, now) = w[1];
            Some(HostSample {
                offset_s,
                cpu_percent: now.cpu_busy_percent_since(&earlier)?,
                memory_percent: now.memory_used_percent()?,
            })
        })
        .collect()
}

/// Fetches one host's `/metrics` text.
#[allow(async_fn_in_trait)]
pub trait Scraper {
    async fn scrape(&self, url: &str) -> Result<String, String>;
}

/// Scrapes over HTTP with a short timeout (one second's worth: a slow scrape must not skew the cadence).
pub struct HttpScraper {
    client: reqwest::Client,
}

impl HttpScraper {
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("a reqwest client with a timeout builds");
        HttpScraper { client }
    }
}

impl Scraper for HttpScraper {
    async fn scrape(&self, url: &str) -> Result<String, String> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        resp.text().await.map_err(|e| format!("GET {url}: {e}"))
    }
}

/// Scrapes every `(host, url)` target each `interval` until `stop` fires, all targets at the same tick.
/// Returns one series per host, in the order given.
pub async fn sample_hosts<S: Scraper>(
    scraper: &S,
    targets: &[(String, String)],
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<HostSeries> {
    let start = Instant::now();
    let mut scrapes: Vec<Vec<(f64, NodeStats)>> = vec![Vec::new(); targets.len()];
    let mut series: Vec<HostSeries> = targets
        .iter()
        .map(|(host, url)| HostSeries {
            host: host.clone(),
            url: url.clone(),
            ..HostSeries::default()
        })
        .collect();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let offset = start.elapsed().as_secs_f64();
        let results = futures_join_all(targets.iter().map(|(_, url)| scraper.scrape(url))).await;
        for (i, result) in results.into_iter().enumerate() {
            match result.and_then(|text| NodeStats::from_text(&text).map_err(|e| e.to_string())) {
                Ok(stats) => scrapes[i].push((offset, stats)),
                Err(e) => {
                    series[i].failed_scrapes += 1;
                    series[i].last_error = Some(e);
                }
            }
        }
    }
    for (s, scraped) in series.iter_mut().zip(&scrapes) {
        s.samples = series_from_scrapes(scraped);
    }
    series
}

/// Awaits every future concurrently, keeping their order (a tiny `join_all` without the futures crate).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futs.map(Box::pin).collect();
    let mut out: BTreeMap<usize, F::Output> = BTreeMap::new();
    std::future::poll_fn(|cx| {
        for (i, f) in pinned.iter_mut().enumerate() {
            if out.contains_key(&i) {
                continue;
            }
            if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                out.insert(i, v);
            }
        }
        if out.len() == pinned.len() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 100
node_cpu_seconds_total{cpu="0",mode="iowait"} 10
node_cpu_seconds_total{cpu="0",mode="user"} 30
node_cpu_seconds_total{cpu="0",mode="system"} 10
node_cpu_seconds_total{cpu="1",mode="idle"} 100
node_cpu_seconds_total{cpu="1",mode="user"} 50
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 7.5e+08
node_memory_MemTotal_bytes 1e+09
node_filesystem_avail_bytes{device="/dev/vda1",fstype="ext4",mountpoint="/"} 1.2345e+10
"#;

    #[test]
    fn parses_names_labels_and_values_including_exponents_and_special_values() {
        let samples = parse_prometheus(
            "a 1\nb{x=\"1\",y=\"two words\"} 2.5e3 1700000000\nc +Inf\nd NaN\n# comment\n\ne{} -Inf\n",
        )
        .unwrap();
        assert_eq!(samples.len(), 5);
        assert_eq!(samples[1].name, "b");
        assert_eq!(samples[1].label("y"), Some("two words"));
        assert_eq!(samples[1].value, 2500.0);
        assert_eq!(samples[2].value, f64::INFINITY);
        assert!(samples[3].value.is_nan());
        assert_eq!(samples[4].value, f64::NEG_INFINITY);
    }

    #[test]
    fn label_values_may_hold_escapes_commas_and_braces() {
        let s = parse_prometheus(r#"m{path="a,b}c",q="say \"hi\"\n",z="back\\slash"} 7"#).unwrap();
        assert_eq!(s[0].label("path"), Some("a,b}c"));
        assert_eq!(s[0].label("q"), Some("say \"hi\"\n"));
        assert_eq!(s[0].label("z"), Some("back\\slash"));
        assert_eq!(s[0].value, 7.0);
    }

    #[test]
    fn malformed_lines_are_errors_with_their_line_number() {
        let err = parse_prometheus("ok 1\nbroken{mode=\"idle\" 3\n").unwrap_err();
        assert!(matches!(err, MetricsError::Syntax { line: 2, .. }), "{err}");
        let err = parse_prometheus("novalue\n").unwrap_err();
        assert!(matches!(err, MetricsError::Syntax { line: 1, .. }), "{err}");
        let err = parse_prometheus("x abc\n").unwrap_err();
        assert!(err.to_string().contains("unreadable value"), "{err}");
    }

    #[test]
    fn node_stats_sum_cpus_and_count_iowait_as_idle() {
        let s = NodeStats::from_text(SCRAPE).unwrap();
        assert_eq!(s.cpu_total_seconds, 300.0);
        assert_eq!(s.cpu_idle_seconds, 210.0);
        assert_eq!(s.memory_used_percent(), Some(25.0));
    }

    #[test]
    fn text_without_node_metrics_is_reported_as_not_node_exporter() {
        let err = NodeStats::from_text("up 1\n").unwrap_err();
        assert_eq!(err, MetricsError::Missing("node_cpu_seconds_total"));
    }

    #[test]
    fn cpu_busy_percent_comes_from_counter_deltas() {
        let a = NodeStats {
            cpu_total_seconds: 100.0,
            cpu_idle_seconds: 80.0,
            mem_total_bytes: 1.0,
            mem_available_bytes: 1.0,
        };
        let b = NodeStats {
            cpu_total_seconds: 102.0,
            cpu_idle_seconds: 80.5,
            ..a
        };
        assert_eq!(b.cpu_busy_percent_since(&a), Some(75.0));
        assert_eq!(a.cpu_busy_percent_since(&a), None, "no time passed");
        assert_eq!(a.cpu_busy_percent_since(&b), None, "counters went back");
    }

    #[test]
    fn first_scrape_only_primes_the_series() {
        let mk = |total: f64, idle: f64| NodeStats {
            cpu_total_seconds: total,
            cpu_idle_seconds: idle,
            mem_total_bytes: 100.0,
            mem_available_bytes: 40.0,
        };
        let series = series_from_scrapes(&[
            (0.0, mk(0.0, 0.0)),
            (1.0, mk(2.0, 1.0)),
            (2.0, mk(4.0, 3.0)),
        ]);
        assert_eq!(
            series,
            vec![
                HostSample {
                    offset_s: 1.0,
                    cpu_percent: 50.0,
                    memory_percent: 60.0
                },
                HostSample {
                    offset_s: 2.0,
                    cpu_percent: 0.0,
                    memory_percent: 60.0
                },
            ]
        );
        assert!(series_from_scrapes(&[(0.0, mk(0.0, 0.0))]).is_empty());
    }

    /// Serves counters that advance on every scrape for "up", and fails for "down".
    struct FakeHosts {
        calls: std::sync::atomic::AtomicU64,
    }

    impl Scraper for FakeHosts {
        async fn scrape(&self, url: &str) -> Result<String, String> {
            if url.contains("down") {
                return Err("connection refused".into());
            }
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as f64;
            Ok(format!(
                "node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {}\nnode_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} {}\nnode_memory_MemTotal_bytes 200\nnode_memory_MemAvailable_bytes 150\n",
                n * 3.0,
                n
            ))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sampler_scrapes_each_tick_until_stopped_and_counts_failures() {
        let scraper = FakeHosts {
            calls: std::sync::atomic::AtomicU64::default(),
        };
        let targets = vec![
            ("blue".to_string(), "http://up/metrics".to_string()),
            ("green".to_string(), "http://down/metrics".to_string()),
        ];
        let (tx, rx) = tokio::sync::watch::channel(false);
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(4500)).await;
            tx.send(true).unwrap();
        };
        let (series, ()) = tokio::join!(
            sample_hosts(&scraper, &targets, Duration::from_secs(1), rx),
            stopper
        );
        // Ticks at 0, 1, 2, 3, 4 s: five scrapes, four intervals.
        assert_eq!(series[0].host, "blue");
        assert_eq!(series[0].samples.len(), 4);
        assert!(series[0]
            .samples
            .iter()
            .all(|s| s.cpu_percent == 25.0 && s.memory_percent == 25.0));
        assert_eq!(series[0].failed_scrapes, 0);
        assert!(series[1].samples.is_empty());
        assert_eq!(series[1].failed_scrapes, 5);
        assert_eq!(series[1].last_error.as_deref(), Some("connection refused"));
    }
}
