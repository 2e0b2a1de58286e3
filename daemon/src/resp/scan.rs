//! `SCAN` over a table spread across every partition and shard. A cursor is a number, as
//! clients expect; it names a [`ScanState`] kept by the shard that issued it (its low byte is
//! that shard), so a client may continue on any connection. States are bounded per shard, least
//! recently used forgotten first; a forgotten cursor is an error, never a silent restart. A cursor
//! stays valid after use, so a client may retry a call.

use super::glob;
use super::reply::Reply;
use crate::shard::Shard;
use nacre_storage as st;
use std::rc::Rc;

/// Where a table-wide iteration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanState {
    /// The tables to visit, in order: the door's default table, then each prefix table.
    pub tables: Vec<st::TableId>,
    /// Index into `tables`.
    pub table: usize,
    /// The partition being listed.
    pub partition: u32,
    /// The last key listed in that partition.
    pub after: Option<Vec<u8>>,
}

/// A request for one page of a partition's keys, answered by the partition's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysAsk {
    /// The partition.
    pub partition: u32,
    /// What to list.
    pub request: st::KeysRequest,
}

/// One `SCAN` call, possibly forwarded to the shard that issued its cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCall {
    /// The cursor; 0 starts a new iteration.
    pub cursor: u64,
    /// The tables a new iteration visits.
    pub tables: Vec<st::TableId>,
    /// `MATCH`.
    pub pattern: Option<Vec<u8>>,
    /// `COUNT`: about how many keys to examine.
    pub count: usize,
}

/// Bits of a cursor that name the shard holding its state.
const SHARD_BITS: u32 = 8;

/// The shard that issued `cursor`.
pub fn home_of(cursor: u64) -> usize {
    (cursor & ((1 << SHARD_BITS) - 1)) as usize
}

/// Per-shard cursor states.
pub struct Cursors {
    states: std::cell::RefCell<lru::LruCache<u64, ScanState>>,
    next: std::cell::Cell<u64>,
}

impl Cursors {
    /// Room for `max` open cursors.
    pub fn new(max: usize) -> Cursors {
        let cap = std::num::NonZeroUsize::new(max.max(1)).expect("at least 1");
        Cursors { states: std::cell::RefCell::new(lru::LruCache::new(cap)), next: std::cell::Cell::new(1) }
    }

    fn issue(&self, shard: usize, state: ScanState) -> u64 {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1).max(1));
        let cursor = (n << SHARD_BITS) | shard as u64;
        self.states.borrow_mut().put(cursor, state);
        cursor
    }

    /// The state `cursor` names; it stays, so a client may retry a call.
    fn get(&self, cursor: u64) -> Option<ScanState> {
        self.states.borrow_mut().get(&cursor).cloned()
    }
}

/// Lists one page of `ask.partition`'s keys; this shard owns the partition.
pub async fn list_keys(shard: &Shard, ask: &KeysAsk) -> Result<st::KeysPage, String> {
    let engine = shard
        .partitions
        .engines
        .get(&ask.partition)
        .ok_or_else(|| format!("partition {} is not here", ask.partition))?;
    engine.partition_keys(&ask.request).await.map_err(|e| e.to_string())
}

async fn page(shard: &Rc<Shard>, ask: KeysAsk) -> Result<st::KeysPage, Reply> {
    let owner = shard.process.owner(ask.partition);
    let listed = shard.mesh.invoke_on(owner, move |s| async move { list_keys(&s, &ask).await }).await;
    listed.unwrap_or_else(|e| Err(e.to_string())).map_err(Reply::err)
}

/// Runs one `SCAN` call on the shard that holds its cursor (this one).
pub async fn step(shard: &Rc<Shard>, call: ScanCall, resolve: impl Fn(&[u8]) -> Option<st::TableId>) -> Reply {
    let mut state = if call.cursor == 0 {
        ScanState { tables: call.tables, table: 0, partition: 0, after: None }
    } else {
        match shard.resp.cursors.get(call.cursor) {
            Some(s) => s,
            None => return Reply::err("invalid or expired SCAN cursor"),
        }
    };
    let partitions = shard.process.partition_count;
    let mut keys = Vec::new();
    let mut examined = 0usize;
    while examined < call.count {
        let Some(&table) = state.tables.get(state.table) else { break };
        if state.partition >= partitions {
            state = ScanState { table: state.table + 1, partition: 0, after: None, ..state };
            continue;
        }
        let request = st::KeysRequest { table, after: state.after.take(), limit: call.count - examined };
        let got = match page(shard, KeysAsk { partition: state.partition, request }).await {
            Ok(p) => p,
            Err(e) => return e,
        };
        examined += got.keys.len().max(1);
        for key in got.keys {
            // A key written through another door into a table the prefixes do not send it to
            // is not reachable by RESP commands, so SCAN does not show it either.
            let reachable = resolve(&key) == Some(table);
            if reachable && call.pattern.as_ref().is_none_or(|p| glob::matches(p, &key)) {
                keys.push(Reply::Bulk(key));
            }
        }
        match got.cursor {
            Some(c) => state.after = Some(c),
            None => state.partition += 1,
        }
    }
    let done = state.table >= state.tables.len();
    let cursor = if done { 0 } else { shard.resp.cursors.issue(shard.id, state) };
    Reply::Array(vec![Reply::text(cursor.to_string()), Reply::Array(keys)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_name_their_shard_and_are_forgotten_least_recently_used_first() {
        let cursors = Cursors::new(2);
        let state = ScanState { tables: vec![st::TableId(1)], table: 0, partition: 3, after: None };
        let a = cursors.issue(5, state.clone());
        let b = cursors.issue(5, state.clone());
        let c = cursors.issue(5, state.clone());
        assert_eq!([home_of(a), home_of(b), home_of(c)], [5, 5, 5]);
        assert_ne!(a, 0);
        assert_eq!(cursors.get(a), None, "the oldest is forgotten past the bound");
        assert_eq!(cursors.get(c), Some(state.clone()));
        assert_eq!(cursors.get(c), Some(state), "a call may be retried");
    }
}
