//! `wait_ready`: polls the tag's listing until every droplet is active with a public address and, if
//! asked, answers SSH; an API outage keeps it waiting until the deadline.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::time::Instant;

use super::api::Readiness;
use super::progress::Progress;
use super::ssh::{forget_host_keys, ssh_answers};
use super::{guard, to_host, DigitalOcean, Error};
use crate::providers::{Host, WaitFor};
use crate::ui::Ui;

impl DigitalOcean {
    /// The body of [`crate::providers::Provider::wait_ready`].
    pub(super) async fn wait_droplets(
        &self,
        names: &[String],
        wait: WaitFor,
        timeout: Duration,
        ui: &Ui,
    ) -> Result<Vec<Host>, Error> {
        let tag = self.env_tag();
        let deadline = Instant::now() + timeout;
        let mut progress = Progress::new(ui, names);
        let mut ssh_ok: HashSet<String> = HashSet::new();
        let mut outage = false;
        // Duplicates deleted by this wait: still listed for a while after the DELETE, never deleted twice.
        let mut deleted_duplicates = std::collections::BTreeSet::new();
        loop {
            let Some(droplets) = self.poll(&tag, ui, &mut outage).await? else {
                let now = Instant::now();
                if now >= deadline {
                    progress.abandon();
                    return Err(Error::WaitTimeout {
                        environment: self.environment.clone(),
                        timeout,
                        pending: names
                            .iter()
                            .map(|n| (n.clone(), "the DigitalOcean API did not answer".to_string()))
                            .collect(),
                    });
                }
                tokio::time::sleep(self.settings.poll_interval.min(deadline - now)).await;
                continue;
            };
            // Another machine's `up` (the lock is per machine) or a create acted on twice can leave two
            // droplets with one name: keep the lowest id, delete the rest, wait for the one kept.
            let droplets = guard::resolve_duplicates(
                &self.client,
                droplets,
                &tag,
                &mut deleted_duplicates,
                ui,
            )
            .await?;
            let mut pending: Vec<(String, String)> = Vec::new();
            let mut probes = tokio::task::JoinSet::new();
            for name in names {
                let state = match droplets.iter().find(|d| &d.name == name) {
                    None => Err("not listed yet".to_string()),
                    Some(d) => match d.readiness() {
                        Readiness::Active(ip) if wait == WaitFor::Ssh && !ssh_ok.contains(name) => {
                            let port = self.settings.ssh_probe_port;
                            let name = name.clone();
                            probes.spawn(async move {
                                let r = ssh_answers(ip, port).await;
                                (name, ip, port, r)
                            });
                            continue;
                        }
                        Readiness::Active(ip) => Ok(ip),
                        other => Err(other.describe()),
                    },
                };
                match state {
                    Ok(ip) if ssh_ok.contains(name) => {
                        progress.show(name, format!("ready at {ip}, SSH answers"))
                    }
                    Ok(ip) => progress.show(name, format!("ready at {ip}")),
                    Err(why) => {
                        progress.show(name, why.clone());
                        pending.push((name.clone(), why));
                    }
                }
            }
            while let Some(joined) = probes.join_next().await {
                let (name, ip, port, result) = joined.expect("SSH probe task does not panic");
                match result {
                    Ok(()) => {
                        progress.show(&name, format!("ready at {ip}, SSH answers"));
                        ssh_ok.insert(name);
                    }
                    Err(why) => {
                        let why = format!("active at {ip}, waiting for SSH on port {port}: {why}");
                        progress.show(&name, why.clone());
                        pending.push((name, why));
                    }
                }
            }
            if pending.is_empty() {
                progress.finish();
                let mut hosts: Vec<Host> = names
                    .iter()
                    .filter_map(|n| droplets.iter().find(|d| &d.name == n).map(to_host))
                    .collect();
                hosts.sort_by(|a, b| a.name.cmp(&b.name));
                let listed: Vec<Host> = droplets.iter().map(to_host).collect();
                self.save_state(&listed)?;
                let fresh: Vec<Ipv4Addr> = hosts
                    .iter()
                    .filter(|h| self.created.contains(&h.name))
                    .filter_map(|h| h.ip)
                    .collect();
                forget_host_keys(&self.settings.state_dir, &fresh, ui);
                return Ok(hosts);
            }
            let now = Instant::now();
            if now >= deadline {
                progress.abandon();
                pending.sort();
                return Err(Error::WaitTimeout {
                    environment: self.environment.clone(),
                    timeout,
                    pending,
                });
            }
            tokio::time::sleep(self.settings.poll_interval.min(deadline - now)).await;
        }
    }
}
