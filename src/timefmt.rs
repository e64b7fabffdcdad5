//! Timestamps: stored as microseconds since the Unix epoch (`u64`), rendered as RFC 3339 in UTC
//! with a `Z` suffix, with no fraction when it is zero (as in the seed) and six digits otherwise.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = u64;

pub const MICROS_PER_SECOND: u64 = 1_000_000;

/// Renders `2024-01-01T00:00:00Z` or `2024-01-01T00:00:00.123456Z`.
pub fn format_micros(micros: Micros) -> String {
    let secs = (micros / MICROS_PER_SECOND) as i64;
    let frac = micros % MICROS_PER_SECOND;
    // Every u64 of microseconds is before year 586912, but `time` only goes to 9999.
    let Ok(dt) = OffsetDateTime::from_unix_timestamp(secs) else {
        return "9999-12-31T23:59:59.999999Z".to_owned();
    };
    let mut out = String::with_capacity(27);
    use std::fmt::Write;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if frac != 0 {
        let _ = write!(out, ".{frac:06}");
    }
    out.push('Z');
    out
}

/// Parses an RFC 3339 instant (any offset, any fraction up to nanoseconds) into signed
/// microseconds since the epoch; sub-microsecond digits are truncated.
pub fn parse_rfc3339(text: &str) -> Option<i128> {
    let dt = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(dt.unix_timestamp_nanos().div_euclid(1000))
}

/// The wall clock as microseconds, clamped to the representable range.
pub fn system_now() -> Micros {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    u64::try_from(nanos / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_have_no_fraction() {
        let micros = parse_rfc3339("2024-01-01T00:00:00Z").unwrap() as u64;
        assert_eq!(format_micros(micros), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn fractions_render_as_microseconds() {
        let micros = parse_rfc3339("2024-01-01T00:00:00.123456Z").unwrap() as u64;
        assert_eq!(format_micros(micros), "2024-01-01T00:00:00.123456Z");
        let micros = parse_rfc3339("2024-01-01T00:00:00.5Z").unwrap() as u64;
        assert_eq!(format_micros(micros), "2024-01-01T00:00:00.500000Z");
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let micros = parse_rfc3339("2024-01-01T02:00:00+02:00").unwrap() as u64;
        assert_eq!(format_micros(micros), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn nanoseconds_are_truncated() {
        let micros = parse_rfc3339("2024-01-01T00:00:00.1234569Z").unwrap() as u64;
        assert_eq!(format_micros(micros), "2024-01-01T00:00:00.123456Z");
    }

    #[test]
    fn garbage_is_rejected() {
        for text in [
            "",
            "yesterday",
            "2024-01-01",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }

    #[test]
    fn round_trip_over_many_instants() {
        for micros in [
            0u64,
            1,
            999_999,
            1_000_000,
            1_704_067_200_000_001,
            253_402_300_799_999_999,
        ] {
            let text = format_micros(micros);
            assert_eq!(parse_rfc3339(&text), Some(micros as i128), "{text}");
        }
    }
}
