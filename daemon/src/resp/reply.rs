//! RESP replies and their encoding in RESP2 or RESP3 (after `HELLO 3`). A reply is plain data,
//! so it crosses shards; it is encoded once, on the connection that asked, in that connection's
//! protocol.

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, every connection's start.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text`.
    Simple(&'static str),
    /// `-message`; the message starts with its code (`ERR`, `WRONGTYPE`, ...).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$len` and bytes.
    Bulk(Vec<u8>),
    /// The absent value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// `*n` and items.
    Array(Vec<Reply>),
    /// `%n` in RESP3; a flat array of keys and values in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// `~n` in RESP3; an array in RESP2.
    Set(Vec<Reply>),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple("OK");

    /// An error reply with Redis's generic `ERR` code.
    pub fn err(message: impl std::fmt::Display) -> Reply {
        Reply::Error(format!("ERR {message}"))
    }

    /// A bulk string from text.
    pub fn text(s: impl Into<String>) -> Reply {
        Reply::Bulk(s.into().into_bytes())
    }

    /// A bulk string, or nil for `None`.
    pub fn bulk_or_nil(value: Option<Vec<u8>>) -> Reply {
        value.map_or(Reply::Nil, Reply::Bulk)
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the reply's encoding in `protocol` to `out`.
    pub fn encode(&self, protocol: Protocol, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(message) => {
                // A CR or LF would end the line early and desynchronise the client.
                let clean: Vec<u8> = message.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect();
                line(out, b'-', &clean);
            }
            Reply::Integer(n) => line(out, b':', n.to_string().as_bytes()),
            Reply::Bulk(bytes) => {
                line(out, b'$', bytes.len().to_string().as_bytes());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Nil => match protocol {
                Protocol::Resp2 => out.extend_from_slice(b"$-1\r\n"),
                Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
            },
            Reply::Array(items) => {
                line(out, b'*', items.len().to_string().as_bytes());
                items.iter().for_each(|i| i.encode(protocol, out));
            }
            Reply::Set(items) => {
                let mark = if protocol == Protocol::Resp3 { b'~' } else { b'*' };
                line(out, mark, items.len().to_string().as_bytes());
                items.iter().for_each(|i| i.encode(protocol, out));
            }
            Reply::Map(pairs) => {
                match protocol {
                    Protocol::Resp2 => line(out, b'*', (pairs.len() * 2).to_string().as_bytes()),
                    Protocol::Resp3 => line(out, b'%', pairs.len().to_string().as_bytes()),
                }
                for (k, v) in pairs {
                    k.encode(protocol, out);
                    v.encode(protocol, out);
                }
            }
        }
    }
}

fn line(out: &mut Vec<u8>, mark: u8, body: &[u8]) {
    out.push(mark);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(r: &Reply, p: Protocol) -> String {
        let mut out = Vec::new();
        r.encode(p, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn replies_encode_as_redis_sends_them() {
        assert_eq!(encoded(&Reply::OK, Protocol::Resp2), "+OK\r\n");
        assert_eq!(encoded(&Reply::err("syntax error"), Protocol::Resp2), "-ERR syntax error\r\n");
        assert_eq!(encoded(&Reply::Error("ERR a\r\nb".into()), Protocol::Resp2), "-ERR a  b\r\n");
        assert_eq!(encoded(&Reply::Integer(-3), Protocol::Resp2), ":-3\r\n");
        assert_eq!(encoded(&Reply::text("hé"), Protocol::Resp2), "$3\r\nhé\r\n");
        assert_eq!(encoded(&Reply::Nil, Protocol::Resp2), "$-1\r\n");
        assert_eq!(encoded(&Reply::Nil, Protocol::Resp3), "_\r\n");
        let map = Reply::Map(vec![(Reply::text("f"), Reply::text("v"))]);
        assert_eq!(encoded(&map, Protocol::Resp2), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
        assert_eq!(encoded(&map, Protocol::Resp3), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
        let nested = Reply::Array(vec![Reply::Integer(1), Reply::Nil]);
        assert_eq!(encoded(&nested, Protocol::Resp3), "*2\r\n:1\r\n_\r\n");
        assert_eq!(encoded(&Reply::Set(vec![Reply::Integer(1)]), Protocol::Resp3), "~1\r\n:1\r\n");
    }
}
