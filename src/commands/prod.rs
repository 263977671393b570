//! `pipeline prod`: not built yet (see the open issues).

use clap::Args;

use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct ProdArgs {}

pub async fn run(_args: ProdArgs, _global: &Global) -> anyhow::Result<Outcome> {
    anyhow::bail!("`pipeline prod` is not implemented yet")
}
