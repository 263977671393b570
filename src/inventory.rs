//! Ansible inventories: rendering the INI one `prod up` writes (one group per host, values quoted) and
//! reading the one `deploy`, `monitor-setup` and `canary` are given through `ansible-inventory --list`, so
//! quoting, inline comments, `[g:children]`, `[g:vars]`, `group_vars/` and YAML inventories mean exactly
//! what they mean to the ansible-playbook run that follows.
//!
//! Only hosts and connection variables go into the INI file: typed data travels in vars files instead,
//! because INI group vars are always strings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::process::{Cmd, ProcessError};
use crate::providers::{Connection, Host};

/// How many lines of ansible-inventory's stderr an error quotes.
const MESSAGE_LINES: usize = 20;

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
    #[error("inventory {path} is not a valid Ansible inventory; fix the file (ansible-inventory -i {path} --list shows what Ansible reads). Ansible said:\n{message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot read inventory {path}: ansible-inventory printed output that is not its JSON listing ({message})")]
    Listing { path: PathBuf, message: String },
    #[error(transparent)]
    Ansible(#[from] ProcessError),
    #[error("inventory {path} has no host in group [{group}]; `pipeline prod up` writes one (groups present: {present})")]
    NoGroup {
        path: PathBuf,
        group: String,
        present: String,
    },
    #[error("host {host} has no IP address yet, so it cannot go into the inventory; run `pipeline prod up` again to wait for it")]
    NoAddress { host: String },
    #[error("cannot write {what} `{value}` into the inventory: {why}")]
    Unwritable {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(transparent)]
    Template(#[from] crate::templates::TemplateError),
}

/// One host of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryHost {
    pub name: String,
    /// The host's variables as Ansible resolves them (host, group and `all` vars); non-string values
    /// in their JSON form.
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

/// An inventory as Ansible reads it: every group (except `all`, and `ungrouped` when empty) with all its
/// hosts, those of its children included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub path: PathBuf,
    pub groups: BTreeMap<String, Vec<InventoryHost>>,
}

impl Inventory {
    /// Reads `path` with `ansible-inventory -i PATH --list` (any format Ansible reads: INI, YAML, a
    /// directory). A file Ansible cannot parse is [`InventoryError::Invalid`], quoting Ansible.
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        if let Err(source) = std::fs::metadata(path) {
            return Err(if source.kind() == std::io::ErrorKind::NotFound {
                InventoryError::Missing {
                    path: path.to_owned(),
                }
            } else {
                InventoryError::Read {
                    path: path.to_owned(),
                    source,
                }
            });
        }
        let read_err = |source| InventoryError::Read {
            path: path.to_owned(),
            source,
        };
        let absolute = std::path::absolute(path).map_err(read_err)?;
        // A configuration of our own (empty: Ansible's defaults, as the playbook run has), so that an
        // ansible.cfg in the current directory or $HOME does not change how the file is read.
        let config_dir = tempfile::tempdir().map_err(read_err)?;
        let config = config_dir.path().join("ansible.cfg");
        std::fs::write(&config, "[defaults]\n").map_err(read_err)?;
        let out = Cmd::new(
            format!("read inventory {}", path.display()),
            "ansible-inventory",
        )
        .install_hint(crate::ansible::INSTALL_HINT)
        .dir(config_dir.path())
        .env("ANSIBLE_CONFIG", &config)
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "1")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .arg("-i")
        .arg(&absolute)
        .arg("--list")
        .run_unchecked()?;
        if !out.success() {
            return Err(InventoryError::Invalid {
                path: path.to_owned(),
                message: ansible_message(&out.stderr),
            });
        }
        Self::from_listing(&out.stdout, path)
    }

    /// Builds the inventory from `ansible-inventory --list` JSON. Pure.
    pub fn from_listing(json: &str, path: &Path) -> Result<Self, InventoryError> {
        let listing = |message: String| InventoryError::Listing {
            path: path.to_owned(),
            message,
        };
        let root: Value = serde_json::from_str(json).map_err(|e| listing(e.to_string()))?;
        let root = root
            .as_object()
            .ok_or_else(|| listing("not a JSON object".into()))?;
        let hostvars = root
            .get("_meta")
            .and_then(|m| m.get("hostvars"))
            .and_then(Value::as_object);
        let host = |name: &str| InventoryHost {
            name: name.to_string(),
            vars: hostvars
                .and_then(|h| h.get(name))
                .and_then(Value::as_object)
                .map(|vars| {
                    vars.iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            (k.clone(), v)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        let mut groups = BTreeMap::new();
        for name in root.keys().filter(|k| *k != "_meta" && *k != "all") {
            let mut names = Vec::new();
            collect_hosts(root, name, &mut names, &mut Vec::new());
            if name == "ungrouped" && names.is_empty() {
                continue;
            }
            groups.insert(name.clone(), names.iter().map(|n| host(n)).collect());
        }
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

/// Appends the hosts of `group` and of its children (depth first, each host once) to `out`.
fn collect_hosts<'a>(
    root: &'a serde_json::Map<String, Value>,
    group: &'a str,
    out: &mut Vec<String>,
    seen: &mut Vec<&'a str>,
) {
    if seen.contains(&group) {
        return;
    }
    seen.push(group);
    let Some(entry) = root.get(group) else { return };
    let list = |key: &str| {
        entry
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    };
    for h in list("hosts") {
        if !out.iter().any(|o| o == h) {
            out.push(h.to_string());
        }
    }
    for child in list("children") {
        collect_hosts(root, child, out, seen);
    }
}

/// The useful part of ansible-inventory's stderr: its lines without the generic closing warnings, at
/// most [`MESSAGE_LINES`].
fn ansible_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.contains("No inventory was parsed"))
        .collect();
    if lines.is_empty() {
        return "(nothing on stderr)".to_string();
    }
    let start = lines.len().saturating_sub(MESSAGE_LINES);
    lines[start..].join("\n")
}

/// `value` as one double-quoted INI token that Ansible's inventory parser (shlex, POSIX mode) reads back
/// as exactly `value`. Refuses what cannot be written that way: line breaks and control characters, and
/// Jinja2 delimiters (Ansible would template them).
fn ini_quote(what: &'static str, value: &str) -> Result<String, InventoryError> {
    let refuse = |why| InventoryError::Unwritable {
        what,
        value: value.escape_debug().to_string(),
        why,
    };
    if value.chars().any(char::is_control) {
        return Err(refuse("it contains a line break or control character"));
    }
    if ["{{", "{%", "{#"].iter().any(|d| value.contains(d)) {
        return Err(refuse(
            "it contains `{{`, `{%` or `{#`, which Ansible would evaluate as a template",
        ));
    }
    Ok(format!(
        "\"{}\"",
        value.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[derive(Serialize)]
struct RenderHost<'a> {
    name: &'a str,
    ip: String,
}

#[derive(Serialize)]
struct RenderGroup<'a> {
    name: &'a str,
    hosts: Vec<RenderHost<'a>>,
}

/// Renders the inventory for `hosts`: one group per app with all its hosts (`checkbox-1`, `checkbox-2` in
/// `[checkbox]`, see [`crate::fleet::group_of`]), every other host in a group named after it. Pure; the
/// caller writes it atomically.
pub fn render(
    hosts: &[Host],
    connection: &Connection,
    command: &str,
    provider: &str,
    environment: &str,
) -> Result<String, InventoryError> {
    let mut sorted: Vec<&Host> = hosts.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut groups: Vec<RenderGroup> = Vec::new();
    for h in sorted {
        let ip = h.ip.ok_or_else(|| InventoryError::NoAddress {
            host: h.name.clone(),
        })?;
        let host = RenderHost {
            name: &h.name,
            ip: ip.to_string(),
        };
        let group = crate::fleet::group_of(&h.name);
        match groups.iter_mut().find(|g| g.name == group) {
            Some(g) => g.hosts.push(host),
            None => groups.push(RenderGroup {
                name: group,
                hosts: vec![host],
            }),
        }
    }
    // Numbered hosts in numeric order (checkbox-2 before checkbox-10): Ansible's batches follow it.
    for g in &mut groups {
        g.hosts.sort_by_key(|h| fleet_order(h.name));
    }
    let mut ctx = tera::Context::new();
    ctx.insert("groups", &groups);
    ctx.insert("user", &ini_quote("ansible_user", &connection.user)?);
    let key = connection
        .private_key
        .to_str()
        .ok_or(InventoryError::Unwritable {
            what: "private key path",
            value: connection.private_key.display().to_string(),
            why: "it is not valid UTF-8",
        })?;
    ctx.insert("private_key", &ini_quote("private key path", key)?);
    ctx.insert("command", command);
    ctx.insert("provider", provider);
    ctx.insert("environment", environment);
    Ok(crate::templates::render("inventory.ini.tera", &ctx)?)
}

/// Sort key putting `app-2` before `app-10`.
fn fleet_order(name: &str) -> (String, u64) {
    match name.rsplit_once('-') {
        Some((prefix, n)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
            (prefix.to_string(), n.parse().unwrap_or(u64::MAX))
        }
        _ => (name.to_string(), 0),
    }
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

    /// Writes `text` to a file and reads it back through the real ansible-inventory.
    fn through_ansible(text: &str) -> Result<Inventory, InventoryError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.ini");
        std::fs::write(&path, text).unwrap();
        Inventory::load(&path)
    }

    #[test]
    fn rendered_inventory_reads_back_through_ansible_with_one_group_per_host_and_connection_vars() {
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
        let inv = through_ansible(&text).unwrap();
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
    fn a_fleets_hosts_render_into_one_group_per_app_in_numeric_order_plus_lb() {
        let conn = Connection {
            user: "root".into(),
            private_key: "/k".into(),
        };
        let mut hosts: Vec<Host> = (1..=11)
            .map(|i| host(&format!("checkbox-{i}"), &format!("10.0.1.{i}")))
            .collect();
        hosts.push(host("itrust", "10.0.0.1"));
        hosts.push(host("lb", "10.0.0.9"));
        let text = render(&hosts, &conn, "prod up", "local", "prod").unwrap();
        let inv = through_ansible(&text).unwrap();
        assert_eq!(
            inv.groups.keys().collect::<Vec<_>>(),
            vec!["checkbox", "itrust", "lb"]
        );
        let names: Vec<&str> = inv
            .group("checkbox")
            .unwrap()
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(names.len(), 11);
        assert_eq!(names[1], "checkbox-2", "{names:?}");
        assert_eq!(names[10], "checkbox-11");
        assert_eq!(inv.group("lb").unwrap()[0].address(), "10.0.0.9");
    }

    #[test]
    fn a_key_path_with_spaces_quotes_and_hashes_round_trips_through_ansible_inventory() {
        let key = r#"/home/a user/my keys/id "x" #1 \ end"#;
        let conn = Connection {
            user: "deploy user".into(),
            private_key: key.into(),
        };
        let text = render(
            &[host("itrust", "10.0.0.1")],
            &conn,
            "prod up",
            "local",
            "e",
        )
        .unwrap();
        let inv = through_ansible(&text).unwrap();
        let itrust = &inv.group("itrust").unwrap()[0];
        assert_eq!(itrust.vars["ansible_ssh_private_key_file"], key, "{text}");
        assert_eq!(itrust.vars["ansible_user"], "deploy user");
        assert_eq!(itrust.address(), "10.0.0.1");
    }

    #[test]
    fn a_key_path_ansible_would_template_or_split_is_refused() {
        for key in ["/k/{{ lookup('pipe','id') }}", "/k/a\nb"] {
            let conn = Connection {
                user: "root".into(),
                private_key: key.into(),
            };
            let err = render(
                &[host("itrust", "10.0.0.1")],
                &conn,
                "prod up",
                "local",
                "e",
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("private key path"), "{err}");
        }
    }

    #[test]
    fn valid_ansible_ini_with_quotes_comments_children_and_vars_resolves_as_ansible_does() {
        let inv = through_ansible(
            r#"# a comment
; another comment
[web]
w1 ansible_host="10.0.0.1" ansible_user='ops'  # inline comment
w2 ansible_host=10.0.0.2 ansible_port=2222

[db]
d1 ansible_host=10.0.0.9

[itrust:children]
web

[itrust:vars]
ansible_ssh_private_key_file="/k/my key"

[all:vars]
ansible_python_interpreter=/usr/bin/python3
"#,
        )
        .unwrap();
        let names = |g: &str| {
            inv.group(g)
                .unwrap()
                .iter()
                .map(|h| h.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("itrust"), ["w1", "w2"]);
        assert_eq!(names("web"), ["w1", "w2"]);
        assert_eq!(names("db"), ["d1"]);
        assert!(!inv.groups.contains_key("all"));
        let w1 = &inv.group("itrust").unwrap()[0];
        assert_eq!(w1.address(), "10.0.0.1");
        assert_eq!(w1.vars["ansible_user"], "ops");
        assert_eq!(w1.vars["ansible_ssh_private_key_file"], "/k/my key");
        assert_eq!(w1.vars["ansible_python_interpreter"], "/usr/bin/python3");
        let w2 = &inv.group("itrust").unwrap()[1];
        assert_eq!(w2.vars["ansible_port"], "2222");
        let d1 = &inv.group("db").unwrap()[0];
        assert!(!d1.vars.contains_key("ansible_ssh_private_key_file"));
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
        let inv = through_ansible("[web]\na ansible_host=1.2.3.4\n[web:vars]\nx=1\n").unwrap();
        let err = inv.group("itrust").unwrap_err().to_string();
        assert!(err.contains("[itrust]") && err.contains("web"), "{err}");
        assert_eq!(inv.group("web").unwrap().len(), 1);
    }

    #[test]
    fn an_inventory_ansible_cannot_parse_is_invalid_quoting_ansible() {
        let err = through_ansible("[web]\na ansible_host\n").unwrap_err();
        assert!(matches!(err, InventoryError::Invalid { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("not a valid Ansible inventory"), "{err}");
        assert!(err.contains("key=value"), "{err}");
    }

    #[test]
    fn a_missing_inventory_is_missing_without_running_ansible() {
        let err = Inventory::load(Path::new("/nonexistent/inventory.ini")).unwrap_err();
        assert!(matches!(err, InventoryError::Missing { .. }), "{err:?}");
    }
}
