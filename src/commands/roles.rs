//! `pipeline roles`: not built yet (see the open issues).

use clap::Args;

use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct RolesArgs {}

pub async fn run(_args: RolesArgs, _global: &Global) -> anyhow::Result<Outcome> {
    anyhow::bail!("`pipeline roles` is not implemented yet")
}
