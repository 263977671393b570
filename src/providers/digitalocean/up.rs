//! `up`: adopts the environment's droplets (powering on those that are off), and for the rest checks
//! region, size and image slugs, registers the SSH key and creates them (re-checking a create that ended
//! unclearly before sending it again).

use std::collections::HashMap;

use super::api::{Droplet, DropletCreate, SshKeyCreate};
use super::plan::{catalogue_problems, plan_up};
use super::{to_host, DigitalOcean, Error, COMMON_TAG};
use crate::providers::{Host, HostSpec};
use crate::settings::ConfigError;
use crate::ui::Ui;

/// How many times `up` re-checks and re-sends a create that ended unclearly (5xx, timeout).
const CREATE_ATTEMPTS: u32 = 3;
/// How many tag listings (one poll interval apart) must miss a droplet before its create is sent again.
const LOOKUPS_BEFORE_RESEND: u32 = 3;

impl DigitalOcean {
    /// The body of [`crate::providers::Provider::up`].
    pub(super) async fn up_droplets(
        &mut self,
        specs: &[HostSpec],
        ui: &Ui,
    ) -> Result<Vec<Host>, Error> {
        self.lock_environment(ui).await?;
        let tag = self.env_tag();
        let tags = vec![COMMON_TAG.to_string(), tag.clone()];
        let existing = self.client.list_droplets(&tag).await?;
        self.listed = existing.iter().map(|d| d.name.clone()).collect();
        let fingerprint = &self.key().fingerprint;
        let plan = plan_up(specs, &existing, &tags, fingerprint)?;
        for note in &plan.notes {
            ui.warn(note);
        }
        let mut by_name: HashMap<String, Droplet> = HashMap::new();
        for (spec, d) in &plan.adopt {
            ui.info(format!(
                "adopting droplet {} (id {}, {})",
                spec.name, d.id, d.status
            ));
            if d.status == "off" {
                ui.info(format!("powering on droplet {} (it is off)", spec.name));
                self.client.power_on(d.id).await?;
            }
            by_name.insert(spec.name.clone(), d.clone());
        }
        if !plan.create.is_empty() {
            self.check_catalogue(&plan.create).await?;
            self.ensure_key(ui).await?;
            for body in &plan.create {
                for d in self.create(body, ui).await? {
                    self.created.insert(d.name.clone());
                    by_name.insert(d.name.clone(), d);
                }
            }
        }
        let hosts = specs
            .iter()
            .map(|s| {
                by_name
                    .get(&s.name)
                    .map(to_host)
                    .ok_or_else(|| Error::NotCreated {
                        name: s.name.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The record is of the environment's droplets, not only of those asked for (a rollout's canary).
        let mut recorded: Vec<Host> = existing.iter().map(to_host).collect();
        recorded.retain(|h| !hosts.iter().any(|n| n.name == h.name));
        recorded.extend(hosts.iter().cloned());
        self.save_state(&recorded)?;
        Ok(hosts)
    }

    /// Validates region, size and image slugs once, before any create, and reports every problem together.
    async fn check_catalogue(&self, creates: &[DropletCreate]) -> Result<(), Error> {
        let regions = self.client.regions().await?;
        let sizes = self.client.sizes().await?;
        let mut images: Vec<&String> = creates.iter().map(|c| &c.image).collect();
        images.sort();
        images.dedup();
        let mut missing_images = Vec::new();
        for image in images {
            if !self.client.image_exists(image).await? {
                missing_images.push(image.clone());
            }
        }
        let problems = catalogue_problems(creates, &regions, &sizes, &missing_images);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Catalogue(ConfigError::Invalid {
                what: "the hosts' region, size or image (pipeline.toml or flags)".to_string(),
                message: problems.join("; "),
            }))
        }
    }

    /// Makes sure the account knows our public key (looked up by fingerprint, registered if missing).
    async fn ensure_key(&self, ui: &Ui) -> Result<(), Error> {
        let key = self.key();
        if self.client.ssh_key(&key.fingerprint).await?.is_none() {
            let name = format!(
                "pipeline {}",
                key.public_line.split_whitespace().nth(2).unwrap_or("key")
            );
            ui.info(format!(
                "registering SSH key {} ({}) on DigitalOcean",
                key.private.display(),
                key.fingerprint
            ));
            let created = self
                .client
                .create_ssh_key(&SshKeyCreate {
                    name,
                    public_key: key.public_line.clone(),
                })
                .await;
            match created {
                Ok(_) => {}
                // Registered meanwhile by someone else: the fingerprint works all the same.
                Err(e) if e.status() == Some(422) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Sends one create request; after an unclear failure, looks the names up by tag and re-sends only for
    /// those still missing. Never re-sends blindly.
    async fn create(&self, body: &DropletCreate, ui: &Ui) -> Result<Vec<Droplet>, Error> {
        let tag = self.env_tag();
        let mut body = body.clone();
        let mut found: Vec<Droplet> = Vec::new();
        for attempt in 1..=CREATE_ATTEMPTS {
            ui.info(format!(
                "creating droplet{} {} ({}, {}, {})",
                if body.names.len() > 1 { "s" } else { "" },
                body.names.join(", "),
                body.size,
                body.image,
                body.region
            ));
            let err = match self.client.create_droplets(&body).await {
                Ok(created) => {
                    found.extend(created);
                    return Ok(found);
                }
                Err(e) if e.is_unclear() => e,
                Err(e) => return Err(e.into()),
            };
            ui.warn(format!(
                "{err}; checking tag {tag} before sending anything again"
            ));
            // A droplet can take a moment to show up under its tag: look a few times before concluding.
            let mut listed = Vec::new();
            for _ in 0..LOOKUPS_BEFORE_RESEND {
                tokio::time::sleep(self.settings.poll_interval).await;
                listed = self.client.list_droplets(&tag).await?;
                if body
                    .names
                    .iter()
                    .all(|n| listed.iter().any(|d| &d.name == n))
                {
                    break;
                }
            }
            let (now, still): (Vec<String>, Vec<String>) = body
                .names
                .iter()
                .cloned()
                .partition(|n| listed.iter().any(|d| &d.name == n));
            found.extend(listed.into_iter().filter(|d| now.contains(&d.name)));
            if still.is_empty() {
                return Ok(found);
            }
            if attempt == CREATE_ATTEMPTS {
                return Err(Error::CreateFailed {
                    names: still.join(", "),
                    tag,
                    environment: self.environment.clone(),
                    attempts: CREATE_ATTEMPTS,
                    cause: err.to_string(),
                });
            }
            body.names = still;
        }
        unreachable!("the loop returns on its last attempt")
    }
}
