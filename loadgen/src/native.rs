//! The native target: one session is one connection per shard port, driven by one task with
//! no lock or channel per request. Each record goes to the connection of the shard that owns it,
//! as a shard-aware application sends it; up to `--pipeline` requests are in flight over the
//! session's connections, matched to their replies by request id. Every frame a turn produces
//! for a connection goes out in one write.
//!
//! A read is a `Get`, an update or insert a `Put`, a scan a `Scan` from the record's sort key
//! within its partition; a read-modify-write is a `Get` whose reply sends the `Put`, timed from
//! the `Get`'s send time to the `Put`'s reply.

use crate::keys::Router;
use crate::pacer::Pacer;
use crate::plan::{Clock, Plan};
use crate::tally::Tally;
use crate::workload::{Op, Operation};
use nacre_wire::{
    Durability, FrameLimits, GetRef, Handshake, PROTOCOL_VERSION, PutRef, Reply, ReplyInPlace, Request, RequestEncoder,
    Scan, decode_response, decode_response_in_place, encode_request,
};
use std::collections::HashMap;
use std::future::poll_fn;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Where a run's native sessions connect and what they write.
#[derive(Debug)]
pub struct Target {
    /// The shard ports' addresses, in [`Router::ports`] order.
    pub shards: Vec<SocketAddr>,
    /// Which shard owns a key.
    pub router: Router,
    /// The table.
    pub table: String,
    /// Write durability; `None` for the server's.
    pub durability: Option<Durability>,
}

/// A request sent and not yet answered.
#[derive(Debug, Clone, Copy)]
struct Pending {
    operation: Operation,
    /// When it was sent or, in open loop, due; its latency counts from here.
    start: Instant,
    /// For a read-modify-write, true once its write is the request in flight.
    writing: bool,
}

/// What a reply said, as far as a run counts it; a get's value is looked at in its frame, never
/// copied.
#[derive(Debug)]
enum Answer {
    /// A get found a value.
    Hit,
    /// A get found nothing.
    Miss,
    /// A scan's page of this many rows.
    Scanned(usize),
    /// An error, as the server described it.
    Failed(String),
    /// Anything else: a write's acknowledgement.
    Done,
}

impl Answer {
    fn of(reply: ReplyInPlace<'_>) -> Answer {
        match reply {
            ReplyInPlace::Get(Some(_)) => Answer::Hit,
            ReplyInPlace::Get(None) => Answer::Miss,
            ReplyInPlace::Other(Reply::Scan(page)) => Answer::Scanned(page.rows.len()),
            ReplyInPlace::Other(Reply::Error(e)) => Answer::Failed(format!("{:?}: {}", e.code, e.message)),
            ReplyInPlace::Other(_) => Answer::Done,
        }
    }
}

/// One shard connection of a session.
struct Connection {
    stream: TcpStream,
    out: Vec<u8>,
    input: Vec<u8>,
    pending: HashMap<u64, Pending, foldhash::fast::FixedState>,
    next_id: u64,
}

/// One session's connections and state.
struct Session {
    target: Arc<Target>,
    connections: Vec<Connection>,
    plan: Plan,
    pipeline: usize,
    timeout: Duration,
    in_flight: usize,
    value: Vec<u8>,
    limits: FrameLimits,
    /// One flatbuffers builder for every request the session sends.
    encoder: RequestEncoder,
    /// The next request's partition and sort keys, written in place (no allocation per request).
    partition_key: Vec<u8>,
    sort_key: Vec<u8>,
    /// Replies read in one turn, kept for the next (no allocation per read).
    replies: Vec<(Pending, Answer)>,
    tally: Tally,
}

/// Runs one session against `target` until `plan` ends; a connection that cannot be made or is
/// lost ends it, counting what was in flight as errors.
pub async fn run_session(target: Arc<Target>, plan: Plan, pipeline: usize, timeout: Duration) -> Tally {
    let mut tally = Tally::new();
    let mut connections = Vec::new();
    for addr in &target.shards {
        match tokio::time::timeout(timeout, connect(*addr)).await {
            Ok(Ok(stream)) => connections.push(Connection {
                stream,
                out: Vec::new(),
                input: Vec::with_capacity(READ_CHUNK),
                pending: HashMap::with_capacity_and_hasher(pipeline, foldhash::fast::FixedState::default()),
                next_id: 2,
            }),
            Ok(Err(e)) => {
                tally.error(&format!("connecting to {addr}: {e}"));
                return tally;
            }
            Err(_) => {
                tally.error(&format!("connecting to {addr}: no answer within {timeout:?}"));
                return tally;
            }
        }
    }
    let mut plan = plan;
    let value = plan.value();
    let mut session = Session {
        target,
        connections,
        plan,
        pipeline,
        timeout,
        in_flight: 0,
        value,
        limits: FrameLimits::default(),
        encoder: RequestEncoder::default(),
        partition_key: Vec::new(),
        sort_key: Vec::new(),
        replies: Vec::with_capacity(pipeline),
        tally,
    };
    if let Err(e) = session.drive().await {
        let measure_from = session.plan.measure_from;
        let lost: usize =
            session.connections.iter().map(|c| c.pending.values().filter(|p| p.start >= measure_from).count()).sum();
        session.tally.error(&e);
        session.tally.errors += lost as u64;
    }
    session.tally
}

/// Connects to a shard port and performs the handshake.
async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| format!("setting TCP_NODELAY: {e}"))?;
    let hello =
        Request::Handshake(Handshake { protocol_version: PROTOCOL_VERSION, client_name: "nacre-loadgen".to_owned() });
    // Id 0 is reserved for errors about the connection; the handshake is 1, requests follow.
    stream.write_all(&encode_request(1, &hello)).await.map_err(|e| format!("sending the handshake: {e}"))?;
    let limits = FrameLimits::default();
    let mut input = Vec::new();
    loop {
        if let Some(len) = limits.complete_frame_len(&input).map_err(|e| e.to_string())? {
            return match decode_response(&input[..len]).map_err(|e| e.to_string())? {
                (_, Reply::Handshake(ok)) if ok.protocol_version >= 1 => Ok(stream),
                (_, other) => Err(format!("the handshake was answered {other:?}")),
            };
        }
        if stream.read_buf(&mut input).await.map_err(|e| format!("reading the handshake: {e}"))? == 0 {
            return Err("the server closed the connection during the handshake".to_owned());
        }
    }
}

impl Session {
    async fn drive(&mut self) -> Result<(), String> {
        let mut clock = Clock::new(self.plan.schedule);
        let pacer: Option<Pacer> = self.plan.pacer.clone();
        let mut sending = true;
        // Armed once and moved on only when it fires, so a busy turn touches no timer.
        let mut last_reply = Instant::now();
        let silence = tokio::time::sleep(self.timeout);
        tokio::pin!(silence);
        let mut readable = vec![false; self.connections.len()];
        loop {
            if sending {
                sending = self.send_due(&mut clock);
            }
            self.flush()?;
            if !sending && self.in_flight == 0 && self.connections.iter().all(|c| c.out.is_empty()) {
                return Ok(());
            }
            if self.in_flight == 0 {
                // Nothing awaited: silence is not the server's fault.
                last_reply = Instant::now();
            }
            let wake_to_send = if sending && self.in_flight < self.pipeline { clock.next_due() } else { None };
            let due = async {
                match (&pacer, wake_to_send) {
                    (Some(pacer), Some(at)) => pacer.sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::pin!(due);
            let mut quiet = false;
            let connections = &self.connections;
            poll_fn(|cx| {
                let mut ready = false;
                for (c, connection) in connections.iter().enumerate() {
                    readable[c] = false;
                    if !connection.out.is_empty()
                        && let Poll::Ready(r) = connection.stream.poll_write_ready(cx)
                    {
                        r.map_err(|e| format!("waiting to write: {e}"))?;
                        ready = true;
                    }
                    if !connection.pending.is_empty()
                        && let Poll::Ready(r) = connection.stream.poll_read_ready(cx)
                    {
                        r.map_err(|e| format!("waiting to read: {e}"))?;
                        readable[c] = true;
                        ready = true;
                    }
                }
                if due.as_mut().poll(cx).is_ready() {
                    ready = true;
                }
                if silence.as_mut().poll(cx).is_ready() {
                    quiet = true;
                    ready = true;
                }
                if ready { Poll::Ready(Ok::<(), String>(())) } else { Poll::Pending }
            })
            .await?;
            if quiet {
                let quiet_until = last_reply + self.timeout;
                if self.in_flight > 0 && Instant::now() >= quiet_until {
                    return Err(format!("no reply within {:?}", self.timeout));
                }
                silence.as_mut().reset(quiet_until.max(Instant::now() + self.timeout / 2).into());
            }
            for (c, was_readable) in readable.iter().enumerate() {
                if *was_readable && self.read(c)? {
                    last_reply = Instant::now();
                }
            }
        }
    }

    /// Queues every request that may go now; false once the plan has ended.
    fn send_due(&mut self, clock: &mut Clock) -> bool {
        while self.in_flight < self.pipeline {
            let now = Instant::now();
            let Some(start) = clock.take(now) else { return true };
            if start >= self.plan.until {
                return false;
            }
            let Some(operation) = self.plan.next_operation() else { return false };
            if self.plan.schedule.is_some() && start >= self.plan.measure_from {
                self.tally.sent_late(u64::try_from(now.duration_since(start).as_nanos()).unwrap_or(u64::MAX));
            }
            self.send(Pending { operation, start, writing: false });
        }
        true
    }

    /// Encodes `pending`'s request onto its owner's connection: a get or put straight from the
    /// session's key and value buffers.
    fn send(&mut self, pending: Pending) {
        let operation = pending.operation;
        let (partition_key, sort_key) = (&mut self.partition_key, &mut self.sort_key);
        self.plan.layout.write_partition_key(operation.record, partition_key);
        self.plan.layout.write_sort_key(operation.record, sort_key);
        let c = self.target.router.connection_for(partition_key);
        let table = self.target.table.as_str();
        let connection = &mut self.connections[c];
        let id = connection.next_id;
        connection.next_id += 1;
        let out = &mut connection.out;
        match (operation.op, pending.writing) {
            (Op::Read, _) | (Op::ReadModifyWrite, false) => {
                let get = GetRef { table, partition_key, sort_key, as_of: None };
                self.encoder.encode_get_into(id, &get, out);
            }
            (Op::Update | Op::Insert, _) | (Op::ReadModifyWrite, true) => {
                let put = PutRef {
                    table,
                    partition_key,
                    sort_key,
                    value: &self.value,
                    ts: None,
                    ttl_ms: None,
                    durability: self.target.durability,
                };
                self.encoder.encode_put_into(id, &put, out);
            }
            (Op::Scan, _) => {
                let scan = Scan {
                    from: Some(sort_key.clone()),
                    limit: operation.scan_length,
                    ..Scan::new(table, partition_key.clone())
                };
                self.encoder.encode_into(id, &Request::Scan(scan), out);
            }
        }
        connection.pending.insert(id, pending);
        self.in_flight += 1;
    }

    /// Writes what each connection has queued, as far as its socket takes it.
    fn flush(&mut self) -> Result<(), String> {
        for connection in &mut self.connections {
            while !connection.out.is_empty() {
                match connection.stream.try_write(&connection.out) {
                    Ok(n) => {
                        connection.out.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("writing: {e}")),
                }
            }
        }
        Ok(())
    }

    /// Reads what connection `c` has and answers every complete reply; true if any came.
    fn read(&mut self, c: usize) -> Result<bool, String> {
        let connection = &mut self.connections[c];
        match connection.stream.try_read_buf(&mut connection.input) {
            Ok(0) => return Err("the server closed the connection".to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(format!("reading: {e}")),
        }
        let mut at = 0;
        let mut replies = std::mem::take(&mut self.replies);
        while let Some(len) = self.limits.complete_frame_len(&connection.input[at..]).map_err(|e| e.to_string())? {
            let (id, reply) =
                decode_response_in_place(&connection.input[at..at + len], &self.limits).map_err(|e| e.to_string())?;
            at += len;
            let pending = connection.pending.remove(&id).ok_or_else(|| format!("a reply to no request ({id})"))?;
            replies.push((pending, Answer::of(reply)));
        }
        connection.input.drain(..at);
        if connection.input.capacity() - connection.input.len() < READ_CHUNK / 4 {
            connection.input.reserve(READ_CHUNK);
        }
        let any = !replies.is_empty();
        for (pending, reply) in replies.drain(..) {
            self.in_flight -= 1;
            self.answer(pending, reply);
        }
        self.replies = replies;
        Ok(any)
    }

    fn answer(&mut self, pending: Pending, answer: Answer) {
        let measured = pending.start >= self.plan.measure_from;
        let op = pending.operation.op;
        match answer {
            Answer::Failed(message) => {
                self.plan.completed_one();
                if measured {
                    self.tally.error(&message);
                }
                return;
            }
            Answer::Hit if measured => self.tally.hits += 1,
            Answer::Miss if measured => self.tally.misses += 1,
            Answer::Scanned(rows) if measured => self.tally.scanned_rows += rows as u64,
            _ => {}
        }
        if op == Op::ReadModifyWrite && !pending.writing {
            // The write half goes out now, to the same shard.
            self.send(Pending { writing: true, ..pending });
            return;
        }
        self.plan.completed_one();
        if measured {
            let latency = Instant::now().duration_since(pending.start);
            self.tally.record(op, u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        }
    }
}
