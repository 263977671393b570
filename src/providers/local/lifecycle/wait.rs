//! `wait_ready`: waits until every host has booted and, if asked, answers SSH.

use std::time::{Duration, Instant};

use crate::providers::local::state::HostRecord;
use crate::providers::local::{system, Error, Local};
use crate::providers::{Host, WaitFor};

impl Local {
    /// The blocking body of [`crate::providers::Provider::wait_ready`].
    pub(in crate::providers::local) fn wait_blocking(
        &self,
        names: &[String],
        wait: WaitFor,
        timeout: Duration,
    ) -> Result<Vec<Host>, Error> {
        let state = self.load_state()?.unwrap_or_else(|| self.empty_state());
        let recs: Vec<&HostRecord> = names
            .iter()
            .map(|n| self.record(&state, n))
            .collect::<Result<_, _>>()?;
        let deadline = Instant::now() + timeout;
        let results: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = recs
                .iter()
                .map(|rec| s.spawn(|| self.wait_one(rec, wait, deadline)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("readiness check panicked".into()))
                })
                .collect()
        });
        let failures: Vec<String> = recs
            .iter()
            .zip(&results)
            .filter_map(|(rec, r)| {
                r.as_ref().err().map(|why| {
                    format!(
                        "  {}: {why}\n    console log: {}\n    {}",
                        rec.name,
                        rec.console_log().display(),
                        system::tail(&rec.console_log(), 5).replace('\n', "\n    ")
                    )
                })
            })
            .collect();
        if !failures.is_empty() {
            return Err(Error::NotReady {
                secs: timeout.as_secs(),
                details: failures.join("\n"),
            });
        }
        Ok(recs.into_iter().map(Self::host_view).collect())
    }

    /// Waits for one host: its container running, and for [`WaitFor::Ssh`] systemd finished booting
    /// (`running`, or `degraded` with the failed units logged) as seen over SSH.
    fn wait_one(&self, rec: &HostRecord, wait: WaitFor, deadline: Instant) -> Result<(), String> {
        let mut last: String;
        loop {
            if system::nspawn_pids(&rec.machine).is_empty() {
                return Err("its container is not running (it exited; see the console log)".into());
            }
            if wait == WaitFor::Active {
                return Ok(());
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs()
                .clamp(1, 30);
            let probe = system::ssh(
                &self.key,
                rec.ip,
                format!("ask host {} whether systemd finished booting", rec.name),
                &format!("timeout {left} systemctl is-system-running --wait"),
            )
            .run_unchecked();
            match probe {
                Ok(out) => match out.stdout.trim() {
                    "running" => return Ok(()),
                    "degraded" => {
                        let failed = system::ssh(
                            &self.key,
                            rec.ip,
                            format!("list failed units on host {}", rec.name),
                            "systemctl --failed --no-legend --plain",
                        )
                        .run_unchecked()
                        .map(|o| o.stdout.trim().replace('\n', "; "))
                        .unwrap_or_default();
                        self.ui.warn(format!(
                            "host {} booted degraded (failed units: {failed})",
                            rec.name
                        ));
                        return Ok(());
                    }
                    "" => last = format!("SSH not answering yet ({})", out.stderr.trim()),
                    other => last = format!("systemd is `{other}`"),
                },
                Err(e) => return Err(e.to_string()),
            }
            if Instant::now() >= deadline {
                return Err(last);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
