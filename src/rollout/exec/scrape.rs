//! The canary host and the monitor's Prometheus, as the executor drives them: after the canary's check
//! and before any traffic it gets node_exporter and becomes a scrape target with the labels of the app's
//! hosts (so `$arm` finds it), and when the canary goes (promotion, rollback, abort) its targets go first.
//! `canary_scraped` in the state is set before they are added and cleared once they are removed, so a
//! crash anywhere leaves `abort` knowing whether to remove them.
//!
//! Adding them may fail without stopping the rollout when no `[[canary.metric]]` needs them (a warning);
//! with Prometheus metrics configured the canary's arm would only be NoData, so the rollout stops there
//! (`resume` or `abort`). Removing them never fails a rollback or an abort: an unreachable monitor is a
//! warning, the flag stays, and a later `pipeline rollout abort` removes them.

use super::Executor;
use crate::rollout::world::RolloutWorld;

impl<W: RolloutWorld> Executor<'_, W> {
    /// [`crate::rollout::state::Phase::Scrape`]: the canary host's targets added to the monitor's Prometheus.
    pub(super) async fn scrape(&mut self) -> anyhow::Result<()> {
        self.state.canary_scraped = true;
        self.save()?;
        let canary = self.state.canary_host.clone();
        self.ui.info(format!(
            "rollout: adding {canary} to the monitor's Prometheus (node_exporter on it, scraped with the labels of {})",
            self.state.stable_hosts.join(", ")
        ));
        match self.world.scrape_canary().await {
            Ok(()) => Ok(()),
            Err(e) if self.world.metric_plan().is_empty() => {
                self.ui.warn(format!(
                    "rollout: {canary} is not scraped by the monitor's Prometheus ({e:#}); the rollout goes on (no [[canary.metric]] needs it), the dashboard's alerts do not cover {canary}"
                ));
                Ok(())
            }
            Err(e) => Err(e.context(format!(
                "the [[canary.metric]] queries need {canary} scraped by the monitor's Prometheus (its arm would be NoData); fix the monitor, then `pipeline rollout resume {app}`, or `pipeline rollout abort {app}`",
                app = self.state.settings.app
            ))),
        }
    }

    /// After weight 0, before the canary host is destroyed: its targets out of the monitor's Prometheus,
    /// when they may be there. Only a failed write of the state is an error.
    pub(super) async fn unscrape(&mut self) -> anyhow::Result<()> {
        if !self.state.canary_scraped {
            return Ok(());
        }
        let canary = self.state.canary_host.clone();
        self.ui.info(format!(
            "rollout: removing {canary} from the monitor's Prometheus"
        ));
        match self.world.unscrape_canary().await {
            Ok(()) => {
                self.state.canary_scraped = false;
                self.save()?;
            }
            Err(e) => self.ui.warn(format!(
                "rollout: could not remove {canary} from the monitor's Prometheus ({e:#}); its targets stay (down once the host is gone) until `pipeline rollout abort {}` runs with the monitor reachable",
                self.state.settings.app
            )),
        }
        Ok(())
    }

    /// `abort` of a finished rollout whose canary targets could not be removed then: only that.
    pub(super) async fn unscrape_leftover(mut self) -> anyhow::Result<()> {
        self.unscrape().await?;
        if !self.state.canary_scraped {
            self.ui.info(format!(
                "rollout: {} had ended; its canary's targets are out of the monitor's Prometheus now",
                self.state.settings.app
            ));
        }
        Ok(())
    }
}
