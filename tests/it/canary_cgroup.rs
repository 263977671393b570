//! The sandbox's per-arm sampler on real cgroups made here (needs root): one cgroup holds a process that
//! burns a core, the other a sleeping one; sampled like a canary's arms, the busy one shows its core's
//! share of the machine (checked against the process's own CPU time) and the idle one next to nothing,
//! each with its own memory figure (a process moved in keeps its pages charged where they were, so small).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use pipeline::canary::cgroup::{target, CgroupScraper, HostScraper};
use pipeline::canary::metrics::sample_hosts;

/// A cgroup per hierarchy the sandbox uses, removed (after its process is killed) when dropped.
struct TestCgroup {
    /// The machine name the scraper knows it by (`<hierarchy>/pipeline/<machine>`, as the sandbox's).
    machine: String,
    dirs: Vec<PathBuf>,
    child: Option<Child>,
}

fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    ["unified", "memory", "cpuacct"]
        .iter()
        .map(|h| root.join(h))
        .filter(|h| h.join("cgroup.procs").exists())
        .collect()
}

impl TestCgroup {
    fn new(name: &str, script: &str) -> TestCgroup {
        let machine = format!("pipeline-test-{}-{name}", std::process::id());
        let dirs: Vec<PathBuf> = hierarchies()
            .into_iter()
            .map(|h| h.join("pipeline").join(&machine))
            .collect();
        for d in &dirs {
            std::fs::create_dir_all(d)
                .unwrap_or_else(|e| panic!("create {} (this test needs root): {e}", d.display()));
        }
        let child = Command::new("sh").args(["-c", script]).spawn().unwrap();
        for d in &dirs {
            std::fs::write(d.join("cgroup.procs"), child.id().to_string())
                .unwrap_or_else(|e| panic!("move the child into {}: {e}", d.display()));
        }
        TestCgroup {
            machine,
            dirs,
            child: Some(child),
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        std::thread::sleep(Duration::from_millis(200));
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_sampler_tells_a_cpu_burning_arm_from_an_idle_one() {
    let busy = TestCgroup::new("busy", "while :; do :; done");
    let idle = TestCgroup::new("idle", "sleep 60");
    let scraper = HostScraper::Cgroup(CgroupScraper::new(
        Path::new("/sys/fs/cgroup"),
        [
            ("green".to_string(), busy.machine.clone()),
            ("blue".to_string(), idle.machine.clone()),
        ],
    ));
    let targets = vec![
        ("blue".to_string(), target("blue")),
        ("green".to_string(), target("green")),
    ];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let pid = busy.child.as_ref().unwrap().id();
    let ticks = || -> f64 {
        // utime + stime of the burning process, in clock ticks (USER_HZ = 100).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()
    };
    let (t0, w0) = (ticks(), std::time::Instant::now());
    let stop = async {
        tokio::time::sleep(Duration::from_millis(5500)).await;
        stop_tx.send(true).unwrap();
    };
    let (series, ()) = tokio::join!(
        sample_hosts(&scraper, &targets, Duration::from_secs(1), stop_rx),
        stop
    );

    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    let mean = |i: usize| {
        let s = &series[i].samples;
        assert!(s.len() >= 3, "{}: {:?}", series[i].host, series[i]);
        s.iter().map(|x| x.cpu_percent).sum::<f64>() / s.len() as f64
    };
    // What the burning process itself used, as a share of the machine (the machine may be shared, so
    // the loop gets at most one core and often less).
    let own = (ticks() - t0) / 100.0 / (w0.elapsed().as_secs_f64() * cores) * 100.0;
    let (blue, green) = (mean(0), mean(1));
    eprintln!(
        "cpu_percent: idle arm {blue:.1} %, busy arm {green:.1} %, the busy process's own use {own:.1} % ({cores} cores)"
    );
    assert!(
        (green - own).abs() <= 0.35 * own + 1.0,
        "busy arm {green} % against its process's own {own} %"
    );
    assert!(
        green > 2.0 && green > 10.0 * blue,
        "busy arm {green} %, idle arm {blue} %"
    );
    assert!(blue < 1.0, "idle arm {blue} %");
    for s in &series {
        for x in &s.samples {
            assert!(
                (0.0..50.0).contains(&x.memory_percent),
                "{}: memory {} %",
                s.host,
                x.memory_percent
            );
        }
    }
}
