//! `--load RATE`: synthetic requests through the front door for the whole of each judged step, for apps
//! with too little real traffic. The requests come from the tool's own load generator
//! ([`crate::canary::load`], open model at the rate) and carry the [`SYNTHETIC_HEADER`] request header,
//! which the front door's JSON access log records (`"synthetic"` in the role's `log_format`): the judge
//! sees them with the real requests, the report counts them apart.
//!
//! The generator runs on a thread of its own (its own runtime; the generator's worker threads under it)
//! and stops within a progress tick (250 ms) when [`SyntheticLoad::stop`] is called or the handle is
//! dropped; it lives in the `pipeline` process, so a crash or `kill -9` ends it with the process and
//! `resume` starts it again with the step it runs.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};

use crate::canary::load::{self, LoadError, LoadPlan, LoadRun, Snapshot, Stop};
use crate::canary::run::CLIENT_TIMEOUT;
use crate::ui::Ui;

use super::front_door::SYNTHETIC_HEADER;

/// An upper bound on one load's life (it is stopped long before: at the end of the rollout's steps).
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a stopped load sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadTotals {
    /// Requests finished (answered or failed).
    pub requests: u64,
    /// Of those, requests without a complete HTTP response.
    pub failed: u64,
    /// Requests due at the rate but never sent (every connection was busy).
    pub missed: u64,
}

/// The generator's plan: GET `url` at `rate` requests per second, marked synthetic, until stopped.
pub fn plan(url: &str, rate: f64) -> Result<LoadPlan, LoadError> {
    let mut p = LoadPlan::new(url)?;
    p.headers.insert(
        HeaderName::from_static(SYNTHETIC_HEADER),
        HeaderValue::from_static("1"),
    );
    p.rate = Some(rate);
    // A second of requests in flight at the rate (a slow arm holds connections), within bounds.
    p.concurrency = (rate.ceil() as usize).clamp(4, 128);
    p.threads = Some(1);
    p.timeout = CLIENT_TIMEOUT;
    p.stop = Stop::Duration(LONGEST);
    p.backend_header = Some(HeaderName::from_static("x-backend"));
    Ok(p)
}

/// A running synthetic load; dropping it stops it too (without waiting).
#[derive(Debug)]
pub struct SyntheticLoad {
    url: String,
    rate: f64,
    stop: Arc<AtomicBool>,
    done: Option<tokio::sync::oneshot::Receiver<Result<LoadRun, LoadError>>>,
}

impl SyntheticLoad {
    /// Starts `rate` requests per second to `url`.
    pub fn start(url: &str, rate: f64) -> Result<SyntheticLoad, LoadError> {
        let plan = plan(url, rate)?;
        plan.validate()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("rollout-load".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(LoadError::Thread(e)));
                        return;
                    }
                };
                let mut progress = |_: &Snapshot| {
                    if flag.load(Ordering::Relaxed) {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                };
                let _ = tx.send(rt.block_on(load::run(plan, &mut progress)));
            })
            .map_err(LoadError::Thread)?;
        Ok(SyntheticLoad {
            url: url.into(),
            rate,
            stop,
            done: Some(rx),
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the load and waits for it (a progress tick, the requests in flight are abandoned).
    pub async fn stop(mut self) -> Result<LoadTotals, LoadError> {
        self.stop.store(true, Ordering::Relaxed);
        let run = match self.done.take() {
            Some(rx) => rx.await.map_err(|_| LoadError::ThreadPanicked)??,
            None => return Err(LoadError::ThreadPanicked),
        };
        let s = run.summary();
        Ok(LoadTotals {
            requests: s.requests,
            failed: s.requests - s.responses,
            missed: run.missed(),
        })
    }
}

impl Drop for SyntheticLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts, keeps or stops the load in `slot` as the executor asks ([`super::world::RolloutWorld::load`]):
/// `Some(rate)` starts it at the front door's `url()` (a load already at that rate goes on, so it runs
/// without a gap from one step to the next), `None` stops it and says what it sent.
pub async fn set(
    slot: &mut Option<SyntheticLoad>,
    rate: Option<f64>,
    url: impl FnOnce() -> anyhow::Result<String>,
    ui: &Ui,
) -> anyhow::Result<()> {
    if let (Some(r), Some(running)) = (rate, slot.as_ref()) {
        if (running.rate() - r).abs() < 1e-9 {
            return Ok(());
        }
    }
    if let Some(running) = slot.take() {
        let at = running.url().to_string();
        match running.stop().await {
            Ok(t) => ui.info(format!(
                "rollout: synthetic load stopped: {} requests to {at}, {} without an answer{}",
                load::thousands(t.requests),
                load::thousands(t.failed),
                if t.missed > 0 {
                    format!(", {} due but not sent", load::thousands(t.missed))
                } else {
                    String::new()
                }
            )),
            Err(e) => ui.warn(format!(
                "rollout: the synthetic load to {at} ended badly: {e}"
            )),
        }
    }
    if let Some(r) = rate {
        let url = url()?;
        let started = SyntheticLoad::start(&url, r).map_err(|e| {
            anyhow::anyhow!(
                "cannot start the synthetic load (--load {r}) to {url}: {e}; roll out without --load, or fix the front door's address in the inventory"
            )
        })?;
        ui.info(format!(
            "rollout: synthetic load: {} req/s to {url} (header {SYNTHETIC_HEADER}: 1)",
            crate::canary::judge::num(r)
        ));
        *slot = Some(started);
    }
    Ok(())
}
