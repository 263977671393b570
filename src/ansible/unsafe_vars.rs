//! Marks every string handed to Ansible as unsafe, so Ansible never evaluates a value as a template.
//!
//! Ansible templates variable values, play and task names: a branch named `x{{ lookup('pipe', 'id') }}`
//! or an `-e` value `{{ 7*7 }}` would run as Jinja on the controller. In JSON extra-vars (`-e @vars.json`),
//! `{"__ansible_unsafe": "…"}` is a string Ansible (ansible-core 2.19) keeps as text wherever it goes
//! (including through `"{{ var }}"` in the static entry playbooks). [`mark_unsafe`] wraps every string,
//! at any depth; numbers, booleans and null stay typed. Map keys cannot be marked, so a key holding a
//! template marker is refused ([`check_keys`]).

use serde_json::{Map, Value};

/// The character pairs that start a Jinja expression, statement or comment.
pub const TEMPLATE_MARKERS: [&str; 3] = ["{{", "{%", "{#"];

/// Whether `text` holds something Jinja would parse (`{{`, `{%` or `{#`).
pub fn has_template_marker(text: &str) -> bool {
    TEMPLATE_MARKERS.iter().any(|m| text.contains(m))
}

/// `value` with every string, at any depth, replaced by `{"__ansible_unsafe": string}`.
pub fn mark_unsafe(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::Object(Map::from_iter([(
            "__ansible_unsafe".to_string(),
            s.clone().into(),
        )])),
        Value::Array(items) => Value::Array(items.iter().map(mark_unsafe).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), mark_unsafe(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every variable of `vars`, marked unsafe (see [`mark_unsafe`]).
pub fn mark_all_unsafe(vars: &Map<String, Value>) -> Map<String, Value> {
    vars.iter()
        .map(|(k, v)| (k.clone(), mark_unsafe(v)))
        .collect()
}

/// The first problem with the variables' names: a top-level name that is not an identifier Ansible can
/// use, or a key at any depth holding a template marker (keys cannot be marked unsafe). Returns the
/// path of the offending key, e.g. `app.env.{{ x }}`.
pub fn check_keys(vars: &Map<String, Value>) -> Result<(), String> {
    for (name, value) in vars {
        let identifier = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(format!(
                "variable name `{name}` is not a valid Ansible variable name (letters, digits, _)"
            ));
        }
        nested_keys(value, name)?;
    }
    Ok(())
}

fn nested_keys(value: &Value, path: &str) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}.{k}");
                if has_template_marker(k) {
                    return Err(format!(
                        "key `{here}` holds a template marker ({}), which Ansible could evaluate; rename the key",
                        TEMPLATE_MARKERS.join(", ")
                    ));
                }
                nested_keys(v, &here)?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                nested_keys(v, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_string_at_any_depth_is_wrapped_and_other_types_stay_typed() {
        let v = json!({"a": "{{ 7*7 }}", "b": [1, "ab{#cd", {"c": "x", "d": true}], "e": null});
        assert_eq!(
            mark_unsafe(&v),
            json!({
                "a": {"__ansible_unsafe": "{{ 7*7 }}"},
                "b": [1, {"__ansible_unsafe": "ab{#cd"}, {"c": {"__ansible_unsafe": "x"}, "d": true}],
                "e": null
            })
        );
    }

    #[test]
    fn keys_with_template_markers_or_bad_names_are_refused_with_their_path() {
        let ok = json!({"a_1": {"k": ["x"]}});
        assert!(check_keys(ok.as_object().unwrap()).is_ok());
        let bad = json!({"a": {"env": [{"{{ x }}": 1}]}});
        let err = check_keys(bad.as_object().unwrap()).unwrap_err();
        assert!(err.contains("`a.env[0].{{ x }}`"), "{err}");
        let bad = json!({"a-b": 1});
        let err = check_keys(bad.as_object().unwrap()).unwrap_err();
        assert!(err.contains("`a-b`"), "{err}");
    }

    #[test]
    fn template_markers_are_the_three_jinja_openers() {
        for t in ["{{ x }}", "ab{#cd", "{% if %}"] {
            assert!(has_template_marker(t), "{t}");
        }
        assert!(!has_template_marker("a{b}c # {x}"));
    }
}
