//! Table administration. Shard 0 owns the catalog: it applies a change, saves it durably, then
//! installs it on every other shard before answering, so a client that sees its table created
//! can use it on any shard.

use crate::catalog::{Catalog, TableEntry};
use crate::convert::{self, error};
use crate::shard::Shard;
use nacre_wire::{self as wire, ErrorCode, Reply};
use std::rc::Rc;

const MAX_TABLE_NAME_BYTES: usize = 255;

fn table_info(name: &str, entry: &TableEntry) -> wire::TableInfo {
    wire::TableInfo { name: name.to_string(), settings: convert::wire_settings(entry), id: entry.id }
}

impl Shard {
    /// Every table, in name order.
    pub fn list_tables(&self) -> Reply {
        Reply::Tables(self.catalog.borrow().tables.iter().map(|(n, e)| table_info(n, e)).collect())
    }

    /// Installs `catalog` on this shard: its engines learn every table's settings and every
    /// dropped table's id, and its Kafka consumers start and stop to match the catalog's sources.
    pub async fn install_catalog(self: &Rc<Self>, catalog: Catalog) {
        for engine in self.partitions.engines.values() {
            catalog.install_on(engine);
        }
        *self.catalog.borrow_mut() = catalog.clone();
        self.sync_sources(&catalog).await;
    }

    /// Saves `catalog` and installs it on every shard, this one first; returns once every
    /// shard has it.
    pub(crate) async fn publish(self: &Rc<Self>, catalog: Catalog) -> Result<(), wire::ErrorReply> {
        catalog.save(&self.process.root).map_err(|e| error(ErrorCode::Io, format!("saving the catalog: {e:#}")))?;
        self.install_catalog(catalog.clone()).await;
        for shard in (0..self.process.shard_count).filter(|s| *s != self.id) {
            let copy = catalog.clone();
            let install = move |s: Rc<Shard>| async move { s.install_catalog(copy).await };
            self.mesh.invoke_on(shard, install).await.map_err(|e| error(ErrorCode::ShuttingDown, e.to_string()))?;
        }
        Ok(())
    }

    pub(crate) async fn create_table(self: &Rc<Self>, c: wire::CreateTable) -> Result<Reply, wire::ErrorReply> {
        let _serial = self.admin.lock().await;
        if c.name.is_empty() || c.name.len() > MAX_TABLE_NAME_BYTES {
            return Err(error(ErrorCode::BadRequest, format!("table names are 1 to {MAX_TABLE_NAME_BYTES} bytes")));
        }
        let mut catalog = self.catalog.borrow().clone();
        let entry = convert::table_entry(catalog.next_id, &c.settings)?;
        if catalog.tables.contains_key(&c.name) {
            return Err(error(ErrorCode::TableExists, format!("table {:?} exists", c.name)));
        }
        catalog.next_id += 1;
        catalog.tables.insert(c.name.clone(), entry.clone());
        self.publish(catalog).await?;
        Ok(Reply::Table(table_info(&c.name, &entry)))
    }

    pub(crate) async fn alter_table(self: &Rc<Self>, a: wire::AlterTable) -> Result<Reply, wire::ErrorReply> {
        let _serial = self.admin.lock().await;
        let mut catalog = self.catalog.borrow().clone();
        let Some(old) = catalog.tables.get(&a.name) else {
            return Err(error(ErrorCode::UnknownTable, format!("no table named {:?}", a.name)));
        };
        let mut settings = convert::wire_settings(old);
        if let Some(v) = a.max_versions {
            settings.max_versions = v;
        }
        if let Some(v) = a.version_retention_ms {
            settings.version_retention_ms = v;
        }
        if let Some(v) = a.default_ttl_ms {
            settings.default_ttl_ms = v;
        }
        if let Some(v) = a.tie_rule {
            settings.tie_rule = v;
        }
        if let Some(v) = a.rollback_window_ms {
            settings.rollback_window_ms = v;
        }
        let entry = convert::table_entry(old.id, &settings)?;
        catalog.tables.insert(a.name.clone(), entry.clone());
        self.publish(catalog).await?;
        // The table's loads are protected by its new window from now, not at the next tick.
        self.protect_loads_in_their_rollback_window();
        Ok(Reply::Table(table_info(&a.name, &entry)))
    }

    pub(crate) async fn drop_table(self: &Rc<Self>, d: wire::DropTable) -> Result<Reply, wire::ErrorReply> {
        let _serial = self.admin.lock().await;
        let mut catalog = self.catalog.borrow().clone();
        if catalog.tables.remove(&d.name).is_none() {
            return Err(error(ErrorCode::UnknownTable, format!("no table named {:?}", d.name)));
        }
        // The id is never reused, so the dropped table's data can never reappear under a new
        // table; every shard's engines learn the id is dropped, and compaction purges its bytes.
        self.publish(catalog).await?;
        // Its loads have nothing left to roll back into view: no window protects them.
        self.protect_loads_in_their_rollback_window();
        Ok(Reply::TableDropped)
    }
}
