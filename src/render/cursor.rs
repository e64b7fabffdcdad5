//! Page cursors: `<updated_at>|<device_id>` of a page's last row.

use crate::ids;
use crate::model::Cursor;
use crate::timefmt::{format_micros, parse_rfc3339};

pub fn format_cursor(cursor: &Cursor) -> String {
    format!("{}|{}", format_micros(cursor.updated_at), cursor.device_id)
}

/// `<updated_at>|<device_id>`, split at the first `|` (a device id may contain `|`).
pub fn parse_cursor(text: &str) -> Option<Cursor> {
    let (time, device_id) = text.split_once('|')?;
    let updated_at = u64::try_from(parse_rfc3339(time)?).ok()?;
    let device_id = ids::normalize_device_id(device_id)?;
    Some(Cursor {
        updated_at,
        device_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for (micros, id) in [
            (0u64, "a"),
            (1_704_067_200_123_456, "dev|ice|"),
            (1_704_067_200_000_000, "é"),
        ] {
            let cursor = Cursor {
                updated_at: micros,
                device_id: id.to_owned(),
            };
            assert_eq!(parse_cursor(&format_cursor(&cursor)), Some(cursor));
        }
    }

    #[test]
    fn the_seed_cursor_parses() {
        let cursor = parse_cursor("2024-01-01T00:00:00Z|device_456").unwrap();
        assert_eq!(cursor.device_id, "device_456");
        assert_eq!(format_micros(cursor.updated_at), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for bad in [
            "",
            "|",
            "device_456",
            "2024-01-01T00:00:00Z|",
            "garbage|device",
            "1969-12-31T23:59:59Z|d",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
