//! Destroying an environment (all of it, or named hosts) and listing it, through the provider.

use anyhow::Context;

use super::{check_environment, kind_name};
use crate::providers::digitalocean;
use crate::providers::{Host, Provider, ProviderKind, Purpose};
use crate::settings::Global;

/// Destroys an environment's hosts (DigitalOcean settings from env and pipeline.toml). Returns their names.
pub async fn down(
    global: &Global,
    kind: ProviderKind,
    environment: &str,
) -> anyhow::Result<Vec<String>> {
    down_with_options(global, kind, environment, &digitalocean::Options::default()).await
}

/// [`down`] with DigitalOcean overrides from flags.
pub async fn down_with_options(
    global: &Global,
    kind: ProviderKind,
    environment: &str,
    options: &digitalocean::Options,
) -> anyhow::Result<Vec<String>> {
    check_environment(environment)?;
    let context = || {
        format!(
            "failed to destroy environment {environment} ({})",
            kind_name(kind)
        )
    };
    super::open(
        kind,
        global,
        options,
        environment,
        Purpose::Inspect,
        context,
    )?
    .down(&global.ui)
    .await
    .with_context(context)
}

/// Destroys the hosts `names` of an environment, and only those (names not there are skipped). Returns
/// the names destroyed.
pub async fn remove(
    global: &Global,
    kind: ProviderKind,
    environment: &str,
    names: &[String],
) -> anyhow::Result<Vec<String>> {
    check_environment(environment)?;
    let context = || {
        format!(
            "failed to destroy {} in environment {environment} ({})",
            names.join(", "),
            kind_name(kind)
        )
    };
    super::open(
        kind,
        global,
        &digitalocean::Options::default(),
        environment,
        Purpose::Inspect,
        context,
    )?
    .remove(names, &global.ui)
    .await
    .with_context(context)
}

/// An environment's hosts as the provider sees them now, sorted by name.
pub async fn list(
    global: &Global,
    kind: ProviderKind,
    environment: &str,
    options: &digitalocean::Options,
) -> anyhow::Result<Vec<Host>> {
    check_environment(environment)?;
    let context = || {
        format!(
            "failed to list environment {environment} ({})",
            kind_name(kind)
        )
    };
    let mut hosts = super::open(
        kind,
        global,
        options,
        environment,
        Purpose::Inspect,
        context,
    )?
    .list()
    .await
    .with_context(context)?;
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(hosts)
}
