//! Timestamps: stored as microseconds since the Unix epoch (`u64`), rendered as RFC 3339 in UTC
//! with a `Z` suffix, with no fraction when it is zero (as in the seed) and six digits otherwise.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = u64;

pub const MICROS_PER_SECOND: u64 = 1_000_000;

/// Renders `2024-01-01T00:00:00Z` or `2024-01-01T00:00:00.123456Z`.
pub fn format_micros(micros: Micros) -> String {
    Rendered::new(micros).as_str().to_owned()
}

/// A timestamp rendered on the stack, for the hot paths that write many (a page has one per
/// device): no allocation and no formatting machinery, and it serialises as a JSON string.
#[derive(Clone, Copy)]
pub struct Rendered {
    text: [u8; 27],
    len: u8,
}

/// The last second `Rendered` spells out: 9999-12-31T23:59:59Z. Later instants (a `u64` of
/// microseconds reaches year 586912) render as the last microsecond of 9999.
const LAST_SECOND: u64 = 253_402_300_799;

impl Rendered {
    pub fn new(micros: Micros) -> Self {
        let (secs, frac) = match micros / MICROS_PER_SECOND {
            secs if secs > LAST_SECOND => (LAST_SECOND, 999_999),
            secs => (secs, micros % MICROS_PER_SECOND),
        };
        let (year, month, day) = civil_from_days(secs / 86_400);
        let second_of_day = secs % 86_400;
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut value: u64| {
            for i in (at..at + width).rev() {
                text[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, second_of_day / 3600);
        put(14, 2, second_of_day / 60 % 60);
        put(17, 2, second_of_day % 60);
        let len = if frac == 0 {
            text[19] = b'Z';
            20
        } else {
            put(20, 6, frac);
            27
        };
        Self { text, len }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation were written.
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Rendered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// (year, month, day) of a day counted from 1970-01-01, in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
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
    use proptest::prelude::*;

    /// The same rendering through the `time` crate: the reference for `Rendered`.
    fn format_with_time(micros: Micros) -> String {
        let dt = OffsetDateTime::from_unix_timestamp((micros / MICROS_PER_SECOND) as i64).unwrap();
        let frac = micros % MICROS_PER_SECOND;
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        if frac != 0 {
            out.push_str(&format!(".{frac:06}"));
        }
        out.push('Z');
        out
    }

    proptest! {
        #[test]
        fn rendering_matches_the_time_crate(micros in 0..=(LAST_SECOND + 1) * MICROS_PER_SECOND - 1) {
            prop_assert_eq!(format_micros(micros), format_with_time(micros));
        }
    }

    #[test]
    fn calendar_edges_render_like_the_time_crate() {
        let days = |y: i32, m: u8, d: u8| {
            time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d)
                .unwrap()
                .to_julian_day() as u64
                - 2_440_588
        };
        for (y, m, d) in [
            (1970, 1, 1),
            (2000, 2, 29),
            (2100, 2, 28),
            (2100, 3, 1),
            (2400, 2, 29),
            (2024, 12, 31),
            (9999, 12, 31),
        ] {
            let micros = days(y, m, d) * 86_400 * MICROS_PER_SECOND + 1;
            assert_eq!(format_micros(micros), format_with_time(micros));
        }
    }

    #[test]
    fn instants_after_year_9999_render_as_its_last_microsecond() {
        assert_eq!(format_micros(u64::MAX), "9999-12-31T23:59:59.999999Z");
        assert_eq!(
            format_micros((LAST_SECOND + 1) * MICROS_PER_SECOND),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            format_micros(LAST_SECOND * MICROS_PER_SECOND),
            "9999-12-31T23:59:59Z"
        );
    }

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
