//! `GET /openapi.json`: the API as an OpenAPI 3.1 document, built from one table of operations.
//! A test holds it to the routes the server registers: every path documented, every documented
//! method served, every other method answering 405.

use serde_json::{json, Map, Value};

/// A parameter or body field: name, JSON type, required, description.
type Field = (&'static str, &'static str, bool, &'static str);

pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// The key mode needed; `None` for the unauthenticated endpoints.
    pub mode: Option<&'static str>,
    pub query: &'static [Field],
    pub body: &'static [Field],
    /// Error codes this operation may answer, besides the ones every call can.
    pub errors: &'static [&'static str],
}

const APP_ID: Field = (
    "app_id",
    "string",
    true,
    "The app: 1-128 of A-Z a-z 0-9 . _ -",
);
const DEVICE_ID: Field = ("device_id", "string", true, "1-128 bytes, lowercased");
const LIST: &[Field] = &[
    APP_ID,
    (
        "device_id",
        "string",
        false,
        "Answer this one device instead of a list",
    ),
    ("limit", "integer", false, "1-1000, default 50"),
    (
        "order",
        "string",
        false,
        "absent: by device_id; asc or desc: by updated_at",
    ),
    ("cursor", "string", false, "nextCursor of the previous page"),
    (
        "updated_at",
        "string",
        false,
        "RFC 3339: only devices seen later",
    ),
    ("custom_id", "string", false, "exact custom id"),
    ("custom_id_prefix", "string", false, "custom id prefix"),
    ("platform", "string", false, "ios, android or electron"),
    ("version_name", "string", false, "bundle the device runs"),
    (
        "channel",
        "string",
        false,
        "devices whose channel override is this channel",
    ),
    (
        "has_override",
        "boolean",
        false,
        "devices with (or without) an override",
    ),
    ("is_prod", "boolean", false, ""),
    ("is_emulator", "boolean", false, ""),
];
const DEVICE_BODY: &[Field] = &[
    APP_ID,
    DEVICE_ID,
    ("platform", "string", true, "ios, android or electron"),
    (
        "version_name",
        "string",
        false,
        "bundle running; builtin means the native build",
    ),
    (
        "version_build",
        "string",
        false,
        "native version (semver, coerced)",
    ),
    ("version_os", "string", false, ""),
    ("plugin_version", "string", false, ""),
    ("custom_id", "string", false, "0-256 bytes, trimmed"),
    ("is_prod", "boolean", false, "default true"),
    ("is_emulator", "boolean", false, "default false"),
    (
        "defaultChannel",
        "string",
        false,
        "channel the device asks for; \"\" means none",
    ),
    (
        "install_source",
        "string",
        false,
        "where the app was installed from; \"\" means unknown",
    ),
    (
        "key_id",
        "string",
        false,
        "id of the plugin's public key (not a secret)",
    ),
];
const ID_ERRORS: &[&str] = &[
    "missing_app_id",
    "invalid_app_id",
    "cannot_access_app",
    "app_not_found",
];
/// What a plugin call can refuse for its device body (400s) or its app (an HTTP 200 refusal).
const PLUGIN_DEVICE_ERRORS: &[&str] = &[
    "invalid_json_body",
    "missing_app_id",
    "invalid_app_id",
    "missing_device_id",
    "invalid_device_id",
    "missing_platform",
    "invalid_platform",
    "invalid_custom_id",
    "invalid_version_name",
    "invalid_version_build",
    "semver_error",
    "invalid_version_os",
    "invalid_plugin_version",
    "invalid_is_prod",
    "invalid_is_emulator",
    "invalid_default_channel",
    "invalid_install_source",
    "invalid_key_id",
    "app_not_found",
];
/// `/updates` refusals, answered with HTTP 200 and a `kind` (and, as Capgo sends them,
/// `version`, `old`, `major`).
const UPDATE_REFUSALS: &[&str] = &[
    "no_channel",
    "no_bundle",
    "no_new_version_available",
    "disabled_platform_ios",
    "disabled_platform_android",
    "disabled_platform_electron",
    "disable_auto_update_to_major",
    "disable_auto_update_to_minor",
    "disable_auto_update_to_patch",
    "misconfigured_channel",
    "disable_auto_update_to_metadata",
    "disable_auto_update_under_native",
    "disable_prod_build",
    "disable_dev_build",
    "disable_device",
    "disable_emulator",
    "already_on_builtin",
    "revert_to_builtin_plugin_version_too_old",
];

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/device",
        summary: "List devices (cursor pages, filters) or get one",
        mode: Some("read"),
        query: LIST,
        body: &[],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "cannot_access_app",
            "app_not_found",
            "device_not_found",
            "invalid_device_id",
            "invalid_limit",
            "invalid_order",
            "invalid_cursor",
            "invalid_updated_at",
            "invalid_platform",
            "invalid_channel",
            "invalid_has_override",
            "invalid_is_prod",
            "invalid_is_emulator",
            "invalid_custom_id",
            "invalid_custom_id_prefix",
            "invalid_version_name",
            "invalid_query",
        ],
    },
    Operation {
        method: "post",
        path: "/device",
        summary: "Link a device to a channel and/or a version",
        mode: Some("write"),
        query: &[],
        body: &[
            APP_ID,
            DEVICE_ID,
            ("channel", "string", false, "channel name"),
            ("version_id", "string", false, "bundle version name"),
        ],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_device_id",
            "invalid_device_id",
            "cannot_access_app",
            "app_not_found",
            "channel_not_found",
            "version_not_found",
            "missing_channel_or_version",
            "invalid_json_body",
        ],
    },
    Operation {
        method: "delete",
        path: "/device",
        summary: "Remove a device's overrides (body or query)",
        mode: Some("write"),
        query: &[APP_ID, DEVICE_ID],
        body: &[APP_ID, DEVICE_ID],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_device_id",
            "invalid_device_id",
            "cannot_access_app",
            "app_not_found",
        ],
    },
    Operation {
        method: "get",
        path: "/device/resolve",
        summary: "What /updates would answer a device, and why",
        mode: Some("read"),
        query: &[APP_ID, DEVICE_ID],
        body: &[],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_device_id",
            "invalid_device_id",
            "cannot_access_app",
            "app_not_found",
            "device_not_found",
        ],
    },
    Operation {
        method: "get",
        path: "/device/export",
        summary: "Every device of an app, NDJSON or CSV",
        mode: Some("read"),
        query: &[
            APP_ID,
            ("format", "string", false, "ndjson (default) or csv"),
        ],
        body: &[],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "cannot_access_app",
            "app_not_found",
            "invalid_format",
        ],
    },
    Operation {
        method: "post",
        path: "/device/bulk",
        summary: "Link up to 1000 devices, all or none",
        mode: Some("write"),
        query: &[],
        body: &[
            APP_ID,
            ("device_ids", "array", true, "1-1000 device ids"),
            ("channel", "string", false, ""),
            ("version_id", "string", false, ""),
            ("dry_run", "boolean", false, "answer without writing"),
        ],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_device_ids",
            "invalid_device_ids",
            "cannot_access_app",
            "app_not_found",
            "channel_not_found",
            "version_not_found",
            "missing_channel_or_version",
            "invalid_dry_run",
        ],
    },
    Operation {
        method: "delete",
        path: "/device/bulk",
        summary: "Unlink up to 1000 devices, all or none",
        mode: Some("write"),
        query: &[],
        body: &[
            APP_ID,
            ("device_ids", "array", true, "1-1000 device ids"),
            ("dry_run", "boolean", false, "answer without writing"),
        ],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_device_ids",
            "invalid_device_ids",
            "cannot_access_app",
            "app_not_found",
            "invalid_dry_run",
        ],
    },
    Operation {
        method: "post",
        path: "/device/erase",
        summary: "Remove a device (or a custom id's devices) for good",
        mode: Some("all"),
        query: &[],
        body: &[
            APP_ID,
            ("device_id", "string", false, "one of device_id"),
            ("custom_id", "string", false, "or custom_id"),
        ],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_device_id_or_custom_id",
            "invalid_target",
            "invalid_device_id",
            "invalid_custom_id",
            "cannot_access_app",
            "app_not_found",
            "device_not_found",
        ],
    },
    Operation {
        method: "get",
        path: "/device/audit",
        summary: "Override changes, newest first",
        mode: Some("read"),
        query: &[
            APP_ID,
            ("device_id", "string", false, "one device's changes"),
            ("limit", "integer", false, "1-1000"),
            ("cursor", "string", false, "nextCursor of the previous page"),
        ],
        body: &[],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "cannot_access_app",
            "app_not_found",
            "invalid_limit",
            "invalid_cursor",
            "invalid_device_id",
        ],
    },
    Operation {
        method: "get",
        path: "/device/summary",
        summary: "How an app's devices are spread: platforms, versions, channels, prod/dev, emulator, seen in 1/7/30 days",
        mode: Some("read"),
        query: LIST,
        body: &[],
        errors: &["missing_app_id", "invalid_app_id", "cannot_access_app", "app_not_found", "invalid_platform", "invalid_channel", "invalid_has_override", "invalid_is_prod", "invalid_is_emulator", "invalid_custom_id", "invalid_custom_id_prefix", "invalid_version_name", "invalid_query", "invalid_device_id", "invalid_limit", "invalid_order", "invalid_cursor", "invalid_updated_at"],
    },
    Operation {
        method: "get",
        path: "/app",
        summary: "List the apps the key may see",
        mode: Some("read"),
        query: &[],
        body: &[],
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/app",
        summary: "Create an app",
        mode: Some("all"),
        query: &[],
        body: &[APP_ID, ("name", "string", false, "defaults to the app id")],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "invalid_name",
            "cannot_access_app",
            "app_id_already_exists",
        ],
    },
    Operation {
        method: "get",
        path: "/app/{app_id}",
        summary: "Get an app",
        mode: Some("read"),
        query: &[],
        body: &[],
        errors: &["invalid_app_id", "cannot_access_app", "app_not_found"],
    },
    Operation {
        method: "delete",
        path: "/app/{app_id}",
        summary: "Delete an app with everything it owns",
        mode: Some("all"),
        query: &[],
        body: &[],
        errors: &["invalid_app_id", "cannot_access_app", "app_not_found"],
    },
    Operation {
        method: "get",
        path: "/channel",
        summary: "List channels, or get one",
        mode: Some("read"),
        query: &[APP_ID, ("channel", "string", false, "one channel")],
        body: &[],
        errors: ID_ERRORS,
    },
    Operation {
        method: "post",
        path: "/channel",
        summary: "Create or update a channel (only the fields sent)",
        mode: Some("write"),
        query: &[],
        body: &[
            APP_ID,
            ("channel", "string", true, "name"),
            ("version", "string", false, "bundle name or null"),
            ("public", "boolean", false, ""),
            ("ios", "boolean", false, ""),
            ("android", "boolean", false, ""),
            ("electron", "boolean", false, ""),
            ("allow_device_self_set", "boolean", false, ""),
            ("allow_emulator", "boolean", false, ""),
            ("allow_device", "boolean", false, ""),
            ("allow_dev", "boolean", false, ""),
            ("allow_prod", "boolean", false, ""),
            (
                "disableAutoUpdate",
                "string",
                false,
                "major, minor, patch, version_number, none",
            ),
            ("disableAutoUpdateUnderNative", "boolean", false, ""),
        ],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_channel",
            "invalid_channel",
            "invalid_version",
            "invalid_disable_auto_update",
            "cannot_access_app",
            "app_not_found",
            "version_not_found",
        ],
    },
    Operation {
        method: "delete",
        path: "/channel",
        summary: "Delete a channel and the overrides naming it",
        mode: Some("write"),
        query: &[APP_ID, ("channel", "string", true, "")],
        body: &[APP_ID, ("channel", "string", true, "")],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_channel",
            "cannot_access_app",
            "app_not_found",
            "channel_not_found",
        ],
    },
    Operation {
        method: "get",
        path: "/bundle",
        summary: "List bundles, newest first",
        mode: Some("read"),
        query: &[APP_ID],
        body: &[],
        errors: ID_ERRORS,
    },
    Operation {
        method: "post",
        path: "/bundle",
        summary: "Register a bundle hosted elsewhere",
        mode: Some("write"),
        query: &[],
        body: &[
            APP_ID,
            ("version", "string", true, "semver"),
            ("external_url", "string", true, "http(s) URL"),
            ("checksum", "string", true, ""),
            ("session_key", "string", false, ""),
            ("min_update_version", "string", false, "semver"),
        ],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_version",
            "invalid_version",
            "missing_external_url",
            "invalid_external_url",
            "missing_checksum",
            "invalid_checksum",
            "invalid_min_update_version",
            "cannot_access_app",
            "app_not_found",
            "version_already_exists",
        ],
    },
    Operation {
        method: "delete",
        path: "/bundle",
        summary: "Delete a bundle no channel or override uses",
        mode: Some("write"),
        query: &[APP_ID, ("version", "string", true, "")],
        body: &[APP_ID, ("version", "string", true, "")],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "missing_version",
            "cannot_access_app",
            "app_not_found",
            "version_not_found",
            "cannot_delete_linked_version",
        ],
    },
    Operation {
        method: "get",
        path: "/apikey",
        summary: "List keys (never their secrets)",
        mode: Some("all"),
        query: &[],
        body: &[],
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/apikey",
        summary: "Create a key; its secret is shown once",
        mode: Some("all"),
        query: &[],
        body: &[
            ("name", "string", true, ""),
            ("mode", "string", true, "read, upload, write, all"),
            ("limited_to_apps", "array", false, "app ids"),
            ("expires_at", "string", false, "RFC 3339"),
        ],
        errors: &[
            "missing_name",
            "invalid_name",
            "missing_mode",
            "invalid_mode",
            "invalid_limited_to_apps",
            "invalid_expires_at",
            "cannot_access_app",
        ],
    },
    Operation {
        method: "delete",
        path: "/apikey/{id}",
        summary: "Revoke a key",
        mode: Some("all"),
        query: &[],
        body: &[],
        errors: &["invalid_id", "apikey_not_found"],
    },
    Operation {
        method: "post",
        path: "/updates",
        summary: "Plugin check-in: records the device, answers the bundle to run",
        mode: None,
        query: &[],
        body: DEVICE_BODY,
        errors: PLUGIN_DEVICE_ERRORS,
    },
    Operation {
        method: "post",
        path: "/updates/manifest_size",
        summary: "Download size of a manifest's files (none is hosted here: all size_unknown)",
        mode: None,
        query: &[],
        body: DEVICE_BODY,
        errors: PLUGIN_DEVICE_ERRORS,
    },
    Operation {
        method: "post",
        path: "/stats",
        summary: "Plugin events, one or an array (answered per event, with its index)",
        mode: None,
        query: &[],
        body: DEVICE_BODY,
        errors: PLUGIN_DEVICE_ERRORS,
    },
    Operation {
        method: "post",
        path: "/channel_self",
        summary: "May the device choose this channel?",
        mode: None,
        query: &[],
        body: DEVICE_BODY,
        errors: PLUGIN_DEVICE_ERRORS,
    },
    Operation {
        method: "put",
        path: "/channel_self",
        summary: "The channel the device is on, as /updates chooses it",
        mode: None,
        query: &[],
        body: DEVICE_BODY,
        errors: PLUGIN_DEVICE_ERRORS,
    },
    Operation {
        method: "get",
        path: "/channel_self",
        summary: "Channels a device may pick",
        mode: None,
        query: &[
            APP_ID,
            ("platform", "string", false, ""),
            ("is_emulator", "boolean", false, ""),
            ("is_prod", "boolean", false, ""),
        ],
        body: &[],
        errors: &[
            "missing_app_id",
            "invalid_app_id",
            "invalid_platform",
            "invalid_is_emulator",
            "invalid_is_prod",
            "app_not_found",
        ],
    },
    Operation {
        method: "delete",
        path: "/channel_self",
        summary: "Back to the default channel",
        mode: None,
        query: DEVICE_BODY,
        body: DEVICE_BODY,
        errors: PLUGIN_DEVICE_ERRORS,
    },
    Operation {
        method: "get",
        path: "/health",
        summary: "200 while the store takes writes",
        mode: None,
        query: &[],
        body: &[],
        errors: &["store_unavailable"],
    },
    Operation {
        method: "get",
        path: "/metrics",
        summary: "Prometheus text format",
        mode: Some("read"),
        query: &[],
        body: &[],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        mode: None,
        query: &[],
        body: &[],
        errors: &[],
    },
];

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
pub const EXAMPLES: &str = include_str!("openapi_examples.json");

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
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "authorization"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error", "message", "moreInfo", "status"],
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "moreInfo": {"type": "object"},
                    "status": {"const": "KO"},
                },
            }},
        },
    })
}
