//! `pipeline monitor`: not built yet (see the open issues).

use clap::Args;

use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct MonitorArgs {}

pub async fn run(_args: MonitorArgs, _global: &Global) -> anyhow::Result<Outcome> {
    anyhow::bail!("`pipeline monitor` is not implemented yet")
}
