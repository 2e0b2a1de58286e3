//! Just enough of RESP2 to read a server's replies in place: one reply's kind and length,
//! without copying it. Pure.

/// Longest reply line (a simple string, an error, a length) read before the reply is refused.
const MAX_LINE: usize = 64 * 1024;

/// What a reply said, as far as a load generator cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+...`, `:n`, a bulk string or an array: success.
    Value,
    /// `$-1` or `*-1`: nothing there.
    Nil,
    /// `-...`: the error's text.
    Error(String),
}

/// The first complete reply in `buffer` and its length in bytes; `Ok(None)` if `buffer` holds
/// only part of one.
///
/// # Errors
///
/// A byte sequence that is not RESP2.
pub fn parse(buffer: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let Some(line_end) = find_crlf(buffer)? else { return Ok(None) };
    let line = &buffer[1..line_end];
    let after_line = line_end + 2;
    match buffer[0] {
        b'+' | b':' => Ok(Some((Reply::Value, after_line))),
        b'-' => Ok(Some((Reply::Error(String::from_utf8_lossy(line).into_owned()), after_line))),
        b'$' => match length(line)? {
            None => Ok(Some((Reply::Nil, after_line))),
            Some(len) => {
                let end = after_line + len + 2;
                if buffer.len() < end {
                    return Ok(None);
                }
                if &buffer[end - 2..end] != b"\r\n" {
                    return Err("a bulk string not ended by CRLF".to_owned());
                }
                Ok(Some((Reply::Value, end)))
            }
        },
        b'*' => match length(line)? {
            None => Ok(Some((Reply::Nil, after_line))),
            Some(count) => {
                let mut at = after_line;
                for _ in 0..count {
                    match parse(&buffer[at..])? {
                        Some((_, used)) => at += used,
                        None => return Ok(None),
                    }
                }
                Ok(Some((Reply::Value, at)))
            }
        },
        other => Err(format!("a reply starting with byte {other:#04x}")),
    }
}

fn find_crlf(buffer: &[u8]) -> Result<Option<usize>, String> {
    match buffer.windows(2).position(|w| w == b"\r\n") {
        Some(at) => Ok(Some(at)),
        None if buffer.len() > MAX_LINE => Err(format!("a reply line longer than {MAX_LINE} bytes")),
        None => Ok(None),
    }
}

/// A length field: `-1` is `None`.
fn length(digits: &[u8]) -> Result<Option<usize>, String> {
    let text = std::str::from_utf8(digits).map_err(|_| "a length that is not text".to_owned())?;
    match text.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if n >= 0 => Ok(Some(usize::try_from(n).map_err(|_| format!("length {n} too large"))?)),
        _ => Err(format!("length {text:?}")),
    }
}

/// Appends a command of `arguments` as a RESP array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, arguments: &[&[u8]]) {
    use std::io::Write as _;
    write!(out, "*{}\r\n", arguments.len()).expect("writing to a Vec cannot fail");
    for argument in arguments {
        write!(out, "${}\r\n", argument.len()).expect("writing to a Vec cannot fail");
        out.extend_from_slice(argument);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_reply_is_read_whole() {
        let cases: [(&[u8], Reply); 7] = [
            (b"+OK\r\n", Reply::Value),
            (b":42\r\n", Reply::Value),
            (b"-ERR wrong\r\n", Reply::Error("ERR wrong".to_owned())),
            (b"$-1\r\n", Reply::Nil),
            (b"$5\r\nhe\r\no\r\n", Reply::Value),
            (b"*2\r\n$1\r\na\r\n:1\r\n", Reply::Value),
            (b"*-1\r\n", Reply::Nil),
        ];
        for (bytes, expected) in cases {
            let mut stream = bytes.to_vec();
            stream.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(parse(&stream), Ok(Some((expected, bytes.len()))), "{:?}", String::from_utf8_lossy(bytes));
            // Any strict prefix is incomplete, never an error.
            for cut in 0..bytes.len() {
                assert_eq!(parse(&bytes[..cut]), Ok(None), "prefix {cut} of {:?}", String::from_utf8_lossy(bytes));
            }
        }
    }

    #[test]
    fn what_is_not_resp_is_an_error() {
        assert!(parse(b"hello\r\n").is_err());
        assert!(parse(b"$x\r\n").is_err());
        assert!(parse(b"$-2\r\n").is_err());
        assert!(parse(b"$1\r\nab\r\n").is_err());
        assert!(parse(&vec![b'+'; MAX_LINE + 1]).is_err());
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }
}
