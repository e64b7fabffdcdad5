//! One error type for every answer that is not a success. Each fixed code has its status and
//! message in one table; field errors (`missing_<field>`, `invalid_<field>`) are built from the
//! field's name so that every field reports itself the same way. The body is the contract's:
//! `{"error", "message", "moreInfo", "status": "KO"}`.

use std::borrow::Cow;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Map, Value};

use crate::store::StoreError;

macro_rules! error_codes {
    ($($variant:ident => ($status:ident, $code:literal, $message:literal),)*) => {
        /// The fixed error codes of the contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code { $($variant),* }

        impl Code {
            pub fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status),* }
            }
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }
            pub fn message(self) -> &'static str {
                match self { $(Code::$variant => $message),* }
            }
        }
    };
}

error_codes! {
    NoKeyProvided => (UNAUTHORIZED, "no_key_provided", "No API key provided"),
    InvalidApiKey => (UNAUTHORIZED, "invalid_apikey", "Invalid API key"),
    InsufficientPermissions => (FORBIDDEN, "insufficient_permissions", "Insufficient permissions"),
    CannotAccessApp => (FORBIDDEN, "cannot_access_app", "You cannot access this app"),
    InvalidJsonBody => (BAD_REQUEST, "invalid_json_body", "Invalid JSON body"),
    InvalidQuery => (BAD_REQUEST, "invalid_query", "Invalid query string"),
    SemverError => (BAD_REQUEST, "semver_error", "The native version does not follow semver"),
    MissingChannelOrVersion => (BAD_REQUEST, "missing_channel_or_version", "Either channel or version_id must be given"),
    AppNotFound => (NOT_FOUND, "app_not_found", "App not found"),
    DeviceNotFound => (NOT_FOUND, "device_not_found", "Device not found"),
    ChannelNotFound => (NOT_FOUND, "channel_not_found", "Channel not found"),
    VersionNotFound => (NOT_FOUND, "version_not_found", "Version not found"),
    ApiKeyNotFound => (NOT_FOUND, "apikey_not_found", "API key not found"),
    NotFound => (NOT_FOUND, "not_found", "Not found"),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
    AppIdAlreadyExists => (CONFLICT, "app_id_already_exists", "App already exists"),
    VersionAlreadyExists => (CONFLICT, "version_already_exists", "Version already exists"),
    CannotDeleteLinkedVersion => (CONFLICT, "cannot_delete_linked_version", "Version is used by a channel or a device override"),
    NoRollout => (CONFLICT, "no_rollout", "The channel has no rollout: set rollout_version first"),
    RolloutChanged => (CONFLICT, "rollout_changed", "The channel's rollout is no longer the one rollout_id names"),
    RequestTimeout => (REQUEST_TIMEOUT, "request_timeout", "The request body did not arrive in time"),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large", "Request body is too large"),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Request body must be JSON (content-type: application/json)"),
    TooManyRequests => (TOO_MANY_REQUESTS, "too_many_requests", "Too many requests"),
    Internal => (INTERNAL_SERVER_ERROR, "internal_error", "Internal error"),
    StoreUnavailable => (SERVICE_UNAVAILABLE, "store_unavailable", "The store does not accept writes"),
}

macro_rules! fields {
    ($($variant:ident => ($key:literal, $stem:literal),)*) => {
        /// Every field a request may name, with the two codes its problems answer
        /// (`missing_<field>`, `invalid_<field>`): the one list of per-field error codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Field { $($variant),* }

        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$variant),*];

            /// Its name in a body or a query string.
            pub fn key(self) -> &'static str {
                match self { $(Field::$variant => $key),* }
            }
            pub fn missing_code(self) -> &'static str {
                match self { $(Field::$variant => concat!("missing_", $stem)),* }
            }
            pub fn invalid_code(self) -> &'static str {
                match self { $(Field::$variant => concat!("invalid_", $stem)),* }
            }
            /// Its name in messages and `moreInfo` (snake_case, as in its codes).
            pub fn label(self) -> &'static str {
                match self { $(Field::$variant => $stem),* }
            }
        }
    };
}

fields! {
    Action => ("action", "action"),
    AllowDev => ("allow_dev", "allow_dev"),
    AllowDevice => ("allow_device", "allow_device"),
    AllowDeviceSelfSet => ("allow_device_self_set", "allow_device_self_set"),
    AllowEmulator => ("allow_emulator", "allow_emulator"),
    AllowProd => ("allow_prod", "allow_prod"),
    Android => ("android", "android"),
    AppId => ("app_id", "app_id"),
    Channel => ("channel", "channel"),
    Checksum => ("checksum", "checksum"),
    Cursor => ("cursor", "cursor"),
    CustomId => ("custom_id", "custom_id"),
    CustomIdPrefix => ("custom_id_prefix", "custom_id_prefix"),
    Days => ("days", "days"),
    DefaultChannel => ("defaultChannel", "default_channel"),
    DeviceId => ("device_id", "device_id"),
    DeviceIdOrCustomId => ("device_id_or_custom_id", "device_id_or_custom_id"),
    DeviceIds => ("device_ids", "device_ids"),
    DisableAutoUpdate => ("disableAutoUpdate", "disable_auto_update"),
    DisableAutoUpdateUnderNative => ("disableAutoUpdateUnderNative", "disable_auto_update_under_native"),
    DryRun => ("dry_run", "dry_run"),
    Electron => ("electron", "electron"),
    ExpiresAt => ("expires_at", "expires_at"),
    ExternalUrl => ("external_url", "external_url"),
    Files => ("files", "files"),
    Format => ("format", "format"),
    HasOverride => ("has_override", "has_override"),
    Id => ("id", "id"),
    InstallSource => ("install_source", "install_source"),
    Ios => ("ios", "ios"),
    IsEmulator => ("is_emulator", "is_emulator"),
    IsProd => ("is_prod", "is_prod"),
    KeyId => ("key_id", "key_id"),
    Limit => ("limit", "limit"),
    LimitedToApps => ("limited_to_apps", "limited_to_apps"),
    Manifest => ("manifest", "manifest"),
    MinUpdateVersion => ("min_update_version", "min_update_version"),
    Mode => ("mode", "mode"),
    Name => ("name", "name"),
    Order => ("order", "order"),
    OsVersion => ("os_version", "os_version"),
    Platform => ("platform", "platform"),
    PluginVersion => ("plugin_version", "plugin_version"),
    Public => ("public", "public"),
    Rollout => ("rollout", "rollout"),
    RolloutGuard => ("rollout_guard", "rollout_guard"),
    RolloutId => ("rollout_id", "rollout_id"),
    RolloutPaused => ("rollout_paused", "rollout_paused"),
    RolloutPercentageBps => ("rollout_percentage_bps", "rollout_percentage_bps"),
    RolloutVersion => ("rollout_version", "rollout_version"),
    SessionKey => ("session_key", "session_key"),
    Target => ("target", "target"),
    UpdatedAt => ("updated_at", "updated_at"),
    Version => ("version", "version"),
    VersionBuild => ("version_build", "version_build"),
    VersionId => ("version_id", "version_id"),
    VersionName => ("version_name", "version_name"),
    VersionOs => ("version_os", "version_os"),
    VersionOverride => ("version_override", "version_override"),
}

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    more_info: Map<String, Value>,
}

impl ApiError {
    pub fn new(code: Code) -> Self {
        Self {
            status: code.status(),
            code: Cow::Borrowed(code.as_str()),
            message: Cow::Borrowed(code.message()),
            more_info: Map::new(),
        }
    }

    /// 400 `missing_<field>`.
    pub fn missing(field: Field) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: Cow::Borrowed(field.missing_code()),
            message: Cow::Owned(format!("Missing required field {}", field.label())),
            more_info: Map::new(),
        }
    }

    /// 400 `invalid_<field>`, with a sentence that says what a valid value is, and the value.
    pub fn invalid(field: Field, expected: &str, value: Option<&Value>) -> Self {
        let mut error = Self {
            status: StatusCode::BAD_REQUEST,
            code: Cow::Borrowed(field.invalid_code()),
            message: Cow::Owned(format!("Invalid {}: {expected}", field.label())),
            more_info: Map::new(),
        };
        if let Some(value) = value {
            error
                .more_info
                .insert(field.label().to_owned(), value.clone());
        }
        error
    }

    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    pub fn info(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.more_info.insert(key.to_owned(), value.into());
        self
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn message_text(&self) -> &str {
        &self.message
    }

    pub fn more_info(&self) -> &Map<String, Value> {
        &self.more_info
    }

    pub fn body(&self) -> Value {
        serde_json::json!({
            "error": self.code,
            "message": self.message,
            "moreInfo": self.more_info,
            "status": "KO",
        })
    }
}

impl From<Code> for ApiError {
    fn from(code: Code) -> Self {
        Self::new(code)
    }
}

/// Seconds a client is asked to wait before retrying a call the store could not serve.
const STORE_RETRY_AFTER: u64 = 1;
/// Seconds a device is asked to wait while the disk is below its free-space floor: space comes
/// back by an operator's hand, not in a second.
const FULL_RETRY_AFTER: u64 = 300;

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        // The detail goes to the operator's log, never to the client. A full disk is logged
        // when the engine reads it, not once per refused request (the flood it stops).
        if let StoreError::Full(_) = error {
            return Self::new(Code::StoreUnavailable)
                .message("The store takes no new devices now; try again later")
                .info("retryAfter", FULL_RETRY_AFTER);
        }
        log::error!("store error: {error}");
        if error.is_transient() {
            Self::new(Code::StoreUnavailable)
                .message("The store cannot serve this now; try again")
                .info("retryAfter", STORE_RETRY_AFTER)
        } else {
            Self::new(Code::Internal)
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            if let Some(retry) = self.more_info.get("retryAfter").and_then(Value::as_u64) {
                response.insert_header((header::RETRY_AFTER, retry.to_string()));
            }
        }
        response.json(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_snake_case_and_has_a_message() {
        let codes = [
            Code::NoKeyProvided,
            Code::InvalidApiKey,
            Code::InsufficientPermissions,
            Code::CannotAccessApp,
            Code::InvalidJsonBody,
            Code::InvalidQuery,
            Code::SemverError,
            Code::MissingChannelOrVersion,
            Code::AppNotFound,
            Code::DeviceNotFound,
            Code::ChannelNotFound,
            Code::VersionNotFound,
            Code::ApiKeyNotFound,
            Code::NotFound,
            Code::MethodNotAllowed,
            Code::AppIdAlreadyExists,
            Code::VersionAlreadyExists,
            Code::CannotDeleteLinkedVersion,
            Code::RequestTimeout,
            Code::PayloadTooLarge,
            Code::UnsupportedMediaType,
            Code::TooManyRequests,
            Code::Internal,
            Code::StoreUnavailable,
        ];
        for code in codes {
            assert!(code
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(!code.message().is_empty());
        }
    }

    #[test]
    fn transient_store_errors_are_503_with_retry_after() {
        for error in [
            StoreError::Unavailable("No space left on device".into()),
            StoreError::Timeout("pool".into()),
            StoreError::Conflict("retries".into()),
        ] {
            let error = ApiError::from(error);
            let response = error.error_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
            let body = error.body();
            assert_eq!(body["error"], "store_unavailable");
            assert!(!body.to_string().contains("space"), "{body}");
        }
        let corrupt = ApiError::from(StoreError::Corrupt {
            tree: "devices",
            detail: "x".into(),
        });
        assert_eq!(
            corrupt.error_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let error = ApiError::from(StoreError::Engine("disk on fire at /secret/path".into()));
        let body = error.body();
        assert_eq!(body["error"], "internal_error");
        assert_eq!(body["message"], "Internal error");
        assert!(!body.to_string().contains("secret"));
    }

    #[test]
    fn field_errors_name_the_field() {
        let body =
            ApiError::invalid(Field::Limit, "an integer from 1 to 1000", Some(&"0".into())).body();
        assert_eq!(body["error"], "invalid_limit");
        assert_eq!(body["moreInfo"]["limit"], "0");
        assert_eq!(body["status"], "KO");
    }
}
