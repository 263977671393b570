//! What a rollout will do, computed from its settings and the inventory's hosts alone: the actions in
//! order (canary host, deploy, check, each step with its weight and times, promotion, retirement) and
//! what happens on each verdict. `pipeline rollout --dry-run` prints it; the executor runs these actions.

use serde::Serialize;

use crate::canary::judge::{num, JudgeConfig};
use crate::fleet::Serial;

use super::target::Target;

use super::state::Recorded;

/// One action of a rollout, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    /// `provision`, `deploy`, `check`, `scrape`, `step`, `promote`, `unscrape`, `retire`.
    pub action: &'static str,
    /// The canary's share (steps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    pub what: String,
}

/// A rollout, before anything is touched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub app: String,
    pub version: String,
    pub provider: String,
    pub environment: String,
    pub inventory: String,
    pub stable_hosts: Vec<String>,
    pub canary_host: String,
    pub front_door: String,
    pub steps: Vec<u8>,
    pub step_time_s: f64,
    pub max_step_time_s: f64,
    pub look_every_s: f64,
    /// The first step's warm-up before its judged window.
    pub warmup_s: f64,
    pub load: Option<f64>,
    pub judge: JudgeConfig,
    pub actions: Vec<PlannedAction>,
    /// The promotion's batches (`[deploy] serial` over the stable hosts), in order.
    pub promotion_batches: Vec<Vec<String>>,
    pub on_fail: String,
    pub on_inconclusive: String,
    pub state_file: String,
    pub report_dir: String,
}

/// The canary host's name for an app (`checkbox-canary`).
pub fn canary_host(app: &str) -> String {
    crate::fleet::canary_host(app)
}

/// What is rolled out, in words.
pub fn version(s: &Recorded) -> String {
    match (&s.artifact, &s.git_ref) {
        (Some(war), _) => format!("WAR {}", war.display()),
        (None, Some(r)) => format!(
            "ref {r} of {}",
            s.source
                .as_deref()
                .unwrap_or("the app's upstream repository")
        ),
        (None, None) => "the default ref".into(),
    }
}

/// The plan (pure); `serial` is `[deploy] serial`, the promotion's batches; `target` where the app
/// answers on the canary host (its health check).
pub fn plan(
    s: &Recorded,
    stable_hosts: &[String],
    front_door: &str,
    judge: &JudgeConfig,
    state_file: &str,
    serial: &Serial,
    target: &Target,
) -> Plan {
    let canary = canary_host(&s.app);
    let stable = stable_hosts.join(", ");
    let mut actions = vec![
        PlannedAction {
            action: "provision",
            weight: None,
            what: format!(
                "create {canary} ({}, environment {}), like {stable}",
                s.provider, s.environment
            ),
        },
        PlannedAction {
            action: "deploy",
            weight: None,
            what: format!(
                "deploy {} on {canary} with the app's roles and variables",
                version(s)
            ),
        },
        PlannedAction {
            action: "check",
            weight: None,
            what: format!(
                "check {canary} directly (GET :{}{} until 2xx, up to {} s), before it sees traffic",
                target.health_port,
                target.health_path,
                target.health_timeout().as_secs()
            ),
        },
    ];
    for (k, w) in s.steps.iter().enumerate() {
        if *w == 100 {
            actions.push(PlannedAction {
                action: "step",
                weight: Some(100),
                what: format!(
                    "step {}/{}: {front_door} sends every request to {canary}; not judged (no stable requests are left to compare with), on to the promotion",
                    k + 1,
                    s.steps.len()
                ),
            });
            continue;
        }
        actions.push(PlannedAction {
            action: "step",
            weight: Some(*w),
            what: format!(
                "step {}/{}: {front_door} sends {w} % of the requests to {canary}, {} % to {stable}; {}judge every {} s for {} s (up to {} s while INCONCLUSIVE){}",
                k + 1,
                s.steps.len(),
                100 - w,
                if k == 0 && s.warmup_s > 0.0 {
                    format!(
                        "warm up {} s (its requests judged on errors only), then ",
                        num(s.warmup_s)
                    )
                } else {
                    String::new()
                },
                num(s.look_every_s),
                num(s.step_time_s),
                num(s.max_step_time_s),
                s.load
                    .map(|r| format!(", {} synthetic req/s", num(r)))
                    .unwrap_or_default()
            ),
        });
    }
    let batches: Vec<Vec<String>> = serial
        .batches(stable_hosts)
        .into_iter()
        .map(<[String]>::to_vec)
        .collect();
    actions.push(PlannedAction {
        action: "promote",
        weight: None,
        what: format!(
            "rolling deploy of {} on {stable} through {front_door} in {} batch{} ([deploy] serial: {}), each drained, deployed, health-checked and restored before the next",
            version(s),
            batches.len(),
            if batches.len() == 1 { "" } else { "es" },
            batches
                .iter()
                .map(|b| b.join(" + "))
                .collect::<Vec<_>>()
                .join(", then ")
        ),
    });
    actions.push(PlannedAction {
        action: "retire",
        weight: None,
        what: format!("take {canary} out of {front_door} and destroy it"),
    });
    Plan {
        app: s.app.clone(),
        version: version(s),
        provider: s.provider.clone(),
        environment: s.environment.clone(),
        inventory: s.inventory.display().to_string(),
        stable_hosts: stable_hosts.to_vec(),
        canary_host: canary.clone(),
        front_door: front_door.into(),
        steps: s.steps.clone(),
        step_time_s: s.step_time_s,
        max_step_time_s: s.max_step_time_s,
        look_every_s: s.look_every_s,
        warmup_s: s.warmup_s,
        load: s.load,
        judge: judge.clone(),
        actions,
        promotion_batches: batches,
        on_fail: format!(
            "a FAIL at any look: weight 0 on {canary} at once, {canary} destroyed, exit 4"
        ),
        on_inconclusive: format!(
            "INCONCLUSIVE at a step's end: the step goes on up to {} s, then the rollout pauses (exit 5, weight kept; resume or abort); MARGINAL pauses (exit 3)",
            num(s.max_step_time_s)
        ),
        state_file: state_file.into(),
        report_dir: s.report_dir.display().to_string(),
    }
}

impl Plan {
    /// The plan as `--dry-run` prints it.
    pub fn render(&self) -> String {
        let mut out = format!(
            "rollout plan: {} to {} in environment {} ({})\n",
            self.version, self.app, self.environment, self.provider
        );
        let n = self.actions.len();
        for (k, a) in self.actions.iter().enumerate() {
            out.push_str(&format!("  [{}/{n}] {:<9} {}\n", k + 1, a.action, a.what));
        }
        out.push_str(&format!("on FAIL: {}\n", self.on_fail));
        out.push_str(&format!("on INCONCLUSIVE: {}\n", self.on_inconclusive));
        out.push_str(&format!(
            "judge: confidence {}, min_samples {} per arm, sequential looks (a FAIL at any look is final)\n",
            self.judge.confidence, self.judge.min_samples
        ));
        out.push_str(&format!(
            "state: {} (written before every action)\nreport: {}\n",
            self.state_file, self.report_dir
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Recorded {
        Recorded {
            app: "checkbox".into(),
            provider: "local".into(),
            environment: "prod".into(),
            inventory: "inventory.ini".into(),
            source: None,
            git_ref: Some("v2".into()),
            artifact: None,
            extra_vars: Vec::new(),
            steps: vec![5, 25, 50, 100],
            step_time_s: 20.0,
            max_step_time_s: 60.0,
            look_every_s: 5.0,
            warmup_s: 0.0,
            load: Some(20.0),
            report_dir: "r".into(),
        }
    }

    fn serial(toml: &str) -> Serial {
        toml::from_str::<crate::deploy::DeploySection>(toml)
            .unwrap()
            .serial
            .unwrap_or_default()
    }

    fn target() -> Target {
        Target::resolve(crate::apps::App::Checkbox, &serde_json::Map::new()).unwrap()
    }

    fn names(n: u32) -> Vec<String> {
        crate::fleet::host_names("checkbox", n)
    }

    #[test]
    fn a_fleet_of_one_or_three_promotes_in_the_batches_of_deploy_serial() {
        let judge = JudgeConfig::default();
        let batches = |hosts: &[String], toml: &str| {
            plan(
                &recorded(),
                hosts,
                "lb",
                &judge,
                "f",
                &serial(toml),
                &target(),
            )
            .promotion_batches
        };
        let one = names(1);
        assert_eq!(one, ["checkbox"]);
        assert_eq!(batches(&one, ""), [["checkbox"]]);
        assert_eq!(batches(&one, "serial = \"50%\""), [["checkbox"]]);
        let three = names(3);
        assert_eq!(
            batches(&three, ""),
            [["checkbox-1"], ["checkbox-2"], ["checkbox-3"]]
        );
        assert_eq!(
            batches(&three, "serial = 2"),
            vec![vec!["checkbox-1", "checkbox-2"], vec!["checkbox-3"]]
        );
        assert_eq!(
            batches(&three, "serial = [1, \"100%\"]"),
            vec![vec!["checkbox-1"], vec!["checkbox-2", "checkbox-3"]]
        );
        let p = plan(
            &recorded(),
            &three,
            "lb",
            &judge,
            "f",
            &serial("serial = 2"),
            &target(),
        );
        let promote = &p.actions[p.actions.len() - 2];
        assert_eq!(promote.action, "promote");
        assert!(
            promote.what.contains(
                "in 2 batches ([deploy] serial: checkbox-1 + checkbox-2, then checkbox-3)"
            ),
            "{}",
            promote.what
        );
        let p = plan(
            &recorded(),
            &one,
            "lb",
            &judge,
            "f",
            &Serial::default(),
            &target(),
        );
        assert!(
            p.render()
                .contains("on checkbox through lb in 1 batch ([deploy] serial: checkbox)"),
            "{}",
            p.render()
        );
        assert!(p.render().contains("95 % to checkbox;"), "{}", p.render());
    }

    #[test]
    fn the_plan_lists_provision_deploy_check_each_step_then_promote_and_retire() {
        let s = recorded();
        let p = plan(
            &s,
            &["checkbox-1".into(), "checkbox-2".into()],
            "lb",
            &JudgeConfig::default(),
            ".pipeline/rollout-prod-checkbox.json",
            &Serial::default(),
            &target(),
        );
        let order: Vec<_> = p.actions.iter().map(|a| (a.action, a.weight)).collect();
        assert_eq!(
            order,
            vec![
                ("provision", None),
                ("deploy", None),
                ("check", None),
                ("step", Some(5)),
                ("step", Some(25)),
                ("step", Some(50)),
                ("step", Some(100)),
                ("promote", None),
                ("retire", None),
            ]
        );
        let text = p.render();
        assert!(text.contains("[4/9] step      step 1/4: lb sends 5 % of the requests to checkbox-canary, 95 % to checkbox-1, checkbox-2"), "{text}");
        assert!(text.contains("20 synthetic req/s"), "{text}");
        assert!(
            text.contains(
                "[7/9] step      step 4/4: lb sends every request to checkbox-canary; not judged"
            ),
            "{text}"
        );
        assert!(text.contains("exit 4"), "{text}");
        assert!(!text.contains("warm up"), "{text}");
    }

    #[test]
    fn only_the_first_step_warms_up_before_its_judged_window() {
        let mut s = recorded();
        s.warmup_s = 30.0;
        let p = plan(
            &s,
            &names(2),
            "lb",
            &JudgeConfig::default(),
            "f",
            &Serial::default(),
            &target(),
        );
        let steps: Vec<_> = p.actions.iter().filter(|a| a.action == "step").collect();
        assert!(
            steps[0].what.contains(
                "95 % to checkbox-1, checkbox-2; warm up 30 s (its requests judged on errors only), then judge every 5 s for 20 s"
            ),
            "{}",
            steps[0].what
        );
        assert!(steps[1..].iter().all(|a| !a.what.contains("warm up")));
        assert_eq!(p.warmup_s, 30.0);
    }
}
