//! Per-arm host metrics on the local sandbox, read from the cgroups the sandbox owns for each container
//! instead of node_exporter (which, inside a container, reads the whole machine's `/proc`).
//!
//! CPU: `usage_usec` of the container's `cpu.stat` (cgroup v2, also present in the unified hierarchy of a
//! hybrid v1 setup), or `cpuacct.usage` (v1), per second of wall time, as a share of this machine's cores:
//! a container that keeps one of four cores busy is at 25 %. Memory: `memory.current` (v2) or
//! `memory.usage_in_bytes` (v1), as a share of the container's memory limit, or of the machine's memory
//! when it has none.
//!
//! [`CgroupScraper`] answers like a node_exporter scrape (`node_cpu_seconds_total` with modes `user` and
//! `idle` summed over cores, `node_memory_MemTotal_bytes`, `node_memory_MemAvailable_bytes`), so the
//! sampler and [`super::metrics::NodeStats`] judge both sources the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::metrics::{HttpScraper, Scraper};

/// Reads one container's cgroups.
pub struct CgroupScraper {
    /// `cgroup://<host>` → the host's cgroup directories.
    dirs: HashMap<String, Vec<PathBuf>>,
    cores: f64,
    machine_memory: f64,
}

/// The target address [`CgroupScraper`] knows `host` by (shown in the report).
pub fn target(host: &str) -> String {
    format!("cgroup://{host}")
}

fn read_number(path: &Path) -> Option<f64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `usage_usec` from a cgroup v2 `cpu.stat`.
fn usage_usec(cpu_stat: &str) -> Option<f64> {
    cpu_stat.lines().find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == "usage_usec").then(|| value.trim().parse().ok())?
    })
}

/// Seconds of CPU time the cgroup has used.
fn cpu_seconds(dirs: &[PathBuf]) -> Option<f64> {
    dirs.iter().find_map(|d| {
        if let Some(us) = std::fs::read_to_string(d.join("cpu.stat"))
            .ok()
            .and_then(|t| usage_usec(&t))
        {
            return Some(us / 1e6);
        }
        // cgroup v1 cpuacct lives in its own hierarchy next to the one recorded.
        let v1 = sibling(d, "cpuacct")?;
        read_number(&v1.join("cpuacct.usage")).map(|ns| ns / 1e9)
    })
}

/// The same cgroup path in another v1 hierarchy: `/sys/fs/cgroup/<h>/x` → `/sys/fs/cgroup/<name>/x`.
fn sibling(dir: &Path, hierarchy: &str) -> Option<PathBuf> {
    let mut parts = dir.components();
    let root: PathBuf = parts.by_ref().take(4).collect(); // / sys fs cgroup
    let _current = parts.next()?;
    Some(root.join(hierarchy).join(parts.as_path()))
}

/// (bytes in use, limit in bytes if any).
fn memory(dirs: &[PathBuf]) -> Option<(f64, Option<f64>)> {
    dirs.iter().find_map(|d| {
        if let Some(current) = read_number(&d.join("memory.current")) {
            return Some((current, read_number(&d.join("memory.max"))));
        }
        read_number(&d.join("memory.usage_in_bytes"))
            .map(|used| (used, read_number(&d.join("memory.limit_in_bytes"))))
    })
}

/// The machine's memory in bytes (`MemTotal` of /proc/meminfo).
fn machine_memory() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb * 1024.0)
        .unwrap_or(0.0)
}

/// Seconds since boot on the monotonic clock (the wall time CPU use is measured against).
fn monotonic_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

impl CgroupScraper {
    /// A scraper for `hosts`: (host name, its cgroup directories).
    pub fn new(hosts: impl IntoIterator<Item = (String, Vec<PathBuf>)>) -> Self {
        CgroupScraper {
            dirs: hosts.into_iter().map(|(h, d)| (target(&h), d)).collect(),
            cores: std::thread::available_parallelism()
                .map(|n| n.get() as f64)
                .unwrap_or(1.0),
            machine_memory: machine_memory(),
        }
    }

    /// One reading as node_exporter-style text; an error names what could not be read.
    pub fn read(&self, target: &str) -> Result<String, String> {
        let dirs = self
            .dirs
            .get(target)
            .ok_or_else(|| format!("{target}: no cgroup known for this host"))?;
        let shown = || {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let busy = cpu_seconds(dirs).ok_or_else(|| {
            format!(
                "{target}: no cpu.stat usage_usec or cpuacct.usage in {}",
                shown()
            )
        })?;
        let (used, limit) = memory(dirs).ok_or_else(|| {
            format!(
                "{target}: no memory.current or memory.usage_in_bytes in {}",
                shown()
            )
        })?;
        // An unlimited cgroup reports "max" (v2, unparsable) or a huge number (v1).
        let total = match limit {
            Some(l) if l > 0.0 && l < self.machine_memory => l,
            _ => self.machine_memory,
        };
        // All cores' time since boot, of which the cgroup used `busy` (always less: it started later).
        let all = monotonic_seconds() * self.cores;
        Ok(format!(
            "node_cpu_seconds_total{{cpu=\"all\",mode=\"user\"}} {busy}\n\
             node_cpu_seconds_total{{cpu=\"all\",mode=\"idle\"}} {}\n\
             node_memory_MemTotal_bytes {total}\n\
             node_memory_MemAvailable_bytes {}\n",
            (all - busy).max(0.0),
            (total - used).max(0.0)
        ))
    }
}

/// Where the canary's host figures come from: node_exporter over HTTP (droplets) or the sandbox's cgroups.
pub enum HostScraper {
    Http(HttpScraper),
    Cgroup(CgroupScraper),
}

impl Scraper for HostScraper {
    async fn scrape(&self, url: &str) -> Result<String, String> {
        match self {
            HostScraper::Http(s) => s.scrape(url).await,
            HostScraper::Cgroup(s) => s.read(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_usec_is_read_from_cpu_stat() {
        let text = "usage_usec 3779396363\nuser_usec 3433968587\nsystem_usec 345427775\n";
        assert_eq!(usage_usec(text), Some(3779396363.0));
        assert_eq!(usage_usec("user_usec 1\n"), None);
    }

    #[test]
    fn v1_sibling_hierarchy_keeps_the_path_below_it() {
        assert_eq!(
            sibling(Path::new("/sys/fs/cgroup/unified/pipeline/m"), "cpuacct"),
            Some(PathBuf::from("/sys/fs/cgroup/cpuacct/pipeline/m"))
        );
    }

    #[test]
    fn unknown_host_is_an_error_naming_it() {
        let s = CgroupScraper::new([]);
        assert!(s
            .read(&target("blue"))
            .unwrap_err()
            .contains("cgroup://blue"));
    }
}
