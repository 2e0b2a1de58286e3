//! Byte sizes as people type them on the command line: `1073741824`, `64MiB`, `1GiB`, `500MB`.

/// Units by suffix (matched case-insensitively): binary `KiB` to `TiB`, decimal `KB` to `TB`,
/// and `B`.
const UNITS: [(&str, u64); 9] = [
    ("b", 1),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
];

/// Why a size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a size such as 1073741824, 64MiB, 1GiB or 500MB ({reason})")]
pub struct SizeError {
    /// What was typed.
    pub input: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Parses a whole number of bytes with an optional unit suffix.
pub fn parse_bytes(input: &str) -> Result<usize, SizeError> {
    let error = |reason| SizeError { input: input.to_owned(), reason };
    let text = input.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| error("no whole number"))?;
    let suffix = suffix.trim().to_ascii_lowercase();
    let unit = match suffix.as_str() {
        "" => 1,
        s => UNITS.iter().find(|(name, _)| *name == s).map(|(_, unit)| *unit).ok_or_else(|| error("unknown unit"))?,
    };
    let bytes = number.checked_mul(unit).ok_or_else(|| error("too large"))?;
    usize::try_from(bytes).map_err(|_| error("too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("1 gib"), Ok(1 << 30));
        assert_eq!(parse_bytes("500MB"), Ok(500_000_000));
        assert_eq!(parse_bytes("7b"), Ok(7));
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in ["", "MiB", "1.5GiB", "-1", "1 parsec", "99999999999TiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }
}
