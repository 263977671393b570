//! `pipeline deploy`: not built yet (see the open issues).

use clap::Args;

use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct DeployArgs {}

pub async fn run(_args: DeployArgs, _global: &Global) -> anyhow::Result<Outcome> {
    anyhow::bail!("`pipeline deploy` is not implemented yet")
}
