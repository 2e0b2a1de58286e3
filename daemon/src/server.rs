//! A shard's network side: its listeners (its own port and the shared SO_REUSEPORT port), one
//! task per connection reading frames and one writing replies, the mesh receive loops, and the
//! shard's run from start to clean stop. A connection remembers the protocol version its
//! handshake negotiated and hands every request to `compat` under it.

use crate::budget::ByteBudget;
use crate::compat::{self, ProtocolVersion};
use crate::mesh::{Mesh, MeshEnds};
use crate::resp;
use crate::shard::{Process, Shard};
use anyhow::Result;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{Latency, Shares};
use nacre_wire::{self as wire, ErrorCode, FrameLimits, Reply};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Counts this shard as drained exactly once, even when it fails before it gets there, so the
/// other shards' shutdown barrier never waits for a shard that is gone.
struct DrainedMark {
    process: Arc<Process>,
    marked: std::cell::Cell<bool>,
}

impl DrainedMark {
    fn mark(&self) {
        if !self.marked.replace(true) {
            self.process.drained.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for DrainedMark {
    fn drop(&mut self) {
        if !self.marked.get() {
            // A shard that fails stops the whole process: the others drain and flush.
            self.process.stop.store(true, Ordering::SeqCst);
            self.mark();
        }
    }
}

/// Runs shard `id` until the process is told to stop, then drains, flushes and returns. If the
/// shard fails, it stops the process.
pub async fn run_shard(id: usize, process: Arc<Process>, ends: MeshEnds<Shard>) -> Result<()> {
    let drained = DrainedMark { process: process.clone(), marked: std::cell::Cell::new(false) };
    let (mesh, inbound) = Mesh::connect(id, ends, process.config.mesh_limits()).await;
    let shard = Rc::new(Shard::open(id, process.clone(), mesh).await?);
    shard.reconcile_bulk_loads().await?;
    if id == 0 {
        shard.abort_unfinished_links()?;
    }
    let foreground = glommio::executor().create_task_queue(
        Shares::Static(1000),
        Latency::Matters(Duration::from_millis(1)),
        "foreground",
    );
    let background = glommio::executor().create_task_queue(Shares::Static(100), Latency::NotImportant, "flush");
    let ingestion = glommio::executor().create_task_queue(
        Shares::Static(500),
        Latency::Matters(Duration::from_millis(10)),
        "ingestion",
    );
    shard.ingest.set_queue(ingestion);
    shard.mesh.serve(&shard, inbound, foreground);
    glommio::spawn_local_into(shard.clone().flush_loop(), background)
        .map_err(|e| anyhow::anyhow!("spawning the flush task: {e}"))?
        .detach();
    glommio::spawn_local_into(shard.clone().wal_committer(), foreground)
        .map_err(|e| anyhow::anyhow!("spawning the WAL committer: {e}"))?
        .detach();
    let own: SocketAddr = SocketAddr::new(process.config.listen.ip(), process.config.shard_port(id));
    let listeners = [
        TcpListener::bind(process.config.listen)
            .map_err(|e| anyhow::anyhow!("binding {}: {e}", process.config.listen))?,
        TcpListener::bind(own).map_err(|e| anyhow::anyhow!("binding {own}: {e}"))?,
    ];
    tracing::info!(shard = id, shared = %process.config.listen, own = %own, partitions = shard.engines.len(), "serving");
    let mut accepting = Vec::new();
    for listener in listeners {
        let s = shard.clone();
        accepting.push(
            glommio::spawn_local_into(accept_loop(s, listener, Door::Native), foreground)
                .map_err(|e| anyhow::anyhow!("spawning accept: {e}"))?,
        );
    }
    if let Some(addr) = process.config.resp.listen_addr() {
        resp::prepare_tables(&shard).await?;
        let listener = TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("binding the RESP door {addr}: {e}"))?;
        tracing::info!(shard = id, resp = %addr, table = %process.config.resp.table, "serving RESP");
        accepting.push(
            glommio::spawn_local_into(accept_loop(shard.clone(), listener, Door::Resp), foreground)
                .map_err(|e| anyhow::anyhow!("spawning accept: {e}"))?,
        );
    }
    // Shard 0 registers the configuration file's Kafka sources (installing the catalog on every
    // shard); every shard starts the consumers its catalog names.
    if id == 0 {
        shard.register_configured_sources().await?;
    }
    let catalog = shard.catalog.borrow().clone();
    shard.sync_sources(&catalog).await;
    wait_for_stop(&process).await;
    shard.stopping.set(true);
    shard.stop_event.notify(usize::MAX);
    // Consumers stop first: what they applied is flushed below with their positions.
    shard.ingest.stop_all().await;
    for task in accepting {
        task.await;
    }
    let deadline = Instant::now() + Duration::from_millis(process.config.shutdown.drain_deadline_ms);
    while shard.active_requests.get() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    // Keep answering peers until every shard has drained its own clients.
    drained.mark();
    while process.drained.load(Ordering::SeqCst) < process.shard_count {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    shard.flush_all().await?;
    tracing::info!(shard = id, "flushed and stopped");
    Ok(())
}

async fn wait_for_stop(process: &Process) {
    while !process.stop.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

/// Returns once `shard` stops accepting work. Woken once, by the stop itself: a future raced
/// against this one (an accept, a read) is never polled again for nothing. glommio 0.9 leaks a
/// waker reference each time a pending socket future is re-polled, and a timer waking the race
/// every few milliseconds overflowed an idle task's reference count within minutes.
pub(crate) async fn until_stopping(shard: &Shard) {
    loop {
        if shard.stopping.get() {
            return;
        }
        let stopped = shard.stop_event.listen();
        if shard.stopping.get() {
            return;
        }
        stopped.await;
    }
}

/// Which protocol a listener's connections speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    /// Nacre's flatbuffers protocol.
    Native,
    /// RESP (Redis protocol).
    Resp,
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener, door: Door) {
    let max = shard.process.config.limits.max_connections_per_shard;
    loop {
        let accepted = async { Some(listener.accept().await) }.or(async {
            until_stopping(&shard).await;
            None
        });
        let stream = match accepted.await {
            None => return,
            Some(Ok(stream)) => stream,
            Some(Err(e)) => {
                tracing::warn!(shard = shard.id, error = %e, "accept failed");
                continue;
            }
        };
        if shard.connections.get() >= max {
            // Refused at the door: closing is the backpressure a client sees.
            drop(stream);
            continue;
        }
        shard.connections.set(shard.connections.get() + 1);
        let s = shard.clone();
        glommio::spawn_local(async move {
            let served = match door {
                Door::Native => serve_connection(&s, stream).await,
                Door::Resp => resp::serve(&s, stream).await,
            };
            if let Err(e) = served {
                tracing::debug!(shard = s.id, error = %e, ?door, "connection closed");
            }
            s.connections.set(s.connections.get() - 1);
        })
        .detach();
    }
}

/// Reads frames until the peer closes, the shard stops, or the peer breaks the protocol.
async fn serve_connection(shard: &Rc<Shard>, stream: TcpStream) -> Result<()> {
    stream.set_nodelay(true).ok();
    let (mut reader, writer) = futures_lite::io::split(stream);
    let limits = &shard.process.config.limits;
    let frame_limits = FrameLimits { max_frame_bytes: limits.max_frame_bytes, ..FrameLimits::default() };
    let (tx, rx) = glommio::channels::local_channel::new_bounded::<Vec<u8>>(limits.max_in_flight_per_connection);
    let tx = Rc::new(tx);
    let writing = glommio::spawn_local(write_replies(writer, rx, Rc::downgrade(&tx)));
    let in_flight = Arc::new(async_lock::Semaphore::new(limits.max_in_flight_per_connection));
    let connection_bytes = ByteBudget::new(limits.max_in_flight_bytes_per_connection);
    let pending = Rc::new(std::cell::Cell::new(0usize));
    // The version this connection speaks, once a handshake is accepted; every request after it
    // is served through `compat` under that version.
    let mut version: Option<ProtocolVersion> = None;
    let outcome: Result<()> = async {
        loop {
            // Checked before every frame, not only raced with the read below: `or` prefers a
            // ready read, so a client that keeps sending would otherwise never let a stopping
            // shard drain.
            if shard.stopping.get() {
                return Ok(());
            }
            let mut len = [0u8; 4];
            let read = async { Some(reader.read_exact(&mut len).await) }.or(async {
                until_stopping(shard).await;
                None
            });
            match read.await {
                None => return Ok(()),
                Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(())) => {}
            }
            let size = u32::from_le_bytes(len) as usize;
            if size > frame_limits.max_frame_bytes {
                send(
                    &tx,
                    0,
                    Reply::Error(wire::ErrorReply {
                        code: ErrorCode::FrameTooLarge,
                        message: format!("frame of {size} bytes is over the limit of {}", frame_limits.max_frame_bytes),
                    }),
                )
                .await;
                anyhow::bail!("frame too large");
            }
            // Bytes are taken before the frame is buffered: a connection over its share, or a
            // shard over its budget, stops reading here until earlier requests complete.
            let held = (connection_bytes.take(4 + size).await, shard.request_bytes.take(4 + size).await);
            let mut frame = vec![0u8; 4 + size];
            frame[..4].copy_from_slice(&len);
            reader.read_exact(&mut frame[4..]).await?;
            let (id, request) = match wire::decode_request_with(&frame, &frame_limits) {
                Ok(decoded) => decoded,
                Err(e) => {
                    let reply = Reply::Error(wire::ErrorReply { code: e.error_code(), message: e.to_string() });
                    match e.request_id() {
                        // A verified frame whose message is invalid: answer it, keep the connection.
                        Some(id) if version.is_some() && id != 0 => {
                            send(&tx, id, reply).await;
                            continue;
                        }
                        // Bytes that are not a frame: the stream can no longer be trusted.
                        _ => {
                            send(&tx, 0, reply).await;
                            anyhow::bail!("undecodable frame: {e}");
                        }
                    }
                }
            };
            if id == 0 {
                // Id 0 is reserved for errors about the connection; a reply under it would read
                // as one, so the request is refused like a frame whose id cannot be trusted.
                let message = "request id 0 is reserved for errors about the connection".to_owned();
                send(&tx, 0, Reply::Error(wire::ErrorReply { code: ErrorCode::BadRequest, message })).await;
                anyhow::bail!("request id 0");
            }
            // Handshakes are answered here, in order, not in a task: a connection's version
            // applies to exactly the requests read after the handshake that set it.
            if let wire::Request::Handshake(h) = &request {
                version = Some(answer_handshake(shard, &tx, id, h, version).await?);
                continue;
            }
            let Some(negotiated) = version else {
                let message = "the first request must be a handshake".to_owned();
                send(&tx, id, Reply::Error(wire::ErrorReply { code: ErrorCode::ProtocolVersion, message })).await;
                anyhow::bail!("no handshake");
            };
            let request = match compat::upgrade_request(negotiated, request) {
                Ok(request) => request,
                Err(refused) => {
                    send(&tx, id, Reply::Error(refused)).await;
                    continue;
                }
            };
            let permit = in_flight.acquire_arc().await;
            let s = shard.clone();
            let tx = tx.clone();
            let pending = pending.clone();
            s.active_requests.set(s.active_requests.get() + 1);
            pending.set(pending.get() + 1);
            glommio::spawn_local(async move {
                let reply = s.handle(request).await;
                send(&tx, id, reply).await;
                s.active_requests.set(s.active_requests.get() - 1);
                pending.set(pending.get() - 1);
                drop((permit, held));
            })
            .detach();
        }
    }
    .await;
    // Let in-flight replies go out before the writer stops.
    while pending.get() > 0 {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    drop(tx);
    writing.await;
    outcome
}

/// Answers handshake `h` (request `id`) and returns the connection's version after it: the one
/// negotiated, or, if it is refused, the one the connection already had. A refused first
/// handshake is an error: the connection closes like one that never sent a handshake.
async fn answer_handshake(
    shard: &Shard,
    tx: &glommio::channels::local_channel::LocalSender<Vec<u8>>,
    id: u64,
    h: &wire::Handshake,
    current: Option<ProtocolVersion>,
) -> Result<ProtocolVersion> {
    match shard.handshake(h) {
        Ok((negotiated, ok)) => {
            tracing::debug!(shard = shard.id, version = negotiated.get(), client = %h.client_name, "handshake");
            send(tx, id, Reply::Handshake(ok)).await;
            Ok(negotiated)
        }
        Err(refused) => {
            send(tx, id, Reply::Error(refused)).await;
            current.ok_or_else(|| anyhow::anyhow!("no accepted handshake"))
        }
    }
}

async fn send(tx: &glommio::channels::local_channel::LocalSender<Vec<u8>>, id: u64, reply: Reply) {
    let _ = tx.send(wire::encode_response(id, &reply)).await;
}

/// Bytes of replies gathered into one write when several are ready.
const REPLY_BATCH_BYTES: usize = 256 << 10;

/// Writes replies as they come, gathering those already queued into one write: with pipelined
/// requests, one syscall carries many replies. `queue` (weak, so the channel still closes when
/// the connection's senders are gone) tells how many more are waiting.
async fn write_replies(
    mut writer: futures_lite::io::WriteHalf<TcpStream>,
    rx: glommio::channels::local_channel::LocalReceiver<Vec<u8>>,
    queue: std::rc::Weak<glommio::channels::local_channel::LocalSender<Vec<u8>>>,
) {
    let mut batch = Vec::new();
    while let Some(frame) = rx.recv().await {
        batch.extend_from_slice(&frame);
        while batch.len() < REPLY_BATCH_BYTES && queue.upgrade().is_some_and(|tx| tx.len() > 0) {
            match rx.recv().await {
                Some(more) => batch.extend_from_slice(&more),
                None => break,
            }
        }
        if writer.write_all(&batch).await.is_err() || writer.flush().await.is_err() {
            return;
        }
        batch.clear();
    }
    let _ = writer.flush().await;
}
