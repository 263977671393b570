//! `pipeline rollout` on DigitalOcean against the fake API on loopback (tests/it/support/fake_do.rs): the
//! rollout's executor runs with the real world's provider part (`rollout::canary_host`: the canary
//! droplet made, adopted and destroyed through the API) and a stand-in for the parts that need Ansible on
//! the droplets (deploy, weight, access log), which cannot be reached here. The environment is made by
//! the real binary's `prod up` first.

use std::path::Path;
use std::sync::Once;

use pipeline::canary::judge::JudgeConfig;
use pipeline::inventory::InventoryHost;
use pipeline::rollout::canary_host::CanaryHost;
use pipeline::rollout::exec::{self, Ending};
use pipeline::rollout::state::{Finished, Phase, RolloutState, StateStore};
use pipeline::rollout::world::{Arm, DeploySummary, Observed, RolloutWorld};
use pipeline::settings::{Config, Global};
use serde_json::{json, Value};

use crate::support::fake_do::{FakeDo, Fault};
use crate::support::{Work, FINGERPRINT, TOKEN};

/// The fleet: three checkbox hosts behind the front door, sized and placed apart from the defaults so the
/// canary's create shows it is made like them.
const FLEET: &str = "[prod.hosts.checkbox]\ncount = 3\nsize = \"s-2vcpu-2gb\"\nregion = \"sfo3\"\n";

/// The provider reads the token from the environment only; every test here sets the same one (the
/// binary's runs get theirs from `Work::run`, with a cleared environment).
fn token() {
    static SET: Once = Once::new();
    SET.call_once(|| std::env::set_var("NCSU_DOTOKEN", TOKEN));
}

/// pipeline.toml for the fake at `url`: fast polls and retries, the fleet, and `extra`.
fn config(work: &Work, url: &str, extra: &str) -> String {
    format!(
        "{FLEET}{extra}\n[digitalocean]\napi_url = \"{url}\"\nssh_key = \"{}\"\npoll_interval = \"10ms\"\nretry_base_delay = \"10ms\"\n",
        work.key.display()
    )
}

/// A fake API with the environment `prod` made by `pipeline prod up` (checkbox-1..3, itrust, monitor,
/// lb), and the in-process settings the rollout runs with.
fn environment(extra: &str) -> (FakeDo, Work, Global) {
    token();
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    std::fs::write(
        work.path().join("pipeline.toml"),
        config(&work, &fake.url, ""),
    )
    .unwrap();
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();
    let global = Global {
        config: Config::parse(
            &config(
                &work,
                &fake.url,
                &format!("[prod]\nwait = \"active\"\n{extra}"),
            ),
            work.path().join("pipeline.toml"),
        )
        .unwrap(),
        state_dir: work.path().join(".pipeline"),
        ui: pipeline::ui::Ui::new(true),
    };
    (fake, work, global)
}

/// A rollout on DigitalOcean over three stable hosts, with steps of 10 s extended up to 30 s.
fn state(dir: &Path) -> RolloutState {
    let mut state = crate::support::rollout::checkbox_rollout(
        dir.join("report"),
        &["checkbox-1", "checkbox-2", "checkbox-3"],
    );
    let s = &mut state.settings;
    s.provider = "digitalocean".into();
    s.inventory = dir.join("inventory.ini");
    (s.step_time_s, s.max_step_time_s, s.look_every_s) = (10.0, 30.0, 2.5);
    state
}

/// Starts a rollout of [`state`] that stops with an error; the error with its causes.
async fn start_failing(store: &StateStore, work: &Work, global: &Global) -> String {
    let mut world = World::new(&state(work.path()), global);
    let e = exec::start(store, state(work.path()), &mut world, &global.ui, &judge())
        .await
        .unwrap_err();
    format!("{e:#}")
}

/// The runtime a test's rollout runs on (the fake API has its own, started and stopped outside it).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn judge() -> JudgeConfig {
    JudgeConfig {
        min_samples: 10,
        ..JudgeConfig::default()
    }
}

/// A pseudo-random number in [0, 1) (splitmix64): reproducible traffic.
fn unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// The real canary host on the fake API; virtual time and a front door splitting generated requests by
/// the weight, for the parts that need Ansible on the droplets.
struct World<'a> {
    host: CanaryHost<'a>,
    canary: Option<InventoryHost>,
    /// The canary's requests answer 500.
    broken: bool,
    /// The canary's deploy cannot run (`Err`, as when Ansible cannot reach the droplet).
    deploy_error: bool,
    clock: f64,
    weight: u8,
    seq: u64,
    log: Vec<Observed>,
    /// Weights given, in order.
    weights: Vec<u8>,
}

impl<'a> World<'a> {
    fn new(state: &RolloutState, global: &'a Global) -> Self {
        let host = CanaryHost::new(state, global).unwrap();
        let canary = host.known();
        World {
            host,
            canary,
            broken: false,
            deploy_error: false,
            clock: 1_000_000.0,
            weight: 0,
            seq: 0,
            log: Vec::new(),
            weights: Vec::new(),
        }
    }
}

impl RolloutWorld for World<'_> {
    fn now(&self) -> f64 {
        self.clock
    }

    async fn wait(&mut self, seconds: f64) {
        let n = (40.0 * seconds).round() as usize;
        for i in 0..n {
            self.seq += 1;
            let k = self.seq;
            let canary = self.canary.is_some() && unit(k * 7 + 1) * 100.0 < f64::from(self.weight);
            let broken = canary && self.broken;
            self.log.push(Observed {
                at: self.clock + seconds * (i as f64 + 0.5) / n as f64,
                arm: if canary { Arm::Canary } else { Arm::Stable },
                status: Some(if broken { 500 } else { 200 }),
                latency_ms: if broken {
                    2.0
                } else {
                    20.0 + 10.0 * unit(k * 7 + 2) + 5.0 * unit(k * 7 + 3)
                },
                bytes: if broken {
                    21
                } else {
                    1000 + (unit(k * 7 + 4) * 50.0) as u64
                },
                synthetic: false,
            });
        }
        self.clock += seconds;
    }

    async fn provision_canary(&mut self) -> anyhow::Result<()> {
        self.canary = Some(self.host.provision().await?);
        Ok(())
    }

    async fn deploy_canary(&mut self) -> anyhow::Result<DeploySummary> {
        let canary = self.canary.as_ref().expect("deploy after provision");
        anyhow::ensure!(
            !self.deploy_error,
            "ansible-playbook could not reach {} here",
            canary.name
        );
        Ok(DeploySummary {
            what: canary.name.clone(),
            success: true,
            text: "v2 deployed".into(),
            duration_s: 1.0,
            batches: Vec::new(),
        })
    }

    async fn check_canary(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    async fn set_weight(&mut self, weight: u8) -> anyhow::Result<()> {
        self.weight = weight;
        self.weights.push(weight);
        Ok(())
    }

    async fn load(&mut self, _rate: Option<f64>) -> anyhow::Result<()> {
        Ok(())
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observed>> {
        Ok(std::mem::take(&mut self.log))
    }

    async fn promote(&mut self) -> anyhow::Result<DeploySummary> {
        Ok(DeploySummary {
            what: "checkbox-1, checkbox-2, checkbox-3".into(),
            success: true,
            text: "v2 deployed".into(),
            duration_s: 3.0,
            batches: Vec::new(),
        })
    }

    async fn retire_canary(&mut self) -> anyhow::Result<()> {
        self.host.retire().await?;
        self.canary = None;
        Ok(())
    }
}

fn canary_creates(fake: &FakeDo) -> Vec<Value> {
    fake.creates()
        .into_iter()
        .filter(|c| c["names"] == json!(["checkbox-canary"]))
        .collect()
}

fn deletes(fake: &FakeDo) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| {
            let query: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}?{}", r.path, query.join("&"))
        })
        .collect()
}

/// The droplets `digitalocean-prod.json` records, by name.
fn recorded_droplets(global: &Global) -> Vec<String> {
    let text = std::fs::read_to_string(global.state_dir.join("digitalocean-prod.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["droplets"].as_object().unwrap().keys().cloned().collect()
}

const FLEET_DROPLETS: [&str; 6] = [
    "checkbox-1",
    "checkbox-2",
    "checkbox-3",
    "itrust",
    "lb",
    "monitor",
];

#[test]
fn the_canary_droplet_is_made_like_the_apps_droplets_tagged_and_destroyed_by_id_after_a_fail() {
    let (fake, work, global) = environment("");
    runtime().block_on(async {
        let store = StateStore::new(&global.state_dir);
        let state = state(work.path());
        let mut world = World::new(&state, &global);
        world.broken = true;
        let result = exec::start(&store, state, &mut world, &global.ui, &judge())
            .await
            .unwrap();
        assert!(
            matches!(result.ending, Ending::RolledBack { .. }),
            "{:?}",
            result.ending
        );
        assert_eq!(world.weights, [5, 0], "rolled back in the first step");

        // One create, sized, placed and tagged like checkbox-1..3.
        assert_eq!(
            canary_creates(&fake),
            [
                json!({"names": ["checkbox-canary"], "region": "sfo3", "size": "s-2vcpu-2gb",
                "image": "ubuntu-24-04-x64", "ssh_keys": [FINGERPRINT],
                "tags": ["pipeline", "pipeline-prod"]})
            ]
        );
        // Destroyed by its id, never by tag; the fleet untouched.
        let canary_id = fake
            .requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path.clone())
            .next()
            .expect("a DELETE");
        assert!(
            canary_id.starts_with("/v2/droplets/") && canary_id.len() > "/v2/droplets/".len(),
            "{canary_id}"
        );
        assert_eq!(deletes(&fake), [format!("{canary_id}?")]);
        assert_eq!(fake.droplet_names(), FLEET_DROPLETS);
        assert_eq!(recorded_droplets(&global), FLEET_DROPLETS);
        assert!(
            !world.host.inventory.exists(),
            "the canary's inventory left"
        );
        let end = store.load("prod", "checkbox").unwrap().unwrap();
        assert_eq!(
            end.phase,
            Phase::Done {
                outcome: Finished::RolledBack
            }
        );
        assert!(!end.canary_exists && end.weight == 0);
    });
}

#[test]
fn the_canary_droplet_is_made_under_the_environments_lock_and_prod_up_prune_leaves_it_alone() {
    let (fake, work, global) = environment("");
    runtime().block_on(async {
        let creates_before = fake.creates().len();
        let held = pipeline::lock::FileLock::try_acquire(
            &pipeline::providers::digitalocean::guard::lock_path(&global.state_dir, "prod"),
        )
        .unwrap()
        .expect("the lock is free");
        let state = state(work.path());
        let host = CanaryHost::new(&state, &global).unwrap();
        let release = async {
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            let waited = fake.requests().len();
            drop(held);
            waited
        };
        let requests_before = fake.requests().len();
        let (made, waited) = tokio::join!(host.provision(), release);
        assert_eq!(
            waited, requests_before,
            "no request while another run held the lock"
        );
        let made = made.unwrap();
        assert_eq!(made.name, "checkbox-canary");
        assert!(made.address().starts_with("127.0.10."), "{made:?}");
        assert_eq!(fake.creates().len(), creates_before + 1);
        // The environment's record keeps the fleet and adds the canary.
        let mut all: Vec<&str> = FLEET_DROPLETS.to_vec();
        all.insert(3, "checkbox-canary");
        assert_eq!(recorded_droplets(&global), all);
        // `prod up --prune` leaves it to the rollout: it is no host beyond the configuration.
        let run = work.run(&fake.url, &["prod", "up", "--prune", "--wait", "active"]);
        run.assert_ok();
        assert!(!run.stderr.contains("checkbox-canary"), "{}", run.stderr);
        assert_eq!(fake.ids("checkbox-canary").len(), 1);
        assert!(fake.requests().iter().all(|r| r.method != "DELETE"));
    });
}

#[test]
fn a_resumed_rollout_adopts_the_canary_droplet_an_interrupted_one_made_then_promotes_and_retires_it(
) {
    // Droplets never turn active here, and the wait gives up after a second.
    let (fake, work, global) = environment("timeout = \"1s\"\n");
    runtime().block_on(async {
        fake.set_lifecycle(1_000_000, 1);
        let store = StateStore::new(&global.state_dir);
        let message = start_failing(&store, &work, &global).await;
        assert!(
            message.contains("the rollout of checkbox stopped while provisioning the canary host")
                && message.contains("checkbox-canary")
                && message.contains("pipeline rollout resume checkbox"),
            "{message}"
        );
        assert_eq!(fake.ids("checkbox-canary").len(), 1);
        let stopped = store.load("prod", "checkbox").unwrap().unwrap();
        assert_eq!(stopped.phase, Phase::Provision);
        assert!(stopped.canary_exists && stopped.last_error.is_some());

        // The droplet comes up; a new process resumes.
        fake.set_lifecycle(2, 1);
        let global = Global {
            config: Config::parse(
                &config(&work, &fake.url, "[prod]\nwait = \"active\"\n"),
                "pipeline.toml".into(),
            )
            .unwrap(),
            ..global
        };
        let mut world = World::new(&stopped, &global);
        let result = exec::resume(&store, stopped, &mut world, &global.ui, &judge())
            .await
            .unwrap();
        assert_eq!(result.ending, Ending::Promoted);
        assert_eq!(
            canary_creates(&fake).len(),
            1,
            "the resumed rollout adopted the droplet"
        );
        assert_eq!(deletes(&fake).len(), 1, "{:?}", deletes(&fake));
        assert!(fake.ids("checkbox-canary").is_empty());
        assert_eq!(fake.droplet_names(), FLEET_DROPLETS);
        assert_eq!(world.weights, [5, 25, 50, 100, 0]);
    });
}

#[test]
fn an_abort_destroys_the_canary_droplet_and_a_failed_delete_is_reported_and_finished_by_a_second_abort(
) {
    let (fake, work, global) = environment("");
    runtime().block_on(async {
        let store = StateStore::new(&global.state_dir);
        let mut world = World::new(&state(work.path()), &global);
        world.deploy_error = true;
        let e = exec::start(&store, state(work.path()), &mut world, &global.ui, &judge())
            .await
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("could not reach checkbox-canary"),
            "{e:#}"
        );
        let [id] = fake.ids("checkbox-canary")[..] else {
            panic!("one canary droplet: {:?}", fake.droplet_names());
        };
        let stopped = store.load("prod", "checkbox").unwrap().unwrap();
        assert_eq!(stopped.phase, Phase::Deploy);

        // DigitalOcean fails every DELETE of it while the client retries (4 tries).
        let path = format!("/v2/droplets/{id}");
        fake.outage("DELETE", &path, 0, 4, Fault::Html500);
        let mut world = World::new(&stopped, &global);
        let e = exec::abort(&store, stopped, &mut world, &global.ui, &judge())
            .await
            .unwrap_err();
        let message = format!("{e:#}");
        assert!(
            message
                .contains("failed to destroy checkbox-canary in environment prod (digitalocean)")
                && message.contains(&format!("DELETE {path} with 500"))
                && message.contains("pipeline rollout abort checkbox"),
            "{message}"
        );
        assert!(!message.contains(TOKEN));
        assert_eq!(fake.ids("checkbox-canary"), [id], "still there");
        let stopped = store.load("prod", "checkbox").unwrap().unwrap();
        assert_eq!(stopped.phase, Phase::Abort);
        assert!(
            stopped.canary_exists,
            "the state knows the canary may exist"
        );

        // The API answers again: a second abort finishes, by id.
        let mut world = World::new(&stopped, &global);
        let result = exec::abort(&store, stopped, &mut world, &global.ui, &judge())
            .await
            .unwrap();
        assert_eq!(result.ending, Ending::Aborted);
        assert!(fake.ids("checkbox-canary").is_empty());
        assert!(deletes(&fake).iter().all(|d| d == &format!("{path}?")));
        let end = store.load("prod", "checkbox").unwrap().unwrap();
        assert!(!end.canary_exists && end.weight == 0);
        assert_eq!(fake.droplet_names(), FLEET_DROPLETS);
    });
}

#[test]
fn a_rate_limited_create_is_reported_with_its_status_and_the_abort_has_nothing_to_destroy() {
    let (fake, work, global) = environment("");
    runtime().block_on(async {
        let store = StateStore::new(&global.state_dir);
        // 429 on every create, longer than the client keeps retrying.
        fake.outage(
            "POST",
            "/v2/droplets",
            0,
            20,
            Fault::RateLimit { retry_after: 0 },
        );
        let message = start_failing(&store, &work, &global).await;
        assert!(
            message.contains("failed to bring up checkbox-canary (digitalocean, environment prod)")
                && message.contains("POST /v2/droplets with 429")
                && message.contains("while provisioning the canary host"),
            "{message}"
        );
        assert!(!message.contains(TOKEN));
        assert!(fake.ids("checkbox-canary").is_empty());

        // Aborted: nothing to destroy, nothing deleted.
        let stopped = store.load("prod", "checkbox").unwrap().unwrap();
        let mut world = World::new(&stopped, &global);
        let result = exec::abort(&store, stopped, &mut world, &global.ui, &judge())
            .await
            .unwrap();
        assert_eq!(result.ending, Ending::Aborted);
        assert!(deletes(&fake).is_empty(), "{:?}", deletes(&fake));
    });
}

#[test]
fn a_create_digitalocean_acted_on_but_answered_500_makes_no_second_canary_droplet() {
    let (fake, work, global) = environment("");
    runtime().block_on(async {
        fake.inject("POST", "/v2/droplets", Fault::CreateThen500);
        let store = StateStore::new(&global.state_dir);
        let s = state(work.path());
        let mut world = World::new(&s, &global);
        world.broken = true;
        let result = exec::start(&store, s, &mut world, &global.ui, &judge())
            .await
            .unwrap();
        assert!(matches!(result.ending, Ending::RolledBack { .. }));
        assert_eq!(canary_creates(&fake).len(), 1, "sent once");
        assert_eq!(deletes(&fake).len(), 1);
        assert_eq!(fake.droplet_names(), FLEET_DROPLETS);
    });
}
