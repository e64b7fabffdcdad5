//! Request input as named fields, from a JSON object body or a query string, with one way of
//! reporting each field's problems: `missing_<field>` or `invalid_<field>`, the codes of
//! [`Field`]'s one list. Parsing by hand rather than through typed extractors is what lets every field
//! answer with its own code, and lets authentication run before the body is read.

use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{Bytes, Payload};
use serde_json::{Map, Value};

use crate::error::{ApiError, Code, Field};
use crate::ids;
use crate::timefmt::{parse_rfc3339, Micros};

pub struct Input {
    fields: Map<String, Value>,
}

pub fn missing(field: Field) -> ApiError {
    ApiError::missing(field)
}

pub fn invalid(field: Field, expected: &str, value: Option<&Value>) -> ApiError {
    ApiError::invalid(field, expected, value)
}

/// Reads a body of at most `limit` bytes: 415 when it is encoded, 413 above the limit, both
/// checked before reading; 408 when it has not all arrived within `timeout`.
pub async fn read_body(
    headers: &HeaderMap,
    payload: Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    check_identity_encoding(headers)?;
    let too_large = || ApiError::new(Code::PayloadTooLarge).info("limit", limit);
    if announced.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(timeout, payload.to_bytes_limited(limit));
    let Ok(read) = read.await else {
        return Err(ApiError::new(Code::RequestTimeout).info("timeout_seconds", timeout.as_secs()));
    };
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        // The body limit is the outer error; the inner one is the connection's.
        Ok(Err(_)) => {
            Err(ApiError::new(Code::InvalidJsonBody).message("The request body could not be read"))
        }
        Err(_) => Err(too_large()),
    }
}

/// 415 for an encoded body, before it is read: it could only fail later, as a 400.
fn check_identity_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        // An unreadable value is no identity either.
        let encoding = encoding.to_str().map_or_else(
            |_| "(unreadable)".to_owned(),
            |e| e.trim().to_ascii_lowercase(),
        );
        if !encoding.is_empty() && encoding != "identity" {
            return Err(ApiError::new(Code::UnsupportedMediaType)
                .message("Request bodies are read as sent: no content-encoding")
                .info("content_encoding", encoding));
        }
    }
    Ok(())
}

/// 415 for a body declared as something other than JSON, or encoded (`content-encoding:
/// gzip`, say: it would otherwise be read as JSON and fail as a 400); a body with no content type
/// is tried.
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    check_identity_encoding(headers)?;
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::new(Code::UnsupportedMediaType).info("content_type", essence))
    }
}

/// Parses a JSON body into a value, as `invalid_json_body` when it is not JSON.
pub fn parse_json(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    check_json_content_type(headers)?;
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(Code::InvalidJsonBody).message(format!("Invalid JSON body: {e}"))
    })
}

impl Input {
    pub fn from_map(fields: Map<String, Value>) -> Self {
        Self { fields }
    }

    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).map_err(|_| ApiError::new(Code::InvalidQuery))?;
        let mut fields = Map::new();
        for (name, value) in pairs {
            if fields.insert(name.clone(), Value::String(value)).is_some() {
                return Err(ApiError::new(Code::InvalidQuery)
                    .message(format!("Query parameter {name} is given more than once"))
                    .info("parameter", name));
            }
        }
        Ok(Self { fields })
    }

    /// A JSON object body.
    pub fn from_json(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        match parse_json(headers, body)? {
            Value::Object(fields) => Ok(Self { fields }),
            _ => Err(ApiError::new(Code::InvalidJsonBody)
                .message("Invalid JSON body: expected an object")),
        }
    }

    /// The JSON body when there is one, else the query string (`DELETE` accepts both).
    pub fn from_body_or_query(
        headers: &HeaderMap,
        body: &[u8],
        query: &str,
    ) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            Self::from_query(query)
        } else {
            Self::from_json(headers, body)
        }
    }

    /// The raw value; JSON `null` counts as present.
    pub fn raw(&self, field: Field) -> Option<&Value> {
        self.fields.get(field.key())
    }

    /// A string field; absent and `null` are `None`, any other type is `invalid_<field>`.
    pub fn str(&self, field: Field) -> Result<Option<&str>, ApiError> {
        match self.fields.get(field.key()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(invalid(field, "expected a string", Some(other))),
        }
    }

    /// A string field read by `parse`, `invalid_<field>` (saying `expected`) when it does not.
    pub fn parsed<T>(
        &self,
        field: Field,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.str(field)? {
            None => Ok(None),
            Some(text) => parse(text)
                .map(Some)
                .ok_or_else(|| invalid(field, expected, self.raw(field))),
        }
    }

    pub fn required_str(&self, field: Field) -> Result<&str, ApiError> {
        self.str(field)?.ok_or_else(|| missing(field))
    }

    /// A boolean field: JSON `true`/`false`, or the strings `true`/`false` (query strings).
    pub fn bool(&self, field: Field) -> Result<Option<bool>, ApiError> {
        match self.fields.get(field.key()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(Value::String(text)) if text == "true" => Ok(Some(true)),
            Some(Value::String(text)) if text == "false" => Ok(Some(false)),
            Some(other) => Err(invalid(field, "expected true or false", Some(other))),
        }
    }

    /// A name (channel, bundle): 1 to 128 bytes without control characters.
    pub fn name(&self, field: Field) -> Result<Option<String>, ApiError> {
        match self.str(field)? {
            None => Ok(None),
            Some(name) if ids::is_valid_name(name) => Ok(Some(name.to_owned())),
            Some(_) => Err(invalid(
                field,
                "1 to 128 bytes without control characters",
                self.raw(field),
            )),
        }
    }

    pub fn required_name(&self, field: Field) -> Result<String, ApiError> {
        self.name(field)?.ok_or_else(|| missing(field))
    }

    pub fn app_id(&self) -> Result<String, ApiError> {
        let app_id = self.required_str(Field::AppId)?;
        check_app_id(app_id)?;
        Ok(app_id.to_owned())
    }

    pub fn device_id(&self) -> Result<Option<String>, ApiError> {
        match self.str(Field::DeviceId)? {
            None => Ok(None),
            Some(device_id) => ids::normalize_device_id(device_id)
                .map(Some)
                .ok_or_else(|| {
                    invalid(
                        Field::DeviceId,
                        "1 to 128 bytes of UTF-8 without control characters",
                        self.raw(Field::DeviceId),
                    )
                }),
        }
    }

    pub fn required_device_id(&self) -> Result<String, ApiError> {
        self.device_id()?.ok_or_else(|| missing(Field::DeviceId))
    }

    /// An RFC 3339 instant, as microseconds; instants before 1970 are not representable.
    pub fn instant(&self, field: Field) -> Result<Option<Micros>, ApiError> {
        self.parsed(field, "expected an RFC 3339 instant", |text| {
            parse_rfc3339(text).and_then(|micros| u64::try_from(micros).ok())
        })
    }
}

pub fn check_app_id(app_id: &str) -> Result<(), ApiError> {
    if ids::is_valid_app_id(app_id) {
        Ok(())
    } else {
        Err(invalid(
            Field::AppId,
            "1 to 128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit",
            Some(&Value::String(app_id.to_owned())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_its_own_snake_case_codes() {
        let mut codes = std::collections::HashSet::new();
        for field in Field::ALL {
            for code in [field.missing_code(), field.invalid_code()] {
                assert!(
                    code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{code}"
                );
                assert!(codes.insert(code), "{code} twice");
            }
        }
        assert_eq!(Field::DefaultChannel.key(), "defaultChannel");
        assert_eq!(
            Field::DefaultChannel.invalid_code(),
            "invalid_default_channel"
        );
    }

    #[test]
    fn query_strings_reject_repeated_parameters() {
        assert!(Input::from_query("app_id=a&limit=5").is_ok());
        assert_eq!(
            Input::from_query("app_id=a&app_id=b").err().unwrap().code(),
            "invalid_query"
        );
    }

    #[test]
    fn fields_report_their_own_errors() {
        let input = Input::from_query("app_id=bad%20id&device_id=&public=maybe").unwrap();
        assert_eq!(input.app_id().unwrap_err().code(), "invalid_app_id");
        assert_eq!(input.device_id().unwrap_err().code(), "invalid_device_id");
        assert_eq!(
            input.bool(Field::Public).unwrap_err().code(),
            "invalid_public"
        );
        assert_eq!(
            input.required_str(Field::Name).unwrap_err().code(),
            "missing_name"
        );
    }

    #[test]
    fn non_json_content_types_are_refused() {
        let mut headers = HeaderMap::new();
        assert!(check_json_content_type(&headers).is_ok());
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(check_json_content_type(&headers).is_ok());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            check_json_content_type(&headers).unwrap_err().code(),
            "unsupported_media_type"
        );
        let mut encoded = HeaderMap::new();
        encoded.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        encoded.insert(header::CONTENT_ENCODING, "identity".parse().unwrap());
        assert!(check_json_content_type(&encoded).is_ok());
        encoded.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(
            check_json_content_type(&encoded).unwrap_err().code(),
            "unsupported_media_type"
        );
    }
}
