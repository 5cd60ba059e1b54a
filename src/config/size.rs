//! Sizes in settings: `2G` in a variable, `"2G"` or a byte count in the file.

use serde::Deserialize;

use super::ConfigError;

/// A size in the file: a byte count (`max_upload_bytes = 2147483648`) or the same text as the
/// variable takes (`max_upload_bytes = "2G"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum FileSize {
    Bytes(u64),
    Text(String),
}

/// A byte size: a plain number, or with a K/M/G/T suffix (binary multiples: 2G = 2 GiB).
pub(super) fn parse_size(name: &str, value: &str) -> Result<u64, ConfigError> {
    let v = value.trim();
    let (digits, shift) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (v, 0),
        Some((i, _)) => {
            let unit = v[i..]
                .trim()
                .trim_end_matches(['b', 'B'])
                .trim_end_matches(['i']);
            let shift = match unit.to_ascii_uppercase().as_str() {
                "" => 0,
                "K" => 10,
                "M" => 20,
                "G" => 30,
                "T" => 40,
                _ => return Err(ConfigError::new(name, format!("{value:?}: unknown unit"))),
            };
            (&v[..i], shift)
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| ConfigError::new(name, format!("{value:?} is not a size such as 2G")))
}
