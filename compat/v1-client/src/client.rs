//! A blocking v1 client: one TCP connection, a handshake asking for protocol version 1, then one
//! request at a time, each answered before the next is sent. It is deliberately the simplest
//! client the protocol allows (no pipelining, no shard routing: any port serves any request),
//! so it reads as the reference of what a v1 client sends.

use crate::error::Error;
use crate::frame::{self, DEFAULT_MAX_FRAME_BYTES};
use crate::reply::{self, Reply};
use crate::request::{self, Body, Builder};
use crate::types::{
    AlterTable, BatchOp, Durability, Greeting, History, Key, PROTOCOL_VERSION, Row, ScanPage, ScanRange, ScanRow, Stat,
    TableInfo, TableSettings, Topology, Version, WriteOptions,
};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How a client connects.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sent in the handshake, for the server's logs.
    pub client_name: String,
    /// Longest a connect, a send or a reply may take. Default 30 s.
    pub timeout: Duration,
    /// Largest reply accepted, bytes. Default [`DEFAULT_MAX_FRAME_BYTES`].
    pub max_frame_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            client_name: "nacre-v1-client".to_owned(),
            timeout: Duration::from_secs(30),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

/// A connection speaking protocol version 1.
#[derive(Debug)]
pub struct V1Client {
    stream: TcpStream,
    options: Options,
    /// The id of the next request; ids count up from 1 (0 is the server's, for connection
    /// errors).
    next_id: u64,
    greeting: Greeting,
}

impl V1Client {
    /// Connects to `addr` and handshakes asking for version 1.
    pub fn connect(addr: SocketAddr, options: Options) -> Result<V1Client, Error> {
        V1Client::connect_asking(addr, options, PROTOCOL_VERSION)
    }

    /// Connects and handshakes asking for `protocol_version`. The handshake names the highest
    /// version a client speaks; asking for more than 1 only tests the server's negotiation, since
    /// this client still sends v1 frames whatever the answer.
    pub fn connect_asking(addr: SocketAddr, options: Options, protocol_version: u32) -> Result<V1Client, Error> {
        let stream = TcpStream::connect_timeout(&addr, options.timeout)
            .map_err(|source| Error::Io { op: "connecting", source })?;
        let configure = |r: std::io::Result<()>| r.map_err(|source| Error::Io { op: "configuring the socket", source });
        configure(stream.set_nodelay(true))?;
        configure(stream.set_read_timeout(Some(options.timeout)))?;
        configure(stream.set_write_timeout(Some(options.timeout)))?;
        let name = options.client_name.clone();
        let mut client = V1Client { stream, options, next_id: 1, greeting: empty_greeting() };
        let reply = client.call(|fbb| request::handshake(fbb, protocol_version, &name))?;
        client.greeting = expect(reply, "HandshakeOk", |r| match r {
            Reply::Handshake(g) => Ok(g),
            other => Err(other),
        })?;
        Ok(client)
    }

    /// The server's answer to the handshake.
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// Sends one request and waits for its reply.
    fn call(&mut self, build: impl FnOnce(&mut Builder) -> Body) -> Result<Reply, Error> {
        let id = self.next_id;
        self.next_id += 1;
        frame::write(&mut self.stream, &request::frame(id, build))?;
        let (got, reply) = reply::decode(&frame::read(&mut self.stream, self.options.max_frame_bytes)?)?;
        match (got, reply) {
            (0, Reply::Error(e)) => Err(Error::Connection(e)),
            (got, reply) if got == id => Ok(reply),
            (got, _) => Err(Error::WrongRequestId { expected: id, got }),
        }
    }

    /// The partition-to-port map.
    pub fn topology(&mut self) -> Result<Topology, Error> {
        let reply = self.call(request::get_topology)?;
        expect(reply, "TopologyReply", |r| if let Reply::Topology(t) = r { Ok(t) } else { Err(r) })
    }

    /// Creates a table.
    pub fn create_table(&mut self, name: &str, settings: &TableSettings) -> Result<TableInfo, Error> {
        let reply = self.call(|fbb| request::create_table(fbb, name, settings))?;
        expect(reply, "TableReply", |r| if let Reply::Table(t) = r { Ok(t) } else { Err(r) })
    }

    /// Changes some settings of a table.
    pub fn alter_table(&mut self, alter: &AlterTable) -> Result<TableInfo, Error> {
        let reply = self.call(|fbb| request::alter_table(fbb, alter))?;
        expect(reply, "TableReply", |r| if let Reply::Table(t) = r { Ok(t) } else { Err(r) })
    }

    /// Drops a table.
    pub fn drop_table(&mut self, name: &str) -> Result<(), Error> {
        let reply = self.call(|fbb| request::drop_table(fbb, name))?;
        expect(reply, "DropTableReply", |r| if let Reply::TableDropped = r { Ok(()) } else { Err(r) })
    }

    /// Every table, in name order.
    pub fn list_tables(&mut self) -> Result<Vec<TableInfo>, Error> {
        let reply = self.call(request::list_tables)?;
        expect(reply, "ListTablesReply", |r| if let Reply::Tables(t) = r { Ok(t) } else { Err(r) })
    }

    /// Writes `value` at `key`.
    pub fn put(&mut self, table: &str, key: &Key, value: &[u8], options: &WriteOptions) -> Result<Version, Error> {
        let reply = self.call(|fbb| request::put(fbb, table, key, value, options))?;
        expect(reply, "WriteReply", |r| if let Reply::Written(v) = r { Ok(v) } else { Err(r) })
    }

    /// Deletes `key` (writes a tombstone).
    pub fn delete(&mut self, table: &str, key: &Key, options: &WriteOptions) -> Result<Version, Error> {
        let reply = self.call(|fbb| request::delete(fbb, table, key, options))?;
        expect(reply, "WriteReply", |r| if let Reply::Written(v) = r { Ok(v) } else { Err(r) })
    }

    /// Writes `ops` atomically; they must fall in one partition.
    pub fn write_batch(&mut self, table: &str, ops: &[BatchOp], durability: Durability) -> Result<Vec<Version>, Error> {
        let reply = self.call(|fbb| request::write_batch(fbb, table, ops, durability))?;
        expect(reply, "WriteBatchReply", |r| if let Reply::BatchWritten(v) = r { Ok(v) } else { Err(r) })
    }

    /// The visible value of `key` (as of `as_of`, or the latest); `None` if there is none.
    pub fn get(&mut self, table: &str, key: &Key, as_of: Option<u64>) -> Result<Option<Row>, Error> {
        let reply = self.call(|fbb| request::get(fbb, table, key, as_of))?;
        expect(reply, "GetReply", |r| if let Reply::Get(row) = r { Ok(row) } else { Err(r) })
    }

    /// The visible values of `keys`, one result per key in order.
    pub fn multi_get(&mut self, table: &str, keys: &[Key], as_of: Option<u64>) -> Result<Vec<Option<Row>>, Error> {
        let reply = self.call(|fbb| request::multi_get(fbb, table, keys, as_of))?;
        expect(reply, "MultiGetReply", |r| if let Reply::MultiGet(rows) = r { Ok(rows) } else { Err(r) })
    }

    /// One page of `range` within `partition_key`, resuming after `cursor` if given.
    pub fn scan(
        &mut self,
        table: &str,
        partition_key: &[u8],
        range: &ScanRange,
        cursor: Option<&[u8]>,
    ) -> Result<ScanPage, Error> {
        let reply = self.call(|fbb| request::scan(fbb, table, partition_key, range, cursor))?;
        expect(reply, "ScanReply", |r| if let Reply::Scan(page) = r { Ok(page) } else { Err(r) })
    }

    /// Every row of `range`, following cursors page by page, at most `max_pages` pages (a bound
    /// on a server that never ends a range). Also returns how many pages it took.
    pub fn scan_all(
        &mut self,
        table: &str,
        partition_key: &[u8],
        range: &ScanRange,
        max_pages: usize,
    ) -> Result<(Vec<ScanRow>, usize), Error> {
        let mut rows = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        for pages in 1..=max_pages {
            let page = self.scan(table, partition_key, range, cursor.as_deref())?;
            rows.extend(page.rows);
            match page.cursor {
                None => return Ok((rows, pages)),
                next => cursor = next,
            }
        }
        Err(Error::TooManyPages { max_pages })
    }

    /// Every retained version of `key`, greatest first.
    pub fn versions(&mut self, table: &str, key: &Key) -> Result<History, Error> {
        let reply = self.call(|fbb| request::versions(fbb, table, key))?;
        expect(reply, "VersionsReply", |r| if let Reply::Versions(h) = r { Ok(h) } else { Err(r) })
    }

    /// Server, shard and partition counters.
    pub fn stats(&mut self) -> Result<Vec<Stat>, Error> {
        let reply = self.call(request::get_stats)?;
        expect(reply, "StatsReply", |r| if let Reply::Stats(s) = r { Ok(s) } else { Err(r) })
    }
}

/// The reply's payload if it is the `expected` kind; a server error as [`Error::Server`].
fn expect<T>(reply: Reply, expected: &'static str, pick: impl FnOnce(Reply) -> Result<T, Reply>) -> Result<T, Error> {
    match pick(reply) {
        Ok(value) => Ok(value),
        Err(Reply::Error(e)) => Err(Error::Server(e)),
        Err(other) => Err(Error::UnexpectedReply { expected, got: other.kind() }),
    }
}

/// A placeholder until the handshake answers.
fn empty_greeting() -> Greeting {
    Greeting {
        protocol_version: 0,
        server_name: String::new(),
        server_version: String::new(),
        topology: Topology { partition_count: 0, shard_count: 0, owner_ports: Vec::new() },
    }
}
