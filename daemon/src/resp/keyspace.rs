//! The Redis keyspace on the shard that owns a key: each [`KeyOp`] reads and writes that key's
//! rows in one table. A string is the row with an empty sort key; a hash field is the row whose
//! sort key is the field.
//!
//! Every write through the door holds the key's lock stripe from its read to its write, so a
//! read-modify-write (`INCR`, `SET NX`, `HSET`'s new-field count, `EXPIRE`) is atomic against
//! every other RESP command on the key. A write that depends on what it read takes a timestamp
//! after the version it read, so it supersedes it under the ordering rule.

use super::command::{ExpireIf, Expiry, Presence};
use super::reply::Reply;
use crate::partition_requests::Access;
use crate::shard::Shard;
use nacre_storage as st;
use std::rc::Rc;

/// One key's part of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOp {
    /// The table the key lives in.
    pub table: st::TableId,
    /// The key: the partition key of its rows.
    pub key: Vec<u8>,
    /// What to do.
    pub action: Action,
}

/// What a [`KeyOp`] does; each is the per-key core of the Redis command of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "each variant is the Redis command of the same name")]
pub enum Action {
    Get,
    GetDel,
    Set { value: Vec<u8>, expiry: Expiry, presence: Presence, get: bool },
    IncrBy(i64),
    Exists,
    Del,
    Expire { in_ms: i64, only: ExpireIf },
    Ttl { millis: bool },
    Persist,
    HSet(Vec<(Vec<u8>, Vec<u8>)>),
    HGet(Vec<u8>),
    HMGet(Vec<Vec<u8>>),
    HDel(Vec<Vec<u8>>),
    HExists(Vec<u8>),
    HGetAll,
    HLen,
    HKeys,
    HVals,
}

/// Lock stripes per shard: keys hash onto one; two keys sharing a stripe only wait for each
/// other.
const LOCK_STRIPES: usize = 1024;
/// Rows read from one key per scan page.
const ROWS_PER_PAGE: usize = 1000;
/// Most bytes of one key's rows a command reads at once (`HGETALL`, `DEL`, `EXPIRE`).
const MAX_KEY_BYTES: usize = 64 << 20;

/// The door's per-shard key locks.
pub struct KeyLocks {
    stripes: Vec<async_lock::Mutex<()>>,
}

impl Default for KeyLocks {
    fn default() -> Self {
        KeyLocks { stripes: (0..LOCK_STRIPES).map(|_| async_lock::Mutex::new(())).collect() }
    }
}

impl KeyLocks {
    async fn lock(&self, key: &[u8]) -> async_lock::MutexGuard<'_, ()> {
        let stripe = (xxhash_rust::xxh3::xxh3_64(key) % LOCK_STRIPES as u64) as usize;
        self.stripes[stripe].lock().await
    }
}

/// Why a key operation failed, as the reply the client gets.
type OpResult = Result<Reply, Reply>;

fn storage(e: &st::Error) -> Reply {
    match e {
        st::Error::LimitExceeded { what, size, max } => over_limit(limit_noun(*what), *size, *max),
        other => Reply::err(other),
    }
}

/// What a storage limit is called in Redis's terms.
fn limit_noun(what: st::Limit) -> &'static str {
    match what {
        st::Limit::PartitionKey => "key",
        st::Limit::SortKey => "hash field",
        st::Limit::Value => "value",
        st::Limit::Batch => "write",
        _ => "number of fields",
    }
}

/// The reply for `what` of `size` over the limit `max`.
pub fn over_limit(what: &str, size: usize, max: usize) -> Reply {
    Reply::err(format!("{what} of {size} is over Nacre's limit of {max}"))
}

/// Runs `ops` in order on this shard (which owns every key in them) and returns one reply each.
pub async fn execute(shard: &Rc<Shard>, ops: Vec<KeyOp>) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(ops.len());
    for op in ops {
        replies.push(execute_one(shard, op).await.unwrap_or_else(|e| e));
    }
    replies
}

/// The key's string row.
const STRING: &[u8] = &[];

struct Key<'a> {
    shard: &'a Shard,
    engine: Rc<st::Engine<st::io::dma::DmaDisk>>,
    table: st::TableId,
    key: &'a [u8],
}

async fn execute_one(shard: &Rc<Shard>, op: KeyOp) -> OpResult {
    let reads = matches!(
        op.action,
        Action::Get
            | Action::Exists
            | Action::Ttl { .. }
            | Action::HGet(_)
            | Action::HMGet(_)
            | Action::HExists(_)
            | Action::HGetAll
            | Action::HLen
            | Action::HKeys
            | Action::HVals
    );
    let access = match op.action {
        _ if reads => Access::Read,
        Action::Del | Action::HDel(_) | Action::GetDel => Access::Delete,
        _ => Access::Write,
    };
    let engine = shard.engine_for(&op.key, access).map_err(|e| Reply::err(e.message))?;
    let k = Key { shard, engine, table: op.table, key: &op.key };
    let _guard = if reads { None } else { Some(shard.resp.locks.lock(&op.key).await) };
    match op.action {
        Action::Get => Ok(Reply::bulk_or_nil(k.row(STRING).await?.map(|r| r.value))),
        Action::GetDel => {
            let Some(row) = k.row(STRING).await? else { return Ok(Reply::Nil) };
            let version = k.shard.partitions.direct_version(Some(row.id.ts));
            k.write(vec![k.entry(STRING, version, None)]).await?;
            Ok(Reply::Bulk(row.value))
        }
        Action::Set { value, expiry, presence, get } => k.set(value, expiry, presence, get).await,
        Action::IncrBy(by) => k.incr_by(by).await,
        Action::Exists => Ok(Reply::Integer(i64::from(k.first_row().await?.is_some()))),
        Action::Del => {
            let rows = k.rows().await?;
            k.delete_rows(&rows).await?;
            Ok(Reply::Integer(i64::from(!rows.is_empty())))
        }
        Action::Expire { in_ms, only } => k.expire(in_ms, only).await,
        Action::Ttl { millis } => k.ttl(millis).await,
        Action::Persist => {
            let rows = k.rows().await?;
            if rows.iter().all(|r| r.expires_at_ms.is_none()) {
                return Ok(Reply::Integer(0));
            }
            k.rewrite_expiry(&rows, |_| None).await?;
            Ok(Reply::Integer(1))
        }
        Action::HSet(pairs) => k.hset(pairs).await,
        Action::HGet(field) => Ok(Reply::bulk_or_nil(k.field(&field).await?)),
        Action::HMGet(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            for f in &fields {
                out.push(Reply::bulk_or_nil(k.field(f).await?));
            }
            Ok(Reply::Array(out))
        }
        Action::HExists(field) => Ok(Reply::Integer(i64::from(k.field(&field).await?.is_some()))),
        Action::HDel(fields) => k.hdel(fields).await,
        Action::HGetAll => Ok(Reply::Map(
            k.fields().await?.into_iter().map(|r| (Reply::Bulk(r.sort_key), Reply::Bulk(r.value))).collect(),
        )),
        Action::HLen => Ok(Reply::Integer(i64::try_from(k.fields().await?.len()).unwrap_or(i64::MAX))),
        Action::HKeys => Ok(Reply::Array(k.fields().await?.into_iter().map(|r| Reply::Bulk(r.sort_key)).collect())),
        Action::HVals => Ok(Reply::Array(k.fields().await?.into_iter().map(|r| Reply::Bulk(r.value)).collect())),
    }
}

impl Key<'_> {
    fn key_ref<'k>(&'k self, sort_key: &'k [u8]) -> st::KeyRef<'k> {
        st::KeyRef { table: self.table, partition_key: self.key, sort_key }
    }

    async fn row(&self, sort_key: &[u8]) -> Result<Option<st::Row>, Reply> {
        self.engine.get(self.key_ref(sort_key), st::ReadAt::Latest).await.map_err(|e| storage(&e))
    }

    /// A hash field's value; the empty field is the string, never a field.
    async fn field(&self, field: &[u8]) -> Result<Option<Vec<u8>>, Reply> {
        if field.is_empty() {
            return Ok(None);
        }
        Ok(self.row(field).await?.map(|r| r.value))
    }

    async fn page(&self, limit: usize, cursor: Option<Vec<u8>>) -> Result<st::ScanPage, Reply> {
        let req = st::ScanRequest {
            table: self.table,
            partition_key: self.key.to_vec(),
            limit,
            cursor,
            ..st::ScanRequest::default()
        };
        self.engine.scan(&req).await.map_err(|e| storage(&e))
    }

    /// The key's first visible row (its string, if it has one), if any.
    async fn first_row(&self) -> Result<Option<st::ScanRow>, Reply> {
        let mut cursor = None;
        loop {
            let page = self.page(1, cursor).await?;
            if let Some(row) = page.rows.into_iter().next() {
                return Ok(Some(row));
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(None),
            }
        }
    }

    /// Every visible row of the key, string and fields, up to [`MAX_KEY_BYTES`].
    async fn rows(&self) -> Result<Vec<st::ScanRow>, Reply> {
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        let mut cursor = None;
        loop {
            let page = self.page(ROWS_PER_PAGE, cursor).await?;
            for row in page.rows {
                bytes += row.sort_key.len() + row.value.len();
                if bytes > MAX_KEY_BYTES {
                    return Err(Reply::err(format!("key holds over {MAX_KEY_BYTES} bytes: too large to read at once")));
                }
                rows.push(row);
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(rows),
            }
        }
    }

    /// The hash's fields: every row but the string.
    async fn fields(&self) -> Result<Vec<st::ScanRow>, Reply> {
        Ok(self.rows().await?.into_iter().filter(|r| !r.sort_key.is_empty()).collect())
    }

    fn entry(&self, sort_key: &[u8], id: st::VersionId, value: Option<(Vec<u8>, Option<u64>)>) -> st::Entry {
        let payload = match value {
            Some((value, expires_at_ms)) => st::Payload::Value { value, expires_at_ms },
            None => st::Payload::Tombstone,
        };
        st::Entry { key: st::Key::new(self.table, self.key, sort_key), version: st::Version { id, payload } }
    }

    /// Writes `entries` (one partition) atomically, in batches no larger than the engine takes.
    async fn write(&self, entries: Vec<st::Entry>) -> Result<(), Reply> {
        let max = self.shard.process.config.limits.max_batch_entries.max(1);
        let durability = self.shard.process.config.resp.durability();
        let mut entries = entries;
        while !entries.is_empty() {
            let rest = entries.split_off(entries.len().min(max));
            self.shard.partitions.wait_for_memory().await.map_err(|e| Reply::err(e.to_string()))?;
            self.shard.partitions.cover(&entries).await.map_err(|e| storage(&e))?;
            self.engine.write(entries, durability).await.map_err(|e| storage(&e))?;
            entries = rest;
        }
        Ok(())
    }

    async fn delete_rows(&self, rows: &[st::ScanRow]) -> Result<(), Reply> {
        let Some(newest) = rows.iter().map(|r| r.id.ts).max() else { return Ok(()) };
        let id = self.shard.partitions.direct_version(Some(newest));
        self.write(rows.iter().map(|r| self.entry(&r.sort_key, id, None)).collect()).await
    }

    async fn rewrite_expiry(&self, rows: &[st::ScanRow], expiry: impl Fn(st::Ts) -> Option<u64>) -> Result<(), Reply> {
        let Some(newest) = rows.iter().map(|r| r.id.ts).max() else { return Ok(()) };
        let id = self.shard.partitions.direct_version(Some(newest));
        let at = expiry(id.ts);
        self.write(rows.iter().map(|r| self.entry(&r.sort_key, id, Some((r.value.clone(), at)))).collect()).await
    }

    async fn set(&self, value: Vec<u8>, expiry: Expiry, presence: Presence, get: bool) -> OpResult {
        let reads = get || presence != Presence::Any || expiry == Expiry::Keep;
        let current = if reads { self.row(STRING).await? } else { None };
        let old = || Reply::bulk_or_nil(current.as_ref().map(|r| r.value.clone()));
        let allowed = match presence {
            Presence::Any => true,
            Presence::Absent => current.is_none(),
            Presence::Present => current.is_some(),
        };
        if !allowed {
            return Ok(if get { old() } else { Reply::Nil });
        }
        let id = self.shard.partitions.direct_version(current.as_ref().map(|r| r.id.ts));
        let expires_at_ms = match expiry {
            Expiry::Never => None,
            Expiry::In(ms) => Some(id.ts.millis().saturating_add(ms)),
            Expiry::At(ms) => Some(ms),
            Expiry::Keep => current.as_ref().and_then(|r| r.expires_at_ms),
        };
        self.write(vec![self.entry(STRING, id, Some((value, expires_at_ms)))]).await?;
        Ok(if get { old() } else { Reply::OK })
    }

    async fn incr_by(&self, by: i64) -> OpResult {
        let current = self.row(STRING).await?;
        let base = match &current {
            None => 0,
            Some(row) => {
                parse_integer(&row.value).ok_or_else(|| Reply::err("value is not an integer or out of range"))?
            }
        };
        let next = base.checked_add(by).ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
        let id = self.shard.partitions.direct_version(current.as_ref().map(|r| r.id.ts));
        let expires_at_ms = current.as_ref().and_then(|r| r.expires_at_ms);
        self.write(vec![self.entry(STRING, id, Some((next.to_string().into_bytes(), expires_at_ms)))]).await?;
        Ok(Reply::Integer(next))
    }

    async fn expire(&self, in_ms: i64, only: ExpireIf) -> OpResult {
        let rows = self.rows().await?;
        let Some(first) = rows.first() else { return Ok(Reply::Integer(0)) };
        let now_ms = self.shard.partitions.clock.now_ms();
        let new_at = i128::from(now_ms) + i128::from(in_ms);
        let allowed = match (only, first.expires_at_ms) {
            (ExpireIf::Always, _) => true,
            (ExpireIf::NoExpiry, current) => current.is_none(),
            (ExpireIf::HasExpiry, current) => current.is_some(),
            (ExpireIf::Later, None) => false,
            (ExpireIf::Later, Some(at)) => new_at > i128::from(at),
            (ExpireIf::Earlier, None) => true,
            (ExpireIf::Earlier, Some(at)) => new_at < i128::from(at),
        };
        if !allowed {
            return Ok(Reply::Integer(0));
        }
        if in_ms <= 0 {
            self.delete_rows(&rows).await?;
        } else {
            let ms = u64::try_from(in_ms).unwrap_or(u64::MAX);
            self.rewrite_expiry(&rows, |ts| Some(ts.millis().saturating_add(ms))).await?;
        }
        Ok(Reply::Integer(1))
    }

    async fn ttl(&self, millis: bool) -> OpResult {
        let Some(row) = self.first_row().await? else { return Ok(Reply::Integer(-2)) };
        let Some(at) = row.expires_at_ms else { return Ok(Reply::Integer(-1)) };
        let left_ms = at.saturating_sub(self.shard.partitions.clock.now_ms());
        let left = if millis { left_ms } else { left_ms.saturating_add(500) / 1000 };
        Ok(Reply::Integer(i64::try_from(left).unwrap_or(i64::MAX)))
    }

    async fn hset(&self, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> OpResult {
        if pairs.iter().any(|(f, _)| f.is_empty()) {
            return Err(Reply::err("empty hash field names are not supported"));
        }
        // The last value of a field named twice wins, as in Redis; one write holds each once.
        let mut fields: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = std::collections::BTreeMap::new();
        for (f, v) in pairs {
            fields.insert(f, v);
        }
        let mut added = 0;
        let mut newest = None;
        // The key's expiry, which new fields take too: any existing field carries it.
        let mut key_expiry = None;
        for f in fields.keys() {
            match self.row(f).await? {
                Some(r) => {
                    newest = newest.max(Some(r.id.ts));
                    key_expiry = Some(r.expires_at_ms);
                }
                None => added += 1,
            }
        }
        let key_expiry = match key_expiry {
            Some(at) => at,
            None => self.first_row().await?.and_then(|r| r.expires_at_ms),
        };
        let id = self.shard.partitions.direct_version(newest);
        self.write(fields.into_iter().map(|(f, v)| self.entry(&f, id, Some((v, key_expiry)))).collect()).await?;
        Ok(Reply::Integer(added))
    }

    async fn hdel(&self, fields: Vec<Vec<u8>>) -> OpResult {
        let mut present: Vec<(Vec<u8>, st::Ts)> = Vec::new();
        for f in fields {
            if f.is_empty() || present.iter().any(|(p, _)| *p == f) {
                continue;
            }
            if let Some(r) = self.row(&f).await? {
                present.push((f, r.id.ts));
            }
        }
        let Some(newest) = present.iter().map(|(_, ts)| *ts).max() else { return Ok(Reply::Integer(0)) };
        let id = self.shard.partitions.direct_version(Some(newest));
        self.write(present.iter().map(|(f, _)| self.entry(f, id, None)).collect()).await?;
        Ok(Reply::Integer(i64::try_from(present.len()).unwrap_or(i64::MAX)))
    }
}

/// A value as Redis reads an integer: optional `-`, digits, no spaces, no `+`, no leading zeros.
fn parse_integer(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || digits.starts_with('+') || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_integer;

    #[test]
    fn integers_parse_as_redis_reads_them() {
        assert_eq!(parse_integer(b"42"), Some(42));
        assert_eq!(parse_integer(b"-7"), Some(-7));
        assert_eq!(parse_integer(b"0"), Some(0));
        for bad in [&b""[..], b" 1", b"1 ", b"+1", b"01", b"-", b"1.5", b"9223372036854775808"] {
            assert_eq!(parse_integer(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
