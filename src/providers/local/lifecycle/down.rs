//! `remove` and `down`: tears named hosts, or everything `up` made for the environment, down in the
//! recorded order.

use std::path::Path;

use crate::providers::local::state::Cleanup;
use crate::providers::local::{cache, cgroup, image, state, system, Error, Local, STOP_GRACE};

impl Local {
    /// Runs one cleanup step (each is a no-op when its resource is already gone).
    fn apply_cleanup(step: &Cleanup, package_cache: &Path) -> Result<(), Error> {
        match step {
            Cleanup::StopMachine { machine, .. } => system::stop_machine(machine, STOP_GRACE)?,
            Cleanup::Unmount(p) => system::unmount(p)?,
            Cleanup::RemoveCgroup(p) => system::remove_cgroup(p)?,
            Cleanup::DeleteNetns(n) => system::delete_netns(n)?,
            Cleanup::DeleteLink(n) => system::delete_link(n)?,
            Cleanup::HarvestPackages(upper) => {
                system::create_dir(package_cache)?;
                cache::harvest(&upper.join("var/cache/apt/archives"), package_cache, false)?;
            }
            Cleanup::RemoveDir(p) => system::remove_dir_all(p)?,
            Cleanup::DeleteNftTable(t) => system::nft_delete(t)?,
            Cleanup::RemoveState(p) => {
                system::remove_file(p)?;
                if let Some(dir) = p.parent() {
                    system::remove_dir_all(dir)?;
                }
            }
        }
        Ok(())
    }

    /// The blocking body of [`crate::providers::Provider::remove`]: each named host torn down like `down` does, then dropped
    /// from the state (saved after each, so an interruption loses nothing).
    pub(in crate::providers::local) fn remove_blocking(
        &mut self,
        names: &[String],
    ) -> Result<Vec<String>, Error> {
        let _lock = self.lock()?;
        let Some(mut state) = self.load_state()? else {
            return Ok(Vec::new());
        };
        let package_cache = image::package_cache(&self.settings.cache_dir);
        let mut gone = Vec::new();
        for name in names {
            let Some(rec) = state.hosts.get(name).cloned() else {
                continue;
            };
            self.ui
                .info(format!("destroying host {name} ({})", rec.machine));
            for step in state::host_cleanup(&rec, self.settings.share_package_cache) {
                Self::apply_cleanup(&step, &package_cache)?;
            }
            state.hosts.remove(name);
            state.save(&self.state_file())?;
            gone.push(name.clone());
        }
        Ok(gone)
    }

    /// The blocking body of [`crate::providers::Provider::down`].
    pub(in crate::providers::local) fn down_blocking(&mut self) -> Result<Vec<String>, Error> {
        let _lock = self.lock()?;
        let Some(state) = self.load_state()? else {
            return Ok(Vec::new());
        };
        // Power all hosts off at once; the per-host steps below then find them stopped.
        let stops: Vec<Result<(), Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = state
                .hosts
                .values()
                .map(|h| {
                    s.spawn(|| {
                        system::stop_machine(&h.machine, STOP_GRACE)?;
                        // What nspawn left behind (a killed `up`): the container's own processes.
                        cgroup::end_processes(&h.name, &h.cgroups)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Unexpected("stop panicked".into())))
                })
                .collect()
        });
        stops.into_iter().collect::<Result<Vec<()>, Error>>()?;
        let package_cache = image::package_cache(&self.settings.cache_dir);
        for step in state::env_cleanup(
            &state,
            &self.state_file(),
            self.settings.share_package_cache,
        ) {
            Self::apply_cleanup(&step, &package_cache)?;
        }
        if self.load_all_states()?.is_empty() {
            system::restore_forwarding(&self.forwarding_file())?;
        }
        Ok(state.hosts.keys().cloned().collect())
    }
}
