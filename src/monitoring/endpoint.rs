//! Where the monitor's dashboard answers and with which login: the first host of the inventory's
//! `[monitor]` group, on the dashboard role's `dashboard_listen_port` (80 unless the host's inventory
//! variables say otherwise), with the basic-auth password `monitor-setup` generated into
//! `<state_dir>/secrets/dashboard-password` (read only when the file is private; absent when the dashboard
//! was set up with `-e dashboard_auth=false`). Its nginx serves the page, Prometheus' read-only query API
//! (`/api/v1/query`, `/api/v1/query_range`) and the event push, so deploy events and the canary's
//! `[[canary.metric]]` queries both go through here.

use std::path::Path;

use crate::fsutil;
use crate::inventory::Inventory;
use crate::monitoring::access::{DASHBOARD_SECRET, DASHBOARD_USER};
use crate::monitoring::MONITOR_GROUP;

/// The monitor's dashboard as the tool reaches it.
#[derive(Clone, PartialEq)]
pub struct Dashboard {
    /// `http://<address>[:port]`, no trailing slash.
    pub base_url: String,
    /// (user, password) of the dashboard's basic auth, when it has one.
    pub login: Option<(String, String)>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("base_url", &self.base_url)
            .field("login", &self.login.as_ref().map(|(u, _)| (u, "***")))
            .finish()
    }
}

/// Why the dashboard could not be found; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot read the monitor's inventory: {0}")]
    Inventory(#[from] crate::inventory::InventoryError),
    #[error("{0} has no [{MONITOR_GROUP}] host; run `pipeline monitor-setup` with that inventory, or pass the inventory that has one")]
    NoMonitor(String),
    #[error(
        "the monitor host's dashboard_listen_port = `{0}` in the inventory is not a port number"
    )]
    BadPort(String),
    #[error("the dashboard password cannot be used: {0}")]
    Secret(#[from] fsutil::TrustError),
}

/// The dashboard of `inventory_path`'s monitor host, with the login from `state_dir`.
pub fn dashboard(inventory_path: &Path, state_dir: &Path) -> Result<Dashboard, EndpointError> {
    let inventory = Inventory::load(inventory_path)?;
    let host = inventory
        .groups
        .get(MONITOR_GROUP)
        .and_then(|hosts| hosts.first())
        .ok_or_else(|| EndpointError::NoMonitor(inventory_path.display().to_string()))?;
    let address = host.address();
    let address = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    let port = match host.vars.get("dashboard_listen_port") {
        None => 80,
        Some(p) => p
            .trim_matches('"')
            .parse::<u16>()
            .map_err(|_| EndpointError::BadPort(p.clone()))?,
    };
    let base_url = match port {
        80 => format!("http://{address}"),
        p => format!("http://{address}:{p}"),
    };
    let password = fsutil::read_secret(&crate::deploy::secrets::path(state_dir, DASHBOARD_SECRET))?
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    Ok(Dashboard {
        base_url,
        login: password.map(|p| (DASHBOARD_USER.to_string(), p)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_never_shows_in_debug_output() {
        let d = Dashboard {
            base_url: "http://m".into(),
            login: Some(("pipeline".into(), "s3cret".into())),
        };
        let shown = format!("{d:?}");
        assert!(
            shown.contains("pipeline") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
