//! Machine-level operations of the local provider, each small and idempotent: prerequisites, locks,
//! overlay mounts, network namespaces and veths, nftables NAT, ip_forward, memory cgroups, and starting,
//! finding and stopping the detached systemd-nspawn of a host. Every child process goes through
//! [`Cmd`]; files go through the helpers here so errors say which path failed.

use std::fs;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::plan::{self, Route, Subnet};
use super::state::HostRecord;
use super::Error;
use crate::process::Cmd;

/// Tools the provider runs, with the Debian package that has each.
pub const TOOLS: &[(&str, &str)] = &[
    ("systemd-nspawn", "systemd-container"),
    ("debootstrap", "debootstrap"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("mount", "mount"),
    ("setsid", "util-linux"),
];

/// Everything missing for the provider to work on this machine, named all at once.
pub fn missing_prerequisites() -> Vec<String> {
    let missing_tools: Vec<&str> = TOOLS
        .iter()
        .map(|(tool, _)| *tool)
        .filter(|tool| which::which(tool).is_err())
        .collect();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    describe_missing(cfg!(target_os = "linux"), root, &missing_tools)
}

/// One line per missing prerequisite (not Linux, not root, tools with the `apt-get install` line).
pub fn describe_missing(linux: bool, root: bool, missing_tools: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    if !linux {
        missing.push("Linux (systemd-nspawn containers exist only there)".to_string());
    }
    if !root {
        missing.push("root (run as root, e.g. with sudo)".to_string());
    }
    if !missing_tools.is_empty() {
        let mut packages: Vec<&str> = Vec::new();
        for (tool, package) in TOOLS {
            if missing_tools.contains(tool) && !packages.contains(package) {
                packages.push(package);
            }
        }
        missing.push(format!(
            "{} (install with: apt-get install -y {})",
            missing_tools.join(", "),
            packages.join(" ")
        ));
    }
    missing
}

/// An exclusive `flock` on a file, released when dropped (the shared [`crate::lock::FileLock`]).
pub struct Lock {
    _lock: crate::lock::FileLock,
}

impl Lock {
    pub fn acquire(path: &Path) -> Result<Lock, Error> {
        crate::lock::FileLock::acquire(path)
            .map(|l| Lock { _lock: l })
            .map_err(|e| Error::io(format!("lock {}", path.display()), e))
    }
}

pub fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("create directory {}", dir.display()), e))
}

pub fn remove_dir_all(dir: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

pub fn remove_file(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// Writes `bytes` atomically with `mode`.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    crate::fsutil::write_atomic(path, bytes, mode)
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

pub fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("set permissions of {}", path.display()), e))
}

/// The machine's IPv4 routes in all tables.
pub fn routes() -> Result<Vec<Route>, Error> {
    let out = Cmd::new("list the machine's routes", "ip")
        .args(["-j", "-4", "route", "show", "table", "all"])
        .run()?;
    plan::parse_routes(&out.stdout).map_err(Error::Unexpected)
}

/// Whether `path` is a mount point (per /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> Result<bool, Error> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    let want = path.to_string_lossy();
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mount(m) == want))
}

/// Decodes the octal escapes (`\040` for a space) mountinfo uses.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn mount_overlay(lower: &Path, h: &HostRecord) -> Result<(), Error> {
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        h.upper().display(),
        h.work().display()
    );
    Cmd::new(
        format!("mount the overlay root of host {}", h.name),
        "mount",
    )
    .args(["-t", "overlay", "overlay", "-o", &opts])
    .arg(h.root())
    .run()?;
    Ok(())
}

pub fn unmount(path: &Path) -> Result<(), Error> {
    if !is_mounted(path)? {
        return Ok(());
    }
    Cmd::new(format!("unmount {}", path.display()), "umount")
        .arg(path)
        .run()?;
    Ok(())
}

pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

pub fn delete_netns(name: &str) -> Result<(), Error> {
    if netns_exists(name) {
        Cmd::new(format!("delete network namespace {name}"), "ip")
            .args(["netns", "delete", name])
            .run()?;
    }
    Ok(())
}

pub fn delete_link(name: &str) -> Result<(), Error> {
    if !link_exists(name) {
        return Ok(());
    }
    // Deleting the namespace removes its veth pair asynchronously: the link may vanish under us.
    match Cmd::new(format!("delete network interface {name}"), "ip")
        .args(["link", "delete", name])
        .run()
    {
        Err(_) if !link_exists(name) => Ok(()),
        other => other.map(|_| ()).map_err(Error::from),
    }
}

/// Makes the host's network namespace and veth pair from scratch: `<veth>` on the machine with the
/// gateway address, `host0` inside with the host's address and a default route through the gateway.
pub fn create_network(h: &HostRecord) -> Result<(), Error> {
    delete_netns(&h.machine)?;
    delete_link(&h.veth)?;
    let ip = |action: &str, args: &[&str]| -> Result<(), Error> {
        Cmd::new(format!("{action} for host {}", h.name), "ip")
            .args(args)
            .run()?;
        Ok(())
    };
    let gw = format!("{}/30", h.gateway);
    let addr = format!("{}/30", h.ip);
    let ns = h.machine.as_str();
    ip("create the network namespace", &["netns", "add", ns])?;
    ip(
        "create the veth pair",
        &[
            "link", "add", &h.veth, "type", "veth", "peer", "name", "host0", "netns", ns,
        ],
    )?;
    ip(
        "address the machine end",
        &["addr", "add", &gw, "dev", &h.veth],
    )?;
    ip("bring up the machine end", &["link", "set", &h.veth, "up"])?;
    ip(
        "address the host end",
        &["-n", ns, "addr", "add", &addr, "dev", "host0"],
    )?;
    ip(
        "bring up the host end",
        &["-n", ns, "link", "set", "host0", "up"],
    )?;
    ip("bring up loopback", &["-n", ns, "link", "set", "lo", "up"])?;
    ip(
        "add the default route",
        &[
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &h.gateway.to_string(),
        ],
    )?;
    Ok(())
}

/// The nftables script that (re)defines an environment's table: masquerade traffic from its hosts to
/// anything outside the sandbox subnet (traffic between hosts keeps its source address).
pub fn nft_script(table: &str, subnet: &Subnet, ips: &[Ipv4Addr]) -> String {
    let set = ips
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let rule = if ips.is_empty() {
        String::new()
    } else {
        format!("    ip saddr {{ {set} }} ip daddr != {subnet} masquerade\n")
    };
    format!(
        "table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{rule}  }}\n}}\n"
    )
}

pub fn nft_apply(script: &str, table: &str) -> Result<(), Error> {
    Cmd::new(format!("load nftables table {table}"), "nft")
        .args(["-f", "-"])
        .stdin_bytes(script)
        .run()?;
    Ok(())
}

pub fn nft_table_exists(table: &str) -> Result<bool, Error> {
    Ok(Cmd::new("list nftables tables", "nft")
        .args(["list", "tables", "ip"])
        .run()?
        .stdout
        .lines()
        .any(|l| l.trim() == format!("table ip {table}")))
}

pub fn nft_delete(table: &str) -> Result<(), Error> {
    if nft_table_exists(table)? {
        Cmd::new(format!("delete nftables table {table}"), "nft")
            .args(["delete", "table", "ip", table])
            .run()?;
    }
    Ok(())
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Turns on IPv4 forwarding, first saving the previous value in `saved` (once) so the last `down`
/// can put it back.
pub fn enable_forwarding(saved: &Path) -> Result<(), Error> {
    let now = fs::read_to_string(IP_FORWARD).map_err(|e| Error::io("read ip_forward", e))?;
    if !saved.exists() {
        write_file(saved, now.trim().as_bytes(), 0o600)?;
    }
    if now.trim() != "1" {
        fs::write(IP_FORWARD, "1").map_err(|e| Error::io("enable net.ipv4.ip_forward", e))?;
    }
    Ok(())
}

/// Restores the ip_forward value saved by [`enable_forwarding`] and forgets it.
pub fn restore_forwarding(saved: &Path) -> Result<(), Error> {
    let Ok(value) = fs::read_to_string(saved) else {
        return Ok(());
    };
    fs::write(IP_FORWARD, value.trim()).map_err(|e| Error::io("restore net.ipv4.ip_forward", e))?;
    remove_file(saved)
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroups a host's container runs in, one per hierarchy systemd uses, plus the v1 memory hierarchy
/// (and, without a unified hierarchy, the v1 cpuacct one) whether or not the host has a memory limit, so
/// the container's own memory and CPU use can be read (see `canary::cgroup`): `<hierarchy>/pipeline/<machine>`.
/// Each container needs its own: nspawn puts the container into `payload/` below its *current* cgroup, so
/// containers started from the same cgroup would share every unit's cgroup with each other.
pub fn cgroup_dirs(machine: &str) -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        return vec![root.join("pipeline").join(machine)];
    }
    let mut dirs: Vec<PathBuf> = ["systemd", "unified"]
        .iter()
        .map(|h| root.join(h))
        .filter(|h| h.join("cgroup.procs").exists())
        .map(|h| h.join("pipeline").join(machine))
        .collect();
    let unified = root.join("unified/cgroup.procs").exists();
    for (hierarchy, file, wanted) in [
        ("memory", "memory.usage_in_bytes", true),
        ("cpuacct", "cpuacct.usage", !unified),
    ] {
        if wanted && root.join(hierarchy).join(file).exists() {
            dirs.push(root.join(hierarchy).join("pipeline").join(machine));
        }
    }
    dirs
}

/// Whether `dir` (from [`cgroup_dirs`]) can carry a memory limit.
pub fn has_memory_controller(dir: &Path) -> bool {
    let root = Path::new(CGROUP_ROOT);
    dir.starts_with(root.join("memory")) || root.join("cgroup.controllers").exists()
}

/// Creates the cgroups; with `memory_limit`, sets it (and no swap beyond it, where the kernel allows)
/// on those that have the memory controller.
pub fn create_cgroups(dirs: &[PathBuf], memory_limit: Option<u64>) -> Result<(), Error> {
    let v2 = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
    for dir in dirs {
        let parent = dir.parent().expect("cgroup dir has a parent");
        create_dir(parent)?;
        if v2 && memory_limit.is_some() {
            // Let the root and our parent group hand the memory controller down.
            let _ = fs::write(
                Path::new(CGROUP_ROOT).join("cgroup.subtree_control"),
                "+memory",
            );
            let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory");
        }
        create_dir(dir)?;
        let Some(bytes) = memory_limit.filter(|_| has_memory_controller(dir)) else {
            continue;
        };
        let (limit, swap, swap_value) = if v2 {
            ("memory.max", "memory.swap.max", "0".to_string())
        } else {
            (
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                bytes.to_string(),
            )
        };
        fs::write(dir.join(limit), bytes.to_string())
            .map_err(|e| Error::io(format!("set the memory limit in {}", dir.display()), e))?;
        let _ = fs::write(dir.join(swap), swap_value);
    }
    Ok(())
}

/// Removes a cgroup directory and the groups systemd made inside it (deepest first), after ending any
/// process still in them (see [`super::cgroup::end_processes`]).
pub fn remove_cgroup(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    let host = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    super::cgroup::end_processes(host.as_deref().unwrap_or("?"), &[dir.to_path_buf()])?;
    let dirs = super::cgroup::tree(dir);
    for d in dirs.iter().rev() {
        match fs::remove_dir(d) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(Error::io(format!("remove cgroup {}", d.display()), e))
            }
            _ => {}
        }
    }
    // The shared `pipeline` parent goes with the last host (it is busy while others use it).
    if let Some(parent) = dir.parent() {
        let _ = fs::remove_dir(parent);
    }
    Ok(())
}

/// PIDs of systemd-nspawn processes running `machine` (found by command line, so a PID reused by
/// another program is never signalled).
pub fn nspawn_pids(machine: &str) -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| plan::is_nspawn_of(&c, machine))
        })
        .collect()
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions; the PID was just checked to be our nspawn.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Stops a host: SIGTERM to systemd-nspawn (it powers the container off cleanly), and after `grace`
/// SIGKILL to nspawn and the container's init (which takes every process in the container with it).
pub fn stop_machine(machine: &str, grace: Duration) -> Result<(), Error> {
    let pids = nspawn_pids(machine);
    if pids.is_empty() {
        return Ok(());
    }
    let inits: Vec<u32> = pids.iter().flat_map(|p| children(*p)).collect();
    for p in &pids {
        signal(*p, libc::SIGTERM);
    }
    let gone = |deadline: Instant| {
        while Instant::now() < deadline {
            if !pids.iter().chain(inits.iter()).any(|p| alive(*p)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    if gone(Instant::now() + grace) {
        return Ok(());
    }
    for p in inits.iter().chain(pids.iter()) {
        signal(*p, libc::SIGKILL);
    }
    if gone(Instant::now() + Duration::from_secs(10)) {
        Ok(())
    } else {
        Err(Error::Unexpected(format!(
            "container {machine} (systemd-nspawn PIDs {pids:?}) did not exit after SIGKILL"
        )))
    }
}

/// The systemd-nspawn command line that boots a host.
pub fn nspawn_command(h: &HostRecord) -> Vec<String> {
    vec![
        "systemd-nspawn".into(),
        "--quiet".into(),
        format!("--directory={}", h.root().display()),
        "--boot".into(),
        "--register=no".into(),
        "--keep-unit".into(),
        format!("--network-namespace-path=/run/netns/{}", h.machine),
        "-M".into(),
        h.machine.clone(),
        format!("--hostname={}", h.name),
        "--resolv-conf=off".into(),
        "--link-journal=no".into(),
        "--console=read-only".into(),
        // Plain text in the console log (systemd colours its boot messages otherwise).
        "--setenv=SYSTEMD_COLORS=0".into(),
    ]
}

/// Starts systemd-nspawn for a host as a detached session leader (it outlives `pipeline`), console
/// output appended to the host's console log, inside the host's cgroups. Returns its PID.
pub fn start_machine(h: &HostRecord) -> Result<u32, Error> {
    let log = h.console_log();
    let cmd = Cmd::new(format!("start the container of host {}", h.name), "sh")
        .args([
            "-c",
            r#"log=$1; shift
for cg in $PIPELINE_CGROUPS; do echo $$ > "$cg/cgroup.procs" || exit 1; done
setsid "$@" </dev/null >>"$log" 2>&1 &
echo $!"#,
            "sh",
        ])
        .arg(&log)
        .args(nspawn_command(h));
    let cgroups: Vec<String> = h.cgroups.iter().map(|c| c.display().to_string()).collect();
    let out = cmd.env("PIPELINE_CGROUPS", cgroups.join(" ")).run()?;
    let pid: u32 = out.stdout.trim().parse().map_err(|_| {
        Error::Unexpected(format!(
            "starting host {} printed `{}` instead of a PID",
            h.name,
            out.stdout.trim()
        ))
    })?;
    Ok(pid)
}

/// The last `n` lines of a log file (empty when unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Ssh options for the provider's own probes: fresh hosts, so no known_hosts bookkeeping.
pub fn ssh(key: &Path, ip: Ipv4Addr, action: String, remote: &str) -> Cmd {
    Cmd::new(action, "ssh")
        .install_hint("; install it with: apt-get install openssh-client")
        .arg("-i")
        .arg(key)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=3",
        ])
        .arg(format!("root@{ip}"))
        .arg(remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_prerequisites_are_named_together_with_the_packages_to_install() {
        let all = describe_missing(
            false,
            false,
            &["systemd-nspawn", "nft", "ssh", "ssh-keygen"],
        );
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(
            all[0].contains("Linux") && all[1].contains("root"),
            "{all:?}"
        );
        assert!(
            all[2].starts_with("systemd-nspawn, nft, ssh, ssh-keygen "),
            "{all:?}"
        );
        assert!(
            all[2].ends_with("apt-get install -y systemd-container nftables openssh-client)"),
            "{all:?}"
        );
        assert!(describe_missing(true, true, &[]).is_empty());
    }

    #[test]
    fn nft_script_replaces_the_table_and_masquerades_only_outbound_traffic() {
        let subnet = Subnet::parse("10.213.0.0/16").unwrap();
        let s = nft_script(
            "pipeline_e2e",
            &subnet,
            &["10.213.0.2".parse().unwrap(), "10.213.0.6".parse().unwrap()],
        );
        assert!(s.starts_with("table ip pipeline_e2e\ndelete table ip pipeline_e2e\n"));
        assert!(
            s.contains("ip saddr { 10.213.0.2, 10.213.0.6 } ip daddr != 10.213.0.0/16 masquerade")
        );
        assert!(!nft_script("t", &subnet, &[]).contains("masquerade"));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mount(r"/a\040b/root"), "/a b/root");
        assert_eq!(unescape_mount("/plain"), "/plain");
        assert_eq!(unescape_mount(r"/end\04"), r"/end\04");
    }

    #[test]
    fn nspawn_command_boots_into_the_host_namespace_without_registering() {
        let h = HostRecord {
            name: "web".into(),
            slot: 1,
            ip: "10.213.0.6".parse().unwrap(),
            gateway: "10.213.0.5".parse().unwrap(),
            machine: "pipeline-t-web".into(),
            veth: "plv1".into(),
            dir: "/s/web".into(),
            base: "b".into(),
            cgroups: Vec::new(),
            pid: None,
            size: "local".into(),
        };
        let argv = nspawn_command(&h);
        for want in [
            "--boot",
            "--register=no",
            "--keep-unit",
            "--directory=/s/web/root",
            "--network-namespace-path=/run/netns/pipeline-t-web",
            "--hostname=web",
        ] {
            assert!(argv.iter().any(|a| a == want), "{want} missing in {argv:?}");
        }
        let joined: Vec<u8> = argv.join("\0").into_bytes();
        assert!(plan::is_nspawn_of(&joined, "pipeline-t-web"));
    }
}
