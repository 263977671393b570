//! The first step's warm-up (`--warmup`): the canary serves the step's share for a while before the
//! step's judged window opens, so that a cold start (a JVM compiling its hot paths, empty caches, the
//! first database connections) is not judged as the new version's latency. Its requests are counted and
//! reported apart, and judged on the error rate only, a look every `look_every` with a sequential judge
//! of their own: a canary that fails requests in its warm-up is rolled back at once, as at any look.
//!
//! The warm-up's error-rate test is one more test besides the judged window's family, so a good
//! version's chance of a false FAIL in the first step grows by at most the judge's α.

use crate::canary::judge::{self, sequential::SequentialJudge, JudgeInput, Judgement, Verdict};

use super::super::state::WarmupRecord;
use super::super::world::{Observed, RolloutWorld};
use super::step::{input, tally};
use super::Executor;

impl<W: RolloutWorld> Executor<'_, W> {
    /// Runs the warm-up of the running step (the last record): the canary already has the step's
    /// weight. Returns the judgement of a FAIL on errors, `None` once the warm-up ran out quietly.
    pub(super) async fn warm_up(&mut self) -> anyhow::Result<Option<Judgement>> {
        let s = self.state.settings.clone();
        let begin = self.world.now();
        self.ui.info(format!(
            "rollout:   warm-up: {} s at this share before the step is judged; its requests are judged on errors only",
            judge::num(s.warmup_s)
        ));
        self.current_mut().warmup = Some(WarmupRecord::default());
        self.save()?;
        let mut seq =
            SequentialJudge::new(&errors_only(input(&[], begin)), &self.judge, s.look_every_s)?;
        let mut seen: Vec<Observed> = Vec::new();
        let mut t = 0.0f64;
        while t < s.warmup_s - 1e-6 {
            let next = (t + s.look_every_s).min(s.warmup_s);
            t = self.until_look(begin, next, &mut seen).await?;
            let j = seq.look(t, &errors_only(input(&seen, begin)), false)?;
            let (stable, canary, unattributed) = tally(&seen);
            self.current_mut().warmup = Some(WarmupRecord {
                duration_s: t,
                stable,
                canary,
                unattributed,
                verdict: Some(j.verdict),
            });
            self.ui.info(format!(
                "rollout:   warm-up look at {t:.0} s ({} stable, {} canary requests, {} of the canary's failed): {}",
                stable.real + stable.synthetic,
                canary.real + canary.synthetic,
                canary.errors,
                if j.verdict == Verdict::Fail {
                    "FAIL (final)"
                } else {
                    "no FAIL on errors"
                }
            ));
            self.save()?;
            if j.verdict == Verdict::Fail {
                return Ok(Some(seq.finish().unwrap_or(j)));
            }
        }
        Ok(None)
    }
}

/// The per-request input with the error rate alone: latency and size are what a cold start distorts.
fn errors_only(mut data: JudgeInput) -> JudgeInput {
    data.metrics.retain(|m| m.name == "error_rate");
    data
}
