//! The rollout's canary host through the environment's provider, the provider part of the real world:
//! `<app>-canary` is made like the app's hosts (the size, image, region and memory limit `[prod]` and
//! `[prod.hosts.<app>]` give them; on DigitalOcean a droplet tagged `pipeline` and `pipeline-<env>` like
//! the environment's others, under the environment's lock), waited for as `[prod] wait` says, and written
//! to an inventory of its own next to the state file (the environment's other hosts untouched). Its deploy
//! reads the app's inventory, that one and a third naming the canary a member of the app's group
//! ([`CanaryHost::deploy_inventories`]), so the group's variables (`[<app>:vars]`, the `group_vars/` and
//! `host_vars/` next to the app's inventory, parent groups') are the canary's as well. Made
//! again after a crash, the provider adopts the host that exists instead of making a second one. Retired,
//! it is destroyed by its provider id (one `DELETE /v2/droplets/<id>` on DigitalOcean, never by tag), and
//! a host already gone is fine.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::state::RolloutState;
use crate::apps::App;
use crate::inventory::InventoryHost;
use crate::providers::{ProviderKind, WaitFor};
use crate::provision::{self, HostOverride, ProdSection, UpRequest};
use crate::settings::Global;

/// The canary host of one recorded rollout.
pub struct CanaryHost<'a> {
    global: &'a Global,
    kind: ProviderKind,
    environment: String,
    app: App,
    /// `<app>-canary`.
    pub name: String,
    /// The inventory holding only the canary host (written once it is ready).
    pub inventory: PathBuf,
}

impl<'a> CanaryHost<'a> {
    /// The canary host of `state`'s rollout, on its provider.
    pub fn new(state: &RolloutState, global: &'a Global) -> anyhow::Result<Self> {
        let s = &state.settings;
        let app = App::parse(&s.app).map_err(|e| anyhow::anyhow!("{e}"))?;
        let kind = ProviderKind::parse(&s.provider).with_context(|| {
            format!(
                "the rollout state names provider `{}`, which this build does not know",
                s.provider
            )
        })?;
        Ok(CanaryHost {
            global,
            kind,
            environment: s.environment.clone(),
            app,
            name: state.canary_host.clone(),
            inventory: inventory_path(&global.state_dir, &s.environment, &s.app),
        })
    }

    /// The host as its inventory has it, if it was made (and not retired) by this state directory.
    pub fn known(&self) -> Option<InventoryHost> {
        if !self.inventory.exists() {
            return None;
        }
        let inventory = crate::commands::playbook::load_inventory(&self.inventory).ok()?;
        inventory
            .groups
            .into_values()
            .flatten()
            .find(|h| h.name == self.name)
    }

    /// Makes the canary host like the app's hosts, or adopts it when it exists; waits until it is
    /// usable and writes its inventory.
    pub async fn provision(&self) -> anyhow::Result<InventoryHost> {
        let section = ProdSection::load(&self.global.config)?;
        let specs = provision::prod_host_specs(&section, &HostOverride::default())?;
        let mut spec = specs
            .into_iter()
            .find(|h| crate::fleet::group_of(&h.name) == self.app.key())
            .with_context(|| {
                format!("pipeline.toml's [prod] has no host for {}", self.app.key())
            })?;
        spec.name.clone_from(&self.name);
        let mut req = UpRequest::new(
            self.kind,
            self.environment.clone(),
            vec![spec],
            self.inventory.clone(),
            "rollout",
        );
        req.wait = section.wait.unwrap_or(WaitFor::Ssh);
        req.only_these = true;
        if let Some(t) = section.timeout()? {
            req.timeout = t;
        }
        provision::up(self.global, &req).await?;
        self.known().with_context(|| {
            format!(
                "the canary host {} is not in {} after it was made; run `pipeline rollout resume` to make it again, or `pipeline rollout abort`",
                self.name,
                self.inventory.display()
            )
        })
    }

    /// The inventory sources the canary's deploy reads after the app's inventory: the canary's own (its
    /// address and login) and one that makes it a member of the app's group (written now), so Ansible
    /// gives it the group's variables: the `group_vars/` next to the app's inventory apply to every host
    /// of the merged inventory that is in the group. The deploy is limited to the canary host.
    pub fn deploy_inventories(&self) -> anyhow::Result<Vec<PathBuf>> {
        let groups = self.groups_path();
        let text = format!(
            "# Written by `pipeline rollout`: the canary host is a member of the app's group, for its deploy.\n[{}]\n{}\n",
            self.app.key(),
            self.name
        );
        crate::fsutil::write_atomic(&groups, text.as_bytes(), 0o644).with_context(|| {
            format!(
                "failed to write the canary's group inventory {}",
                groups.display()
            )
        })?;
        Ok(vec![self.inventory.clone(), groups])
    }

    fn groups_path(&self) -> PathBuf {
        self.inventory.with_extension("groups.ini")
    }

    /// Destroys the canary host (fine when it is gone) and forgets its inventory. Returns the names
    /// destroyed (empty when there was none).
    pub async fn retire(&self) -> anyhow::Result<Vec<String>> {
        let gone = provision::remove(
            self.global,
            self.kind,
            &self.environment,
            std::slice::from_ref(&self.name),
        )
        .await?;
        let _ = std::fs::remove_file(self.groups_path());
        match std::fs::remove_file(&self.inventory) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| {
                format!(
                    "the canary host {} is destroyed, but its inventory {} could not be removed",
                    self.name,
                    self.inventory.display()
                )
            }),
            _ => Ok(gone),
        }
    }
}

/// `<state_dir>/rollout-<env>-<app>-canary.ini`.
pub fn inventory_path(state_dir: &Path, environment: &str, app: &str) -> PathBuf {
    state_dir.join(format!("rollout-{environment}-{app}-canary.ini"))
}
