//! Per-arm host metrics on the local sandbox, read from the cgroups the sandbox creates for each container
//! (`<hierarchy>/pipeline/<machine>`, see `providers::local`) instead of node_exporter (which, inside a
//! container, reads the whole machine's `/proc`).
//!
//! CPU: `usage_usec` of the container's `cpu.stat` (cgroup v2, or the unified hierarchy of a hybrid v1
//! machine, which has it without any controller enabled), or `cpuacct.usage` of the v1 cpuacct hierarchy,
//! per second of wall time, as a share of this machine's cores: a container that keeps one of two cores
//! busy is at 50 %. Memory: `memory.current` (v2) or `memory.usage_in_bytes` of the v1 memory hierarchy
//! (both count the container's page cache too), as a share of the container's memory limit, or of the
//! machine's memory when it has none. A host started by an older `pipeline` has no memory-hierarchy group
//! of its own; then its memory is the resident set (`VmRSS`) summed over the processes in its CPU group.
//!
//! [`discover`] finds these files below a cgroup root (`/sys/fs/cgroup`, a fake tree in tests) anew at
//! every reading. [`CgroupScraper`] answers like a node_exporter scrape (`node_cpu_seconds_total` with
//! modes `user` and `idle` summed over cores, `node_memory_MemTotal_bytes`,
//! `node_memory_MemAvailable_bytes`), so the sampler and [`super::metrics::NodeStats`] judge both sources
//! the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::metrics::{HttpScraper, Scraper};

/// The machine's cgroup root.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Where one container's CPU time is read.
#[derive(Debug, Clone, PartialEq)]
pub enum CpuSource {
    /// A `cpu.stat` with `usage_usec` (v2 or the unified hierarchy).
    CpuStat(PathBuf),
    /// A v1 `cpuacct.usage` (nanoseconds).
    CpuacctUsage(PathBuf),
}

/// Where one container's memory use is read.
#[derive(Debug, Clone, PartialEq)]
pub enum MemorySource {
    /// `memory.current` (v2) with its `memory.max` next to it.
    Current(PathBuf),
    /// v1 `memory.usage_in_bytes` with its `memory.limit_in_bytes` next to it.
    UsageInBytes(PathBuf),
    /// No memory group of its own: the `VmRSS` of every process in this group and the groups below it.
    ProcessRss(PathBuf),
}

/// The files [`discover`] found for one container.
#[derive(Debug, Clone, PartialEq)]
pub struct HostCgroups {
    pub cpu: CpuSource,
    pub memory: MemorySource,
}

/// Finds `machine`'s CPU and memory files below the cgroup `root`: the v2 group `pipeline/<machine>`, or
/// on a hybrid/v1 machine `unified/…` (or `cpuacct/…`, `cpu,cpuacct/…`) for CPU and `memory/…` for memory.
/// The error lists every place looked at.
pub fn discover(root: &Path, machine: &str) -> Result<HostCgroups, String> {
    let group = Path::new("pipeline").join(machine);
    let in_hierarchy = |h: &str| {
        if h.is_empty() {
            root.join(&group)
        } else {
            root.join(h).join(&group)
        }
    };
    let cpu_candidates = [
        ("", "cpu.stat"),
        ("unified", "cpu.stat"),
        ("cpuacct", "cpuacct.usage"),
        ("cpu,cpuacct", "cpuacct.usage"),
    ];
    let cpu = cpu_candidates.iter().find_map(|(h, file)| {
        let path = in_hierarchy(h).join(file);
        match *file {
            "cpu.stat" => std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| usage_usec(&t))
                .map(|_| CpuSource::CpuStat(path)),
            _ => read_number(&path).map(|_| CpuSource::CpuacctUsage(path)),
        }
    });
    let Some(cpu) = cpu else {
        return Err(format!(
            "no CPU accounting for {machine}: none of {} exists (is the host running?)",
            cpu_candidates
                .iter()
                .map(|(h, f)| in_hierarchy(h).join(f).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let memory = if read_number(&in_hierarchy("").join("memory.current")).is_some() {
        MemorySource::Current(in_hierarchy("").join("memory.current"))
    } else if read_number(&in_hierarchy("memory").join("memory.usage_in_bytes")).is_some() {
        MemorySource::UsageInBytes(in_hierarchy("memory").join("memory.usage_in_bytes"))
    } else {
        let dir = match &cpu {
            CpuSource::CpuStat(p) | CpuSource::CpuacctUsage(p) => p.parent().unwrap_or(root),
        };
        MemorySource::ProcessRss(dir.to_path_buf())
    };
    Ok(HostCgroups { cpu, memory })
}

/// Reads one container's cgroups.
pub struct CgroupScraper {
    root: PathBuf,
    /// `cgroup://<host>` → the host's machine name.
    machines: HashMap<String, String>,
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
fn cpu_seconds(source: &CpuSource) -> Option<f64> {
    match source {
        CpuSource::CpuStat(p) => std::fs::read_to_string(p)
            .ok()
            .and_then(|t| usage_usec(&t))
            .map(|us| us / 1e6),
        CpuSource::CpuacctUsage(p) => read_number(p).map(|ns| ns / 1e9),
    }
}

/// `VmRSS` of a process in bytes.
fn rss_bytes(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    kb.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .ok()
        .map(|kb| kb * 1024.0)
}

/// `dir` and every group below it.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        if let Ok(rd) = std::fs::read_dir(&dirs[i]) {
            dirs.extend(
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        i += 1;
    }
    dirs
}

/// (bytes in use, limit in bytes if any).
fn memory(source: &MemorySource) -> Option<(f64, Option<f64>)> {
    let next_to = |p: &Path, name: &str| p.parent().and_then(|d| read_number(&d.join(name)));
    match source {
        MemorySource::Current(p) => read_number(p).map(|used| (used, next_to(p, "memory.max"))),
        MemorySource::UsageInBytes(p) => {
            read_number(p).map(|used| (used, next_to(p, "memory.limit_in_bytes")))
        }
        MemorySource::ProcessRss(dir) => {
            let pids: Vec<String> = tree(dir)
                .iter()
                .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
                .flat_map(|t| t.split_whitespace().map(String::from).collect::<Vec<_>>())
                .collect();
            if pids.is_empty() {
                return None;
            }
            Some((pids.iter().filter_map(|p| rss_bytes(p)).sum(), None))
        }
    }
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
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

impl CgroupScraper {
    /// A scraper for `hosts` (host name, its container's machine name) below the cgroup `root`.
    pub fn new(root: &Path, hosts: impl IntoIterator<Item = (String, String)>) -> Self {
        CgroupScraper {
            root: root.to_path_buf(),
            machines: hosts.into_iter().map(|(h, m)| (target(&h), m)).collect(),
            cores: std::thread::available_parallelism()
                .map(|n| n.get() as f64)
                .unwrap_or(1.0),
            machine_memory: machine_memory(),
        }
    }

    /// One reading as node_exporter-style text; an error names what could not be read.
    pub fn read(&self, target: &str) -> Result<String, String> {
        let machine = self
            .machines
            .get(target)
            .ok_or_else(|| format!("{target}: no cgroup known for this host"))?;
        let found = discover(&self.root, machine).map_err(|e| format!("{target}: {e}"))?;
        let busy = cpu_seconds(&found.cpu)
            .ok_or_else(|| format!("{target}: cannot read the CPU time in {:?}", found.cpu))?;
        let (used, limit) = memory(&found.memory)
            .ok_or_else(|| format!("{target}: cannot read the memory use in {:?}", found.memory))?;
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

    /// Writes `files` (path below `root`, contents) into a fake cgroup tree.
    fn tree_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    const M: &str = "pipeline-e-blue";

    #[test]
    fn hybrid_v1_host_cpu_comes_from_the_unified_hierarchy_and_memory_from_the_memory_one() {
        // What this machine has: cpu/cpuacct at the v1 root (shared), unified and memory per container.
        let t = tree_with(&[
            ("cpuacct/cpuacct.usage", "999999999999"),
            (
                "unified/pipeline/pipeline-e-blue/cpu.stat",
                "usage_usec 2500000\nuser_usec 2000000\n",
            ),
            (
                "memory/pipeline/pipeline-e-blue/memory.usage_in_bytes",
                "104857600\n",
            ),
            (
                "memory/pipeline/pipeline-e-blue/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "memory/pipeline/pipeline-e-green/memory.usage_in_bytes",
                "1\n",
            ),
        ]);
        let found = discover(t.path(), M).unwrap();
        let group = |h: &str| t.path().join(h).join("pipeline").join(M);
        assert_eq!(
            found.cpu,
            CpuSource::CpuStat(group("unified").join("cpu.stat"))
        );
        assert_eq!(
            found.memory,
            MemorySource::UsageInBytes(group("memory").join("memory.usage_in_bytes"))
        );
        assert_eq!(cpu_seconds(&found.cpu), Some(2.5));
        // v1's "no limit" is a huge number, passed on for the caller to ignore.
        assert_eq!(
            memory(&found.memory),
            Some((104857600.0, Some(9223372036854771712.0)))
        );
    }

    #[test]
    fn pure_v2_host_reads_one_group_with_its_memory_limit() {
        let t = tree_with(&[
            ("cgroup.controllers", "cpu memory\n"),
            ("pipeline/pipeline-e-blue/cpu.stat", "usage_usec 7\n"),
            ("pipeline/pipeline-e-blue/memory.current", "4096\n"),
            ("pipeline/pipeline-e-blue/memory.max", "max\n"),
        ]);
        let found = discover(t.path(), M).unwrap();
        let group = t.path().join("pipeline").join(M);
        assert_eq!(found.cpu, CpuSource::CpuStat(group.join("cpu.stat")));
        assert_eq!(
            found.memory,
            MemorySource::Current(group.join("memory.current"))
        );
        // "max" means no limit.
        assert_eq!(memory(&found.memory), Some((4096.0, None)));
    }

    #[test]
    fn plain_v1_host_without_a_unified_hierarchy_reads_cpuacct_usage() {
        let t = tree_with(&[
            (
                "cpu,cpuacct/pipeline/pipeline-e-blue/cpuacct.usage",
                "3000000000\n",
            ),
            (
                "memory/pipeline/pipeline-e-blue/memory.usage_in_bytes",
                "10\n",
            ),
        ]);
        let found = discover(t.path(), M).unwrap();
        assert_eq!(cpu_seconds(&found.cpu), Some(3.0));
    }

    #[test]
    fn a_host_without_its_own_memory_group_is_measured_by_its_processes_resident_memory() {
        // Our own process stands in for the container's.
        let me = std::process::id().to_string();
        let t = tree_with(&[
            (
                "unified/pipeline/pipeline-e-blue/cpu.stat",
                "usage_usec 1\n",
            ),
            (
                "unified/pipeline/pipeline-e-blue/payload/system.slice/x.service/cgroup.procs",
                &me,
            ),
        ]);
        let found = discover(t.path(), M).unwrap();
        let group = t.path().join("unified/pipeline").join(M);
        assert_eq!(found.memory, MemorySource::ProcessRss(group));
        let (used, limit) = memory(&found.memory).unwrap();
        assert!(used > 1e6, "our own RSS is more than 1 MB: {used}");
        assert_eq!(limit, None);
    }

    #[test]
    fn a_host_without_cgroups_is_an_error_listing_where_it_looked() {
        let t = tree_with(&[(
            "unified/pipeline/pipeline-e-green/cpu.stat",
            "usage_usec 1\n",
        )]);
        let err = discover(t.path(), M).unwrap_err();
        assert!(
            err.contains("unified/pipeline/pipeline-e-blue/cpu.stat"),
            "{err}"
        );
        assert!(
            err.contains("cpuacct/pipeline/pipeline-e-blue/cpuacct.usage"),
            "{err}"
        );
    }

    #[test]
    fn a_reading_is_node_exporter_text_the_sampler_parses() {
        let t = tree_with(&[
            (
                "unified/pipeline/pipeline-e-blue/cpu.stat",
                "usage_usec 2000000\n",
            ),
            (
                "memory/pipeline/pipeline-e-blue/memory.usage_in_bytes",
                "1048576\n",
            ),
            (
                "memory/pipeline/pipeline-e-blue/memory.limit_in_bytes",
                "4194304\n",
            ),
        ]);
        let s = CgroupScraper::new(t.path(), [("blue".to_string(), M.to_string())]);
        let stats =
            super::super::metrics::NodeStats::from_text(&s.read(&target("blue")).unwrap()).unwrap();
        // 1 MiB of a 4 MiB limit; the 2 s of CPU time counted as busy.
        assert_eq!(stats.mem_total_bytes, 4194304.0);
        assert_eq!(stats.mem_available_bytes, 3145728.0);
        assert!(
            stats.cpu_total_seconds - stats.cpu_idle_seconds > 1.99,
            "{stats:?}"
        );
    }

    #[test]
    fn unknown_host_is_an_error_naming_it() {
        let s = CgroupScraper::new(Path::new(CGROUP_ROOT), []);
        assert!(s
            .read(&target("blue"))
            .unwrap_err()
            .contains("cgroup://blue"));
    }
}
