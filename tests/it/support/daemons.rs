//! Daemons a loopback test starts (Prometheus, exporters, nginx), each logging to `<dir>/<name>.log`,
//! killed when the set drops; shared by `monitor_dashboard` and `rollout_scrape`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

#[derive(Default)]
pub struct Daemons(pub Vec<(String, Child)>);

impl Daemons {
    /// Starts `program args` as `name`; returns its PID.
    pub fn spawn(&mut self, name: &str, dir: &Path, program: &str, args: &[String]) -> u32 {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("create log");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program} (apt-get install {program}): {e}"));
        let pid = child.id();
        self.0.push((name.into(), child));
        pid
    }

    /// Panics with the log of any daemon that has exited.
    pub fn assert_running(&mut self, dir: &Path) {
        for (name, child) in &mut self.0 {
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
                panic!("{name} exited with {status}:\n{log}");
            }
        }
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
