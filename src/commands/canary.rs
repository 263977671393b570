//! `pipeline canary`: not built yet (see the open issues).

use clap::Args;

use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct CanaryArgs {}

pub async fn run(_args: CanaryArgs, _global: &Global) -> anyhow::Result<Outcome> {
    anyhow::bail!("`pipeline canary` is not implemented yet")
}
