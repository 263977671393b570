//! What a rollout's actions do to the world, behind one small trait: [`RolloutWorld`]. The executor
//! ([`super::exec`]) only sees the trait, so its state machine is tested against a fake (time passes
//! virtually, requests are generated per weight) without root. Every action is idempotent: after a crash
//! `resume` and `abort` redo the one that was under way.

use serde::{Deserialize, Serialize};

use super::state::RolloutState;
use crate::canary::judge::MetricInput;

/// Which arm served a request, as the front door logged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    Stable,
    Canary,
    /// No upstream answered (the front door's own 502/504 without an upstream address), or an address
    /// that is none of the app's hosts.
    Neither,
}

/// One request through the front door.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observed {
    /// When the front door logged it, unix seconds.
    pub at: f64,
    pub arm: Arm,
    /// `None`: the client went away before a response (nginx logs 499).
    pub status: Option<u16>,
    /// Upstream response time (the request time when there was no upstream), milliseconds.
    pub latency_ms: f64,
    pub bytes: u64,
    /// Sent by the tool's own load generator (`--load`), marked by a request header.
    pub synthetic: bool,
}

/// A deploy's outcome in a line or two (for the report and the error on failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploySummary {
    pub what: String,
    pub success: bool,
    pub text: String,
    pub duration_s: f64,
    /// A rolling deploy's batches in order (empty for a deploy of one host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<DeployBatch>,
}

/// One batch of a rolling deploy and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployBatch {
    pub hosts: Vec<String>,
    /// `ok`, `failed`, or `not reached` (a batch after a failed one).
    pub result: String,
}

impl DeployBatch {
    /// The batches of `batches` (host names in deploy order) given the hosts that failed.
    pub fn of(batches: &[&[String]], failed: &[String]) -> Vec<DeployBatch> {
        let mut stopped = false;
        batches
            .iter()
            .map(|b| {
                let result = if stopped {
                    "not reached"
                } else if b.iter().any(|h| failed.contains(h)) {
                    stopped = true;
                    "failed"
                } else {
                    "ok"
                };
                DeployBatch {
                    hosts: b.to_vec(),
                    result: result.into(),
                }
            })
            .collect()
    }
}

/// The effects of a rollout.
#[allow(async_fn_in_trait)]
pub trait RolloutWorld {
    /// Unix seconds now (virtual in the fake).
    fn now(&self) -> f64;
    /// Lets `seconds` pass (the fake advances its clock and generates the requests of that time).
    async fn wait(&mut self, seconds: f64);
    /// Creates the canary host, or finds it.
    async fn provision_canary(&mut self) -> anyhow::Result<()>;
    /// Deploys the new version on the canary host with the app's roles and variables.
    async fn deploy_canary(&mut self) -> anyhow::Result<DeploySummary>;
    /// Checks the canary host directly (not through the front door).
    async fn check_canary(&mut self) -> anyhow::Result<()>;
    /// Sends `weight` % of the app's requests to the canary (0: the canary is out of the front door's
    /// configuration), with a graceful reload.
    async fn set_weight(&mut self, weight: u8) -> anyhow::Result<()>;
    /// Starts (`Some(rate)`) or stops (`None`) the synthetic load through the front door.
    async fn load(&mut self, rate: Option<f64>) -> anyhow::Result<()>;
    /// The requests the front door logged since the last call.
    async fn observe(&mut self) -> anyhow::Result<Vec<Observed>>;
    /// Updates the stable hosts to the new version, a rolling deploy through the front door.
    async fn promote(&mut self) -> anyhow::Result<DeploySummary>;
    /// Destroys the canary host; fine when it does not exist.
    async fn retire_canary(&mut self) -> anyhow::Result<()>;
    /// Whether the monitor's Prometheus is to scrape the canary host: the inventory has a `[monitor]`
    /// host. No by default.
    fn scrapes_canary(&self) -> bool {
        false
    }
    /// Gives the canary host node_exporter (firewalled to the monitor host, as monitor-setup does for
    /// the app's hosts) and adds it to the monitor's Prometheus targets with the labels the app's hosts
    /// have; idempotent.
    async fn scrape_canary(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Removes the canary host's targets from the monitor's Prometheus; fine when there are none.
    async fn unscrape_canary(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// The Prometheus metrics (`[[canary.metric]]`) judged with the per-request ones, without samples:
    /// each step's judge plans its family from them. None by default.
    fn metric_plan(&self) -> Vec<MetricInput> {
        Vec::new()
    }
    /// Those metrics over `[from, to]` (Unix seconds): the stable hosts are the baseline arm, the canary
    /// host the canary arm, time offsets count from `from`; with notes (no data, dropped points).
    async fn metrics(
        &mut self,
        from: f64,
        to: f64,
    ) -> anyhow::Result<(Vec<MetricInput>, Vec<String>)> {
        let _ = (from, to);
        Ok((Vec::new(), Vec::new()))
    }
    /// Told after every write of the state (before each action, after each look): the dashboard's view
    /// of the rollout. Nothing by default.
    fn recorded(&mut self, state: &RolloutState) {
        let _ = state;
    }
}

/// The inventory group of the front door host.
pub const LB_GROUP: &str = "lb";
