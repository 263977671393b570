//! The `prod` environment as a domain: the up request from flags and `[prod]` (flags > pipeline.toml >
//! defaults), and what `prod up|status|logs` report about it (the host table, the front-door line, the
//! status JSON, the hosts beyond the configuration, where a droplet's logs are). The command layer only
//! prints these.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{kind_name, prod_host_specs, HostOverride, ProdSection, Provisioned, UpRequest};
use crate::providers::{digitalocean, Host, ProviderKind, WaitFor};
use crate::settings::{pick, Config, ConfigError};

/// `prod up`'s own flags; each `None` falls back to `[prod]` in pipeline.toml, then the default.
#[derive(Debug, Clone, Default)]
pub struct ProdUpFlags {
    pub inventory: Option<PathBuf>,
    pub wait: Option<WaitFor>,
    pub timeout: Option<Duration>,
    /// Region, image and size for every host.
    pub hosts: HostOverride,
    pub prune: bool,
}

impl ProdUpFlags {
    /// The request `prod up` brings up: the prod host specs, inventory (default `inventory.ini`), wait
    /// (default SSH) and timeout (default 10 minutes) resolved against `[prod]`.
    pub fn request(
        &self,
        config: &Config,
        kind: ProviderKind,
        environment: &str,
        digitalocean: digitalocean::Options,
    ) -> Result<UpRequest, ConfigError> {
        let section = ProdSection::load(config)?;
        let hosts = prod_host_specs(&section, &self.hosts)?;
        let timeout = pick(self.timeout, section.timeout()?, || super::DEFAULT_TIMEOUT);
        let mut req = UpRequest::new(
            kind,
            environment,
            hosts,
            pick(self.inventory.clone(), section.inventory.clone(), || {
                PathBuf::from("inventory.ini")
            }),
            "prod up",
        );
        req.wait = pick(self.wait, section.wait, || WaitFor::Ssh);
        req.timeout = timeout;
        req.digitalocean = digitalocean;
        req.prune = self.prune;
        Ok(req)
    }
}

/// `prod status --json`: `{provider, environment, hosts: [{name, id, status, ip, size, region}]}`.
#[derive(Debug, Serialize)]
pub struct StatusJson<'a> {
    pub provider: &'static str,
    pub environment: &'a str,
    pub hosts: &'a [Host],
}

impl<'a> StatusJson<'a> {
    pub fn new(kind: ProviderKind, environment: &'a str, hosts: &'a [Host]) -> Self {
        StatusJson {
            provider: kind_name(kind),
            environment,
            hosts,
        }
    }
}

/// The line after `prod up`'s table naming the hosts beyond the configuration: destroyed with `--prune`,
/// else left running. `None` when there are none. Pure.
pub fn extras_line(done: &Provisioned) -> Option<String> {
    if done.extras.is_empty() {
        return None;
    }
    Some(format!(
        "{} {}",
        if done.pruned {
            "destroyed (--prune):"
        } else {
            "beyond the configuration, left running (`prod up --prune` destroys them):"
        },
        done.extras.join(", ")
    ))
}

/// Where to read host `host`'s logs on DigitalOcean, which has no log API, from the environment's
/// droplets as listed (a failed lookup only makes the hint vaguer). Pure.
pub fn droplet_logs_hint<E: std::fmt::Display>(
    host: &str,
    environment: &str,
    lookup: Result<Vec<Host>, E>,
) -> String {
    let where_ = match lookup {
        Ok(hosts) => match hosts.iter().find(|h| h.name == host) {
            Some(h) => format!(
                "open the droplet console at https://cloud.digitalocean.com/droplets/{}/console, or run `ssh root@{} journalctl -b`",
                h.id,
                h.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "<its IP>".into())
            ),
            None => format!(
                "and there is no host {host} in environment {environment} (see `pipeline prod status`)"
            ),
        },
        Err(e) => format!(
            "open the droplet's console from https://cloud.digitalocean.com/droplets \
             (looking it up failed: {e})"
        ),
    };
    format!("DigitalOcean has no API for droplet logs; {where_}")
}

/// `front door (lb): checkbox http://…/, itrust http://…:8080/iTrust2` when the environment has an `lb`
/// host. Pure.
pub fn front_door_line(hosts: &[Host]) -> Option<String> {
    let lb = hosts.iter().find(|h| h.name == crate::fleet::LB)?;
    let ip = lb.ip?.to_string();
    let groups: Vec<&str> = hosts
        .iter()
        .map(|h| crate::fleet::group_of(&h.name))
        .collect();
    let urls: Vec<String> = crate::fleet::front_door_urls(&ip, &groups)
        .into_iter()
        .map(|(app, url)| format!("{app} {url}"))
        .collect();
    Some(format!("front door ({}): {}", lb.name, urls.join(", ")))
}

/// `NAME ID STATUS IP SIZE REGION`, columns padded to their widest cell. Pure.
pub fn render_table(hosts: &[Host]) -> String {
    let header = ["NAME", "ID", "STATUS", "IP", "SIZE", "REGION"].map(String::from);
    let rows: Vec<[String; 6]> = std::iter::once(header)
        .chain(hosts.iter().map(|h| {
            [
                h.name.clone(),
                h.id.clone(),
                h.status.clone(),
                h.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into()),
                h.size.clone(),
                h.region.clone(),
            ]
        }))
        .collect();
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// `prod logs HOST`: the host's journal on the sandbox. DigitalOcean has no log API, so there the answer
/// is an error saying where the droplet's logs are (looking the droplet up only sharpens that hint, so a
/// failing lookup — no token, API down — is named in it, not fatal).
pub async fn logs(
    global: &crate::settings::Global,
    kind: ProviderKind,
    options: &digitalocean::Options,
    environment: &str,
    host: &str,
) -> anyhow::Result<String> {
    use crate::providers::{OpenError, Opened, Provider, Purpose};
    super::check_environment(environment)?;
    let context = || format!("failed to read the logs of host {host}");
    let opened = match crate::providers::open(
        kind,
        global,
        options,
        environment,
        Purpose::Inspect,
        &global.ui,
    ) {
        Err(OpenError::Config(e)) => return Err(e.into()),
        other => other,
    };
    match opened {
        Ok(Opened::Local(local)) => Ok(anyhow::Context::with_context(local.logs(host), context)?),
        Err(e) if kind == ProviderKind::Local => Err(anyhow::Error::new(e).context(context())),
        droplets => {
            let lookup = async { droplets?.list().await };
            anyhow::bail!("{}", droplet_logs_hint(host, environment, lookup.await))
        }
    }
}

/// What `prod down` says it did.
pub fn down_line(environment: &str, gone: &[String]) -> String {
    if gone.is_empty() {
        format!("nothing to destroy in environment {environment}")
    } else {
        format!("destroyed {} in environment {environment}", gone.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_marks_missing_ip() {
        let hosts = [
            Host {
                name: "itrust".into(),
                id: "101".into(),
                status: "active".into(),
                ip: Some("203.0.113.7".parse().unwrap()),
                size: "s-1vcpu-2gb".into(),
                region: "nyc1".into(),
            },
            Host {
                name: "monitor".into(),
                id: "1020".into(),
                status: "new".into(),
                ip: None,
                size: "s-1vcpu-1gb".into(),
                region: "nyc1".into(),
            },
        ];
        assert_eq!(
            render_table(&hosts),
            "NAME     ID    STATUS  IP           SIZE         REGION\n\
             itrust   101   active  203.0.113.7  s-1vcpu-2gb  nyc1\n\
             monitor  1020  new     -            s-1vcpu-1gb  nyc1\n"
        );
    }
}
