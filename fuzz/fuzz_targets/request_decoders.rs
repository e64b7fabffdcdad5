//! Every decoder a request goes through, fed arbitrary bytes: JSON bodies (as an object, as
//! plugin device bodies), query strings, cursors, RFC 3339 instants, durations and sizes, the
//! configuration file and the store's key and value codecs. None may panic.
//!
//!     cargo fuzz run request_decoders -- -max_total_time=60

#![no_main]

use actix_web::http::header::HeaderMap;
use libfuzzer_sys::fuzz_target;

use device_registry::config::{ByteSize, Config, Duration};
use device_registry::error::Field;
use device_registry::model::Overrides;
use device_registry::render::cursor::parse_cursor;
use device_registry::routes::input::Input;
use device_registry::routes::plugin::parse_device_body;
use device_registry::store::keys;
use device_registry::timefmt::parse_rfc3339;

fuzz_target!(|data: &[u8]| {
    let headers = HeaderMap::new();
    if let Ok(input) = Input::from_json(&headers, data) {
        let _ = parse_device_body(&input);
        let _ = input.app_id();
        let _ = input.device_id();
        let _ = input.instant(Field::ExpiresAt);
        let _ = input.bool(Field::Public);
    }
    let _ = keys::split_app_scoped(data);
    let _ = keys::split_device_time(data);
    let _ = keys::decode_value::<Overrides>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(input) = Input::from_query(text) {
            let _ = input.app_id();
            let _ = input.device_id();
        }
        let _ = parse_cursor(text);
        let _ = parse_rfc3339(text);
        let _ = text.parse::<Duration>();
        let _ = text.parse::<ByteSize>();
        let _ = Config::from_toml(text, std::path::Path::new("fuzz.toml"));
    }
});
