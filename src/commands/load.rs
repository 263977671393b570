//! `pipeline load`: not built yet (see the open issues).

use clap::Args;

use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct LoadArgs {}

pub async fn run(_args: LoadArgs, _global: &Global) -> anyhow::Result<Outcome> {
    anyhow::bail!("`pipeline load` is not implemented yet")
}
