//! RESP (the Redis protocol) over a plain blocking socket: send any bytes to a Redis-speaking
//! port and read back whole replies, each with its exact bytes. Tests use it where a Redis
//! client would not go (inline commands, hostile input, byte-exact comparison of two servers'
//! replies) and to check that a Redis-speaking port is up.
//!
//! The reader understands RESP2 and RESP3 reply types. It is strict: a server that sends bytes
//! that are not a well-formed reply fails the read, and every reply is bounded
//! ([`MAX_REPLY_BYTES`], [`MAX_DEPTH`]) so a runaway server cannot exhaust the test. Every read
//! waits at most [`READ_TIMEOUT`].

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Longest a read waits for the server: far above any honest reply time on a loaded machine.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest reply the reader accepts, bytes.
pub const MAX_REPLY_BYTES: usize = 64 << 20;

/// Deepest nesting of aggregates the reader accepts.
pub const MAX_DEPTH: usize = 16;

/// One reply, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+text`.
    Simple(String),
    /// `-text` (RESP2 and RESP3 simple errors; `!` bulk errors too).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$n` then bytes; RESP3 verbatim strings (`=`) keep their `txt:` prefix.
    Bulk(Vec<u8>),
    /// `$-1` or `*-1` (RESP2) and `_` (RESP3).
    Null,
    /// `*n` (and RESP3 sets `~` and pushes `>`).
    Array(Vec<Value>),
    /// `%n` (RESP3).
    Map(Vec<(Value, Value)>),
    /// `,` (RESP3 double, as sent), `(` (big number, as sent).
    Number(String),
    /// `#t` / `#f` (RESP3).
    Boolean(bool),
}

impl Value {
    /// The bytes of a bulk string or the text of a simple string; `None` otherwise.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
}

/// What reading the next reply found.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A whole reply and the exact bytes it came in.
    Reply(Value, Vec<u8>),
    /// The server closed the connection (a clean end or a reset), with nothing partial pending.
    Closed,
}

/// The bytes of `args` as one multibulk command, as clients send it.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One blocking connection to a Redis-speaking port.
pub struct RespConnection {
    stream: TcpStream,
    addr: SocketAddr,
    buffer: Vec<u8>,
}

impl RespConnection {
    /// Connects; connecting and each read and write wait at most [`READ_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> std::io::Result<RespConnection> {
        RespConnection::connect_with_timeout(addr, READ_TIMEOUT)
    }

    /// Connects; connecting and each read and write wait at most `timeout`.
    pub fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> std::io::Result<RespConnection> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(RespConnection { stream, addr, buffer: Vec::new() })
    }

    /// Connects, panicking on failure.
    pub fn open(addr: SocketAddr) -> RespConnection {
        RespConnection::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes bytes as they are.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Closes the sending half: the server sees end of stream after what was sent.
    pub fn finish_sending(&mut self) {
        // Fails only if the connection is already gone, which the next read reports.
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Sends one multibulk command and returns its reply, panicking on anything but a reply.
    pub fn call(&mut self, args: &[&str]) -> Value {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_bytes(&encode_command(&bytes)).unwrap_or_else(|e| panic!("sending {args:?} to {}: {e}", self.addr));
        match self.receive() {
            Ok(Received::Reply(value, _)) => value,
            other => panic!("{args:?} to {}: expected a reply, got {other:?}", self.addr),
        }
    }

    /// The next reply, or [`Received::Closed`]. An error if none came within the timeout, or
    /// if the server sent bytes that are not a well-formed reply.
    pub fn receive(&mut self) -> std::io::Result<Received> {
        loop {
            match parse(&self.buffer, 0) {
                Ok(Some((value, len))) => {
                    let raw: Vec<u8> = self.buffer.drain(..len).collect();
                    return Ok(Received::Reply(value, raw));
                }
                Ok(None) if self.buffer.len() > MAX_REPLY_BYTES => {
                    return Err(std::io::Error::other(format!("a reply over {MAX_REPLY_BYTES} bytes")));
                }
                Ok(None) => {}
                Err(e) => {
                    let shown = String::from_utf8_lossy(&self.buffer[..self.buffer.len().min(200)]).into_owned();
                    return Err(std::io::Error::other(format!("the server sent a malformed reply ({e}): {shown:?}")));
                }
            }
            let mut chunk = [0u8; 64 << 10];
            match self.stream.read(&mut chunk) {
                Ok(0) if self.buffer.is_empty() => return Ok(Received::Closed),
                Ok(0) => {
                    let left = String::from_utf8_lossy(&self.buffer).into_owned();
                    return Err(std::io::Error::other(format!("the server closed mid-reply: {left:?}")));
                }
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                    return Ok(Received::Closed);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(std::io::Error::new(
                        ErrorKind::TimedOut,
                        format!("no reply from {} in time", self.addr),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next `count` replies' bytes, concatenated. An error as [`Self::receive`], or if the
    /// server closed before sending them all.
    pub fn receive_raw(&mut self, count: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0..count {
            match self.receive()? {
                Received::Reply(_, raw) => out.extend_from_slice(&raw),
                Received::Closed => {
                    let got = String::from_utf8_lossy(&out).into_owned();
                    return Err(std::io::Error::other(format!("closed after {i} of {count} replies: {got:?}")));
                }
            }
        }
        Ok(out)
    }

    /// Every reply until the server closes the connection. An error as [`Self::receive`].
    pub fn receive_until_closed(&mut self) -> std::io::Result<Vec<Value>> {
        let mut replies = Vec::new();
        loop {
            match self.receive()? {
                Received::Reply(value, _) => replies.push(value),
                Received::Closed => return Ok(replies),
            }
        }
    }
}

/// Parses one reply at the start of `buf`: `Ok(None)` if it is not complete yet, else the reply
/// and its length in bytes.
pub fn parse(buf: &[u8], depth: usize) -> Result<Option<(Value, usize)>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH}"));
    }
    let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() > MAX_REPLY_BYTES { Err("a header line without CRLF".to_owned()) } else { Ok(None) };
    };
    let Some((&kind, rest)) = buf[..line_end].split_first() else { return Err("an empty line".to_owned()) };
    // Redis echoes a client's bytes in error lines as they came, UTF-8 or not.
    let line = String::from_utf8_lossy(rest);
    let line = line.as_ref();
    let after = line_end + 2;
    let number = || line.parse::<i64>().map_err(|_| format!("{:?} is not a length", kind as char));
    let value = match kind {
        b'+' => Value::Simple(line.to_owned()),
        b'-' => Value::Error(line.to_owned()),
        b':' => Value::Integer(line.parse().map_err(|_| format!("{line:?} is not an integer"))?),
        b'_' if line.is_empty() => Value::Null,
        b',' | b'(' => Value::Number(line.to_owned()),
        b'#' if line == "t" || line == "f" => Value::Boolean(line == "t"),
        b'$' | b'=' | b'!' => {
            let len = number()?;
            if len == -1 && kind == b'$' {
                return Ok(Some((Value::Null, after)));
            }
            let len = usize::try_from(len).map_err(|_| format!("a bulk length of {len}"))?;
            if len > MAX_REPLY_BYTES {
                return Err(format!("a bulk length of {len}"));
            }
            if buf.len() < after + len + 2 {
                return Ok(None);
            }
            if &buf[after + len..after + len + 2] != b"\r\n" {
                return Err("a bulk string without its CRLF".to_owned());
            }
            let bytes = buf[after..after + len].to_vec();
            let value = if kind == b'!' {
                Value::Error(String::from_utf8_lossy(&bytes).into_owned())
            } else {
                Value::Bulk(bytes)
            };
            return Ok(Some((value, after + len + 2)));
        }
        b'*' | b'~' | b'>' | b'%' => {
            let count = number()?;
            if count == -1 && kind == b'*' {
                return Ok(Some((Value::Null, after)));
            }
            let count = usize::try_from(count).map_err(|_| format!("an aggregate of {count}"))?;
            let items = if kind == b'%' { count.saturating_mul(2) } else { count };
            if items > MAX_REPLY_BYTES / 3 {
                return Err(format!("an aggregate of {count}"));
            }
            let mut values = Vec::with_capacity(items.min(1024));
            let mut at = after;
            for _ in 0..items {
                match parse(&buf[at..], depth + 1)? {
                    Some((value, len)) => {
                        values.push(value);
                        at += len;
                    }
                    None => return Ok(None),
                }
            }
            let value = if kind == b'%' {
                let mut pairs = Vec::with_capacity(count);
                let mut iter = values.into_iter();
                while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            } else {
                Value::Array(values)
            };
            return Ok(Some((value, at)));
        }
        other => return Err(format!("an unknown reply type {:?}", other as char)),
    };
    Ok(Some((value, after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_type_and_waits_for_the_rest() {
        let cases: &[(&[u8], Value)] = &[
            (b"+OK\r\n", Value::Simple("OK".into())),
            (b"-ERR x\r\n", Value::Error("ERR x".into())),
            (b":-5\r\n", Value::Integer(-5)),
            (b"$3\r\na\r\n\r\n", Value::Bulk(b"a\r\n".to_vec())),
            (b"$-1\r\n", Value::Null),
            (b"*-1\r\n", Value::Null),
            (b"_\r\n", Value::Null),
            (b"#t\r\n", Value::Boolean(true)),
            (b"*2\r\n:1\r\n$1\r\nx\r\n", Value::Array(vec![Value::Integer(1), Value::Bulk(b"x".to_vec())])),
            (b"%1\r\n+a\r\n:2\r\n", Value::Map(vec![(Value::Simple("a".into()), Value::Integer(2))])),
        ];
        for (bytes, expected) in cases {
            assert_eq!(parse(bytes, 0), Ok(Some((expected.clone(), bytes.len()))), "{bytes:?}");
            for cut in 0..bytes.len() {
                assert_eq!(parse(&bytes[..cut], 0), Ok(None), "{bytes:?} cut at {cut}");
            }
        }
        assert!(parse(b"?x\r\n", 0).is_err());
        assert!(parse(b"$2\r\nabc\r\n", 0).is_err());
        assert!(parse(b"$99999999999\r\n", 0).is_err());
    }
}
