//! Fleets: N hosts per app behind a front door. Host naming (`count = 1` keeps the app's name, `count = N`
//! makes `<app>-1` … `<app>-N`, all in the group `[<app>]`), the `lb` host, the front door's addresses, and
//! rolling-deploy batches (`[deploy] serial` and `max_fail_percentage`, read the way Ansible reads them).
//! Pure functions: `provision`, `inventory`, `prod` and `deploy` call them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::providers::HostSpec;
use crate::settings::ConfigError;

/// The apps that may run on several hosts, and the port and path the front door serves each at.
pub const FLEET_APPS: [FrontDoorApp; 2] = [
    FrontDoorApp {
        app: "checkbox",
        port: 80,
        path: "/",
    },
    FrontDoorApp {
        app: "itrust",
        port: 8080,
        path: "/iTrust2",
    },
];

/// The front door's host and inventory group.
pub const LB: &str = "lb";
/// Its default DigitalOcean size: nginx proxying needs little.
pub const LB_SIZE: &str = "s-1vcpu-1gb";
/// The largest `count` accepted for one app (DigitalOcean creates them ten per request).
pub const MAX_COUNT: u32 = 50;

/// One app as the front door serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontDoorApp {
    pub app: &'static str,
    pub port: u16,
    pub path: &'static str,
}

/// Where the front door serves `app` (its port there, and the app's default path).
pub fn front_door_app(app: crate::apps::App) -> FrontDoorApp {
    *FLEET_APPS
        .iter()
        .find(|a| a.app == app.key())
        .expect("every app can run as a fleet")
}

/// The host names of an app with `count` hosts: its own name for one, `<app>-1` … `<app>-N` otherwise.
pub fn host_names(app: &str, count: u32) -> Vec<String> {
    if count <= 1 {
        vec![app.to_string()]
    } else {
        (1..=count).map(|i| format!("{app}-{i}")).collect()
    }
}

/// The inventory group a host belongs to: `checkbox` for `checkbox-3`, the name itself otherwise.
pub fn group_of(name: &str) -> &str {
    if let Some((prefix, n)) = name.rsplit_once('-') {
        let numbered = !n.is_empty() && n.chars().all(|c| c.is_ascii_digit());
        if numbered && FLEET_APPS.iter().any(|a| a.app == prefix) {
            return prefix;
        }
    }
    name
}

/// Expands the one spec per app into one per host (`counts` per app name; absent means 1). Each copy keeps
/// its app's size, image, region and memory limit.
pub fn expand(specs: Vec<HostSpec>, counts: &BTreeMap<String, u32>) -> Vec<HostSpec> {
    specs
        .into_iter()
        .flat_map(|spec| {
            let count = counts.get(&spec.name).copied().unwrap_or(1);
            host_names(&spec.name, count)
                .into_iter()
                .map(move |name| HostSpec {
                    name,
                    ..spec.clone()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Checks a `count` of `[prod.hosts.<app>]`: 1 to [`MAX_COUNT`], and only for the apps that can have more
/// than one host.
pub fn check_count(app: &str, count: u32) -> Result<(), ConfigError> {
    let what = format!("count of [prod.hosts.{app}]");
    if count == 0 || count > MAX_COUNT {
        return Err(ConfigError::Invalid {
            what,
            message: format!(
                "{count} is out of range: use 1 to {MAX_COUNT} (remove hosts with a lower count and `prod up --prune`)"
            ),
        });
    }
    if count > 1 && !FLEET_APPS.iter().any(|a| a.app == app) {
        return Err(ConfigError::Invalid {
            what,
            message: format!(
                "only {} can run on several hosts; `{app}` runs on exactly one",
                FLEET_APPS.map(|a| a.app).join(" and ")
            ),
        });
    }
    Ok(())
}

/// Whether the environment gets a front door: `[prod] front_door` if set, else on when any app has more
/// than one host.
pub fn wants_front_door(setting: Option<bool>, counts: &BTreeMap<String, u32>) -> bool {
    setting.unwrap_or_else(|| counts.values().any(|&c| c > 1))
}

/// The hosts of a listing beyond what the specs ask for (after a count was lowered, or the front door
/// turned off): `up` names them and removes them only with `--prune`. Sorted.
/// A rollout's canary host (`<app>-canary`) is left out: `pipeline rollout` made it and retires it.
pub fn extras<'a>(wanted: &[HostSpec], existing: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = existing
        .into_iter()
        .filter(|n| !wanted.iter().any(|s| s.name == *n) && !is_canary_host(n))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The name of `app`'s canary host during a `pipeline rollout` (`checkbox-canary`).
pub fn canary_host(app: &str) -> String {
    format!("{app}-canary")
}

/// Whether `name` is the canary host of one of the fleet apps.
pub fn is_canary_host(name: &str) -> bool {
    FLEET_APPS.iter().any(|a| name == canary_host(a.app))
}

/// The front door's URL for each app present in `groups` (app group → its hosts), given the lb's address.
pub fn front_door_urls(lb: &str, groups: &[&str]) -> Vec<(&'static str, String)> {
    FLEET_APPS
        .iter()
        .filter(|a| groups.contains(&a.app))
        .map(|a| {
            let port = if a.port == 80 {
                String::new()
            } else {
                format!(":{}", a.port)
            };
            (a.app, format!("http://{lb}{port}{}", a.path))
        })
        .collect()
}

/// The monitored apps probed through the front door: one target per app in `monitored` (host `lb`, the
/// app's URL on the lb host; no exporter, the lb is probed, not scraped). Empty without an `lb` group.
pub fn front_door_probes(
    inventory: &crate::inventory::Inventory,
    apps: &[crate::monitoring::AppSpec],
    monitored: &[String],
) -> Vec<crate::monitoring::Target> {
    let Some(lb) = inventory.groups.get(LB).and_then(|g| g.first()) else {
        return Vec::new();
    };
    apps.iter()
        .filter(|a| monitored.iter().any(|g| g == a.group))
        .filter_map(|a| {
            let door = FLEET_APPS.iter().find(|f| f.app == a.group)?;
            let path = if a.path.starts_with('/') {
                a.path.clone()
            } else {
                format!("/{}", a.path)
            };
            Some(crate::monitoring::Target {
                host: lb.name.clone(),
                group: LB.to_string(),
                app: a.app.to_string(),
                exporter: String::new(),
                url: format!("http://{}:{}{path}", lb.address(), door.port),
            })
        })
        .collect()
}

/// One element of `serial`: a host count or a percentage of the app's hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum BatchSize {
    Hosts(u32),
    /// Written as `"30%"`.
    Percent(String),
}

impl BatchSize {
    fn parse(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Integer(n) if *n >= 1 && *n <= u32::MAX as i64 => {
                Ok(BatchSize::Hosts(*n as u32))
            }
            toml::Value::String(s) => {
                let pct = s
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok());
                match pct {
                    Some(p) if p > 0.0 && p <= 100.0 => Ok(BatchSize::Percent(format!("{p}%"))),
                    _ => Err(format!("`{s}` is not a percentage (e.g. \"30%\")")),
                }
            }
            other => Err(format!(
                "`{other}` is neither a host count (1, 2, …) nor a percentage (\"30%\")"
            )),
        }
    }

    /// How many hosts this batch takes out of `total`, as Ansible computes it (at least one).
    fn hosts(&self, total: usize) -> usize {
        match self {
            BatchSize::Hosts(n) => *n as usize,
            BatchSize::Percent(p) => {
                let pct: f64 = p.trim_end_matches('%').parse().unwrap_or(100.0);
                ((pct / 100.0) * total as f64).floor().max(1.0) as usize
            }
        }
    }
}

/// `[deploy] serial`: one batch size or a list of them (the last one repeats), as Ansible's `serial`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Serial(pub Vec<BatchSize>);

impl Default for Serial {
    /// One host at a time: the front door always has the others to serve.
    fn default() -> Self {
        Serial(vec![BatchSize::Hosts(1)])
    }
}

impl<'de> Deserialize<'de> for Serial {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        let items = match &value {
            toml::Value::Array(a) if a.is_empty() => {
                return Err(serde::de::Error::custom("serial: the list is empty"))
            }
            toml::Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        items
            .iter()
            .map(BatchSize::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Serial)
            .map_err(|e| serde::de::Error::custom(format!("serial: {e}")))
    }
}

impl Serial {
    /// The batches Ansible makes of `hosts` (in inventory order). Pure.
    pub fn batches<'a>(&self, hosts: &'a [String]) -> Vec<&'a [String]> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while start < hosts.len() {
            let size = self.0[i.min(self.0.len() - 1)].hosts(hosts.len()).max(1);
            let end = (start + size).min(hosts.len());
            out.push(&hosts[start..end]);
            start = end;
            i += 1;
        }
        out
    }
}

/// Checks `[deploy] max_fail_percentage` (0 to 100).
pub fn check_max_fail(value: u32) -> Result<(), ConfigError> {
    if value > 100 {
        return Err(ConfigError::Invalid {
            what: "[deploy] max_fail_percentage".into(),
            message: format!("{value} is not a percentage (0 to 100)"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> HostSpec {
        HostSpec {
            name: name.into(),
            size: "s-1vcpu-1gb".into(),
            image: "i".into(),
            region: "r".into(),
            memory_limit: None,
        }
    }

    #[test]
    fn count_one_keeps_the_app_name_and_more_number_the_hosts_in_one_group() {
        assert_eq!(host_names("checkbox", 1), vec!["checkbox"]);
        assert_eq!(
            host_names("checkbox", 3),
            vec!["checkbox-1", "checkbox-2", "checkbox-3"]
        );
        assert_eq!(group_of("checkbox-12"), "checkbox");
        assert_eq!(group_of("checkbox"), "checkbox");
        assert_eq!(group_of("itrust-2"), "itrust");
        assert_eq!(group_of("monitor"), "monitor");
        assert_eq!(group_of("blue-1"), "blue-1");
        assert_eq!(group_of("checkbox-x"), "checkbox-x");
    }

    #[test]
    fn expand_copies_each_apps_spec_per_host() {
        let counts = BTreeMap::from([("checkbox".to_string(), 2)]);
        let out = expand(vec![spec("itrust"), spec("checkbox")], &counts);
        let names: Vec<_> = out.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["itrust", "checkbox-1", "checkbox-2"]);
        assert!(out.iter().all(|s| s.size == "s-1vcpu-1gb"));
    }

    #[test]
    fn counts_are_bounded_and_only_for_the_apps() {
        check_count("checkbox", 20).unwrap();
        check_count("monitor", 1).unwrap();
        assert!(check_count("checkbox", 0).is_err());
        assert!(check_count("checkbox", MAX_COUNT + 1).is_err());
        let err = check_count("monitor", 2).unwrap_err().to_string();
        assert!(err.contains("only checkbox and itrust"), "{err}");
    }

    #[test]
    fn front_door_defaults_on_for_any_fleet_and_follows_the_setting() {
        let one = BTreeMap::from([("checkbox".to_string(), 1)]);
        let three = BTreeMap::from([("checkbox".to_string(), 3)]);
        assert!(!wants_front_door(None, &one));
        assert!(wants_front_door(None, &three));
        assert!(wants_front_door(Some(true), &one));
        assert!(!wants_front_door(Some(false), &three));
    }

    #[test]
    fn extras_are_the_listed_hosts_no_spec_asks_for() {
        let wanted = vec![spec("checkbox-1"), spec("checkbox-2")];
        let listed = ["checkbox-3", "checkbox-1", "checkbox-2", "checkbox-10"];
        assert_eq!(extras(&wanted, listed), vec!["checkbox-10", "checkbox-3"]);
    }

    #[test]
    fn a_rollouts_canary_host_is_no_extra_so_prune_leaves_it_to_the_rollout() {
        let wanted = vec![spec("checkbox-1"), spec("itrust")];
        let listed = [
            "checkbox-1",
            "checkbox-canary",
            "itrust",
            "itrust-canary",
            "monitor-canary",
        ];
        assert_eq!(extras(&wanted, listed), vec!["monitor-canary"]);
        assert!(is_canary_host("itrust-canary") && !is_canary_host("lb"));
    }

    #[test]
    fn front_door_urls_serve_checkbox_on_80_and_itrust_on_8080() {
        assert_eq!(
            front_door_urls("10.0.0.9", &["checkbox", "itrust", "monitor"]),
            vec![
                ("checkbox", "http://10.0.0.9/".to_string()),
                ("itrust", "http://10.0.0.9:8080/iTrust2".to_string())
            ]
        );
    }

    fn serial(toml_value: &str) -> Result<Serial, String> {
        #[derive(Deserialize)]
        struct T {
            serial: Serial,
        }
        toml::from_str::<T>(&format!("serial = {toml_value}"))
            .map(|t| t.serial)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn serial_takes_a_count_a_percentage_or_a_list_like_ansible() {
        let hosts: Vec<String> = (1..=10).map(|i| format!("h{i}")).collect();
        let sizes = |s: &Serial| {
            s.batches(&hosts)
                .iter()
                .map(|b| b.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(&serial("1").unwrap()), vec![1; 10]);
        assert_eq!(sizes(&serial("\"30%\"").unwrap()), vec![3, 3, 3, 1]);
        assert_eq!(
            sizes(&serial("[1, \"50%\", \"100%\"]").unwrap()),
            vec![1, 5, 4]
        );
        assert_eq!(sizes(&serial("\"1%\"").unwrap()), vec![1; 10]);
        assert_eq!(Serial::default().batches(&hosts[..2]).len(), 2);
        assert!(serial("0").unwrap_err().contains("serial"));
        assert!(serial("\"lots\"").unwrap_err().contains("not a percentage"));
        assert!(serial("[]").unwrap_err().contains("empty"));
        assert_eq!(
            serde_json::to_value(serial("[1, \"50%\"]").unwrap()).unwrap(),
            serde_json::json!([1, "50%"])
        );
        assert!(check_max_fail(101).is_err());
        check_max_fail(0).unwrap();
    }
}
