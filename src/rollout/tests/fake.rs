//! The fake world of the rollout's tests: virtual time, a front door splitting generated requests by the
//! weight it was last given, a canary that answers well or with 5xx from some weight on, crashes injected
//! into any action (it never returns, as under `kill -9`), failures (an error) and a late clock.

use std::sync::{Arc, Mutex};

use super::super::state::{Phase, StateStore};
use super::super::world::{Arm, DeployBatch, DeploySummary, Observed, RolloutWorld};
use crate::canary::judge::{FailOn, MetricInput};

/// What exists outside the process: it survives a crash of the tool.
#[derive(Debug, Default)]
pub(super) struct Infra {
    pub(super) clock: f64,
    pub(super) weight: u8,
    pub(super) canary_host: bool,
    pub(super) canary_version: Option<&'static str>,
    pub(super) stable_version: &'static str,
    pub(super) log: Vec<Observed>,
    /// Whether the monitor's Prometheus has the canary host as a target.
    pub(super) scraped: bool,
    pub(super) cursor: usize,
    /// When the canary served its first request (a cold start counts from there).
    pub(super) canary_first_at: Option<f64>,
    /// Every action and the phase the state file held when it began.
    pub(super) calls: Vec<(String, Option<Phase>)>,
    pub(super) seq: u64,
}

pub(super) struct Fake {
    pub(super) infra: Arc<Mutex<Infra>>,
    pub(super) store: StateStore,
    /// Real requests per second through the front door.
    pub(super) rate: f64,
    /// The canary answers 500 from this weight on (`None`: never).
    pub(super) broken_from: Option<u8>,
    /// The action (name, and which occurrence from 1) that never returns.
    pub(super) crash_at: Option<(&'static str, usize)>,
    pub(super) count: std::collections::HashMap<&'static str, usize>,
    pub(super) crashed: Arc<tokio::sync::Notify>,
    /// The action (name, and which occurrence from 1) that fails with an error.
    pub(super) fail_at: Option<(&'static str, usize)>,
    /// The synthetic load's rate while it runs: it lives in the tool's process and ends with a crash.
    pub(super) synthetic_rate: Option<f64>,
    /// A Prometheus metric (`cpu_percent`, a sample every 5 s per arm) whose canary runs this many points
    /// above the stable hosts (`None`: no Prometheus metric configured).
    pub(super) prom_shift: Option<f64>,
    /// Every metrics query (from, to), and every state the executor told the world about.
    pub(super) queries: Vec<(f64, f64)>,
    pub(super) told: Vec<super::super::state::RolloutState>,
    /// Seconds every wait overruns by (a real clock wakes a little late).
    pub(super) late_s: f64,
    /// The inventory has a `[monitor]` host: the canary is to be scraped.
    pub(super) monitor: bool,
    /// A cold start: for this many seconds after its first request the canary answers this many ms
    /// slower (a JVM compiling its hot paths).
    pub(super) cold: Option<(f64, f64)>,
    /// A wait that would pass this time (Unix seconds) never returns (`kill -9` between two looks).
    pub(super) crash_at_time: Option<f64>,
}

/// A pseudo-random number in [0, 1) (splitmix64), so that runs are reproducible.
fn unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

impl Fake {
    pub(super) fn new(infra: &Arc<Mutex<Infra>>, store: &StateStore) -> Self {
        Fake {
            infra: infra.clone(),
            store: store.clone(),
            rate: 40.0,
            broken_from: None,
            crash_at: None,
            count: std::collections::HashMap::default(),
            crashed: Arc::new(tokio::sync::Notify::new()),
            fail_at: None,
            synthetic_rate: None,
            prom_shift: None,
            queries: Vec::new(),
            told: Vec::new(),
            late_s: 0.0,
            monitor: false,
            cold: None,
            crash_at_time: None,
        }
    }

    fn cpu(values: (Vec<f64>, Vec<f64>), canary: (Vec<f64>, Vec<f64>)) -> MetricInput {
        let mut m = MetricInput::new("cpu_percent", FailOn::Increase, values.0, canary.0);
        m.baseline_time_s = Some(values.1);
        m.canary_time_s = Some(canary.1);
        m.unit = Some("%".into());
        m.critical = true;
        m
    }

    /// Records the call with the state on disk; an injected crash never returns, an injected failure
    /// is an error.
    async fn call(&mut self, name: &'static str) -> anyhow::Result<()> {
        let phase = self
            .store
            .load("prod", "checkbox")
            .unwrap()
            .map(|s| s.phase);
        self.infra.lock().unwrap().calls.push((name.into(), phase));
        let n = self.count.entry(name).or_default();
        *n += 1;
        if self.crash_at == Some((name, *n)) {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        if self.fail_at == Some((name, *n)) {
            anyhow::bail!("{name} failed (injected)");
        }
        Ok(())
    }

    fn request(&self, infra: &mut Infra, at: f64, synthetic: bool) -> Observed {
        infra.seq += 1;
        let k = infra.seq;
        let canary = infra.canary_host && unit(k * 7 + 1) * 100.0 < infra.weight as f64;
        let broken = canary && self.broken_from.is_some_and(|w| infra.weight >= w);
        let mut latency = 20.0 + 10.0 * unit(k * 7 + 2) + 5.0 * unit(k * 7 + 3);
        if canary {
            let first = *infra.canary_first_at.get_or_insert(at);
            if let Some((for_s, extra_ms)) = self.cold {
                if at < first + for_s {
                    latency += extra_ms;
                }
            }
        }
        Observed {
            at,
            arm: if canary { Arm::Canary } else { Arm::Stable },
            status: Some(if broken { 500 } else { 200 }),
            latency_ms: if broken { 2.0 } else { latency },
            bytes: if broken {
                21
            } else {
                1000 + (unit(k * 7 + 4) * 50.0) as u64
            },
            synthetic,
        }
    }
}

impl RolloutWorld for Fake {
    fn now(&self) -> f64 {
        self.infra.lock().unwrap().clock
    }

    async fn wait(&mut self, seconds: f64) {
        let seconds = seconds + self.late_s;
        if let Some(t) = self.crash_at_time {
            if self.infra.lock().unwrap().clock + seconds >= t {
                self.crashed.notify_one();
                std::future::pending::<()>().await;
            }
        }
        let mut infra = self.infra.lock().unwrap();
        let from = infra.clock;
        let push = |rate: f64, synthetic: bool, infra: &mut Infra| {
            let n = (rate * seconds).round() as usize;
            for i in 0..n {
                let at = from + seconds * (i as f64 + 0.5) / n as f64;
                let r = self.request(infra, at, synthetic);
                infra.log.push(r);
            }
        };
        push(self.rate, false, &mut infra);
        if let Some(rate) = self.synthetic_rate {
            push(rate, true, &mut infra);
        }
        infra.clock = from + seconds;
    }

    async fn provision_canary(&mut self) -> anyhow::Result<()> {
        self.call("provision").await?;
        self.infra.lock().unwrap().canary_host = true;
        Ok(())
    }

    async fn deploy_canary(&mut self) -> anyhow::Result<DeploySummary> {
        self.call("deploy").await?;
        let mut infra = self.infra.lock().unwrap();
        anyhow::ensure!(
            infra.canary_host,
            "deploy on a canary host that does not exist"
        );
        infra.canary_version = Some("v2");
        Ok(DeploySummary {
            what: "canary".into(),
            success: true,
            text: "v2 deployed on checkbox-canary".into(),
            duration_s: 1.0,
            batches: Vec::new(),
        })
    }

    async fn check_canary(&mut self) -> anyhow::Result<()> {
        self.call("check").await?;
        anyhow::ensure!(self.infra.lock().unwrap().canary_version.is_some());
        Ok(())
    }

    async fn set_weight(&mut self, weight: u8) -> anyhow::Result<()> {
        let name: &'static str = if weight == 0 { "weight 0" } else { "weight" };
        let called = self.call(name).await;
        let mut infra = self.infra.lock().unwrap();
        infra.calls.last_mut().unwrap().0 = format!("weight {weight}");
        called?;
        infra.weight = weight;
        Ok(())
    }

    async fn load(&mut self, rate: Option<f64>) -> anyhow::Result<()> {
        self.call("load").await?;
        let mut infra = self.infra.lock().unwrap();
        infra.calls.last_mut().unwrap().0 = match rate {
            Some(r) => format!("load {r}"),
            None => "load off".into(),
        };
        self.synthetic_rate = rate;
        Ok(())
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observed>> {
        let mut infra = self.infra.lock().unwrap();
        let new = infra.log[infra.cursor..].to_vec();
        infra.cursor = infra.log.len();
        Ok(new)
    }

    async fn promote(&mut self) -> anyhow::Result<DeploySummary> {
        self.call("promote").await?;
        self.infra.lock().unwrap().stable_version = "v2";
        Ok(DeploySummary {
            what: "promotion".into(),
            success: true,
            text: "v2 deployed on checkbox-1, checkbox-2".into(),
            duration_s: 2.0,
            batches: DeployBatch::of(&[&["checkbox-1".into()], &["checkbox-2".into()]], &[]),
        })
    }

    fn metric_plan(&self) -> Vec<MetricInput> {
        match self.prom_shift {
            Some(_) => vec![Fake::cpu(Default::default(), Default::default())],
            None => Vec::new(),
        }
    }

    /// A scrape every 5 s of virtual time, as a range query at step 5 s would return it.
    async fn metrics(
        &mut self,
        from: f64,
        to: f64,
    ) -> anyhow::Result<(Vec<MetricInput>, Vec<String>)> {
        self.queries.push((from, to));
        let Some(shift) = self.prom_shift else {
            return Ok((Vec::new(), Vec::new()));
        };
        let (mut stable, mut canary) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        let mut t = (from / 5.0).ceil() * 5.0;
        while t <= to {
            let k = t as u64;
            stable.0.push(30.0 + 4.0 * unit(k * 3 + 1));
            stable.1.push(t - from);
            canary.0.push(30.0 + shift + 4.0 * unit(k * 3 + 2));
            canary.1.push(t - from);
            t += 5.0;
        }
        Ok((vec![Fake::cpu(stable, canary)], Vec::new()))
    }

    fn scrapes_canary(&self) -> bool {
        self.monitor
    }

    async fn scrape_canary(&mut self) -> anyhow::Result<()> {
        self.call("scrape").await?;
        let mut infra = self.infra.lock().unwrap();
        anyhow::ensure!(
            infra.canary_host && infra.canary_version.is_some(),
            "scrape of a canary host that is not deployed"
        );
        infra.scraped = true;
        Ok(())
    }

    async fn unscrape_canary(&mut self) -> anyhow::Result<()> {
        self.call("unscrape").await?;
        self.infra.lock().unwrap().scraped = false;
        Ok(())
    }

    fn recorded(&mut self, state: &super::super::state::RolloutState) {
        self.told.push(state.clone());
    }

    async fn retire_canary(&mut self) -> anyhow::Result<()> {
        self.call("retire").await?;
        let mut infra = self.infra.lock().unwrap();
        infra.canary_host = false;
        infra.canary_version = None;
        Ok(())
    }
}
