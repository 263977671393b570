//! `pipeline demo`: not built yet (see the open issues).

use clap::Args;

use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs, _global: &Global) -> anyhow::Result<Outcome> {
    anyhow::bail!("`pipeline demo` is not implemented yet")
}
