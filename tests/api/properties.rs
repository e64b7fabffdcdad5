//! Properties of the parsers and codecs, over generated inputs: round trips hold, byte order is
//! the intended order, and no input makes a parser panic.

use device_registry::config::{ByteSize, Duration};
use device_registry::ids;
use device_registry::model::Cursor;
use device_registry::render::cursor::{format_cursor, parse_cursor};
use device_registry::store::keys;
use device_registry::timefmt::{format_micros, parse_rfc3339};
use proptest::prelude::*;

/// Up to 9999-12-31T23:59:59.999999Z, the last instant RFC 3339 can write.
const MAX_MICROS: u64 = 253_402_300_799_999_999;

fn app_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,40}"
}

fn device_id() -> impl Strategy<Value = String> {
    any::<String>().prop_filter_map("not a device id", |s| ids::normalize_device_id(&s))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn cursors_round_trip(updated_at in 0..=MAX_MICROS, device_id in device_id()) {
        let cursor = Cursor { updated_at, device_id };
        prop_assert_eq!(parse_cursor(&format_cursor(&cursor)), Some(cursor));
    }

    #[test]
    fn cursor_parsing_never_panics(text in any::<String>()) {
        let _ = parse_cursor(&text);
    }

    #[test]
    fn timestamps_round_trip(micros in 0..=MAX_MICROS) {
        prop_assert_eq!(parse_rfc3339(&format_micros(micros)), Some(micros as i128));
    }

    #[test]
    fn durations_parse_exactly(n in 0u64..1_000_000, unit in prop::sample::select(vec![("ms", 1_000u64), ("s", 1_000_000), ("m", 60_000_000), ("h", 3_600_000_000), ("d", 86_400_000_000)])) {
        let parsed: Duration = format!("{n}{}", unit.0).parse().unwrap();
        prop_assert_eq!(parsed.micros(), n * unit.1);
    }

    #[test]
    fn duration_and_size_parsing_never_panic(text in any::<String>()) {
        let _ = text.parse::<Duration>();
        let _ = text.parse::<ByteSize>();
    }

    #[test]
    fn device_ids_normalise_idempotently(text in any::<String>()) {
        if let Some(id) = ids::normalize_device_id(&text) {
            prop_assert!(!id.is_empty() && id.len() <= 128);
            prop_assert_eq!(ids::normalize_device_id(&id), Some(id.clone()));
        }
    }

    #[test]
    fn app_id_validation_matches_the_contract(text in any::<String>()) {
        let expected = !text.is_empty()
            && text.len() <= 128
            && text.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
        prop_assert_eq!(ids::is_valid_app_id(&text), expected);
    }

    #[test]
    fn app_scoped_keys_round_trip_and_order_by_name(app in app_id(), a in any::<String>(), b in any::<String>()) {
        let (ka, kb) = (keys::app_scoped(&app, &a), keys::app_scoped(&app, &b));
        prop_assert_eq!(keys::split_app_scoped(&ka), Some((app.as_str(), a.as_str())));
        prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
    }

    #[test]
    fn time_keys_round_trip_and_order_by_time_then_id(
        app in app_id(),
        ta in any::<u64>(), a in any::<String>(),
        tb in any::<u64>(), b in any::<String>(),
    ) {
        let (ka, kb) = (keys::device_time(&app, ta, &a), keys::device_time(&app, tb, &b));
        prop_assert_eq!(keys::split_device_time(&ka), Some((app.as_str(), ta, a.as_str())));
        prop_assert_eq!(ka.cmp(&kb), (ta, &a).cmp(&(tb, &b)));
    }

    #[test]
    fn keys_of_different_apps_never_interleave(a in app_id(), b in app_id(), x in any::<String>(), t in any::<u64>()) {
        prop_assume!(a != b);
        let end = keys::prefix_end(&keys::app_prefix(&a)).unwrap();
        let start = keys::app_prefix(&a);
        for key in [keys::app_scoped(&b, &x), keys::device_time(&b, t, &x)] {
            prop_assert!(key < start || key >= end);
        }
    }

    #[test]
    fn key_decoders_never_panic(bytes in any::<Vec<u8>>()) {
        let _ = keys::split_app_scoped(&bytes);
        let _ = keys::split_device_time(&bytes);
        let _ = keys::decode_value::<device_registry::model::Overrides>(&bytes);
    }
}
