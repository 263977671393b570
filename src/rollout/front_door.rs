//! The rollout's part of the fleet front door (role `front_door`, nginx on the `lb` host): the per-request
//! split between the app's stable upstream and the canary's, the `X-Backend` name of the canary host, and
//! the JSON access log the judge's samples come from. Pure: the files' text and the log's parsing; the
//! real world writes the files on the lb host and reloads nginx gracefully (old workers finish their
//! requests), so changing the weight drops no request.
//!
//! The role includes `<conf_dir>/<app>-canary/split.conf` at http level (it defines the variable the
//! server block proxies to) and `<conf_dir>/<app>-canary/map.conf` inside the `X-Backend` map; it creates
//! both with weight 0 when missing and never overwrites them, so a rollout's weight survives a deploy.

use serde::Deserialize;

use super::world::{Arm, Observed};

/// Request header marking the tool's own synthetic requests (`--load`); the access log records it.
pub const SYNTHETIC_HEADER: &str = "x-pipeline-synthetic";

/// The canary's nginx upstream name for an app.
pub fn canary_upstream(app: &str) -> String {
    format!("front_door_{app}_canary")
}

/// `split.conf`: `weight` % of the requests (chosen per request by a hash of `$request_id`) to the
/// canary at `canary` (`address:port`), the rest to the app's stable upstream. Weight 0 (or no canary)
/// sends everything to stable and leaves the canary out of the configuration.
pub fn split_conf(app: &str, canary: Option<&str>, weight: u8) -> String {
    let stable = format!("front_door_{app}");
    let var = format!("$front_door_{app}_upstream");
    let head = format!(
        "# Written by `pipeline rollout`: the canary's share of {app}'s requests ({weight} %).\n"
    );
    match canary {
        Some(addr) if weight > 0 => {
            let upstream = canary_upstream(app);
            // No passive health check: a failing canary must be seen (and judged), not skipped.
            let mut out = format!(
                "{head}upstream {upstream} {{\n    server {addr} max_fails=0;\n    keepalive 8;\n    keepalive_timeout 4s;\n}}\n\n"
            );
            if weight >= 100 {
                out.push_str(&format!(
                    "split_clients \"${{request_id}}\" {var} {{\n    * {upstream};\n}}\n"
                ));
            } else {
                out.push_str(&format!(
                    "split_clients \"${{request_id}}\" {var} {{\n    {weight}% {upstream};\n    * {stable};\n}}\n"
                ));
            }
            out
        }
        _ => format!("{head}split_clients \"${{request_id}}\" {var} {{\n    * {stable};\n}}\n"),
    }
}

/// `map.conf`: the canary's `address:port` as its host name in the `X-Backend` header, matched like the
/// role's own entries (the last address of a retried request); empty without a canary.
pub fn map_conf(canary: Option<(&str, &str)>) -> String {
    match canary {
        Some((name, addr)) => format!("\"~(^|, ){}$\" {name};\n", addr.replace('.', "\\.")),
        None => "# no canary\n".into(),
    }
}

/// One line of the front door's JSON access log (`log_format … escape=json` in the role's template).
#[derive(Debug, Deserialize)]
struct LogLine {
    msec: String,
    upstream_addr: String,
    status: String,
    request_time: String,
    upstream_response_time: String,
    bytes: String,
    #[serde(default)]
    synthetic: String,
}

/// The last of nginx's comma-separated values (a retried request lists every upstream it tried; the last
/// one answered), `None` when empty or `-`.
fn last(v: &str) -> Option<&str> {
    v.rsplit(',')
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "-")
}

/// A request of the access log; `canary` is the canary's `address:port` as nginx logs it. `None` for a
/// line that is not one of the front door's JSON lines.
pub fn parse_line(line: &str, canary: Option<&str>) -> Option<Observed> {
    let l: LogLine = serde_json::from_str(line.trim()).ok()?;
    let at: f64 = l.msec.parse().ok()?;
    let addr = last(&l.upstream_addr);
    let arm = match addr {
        None => Arm::Neither,
        Some(a) if Some(a) == canary => Arm::Canary,
        Some(_) => Arm::Stable,
    };
    let status: u16 = l.status.parse().ok()?;
    let seconds = last(&l.upstream_response_time)
        .and_then(|v| v.parse::<f64>().ok())
        .or_else(|| l.request_time.parse().ok())
        .unwrap_or(0.0);
    Some(Observed {
        at,
        arm,
        // 499: the client closed the connection before the answer.
        status: (status != 499).then_some(status),
        latency_ms: seconds * 1e3,
        bytes: l.bytes.parse().unwrap_or(0),
        synthetic: !l.synthetic.is_empty() && l.synthetic != "-",
    })
}

/// Reads the access log's new complete lines from where the last read stopped: a line still being
/// written waits for its newline, and a log that became shorter (rotated or truncated) is read again from
/// its start.
#[derive(Debug, Default)]
pub struct LogTail {
    offset: u64,
    pending: Vec<u8>,
    canary: Option<String>,
}

impl LogTail {
    /// A tail telling the canary's requests by its `address:port`.
    pub fn new(canary: Option<String>) -> Self {
        LogTail {
            canary,
            ..Default::default()
        }
    }

    /// Skips what the log holds now (those requests are not this rollout's).
    pub fn skip_existing(&mut self, path: &std::path::Path) -> std::io::Result<()> {
        self.offset = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        self.pending.clear();
        Ok(())
    }

    /// The requests of the lines completed since the last read (a missing log has none yet).
    pub fn read(&mut self, path: &std::path::Path) -> std::io::Result<Vec<Observed>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        if file.metadata()?.len() < self.offset {
            self.offset = 0;
            self.pending.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        self.offset += chunk.len() as u64;
        self.pending.extend_from_slice(&chunk);
        let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.pending.split_off(end + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        Ok(String::from_utf8_lossy(&complete)
            .lines()
            .filter_map(|l| parse_line(l, self.canary.as_deref()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_waits_for_a_line_to_end_and_starts_over_on_a_rotated_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("front_door_checkbox.json");
        let line = |status: u16| {
            format!(
                r#"{{"msec":"1.0","upstream_addr":"10.0.0.9:80","status":"{status}","request_time":"0.1","upstream_response_time":"0.1","bytes":"5","synthetic":""}}"#
            )
        };
        std::fs::write(&log, format!("{}\n", line(200))).unwrap();
        let mut tail = LogTail::new(Some("10.0.0.9:80".into()));
        tail.skip_existing(&log).unwrap();
        assert!(tail.read(&log).unwrap().is_empty(), "an old line was read");
        let half = line(500);
        let (a, b) = half.split_at(40);
        let append = |text: &str| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            f.write_all(text.as_bytes()).unwrap();
        };
        append(a);
        assert!(tail.read(&log).unwrap().is_empty(), "half a line was read");
        append(&format!("{b}\n{}\n", line(503)));
        let got: Vec<_> = tail
            .read(&log)
            .unwrap()
            .iter()
            .map(|o| (o.arm, o.status))
            .collect();
        assert_eq!(got, [(Arm::Canary, Some(500)), (Arm::Canary, Some(503))]);
        // Rotated: a new, shorter file is read from its start.
        std::fs::write(&log, format!("{}\n", line(201))).unwrap();
        let got: Vec<_> = tail.read(&log).unwrap().iter().map(|o| o.status).collect();
        assert_eq!(got, [Some(201)]);
        assert!(LogTail::new(None)
            .read(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_split_sends_the_weight_to_the_canary_and_the_rest_to_stable() {
        let five = split_conf("checkbox", Some("10.0.0.9:80"), 5);
        assert!(
            five.contains(
                "upstream front_door_checkbox_canary {\n    server 10.0.0.9:80 max_fails=0;"
            ),
            "{five}"
        );
        assert!(
            five.contains("    5% front_door_checkbox_canary;\n    * front_door_checkbox;\n"),
            "{five}"
        );
        let all = split_conf("checkbox", Some("10.0.0.9:80"), 100);
        assert!(
            all.contains("    * front_door_checkbox_canary;\n}")
                && !all.contains("* front_door_checkbox;"),
            "{all}"
        );
        for none in [
            split_conf("checkbox", Some("10.0.0.9:80"), 0),
            split_conf("checkbox", None, 25),
        ] {
            assert!(!none.contains("front_door_checkbox_canary"), "{none}");
            assert!(none.contains("    * front_door_checkbox;\n"), "{none}");
        }
        assert_eq!(
            map_conf(Some(("checkbox-canary", "10.0.0.9:80"))),
            r#""~(^|, )10\.0\.0\.9:80$" checkbox-canary;"#.to_string() + "\n"
        );
    }

    #[test]
    fn a_log_line_gives_the_arm_that_answered_last_its_status_latency_size_and_origin() {
        let canary = Some("10.0.0.9:80");
        let line = r#"{"msec":"1764590000.123","upstream_addr":"10.0.0.2:80, 10.0.0.9:80","status":"500","request_time":"0.020","upstream_response_time":"0.004, 0.012","bytes":"21","synthetic":"1"}"#;
        let o = parse_line(line, canary).unwrap();
        assert_eq!(o.arm, Arm::Canary);
        assert_eq!(o.status, Some(500));
        assert!((o.latency_ms - 12.0).abs() < 1e-9 && (o.at - 1764590000.123).abs() < 1e-6);
        assert_eq!((o.bytes, o.synthetic), (21, true));
        let stable = r#"{"msec":"1.5","upstream_addr":"10.0.0.2:80","status":"200","request_time":"0.010","upstream_response_time":"0.009","bytes":"1000","synthetic":""}"#;
        let o = parse_line(stable, canary).unwrap();
        assert_eq!(
            (o.arm, o.status, o.synthetic),
            (Arm::Stable, Some(200), false)
        );
        // No upstream (the front door answered itself) and a client that went away.
        let own = r#"{"msec":"2","upstream_addr":"","status":"502","request_time":"0.001","upstream_response_time":"","bytes":"150","synthetic":""}"#;
        let o = parse_line(own, canary).unwrap();
        assert_eq!((o.arm, o.status), (Arm::Neither, Some(502)));
        assert!((o.latency_ms - 1.0).abs() < 1e-9);
        let gone = r#"{"msec":"3","upstream_addr":"10.0.0.9:80","status":"499","request_time":"1.0","upstream_response_time":"-","bytes":"0","synthetic":""}"#;
        assert_eq!(parse_line(gone, canary).unwrap().status, None);
        assert!(parse_line("not json", canary).is_none());
        assert!(parse_line("", canary).is_none());
    }
}
