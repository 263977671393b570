//! `down`: deletes every droplet carrying the environment's tag, waits until the listing is empty, and
//! forgets their host keys.

use std::net::Ipv4Addr;

use tokio::time::Instant;

use super::api::Droplet;
use super::ssh::forget_host_keys;
use super::{DigitalOcean, Error, DOWN_TIMEOUT};
use crate::ui::Ui;

impl DigitalOcean {
    /// The body of [`crate::providers::Provider::down`].
    pub(super) async fn down_droplets(&mut self, ui: &Ui) -> Result<Vec<String>, Error> {
        self.lock_environment(ui).await?;
        let tag = self.env_tag();
        let droplets = self.client.list_droplets(&tag).await?;
        if droplets.is_empty() {
            ui.info(format!("no droplets carry tag {tag}: nothing to destroy"));
            self.remove_state()?;
            return Ok(Vec::new());
        }
        let mut names: Vec<String> = droplets.iter().map(|d| d.name.clone()).collect();
        names.sort();
        ui.info(format!(
            "destroying droplets tagged {tag}: {}",
            names.join(", ")
        ));
        match self.client.delete_droplets_by_tag(&tag).await {
            Err(e) if e.status() == Some(404) => {}
            other => other?,
        }
        let deadline = Instant::now() + DOWN_TIMEOUT;
        let mut outage = false;
        loop {
            let left = self.poll(&tag, ui, &mut outage).await?;
            if left.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::DownTimeout {
                    environment: self.environment.clone(),
                    timeout: DOWN_TIMEOUT,
                    left: match left {
                        Some(l) => l.into_iter().map(|d| d.name).collect(),
                        None => names.clone(),
                    },
                });
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
        self.remove_state()?;
        let freed: Vec<Ipv4Addr> = droplets.iter().filter_map(Droplet::public_ipv4).collect();
        forget_host_keys(&self.settings.state_dir, &freed, ui);
        Ok(names)
    }
}
