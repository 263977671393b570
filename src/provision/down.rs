//! Destroying an environment (all of it, or named hosts) and listing it, through the provider.

use anyhow::Context;

use super::{check_environment, kind_name};
use crate::providers::digitalocean;
use crate::providers::{Host, Opened, Provider, ProviderKind, Purpose};
use crate::settings::Global;

/// Opens the provider of an existing environment (its name checked first) to look at or destroy what is
/// there; `context` says what failed when the provider cannot be opened.
fn inspect(
    global: &Global,
    kind: ProviderKind,
    environment: &str,
    options: &digitalocean::Options,
    context: impl FnOnce() -> String,
) -> anyhow::Result<Opened> {
    check_environment(environment)?;
    super::open(
        kind,
        global,
        options,
        environment,
        Purpose::Inspect,
        context,
    )
}

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
    let context = || {
        format!(
            "failed to destroy environment {environment} ({})",
            kind_name(kind)
        )
    };
    inspect(global, kind, environment, options, context)?
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
    let context = || {
        format!(
            "failed to destroy {} in environment {environment} ({})",
            names.join(", "),
            kind_name(kind)
        )
    };
    inspect(
        global,
        kind,
        environment,
        &digitalocean::Options::default(),
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
    let context = || {
        format!(
            "failed to list environment {environment} ({})",
            kind_name(kind)
        )
    };
    let mut hosts = inspect(global, kind, environment, options, context)?
        .list()
        .await
        .with_context(context)?;
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(hosts)
}
