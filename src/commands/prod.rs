//! `pipeline prod up|down|status|logs`: the production hosts (itrust, checkbox, monitor) of one environment,
//! on DigitalOcean or the local sandbox, through [`crate::provision`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::providers::digitalocean;
use crate::providers::{Host, ProviderKind, WaitFor};
use crate::provision::{self, prod, HostOverride, ProdUpFlags};
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

/// Which hosts: provider and environment.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Where the hosts live [env: PIPELINE_PROVIDER; config: provider; default: digitalocean].
    #[arg(long, value_enum)]
    pub provider: Option<ProviderKind>,
    /// Environment: the hosts' tag on DigitalOcean (`pipeline-<env>`), their names in the sandbox.
    #[arg(
        long = "env",
        env = "PIPELINE_ENV",
        default_value = "prod",
        value_name = "NAME"
    )]
    pub environment: String,
    /// DigitalOcean API base URL [env: DIGITALOCEAN_API_URL; config: [digitalocean] api_url;
    /// default: https://api.digitalocean.com].
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Inventory file to write [config: [prod] inventory; default: inventory.ini].
    #[arg(short, long, value_name = "PATH")]
    pub inventory: Option<PathBuf>,
    /// Wait until the hosts are `active`, or until SSH answers too [config: [prod] wait; default: ssh].
    #[arg(long, value_enum)]
    pub wait: Option<WaitFor>,
    /// Longest wait for the hosts, e.g. `15m` [config: [prod] timeout; default: 10m].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Private SSH key; its `.pub` is registered on DigitalOcean [config: [digitalocean] ssh_key;
    /// default: ~/.ssh/id_ed25519, then ~/.ssh/id_rsa].
    #[arg(long, value_name = "PATH")]
    pub ssh_key: Option<PathBuf>,
    /// Region slug for every host (overrides pipeline.toml) [default: nyc1].
    #[arg(long, value_name = "SLUG")]
    pub region: Option<String>,
    /// Image slug for every host (overrides pipeline.toml) [default: ubuntu-24-04-x64].
    #[arg(long, value_name = "SLUG")]
    pub image: Option<String>,
    /// Size slug for every host (overrides pipeline.toml) [default: s-1vcpu-2gb for itrust,
    /// s-1vcpu-1gb for the others].
    #[arg(long, value_name = "SLUG")]
    pub size: Option<String>,
    /// Destroy this environment's hosts beyond the configuration (after lowering a `count` or turning
    /// the front door off); without it they are listed and left running.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON (`{provider, environment, hosts: [{name, id, status, ip, size, region}]}`) on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The host (itrust, checkbox, monitor).
    pub host: String,
}

pub async fn run(args: ProdArgs, global: &Global) -> anyhow::Result<Outcome> {
    match args.action {
        ProdAction::Up(a) => up(a, global).await,
        ProdAction::Down(t) => down(t, global).await,
        ProdAction::Status(a) => status(a, global).await,
        ProdAction::Logs(a) => logs(a, global).await,
    }
}

fn do_options(target: &TargetArgs, ssh_key: Option<PathBuf>) -> digitalocean::Options {
    digitalocean::Options {
        api_url: target.api_url.clone(),
        ssh_key,
    }
}

async fn up(args: UpArgs, global: &Global) -> anyhow::Result<Outcome> {
    let kind = provision::resolve_provider_kind(args.target.provider, &global.config)?;
    let flags = ProdUpFlags {
        inventory: args.inventory,
        wait: args.wait,
        timeout: args.timeout,
        hosts: HostOverride {
            region: args.region,
            image: args.image,
            size: args.size,
            memory_limit: None,
            count: None,
        },
        prune: args.prune,
    };
    let req = flags.request(
        &global.config,
        kind,
        &args.target.environment,
        do_options(&args.target, args.ssh_key),
    )?;
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
    let kind = provision::resolve_provider_kind(target.provider, &global.config)?;
    let gone = provision::down_with_options(
        global,
        kind,
        &target.environment,
        &do_options(&target, None),
    )
    .await?;
    writeln!(
        std::io::stdout().lock(),
        "{}",
        prod::down_line(&target.environment, &gone)
    )?;
    Ok(Outcome::Success)
}

async fn status(args: StatusArgs, global: &Global) -> anyhow::Result<Outcome> {
    let kind = provision::resolve_provider_kind(args.target.provider, &global.config)?;
    let hosts = provision::list(
        global,
        kind,
        &args.target.environment,
        &do_options(&args.target, None),
    )
    .await?;
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
    let kind = provision::resolve_provider_kind(args.target.provider, &global.config)?;
    let text = prod::logs(
        global,
        kind,
        &do_options(&args.target, None),
        &args.target.environment,
        &args.host,
    )
    .await?;
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
