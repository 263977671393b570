//! `prod up --prune` on DigitalOcean: destroys exactly the named droplets of the environment (those beyond
//! a lowered `count`), one `DELETE /v2/droplets/<id>` each (never by tag), waits until the listing no
//! longer shows them, and forgets their host keys.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use tokio::time::Instant;

use super::api::Droplet;
use super::ssh::forget_host_keys;
use super::{DigitalOcean, Error, DOWN_TIMEOUT};
use crate::ui::Ui;

/// Destroys the droplets of `provider`'s environment named in `names`; names not there are skipped. Returns
/// the names destroyed, sorted.
pub(super) async fn remove(
    provider: &DigitalOcean,
    names: &[String],
    ui: &Ui,
) -> Result<Vec<String>, Error> {
    let tag = provider.env_tag();
    let doomed: Vec<Droplet> = provider
        .client
        .list_droplets(&tag)
        .await?
        .into_iter()
        .filter(|d| names.contains(&d.name))
        .collect();
    for d in &doomed {
        ui.info(format!("destroying droplet {} (id {})", d.name, d.id));
        match provider.client.delete_droplet(d.id).await {
            Err(e) if e.status() == Some(404) => {}
            other => other?,
        }
    }
    let ids: HashSet<u64> = doomed.iter().map(|d| d.id).collect();
    let deadline = Instant::now() + DOWN_TIMEOUT;
    while !ids.is_empty() {
        let listed = provider.client.list_droplets(&tag).await?;
        let left: Vec<String> = listed
            .iter()
            .filter(|d| ids.contains(&d.id))
            .map(|d| d.name.clone())
            .collect();
        if left.is_empty() {
            // The record of the environment's droplets, without those destroyed.
            provider.save_state(&listed.iter().map(super::to_host).collect::<Vec<_>>())?;
            break;
        }
        if Instant::now() >= deadline {
            return Err(Error::DownTimeout {
                environment: provider.environment.clone(),
                timeout: DOWN_TIMEOUT,
                left,
            });
        }
        tokio::time::sleep(provider.settings.poll_interval).await;
    }
    let freed: Vec<Ipv4Addr> = doomed.iter().filter_map(Droplet::public_ipv4).collect();
    forget_host_keys(&provider.settings.state_dir, &freed, ui);
    let mut gone: Vec<String> = doomed.into_iter().map(|d| d.name).collect();
    gone.sort();
    Ok(gone)
}
