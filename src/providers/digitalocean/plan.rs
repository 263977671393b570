//! What `up` does, decided before any change: which droplets to adopt, which create requests to send, and
//! whether DigitalOcean's catalogue has the regions, sizes and images asked for. Pure functions.

use std::collections::BTreeMap;

use super::api::{Droplet, DropletCreate, RegionInfo, SizeInfo};
use super::Error;
use crate::providers::HostSpec;

/// DigitalOcean's limit on `names` in one multi-create request.
const MAX_NAMES_PER_CREATE: usize = 10;
/// What `up` will do, decided from the specs and the droplets already carrying the tag. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpPlan {
    /// Specs whose droplet exists: adopted as they are.
    pub adopt: Vec<(HostSpec, Droplet)>,
    /// Create requests, one per distinct (region, size, image) and per ten names, each with every missing
    /// name sharing it.
    pub create: Vec<DropletCreate>,
    /// Human-readable notes (adopted droplets that differ from their spec).
    pub notes: Vec<String>,
}

/// Plans `up`: adopt what exists under `tags[1]`, create the rest with as few multi-create requests as specs allow.
pub fn plan_up(
    specs: &[HostSpec],
    existing: &[Droplet],
    tags: &[String],
    ssh_key: &str,
) -> Result<UpPlan, Error> {
    let env_tag = tags.last().cloned().unwrap_or_default();
    let environment = env_tag.strip_prefix("pipeline-").unwrap_or(&env_tag);
    let mut by_name: BTreeMap<&str, Vec<&Droplet>> = BTreeMap::new();
    for d in existing {
        by_name.entry(d.name.as_str()).or_default().push(d);
    }
    if let Some((name, ds)) = by_name.iter().find(|(_, ds)| ds.len() > 1) {
        return Err(Error::Duplicate {
            name: name.to_string(),
            tag: env_tag,
            count: ds.len(),
            ids: ds
                .iter()
                .map(|d| d.id.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut plan = UpPlan {
        adopt: Vec::new(),
        create: Vec::new(),
        notes: Vec::new(),
    };
    for spec in specs {
        match by_name.get(spec.name.as_str()) {
            Some(ds) => {
                let d = ds[0];
                let region = &d.region.slug;
                if (!d.size_slug.is_empty() && d.size_slug != spec.size)
                    || (!region.is_empty() && *region != spec.region)
                {
                    plan.notes.push(format!(
                        "droplet {} exists as {} in {} but the spec asks for {} in {}; keeping it (destroy it with `pipeline prod down --env {}` to recreate it)",
                        spec.name, d.size_slug, region, spec.size, spec.region, environment
                    ));
                }
                plan.adopt.push((spec.clone(), d.clone()));
            }
            None => {
                let group = plan.create.iter_mut().find(|c| {
                    c.region == spec.region
                        && c.size == spec.size
                        && c.image == spec.image
                        && c.names.len() < MAX_NAMES_PER_CREATE
                });
                match group {
                    Some(c) => c.names.push(spec.name.clone()),
                    None => plan.create.push(DropletCreate {
                        names: vec![spec.name.clone()],
                        region: spec.region.clone(),
                        size: spec.size.clone(),
                        image: spec.image.clone(),
                        ssh_keys: vec![ssh_key.to_string()],
                        tags: tags.to_vec(),
                    }),
                }
            }
        }
    }
    // Tagged droplets no spec asks for are reported (and pruned on request) by `provision::up`.
    Ok(plan)
}

/// Checks the create requests against DigitalOcean's catalogue: regions that exist and are available, sizes
/// that exist and are offered in the region, images that exist (`missing_images`). Returns one line per
/// problem; empty when all is well. Pure.
pub fn catalogue_problems(
    creates: &[DropletCreate],
    regions: &[RegionInfo],
    sizes: &[SizeInfo],
    missing_images: &[String],
) -> Vec<String> {
    let some = |slugs: Vec<&str>| {
        let n = slugs.len();
        let mut shown = slugs.into_iter().take(12).collect::<Vec<_>>().join(", ");
        if n > 12 {
            shown.push_str(", …");
        }
        shown
    };
    let available_regions = || {
        some(
            regions
                .iter()
                .filter(|r| r.available)
                .map(|r| r.slug.as_str())
                .collect(),
        )
    };
    let mut problems = Vec::new();
    for c in creates {
        let hosts = c.names.join(", ");
        let region = regions.iter().find(|r| r.slug == c.region);
        let size = sizes.iter().find(|s| s.slug == c.size);
        match region {
            None => problems.push(format!(
                "region `{}` (for {hosts}) does not exist; available: {}",
                c.region,
                available_regions()
            )),
            Some(r) if !r.available => problems.push(format!(
                "region `{}` (for {hosts}) is not taking new droplets; available: {}",
                c.region,
                available_regions()
            )),
            Some(_) => {}
        }
        match (size, region) {
            (None, _) => problems.push(format!(
                "size `{}` (for {hosts}) does not exist; sizes include: {}",
                c.size,
                some(
                    sizes
                        .iter()
                        .filter(|s| s.available)
                        .map(|s| s.slug.as_str())
                        .collect()
                )
            )),
            (Some(s), _) if !s.available => problems.push(format!(
                "size `{}` (for {hosts}) is not available any more",
                c.size
            )),
            (Some(_), Some(r)) if r.available && !r.sizes.contains(&c.size) => {
                problems.push(format!(
                    "size `{}` (for {hosts}) is not offered in region `{}`; there: {}",
                    c.size,
                    c.region,
                    some(r.sizes.iter().map(String::as_str).collect())
                ));
            }
            _ => {}
        }
        if missing_images.contains(&c.image) {
            problems.push(format!(
                "image `{}` (for {hosts}) does not exist; see GET /v2/images?type=distribution for slugs",
                c.image
            ));
        }
    }
    problems.dedup();
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, size: &str) -> HostSpec {
        HostSpec {
            name: name.into(),
            size: size.into(),
            image: "ubuntu-24-04-x64".into(),
            region: "nyc1".into(),
            memory_limit: None,
        }
    }

    fn droplet(id: u64, name: &str, size: &str) -> Droplet {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "status": "active", "size_slug": size, "region": {"slug": "nyc1"}
        }))
        .unwrap()
    }

    fn tags() -> Vec<String> {
        vec!["pipeline".into(), "pipeline-prod".into()]
    }

    fn prod_specs() -> Vec<HostSpec> {
        vec![
            spec("itrust", "s-1vcpu-2gb"),
            spec("checkbox", "s-1vcpu-1gb"),
            spec("monitor", "s-1vcpu-1gb"),
        ]
    }

    #[test]
    fn missing_hosts_sharing_a_spec_go_into_one_multi_create() {
        let plan = plan_up(&prod_specs(), &[], &tags(), "fp").unwrap();
        assert!(plan.adopt.is_empty());
        assert_eq!(plan.create.len(), 2);
        assert_eq!(plan.create[0].names, vec!["itrust"]);
        assert_eq!(plan.create[0].size, "s-1vcpu-2gb");
        assert_eq!(plan.create[1].names, vec!["checkbox", "monitor"]);
        assert_eq!(plan.create[1].ssh_keys, vec!["fp"]);
        assert_eq!(plan.create[1].tags, tags());
    }

    #[test]
    fn more_than_ten_hosts_of_one_spec_are_split_into_requests_of_ten() {
        let specs: Vec<HostSpec> = (0..12).map(|i| spec(&format!("h{i}"), "s")).collect();
        let plan = plan_up(&specs, &[], &tags(), "fp").unwrap();
        let sizes: Vec<usize> = plan.create.iter().map(|c| c.names.len()).collect();
        assert_eq!(sizes, vec![10, 2]);
    }

    #[test]
    fn tagged_droplets_are_adopted_not_recreated() {
        let existing = [droplet(7, "checkbox", "s-1vcpu-1gb")];
        let plan = plan_up(&prod_specs(), &existing, &tags(), "fp").unwrap();
        assert_eq!(plan.adopt.len(), 1);
        assert_eq!(plan.adopt[0].1.id, 7);
        let names: Vec<_> = plan.create.iter().flat_map(|c| c.names.clone()).collect();
        assert_eq!(names, vec!["itrust", "monitor"]);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn duplicate_names_under_the_tag_are_an_error_listing_ids() {
        let existing = [droplet(7, "itrust", "x"), droplet(9, "itrust", "x")];
        let err = plan_up(&prod_specs(), &existing, &tags(), "fp").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("2 droplets named itrust") && msg.contains("7, 9"),
            "{msg}"
        );
    }

    #[test]
    fn adopted_droplet_of_another_size_is_noted_and_stray_droplets_left_to_prune() {
        let existing = [
            droplet(7, "itrust", "s-1vcpu-1gb"),
            droplet(8, "old", "s-1vcpu-1gb"),
        ];
        let plan = plan_up(&prod_specs(), &existing, &tags(), "fp").unwrap();
        assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
        assert!(plan.notes[0].contains("itrust exists as s-1vcpu-1gb"));
        assert!(plan
            .create
            .iter()
            .all(|c| !c.names.contains(&"old".to_string())));
    }

    fn catalogue() -> (Vec<RegionInfo>, Vec<SizeInfo>) {
        let region = |slug: &str, available: bool, sizes: &[&str]| RegionInfo {
            slug: slug.into(),
            available,
            sizes: sizes.iter().map(ToString::to_string).collect(),
        };
        let size = |slug: &str| SizeInfo {
            slug: slug.into(),
            available: true,
        };
        (
            vec![
                region("nyc1", true, &["s-1vcpu-1gb", "s-1vcpu-2gb"]),
                region("sfo3", true, &["s-1vcpu-1gb"]),
                region("nyc2", false, &[]),
            ],
            vec![size("s-1vcpu-1gb"), size("s-1vcpu-2gb")],
        )
    }

    #[test]
    fn catalogue_accepts_the_defaults() {
        let (regions, sizes) = catalogue();
        let plan = plan_up(&prod_specs(), &[], &tags(), "fp").unwrap();
        assert!(catalogue_problems(&plan.create, &regions, &sizes, &[]).is_empty());
    }

    #[test]
    fn catalogue_reports_every_unknown_or_unavailable_slug_together() {
        let (regions, sizes) = catalogue();
        let mut specs = prod_specs();
        specs[0].size = "s-1vcpu-3gb".into();
        specs[1].region = "nyc2".into();
        specs[2].region = "sfo3".into();
        specs[2].size = "s-1vcpu-2gb".into();
        specs[2].image = "ubuntu-99-04-x64".into();
        let plan = plan_up(&specs, &[], &tags(), "fp").unwrap();
        let problems =
            catalogue_problems(&plan.create, &regions, &sizes, &["ubuntu-99-04-x64".into()]);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("size `s-1vcpu-3gb` (for itrust) does not exist"));
        assert!(problems[1].starts_with(
            "region `nyc2` (for checkbox) is not taking new droplets; available: nyc1, sfo3"
        ));
        assert!(problems[2].starts_with(
            "size `s-1vcpu-2gb` (for monitor) is not offered in region `sfo3`; there: s-1vcpu-1gb"
        ));
        assert!(problems[3].starts_with("image `ubuntu-99-04-x64` (for monitor) does not exist"));
    }
}
