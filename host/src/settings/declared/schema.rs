//! The configuration schema (opentelemetry-configuration v1.1.0, bundled) and validation against it.

use serde_json::Value;
use std::sync::LazyLock;

/// The JSON schema of `file_format` 1.1.
pub(crate) const SCHEMA: &str = include_str!("opentelemetry_configuration.json");

/// The schema, parsed once.
pub(crate) static SCHEMA_VALUE: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(SCHEMA).unwrap_or(Value::Null));

static VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> = LazyLock::new(|| {
    jsonschema::validator_for(&SCHEMA_VALUE)
        .map_err(|e| format!("the bundled schema is invalid: {e}"))
});

/// Every way `model` breaks the schema: the JSON pointer of the node, and what is wrong (values masked: a header
/// value that fails is never printed).
pub(crate) fn validate(model: &Value) -> Result<(), Vec<(String, String)>> {
    let validator = VALIDATOR
        .as_ref()
        .map_err(|e| vec![(String::new(), e.clone())])?;
    let mut problems: Vec<(String, String)> =
        validator.iter_errors(model).map(|e| problem(&e)).collect();
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort();
    problems.dedup();
    Err(problems)
}

fn problem(e: &jsonschema::ValidationError<'_>) -> (String, String) {
    use jsonschema::error::ValidationErrorKind as K;
    let at = e.instance_path().as_str().to_string();
    match e.kind() {
        K::AdditionalProperties { unexpected } => {
            let key = unexpected.first().cloned().unwrap_or_default();
            let known = known_keys(e.schema_path().as_str());
            let mut hint = crate::text::did_you_mean(&key, known.iter().map(String::as_str));
            if hint.is_empty() && !known.is_empty() {
                hint = format!(" (known here: {})", known.join(", "));
            }
            (
                format!("{at}/{}", super::yaml::escape(&key)),
                format!("unknown property `{key}`{hint}"),
            )
        }
        K::Required { property } => (
            at,
            format!(
                "the required property `{}` is missing",
                property.as_str().unwrap_or_default()
            ),
        ),
        _ => (at, e.masked().to_string()),
    }
}

/// The property names the schema allows at the object an `additionalProperties` error's schema path ends in.
fn known_keys(schema_path: &str) -> Vec<String> {
    let mut node = &*SCHEMA_VALUE;
    let tokens: Vec<&str> = schema_path.split('/').skip(1).collect();
    // The path runs through `$ref`s: follow them from the root's definitions.
    for token in &tokens[..tokens.len().saturating_sub(1)] {
        let token = token.replace("~1", "/").replace("~0", "~");
        node = match node.get(&token) {
            Some(n) => n,
            None => return Vec::new(),
        };
        if let Some(r) = node.get("$ref").and_then(Value::as_str)
            && let Some(name) = r.strip_prefix("#/$defs/")
        {
            node = &SCHEMA_VALUE["$defs"][name];
        }
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}
