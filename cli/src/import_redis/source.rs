//! The Redis side of the import: connecting, `SCAN` pages, and reading keys. Keys are read in
//! one `MULTI`/`EXEC` per batch, each with Redis's own clock: `TIME`, `TYPE`, `PTTL`,
//! `PEXPIRETIME`, `GET` and `HGETALL` run back to back, so the value, its expiry and the time it
//! was observed belong together. Both reads are sent for every key (the one of the wrong type
//! fails harmlessly) so that one round trip reads any key whatever its type.
//!
//! The expiry is `PEXPIRETIME`'s absolute instant (Redis 7.0 and later), exact. Before 7.0 that
//! command fails and the expiry is estimated as `TIME` plus `PTTL`, which can be a few
//! milliseconds early under load (Redis may read its clock for `TIME` and for `PTTL` at
//! different points of its event loop), so estimated expiries compare with a wider tolerance.
//! It never writes to Redis; the keyspace notification setup is `notify.rs`'s.

use super::ImportError;
use super::decision::{Expiry, Field, Snapshot, SourceValue};
use nacre_wire::Ts;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};
use std::time::Duration;

/// Commands sent per key in a read transaction.
const COMMANDS_PER_KEY: usize = 6;

/// How to reach the source Redis.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// `HOST:PORT` (an IPv6 host in brackets).
    pub addr: String,
    /// The logical database.
    pub db: i64,
    /// ACL user name, if any.
    pub user: Option<String>,
    /// Password, if any.
    pub password: Option<String>,
}

/// Why one key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A reply of a shape the command never returns.
    #[error("unexpected reply to {command}: {reply}")]
    Unexpected {
        /// The command.
        command: &'static str,
        /// The reply, abridged.
        reply: String,
    },
    /// Redis answered a command with an error.
    #[error("{command} failed: {message}")]
    Server {
        /// The command.
        command: &'static str,
        /// Redis's message.
        message: String,
    },
}

/// Splits `HOST:PORT` (or `[V6]:PORT`) into host and port.
pub fn parse_addr(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || host.contains(':') && !addr.starts_with('[') {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

/// A redis client for `options`: the same for the command connection and the subscription.
pub fn client(options: &SourceOptions) -> Result<redis::Client, ImportError> {
    let (host, port) = parse_addr(&options.addr).ok_or_else(|| ImportError::BadAddress(options.addr.clone()))?;
    let mut settings = RedisConnectionInfo::default().set_db(options.db);
    if let Some(user) = &options.user {
        settings = settings.set_username(user);
    }
    if let Some(password) = &options.password {
        settings = settings.set_password(password);
    }
    let info = ConnectionAddr::Tcp(host, port)
        .into_connection_info()
        .map_err(|source| ImportError::Redis { op: "connect", source })?
        .set_redis_settings(settings);
    redis::Client::open(info).map_err(|source| ImportError::Redis { op: "connect", source })
}

/// The connection commands and reads go over.
pub struct Source {
    connection: MultiplexedConnection,
}

impl Source {
    /// Connects (and authenticates and selects the database).
    pub async fn connect(client: &redis::Client, timeout: Duration) -> Result<Source, ImportError> {
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(Some(timeout)).set_response_timeout(Some(timeout));
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| ImportError::Redis { op: "connect", source })?;
        Ok(Source { connection })
    }

    /// The connection, for the notification setup's `CONFIG` commands.
    pub fn connection(&mut self) -> &mut MultiplexedConnection {
        &mut self.connection
    }

    /// Keys in the database (`DBSIZE`), for the progress bar.
    pub async fn key_count(&mut self) -> Result<u64, ImportError> {
        redis::cmd("DBSIZE")
            .query_async(&mut self.connection)
            .await
            .map_err(|source| ImportError::Redis { op: "DBSIZE", source })
    }

    /// One `SCAN` page: the next cursor (0 when the iteration is complete) and its keys.
    pub async fn scan_page(
        &mut self,
        cursor: u64,
        pattern: Option<&str>,
        count: u32,
    ) -> Result<(u64, Vec<Vec<u8>>), ImportError> {
        let mut command = redis::cmd("SCAN");
        command.arg(cursor);
        if let Some(pattern) = pattern {
            command.arg("MATCH").arg(pattern);
        }
        command.arg("COUNT").arg(count);
        command.query_async(&mut self.connection).await.map_err(|source| ImportError::Redis { op: "SCAN", source })
    }

    /// Reads `keys` in one transaction: one result per key, in order. A transaction that fails
    /// as a whole (the connection, `EXEC`) is an error of the call.
    pub async fn read(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Result<Snapshot, ReadError>>, ImportError> {
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        for key in keys {
            pipe.cmd("TIME").cmd("TYPE").arg(key).cmd("PTTL").arg(key).cmd("PEXPIRETIME").arg(key);
            pipe.cmd("GET").arg(key).cmd("HGETALL").arg(key);
        }
        let replies: Vec<redis::RedisResult<Value>> = pipe
            .query_async(&mut self.connection)
            .await
            .map_err(|source| ImportError::Redis { op: "MULTI/EXEC", source })?;
        if replies.len() != keys.len() * COMMANDS_PER_KEY {
            return Err(ImportError::TransactionShape { expected: keys.len() * COMMANDS_PER_KEY, got: replies.len() });
        }
        let mut replies = replies.into_iter();
        let snapshots = keys
            .iter()
            .map(|key| {
                let mut next = || replies.next().expect("the reply count was checked");
                let group = [next(), next(), next(), next(), next(), next()];
                snapshot_of(key, group)
            })
            .collect();
        Ok(snapshots)
    }
}

/// A key's snapshot from its six replies: `TIME`, `TYPE`, `PTTL`, `PEXPIRETIME`, `GET`,
/// `HGETALL`.
pub fn snapshot_of(key: &[u8], replies: [redis::RedisResult<Value>; COMMANDS_PER_KEY]) -> Result<Snapshot, ReadError> {
    let [time, type_name, pttl, pexpiretime, get, hgetall] = replies;
    let observed = observed_ts(ok("TIME", time)?)?;
    let type_name = text("TYPE", ok("TYPE", type_name)?)?;
    let pttl = match ok("PTTL", pttl)? {
        Value::Int(ms) => ms,
        other => return Err(unexpected("PTTL", &other)),
    };
    let value = match type_name.as_str() {
        "none" => SourceValue::Gone,
        "string" => match ok("GET", get)? {
            Value::BulkString(bytes) => SourceValue::Str(bytes),
            Value::Nil => SourceValue::Gone,
            other => return Err(unexpected("GET", &other)),
        },
        "hash" => {
            let fields = pairs(ok("HGETALL", hgetall)?)?;
            if fields.is_empty() { SourceValue::Gone } else { SourceValue::Hash(fields) }
        }
        other => SourceValue::Other(other.to_owned()),
    };
    // Both: -2 no such key, -1 no expiry; else PTTL is the milliseconds left and PEXPIRETIME
    // the Unix milliseconds it expires at. PEXPIRETIME fails on Redis before 7.0.
    let (expires_at_ms, expiry) = match pexpiretime {
        Ok(Value::Int(at)) => (u64::try_from(at).ok(), Expiry::Exact),
        Ok(other) => return Err(unexpected("PEXPIRETIME", &other)),
        Err(_) => (u64::try_from(pttl).ok().map(|left| observed.millis().saturating_add(left)), Expiry::Estimated),
    };
    let value = if pttl == -2 { SourceValue::Gone } else { value };
    Ok(Snapshot { key: key.to_vec(), observed, expires_at_ms, expiry, value })
}

/// Redis's `TIME` (seconds, microseconds) as a version timestamp: its milliseconds, with the
/// microseconds within the millisecond as the logical counter, so that two observations of a
/// key in one millisecond still order by when they were made.
fn observed_ts(reply: Value) -> Result<Ts, ReadError> {
    let bad = |reply: &Value| unexpected("TIME", reply);
    let Value::Array(parts) = &reply else { return Err(bad(&reply)) };
    let [seconds, micros] = parts.as_slice() else { return Err(bad(&reply)) };
    let number = |v: &Value| -> Option<u64> {
        match v {
            Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            Value::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    };
    let (Some(seconds), Some(micros)) = (number(seconds), number(micros)) else { return Err(bad(&reply)) };
    if micros >= 1_000_000 {
        return Err(bad(&reply));
    }
    let millis = seconds.saturating_mul(1000).saturating_add(micros / 1000);
    Ok(Ts((millis << Ts::LOGICAL_BITS) | (micros % 1000)))
}

fn ok(command: &'static str, reply: redis::RedisResult<Value>) -> Result<Value, ReadError> {
    reply.map_err(|e| ReadError::Server { command, message: e.to_string() })
}

fn text(command: &'static str, reply: Value) -> Result<String, ReadError> {
    match reply {
        Value::SimpleString(s) => Ok(s),
        Value::BulkString(b) => {
            String::from_utf8(b).map_err(|e| unexpected(command, &Value::BulkString(e.into_bytes())))
        }
        Value::Okay => Ok("OK".to_owned()),
        other => Err(unexpected(command, &other)),
    }
}

/// `HGETALL`'s reply: a flat array of field, value (RESP2) or a map (RESP3).
fn pairs(reply: Value) -> Result<Vec<Field>, ReadError> {
    let bytes = |v: Value| match v {
        Value::BulkString(b) => Ok(b),
        other => Err(unexpected("HGETALL", &other)),
    };
    match reply {
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(ReadError::Unexpected { command: "HGETALL", reply: "an odd-length array".to_owned() });
            }
            let mut items = items.into_iter();
            let mut fields = Vec::with_capacity(items.len() / 2);
            while let (Some(field), Some(value)) = (items.next(), items.next()) {
                fields.push((bytes(field)?, bytes(value)?));
            }
            Ok(fields)
        }
        Value::Map(entries) => entries.into_iter().map(|(f, v)| Ok((bytes(f)?, bytes(v)?))).collect(),
        other => Err(unexpected("HGETALL", &other)),
    }
}

fn unexpected(command: &'static str, reply: &Value) -> ReadError {
    let mut shown = format!("{reply:?}");
    shown.truncate(80);
    ReadError::Unexpected { command, reply: shown }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn time(seconds: u64, micros: u64) -> redis::RedisResult<Value> {
        Ok(Value::Array(vec![bulk(&seconds.to_string()), bulk(&micros.to_string())]))
    }

    fn unknown_command() -> redis::RedisResult<Value> {
        Err(redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "ERR unknown command",
        )))
    }

    fn wrong_type() -> redis::RedisResult<Value> {
        Err(redis::RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError), "WRONGTYPE")))
    }

    #[test]
    fn addresses_parse_with_v4_names_and_bracketed_v6() {
        assert_eq!(parse_addr("127.0.0.1:6379"), Some(("127.0.0.1".to_owned(), 6379)));
        assert_eq!(parse_addr("cache.local:7000"), Some(("cache.local".to_owned(), 7000)));
        assert_eq!(parse_addr("[::1]:6380"), Some(("::1".to_owned(), 6380)));
        for bad in ["6379", "host:", "host:99999", ":6379", "::1:6379"] {
            assert_eq!(parse_addr(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_string_with_a_ttl_expires_at_the_observed_time_plus_pttl() {
        let snapshot = snapshot_of(
            b"k",
            [
                time(1_700_000_000, 123_456),
                Ok(Value::SimpleString("string".into())),
                Ok(Value::Int(5_000)),
                unknown_command(),
                Ok(bulk("v")),
                wrong_type(),
            ],
        )
        .expect("valid");
        assert_eq!(snapshot.observed, Ts((1_700_000_000_123 << 16) | 456));
        assert_eq!(snapshot.expires_at_ms, Some(1_700_000_005_123));
        assert_eq!(snapshot.expiry, Expiry::Estimated);
        assert_eq!(snapshot.value, SourceValue::Str(b"v".to_vec()));
    }

    #[test]
    fn pexpiretime_gives_the_exact_expiry_when_redis_has_it() {
        let snapshot = snapshot_of(
            b"k",
            [
                time(1_700_000_000, 123_456),
                Ok(Value::SimpleString("string".into())),
                Ok(Value::Int(4_990)),
                Ok(Value::Int(1_700_000_005_124)),
                Ok(bulk("v")),
                wrong_type(),
            ],
        )
        .expect("valid");
        assert_eq!((snapshot.expires_at_ms, snapshot.expiry), (Some(1_700_000_005_124), Expiry::Exact));
    }

    #[test]
    fn a_hash_without_ttl_reads_its_fields() {
        let fields = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]);
        let snapshot = snapshot_of(
            b"h",
            [
                time(1, 0),
                Ok(Value::SimpleString("hash".into())),
                Ok(Value::Int(-1)),
                Ok(Value::Int(-1)),
                wrong_type(),
                Ok(fields),
            ],
        )
        .expect("valid");
        assert_eq!(snapshot.expires_at_ms, None);
        assert_eq!(
            snapshot.value,
            SourceValue::Hash(vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())])
        );
    }

    #[test]
    fn missing_keys_are_gone_and_other_types_are_named() {
        let gone = snapshot_of(
            b"k",
            [
                time(1, 0),
                Ok(Value::SimpleString("none".into())),
                Ok(Value::Int(-2)),
                Ok(Value::Int(-2)),
                Ok(Value::Nil),
                Ok(Value::Array(vec![])),
            ],
        );
        assert_eq!(gone.expect("valid").value, SourceValue::Gone);
        let list = snapshot_of(
            b"l",
            [
                time(1, 0),
                Ok(Value::SimpleString("list".into())),
                Ok(Value::Int(-1)),
                Ok(Value::Int(-1)),
                wrong_type(),
                wrong_type(),
            ],
        );
        assert_eq!(list.expect("valid").value, SourceValue::Other("list".into()));
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let bad_time = snapshot_of(
            b"k",
            [
                Ok(Value::Int(3)),
                Ok(Value::SimpleString("string".into())),
                Ok(Value::Int(-1)),
                Ok(Value::Int(-1)),
                Ok(bulk("v")),
                wrong_type(),
            ],
        );
        assert!(matches!(bad_time, Err(ReadError::Unexpected { command: "TIME", .. })), "{bad_time:?}");
        let odd = snapshot_of(
            b"h",
            [
                time(1, 0),
                Ok(Value::SimpleString("hash".into())),
                Ok(Value::Int(-1)),
                Ok(Value::Int(-1)),
                wrong_type(),
                Ok(Value::Array(vec![bulk("a")])),
            ],
        );
        assert!(matches!(odd, Err(ReadError::Unexpected { command: "HGETALL", .. })), "{odd:?}");
        let failed = snapshot_of(
            b"s",
            [
                time(1, 0),
                Ok(Value::SimpleString("string".into())),
                Ok(Value::Int(-1)),
                Ok(Value::Int(-1)),
                wrong_type(),
                wrong_type(),
            ],
        );
        assert!(matches!(failed, Err(ReadError::Server { command: "GET", .. })), "{failed:?}");
    }
}
