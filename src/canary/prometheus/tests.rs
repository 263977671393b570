//! Unit tests of the metrics file and window checks (the queries themselves are tested against a real
//! Prometheus in tests/analyze_prometheus.rs).

use super::*;

fn plan(text: &str) -> Result<Vec<PlannedMetric>, PromError> {
    let file: MetricsFile = toml::from_str(text).map_err(|e| PromError::MetricsFile {
        path: "m.toml".into(),
        why: e.to_string(),
    })?;
    file.plan(Path::new("m.toml"))
}

fn why(text: &str) -> String {
    let e = plan(text).unwrap_err();
    assert!(e.is_usage(), "{e}");
    e.to_string()
}

#[test]
fn arm_placeholder_is_replaced_by_each_arms_name() {
    let p = plan(
        r#"
        [arms]
        baseline = "blue"
        canary = "green"
        [[metric]]
        name = "cpu"
        fail_on = "increase"
        allowed_increase = 0.1
        critical = true
        query = 'rate(cpu{arm="$arm"}[1m])'
        [[metric]]
        name = "mem"
        baseline_query = "mem_a"
        canary_query = "mem_b"
        "#,
    )
    .unwrap();
    assert_eq!(p[0].baseline_query, r#"rate(cpu{arm="blue"}[1m])"#);
    assert_eq!(p[0].canary_query, r#"rate(cpu{arm="green"}[1m])"#);
    assert_eq!(p[0].spec.fail_on, FailOn::Increase);
    assert!(p[0].spec.critical);
    assert_eq!(
        (p[1].baseline_query.as_str(), p[1].canary_query.as_str()),
        ("mem_a", "mem_b")
    );
}

#[test]
fn a_query_without_arm_placeholder_or_arms_table_is_refused() {
    assert!(
        why("[arms]\nbaseline='a'\ncanary='b'\n[[metric]]\nname='x'\nquery='up'\n")
            .contains("no `$arm`")
    );
    assert!(why("[[metric]]\nname='x'\nquery='up{a=\"$arm\"}'\n").contains("no [arms]"));
}

#[test]
fn queries_must_be_one_shared_or_one_per_arm() {
    let both = "[arms]\nbaseline='a'\ncanary='b'\n[[metric]]\nname='x'\nquery='$arm'\nbaseline_query='q'\n";
    assert!(why(both).contains("either `query`"));
    assert!(why("[[metric]]\nname='x'\nbaseline_query='q'\n").contains("either `query`"));
    assert!(
        why("[[metric]]\nname='x'\nbaseline_query=' '\ncanary_query='q'\n").contains("empty query")
    );
}

#[test]
fn names_are_required_unique_and_fields_checked() {
    assert!(why("").contains("no [[metric]]"));
    let twice = "[[metric]]\nname='x'\nbaseline_query='a'\ncanary_query='b'\n[[metric]]\nname='x'\nbaseline_query='a'\ncanary_query='b'\n";
    assert!(why(twice).contains("twice"));
    assert!(why(
        "[[metric]]\nname='x'\nbaseline_query='a'\ncanary_query='b'\nfail_onn='increase'\n"
    )
    .contains("fail_onn"));
}

#[test]
fn window_must_run_forward_and_counts_grid_points() {
    let now = 10_000.0;
    let w = Window::parse("-1h", "now", "15s", now).unwrap();
    assert_eq!((w.start, w.end, w.step), (now - 3600.0, now, 15.0));
    assert_eq!(w.points(), 241);
    let e = Window::parse("now", "-1h", "15s", now).unwrap_err();
    assert!(e.is_usage() && e.to_string().contains("not before"), "{e}");
    assert!(Window::parse("-1h", "now", "0s", now).is_err());
}

#[test]
fn too_many_series_names_each_series_and_empty_is_its_own_case() {
    let s = |v: &str| RangeSeries {
        labels: [("instance".to_string(), v.to_string())].into(),
        points: vec![(1.0, 1.0)],
    };
    let e = one_series("lat", "canary", "q", vec![s("a"), s("b")]).unwrap_err();
    let text = e.to_string();
    assert!(e.is_usage());
    assert!(
        text.contains("`lat`")
            && text.contains(r#"{instance="a"}"#)
            && text.contains(r#"{instance="b"}"#),
        "{text}"
    );
    let empty = RangeSeries {
        labels: std::collections::BTreeMap::default(),
        points: vec![],
    };
    assert!(matches!(
        one_series("lat", "canary", "q", vec![empty]),
        Err(PromError::EmptyResult { .. })
    ));
    assert_eq!(
        one_series("lat", "canary", "q", vec![s("a")]).unwrap(),
        vec![(1.0, 1.0)]
    );
}
