//! `pipeline prod up|down|status|logs`: the production hosts (itrust, checkbox, monitor) of one environment,
//! on DigitalOcean or the local sandbox, through [`crate::provision`].

use std::io::Write;

use clap::{Args, Subcommand};

use crate::providers::Host;
use crate::provision::options::{LogsArgs, StatusArgs, TargetArgs, UpArgs};
use crate::provision::{self, prod};
use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct ProdArgs {
    #[command(subcommand)]
    pub action: ProdAction,
}

#[derive(Debug, Subcommand)]
pub enum ProdAction {
    /// Create (or adopt) itrust, checkbox and monitor, wait until they answer, write the inventory.
    Up(UpArgs),
    /// Destroy this environment's hosts, and only those. Safe to run twice.
    Down(TargetArgs),
    /// List this environment's hosts: name, id, status, public IP, size, region.
    Status(StatusArgs),
    /// Print a host's logs (local sandbox); on DigitalOcean, where to find them.
    Logs(LogsArgs),
}

pub async fn run(args: ProdArgs, global: &Global) -> anyhow::Result<Outcome> {
    match args.action {
        ProdAction::Up(a) => up(a, global).await,
        ProdAction::Down(t) => down(t, global).await,
        ProdAction::Status(a) => status(a, global).await,
        ProdAction::Logs(a) => logs(a, global).await,
    }
}

async fn up(args: UpArgs, global: &Global) -> anyhow::Result<Outcome> {
    let req = args.request(&global.config)?;
    let done = provision::up(global, &req).await?;
    global.ui.info(format!(
        "{} hosts ready; inventory written to {}",
        done.hosts.len(),
        done.inventory.display()
    ));
    print_table(&done.hosts)?;
    if let Some(line) = prod::extras_line(&done) {
        println!("{line}");
    }
    print_front_door(&done.hosts)?;
    Ok(Outcome::Success)
}

async fn down(target: TargetArgs, global: &Global) -> anyhow::Result<Outcome> {
    let (kind, options) = target.resolve(&global.config, None)?;
    let gone = provision::down_with_options(global, kind, &target.environment, &options).await?;
    writeln!(
        std::io::stdout().lock(),
        "{}",
        prod::down_line(&target.environment, &gone)
    )?;
    Ok(Outcome::Success)
}

async fn status(args: StatusArgs, global: &Global) -> anyhow::Result<Outcome> {
    let (kind, options) = args.target.resolve(&global.config, None)?;
    let hosts = provision::list(global, kind, &args.target.environment, &options).await?;
    if args.json {
        let json = prod::StatusJson::new(kind, &args.target.environment, &hosts);
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    } else if hosts.is_empty() {
        writeln!(
            std::io::stdout().lock(),
            "no hosts in environment {} ({}); create them with `pipeline prod up`",
            args.target.environment,
            provision::kind_name(kind)
        )?;
    } else {
        print_table(&hosts)?;
        print_front_door(&hosts)?;
    }
    Ok(Outcome::Success)
}

async fn logs(args: LogsArgs, global: &Global) -> anyhow::Result<Outcome> {
    let (kind, options) = args.target.resolve(&global.config, None)?;
    let text = prod::logs(global, kind, &options, &args.target.environment, &args.host).await?;
    write!(std::io::stdout().lock(), "{text}")?;
    Ok(Outcome::Success)
}

/// `front door: checkbox http://…/, itrust http://…:8080/iTrust2` when the environment has an `lb` host.
fn print_front_door(hosts: &[Host]) -> anyhow::Result<()> {
    if let Some(line) = prod::front_door_line(hosts) {
        writeln!(std::io::stdout().lock(), "{line}")?;
    }
    Ok(())
}

/// Hosts as an aligned table on stdout.
fn print_table(hosts: &[Host]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(prod::render_table(hosts).as_bytes())?;
    Ok(())
}
