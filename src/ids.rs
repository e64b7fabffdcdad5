//! Identifier rules of the contract (spec section 2, "Identifiers").

/// `app_id`: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn is_valid_app_id(app_id: &str) -> bool {
    let bytes = app_id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `device_id`: lowercased, then 1 to 128 bytes of UTF-8 without control characters.
/// Devices send upper-case UUIDs on some platforms; lowercasing everywhere makes them one device.
pub fn normalize_device_id(device_id: &str) -> Option<String> {
    let lowered = device_id.to_lowercase();
    (!lowered.is_empty() && lowered.len() <= 128 && !has_control(&lowered)).then_some(lowered)
}

/// Channel and bundle names: 1 to 128 bytes, no control characters.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && !has_control(name)
}

/// `custom_id`: trimmed, then 0 to 256 bytes without control characters.
pub fn normalize_custom_id(custom_id: &str) -> Option<String> {
    let trimmed = custom_id.trim();
    (trimmed.len() <= 256 && !has_control(trimmed)).then(|| trimmed.to_owned())
}

pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_follow_the_contract() {
        for ok in [
            "app_123",
            "com.example.app",
            "A",
            "9lives",
            &"a".repeat(128),
        ] {
            assert!(is_valid_app_id(ok), "{ok}");
        }
        for bad in [
            "",
            ".app",
            "_app",
            "-app",
            "app id",
            "app/1",
            "app\u{ff}",
            "é",
            &"a".repeat(129),
        ] {
            assert!(!is_valid_app_id(bad), "{bad}");
        }
    }

    #[test]
    fn device_ids_are_lowercased_and_bounded() {
        assert_eq!(normalize_device_id("ABC-DEF").as_deref(), Some("abc-def"));
        assert_eq!(normalize_device_id("dev|ice").as_deref(), Some("dev|ice"));
        assert_eq!(normalize_device_id(""), None);
        assert_eq!(normalize_device_id("a\nb"), None);
        assert_eq!(normalize_device_id(&"x".repeat(129)), None);
        assert!(normalize_device_id(&"x".repeat(128)).is_some());
    }

    #[test]
    fn custom_ids_are_trimmed() {
        assert_eq!(
            normalize_custom_id("  user 42 ").as_deref(),
            Some("user 42")
        );
        assert_eq!(normalize_custom_id("").as_deref(), Some(""));
        assert_eq!(normalize_custom_id(&"x".repeat(257)), None);
    }
}
