//! JSON written straight into a response buffer, for the answers that carry many records (a
//! page of devices): serde_json escapes every key and value byte by byte through its generic
//! writer, which was a third of a page's instructions (callgrind). The output is byte for byte
//! what serde_json writes; the tests of each writer compare the two.

/// A JSON string. Values that need no escaping (nearly all) are copied whole; the others go
/// through serde_json's escaping.
pub fn string(out: &mut Vec<u8>, value: &str) {
    if value
        .bytes()
        .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\')
    {
        out.reserve(value.len() + 2);
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

/// A string, or `null`.
pub fn optional_string(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => string(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

pub fn number(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A number, or `null`.
pub fn optional_number(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(value) => number(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

pub fn boolean(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn strings_are_written_as_serde_json_writes_them(value in any::<String>()) {
            let mut out = Vec::new();
            string(&mut out, &value);
            prop_assert_eq!(out, serde_json::to_vec(&value).unwrap());
        }

        #[test]
        fn numbers_are_written_as_serde_json_writes_them(value in any::<Option<u64>>()) {
            let mut out = Vec::new();
            optional_number(&mut out, value);
            prop_assert_eq!(out, serde_json::to_vec(&value).unwrap());
        }
    }

    #[test]
    fn control_characters_quotes_and_backslashes_are_escaped() {
        let mut out = Vec::new();
        string(&mut out, "a\"b\\c\u{1}\n\u{7f}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\u0001\\n\u{7f}é\"".as_bytes());
    }
}
