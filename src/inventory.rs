//! Ansible INI inventories: rendering the one `prod up` writes (one group per host) and reading the one
//! `deploy`, `monitor-setup` and `canary` are given.
//!
//! Only hosts and connection variables go into the INI file: typed data travels in vars files instead,
//! because INI group vars are always strings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::providers::{Connection, Host};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(
        "inventory {path} does not exist; create it with `pipeline prod up` (or pass -i PATH)"
    )]
    Missing { path: PathBuf },
    #[error("cannot read inventory {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("inventory {path}, line {line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("inventory {path} has no host in group [{group}]; `pipeline prod up` writes one (groups present: {present})")]
    NoGroup {
        path: PathBuf,
        group: String,
        present: String,
    },
    #[error("host {host} has no IP address yet, so it cannot go into the inventory; run `pipeline prod up` again to wait for it")]
    NoAddress { host: String },
    #[error(transparent)]
    Template(#[from] crate::templates::TemplateError),
}

/// One host line of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryHost {
    pub name: String,
    /// Inline variables (`ansible_host=…`, …) in file order.
    pub vars: BTreeMap<String, String>,
}

impl InventoryHost {
    /// The address to reach the host at: `ansible_host`, else the host name.
    pub fn address(&self) -> &str {
        self.vars
            .get("ansible_host")
            .map(String::as_str)
            .unwrap_or(&self.name)
    }
}

/// A parsed INI inventory: groups of hosts (children and vars sections are kept as written, not expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub path: PathBuf,
    pub groups: BTreeMap<String, Vec<InventoryHost>>,
}

impl Inventory {
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                InventoryError::Missing {
                    path: path.to_owned(),
                }
            } else {
                InventoryError::Read {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, InventoryError> {
        let mut groups: BTreeMap<String, Vec<InventoryHost>> = BTreeMap::new();
        let mut current: Option<String> = Some("ungrouped".to_string());
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| InventoryError::Syntax {
                        path: path.to_owned(),
                        line: i + 1,
                        message: format!("unterminated section header `{line}`"),
                    })?;
                // `[group:vars]` and `[group:children]` are not host lists.
                current = if name.contains(':') {
                    None
                } else {
                    Some(name.to_string())
                };
                if let Some(g) = &current {
                    groups.entry(g.clone()).or_default();
                }
                continue;
            }
            let Some(group) = &current else { continue };
            let mut words = line.split_whitespace();
            let name = words.next().expect("non-empty line").to_string();
            let mut vars = BTreeMap::new();
            for word in words {
                let (k, v) = word.split_once('=').ok_or_else(|| InventoryError::Syntax {
                    path: path.to_owned(),
                    line: i + 1,
                    message: format!("expected key=value after the host name, found `{word}`"),
                })?;
                vars.insert(k.to_string(), v.trim_matches(['"', '\'']).to_string());
            }
            groups
                .entry(group.clone())
                .or_default()
                .push(InventoryHost { name, vars });
        }
        groups.retain(|g, hosts| g != "ungrouped" || !hosts.is_empty());
        Ok(Inventory {
            path: path.to_owned(),
            groups,
        })
    }

    /// The hosts of `group`, or an error naming the groups that are there.
    pub fn group(&self, group: &str) -> Result<&[InventoryHost], InventoryError> {
        match self.groups.get(group) {
            Some(hosts) if !hosts.is_empty() => Ok(hosts),
            _ => Err(InventoryError::NoGroup {
                path: self.path.clone(),
                group: group.to_string(),
                present: if self.groups.is_empty() {
                    "none".to_string()
                } else {
                    self.groups.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            }),
        }
    }
}

#[derive(Serialize)]
struct RenderHost<'a> {
    group: &'a str,
    name: &'a str,
    ip: String,
}

/// Renders the inventory for `hosts` (each in a group named after it). Pure; the caller writes it atomically.
pub fn render(
    hosts: &[Host],
    connection: &Connection,
    command: &str,
    provider: &str,
    environment: &str,
) -> Result<String, InventoryError> {
    let mut sorted: Vec<&Host> = hosts.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let rendered: Vec<RenderHost> = sorted
        .iter()
        .map(|h| {
            let ip = h.ip.ok_or_else(|| InventoryError::NoAddress {
                host: h.name.clone(),
            })?;
            Ok(RenderHost {
                group: &h.name,
                name: &h.name,
                ip: ip.to_string(),
            })
        })
        .collect::<Result<_, InventoryError>>()?;
    let mut ctx = tera::Context::new();
    ctx.insert("hosts", &rendered);
    ctx.insert("user", &connection.user);
    ctx.insert("private_key", &connection.private_key.display().to_string());
    ctx.insert("command", command);
    ctx.insert("provider", provider);
    ctx.insert("environment", environment);
    Ok(crate::templates::render("inventory.ini.tera", &ctx)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, ip: &str) -> Host {
        Host {
            name: name.into(),
            id: "1".into(),
            status: "active".into(),
            ip: Some(ip.parse().unwrap()),
            size: "s".into(),
            region: "r".into(),
        }
    }

    #[test]
    fn rendered_inventory_parses_back_with_one_group_per_host_and_connection_vars() {
        let conn = Connection {
            user: "root".into(),
            private_key: "/root/.ssh/id_ed25519".into(),
        };
        let text = render(
            &[
                host("monitor", "10.0.0.3"),
                host("itrust", "10.0.0.1"),
                host("checkbox", "10.0.0.2"),
            ],
            &conn,
            "prod up",
            "digitalocean",
            "prod",
        )
        .unwrap();
        let inv = Inventory::parse(&text, Path::new("inventory.ini")).unwrap();
        assert_eq!(
            inv.groups.keys().collect::<Vec<_>>(),
            vec!["checkbox", "itrust", "monitor"]
        );
        let itrust = &inv.group("itrust").unwrap()[0];
        assert_eq!(itrust.address(), "10.0.0.1");
        assert_eq!(itrust.vars["ansible_user"], "root");
        assert_eq!(
            itrust.vars["ansible_ssh_private_key_file"],
            "/root/.ssh/id_ed25519"
        );
        assert_eq!(
            itrust.vars["ansible_python_interpreter"],
            "/usr/bin/python3"
        );
    }

    #[test]
    fn host_without_address_cannot_be_rendered() {
        let mut h = host("itrust", "10.0.0.1");
        h.ip = None;
        let conn = Connection {
            user: "root".into(),
            private_key: "k".into(),
        };
        let err = render(&[h], &conn, "prod up", "digitalocean", "prod").unwrap_err();
        assert!(err.to_string().contains("itrust has no IP"), "{err}");
    }

    #[test]
    fn missing_group_error_lists_the_groups_present() {
        let inv = Inventory::parse(
            "[web]\na ansible_host=1.2.3.4\n[web:vars]\nx=1\n",
            Path::new("i.ini"),
        )
        .unwrap();
        let err = inv.group("itrust").unwrap_err().to_string();
        assert!(err.contains("[itrust]") && err.contains("web"), "{err}");
        assert_eq!(inv.group("web").unwrap().len(), 1);
    }

    #[test]
    fn malformed_host_variable_is_a_syntax_error_with_line_number() {
        let err = Inventory::parse("[web]\na ansible_host\n", Path::new("i.ini")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
