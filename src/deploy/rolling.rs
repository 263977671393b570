//! Rolling deploys behind the front door: the variables the static entry playbooks
//! (`playbooks/deploy-*.yml`) read for batches, the front door and the direct health check, and the
//! summary of a deploy that stopped (which batch, which host, which task and why, which hosts were never
//! touched). Pure; [`super::Deployment::finalize`] builds the [`Rollout`] from the run's final variables.

use serde_json::{json, Map, Value};

use crate::ansible::Failure;
use crate::apps::{App, Endpoint};
use crate::fleet::{self, Serial};
use crate::inventory::InventoryHost;

/// Attempts of the direct health check, two seconds apart.
const HEALTH_RETRIES: u32 = 30;

/// What a rolling deploy of one app needs besides the roles' variables.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub app: App,
    /// The app's hosts, in inventory order (Ansible batches them in this order).
    pub hosts: Vec<InventoryHost>,
    /// The front door host (the `lb` group's first host), if the inventory has one.
    pub lb: Option<InventoryHost>,
    pub serial: Serial,
    pub max_fail_percentage: u32,
    /// Where the app answers on its hosts (what the front door proxies to and the health check asks).
    pub endpoint: Endpoint,
}

impl Rollout {
    /// `pipeline_serial`, `pipeline_max_fail_percentage`, `pipeline_front_door_hosts` (the lb host; without
    /// a front door the app's group, where the front-door play skips its one task), `pipeline_front_door`
    /// (its `host` empty without one) and `pipeline_health`.
    pub fn vars(&self) -> Map<String, Value> {
        let spec = fleet::front_door_app(self.app);
        let key = self.app.key();
        let backends: Vec<Value> = self
            .hosts
            .iter()
            .map(|h| json!({"name": h.name, "address": h.address()}))
            .collect();
        let mut vars = Map::new();
        vars.insert("pipeline_serial".into(), json!(self.serial));
        vars.insert(
            "pipeline_max_fail_percentage".into(),
            json!(self.max_fail_percentage),
        );
        vars.insert(
            "pipeline_front_door_hosts".into(),
            json!(self.lb.as_ref().map(|h| h.name.as_str()).unwrap_or(key)),
        );
        vars.insert(
            "pipeline_front_door".into(),
            json!({
                "host": self.lb.as_ref().map(|h| h.name.clone()).unwrap_or_default(),
                "app": key,
                "listen_port": spec.port,
                "backend_port": self.endpoint.port,
                "backends": backends,
            }),
        );
        // `/iTrust2/`, not `/iTrust2`: Tomcat answers the bare context path with a redirect.
        let path = if self.endpoint.path.ends_with('/') {
            self.endpoint.path.clone()
        } else {
            format!("{}/", self.endpoint.path)
        };
        vars.insert(
            "pipeline_health".into(),
            json!({"port": self.endpoint.port, "path": path, "retries": HEALTH_RETRIES}),
        );
        vars
    }

    /// The app's URL through the front door, if there is one.
    pub fn front_door_url(&self) -> Option<String> {
        let lb = self.lb.as_ref()?;
        let door = Endpoint {
            port: fleet::front_door_app(self.app).port,
            path: self.endpoint.path.clone(),
        };
        Some(door.url(lb.address(), false))
    }

    /// Why a rolling deploy stopped, for stderr: the batch of the first failed host, the host, the task
    /// and Ansible's message, then the hosts the deploy never reached (still on the previous version).
    /// `None` when nothing failed.
    pub fn stopped_summary(&self, failures: &[Failure]) -> Option<String> {
        let names: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
        let batches = self.serial.batches(&names);
        let (index, batch) = batches
            .iter()
            .enumerate()
            .find(|(_, b)| failures.iter().any(|f| b.contains(&f.host)))?;
        let mut lines = vec![format!(
            "rolling deploy stopped at batch {} of {} ({}):",
            index + 1,
            batches.len(),
            batch.join(", ")
        )];
        for f in failures.iter().filter(|f| batch.contains(&f.host)) {
            let task = match &f.role {
                Some(r) => format!("{r} : {}", f.task),
                None => f.task.clone(),
            };
            let message = f.message.lines().next().unwrap_or("").trim();
            lines.push(format!("  {} failed at task `{task}`: {message}", f.host));
            if self.lb.is_some() {
                lines.push(format!(
                    "  {} stays out of the front door until a deploy succeeds on it",
                    f.host
                ));
            }
        }
        let untouched: Vec<String> = batches[index + 1..]
            .iter()
            .flat_map(|b| b.iter().cloned())
            .collect();
        if untouched.is_empty() {
            lines.push("  every batch was reached".to_string());
        } else {
            lines.push(format!(
                "  not touched, still serving the previous version: {}",
                untouched.join(", ")
            ));
        }
        Some(lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ansible::Status;

    fn host(name: &str, ip: &str) -> InventoryHost {
        InventoryHost {
            name: name.into(),
            vars: BTreeMap::from([("ansible_host".to_string(), ip.to_string())]),
        }
    }

    /// A one-host-at-a-time deploy of checkbox.io to `checkbox-1..=n` (at `10.0.0.1..`) behind `lb`.
    fn checkbox_behind_lb(n: u8) -> Rollout {
        Rollout {
            app: App::Checkbox,
            hosts: (1..=n)
                .map(|i| host(&format!("checkbox-{i}"), &format!("10.0.0.{i}")))
                .collect(),
            lb: Some(host("lb", "10.0.0.9")),
            serial: Serial::default(),
            max_fail_percentage: 0,
            endpoint: App::Checkbox.endpoint(&Map::new()).unwrap(),
        }
    }

    #[test]
    fn vars_name_the_front_door_backends_batches_and_health_check() {
        let r = checkbox_behind_lb(2);
        let v = r.vars();
        assert_eq!(v["pipeline_serial"], json!([1]));
        assert_eq!(v["pipeline_front_door_hosts"], json!("lb"));
        assert_eq!(
            v["pipeline_front_door"]["backends"][1],
            json!({"name": "checkbox-2", "address": "10.0.0.2"})
        );
        assert_eq!(v["pipeline_health"]["path"], "/");
        assert_eq!(r.front_door_url().as_deref(), Some("http://10.0.0.9/"));
        let alone = Rollout { lb: None, ..r };
        assert_eq!(alone.vars()["pipeline_front_door_hosts"], json!("checkbox"));
        assert_eq!(alone.vars()["pipeline_front_door"]["host"], json!(""));
        assert_eq!(alone.front_door_url(), None);
    }

    #[test]
    fn a_stopped_deploy_names_the_batch_host_task_and_the_untouched_hosts() {
        let r = checkbox_behind_lb(3);
        let failure = Failure {
            host: "checkbox-2".into(),
            role: None,
            task: "Health check on the host itself, not through the front door: checkbox.io".into(),
            status: Status::Failed,
            message: "Status code was 500 and not [200]\nmore".into(),
        };
        let text = r.stopped_summary(&[failure]).unwrap();
        assert!(
            text.starts_with("rolling deploy stopped at batch 2 of 3 (checkbox-2):"),
            "{text}"
        );
        assert!(
            text.contains("checkbox-2 failed at task `Health check"),
            "{text}"
        );
        assert!(text.contains("Status code was 500 and not [200]") && !text.contains("more"));
        assert!(
            text.contains("still serving the previous version: checkbox-3"),
            "{text}"
        );
        assert_eq!(r.stopped_summary(&[]), None);
    }
}
