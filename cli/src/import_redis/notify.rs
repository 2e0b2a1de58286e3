//! Keyspace notifications: which keys changed in Redis while the import ran. Before the scan
//! it turns on `notify-keyspace-events` if needed (and puts the old setting back at the end),
//! and subscribes a dedicated connection to `__keyspace@<db>__:*`. Each notification names a
//! key; the event does not matter, because a notified key is simply read again.
//!
//! A `PING` on the subscribed connection is a barrier: Redis answers in order, so every
//! notification of a command that ran before the `PING` arrives before its `PONG`. [`Watch::barrier`]
//! therefore drains deterministically. The set of notified keys is bounded by
//! [`MAX_PENDING_KEYS`]; past it, the keys are dropped and [`Pending::overflowed`] asks for a
//! full rescan instead.

use super::ImportError;
use futures_lite::StreamExt;
use redis::aio::{MultiplexedConnection, PubSub};
use std::collections::BTreeSet;

/// Notified keys held before the next round; past this the round rescans everything instead.
pub const MAX_PENDING_KEYS: usize = 100_000;

/// The `notify-keyspace-events` classes the import needs: keyspace channels (`K`), generic
/// commands such as DEL, EXPIRE and RENAME (`g`), strings (`$`), hashes (`h`), expirations (`x`)
/// and evictions (`e`).
const NEEDED_CLASSES: &str = "Kg$hxe";

/// The classes Redis's `A` stands for.
const ALL_ALIAS: &str = "g$lshzxetd";

/// The keys notified since the last [`Watch::take`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// The keys, if they fit in [`MAX_PENDING_KEYS`].
    pub keys: BTreeSet<Vec<u8>>,
    /// More keys changed than fit: every key must be read again.
    pub overflowed: bool,
}

impl Pending {
    /// True if nothing was notified.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && !self.overflowed
    }

    fn note(&mut self, key: Vec<u8>) {
        if self.overflowed {
            return;
        }
        if self.keys.len() >= MAX_PENDING_KEYS && !self.keys.contains(&key) {
            self.keys.clear();
            self.overflowed = true;
            return;
        }
        self.keys.insert(key);
    }
}

/// The `notify-keyspace-events` setting to apply so that `existing` covers what the import
/// needs, or `None` if it already does.
pub fn flags_with_keyspace(existing: &str) -> Option<String> {
    let has = |c: char| existing.contains(c) || existing.contains('A') && ALL_ALIAS.contains(c);
    let missing: String = NEEDED_CLASSES.chars().filter(|c| !has(*c)).collect();
    if missing.is_empty() { None } else { Some(format!("{existing}{missing}")) }
}

/// The key a keyspace channel names, if it is one of database `db`'s.
pub fn key_of_channel(channel: &[u8], db: i64) -> Option<Vec<u8>> {
    channel.strip_prefix(format!("__keyspace@{db}__:").as_bytes()).map(<[u8]>::to_vec)
}

/// A live subscription to one database's keyspace notifications.
pub struct Watch {
    pubsub: PubSub,
    db: i64,
    pattern: String,
    /// The setting found before the import changed it; `None` if it was left alone.
    restore: Option<String>,
    pending: Pending,
}

/// Why notifications could not be set up; the import goes on without them.
#[derive(Debug, thiserror::Error)]
#[error("keyspace notifications are unavailable ({op}: {source})")]
pub struct Unavailable {
    op: &'static str,
    #[source]
    source: redis::RedisError,
}

impl Watch {
    /// Enables the needed notification classes (over `connection`) and subscribes a new
    /// connection of `client` to the keyspace channels of database `db`'s keys matching
    /// `pattern` (SCAN's and PSUBSCRIBE's glob syntax are the same).
    pub async fn start(
        client: &redis::Client,
        connection: &mut MultiplexedConnection,
        db: i64,
        pattern: &str,
    ) -> Result<Watch, Unavailable> {
        let existing: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(connection)
            .await
            .map_err(|source| Unavailable { op: "CONFIG GET", source })?;
        let existing = existing.get(1).cloned().unwrap_or_default();
        let mut restore = None;
        if let Some(flags) = flags_with_keyspace(&existing) {
            set_flags(connection, &flags).await.map_err(|source| Unavailable { op: "CONFIG SET", source })?;
            restore = Some(existing);
        }
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(format!("__keyspace@{db}__:{pattern}")).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match subscribed.await {
            Ok(pubsub) => Ok(Watch { pubsub, db, pattern: pattern.to_owned(), restore, pending: Pending::default() }),
            Err(source) => {
                if let Some(old) = &restore {
                    // The subscription failed; the setting goes back as it was, best effort.
                    let _ = set_flags(connection, old).await;
                }
                Err(Unavailable { op: "PSUBSCRIBE", source })
            }
        }
    }

    /// Moves the notifications that have already arrived into the pending set, without waiting.
    ///
    /// The drain runs outside tokio's cooperative budget: within it, the message channel reports
    /// "nothing ready" once the task has used its budget (128 operations), even with messages
    /// waiting, and a backlog would be left behind a barrier that promised to have drained it.
    pub async fn drain_ready(&mut self) -> Result<(), ImportError> {
        tokio::task::unconstrained(self.drain_arrived()).await
    }

    async fn drain_arrived(&mut self) -> Result<(), ImportError> {
        let db = self.db;
        let stream = self.pubsub.on_message();
        let mut stream = std::pin::pin!(stream);
        loop {
            match futures_lite::future::poll_once(stream.next()).await {
                None => return Ok(()),
                Some(None) => return Err(ImportError::NotificationsLost),
                Some(Some(message)) => {
                    let channel: Vec<u8> = message.get_channel().unwrap_or_default();
                    if let Some(key) = key_of_channel(&channel, db) {
                        self.pending.note(key);
                    }
                }
            }
        }
    }

    /// Sends a `PING` and drains every notification that arrived before its reply: after this,
    /// every change Redis made before the call is in the pending set.
    pub async fn barrier(&mut self) -> Result<(), ImportError> {
        self.pubsub
            .ping::<redis::Value>()
            .await
            .map_err(|source| ImportError::Redis { op: "PING (notification barrier)", source })?;
        self.drain_ready().await
    }

    /// True if keys are waiting to be read again.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The notified keys, leaving the set empty.
    pub fn take(&mut self) -> Pending {
        std::mem::take(&mut self.pending)
    }

    /// Unsubscribes and puts the old `notify-keyspace-events` back, if the import changed it.
    pub async fn stop(mut self, connection: &mut MultiplexedConnection) -> Result<(), ImportError> {
        // The connection is dropped right after; a failed unsubscribe changes nothing.
        let _ = self.pubsub.punsubscribe(format!("__keyspace@{}__:{}", self.db, self.pattern)).await;
        if let Some(old) = &self.restore {
            set_flags(connection, old)
                .await
                .map_err(|source| ImportError::Redis { op: "CONFIG SET (restoring notify-keyspace-events)", source })?;
        }
        Ok(())
    }
}

async fn set_flags(connection: &mut MultiplexedConnection, flags: &str) -> redis::RedisResult<()> {
    redis::cmd("CONFIG").arg("SET").arg("notify-keyspace-events").arg(flags).query_async(connection).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_added_only_when_missing() {
        assert_eq!(flags_with_keyspace(""), Some("Kg$hxe".to_owned()));
        assert_eq!(flags_with_keyspace("KA"), None);
        assert_eq!(flags_with_keyspace("AKE"), None);
        assert_eq!(flags_with_keyspace("Ex"), Some("ExKg$he".to_owned()));
        assert_eq!(flags_with_keyspace("Kg$hxe"), None);
        assert_eq!(flags_with_keyspace("EA"), Some("EAK".to_owned()));
    }

    #[test]
    fn channels_name_keys_of_their_database_only() {
        assert_eq!(key_of_channel(b"__keyspace@0__:user:1", 0), Some(b"user:1".to_vec()));
        assert_eq!(key_of_channel(b"__keyspace@0__:", 0), Some(Vec::new()));
        assert_eq!(key_of_channel(b"__keyspace@1__:user:1", 0), None);
        assert_eq!(key_of_channel(b"__keyevent@0__:set", 0), None);
        assert_eq!(key_of_channel(b"__keyspace@10__:k", 1), None);
    }

    #[test]
    fn pending_keys_overflow_into_a_rescan() {
        let mut pending = Pending::default();
        assert!(pending.is_empty());
        for i in 0..MAX_PENDING_KEYS {
            pending.note(i.to_le_bytes().to_vec());
        }
        pending.note(0usize.to_le_bytes().to_vec());
        assert!(!pending.overflowed);
        assert_eq!(pending.keys.len(), MAX_PENDING_KEYS);
        pending.note(b"one more".to_vec());
        assert!(pending.overflowed);
        assert!(pending.keys.is_empty());
        assert!(!pending.is_empty());
    }
}
