//! Reading RESP requests: multibulk (`*N\r\n$len\r\narg\r\n...`) and inline (a line of
//! whitespace-separated, optionally quoted, words), as Redis reads them.
//!
//! [`parse`] looks at the bytes received so far and returns the next whole command and the bytes
//! it used, `None` if more bytes are needed, or a [`ProtocolError`] once the bytes can no longer
//! be a valid request. Every length is checked against [`RespLimits`] before anything is
//! allocated, and an incomplete request is refused as soon as it is known to exceed a limit, so a
//! client cannot make the server buffer more than the limits allow.

/// Limits on one request. A request over a limit is a protocol error, which closes the
/// connection (as Redis does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// Most arguments in one command, name included.
    pub max_args: usize,
    /// Largest bulk argument, bytes.
    pub max_bulk_bytes: usize,
    /// Longest inline command line, bytes.
    pub max_inline_bytes: usize,
    /// Most bytes one command may occupy on the wire, all arguments together.
    pub max_command_bytes: usize,
}

/// Why the bytes cannot be a request. The message is what Redis says (after `-ERR `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An argument count that is not a number or over the limit.
    #[error("Protocol error: invalid multibulk length")]
    MultibulkLength,
    /// A bulk length that is not a number or over the limit.
    #[error("Protocol error: invalid bulk length")]
    BulkLength,
    /// Something other than `$` where a bulk argument must start.
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// A count or length line with no end in sight.
    #[error("Protocol error: too big {0} count string")]
    CountLine(&'static str),
    /// An inline line over the limit.
    #[error("Protocol error: too big inline request")]
    InlineTooLong,
    /// An inline line with an unclosed quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A bulk argument not followed by CRLF.
    #[error("Protocol error: bulk argument not terminated by CRLF")]
    BulkTerminator,
    /// A command whose arguments together exceed the limit.
    #[error("Protocol error: request of {0} bytes is over the limit of {1}")]
    CommandTooLarge(usize, usize),
}

/// One command: its arguments, name first.
pub type Args = Vec<Vec<u8>>;

/// The longest count or length line Redis accepts before calling it too big.
const MAX_COUNT_LINE_BYTES: usize = 64 << 10;

/// The next command in `buf` and how many bytes it used, or `None` if more bytes are needed.
/// An empty command (`*0`, a blank line) comes back as an empty `Args`; Redis skips those.
pub fn parse(buf: &[u8], limits: &RespLimits) -> Result<Option<(Args, usize)>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

/// The line starting at `at`, without its CRLF, and the offset after it.
fn line<'a>(buf: &'a [u8], at: usize, what: &'static str) -> Result<Option<(&'a [u8], usize)>, ProtocolError> {
    let rest = &buf[at..];
    match rest.iter().position(|b| *b == b'\r') {
        Some(cr) if cr + 1 < rest.len() => Ok(Some((&rest[..cr], at + cr + 2))),
        Some(cr) if cr > MAX_COUNT_LINE_BYTES => Err(ProtocolError::CountLine(what)),
        Some(_) => Ok(None),
        None if rest.len() > MAX_COUNT_LINE_BYTES => Err(ProtocolError::CountLine(what)),
        None => Ok(None),
    }
}

fn number(digits: &[u8]) -> Option<i64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn parse_multibulk(buf: &[u8], limits: &RespLimits) -> Result<Option<(Args, usize)>, ProtocolError> {
    let Some((count, mut at)) = line(buf, 1, "mbulk")? else { return Ok(None) };
    let count = number(count).ok_or(ProtocolError::MultibulkLength)?;
    if count <= 0 {
        return Ok(Some((Vec::new(), at)));
    }
    let count = usize::try_from(count).map_err(|_| ProtocolError::MultibulkLength)?;
    if count > limits.max_args {
        return Err(ProtocolError::MultibulkLength);
    }
    let mut args: Args = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        match buf.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(other) => return Err(ProtocolError::ExpectedBulk(char::from(*other))),
        }
        let Some((len, start)) = line(buf, at + 1, "bulk")? else { return Ok(None) };
        let len = number(len).ok_or(ProtocolError::BulkLength)?;
        let len = usize::try_from(len).map_err(|_| ProtocolError::BulkLength)?;
        if len > limits.max_bulk_bytes {
            return Err(ProtocolError::BulkLength);
        }
        let end = start + len;
        if end > limits.max_command_bytes {
            return Err(ProtocolError::CommandTooLarge(end, limits.max_command_bytes));
        }
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError::BulkTerminator);
        }
        args.push(buf[start..end].to_vec());
        at = end + 2;
    }
    Ok(Some((args, at)))
}

fn parse_inline(buf: &[u8], limits: &RespLimits) -> Result<Option<(Args, usize)>, ProtocolError> {
    let Some(newline) = buf.iter().position(|b| *b == b'\n') else {
        return if buf.len() > limits.max_inline_bytes { Err(ProtocolError::InlineTooLong) } else { Ok(None) };
    };
    if newline > limits.max_inline_bytes {
        return Err(ProtocolError::InlineTooLong);
    }
    let mut text = &buf[..newline];
    if let [head @ .., b'\r'] = text {
        text = head;
    }
    let args = split_args(text)?;
    if args.len() > limits.max_args {
        return Err(ProtocolError::MultibulkLength);
    }
    Ok(Some((args, newline + 1)))
}

/// Splits an inline line into words as Redis's `sdssplitargs` does: whitespace separates;
/// "double quotes" take `\n \r \t \b \a \\ \" \xHH` escapes; 'single quotes' take `\'`; a quote
/// opens anywhere in a word, and a closing quote must be followed by whitespace or the end.
pub fn split_args(line: &[u8]) -> Result<Args, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        loop {
            let Some(&c) = line.get(i) else {
                if quote.is_some() {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                break;
            };
            match quote {
                Some(q) if c == q => {
                    if line.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                }
                Some(b'"') if c == b'\\' => {
                    let (byte, used) = escape(&line[i + 1..]);
                    word.push(byte);
                    i += 1 + used;
                    continue;
                }
                Some(_) if c == b'\\' && line.get(i + 1) == Some(&b'\'') => {
                    word.push(b'\'');
                    i += 2;
                    continue;
                }
                Some(_) => word.push(c),
                None if c.is_ascii_whitespace() => break,
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None => word.push(c),
            }
            i += 1;
        }
        args.push(word);
    }
}

/// The byte a backslash escape inside double quotes stands for, and how many bytes after the
/// backslash it used.
fn escape(after: &[u8]) -> (u8, usize) {
    let hex = |b: u8| char::from(b).to_digit(16);
    match after {
        [b'x', h, l, ..] if hex(*h).is_some() && hex(*l).is_some() => {
            let v = hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0);
            (u8::try_from(v).unwrap_or(0), 3)
        }
        [b'n', ..] => (b'\n', 1),
        [b'r', ..] => (b'\r', 1),
        [b't', ..] => (b'\t', 1),
        [b'b', ..] => (8, 1),
        [b'a', ..] => (7, 1),
        [c, ..] => (*c, 1),
        [] => (b'\\', 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: RespLimits =
        RespLimits { max_args: 16, max_bulk_bytes: 64, max_inline_bytes: 128, max_command_bytes: 512 };

    fn args(words: &[&str]) -> Args {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_commands_parse_whole_and_report_their_length() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n";
        let (first, used) = parse(buf, &LIMITS).expect("valid").expect("whole");
        assert_eq!(first, args(&["GET", "k"]));
        let (second, rest) = parse(&buf[used..], &LIMITS).expect("valid").expect("whole");
        assert_eq!(second, args(&["PING"]));
        assert_eq!(used + rest, buf.len());
    }

    #[test]
    fn every_prefix_of_a_command_asks_for_more() {
        let buf = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n";
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut], &LIMITS), Ok(None), "prefix of {cut} bytes");
        }
        assert_eq!(parse(buf, &LIMITS).expect("valid").expect("whole").0, args(&["SET", "k", "v\r\nxy"]));
    }

    #[test]
    fn inline_commands_split_like_redis() {
        let (got, used) = parse(b"set k \"a b\\x41\\n\" 'it\\'s'\r\nPING\r\n", &LIMITS).expect("ok").expect("whole");
        assert_eq!(got, vec![b"set".to_vec(), b"k".to_vec(), b"a bA\n".to_vec(), b"it's".to_vec()]);
        assert_eq!(used, 27);
        assert_eq!(parse(b"\r\n", &LIMITS), Ok(Some((Vec::new(), 2))));
        assert_eq!(parse(b"get \"k\r\n", &LIMITS), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(parse(b"get \"k\"x\r\n", &LIMITS), Err(ProtocolError::UnbalancedQuotes));
    }

    #[test]
    fn limits_are_enforced_before_the_bytes_arrive() {
        assert_eq!(parse(b"*17\r\n", &LIMITS), Err(ProtocolError::MultibulkLength));
        assert_eq!(parse(b"*x\r\n", &LIMITS), Err(ProtocolError::MultibulkLength));
        assert_eq!(parse(b"*1\r\n$65\r\n", &LIMITS), Err(ProtocolError::BulkLength));
        assert_eq!(parse(b"*1\r\n$9999999999999\r\n", &LIMITS), Err(ProtocolError::BulkLength));
        assert_eq!(parse(b"*1\r\n$-1\r\n", &LIMITS), Err(ProtocolError::BulkLength));
        assert_eq!(parse(b"*1\r\n:1\r\n", &LIMITS), Err(ProtocolError::ExpectedBulk(':')));
        assert_eq!(parse(b"*1\r\n$1\r\nab\r\n", &LIMITS), Err(ProtocolError::BulkTerminator));
        assert_eq!(parse(&[b'a'; 129], &LIMITS), Err(ProtocolError::InlineTooLong));
        let wide = format!("*9{}", "9".repeat(70_000));
        assert_eq!(parse(wide.as_bytes(), &LIMITS), Err(ProtocolError::CountLine("mbulk")));
        let mut big = b"*16\r\n".to_vec();
        for _ in 0..9 {
            big.extend_from_slice(b"$60\r\n");
            big.extend_from_slice(&[b'x'; 60]);
            big.extend_from_slice(b"\r\n");
        }
        assert!(matches!(parse(&big, &LIMITS), Err(ProtocolError::CommandTooLarge(..))));
    }

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes, &LIMITS);
        }

        #[test]
        fn encoded_commands_round_trip(words in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..8)) {
            let mut buf = format!("*{}\r\n", words.len()).into_bytes();
            for w in &words {
                buf.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
                buf.extend_from_slice(w);
                buf.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(parse(&buf, &LIMITS), Ok(Some((words.clone(), buf.len()))));
        }
    }
}
