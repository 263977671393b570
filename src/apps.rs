//! The app catalogue: the apps `pipeline` deploys and monitors, each with its names and aliases, its
//! inventory group (also its role-variable prefix), its entry playbook, and where it answers. Where an app
//! answers is read from the run's final variable map (role defaults < `[deploy.vars]` < `-e`), so a printed
//! URL or a monitoring probe follows `-e itrust_port=9000`; the defaults here are the roles' defaults
//! (a unit test keeps them equal to `roles/*/defaults/main.yml`).

use serde_json::{Map, Value};

/// Port node_exporter listens on unless `node_exporter_port` says otherwise (role node_exporter).
pub const NODE_EXPORTER_PORT: u16 = 9100;
/// The role variable holding node_exporter's port.
pub const NODE_EXPORTER_PORT_VAR: &str = "node_exporter_port";

/// The apps `pipeline deploy` and `pipeline monitor-setup` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Itrust,
    Checkbox,
}

/// Where an app answers: its HTTP port and path, and the role variables that set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub port_var: &'static str,
    pub default_port: u16,
    /// `None`: the app has no path variable and answers at `default_path`.
    pub path_var: Option<&'static str>,
    pub default_path: &'static str,
}

/// Where an app answers in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    /// Always starts with `/`.
    pub path: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppError {
    #[error("{var} = {value} is not a TCP port (1-65535); set it to a number, e.g. -e {var}=8080")]
    BadPort { var: &'static str, value: String },
    #[error("{var} = {value} is not a URL path; set it to a string, e.g. -e {var}=/app")]
    BadPath { var: &'static str, value: String },
}

impl App {
    /// Every app, in the order monitoring lists them.
    pub const ALL: [App; 2] = [App::Itrust, App::Checkbox];

    /// Parses an app name: case-insensitive, with aliases (`itrust2`, `checkbox`).
    pub fn parse(s: &str) -> Result<App, String> {
        match s.to_ascii_lowercase().as_str() {
            "itrust" | "itrust2" => Ok(App::Itrust),
            "checkbox.io" | "checkbox" => Ok(App::Checkbox),
            _ => Err(format!("unknown app `{s}`; choose iTrust or checkbox.io")),
        }
    }

    /// The name people use (`iTrust`, `checkbox.io`).
    pub fn display(self) -> &'static str {
        match self {
            App::Itrust => "iTrust",
            App::Checkbox => "checkbox.io",
        }
    }

    /// The inventory group and the role-variable prefix.
    pub fn key(self) -> &'static str {
        match self {
            App::Itrust => "itrust",
            App::Checkbox => "checkbox",
        }
    }

    /// The entry playbook (a file of `playbooks/`) and the run's name.
    pub fn playbook(self) -> String {
        format!("deploy-{}.yml", self.key())
    }

    /// The run's name in progress lines and the report (`deploy-itrust`).
    pub fn run_name(self) -> String {
        format!("deploy-{}", self.key())
    }

    /// The roles the entry playbook applies, in order (the built-in `playbooks/deploy-<key>.yml`).
    pub fn roles(self) -> &'static [&'static str] {
        match self {
            App::Itrust => &["common", "mysql", "java", "itrust"],
            App::Checkbox => &["common", "nodejs", "mongodb", "checkbox"],
        }
    }

    /// The generated secrets the app needs: (role variable, name in `<state_dir>/secrets/`).
    pub fn secrets(self) -> &'static [(&'static str, &'static str)] {
        match self {
            App::Itrust => &[("itrust_db_password", "itrust-db-password")],
            App::Checkbox => &[
                ("checkbox_mongo_password", "checkbox-mongo-password"),
                ("mongodb_admin_password", "mongodb-admin-password"),
            ],
        }
    }

    /// Role variables read from the environment: (role variable, environment variable).
    pub fn env_vars(self) -> &'static [(&'static str, &'static str)] {
        match self {
            App::Itrust => &[],
            App::Checkbox => &[
                ("checkbox_mail_user", "PIPELINE_MAIL_USER"),
                ("checkbox_mail_password", "PIPELINE_MAIL_PASSWORD"),
                ("checkbox_mail_smtp", "PIPELINE_MAIL_SMTP"),
            ],
        }
    }

    /// Where the app answers by default and which variables change it.
    pub fn facts(self) -> Facts {
        match self {
            App::Itrust => Facts {
                port_var: "itrust_port",
                default_port: 8080,
                path_var: Some("itrust_context_path"),
                default_path: "/iTrust2",
            },
            App::Checkbox => Facts {
                port_var: "checkbox_http_port",
                default_port: 80,
                path_var: None,
                default_path: "/",
            },
        }
    }

    /// Where the app answers given the run's final variables (defaults for what they do not set).
    pub fn endpoint(self, vars: &Map<String, Value>) -> Result<Endpoint, AppError> {
        let facts = self.facts();
        let port = match vars.get(facts.port_var) {
            None => facts.default_port,
            Some(v) => port_of(v).ok_or_else(|| AppError::BadPort {
                var: facts.port_var,
                value: v.to_string(),
            })?,
        };
        let path = match facts
            .path_var
            .and_then(|var| vars.get(var).map(|v| (var, v)))
        {
            None => facts.default_path.to_string(),
            Some((_, Value::String(s))) => s.clone(),
            Some((var, v)) => {
                return Err(AppError::BadPath {
                    var,
                    value: v.to_string(),
                })
            }
        };
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        Ok(Endpoint { port, path })
    }
}

impl Endpoint {
    /// `http://address:port/path`; the port is left out when it is 80 unless `explicit_port`. An IPv6
    /// literal is bracketed.
    pub fn url(&self, address: &str, explicit_port: bool) -> String {
        let host = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.to_string()
        };
        if self.port == 80 && !explicit_port {
            format!("http://{host}{}", self.path)
        } else {
            format!("http://{host}:{}{}", self.port, self.path)
        }
    }
}

/// A port from a JSON number or a numeric string (TOML and `-e` give either).
pub fn port_of(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn app_names_are_case_insensitive_and_unknown_ones_are_rejected() {
        assert_eq!(App::parse("iTrust"), Ok(App::Itrust));
        assert_eq!(App::parse("ITRUST"), Ok(App::Itrust));
        assert_eq!(App::parse("checkbox.io"), Ok(App::Checkbox));
        assert_eq!(App::parse("Checkbox"), Ok(App::Checkbox));
        let err = App::parse("wordpress").unwrap_err();
        assert!(err.contains("iTrust or checkbox.io"), "{err}");
    }

    /// The value of `key:` in an embedded role's defaults/main.yml (top-level scalars only).
    fn role_default(role: &str, key: &str) -> String {
        let text = crate::ansible::roles::file(&format!("{role}/defaults/main.yml"))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| panic!("role {role} has no defaults"));
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{role}/defaults/main.yml has no {key}"))
    }

    #[test]
    fn defaults_here_are_the_roles_defaults() {
        for app in App::ALL {
            let f = app.facts();
            assert_eq!(
                role_default(app.key(), f.port_var),
                f.default_port.to_string()
            );
            if let Some(var) = f.path_var {
                assert_eq!(role_default(app.key(), var), f.default_path);
            }
        }
        assert_eq!(
            role_default("node_exporter", NODE_EXPORTER_PORT_VAR),
            NODE_EXPORTER_PORT.to_string()
        );
    }

    #[test]
    fn roles_here_are_the_roles_of_the_built_in_entry_playbook() {
        for app in App::ALL {
            let text = crate::ansible::builtin_playbook(&app.playbook()).unwrap();
            let roles: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("- role: "))
                .collect();
            assert_eq!(roles, app.roles(), "{}", app.playbook());
        }
    }

    #[test]
    fn endpoint_follows_the_final_variables() {
        let none = Map::new();
        let e = App::Itrust.endpoint(&none).unwrap();
        assert_eq!(e.url("10.0.0.1", false), "http://10.0.0.1:8080/iTrust2");
        let vars = Map::from_iter([
            ("itrust_port".to_string(), json!(9000)),
            ("itrust_context_path".to_string(), json!("app")),
        ]);
        let e = App::Itrust.endpoint(&vars).unwrap();
        assert_eq!(e.url("10.0.0.1", false), "http://10.0.0.1:9000/app");
        let c = App::Checkbox.endpoint(&none).unwrap();
        assert_eq!(c.url("10.0.0.2", false), "http://10.0.0.2/");
        assert_eq!(c.url("10.0.0.2", true), "http://10.0.0.2:80/");
        assert_eq!(c.url("fd00::2", false), "http://[fd00::2]/");
        let port_str = Map::from_iter([("checkbox_http_port".to_string(), json!("8081"))]);
        assert_eq!(App::Checkbox.endpoint(&port_str).unwrap().port, 8081);
    }

    #[test]
    fn a_port_that_is_not_a_port_is_refused_naming_the_variable() {
        for bad in [json!("http"), json!(70000), json!(0), json!(true)] {
            let vars = Map::from_iter([("itrust_port".to_string(), bad.clone())]);
            let err = App::Itrust.endpoint(&vars).unwrap_err();
            assert!(err.to_string().contains("itrust_port"), "{bad}: {err}");
        }
    }
}
