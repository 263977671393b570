//! The detached systemd-nspawn of a host: its command line, starting it, finding its processes and
//! stopping it (SIGTERM, then SIGKILL after a grace period).

use std::fs;
use std::time::{Duration, Instant};

use crate::process::Cmd;
use crate::providers::local::plan;
use crate::providers::local::state::HostRecord;
use crate::providers::local::Error;

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

#[cfg(test)]
mod tests {
    use super::*;

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
