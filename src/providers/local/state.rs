//! The provider's record of what it created, one JSON file per environment
//! (`<state_root>/envs/<env>/state.json`, mode 0600), written *before* each resource is created so that
//! `down` can remove everything even after a crash or a killed `up`; and the cleanup plan derived from it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything one environment owns on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvState {
    pub environment: String,
    /// The subnet its addresses come from (kept so a config change never strands a running host).
    pub subnet: String,
    /// nftables table (family `ip`) with this environment's NAT rule, once recorded.
    pub nft_table: Option<String>,
    pub hosts: BTreeMap<String, HostRecord>,
}

/// One host's resources, recorded before they are created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    pub slot: u32,
    /// The container's address (what the inventory lists).
    pub ip: Ipv4Addr,
    /// The machine-side end of the link, the container's default gateway.
    pub gateway: Ipv4Addr,
    /// nspawn machine name, also the network namespace name.
    pub machine: String,
    /// Host-side veth interface.
    pub veth: String,
    /// `<state_root>/envs/<env>/hosts/<host>`: holds `upper/`, `work/`, `root/` (the overlay mount point)
    /// and `console.log`.
    pub dir: PathBuf,
    /// Base image id (`base-<suite>-<hash>`) the overlay's lower layer is.
    pub base: String,
    /// The cgroup directories made for the container (one per hierarchy; see `system::cgroup_dirs`).
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// PID of the detached systemd-nspawn supervising the container, once started.
    pub pid: Option<u32>,
    /// Size/region from the spec, echoed back in listings.
    pub size: String,
}

impl HostRecord {
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    pub fn journal_dir(&self) -> PathBuf {
        self.root().join("var/log/journal")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read local provider state {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("local provider state {path} is corrupt ({message}); inspect it, or remove the resources it names by hand and delete it")]
    Corrupt { path: PathBuf, message: String },
    #[error("cannot write local provider state {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl EnvState {
    pub fn new(environment: &str, subnet: &str) -> Self {
        EnvState {
            environment: environment.to_string(),
            subnet: subnet.to_string(),
            nft_table: None,
            hosts: BTreeMap::new(),
        }
    }

    /// Loads `path`; `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                path: path.to_owned(),
                message: e.to_string(),
            })
    }

    /// Writes atomically with mode 0600 (creating the directory, 0700).
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let err = |source| StateError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            crate::fsutil::ensure_private_dir(dir).map_err(err)?;
        }
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        crate::fsutil::write_atomic(path, &json, 0o600).map_err(err)
    }
}

/// Slots held by any host of any environment (so a new host never takes another's address).
pub fn taken_slots<'a>(states: impl IntoIterator<Item = &'a EnvState>) -> BTreeSet<u32> {
    states
        .into_iter()
        .flat_map(|s| s.hosts.values().map(|h| h.slot))
        .collect()
}

/// One idempotent cleanup action; each is a no-op when its resource is already gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// Stop systemd-nspawn for this machine (orderly poweroff, then SIGKILL) and wait for it to exit.
    StopMachine { machine: String, pid: Option<u32> },
    /// Unmount the host's overlay root.
    Unmount(PathBuf),
    /// Remove a cgroup made for the host (and the groups systemd made inside it).
    RemoveCgroup(PathBuf),
    /// Delete the network namespace (its veth end goes with it).
    DeleteNetns(String),
    /// Delete the host-side veth if it is still there.
    DeleteLink(String),
    /// Move downloaded .deb files from the host's overlay into the shared package cache.
    HarvestPackages(PathBuf),
    /// Remove the host's directory (overlay upper/work, console log).
    RemoveDir(PathBuf),
    /// Delete the environment's nftables table.
    DeleteNftTable(String),
    /// Delete the state file itself, last.
    RemoveState(PathBuf),
}

/// Cleanup of one host, in order: processes first (they hold mounts and the namespace), then mounts,
/// then network, then files.
pub fn host_cleanup(h: &HostRecord, harvest: bool) -> Vec<Cleanup> {
    let mut steps = vec![
        Cleanup::StopMachine {
            machine: h.machine.clone(),
            pid: h.pid,
        },
        Cleanup::Unmount(h.root()),
    ];
    steps.extend(h.cgroups.iter().cloned().map(Cleanup::RemoveCgroup));
    steps.push(Cleanup::DeleteNetns(h.machine.clone()));
    steps.push(Cleanup::DeleteLink(h.veth.clone()));
    if harvest {
        steps.push(Cleanup::HarvestPackages(h.upper()));
    }
    steps.push(Cleanup::RemoveDir(h.dir.clone()));
    steps
}

/// Everything `down` does for an environment, derived from its state alone.
pub fn env_cleanup(state: &EnvState, state_file: &Path, harvest: bool) -> Vec<Cleanup> {
    let mut steps: Vec<Cleanup> = state
        .hosts
        .values()
        .flat_map(|h| host_cleanup(h, harvest))
        .collect();
    if let Some(t) = &state.nft_table {
        steps.push(Cleanup::DeleteNftTable(t.clone()));
    }
    steps.push(Cleanup::RemoveState(state_file.to_owned()));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, slot: u32) -> HostRecord {
        HostRecord {
            name: name.into(),
            slot,
            ip: Ipv4Addr::new(10, 213, 0, 2),
            gateway: Ipv4Addr::new(10, 213, 0, 1),
            machine: format!("pipeline-t-{name}"),
            veth: format!("plv{slot}"),
            dir: PathBuf::from(format!("/var/lib/pipeline/local/envs/t/hosts/{name}")),
            base: "base-bookworm-0".into(),
            cgroups: Vec::new(),
            pid: None,
            size: "local".into(),
        }
    }

    #[test]
    fn state_round_trips_through_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("envs/t/state.json");
        assert_eq!(EnvState::load(&path).unwrap(), None);
        let mut s = EnvState::new("t", "10.213.0.0/16");
        s.hosts.insert("a".into(), record("a", 3));
        s.save(&path).unwrap();
        assert_eq!(EnvState::load(&path).unwrap(), Some(s));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn corrupt_state_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = EnvState::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("corrupt") && err.contains("state.json"),
            "{err}"
        );
    }

    #[test]
    fn taken_slots_span_all_environments() {
        let mut a = EnvState::new("a", "x");
        a.hosts.insert("h".into(), record("h", 7));
        let mut b = EnvState::new("b", "x");
        b.hosts.insert("h".into(), record("h", 9));
        assert_eq!(taken_slots([&a, &b]), [7, 9].into());
    }

    #[test]
    fn host_cleanup_stops_before_unmounting_and_removes_files_last() {
        let mut h = record("web", 5);
        h.cgroups = vec!["/sys/fs/cgroup/memory/pipeline/pipeline-t-web".into()];
        let steps = host_cleanup(&h, true);
        let pos = |f: &dyn Fn(&Cleanup) -> bool| steps.iter().position(f).unwrap();
        let stop = pos(&|c| matches!(c, Cleanup::StopMachine { .. }));
        let umount = pos(&|c| matches!(c, Cleanup::Unmount(_)));
        let cg = pos(&|c| matches!(c, Cleanup::RemoveCgroup(_)));
        let netns = pos(&|c| matches!(c, Cleanup::DeleteNetns(_)));
        let harvest = pos(&|c| matches!(c, Cleanup::HarvestPackages(_)));
        let rmdir = pos(&|c| matches!(c, Cleanup::RemoveDir(_)));
        assert!(stop < umount && umount < harvest && harvest < rmdir);
        assert!(stop < cg && stop < netns);
        assert_eq!(steps[umount], Cleanup::Unmount(h.root()));
        assert!(!host_cleanup(&h, false)
            .iter()
            .any(|c| matches!(c, Cleanup::HarvestPackages(_))));
    }

    #[test]
    fn env_cleanup_covers_every_host_then_nat_then_the_state_file() {
        let mut s = EnvState::new("t", "10.213.0.0/16");
        s.hosts.insert("a".into(), record("a", 1));
        s.hosts.insert("b".into(), record("b", 2));
        s.nft_table = Some("pipeline_t".into());
        let file = PathBuf::from("/x/state.json");
        let steps = env_cleanup(&s, &file, false);
        let stops = steps
            .iter()
            .filter(|c| matches!(c, Cleanup::StopMachine { .. }))
            .count();
        assert_eq!(stops, 2);
        assert_eq!(
            steps[steps.len() - 2],
            Cleanup::DeleteNftTable("pipeline_t".into())
        );
        assert_eq!(steps.last(), Some(&Cleanup::RemoveState(file)));
    }

    #[test]
    fn env_cleanup_of_a_state_recorded_before_anything_was_made_still_removes_the_file() {
        let s = EnvState::new("t", "10.213.0.0/16");
        let file = PathBuf::from("/x/state.json");
        assert_eq!(
            env_cleanup(&s, &file, true),
            vec![Cleanup::RemoveState(file)]
        );
    }
}
