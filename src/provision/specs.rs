//! Host specs: the built-in defaults (`PROD_HOSTS`), `[prod]` and `[prod.hosts.NAME]` in pipeline.toml and
//! flags merged per field and checked, with each app's fleet `count` expanded into numbered hosts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{DEFAULT_IMAGE, DEFAULT_REGION};
use crate::providers::{HostSpec, WaitFor};
use crate::settings::{Config, ConfigError};

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
}
