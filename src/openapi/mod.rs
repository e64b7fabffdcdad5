//! `GET /openapi.json`: the API as an OpenAPI 3.1 document, built from one table of operations.
//! A test holds it to the routes the server registers: every path documented, every documented
//! method served, every other method answering 405.

mod operations;

use serde_json::{json, Map, Value};

use operations::{Field, UPDATE_REFUSALS};
pub use operations::{Operation, OPERATIONS};

/// A parameter or body field: name, JSON type, required, description.
/// Errors any authenticated call may answer.
const AUTH_ERRORS: &[&str] = &[
    "no_key_provided",
    "invalid_apikey",
    "insufficient_permissions",
    "too_many_requests",
];
/// Errors any call may answer.
const COMMON_ERRORS: &[&str] = &[
    "payload_too_large",
    "unsupported_media_type",
    "internal_error",
];

fn schema(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, kind, is_required, description) in fields {
        let mut property = json!({"type": kind});
        if *kind == "array" {
            property["items"] = json!({"type": "string"});
        }
        if !description.is_empty() {
            property["description"] = json!(description);
        }
        properties.insert((*name).to_owned(), property);
        if *is_required {
            required.push(*name);
        }
    }
    json!({"type": "object", "properties": properties, "required": required})
}

/// Answers recorded from the real server by `tests/api/openapi.rs` (`UPDATE_OPENAPI_EXAMPLES=1`
/// rewrites them): "METHOD /path" -> {"status", "body"}.
pub const EXAMPLES: &str = include_str!("examples.json");

/// Every per-field code, from the one list of fields: `{field: [missing code, invalid code]}`.
fn field_error_codes() -> Value {
    Value::Object(
        crate::error::Field::ALL
            .iter()
            .map(|field| {
                let codes = json!([field.missing_code(), field.invalid_code()]);
                (field.key().to_owned(), codes)
            })
            .collect(),
    )
}

pub fn document() -> Value {
    let examples: Map<String, Value> = serde_json::from_str(EXAMPLES).unwrap_or_default();
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut errors: Vec<&str> = op.errors.to_vec();
        match (op.method, op.path) {
            ("post", "/updates") => {
                errors.push("missing_version_build");
                errors.extend(UPDATE_REFUSALS)
            }
            ("post", "/stats") => {
                errors.extend(["missing_action", "invalid_action", "mixed_app_ids"])
            }
            ("post", "/channel_self") => errors.extend([
                "missing_channel",
                "invalid_channel",
                "channel_not_found",
                "public_channel_self_set_not_allowed",
                "channel_self_set_not_allowed",
                "cannot_override",
            ]),
            ("put", "/channel_self") => errors.push("channel_not_found"),
            ("delete", "/channel_self") => errors.push("cannot_override"),
            _ => {}
        }
        if op.mode.is_some() {
            errors.extend(AUTH_ERRORS);
        }
        errors.extend(COMMON_ERRORS);
        let mut operation = json!({
            "summary": op.summary,
            "responses": {
                "200": {"description": "Success"},
                "default": {
                    "description": format!("An error, one of: {}", errors.join(", ")),
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
            "x-error-codes": errors,
        });
        let mut parameters: Vec<Value> = op
            .query
            .iter()
            .map(|(name, kind, required, description)| {
                json!({"name": name, "in": "query", "required": required, "description": description, "schema": {"type": kind}})
            })
            .collect();
        if op.path.contains("{app_id}") {
            parameters.push(json!({"name": "app_id", "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        if op.path.contains("{id}") {
            parameters.push(json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}));
        }
        if !parameters.is_empty() {
            operation["parameters"] = json!(parameters);
        }
        if !op.body.is_empty() {
            operation["requestBody"] =
                json!({"content": {"application/json": {"schema": schema(op.body)}}});
        }
        let key = format!("{} {}", op.method.to_uppercase(), op.path);
        if let Some(example) = examples.get(&key) {
            let status = example["status"].to_string();
            operation["responses"][status.as_str()] = json!({
                "description": if status == "200" || status == "201" { "Success" } else { "An error" },
                "content": {"application/json": {"example": example["body"]}},
            });
        }
        if let Some(mode) = op.mode {
            operation["security"] = json!([{"apiKey": []}]);
            operation["x-key-mode"] = json!(mode);
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "device-registry",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Registry of Capacitor live-update devices and the Devices API, compatible with Capgo's public API.",
        },
        "paths": paths,
        "components": {
            "x-field-error-codes": field_error_codes(),
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "authorization"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error", "message", "moreInfo", "status"],
                "properties": {
                    "error": {
                        "type": "string",
                        "description": "A stable code. Per field, missing_<field> or invalid_<field>: see x-field-error-codes.",
                    },
                    "message": {"type": "string"},
                    "moreInfo": {"type": "object"},
                    "status": {"const": "KO"},
                },
            }},
        },
    })
}
