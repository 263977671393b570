//! Role variables from the user: `-e KEY=VALUE` / `-e @FILE` parsing and `[deploy.vars]` (TOML) turned into
//! the JSON values `vars.json` holds. Pure apart from reading an `@FILE`.

use serde_json::{Map, Value};

/// Parses one `-e` argument into variables (pure apart from reading an `@FILE`).
pub fn parse_extra_var(arg: &str) -> Result<Map<String, Value>, String> {
    if let Some(file) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("-e @{file}: cannot read it: {e}"))?;
        return match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(format!("-e @{file}: expected a JSON object of variables")),
        };
    }
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("-e {arg}: expected KEY=VALUE"))?;
    let valid = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "-e {arg}: `{key}` is not a valid variable name (letters, digits, _)"
        ));
    }
    let typed =
        serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::String(value.into()));
    Ok(Map::from_iter([(key.to_string(), typed)]))
}

/// Parses every `-e` argument in order (later ones win).
pub fn parse_extra_vars(args: &[String]) -> Result<Map<String, Value>, String> {
    let mut vars = Map::new();
    for arg in args {
        vars.extend(parse_extra_var(arg)?);
    }
    Ok(vars)
}

/// A TOML value (from pipeline.toml) as JSON; datetimes become their RFC 3339 text.
pub fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// A TOML table of variables as JSON.
pub fn table_to_json(table: toml::Table) -> Map<String, Value> {
    table
        .into_iter()
        .map(|(k, v)| (k, toml_to_json(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_vars_are_typed_as_json_when_they_parse() {
        let v = |s: &str| parse_extra_var(s).unwrap().into_iter().next().unwrap();
        assert_eq!(v("checkbox_mongodb_install=false").1, Value::Bool(false));
        assert_eq!(v("nodejs_version=20").1, Value::from(20));
        assert_eq!(v("itrust_runtime=tomcat").1, Value::from("tomcat"));
        assert_eq!(v("x=a=b").1, Value::from("a=b"));
        assert_eq!(v("list=[1,2]").1, serde_json::json!([1, 2]));
        assert!(parse_extra_var("novalue").is_err());
        assert!(parse_extra_var("1bad=x").is_err());
        assert!(parse_extra_var("bad-name=x").is_err());
    }

    #[test]
    fn extra_vars_file_must_hold_a_json_object() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("v.json");
        std::fs::write(&good, r#"{"a": 1, "b": "x"}"#).unwrap();
        let map = parse_extra_var(&format!("@{}", good.display())).unwrap();
        assert_eq!(map["a"], Value::from(1));
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[1]").unwrap();
        assert!(parse_extra_var(&format!("@{}", bad.display())).is_err());
    }

    #[test]
    fn toml_values_become_the_same_json_values() {
        let table: toml::Table =
            toml::from_str("a = 1\nb = \"x\"\nc = [true]\n[d]\ne = 1.5\n").unwrap();
        assert_eq!(
            Value::Object(table_to_json(table)),
            serde_json::json!({"a": 1, "b": "x", "c": [true], "d": {"e": 1.5}})
        );
    }
}
