//! `pipeline analyze`: not built yet (see the open issues).

use clap::Args;

use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {}

pub async fn run(_args: AnalyzeArgs, _global: &Global) -> anyhow::Result<Outcome> {
    anyhow::bail!("`pipeline analyze` is not implemented yet")
}
