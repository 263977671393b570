//! What keeps two `prod up`s from making duplicates: an exclusive lock per environment
//! (`<state_dir>/digitalocean-<environment>.lock`, held from `up` or `down` until the provider is
//! dropped), and, after a create, every listing of the wait resolves any name carried by more than one
//! droplet (made by a run on another machine, or by a create the API acted on twice): the lowest id is
//! kept, the others are deleted, and the output says so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::api::Droplet;
use super::client::Client;
use super::Error;
use crate::lock::FileLock;
use crate::ui::Ui;

/// The lock file of one environment.
pub fn lock_path(state_dir: &std::path::Path, environment: &str) -> PathBuf {
    state_dir.join(format!("digitalocean-{environment}.lock"))
}

/// Takes the environment's lock, waiting (and saying so) while another run holds it.
pub async fn lock(state_dir: PathBuf, environment: &str, ui: &Ui) -> Result<FileLock, Error> {
    let path = lock_path(&state_dir, environment);
    let err = |path: &PathBuf| {
        let path = path.clone();
        move |source| Error::Lock { path, source }
    };
    crate::fsutil::ensure_private_dir(&state_dir).map_err(err(&path))?;
    if let Some(l) = FileLock::try_acquire(&path).map_err(err(&path))? {
        return Ok(l);
    }
    ui.info(format!(
        "another `pipeline` run is changing environment {environment} on DigitalOcean (lock {}); waiting for it to finish",
        path.display()
    ));
    let p = path.clone();
    tokio::task::spawn_blocking(move || FileLock::acquire(&p))
        .await
        .map_err(|e| Error::Lock {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(err(&path))
}

/// For each name carried by more than one droplet: the one kept (lowest id) and the ids to delete.
pub fn duplicates(droplets: &[Droplet]) -> Vec<(String, u64, Vec<u64>)> {
    let mut by_name: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for d in droplets {
        by_name.entry(&d.name).or_default().push(d.id);
    }
    by_name
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(name, mut ids)| {
            ids.sort_unstable();
            let keep = ids.remove(0);
            (name.to_string(), keep, ids)
        })
        .collect()
}

/// Deletes every duplicate in a listing of `tag` but the lowest id; returns the listing without them.
/// `deleted` holds the ids this run already deleted: DigitalOcean keeps listing a droplet for a while
/// after its DELETE was accepted, so those are left out of the listing, never deleted twice.
pub async fn resolve_duplicates(
    client: &Client,
    mut listed: Vec<Droplet>,
    tag: &str,
    deleted: &mut BTreeSet<u64>,
    ui: &Ui,
) -> Result<Vec<Droplet>, Error> {
    listed.retain(|d| !deleted.contains(&d.id));
    for (name, keep, extra) in duplicates(&listed) {
        let ids: Vec<String> = extra.iter().map(u64::to_string).collect();
        ui.warn(format!(
            "{} droplets named {name} carry tag {tag}: keeping id {keep} (the lowest), deleting {}",
            extra.len() + 1,
            ids.join(", ")
        ));
        for id in &extra {
            match client.delete_droplet(*id).await {
                Err(e) if e.status() == Some(404) => {}
                other => other?,
            }
            deleted.insert(*id);
        }
        listed.retain(|d| !extra.contains(&d.id));
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn droplet(id: u64, name: &str) -> Droplet {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "status": "new", "size_slug": "s-1vcpu-1gb",
            "networks": {}, "region": {"slug": "nyc1"}, "tags": []
        }))
        .unwrap()
    }

    #[test]
    fn the_lowest_id_of_a_duplicated_name_is_kept_whatever_the_listing_order() {
        let listed = [
            droplet(30, "checkbox"),
            droplet(12, "itrust"),
            droplet(7, "checkbox"),
            droplet(19, "checkbox"),
        ];
        assert_eq!(
            duplicates(&listed),
            vec![("checkbox".to_string(), 7, vec![19, 30])]
        );
        assert!(duplicates(&listed[..2]).is_empty());
    }
}
