//! docs/plan.schema.json, checked by the `jsonschema` crate (every keyword of draft 2020-12:
//! types, required and unknown keys, patterns, enums, minimum and maximum).
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plan.schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::draft202012::new(&schema).expect("docs/plan.schema.json is a valid schema")
    })
}

/// Every place where `plan` breaks the schema, as `path: error`.
pub fn errors(plan: &Value) -> Vec<String> {
    validator()
        .iter_errors(plan)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}
