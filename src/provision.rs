//! Bringing an environment's hosts up or down through a [`Provider`], shared by `prod`, `canary` and `demo`:
//! resolve the provider, create or adopt the hosts, wait until they are usable, write the inventory
//! atomically. Also builds host specs from defaults, pipeline.toml and flags.
//!
//! # Using it from another command
//! ```no_run
//! # async fn demo(global: &pipeline::settings::Global) -> anyhow::Result<()> {
//! use std::collections::BTreeMap;
//! use pipeline::provision::{self, HostDefault, HostOverride, UpRequest};
//!
//! const HOSTS: [HostDefault; 2] = [
//!     HostDefault { name: "blue", size: "s-1vcpu-1gb" },
//!     HostDefault { name: "green", size: "s-1vcpu-1gb" },
//! ];
//! let kind = provision::resolve_provider_kind(None, &global.config)?;
//! let none = HostOverride::default();
//! let specs = provision::build_specs("canary", &HOSTS, &none, &BTreeMap::new(), &none)?;
//! let req = UpRequest::new(kind, "canary", specs, "canary.ini", "canary"); // the directory must exist
//! let done = provision::up(global, &req).await?; // hosts ready, inventory written
//! println!("{} hosts in {}", done.hosts.len(), done.inventory.display());
//! provision::down(global, kind, "canary").await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::inventory;
use crate::providers::digitalocean::{self, DigitalOcean};
use crate::providers::local::Local;
use crate::providers::{Connection, Host, HostSpec, Provider, ProviderKind, WaitFor};
use crate::settings::{Config, ConfigError, Global};

/// Environment variable naming the provider (below `--provider`, above `provider = …` in pipeline.toml).
pub const PROVIDER_VAR: &str = "PIPELINE_PROVIDER";
pub const DEFAULT_REGION: &str = "nyc1";
pub const DEFAULT_IMAGE: &str = "ubuntu-24-04-x64";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A host a command provisions unless configured otherwise, and its default size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDefault {
    pub name: &'static str,
    pub size: &'static str,
}

/// The production hosts: iTrust runs a JVM and MySQL, which do not fit in 1 GB.
pub const PROD_HOSTS: [HostDefault; 3] = [
    HostDefault {
        name: "itrust",
        size: "s-1vcpu-2gb",
    },
    HostDefault {
        name: "checkbox",
        size: "s-1vcpu-1gb",
    },
    HostDefault {
        name: "monitor",
        size: "s-1vcpu-1gb",
    },
];

/// Values that override a host's spec; used for `[prod]` (all hosts), `[prod.hosts.NAME]` (one host) and flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostOverride {
    /// DigitalOcean region slug, e.g. `nyc3`.
    pub region: Option<String>,
    /// DigitalOcean image slug, e.g. `ubuntu-22-04-x64`.
    pub image: Option<String>,
    /// DigitalOcean size slug, e.g. `s-2vcpu-4gb`.
    pub size: Option<String>,
    /// Memory limit for the local provider's container, e.g. `2G`.
    pub memory_limit: Option<String>,
    /// `[prod.hosts.itrust|checkbox]` only: how many hosts run the app ([`crate::fleet`]).
    pub count: Option<u32>,
}

/// The `[prod]` section of pipeline.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProdSection {
    pub region: Option<String>,
    pub image: Option<String>,
    pub size: Option<String>,
    pub memory_limit: Option<String>,
    /// Where `prod up` writes the inventory (default inventory.ini).
    pub inventory: Option<PathBuf>,
    /// `ssh` or `active`.
    pub wait: Option<WaitFor>,
    /// Longest wait for the hosts, e.g. `15m`.
    pub timeout: Option<String>,
    /// Per-host overrides: `[prod.hosts.itrust]`.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostOverride>,
    /// An `lb` host balancing each app across its hosts (default: on when any count > 1).
    pub front_door: Option<bool>,
}

impl ProdSection {
    pub fn load(config: &Config) -> Result<Self, ConfigError> {
        config.section("prod")
    }

    /// `timeout`, parsed (e.g. `15m`).
    pub fn timeout(&self) -> Result<Option<Duration>, ConfigError> {
        self.timeout
            .as_deref()
            .map(|s| {
                humantime::parse_duration(s).map_err(|e| ConfigError::Invalid {
                    what: "[prod] timeout".to_string(),
                    message: format!("`{s}`: {e} (use e.g. `15m`)"),
                })
            })
            .transpose()
    }

    fn common(&self) -> HostOverride {
        HostOverride {
            region: self.region.clone(),
            image: self.image.clone(),
            size: self.size.clone(),
            memory_limit: self.memory_limit.clone(),
            count: None,
        }
    }

    /// `count` per host of `[prod.hosts.NAME]` (absent: 1), each checked.
    pub fn counts(&self) -> Result<BTreeMap<String, u32>, ConfigError> {
        let mut counts = BTreeMap::new();
        for (name, o) in &self.hosts {
            let n = o.count.unwrap_or(1);
            crate::fleet::check_count(name, n)?;
            counts.insert(name.clone(), n);
        }
        Ok(counts)
    }

    /// Whether this environment gets the front door (`lb`).
    pub fn front_door(&self) -> Result<bool, ConfigError> {
        Ok(crate::fleet::wants_front_door(
            self.front_door,
            &self.counts()?,
        ))
    }
}

/// The prod host specs: flags > `[prod.hosts.NAME]` > `[prod]` > built-in defaults; one per host of each
/// app's `count`, plus `lb` when the environment has a front door.
pub fn prod_host_specs(
    section: &ProdSection,
    flags: &HostOverride,
) -> Result<Vec<HostSpec>, ConfigError> {
    let counts = section.counts()?;
    let mut defaults = PROD_HOSTS.to_vec();
    if section.front_door()? {
        defaults.push(HostDefault {
            name: crate::fleet::LB,
            size: crate::fleet::LB_SIZE,
        });
    }
    let specs = build_specs("prod", &defaults, &section.common(), &section.hosts, flags)?;
    Ok(crate::fleet::expand(specs, &counts))
}

/// Host specs for `defaults`: per field, `flags` beat `per_host[name]`, which beat `common`, which beat the
/// defaults. `section` names the config section in errors. Every value is checked.
pub fn build_specs(
    section: &str,
    defaults: &[HostDefault],
    common: &HostOverride,
    per_host: &BTreeMap<String, HostOverride>,
    flags: &HostOverride,
) -> Result<Vec<HostSpec>, ConfigError> {
    if let Some(unknown) = per_host
        .keys()
        .find(|k| !defaults.iter().any(|d| d.name == k.as_str()))
    {
        return Err(ConfigError::Invalid {
            what: format!("[{section}.hosts.{unknown}]"),
            message: format!(
                "there is no host `{unknown}` (hosts: {})",
                defaults
                    .iter()
                    .map(|d| d.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    if section != "prod" {
        if let Some((name, _)) = per_host.iter().find(|(_, o)| o.count.is_some()) {
            return Err(ConfigError::Invalid {
                what: format!("[{section}.hosts.{name}] count"),
                message: "only [prod.hosts.itrust] and [prod.hosts.checkbox] take a count".into(),
            });
        }
    }
    let none = HostOverride::default();
    defaults
        .iter()
        .map(|d| {
            let host = per_host.get(d.name).unwrap_or(&none);
            let pick = |f: fn(&HostOverride) -> &Option<String>| {
                f(flags)
                    .clone()
                    .or_else(|| f(host).clone())
                    .or_else(|| f(common).clone())
            };
            let what = |field: &str| format!("{field} of host {} ([{section}] or flag)", d.name);
            let spec = HostSpec {
                name: d.name.to_string(),
                size: pick(|o| &o.size).unwrap_or_else(|| d.size.to_string()),
                image: pick(|o| &o.image).unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
                region: pick(|o| &o.region).unwrap_or_else(|| DEFAULT_REGION.to_string()),
                memory_limit: pick(|o| &o.memory_limit),
            };
            check_slug(&what("size"), &spec.size)?;
            check_slug(&what("image"), &spec.image)?;
            check_slug(&what("region"), &spec.region)?;
            if let Some(m) = &spec.memory_limit {
                check_memory(&what("memory_limit"), m)?;
            }
            Ok(spec)
        })
        .collect()
}

/// DigitalOcean slugs are lowercase letters, digits and dashes.
fn check_slug(what: &str, value: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            what: what.to_string(),
            message: format!(
                "`{value}` is not a slug (lowercase letters, digits, `-`; e.g. `s-1vcpu-2gb`, `nyc1`, `ubuntu-24-04-x64`)"
            ),
        })
    }
}

/// A systemd memory size: digits with an optional K, M, G or T suffix.
fn check_memory(what: &str, value: &str) -> Result<(), ConfigError> {
    let digits = value.trim_end_matches(['K', 'M', 'G', 'T']);
    let ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && value.len() - digits.len() <= 1;
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            what: what.to_string(),
            message: format!("`{value}` is not a memory size (e.g. `1536M`, `2G`)"),
        })
    }
}

/// Environment names become tags, container and interface names: 1–20 lowercase letters, digits and `-`,
/// starting with a letter.
pub fn check_environment(name: &str) -> Result<(), ConfigError> {
    let ok = (1..=20).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            what: "the environment name (--env / PIPELINE_ENV)".to_string(),
            message: format!(
                "`{name}` must be 1-20 lowercase letters, digits and `-`, starting with a letter (e.g. `prod`, `dev-alice`)"
            ),
        })
    }
}

/// The provider to use: `flag` (clap: `--provider`) > `PIPELINE_PROVIDER` > `provider` in pipeline.toml >
/// DigitalOcean.
pub fn resolve_provider_kind(
    flag: Option<ProviderKind>,
    config: &Config,
) -> Result<ProviderKind, ConfigError> {
    if let Some(kind) = flag {
        return Ok(kind);
    }
    let parse = |what: &str, value: String| {
        ProviderKind::parse(&value).ok_or_else(|| ConfigError::Invalid {
            what: what.to_string(),
            message: format!("`{value}` is not a provider (use `digitalocean` or `local`)"),
        })
    };
    if let Some(v) = std::env::var(PROVIDER_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return parse(PROVIDER_VAR, v);
    }
    match config.string("provider")? {
        Some(v) => parse("`provider` in pipeline.toml", v),
        None => Ok(ProviderKind::Digitalocean),
    }
}

/// The name a provider kind has on the command line and in files.
pub fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Digitalocean => "digitalocean",
        ProviderKind::Local => "local",
    }
}

/// What to bring up.
#[derive(Debug, Clone)]
pub struct UpRequest {
    pub provider: ProviderKind,
    pub environment: String,
    pub hosts: Vec<HostSpec>,
    pub wait: WaitFor,
    pub timeout: Duration,
    /// Where to write the inventory (atomically, once every host is ready).
    pub inventory: PathBuf,
    /// The command recorded in the inventory's header, e.g. `prod up` or `canary`.
    pub command: String,
    /// DigitalOcean overrides from flags (API URL, SSH key); the defaults read env and pipeline.toml.
    pub digitalocean: digitalocean::Options,
    /// Destroy the environment's hosts that no spec asks for (a lowered `count`, the front door turned
    /// off). Without it they are listed and left running.
    pub prune: bool,
    /// The request is for some hosts of the environment only (a rollout's canary host): the others are
    /// neither listed as beyond the configuration nor pruned.
    pub only_these: bool,
}

impl UpRequest {
    /// A request with the defaults: wait for SSH, at most 10 minutes, no DigitalOcean overrides.
    pub fn new(
        provider: ProviderKind,
        environment: impl Into<String>,
        hosts: Vec<HostSpec>,
        inventory: impl Into<PathBuf>,
        command: impl Into<String>,
    ) -> Self {
        UpRequest {
            provider,
            environment: environment.into(),
            hosts,
            wait: WaitFor::Ssh,
            timeout: DEFAULT_TIMEOUT,
            inventory: inventory.into(),
            command: command.into(),
            digitalocean: digitalocean::Options::default(),
            prune: false,
            only_these: false,
        }
    }
}

/// What `up` brought up.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub provider: ProviderKind,
    pub environment: String,
    /// Every requested host, ready, sorted by name.
    pub hosts: Vec<Host>,
    pub connection: Connection,
    pub inventory: PathBuf,
    /// Hosts of the environment beyond the specs: destroyed with [`UpRequest::prune`], else left running.
    pub extras: Vec<String>,
    /// Whether `extras` were destroyed.
    pub pruned: bool,
}

/// Brings the requested hosts up (creating or adopting them), waits until they are usable, and writes the
/// inventory. Checks that the inventory can be written before touching any host.
pub async fn up(global: &Global, req: &UpRequest) -> anyhow::Result<Provisioned> {
    check_environment(&req.environment)?;
    check_writable(&req.inventory)?;
    match req.provider {
        ProviderKind::Digitalocean => {
            let settings = digitalocean::Settings::resolve(global, &req.digitalocean)?;
            let provider = DigitalOcean::new(settings, &req.environment, true, &global.ui)
                .context("failed to start provisioning on DigitalOcean")?;
            up_with(provider, global, req).await
        }
        ProviderKind::Local => {
            let provider = Local::new(global, &req.environment)
                .context("failed to start provisioning on the local sandbox")?;
            up_with(provider, global, req).await
        }
    }
}

async fn up_with<P: Provider>(
    mut provider: P,
    global: &Global,
    req: &UpRequest,
) -> anyhow::Result<Provisioned> {
    let kind = kind_name(provider.kind());
    let names: Vec<String> = req.hosts.iter().map(|h| h.name.clone()).collect();
    let what = format!(
        "{} ({}, environment {})",
        names.join(", "),
        kind,
        req.environment
    );
    provider
        .up(&req.hosts, &global.ui)
        .await
        .with_context(|| format!("failed to bring up {what}"))?;
    let extras = if req.only_these {
        Vec::new()
    } else {
        provider
            .unrequested(&req.hosts)
            .await
            .with_context(|| format!("failed to list environment {} ({kind})", req.environment))?
    };
    if !extras.is_empty() {
        if req.prune {
            global.ui.info(format!(
                "--prune: destroying {} (beyond the configured hosts)",
                extras.join(", ")
            ));
            provider
                .remove(&extras, &global.ui)
                .await
                .with_context(|| format!("failed to destroy {}", extras.join(", ")))?;
        } else {
            global.ui.warn(format!(
                "environment {} has {} beyond the configured hosts; they keep running and stay out of the \
                 inventory. Run `pipeline prod up --prune` to destroy exactly those",
                req.environment,
                extras.join(", ")
            ));
        }
    }
    global.ui.info(format!(
        "waiting up to {} for {} ({})",
        humantime::format_duration(req.timeout),
        names.join(", "),
        match req.wait {
            WaitFor::Ssh => "active and answering SSH",
            WaitFor::Active => "active with a public address",
        }
    ));
    let mut hosts = provider
        .wait_ready(&names, req.wait, req.timeout, &global.ui)
        .await
        .with_context(|| format!("failed waiting for {what}"))?;
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    let connection = provider.connection();
    let text = inventory::render(&hosts, &connection, &req.command, kind, &req.environment)
        .context("failed to render the inventory")?;
    crate::fsutil::write_atomic(&req.inventory, text.as_bytes(), 0o644)
        .with_context(|| format!("failed to write inventory {}", req.inventory.display()))?;
    Ok(Provisioned {
        provider: provider.kind(),
        environment: req.environment.clone(),
        hosts,
        connection,
        inventory: req.inventory.clone(),
        extras,
        pruned: req.prune,
    })
}

/// Fails early, before any host is made, when the inventory could not be written: its directory must exist
/// and accept a new file, and the path must not be a directory.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.is_dir() {
        anyhow::bail!(
            "cannot write inventory {}: it is a directory; pass a file path with -i",
            path.display()
        );
    }
    tempfile::Builder::new()
        .prefix(".pipeline-check-")
        .tempfile_in(dir)
        .map(drop)
        .with_context(|| {
            format!(
                "cannot write inventory {} (directory {} must exist and be writable); pass another path with -i",
                path.display(),
                dir.display()
            )
        })
}

/// Destroys an environment's hosts (DigitalOcean settings from env and pipeline.toml). Returns their names.
pub async fn down(
    global: &Global,
    kind: ProviderKind,
    environment: &str,
) -> anyhow::Result<Vec<String>> {
    down_with_options(global, kind, environment, &digitalocean::Options::default()).await
}

/// [`down`] with DigitalOcean overrides from flags.
pub async fn down_with_options(
    global: &Global,
    kind: ProviderKind,
    environment: &str,
    options: &digitalocean::Options,
) -> anyhow::Result<Vec<String>> {
    check_environment(environment)?;
    let context = || {
        format!(
            "failed to destroy environment {environment} ({})",
            kind_name(kind)
        )
    };
    match kind {
        ProviderKind::Digitalocean => {
            let settings = digitalocean::Settings::resolve(global, options)?;
            let mut p = DigitalOcean::new(settings, environment, false, &global.ui)
                .with_context(context)?;
            p.down(&global.ui).await.with_context(context)
        }
        ProviderKind::Local => {
            let mut p = Local::new(global, environment).with_context(context)?;
            p.down(&global.ui).await.with_context(context)
        }
    }
}

/// Destroys the hosts `names` of an environment, and only those (names not there are skipped). Returns
/// the names destroyed.
pub async fn remove(
    global: &Global,
    kind: ProviderKind,
    environment: &str,
    names: &[String],
) -> anyhow::Result<Vec<String>> {
    check_environment(environment)?;
    let context = || {
        format!(
            "failed to destroy {} in environment {environment} ({})",
            names.join(", "),
            kind_name(kind)
        )
    };
    match kind {
        ProviderKind::Digitalocean => {
            let settings =
                digitalocean::Settings::resolve(global, &digitalocean::Options::default())?;
            let mut p = DigitalOcean::new(settings, environment, false, &global.ui)
                .with_context(context)?;
            p.remove(names, &global.ui).await.with_context(context)
        }
        ProviderKind::Local => {
            let mut p = Local::new(global, environment).with_context(context)?;
            p.remove(names, &global.ui).await.with_context(context)
        }
    }
}

/// An environment's hosts as the provider sees them now, sorted by name.
pub async fn list(
    global: &Global,
    kind: ProviderKind,
    environment: &str,
    options: &digitalocean::Options,
) -> anyhow::Result<Vec<Host>> {
    check_environment(environment)?;
    let context = || {
        format!(
            "failed to list environment {environment} ({})",
            kind_name(kind)
        )
    };
    let mut hosts = match kind {
        ProviderKind::Digitalocean => {
            let settings = digitalocean::Settings::resolve(global, options)?;
            DigitalOcean::new(settings, environment, false, &global.ui)
                .with_context(context)?
                .list()
                .await
                .with_context(context)?
        }
        ProviderKind::Local => Local::new(global, environment)
            .with_context(context)?
            .list()
            .await
            .with_context(context)?,
    };
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(section: &str, flags: &HostOverride) -> Result<Vec<HostSpec>, ConfigError> {
        let cfg = Config::parse(section, "pipeline.toml".into()).unwrap();
        prod_host_specs(&ProdSection::load(&cfg)?, flags)
    }

    #[test]
    fn defaults_give_itrust_two_gigabytes_and_the_others_one() {
        let s = specs("", &HostOverride::default()).unwrap();
        let sizes: Vec<_> = s
            .iter()
            .map(|h| (h.name.as_str(), h.size.as_str()))
            .collect();
        assert_eq!(
            sizes,
            vec![
                ("itrust", "s-1vcpu-2gb"),
                ("checkbox", "s-1vcpu-1gb"),
                ("monitor", "s-1vcpu-1gb")
            ]
        );
        assert!(s
            .iter()
            .all(|h| h.region == "nyc1" && h.image == "ubuntu-24-04-x64"));
    }

    #[test]
    fn flag_beats_host_section_beats_prod_section_beats_default() {
        let toml = "[prod]\nregion = \"sfo3\"\nsize = \"s-2vcpu-2gb\"\n\
                    [prod.hosts.itrust]\nsize = \"s-2vcpu-4gb\"\nmemory_limit = \"2G\"\n";
        let s = specs(toml, &HostOverride::default()).unwrap();
        assert_eq!(s[0].size, "s-2vcpu-4gb");
        assert_eq!(s[0].memory_limit.as_deref(), Some("2G"));
        assert_eq!(s[1].size, "s-2vcpu-2gb");
        assert!(s.iter().all(|h| h.region == "sfo3"));
        let flags = HostOverride {
            region: Some("ams3".into()),
            ..Default::default()
        };
        let s = specs(toml, &flags).unwrap();
        assert!(s.iter().all(|h| h.region == "ams3"));
        assert_eq!(s[0].size, "s-2vcpu-4gb");
    }

    #[test]
    fn unknown_host_and_bad_values_are_errors_naming_them() {
        let err = specs(
            "[prod.hosts.itrsut]\nsize = \"x\"\n",
            &HostOverride::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("itrsut") && err.contains("itrust, checkbox, monitor"),
            "{err}"
        );
        let err = specs("[prod]\nsize = \"S 1GB\"\n", &HostOverride::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`S 1GB` is not a slug"), "{err}");
        let err = specs(
            "[prod.hosts.monitor]\nmemory_limit = \"lots\"\n",
            &HostOverride::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("memory_limit of host monitor"), "{err}");
        let err = specs("[prod]\nwait = \"forever\"\n", &HostOverride::default()).unwrap_err();
        assert!(err.to_string().contains("[prod]"), "{err}");
    }

    #[test]
    fn a_count_makes_numbered_hosts_of_the_apps_size_and_adds_the_front_door() {
        let names = |toml: &str| -> Vec<String> {
            specs(toml, &HostOverride::default())
                .unwrap()
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names(""), vec!["itrust", "checkbox", "monitor"]);
        assert_eq!(
            names("[prod.hosts.checkbox]\ncount = 3\n"),
            vec![
                "itrust",
                "checkbox-1",
                "checkbox-2",
                "checkbox-3",
                "monitor",
                "lb"
            ]
        );
        assert_eq!(
            names("[prod]\nfront_door = false\n[prod.hosts.itrust]\ncount = 2\n"),
            vec!["itrust-1", "itrust-2", "checkbox", "monitor"]
        );
        assert_eq!(
            names("[prod]\nfront_door = true\n"),
            vec!["itrust", "checkbox", "monitor", "lb"]
        );
        let s = specs(
            "[prod.hosts.itrust]\ncount = 2\n[prod.hosts.lb]\nsize = \"s-2vcpu-2gb\"\n",
            &HostOverride::default(),
        )
        .unwrap();
        assert!(s[..2].iter().all(|h| h.size == "s-1vcpu-2gb"));
        assert_eq!(s.last().unwrap().size, "s-2vcpu-2gb");
        let err = specs(
            "[prod.hosts.monitor]\ncount = 2\n",
            &HostOverride::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("count of [prod.hosts.monitor]"), "{err}");
        let none = HostOverride::default();
        let per = BTreeMap::from([(
            "blue".to_string(),
            HostOverride {
                count: Some(2),
                ..Default::default()
            },
        )]);
        let canary = [HostDefault {
            name: "blue",
            size: "s",
        }];
        assert!(build_specs("canary", &canary, &none, &per, &none).is_err());
    }

    #[test]
    fn environment_names_are_tag_and_interface_safe() {
        for ok in ["prod", "canary", "dev-alice", "e2"] {
            check_environment(ok).unwrap();
        }
        for bad in [
            "",
            "Prod",
            "dev_alice",
            "-x",
            "x-",
            "9lives",
            "a-very-long-environment-name",
        ] {
            assert!(check_environment(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn provider_comes_from_flag_then_config_then_default() {
        let cfg = Config::parse("provider = \"local\"\n", "p.toml".into()).unwrap();
        assert_eq!(
            resolve_provider_kind(Some(ProviderKind::Digitalocean), &cfg).unwrap(),
            ProviderKind::Digitalocean
        );
        // The environment variable is exercised by the CLI tests (it is process-wide).
        if std::env::var_os(PROVIDER_VAR).is_none() {
            assert_eq!(
                resolve_provider_kind(None, &cfg).unwrap(),
                ProviderKind::Local
            );
            assert_eq!(
                resolve_provider_kind(None, &Config::default()).unwrap(),
                ProviderKind::Digitalocean
            );
            let bad = Config::parse("provider = \"aws\"\n", "p.toml".into()).unwrap();
            assert!(resolve_provider_kind(None, &bad)
                .unwrap_err()
                .to_string()
                .contains("`aws` is not a provider"));
        }
    }

    #[test]
    fn unwritable_inventory_locations_are_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("inventory.ini")).unwrap();
        let err = check_writable(&dir.path().join("missing/inventory.ini")).unwrap_err();
        assert!(
            format!("{err:#}").contains("must exist and be writable"),
            "{err:#}"
        );
        let err = check_writable(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
