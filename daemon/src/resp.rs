//! The RESP (Redis protocol) front door: RESP2, and RESP3 after `HELLO 3`, on every shard
//! through one SO_REUSEPORT address, each key's commands run by the shard that owns it.
//!
//! Redis data maps onto rows: a string `key` is the row (partition key `key`, empty sort key); a
//! hash field `f` of `key` is the row (`key`, `f`). Keys go to the configured default table,
//! or to the table of the longest configured prefix they start with (the key is stored whole).
//! docs/resp.md lists the commands and every difference from Redis.

mod command;
mod command_metrics;
mod connection;
mod glob;
mod info;
mod keyspace;
pub mod parser;
pub mod reply;
mod scan;

pub use connection::serve;
pub use keyspace::KeyLocks;
pub use reply::Reply;
pub use scan::Cursors;

use crate::budget::ByteBudget;
use crate::config::Config;
use crate::shard::Shard;
use nacre_storage as st;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

/// The door's per-shard state.
pub struct RespDoor {
    /// Key lock stripes for read-modify-write commands.
    pub locks: KeyLocks,
    /// Open SCAN cursors issued here.
    pub cursors: Cursors,
    /// Reply bytes computed and not yet written, all connections together.
    pub reply_bytes: Rc<ByteBudget>,
    next_client: Cell<u64>,
    started: Instant,
    /// Commands by command, refusals, outcomes and latency.
    pub(crate) metrics: command_metrics::CommandMetrics,
}

impl RespDoor {
    /// The door's state as the configuration bounds it.
    pub fn new(config: &Config) -> RespDoor {
        RespDoor {
            locks: KeyLocks::default(),
            metrics: command_metrics::CommandMetrics::default(),
            cursors: Cursors::new(config.resp.max_scan_cursors),
            reply_bytes: ByteBudget::new(config.resp.max_pending_reply_bytes_per_shard),
            next_client: Cell::new(1),
            started: Instant::now(),
        }
    }
}

/// Opens the door on this shard, if the configuration asks for it: makes sure its tables exist,
/// binds the shared address and starts accepting in `queue`.
pub async fn open_door(shard: &Rc<Shard>, queue: glommio::TaskQueueHandle) -> anyhow::Result<Vec<glommio::Task<()>>> {
    let Some(addr) = shard.process.config.resp.listen_addr() else { return Ok(Vec::new()) };
    prepare_tables(shard).await?;
    let listener = crate::listener::bind(addr).map_err(|e| anyhow::anyhow!("binding the RESP door {addr}: {e}"))?;
    tracing::info!(shard = shard.id, resp = %addr, table = %shard.process.config.resp.table, "serving RESP");
    let accepting =
        crate::listener::accept_loop(shard.clone(), listener, crate::listener::Door::Resp, |s, stream| async move {
            serve(&s, stream).await
        });
    let task = glommio::spawn_local_into(accepting, queue).map_err(|e| anyhow::anyhow!("spawning accept: {e}"))?;
    Ok(vec![task])
}

impl Shard {
    /// The table a RESP key lives in: the longest matching prefix's, else the default.
    pub fn resp_table_of(&self, key: &[u8]) -> Result<st::TableId, Reply> {
        let resp = &self.process.config.resp;
        let name = resp
            .prefixes
            .iter()
            .filter(|(prefix, _)| key.starts_with(prefix.as_bytes()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(resp.table.as_str(), |(_, table)| table.as_str());
        self.catalog
            .borrow()
            .get(name)
            .map(|entry| entry.table_id())
            .ok_or_else(|| Reply::err(format!("no table named '{name}' (create it with: nacre table create {name})")))
    }

    /// Every table the door's keys may live in: the default, then each prefix's.
    pub fn resp_tables(&self) -> Result<Vec<st::TableId>, Reply> {
        let catalog = self.catalog.borrow();
        self.process
            .config
            .resp
            .table_names()
            .into_iter()
            .map(|n| catalog.get(n).map(|e| e.table_id()).ok_or_else(|| Reply::err(format!("no table named '{n}'"))))
            .collect()
    }

    /// A client id unique in the process: a per-shard counter, with the shard in the low byte.
    fn next_resp_client_id(&self) -> u64 {
        let n = self.resp.next_client.get();
        self.resp.next_client.set(n + 1);
        (n << 8) | self.id as u64
    }

    fn resp_info_facts(&self) -> info::InfoFacts {
        let resp = &self.process.config.resp;
        info::InfoFacts {
            port: resp.listen_addr().map_or(0, |a| a.port()),
            uptime_s: self.resp.started.elapsed().as_secs(),
            clients: self.life.connections(),
            shards: self.process.shard_count,
            partitions: self.process.partition_count,
            table: resp.table.clone(),
        }
    }
}

/// How long a shard waits for shard 0 to publish the door's tables at startup.
const TABLES_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Makes sure the door's tables exist before the door opens: shard 0 (which owns the catalog)
/// creates the missing ones; every other shard waits until shard 0's catalog reaches it.
async fn prepare_tables(shard: &Rc<Shard>) -> anyhow::Result<()> {
    let names = shard.process.config.resp.table_names();
    let missing = |shard: &Shard| -> Vec<String> {
        let catalog = shard.catalog.borrow();
        names.iter().filter(|n| catalog.get(n).is_none()).map(|n| n.to_string()).collect()
    };
    if shard.id == 0 {
        for name in missing(shard) {
            let create = nacre_wire::CreateTable { name: name.clone(), settings: nacre_wire::TableSettings::default() };
            match shard.create_table(create).await {
                Ok(_) => tracing::info!(table = %name, "created the RESP door's table"),
                Err(e) if e.code == nacre_wire::ErrorCode::TableExists => {}
                Err(e) => anyhow::bail!("creating the RESP door's table {name:?}: {}", e.message),
            }
        }
        return Ok(());
    }
    let start = Instant::now();
    while !missing(shard).is_empty() {
        if start.elapsed() > TABLES_DEADLINE {
            anyhow::bail!("the RESP door's tables {:?} did not reach shard {}", missing(shard), shard.id);
        }
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
    Ok(())
}
