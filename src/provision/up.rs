//! `up`: bring the requested hosts up through the provider, list (and with `--prune` destroy) the
//! environment's hosts beyond the request, wait until they are usable and write the inventory atomically.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::{check_environment, kind_name, DEFAULT_TIMEOUT};
use crate::inventory;
use crate::providers::digitalocean;
use crate::providers::{Connection, Host, HostSpec, Provider, ProviderKind, Purpose, WaitFor};
use crate::settings::Global;

/// What to bring up.
#[derive(Debug, Clone)]
pub struct UpRequest {
    pub provider: ProviderKind,
    pub environment: String,
    pub hosts: Vec<HostSpec>,
    pub wait: WaitFor,
    pub timeout: Duration,
    /// Where to write the inventory (atomically, once every host is ready).
    pub inventory: PathBuf,
    /// The command recorded in the inventory's header, e.g. `prod up` or `canary`.
    pub command: String,
    /// DigitalOcean overrides from flags (API URL, SSH key); the defaults read env and pipeline.toml.
    pub digitalocean: digitalocean::Options,
    /// Destroy the environment's hosts that no spec asks for (a lowered `count`, the front door turned
    /// off). Without it they are listed and left running.
    pub prune: bool,
    /// The request is for some hosts of the environment only (a rollout's canary host): the others are
    /// neither listed as beyond the configuration nor pruned.
    pub only_these: bool,
}

impl UpRequest {
    /// A request with the defaults: wait for SSH, at most 10 minutes, no DigitalOcean overrides.
    pub fn new(
        provider: ProviderKind,
        environment: impl Into<String>,
        hosts: Vec<HostSpec>,
        inventory: impl Into<PathBuf>,
        command: impl Into<String>,
    ) -> Self {
        UpRequest {
            provider,
            environment: environment.into(),
            hosts,
            wait: WaitFor::Ssh,
            timeout: DEFAULT_TIMEOUT,
            inventory: inventory.into(),
            command: command.into(),
            digitalocean: digitalocean::Options::default(),
            prune: false,
            only_these: false,
        }
    }
}

/// What `up` brought up.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub provider: ProviderKind,
    pub environment: String,
    /// Every requested host, ready, sorted by name.
    pub hosts: Vec<Host>,
    pub connection: Connection,
    pub inventory: PathBuf,
    /// Hosts of the environment beyond the specs: destroyed with [`UpRequest::prune`], else left running.
    pub extras: Vec<String>,
    /// Whether `extras` were destroyed.
    pub pruned: bool,
}

/// Brings the requested hosts up (creating or adopting them), waits until they are usable, and writes the
/// inventory. Checks that the inventory can be written before touching any host.
pub async fn up(global: &Global, req: &UpRequest) -> anyhow::Result<Provisioned> {
    check_environment(&req.environment)?;
    check_writable(&req.inventory)?;
    let provider = super::open(
        req.provider,
        global,
        &req.digitalocean,
        &req.environment,
        Purpose::Create,
        || match req.provider {
            ProviderKind::Digitalocean => "failed to start provisioning on DigitalOcean".into(),
            ProviderKind::Local => "failed to start provisioning on the local sandbox".into(),
        },
    )?;
    up_with(provider, global, req).await
}

async fn up_with<P: Provider>(
    mut provider: P,
    global: &Global,
    req: &UpRequest,
) -> anyhow::Result<Provisioned> {
    let kind = kind_name(provider.kind());
    let names: Vec<String> = req.hosts.iter().map(|h| h.name.clone()).collect();
    let what = format!(
        "{} ({}, environment {})",
        names.join(", "),
        kind,
        req.environment
    );
    provider
        .up(&req.hosts, &global.ui)
        .await
        .with_context(|| format!("failed to bring up {what}"))?;
    let extras = if req.only_these {
        Vec::new()
    } else {
        provider
            .unrequested(&req.hosts)
            .await
            .with_context(|| format!("failed to list environment {} ({kind})", req.environment))?
    };
    if !extras.is_empty() {
        if req.prune {
            global.ui.info(format!(
                "--prune: destroying {} (beyond the configured hosts)",
                extras.join(", ")
            ));
            provider
                .remove(&extras, &global.ui)
                .await
                .with_context(|| format!("failed to destroy {}", extras.join(", ")))?;
        } else {
            global.ui.warn(format!(
                "environment {} has {} beyond the configured hosts; they keep running and stay out of the \
                 inventory. Run `pipeline prod up --prune` to destroy exactly those",
                req.environment,
                extras.join(", ")
            ));
        }
    }
    global.ui.info(format!(
        "waiting up to {} for {} ({})",
        humantime::format_duration(req.timeout),
        names.join(", "),
        match req.wait {
            WaitFor::Ssh => "active and answering SSH",
            WaitFor::Active => "active with a public address",
        }
    ));
    let mut hosts = provider
        .wait_ready(&names, req.wait, req.timeout, &global.ui)
        .await
        .with_context(|| format!("failed waiting for {what}"))?;
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    let connection = provider.connection();
    let text = inventory::render(&hosts, &connection, &req.command, kind, &req.environment)
        .context("failed to render the inventory")?;
    crate::fsutil::write_atomic(&req.inventory, text.as_bytes(), 0o644)
        .with_context(|| format!("failed to write inventory {}", req.inventory.display()))?;
    Ok(Provisioned {
        provider: provider.kind(),
        environment: req.environment.clone(),
        hosts,
        connection,
        inventory: req.inventory.clone(),
        extras,
        pruned: req.prune,
    })
}

/// Fails early, before any host is made, when the inventory could not be written: its directory must exist
/// and accept a new file, and the path must not be a directory.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.is_dir() {
        anyhow::bail!(
            "cannot write inventory {}: it is a directory; pass a file path with -i",
            path.display()
        );
    }
    tempfile::Builder::new()
        .prefix(".pipeline-check-")
        .tempfile_in(dir)
        .map(drop)
        .with_context(|| {
            format!(
                "cannot write inventory {} (directory {} must exist and be writable); pass another path with -i",
                path.display(),
                dir.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_inventory_locations_are_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("inventory.ini")).unwrap();
        let err = check_writable(&dir.path().join("missing/inventory.ini")).unwrap_err();
        assert!(
            format!("{err:#}").contains("must exist and be writable"),
            "{err:#}"
        );
        let err = check_writable(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
