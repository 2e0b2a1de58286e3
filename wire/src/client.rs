//! The async Rust client: connects and handshakes, learns the topology, and sends each request
//! to the port of the shard that owns its partition, over pipelined connections opened lazily
//! (one per shard port, on the host first connected to). Every call has a timeout and ends in
//! its reply or a [`ClientError`].
//!
//! It owns routing and the request/reply pairing rules; the sockets and the id matching live in
//! `client/connection.rs`. It never retries: a request that timed out or lost its connection
//! may or may not have been applied, and only the caller knows whether repeating it is safe.

mod connection;
mod error;
mod routing;

pub use error::{ClientError, Disconnect};

use crate::frame::FrameLimits;
use crate::request::Request;
use crate::response::Reply;
use crate::types::{
    AlterTable, BulkLoadInfo, Compact, CompactionReport, CreateTable, Delete, DropTable, Explain, Explanation, Get,
    Handshake, HandshakeOk, KeyHistory, LinkVerify, MultiGet, PROTOCOL_VERSION, Put, RemoveSource, Row, Scan, ScanPage,
    SourceInfo, SourceSpec, Stat, TableInfo, TableSettings, Topology, VersionId, Versions, WriteBatch,
};
use connection::Connection;
use routing::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How a client behaves, each field with its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Sent in the handshake, for the server's logs and metrics. Default `nacre-wire`.
    pub client_name: String,
    /// Longest a call waits for its reply, including the wait for an in-flight permit and for
    /// a connection to open. Default 5 s.
    pub timeout: Duration,
    /// Longest [`Client::connect`] waits for the first connection and handshake. Default 5 s.
    pub connect_timeout: Duration,
    /// Requests in flight per connection; more wait for a slot (backpressure). Default 1,024.
    pub max_in_flight: usize,
    /// Frame limits for requests sent and replies read. Default [`FrameLimits::default`].
    pub frame_limits: FrameLimits,
    /// Send each keyed request straight to its owner's port. When false, everything goes
    /// through the first connection (the server forwards). Default true.
    pub shard_aware: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            client_name: "nacre-wire".to_owned(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_in_flight: 1024,
            frame_limits: FrameLimits::default(),
            shard_aware: true,
        }
    }
}

/// A connected client. Share it between tasks behind an `Arc`; every method takes `&self`.
pub struct Client {
    options: ClientOptions,
    server: HandshakeOk,
    router: Router,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("server", &self.server).finish_non_exhaustive()
    }
}

/// Expects a reply of one kind; an error reply becomes [`ClientError::Server`].
macro_rules! expect_reply {
    ($request:expr, $reply:expr, $pattern:pat => $value:expr) => {
        match $reply {
            $pattern => Ok($value),
            Reply::Error(e) => Err(ClientError::from(e)),
            other => Err(ClientError::UnexpectedReply { request: $request, reply: other.kind() }),
        }
    };
}

/// The one load a link or rollback answers with.
fn one_load(request: &'static str, mut loads: Vec<BulkLoadInfo>) -> Result<BulkLoadInfo, ClientError> {
    match loads.len() {
        1 => Ok(loads.remove(0)),
        _ => Err(ClientError::UnexpectedReply { request, reply: "bulk_loads" }),
    }
}

impl Client {
    /// Connects to `addr`, performs the handshake and learns the topology from it. Must run
    /// inside a tokio runtime.
    pub async fn connect(addr: impl tokio::net::ToSocketAddrs, options: ClientOptions) -> Result<Client, ClientError> {
        let after = options.connect_timeout;
        let connecting = async {
            let mut addrs = tokio::net::lookup_host(addr).await.map_err(|source| ClientError::Resolve { source })?;
            let addr = addrs.next().ok_or_else(|| ClientError::Resolve {
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            })?;
            let (connection, server) = open(addr, &options).await?;
            Ok::<_, ClientError>((connection, server))
        };
        let (connection, server) = tokio::time::timeout(after, connecting)
            .await
            .map_err(|_| ClientError::Timeout { request: "connect", after })??;
        let router = Router::new(Arc::new(connection), server.topology.clone(), options.shard_aware);
        Ok(Client { options, server, router })
    }

    /// What the server said in the handshake.
    pub fn server(&self) -> &HandshakeOk {
        &self.server
    }

    /// The topology the client currently routes by.
    pub fn current_topology(&self) -> Topology {
        self.router.topology()
    }

    /// Sends any request, routed by its partition key, and returns the server's reply as is
    /// (an error reply included).
    pub async fn send(&self, request: Request) -> Result<Reply, ClientError> {
        let kind = request.kind();
        self.timed(kind, async {
            let connection = self.connection_for(request.partition_key()).await?;
            connection.call(&request).await
        })
        .await
    }

    /// Asks the server for its topology and routes by it from now on.
    pub async fn topology(&self) -> Result<Topology, ClientError> {
        let topology = expect_reply!("topology", self.send(Request::Topology).await?, Reply::Topology(t) => t)?;
        self.router.set_topology(topology.clone());
        Ok(topology)
    }

    /// Creates a table.
    pub async fn create_table(&self, name: &str, settings: TableSettings) -> Result<TableInfo, ClientError> {
        let request = Request::CreateTable(CreateTable { name: name.to_owned(), settings });
        expect_reply!("create_table", self.send(request).await?, Reply::Table(t) => t)
    }

    /// Changes some settings of a table.
    pub async fn alter_table(&self, alter: AlterTable) -> Result<TableInfo, ClientError> {
        expect_reply!("alter_table", self.send(Request::AlterTable(alter)).await?, Reply::Table(t) => t)
    }

    /// Drops a table and all its data.
    pub async fn drop_table(&self, name: &str) -> Result<(), ClientError> {
        let request = Request::DropTable(DropTable { name: name.to_owned() });
        expect_reply!("drop_table", self.send(request).await?, Reply::TableDropped => ())
    }

    /// Every table with its settings, in name order.
    pub async fn list_tables(&self) -> Result<Vec<TableInfo>, ClientError> {
        expect_reply!("list_tables", self.send(Request::ListTables).await?, Reply::Tables(t) => t)
    }

    /// Starts consuming Kafka topics into a table; returns the source with its topics' stream ids.
    pub async fn add_source(&self, spec: SourceSpec) -> Result<SourceInfo, ClientError> {
        expect_reply!("add_source", self.send(Request::AddSource(spec)).await?, Reply::Source(s) => s)
    }

    /// Links the bulk load built into `dir` (a directory on the server's machine), verifying it
    /// fully; returns the load as recorded. Re-linking a linked load changes nothing and says so
    /// in its note.
    pub async fn bulk_link(&self, dir: &str) -> Result<BulkLoadInfo, ClientError> {
        self.bulk_link_verified(dir, LinkVerify::Full).await
    }

    /// [`Client::bulk_link`], with the server reading and checking as much of the load as
    /// `verify` says before it commits.
    pub async fn bulk_link_verified(&self, dir: &str, verify: LinkVerify) -> Result<BulkLoadInfo, ClientError> {
        let request = Request::BulkLink { dir: dir.to_owned(), verify };
        one_load("bulk_link", expect_reply!("bulk_link", self.send(request).await?, Reply::BulkLoads(l) => l)?)
    }

    /// The state of load `load_id`, or of every load the server knows (`None`), by id.
    pub async fn bulk_status(&self, load_id: Option<u32>) -> Result<Vec<BulkLoadInfo>, ClientError> {
        expect_reply!("bulk_status", self.send(Request::BulkStatus { load_id }).await?, Reply::BulkLoads(l) => l)
    }

    /// Withdraws linked load `load_id`; returns it as recorded after the rollback.
    pub async fn bulk_rollback(&self, load_id: u32) -> Result<BulkLoadInfo, ClientError> {
        let request = Request::BulkRollback { load_id };
        one_load("bulk_rollback", expect_reply!("bulk_rollback", self.send(request).await?, Reply::BulkLoads(l) => l)?)
    }

    /// Compacts the partitions holding a table (every one, or one) whole; with `wait`, answers
    /// once done (a long compaction needs a client whose timeout allows for it).
    pub async fn compact(&self, compact: Compact) -> Result<CompactionReport, ClientError> {
        expect_reply!("compact", self.send(Request::Compact(compact)).await?, Reply::Compacted(r) => r)
    }

    /// Every source, in name order.
    pub async fn list_sources(&self) -> Result<Vec<SourceInfo>, ClientError> {
        expect_reply!("list_sources", self.send(Request::ListSources).await?, Reply::Sources(s) => s)
    }

    /// Stops consuming a source.
    pub async fn remove_source(&self, name: &str) -> Result<(), ClientError> {
        let request = Request::RemoveSource(RemoveSource { name: name.to_owned() });
        expect_reply!("remove_source", self.send(request).await?, Reply::SourceRemoved => ())
    }

    /// Writes a value; returns the version written.
    pub async fn put(&self, put: Put) -> Result<VersionId, ClientError> {
        expect_reply!("put", self.send(Request::Put(put)).await?, Reply::Written(v) => v)
    }

    /// Deletes a key; returns the tombstone's version.
    pub async fn delete(&self, delete: Delete) -> Result<VersionId, ClientError> {
        expect_reply!("delete", self.send(Request::Delete(delete)).await?, Reply::Written(v) => v)
    }

    /// Writes a batch atomically; its ops must fall in one partition, else
    /// [`ClientError::CrossPartitionBatch`] and nothing is sent. Returns the versions written,
    /// in op order.
    pub async fn write_batch(&self, batch: WriteBatch) -> Result<Vec<VersionId>, ClientError> {
        self.router.check_one_partition(&batch)?;
        let count = batch.ops.len();
        let versions =
            expect_reply!("write_batch", self.send(Request::WriteBatch(batch)).await?, Reply::BatchWritten(v) => v)?;
        if versions.len() != count {
            return Err(ClientError::UnexpectedReply { request: "write_batch", reply: "batch_written" });
        }
        Ok(versions)
    }

    /// The visible value of a key; `None` if there is none.
    pub async fn get(&self, get: Get) -> Result<Option<Row>, ClientError> {
        expect_reply!("get", self.send(Request::Get(get)).await?, Reply::Get(row) => row)
    }

    /// The visible values of several keys, in order. The keys are split by owning shard and the
    /// parts are sent together, pipelined, then reassembled.
    pub async fn multi_get(&self, multi_get: MultiGet) -> Result<Vec<Option<Row>>, ClientError> {
        self.timed("multi_get", async {
            let groups = self.router.split_multi_get(multi_get);
            let mut sent = Vec::with_capacity(groups.len());
            for group in &groups {
                let connection = self.router.connection(group.port, &self.options).await?;
                sent.push(connection);
            }
            let mut in_flight = Vec::with_capacity(groups.len());
            for (group, connection) in groups.iter().zip(&sent) {
                in_flight.push(connection.send(&group.request).await?);
            }
            let mut parts = Vec::with_capacity(groups.len());
            for pending in in_flight {
                parts.push(expect_reply!("multi_get", pending.reply().await?, Reply::MultiGet(rows) => rows)?);
            }
            routing::reassemble(&groups, parts)
        })
        .await
    }

    /// One page of a partition key's rows; pass the page's cursor back for the next.
    pub async fn scan(&self, scan: Scan) -> Result<ScanPage, ClientError> {
        expect_reply!("scan", self.send(Request::Scan(scan)).await?, Reply::Scan(page) => page)
    }

    /// Every retained version of a key, greatest first, with origins and the watermark.
    pub async fn versions(&self, versions: Versions) -> Result<KeyHistory, ClientError> {
        expect_reply!("versions", self.send(Request::Versions(versions)).await?, Reply::Versions(h) => h)
    }

    /// Why a key reads as it does: the verdict, every retained version with where it lives,
    /// and the rule step that decided.
    pub async fn explain(&self, explain: Explain) -> Result<Explanation, ClientError> {
        expect_reply!("explain", self.send(Request::Explain(explain)).await?, Reply::Explain(e) => e)
    }

    /// Server, shard and partition statistics.
    pub async fn stats(&self) -> Result<Vec<Stat>, ClientError> {
        expect_reply!("stats", self.send(Request::Stats).await?, Reply::Stats(s) => s)
    }

    /// The connection to the owner of `partition_key` (or the first connection).
    async fn connection_for(&self, partition_key: Option<&[u8]>) -> Result<Arc<Connection>, ClientError> {
        let port = self.router.port_for(partition_key);
        self.router.connection(port, &self.options).await
    }

    /// Runs `call` under the request timeout.
    async fn timed<T>(
        &self,
        request: &'static str,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        let after = self.options.timeout;
        tokio::time::timeout(after, call).await.map_err(|_| ClientError::Timeout { request, after })?
    }
}

/// Opens a connection and performs the handshake on it.
async fn open(addr: SocketAddr, options: &ClientOptions) -> Result<(Connection, HandshakeOk), ClientError> {
    let connection = Connection::open(addr, options.frame_limits, options.max_in_flight).await?;
    let hello =
        Request::Handshake(Handshake { protocol_version: PROTOCOL_VERSION, client_name: options.client_name.clone() });
    let ok = expect_reply!("handshake", connection.call(&hello).await?, Reply::Handshake(ok) => ok)?;
    if ok.protocol_version == 0 || ok.protocol_version > PROTOCOL_VERSION {
        return Err(ClientError::ProtocolVersion { client: PROTOCOL_VERSION, server: ok.protocol_version });
    }
    Ok((connection, ok))
}
