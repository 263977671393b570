//! `pipeline rollout iTrust` at the command line, without hosts: from a ref or a WAR (checked and recorded
//! by its absolute path before anything is made), on a fleet of one host or of three, with the
//! promotion's batches from `[deploy] serial` and the canary's health check at iTrust's port and context
//! path (following `-e`).

use std::path::Path;

use crate::support::{output_text, pipeline};

fn dry_run(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = pipeline(dir)
        .args([
            "rollout",
            "iTrust",
            "--provider",
            "local",
            "--dry-run",
            "--json",
        ])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn what(plan: &serde_json::Value, action: &str) -> String {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in {plan:#}"))["what"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_itrust_rollout_of_a_war_on_one_host_checks_the_canary_at_its_context_path_and_promotes_that_host(
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[itrust]\nitrust ansible_host=10.0.0.2\n[lb]\nlb ansible_host=10.0.0.4\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("iTrust2.war"), "PK\u{3}\u{4}").unwrap();
    let plan = dry_run(dir.path(), &["--artifact", "iTrust2.war"]);
    let war = std::fs::canonicalize(dir.path().join("iTrust2.war")).unwrap();
    assert_eq!(plan["app"], "itrust");
    assert_eq!(plan["version"], format!("WAR {}", war.display()));
    assert_eq!(plan["canary_host"], "itrust-canary");
    assert_eq!(plan["stable_hosts"], serde_json::json!(["itrust"]));
    assert_eq!(plan["promotion_batches"], serde_json::json!([["itrust"]]));
    assert!(
        what(&plan, "check").contains("GET :8080/iTrust2/ until 2xx, up to 60 s"),
        "{plan:#}"
    );
    assert!(
        what(&plan, "deploy").contains(&format!("deploy WAR {} on itrust-canary", war.display())),
        "{plan:#}"
    );
    // `-e` moves the app, and the check with it.
    let plan = dry_run(
        dir.path(),
        &[
            "--ref",
            "v8",
            "-e",
            "itrust_port=9000",
            "-e",
            "itrust_context_path=/app",
        ],
    );
    assert!(
        plan["version"]
            .as_str()
            .unwrap()
            .starts_with("ref v8 of the app's upstream repository"),
        "{plan:#}"
    );
    assert!(what(&plan, "check").contains("GET :9000/app/"), "{plan:#}");
    assert!(!dir
        .path()
        .join(".pipeline/rollout-prod-itrust.json")
        .exists());
}

#[test]
fn an_itrust_rollout_on_three_hosts_promotes_in_the_batches_of_deploy_serial() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[itrust]\nitrust-1 ansible_host=10.0.0.2\nitrust-2 ansible_host=10.0.0.3\nitrust-3 ansible_host=10.0.0.5\n[lb]\nlb ansible_host=10.0.0.4\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        "[deploy]\nserial = [1, \"100%\"]\n",
    )
    .unwrap();
    let plan = dry_run(dir.path(), &["--ref", "v8"]);
    assert_eq!(
        plan["promotion_batches"],
        serde_json::json!([["itrust-1"], ["itrust-2", "itrust-3"]])
    );
    assert!(
        what(&plan, "promote")
            .contains("in 2 batches ([deploy] serial: itrust-1, then itrust-2 + itrust-3)"),
        "{plan:#}"
    );
    assert!(
        what(&plan, "step").contains("95 % to itrust-1, itrust-2, itrust-3"),
        "{plan:#}"
    );
}

#[test]
fn an_itrust_rollout_of_a_missing_war_or_a_bad_port_is_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[itrust]\nitrust ansible_host=10.0.0.2\n[lb]\nlb ansible_host=10.0.0.4\n",
    )
    .unwrap();
    for (args, says) in [
        (
            vec!["--artifact", "target/iTrust2-0.0.1-SNAPSHOT.war"],
            "--artifact target/iTrust2-0.0.1-SNAPSHOT.war: no such file",
        ),
        (
            vec!["--ref", "v8", "-e", "itrust_port=http"],
            "itrust_port = \"http\" is not a TCP port",
        ),
    ] {
        // Not a dry run: the refusal comes before any host or state.
        let out = pipeline(dir.path())
            .args(["rollout", "iTrust", "--provider", "local"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert!(!dir
            .path()
            .join(".pipeline/rollout-prod-itrust.json")
            .exists());
    }
}

/// The rollout of iTrust through a real front door on loopback: the role's template rendered for
/// `itrust` (stable at 127.0.0.1, the canary at 127.0.0.2, both on iTrust's port, answering at
/// `/iTrust2/`), the weight written as `split.conf`/`map.conf` with a graceful reload, a client sending
/// requests to `/iTrust2/…` through it the whole time, and the judge's samples read from the front door's
/// JSON access log. Everything but the hosts themselves: provisioning, deploy and promotion are stand-ins.
mod front_door {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use pipeline::apps::App;
    use pipeline::canary::judge::JudgeConfig;
    use pipeline::rollout::exec::{self, Ending};
    use pipeline::rollout::front_door::{map_conf, split_conf, LogTail};
    use pipeline::rollout::state::{Recorded, RolloutState, StateStore};
    use pipeline::rollout::target::{self, Target};
    use pipeline::rollout::world::{DeploySummary, Observed, RolloutWorld};

    use crate::rollout_front_door::{free_port, render_template, Nginx};

    /// The front door (the role's template for iTrust) in front of a stable and a canary nginx server.
    struct Door {
        dir: PathBuf,
        front: u16,
        nginx: Nginx,
        target: Target,
        /// Last: fields drop in order, and `nginx -s stop` (Nginx's drop) needs the directory's config.
        _tmp: tempfile::TempDir,
    }

    /// The canary answers `canary_home` at `/iTrust2/` (its health check) and `canary_pages` below it.
    fn door(canary_home: u16, canary_pages: u16) -> Door {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let (front, port) = (free_port(), free_port());
        let target = Target::resolve(
            App::Itrust,
            &serde_json::Map::from_iter([("itrust_port".to_string(), port.into())]),
        )
        .unwrap();
        let conf = dir.join("front_door");
        std::fs::create_dir_all(conf.join("itrust")).unwrap();
        std::fs::create_dir_all(conf.join("itrust-canary")).unwrap();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::write(
            conf.join("itrust/itrust.conf"),
            format!(
                "server {} max_fails=2 fail_timeout=10s;\n",
                target.backend("127.0.0.1")
            ),
        )
        .unwrap();
        std::fs::write(
            conf.join("itrust-canary/split.conf"),
            split_conf("itrust", None, 0),
        )
        .unwrap();
        std::fs::write(conf.join("itrust-canary/map.conf"), map_conf(None)).unwrap();
        let vars = serde_json::json!({
            "front_door_app": "itrust",
            "front_door_listen_port": front,
            "front_door_backend_port": port,
            "front_door_backends": [{"name": "itrust", "address": "127.0.0.1"}],
            "front_door_conf_dir": conf,
            "front_door_access_log_dir": dir.join("logs"),
            "front_door_keepalive": 8,
            "front_door_keepalive_timeout": "4s",
            "front_door_next_upstream_tries": 3,
            "front_door_connect_timeout": "2s",
            "front_door_read_timeout": "10s",
            "front_door_backend_header": "X-Backend",
        });
        render_template(&dir, &vars, &dir.join("front_door_itrust.conf"));
        // iTrust's shape: the context path redirects to itself with a slash, its start page and the
        // pages below it answer, anything else is 404.
        let app = |home: u16, pages: u16, body: &str| {
            format!(
                "location = /iTrust2 {{ return 302 /iTrust2/; }} location = /iTrust2/ {{ return {home} \"{body}\"; }} location /iTrust2/ {{ return {pages} \"{body}\"; }} location / {{ return 404; }}"
            )
        };
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                "pid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\nevents {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n    include {d}/front_door_itrust.conf;\n    server {{ listen {stable}; {a} }}\n    server {{ listen {canary}; {b} }}\n}}\n",
                d = dir.display(),
                stable = target.backend("127.0.0.1"),
                canary = target.backend("127.0.0.2"),
                a = app(200, 200, "iTrust2 stable"),
                b = app(canary_home, canary_pages, "iTrust2 canary"),
            ),
        )
        .unwrap();
        let out = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .output()
            .unwrap();
        assert!(out.status.success(), "nginx did not start: {out:?}");
        let nginx = Nginx { dir: dir.clone() };
        std::thread::sleep(Duration::from_millis(300));
        Door {
            _tmp: tmp,
            dir,
            front,
            nginx,
            target,
        }
    }

    /// GET `path` through the front door: (status, X-Backend).
    fn get(port: u16, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: lb\r\n\r\n").unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        let status = r.split_whitespace().nth(1).unwrap().parse().unwrap();
        let backend = r
            .lines()
            .find_map(|l| l.strip_prefix("X-Backend: "))
            .unwrap_or("")
            .trim()
            .to_string();
        (status, backend)
    }

    /// The real front door and the canary's real health check; the hosts' own parts stand in.
    struct Loopback<'a> {
        door: &'a Door,
        tail: LogTail,
        weights: Vec<u8>,
    }

    impl RolloutWorld for Loopback<'_> {
        fn now(&self) -> f64 {
            pipeline::rollout::state::now_s()
        }

        async fn wait(&mut self, seconds: f64) {
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        }

        async fn provision_canary(&mut self) -> anyhow::Result<()> {
            Ok(())
        }

        async fn deploy_canary(&mut self) -> anyhow::Result<DeploySummary> {
            Ok(DeploySummary {
                what: "itrust-canary".into(),
                success: true,
                text: "iTrust2.war deployed".into(),
                duration_s: 0.0,
                batches: Vec::new(),
            })
        }

        async fn check_canary(&mut self) -> anyhow::Result<()> {
            // Asked directly, as the real world asks the canary host.
            let url = self.door.target.health_url("127.0.0.2");
            target::check(
                &url,
                "itrust-canary",
                Duration::from_secs(2),
                Duration::from_millis(50),
            )
            .await?;
            Ok(())
        }

        async fn set_weight(&mut self, weight: u8) -> anyhow::Result<()> {
            let conf = self.door.dir.join("front_door/itrust-canary");
            let addr = self.door.target.backend("127.0.0.2");
            std::fs::write(
                conf.join("split.conf"),
                split_conf("itrust", Some(&addr), weight),
            )?;
            std::fs::write(
                conf.join("map.conf"),
                map_conf((weight > 0).then_some(("itrust-canary", addr.as_str()))),
            )?;
            self.door.nginx.signal("reload");
            tokio::time::sleep(Duration::from_millis(400)).await;
            self.weights.push(weight);
            Ok(())
        }

        async fn load(&mut self, _rate: Option<f64>) -> anyhow::Result<()> {
            Ok(())
        }

        async fn observe(&mut self) -> anyhow::Result<Vec<Observed>> {
            Ok(self
                .tail
                .read(&self.door.dir.join("logs/front_door_itrust.json"))?)
        }

        async fn promote(&mut self) -> anyhow::Result<DeploySummary> {
            Ok(DeploySummary {
                what: "itrust".into(),
                success: true,
                text: "iTrust2.war deployed".into(),
                duration_s: 0.0,
                batches: Vec::new(),
            })
        }

        async fn retire_canary(&mut self) -> anyhow::Result<()> {
            Ok(())
        }
    }

    /// Rolls iTrust out through `door` with a client on `/iTrust2/…`; the ending and what the client saw.
    fn roll_out(door: &Door) -> (Ending, Vec<(u16, String)>, RolloutState) {
        let state_dir = door.dir.join(".pipeline");
        let store = StateStore::new(&state_dir);
        let state = RolloutState::new(
            Recorded {
                app: "itrust".into(),
                provider: "local".into(),
                environment: "prod".into(),
                inventory: door.dir.join("inventory.ini"),
                source: None,
                git_ref: None,
                artifact: Some(door.dir.join("iTrust2.war")),
                extra_vars: Vec::new(),
                steps: vec![30, 100],
                step_time_s: 3.0,
                max_step_time_s: 6.0,
                look_every_s: 0.5,
                warmup_s: 0.0,
                load: None,
                report_dir: door.dir.join("report"),
            },
            vec!["itrust".into()],
            "itrust-canary".into(),
            "lb".into(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (flag, log, front) = (stop.clone(), seen.clone(), door.front);
        let client = std::thread::spawn(move || {
            let paths = [
                "/iTrust2/",
                "/iTrust2/patient/viewRecords",
                "/iTrust2/login",
            ];
            let mut k = 0;
            while !flag.load(Ordering::Relaxed) {
                log.lock().unwrap().push(get(front, paths[k % paths.len()]));
                k += 1;
                std::thread::sleep(Duration::from_millis(4));
            }
        });
        let mut tail = LogTail::new(Some(door.target.backend("127.0.0.2")));
        tail.skip_existing(&door.dir.join("logs/front_door_itrust.json"))
            .unwrap();
        let mut world = Loopback {
            door,
            tail,
            weights: Vec::new(),
        };
        let judge = JudgeConfig {
            min_samples: 20,
            ..JudgeConfig::default()
        };
        let ui = pipeline::ui::Ui::new(true);
        let result = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(exec::start(&store, state, &mut world, &ui, &judge))
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        client.join().unwrap();
        let end = store.load("prod", "itrust").unwrap().unwrap();
        let seen = Arc::try_unwrap(seen).unwrap().into_inner().unwrap();
        assert_eq!(world.weights.last(), Some(&0), "{:?}", world.weights);
        (result.ending, seen, end)
    }

    #[test]
    fn a_canary_whose_itrust_pages_fail_is_judged_on_the_front_doors_log_and_rolled_back() {
        // Its start page (the health check) answers; the pages behind it fail.
        let door = door(200, 500);
        let (ending, seen, end) = roll_out(&door);
        assert!(matches!(ending, Ending::RolledBack { .. }), "{ending:?}");
        assert_eq!(end.steps.len(), 1, "rolled back in the first step");
        let step = &end.steps[0];
        assert!(step.canary.real > 0 && step.stable.real > 0, "{step:?}");
        assert!(step.canary.errors > 0, "{step:?}");
        assert_eq!(step.stable.errors, 0);
        // What the client saw: only the canary's pages failed, named by its host.
        let canary: Vec<_> = seen.iter().filter(|s| s.1 == "itrust-canary").collect();
        assert!(canary.iter().any(|s| s.0 == 500), "{canary:?}");
        assert!(seen.iter().filter(|s| s.1 == "itrust").all(|s| s.0 == 200));
        assert_eq!(end.weight, 0);
        // After the rollback the front door sends every request to the stable host.
        let after: Vec<_> = (0..50)
            .map(|_| get(door.front, "/iTrust2/patient/viewRecords"))
            .collect();
        assert!(
            after.iter().all(|s| *s == (200, "itrust".to_string())),
            "{after:?}"
        );
    }

    #[test]
    fn a_canary_whose_itrust_start_page_fails_is_rolled_back_before_any_traffic() {
        let door = door(500, 200);
        let (ending, _, end) = roll_out(&door);
        let Ending::RolledBack { reason } = ending else {
            panic!("{ending:?}");
        };
        assert!(
            reason.contains("failed its health check before any traffic")
                && reason.contains(&format!(
                    "{}/iTrust2/ on itrust-canary",
                    door.target.backend("127.0.0.2")
                ))
                && reason.contains("500"),
            "{reason}"
        );
        assert!(end.steps.is_empty());
        assert_eq!(end.weight, 0);
    }

    #[test]
    fn a_good_itrust_canary_passes_its_step_on_the_front_doors_log_and_is_promoted() {
        let door = door(200, 200);
        let (ending, seen, end) = roll_out(&door);
        assert_eq!(ending, Ending::Promoted, "{:#?}", end.steps);
        assert_eq!(
            end.steps[0].verdict,
            Some(pipeline::canary::judge::Verdict::Pass)
        );
        assert!(seen.iter().all(|s| s.0 == 200), "no request failed");
        assert!(seen.iter().any(|s| s.1 == "itrust-canary"));
    }
}
