//! Timestamps and durations as people type them on the command line, and timestamps as the CLI
//! prints them. Owns the mapping between a wall-clock instant and a wire [`Ts`] (HLC:
//! milliseconds << 16 | logical); it never reads the clock.

use nacre_wire::Ts;
use std::time::Duration;

/// The largest millisecond count a [`Ts`] holds (48 bits).
pub const MAX_TS_MILLIS: u64 = (1 << (64 - Ts::LOGICAL_BITS)) - 1;

/// Why a timestamp or duration argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// Neither an RFC 3339 instant, integer milliseconds, nor `MS.LOGICAL`.
    #[error(
        "{input:?} is not a timestamp: give RFC 3339 (2026-11-26T10:00:00Z), integer milliseconds since the Unix epoch, or MS.LOGICAL ({reason})"
    )]
    Timestamp {
        /// What was typed.
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// The instant is before the Unix epoch or beyond the 48 bits of milliseconds a `ts` holds.
    #[error("{input:?} is outside the range of a timestamp (1970-01-01T00:00:00Z to {MAX_TS_MILLIS} ms)")]
    TimestampRange {
        /// What was typed.
        input: String,
    },
    /// The instant has a finer precision than a millisecond.
    #[error("{input:?} is finer than a millisecond; timestamps have millisecond precision")]
    SubMillisecond {
        /// What was typed.
        input: String,
    },
    /// Not a duration humantime understands.
    #[error("{input:?} is not a duration such as 30s, 15m, 7d or 1h30m ({reason})")]
    Duration {
        /// What was typed.
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// Zero, shorter than a millisecond, or not a whole number of milliseconds.
    #[error("{input:?} must be a positive whole number of milliseconds")]
    DurationPrecision {
        /// What was typed.
        input: String,
    },
}

/// Parses a timestamp: RFC 3339 with any offset (`2026-11-26T10:00:00Z`,
/// `2026-11-26T11:00:00.250+01:00`), integer milliseconds since the Unix epoch
/// (`1795687200000`), or the `MS.LOGICAL` form the CLI prints (`1795687200000.3`), which names
/// one exact hybrid timestamp. The first two give the start of the millisecond (logical 0).
pub fn parse_ts(input: &str) -> Result<Ts, ArgError> {
    parse(input).map(|(ts, _)| ts)
}

/// Parses an `--as-of` timestamp. A wall-clock instant or plain milliseconds reads as of the
/// *end* of that millisecond (logical 0xffff), so a write shown at that millisecond is seen
/// whatever its logical counter; `MS.LOGICAL` names the exact version boundary.
pub fn parse_as_of(input: &str) -> Result<Ts, ArgError> {
    match parse(input)? {
        (ts, Precision::Exact) => Ok(ts),
        (ts, Precision::Millisecond) => Ok(Ts(ts.0 | 0xffff)),
    }
}

/// Whether a parsed timestamp named its logical counter.
enum Precision {
    Millisecond,
    Exact,
}

fn parse(input: &str) -> Result<(Ts, Precision), ArgError> {
    let text = input.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((ms, logical)) = text.split_once('.')
        && digits(ms)
        && digits(logical)
    {
        let millis = parse_millis(input, ms)?;
        let logical: u16 = logical.parse().map_err(|e: std::num::ParseIntError| ArgError::Timestamp {
            input: input.to_owned(),
            reason: format!("logical part: {e}"),
        })?;
        return Ok((Ts(Ts::from_millis(millis).0 | u64::from(logical)), Precision::Exact));
    }
    if digits(text) {
        return Ok((Ts::from_millis(parse_millis(input, text)?), Precision::Millisecond));
    }
    let instant: jiff::Timestamp = text
        .parse()
        .map_err(|e: jiff::Error| ArgError::Timestamp { input: input.to_owned(), reason: e.to_string() })?;
    if instant.subsec_nanosecond() % 1_000_000 != 0 {
        return Err(ArgError::SubMillisecond { input: input.to_owned() });
    }
    let millis =
        u64::try_from(instant.as_millisecond()).map_err(|_| ArgError::TimestampRange { input: input.to_owned() })?;
    if millis > MAX_TS_MILLIS {
        return Err(ArgError::TimestampRange { input: input.to_owned() });
    }
    Ok((Ts::from_millis(millis), Precision::Millisecond))
}

fn parse_millis(input: &str, digits: &str) -> Result<u64, ArgError> {
    let millis: u64 = digits.parse().map_err(|_| ArgError::TimestampRange { input: input.to_owned() })?;
    if millis > MAX_TS_MILLIS {
        return Err(ArgError::TimestampRange { input: input.to_owned() });
    }
    Ok(millis)
}

/// Parses a duration (`30s`, `15m`, `7d`, `1h 30m`, `250ms`) into whole milliseconds, at least
/// one.
pub fn parse_duration_ms(input: &str) -> Result<u64, ArgError> {
    duration_ms(input, parse_duration(input)?)
}

/// Parses a duration as [`parse_duration_ms`] does, or a zero one (`0`, `0s`) as 0: for
/// settings where 0 means none, such as a table's rollback window.
pub fn parse_duration_or_zero_ms(input: &str) -> Result<u64, ArgError> {
    let duration = parse_duration(input)?;
    if duration.is_zero() {
        return Ok(0);
    }
    duration_ms(input, duration)
}

fn parse_duration(input: &str) -> Result<Duration, ArgError> {
    humantime::parse_duration(input.trim())
        .map_err(|e| ArgError::Duration { input: input.to_owned(), reason: e.to_string() })
}

fn duration_ms(input: &str, duration: Duration) -> Result<u64, ArgError> {
    if duration.is_zero() || !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(ArgError::DurationPrecision { input: input.to_owned() });
    }
    u64::try_from(duration.as_millis()).map_err(|_| ArgError::DurationPrecision { input: input.to_owned() })
}

/// A [`Ts`]'s wall-clock instant in RFC 3339, UTC, with milliseconds only when non-zero.
pub fn rfc3339(ts: Ts) -> String {
    rfc3339_millis(ts.millis())
}

/// Unix milliseconds in RFC 3339, UTC; past year 9999, the plain milliseconds (which
/// [`parse_ts`] also reads back).
pub fn rfc3339_millis(millis: u64) -> String {
    match i64::try_from(millis).ok().and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()) {
        Some(instant) => instant.to_string(),
        None => millis.to_string(),
    }
}

/// Milliseconds as a short duration (`7days`, `15m`), for table settings.
pub fn human_ms(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_26_10H_MS: u64 = 1_795_687_200_000;

    #[test]
    fn rfc3339_and_millis_name_the_same_instant() {
        assert_eq!(parse_ts("2026-11-26T10:00:00Z"), Ok(Ts::from_millis(NOV_26_10H_MS)));
        assert_eq!(parse_ts("1795687200000"), Ok(Ts::from_millis(NOV_26_10H_MS)));
        assert_eq!(parse_ts("2026-11-26T11:00:00+01:00"), Ok(Ts::from_millis(NOV_26_10H_MS)));
        assert_eq!(parse_ts("2026-11-26T10:00:00.250Z"), Ok(Ts::from_millis(NOV_26_10H_MS + 250)));
        assert_eq!(parse_ts(" 0 "), Ok(Ts(0)));
    }

    #[test]
    fn ms_dot_logical_names_one_hybrid_timestamp() {
        assert_eq!(parse_ts("1795687200000.7"), Ok(Ts((NOV_26_10H_MS << 16) | 7)));
        assert_eq!(parse_ts(&Ts((5 << 16) | 65535).to_string()), Ok(Ts((5 << 16) | 65535)));
        assert!(matches!(parse_ts("5.65536"), Err(ArgError::Timestamp { .. })));
    }

    #[test]
    fn timestamps_out_of_range_or_too_fine_are_refused() {
        assert!(matches!(parse_ts("1969-12-31T23:59:59Z"), Err(ArgError::TimestampRange { .. })));
        assert!(matches!(parse_ts(&(MAX_TS_MILLIS + 1).to_string()), Err(ArgError::TimestampRange { .. })));
        assert!(matches!(parse_ts("99999999999999999999999"), Err(ArgError::TimestampRange { .. })));
        assert_eq!(parse_ts(&MAX_TS_MILLIS.to_string()), Ok(Ts::from_millis(MAX_TS_MILLIS)));
        assert!(matches!(parse_ts("2026-11-26T10:00:00.0001Z"), Err(ArgError::SubMillisecond { .. })));
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        for bad in ["", "yesterday", "2026-11-26", "-5", "1.2.3", "2026-11-26T10:00:00", "12ms"] {
            assert!(matches!(parse_ts(bad), Err(ArgError::Timestamp { .. })), "{bad:?} parsed");
        }
        let message = parse_ts("yesterday").expect_err("not a timestamp").to_string();
        assert!(message.contains("RFC 3339"), "{message}");
    }

    #[test]
    fn as_of_covers_the_whole_millisecond_unless_exact() {
        assert_eq!(parse_as_of("2026-11-26T10:00:00Z"), Ok(Ts((NOV_26_10H_MS << 16) | 0xffff)));
        assert_eq!(parse_as_of("1795687200000"), Ok(Ts((NOV_26_10H_MS << 16) | 0xffff)));
        assert_eq!(parse_as_of("1795687200000.2"), Ok(Ts((NOV_26_10H_MS << 16) | 2)));
    }

    #[test]
    fn durations_are_whole_positive_milliseconds() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("15m"), Ok(900_000));
        assert_eq!(parse_duration_ms("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration_ms("1h 30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert!(matches!(parse_duration_ms("0s"), Err(ArgError::DurationPrecision { .. })));
        assert!(matches!(parse_duration_ms("1500us"), Err(ArgError::DurationPrecision { .. })));
        assert!(matches!(parse_duration_ms("30"), Err(ArgError::Duration { .. })));
        assert!(matches!(parse_duration_ms("soon"), Err(ArgError::Duration { .. })));
    }

    #[test]
    fn a_window_may_also_be_zero() {
        assert_eq!(parse_duration_or_zero_ms("24h"), Ok(86_400_000));
        assert_eq!(parse_duration_or_zero_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_or_zero_ms("0"), Ok(0));
        assert_eq!(parse_duration_or_zero_ms("0s"), Ok(0));
        assert!(matches!(parse_duration_or_zero_ms("1500us"), Err(ArgError::DurationPrecision { .. })));
        assert!(matches!(parse_duration_or_zero_ms("30"), Err(ArgError::Duration { .. })));
    }

    #[test]
    fn printed_instants_parse_back() {
        assert_eq!(rfc3339(Ts::from_millis(NOV_26_10H_MS)), "2026-11-26T10:00:00Z");
        assert_eq!(rfc3339_millis(NOV_26_10H_MS + 5), "2026-11-26T10:00:00.005Z");
        // jiff stops before year 10000, short of the 48-bit limit (year 10889): such a ts
        // prints as plain milliseconds, which parse back too.
        for ms in [0, 1, NOV_26_10H_MS + 999, 4_102_444_800_000] {
            assert_eq!(parse_ts(&rfc3339_millis(ms)), Ok(Ts::from_millis(ms)));
        }
        assert_eq!(parse_ts(&rfc3339_millis(MAX_TS_MILLIS)), Ok(Ts::from_millis(MAX_TS_MILLIS)));
        assert_eq!(human_ms(7 * 86_400_000), "7days");
    }
}
