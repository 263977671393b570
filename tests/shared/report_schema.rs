//! `report.json` checked against `src/canary/report/report.schema.json` by a real JSON Schema validator
//! (the `jsonschema` crate, Draft 2020-12: the draft the schema's `$schema` names). Every keyword of that
//! draft is enforced; a schema that stops being a valid 2020-12 document fails the check too.

use std::sync::OnceLock;

use serde_json::Value;

/// The draft [`validator`] enforces; the schema must declare it.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The report schema as JSON.
pub fn schema() -> Value {
    serde_json::from_str(pipeline::canary::report::JSON_SCHEMA).expect("report.schema.json is JSON")
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema = schema();
        assert_eq!(
            schema["$schema"], DRAFT_2020_12,
            "report.schema.json declares another draft than the validator enforces"
        );
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("report.schema.json is not a valid Draft 2020-12 schema: {e}");
        }
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("report.schema.json does not compile: {e}"))
    })
}

/// Every way `report` breaks the schema, as `JSON pointer: message` lines (empty when it is valid).
pub fn violations(report: &Value) -> Vec<String> {
    validator()
        .iter_errors(report)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Panics with every violation when `report` does not follow the schema.
pub fn assert_valid(report: &Value) {
    let errors = violations(report);
    assert!(
        errors.is_empty(),
        "report.json breaks report.schema.json:\n{}",
        errors.join("\n")
    );
}
