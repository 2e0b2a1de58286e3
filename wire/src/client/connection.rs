//! One pipelined connection: a writer task fed by a bounded queue of frames, a reader task that
//! matches each response to its request by id, and a semaphore that bounds requests in flight
//! (callers wait for a permit: backpressure). It owns the socket and the pending-request map;
//! routing, handshakes and timeouts belong to [`crate::Client`].
//!
//! Cancel safety: a caller that gives up (a timeout) only removes its entry from the pending
//! map. Its frame, once queued, is written whole by the writer task, so the byte stream never
//! holds half a frame, and a late reply to it is dropped by the reader.

use super::error::{ClientError, Disconnect};
use crate::error::WireError;
use crate::frame::{FrameLimits, LENGTH_PREFIX_BYTES};
use crate::request::{Request, encode_request};
use crate::response::{Reply, decode_response_with};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Socket buffer sizes: many small frames per syscall.
const SOCKET_BUFFER_BYTES: usize = 64 << 10;
/// Most frames the writer coalesces before flushing.
const MAX_FRAMES_PER_FLUSH: usize = 256;

/// Requests in flight, by id, and why the connection ended once it has.
#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Result<Reply, WireError>>>,
    closed: Option<Disconnect>,
}

struct Shared {
    pending: Mutex<Pending>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the map inconsistent (every critical
        // section is a single insert, remove or drain), so a poisoned lock is still usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the connection: records the first reason and fails every waiting request (dropping
    /// its sender wakes it).
    fn close(&self, reason: Disconnect) {
        let drained = {
            let mut p = self.lock();
            p.closed.get_or_insert(reason);
            std::mem::take(&mut p.waiting)
        };
        drop(drained);
    }

    fn closed(&self) -> Option<Disconnect> {
        self.lock().closed.clone()
    }
}

/// Removes its request from the pending map when the caller stops waiting, whether it got a
/// reply, timed out or was cancelled.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().waiting.remove(&self.id);
    }
}

/// A connection to one server port.
pub(crate) struct Connection {
    addr: SocketAddr,
    limits: FrameLimits,
    next_id: AtomicU64,
    outbox: mpsc::Sender<Vec<u8>>,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

/// A request sent and not yet answered. Holds its in-flight permit until dropped.
pub(crate) struct InFlight<'a> {
    connection: &'a Connection,
    _guard: PendingGuard<'a>,
    _permit: OwnedSemaphorePermit,
    reply: oneshot::Receiver<Result<Reply, WireError>>,
}

impl Connection {
    /// Connects to `addr` and starts the reader and writer tasks. Must run inside a tokio
    /// runtime.
    pub(crate) async fn open(addr: SocketAddr, limits: FrameLimits, max_in_flight: usize) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await.map_err(|source| ClientError::Connect { addr, source })?;
        // Requests are small and latency-bound: send each as soon as it is written.
        stream.set_nodelay(true).map_err(|source| ClientError::Connect { addr, source })?;
        let (read_half, write_half) = stream.into_split();
        let max_in_flight = max_in_flight.max(1);
        let shared = Arc::new(Shared { pending: Mutex::new(Pending::default()) });
        let (outbox, frames) = mpsc::channel(max_in_flight);
        tokio::spawn(write_loop(frames, write_half, Arc::clone(&shared)));
        let reader = tokio::spawn(read_loop(read_half, limits, Arc::clone(&shared)));
        Ok(Self {
            addr,
            limits,
            next_id: AtomicU64::new(1),
            outbox,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            shared,
            reader,
        })
    }

    /// The server address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// True once the connection has ended; every later request fails at once.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed().is_some()
    }

    fn closed_error(&self) -> ClientError {
        ClientError::ConnectionClosed {
            addr: self.addr,
            reason: self.shared.closed().unwrap_or(Disconnect::ClosedByClient),
        }
    }

    /// Sends `request`, waiting for an in-flight permit first. The reply is awaited with
    /// [`InFlight::reply`], so several requests can be sent before any reply is awaited.
    pub(crate) async fn send(&self, request: &Request) -> Result<InFlight<'_>, ClientError> {
        // Ids start at 1: 0 is the server's "about the connection" id.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_request(id, request);
        let len = frame.len() - LENGTH_PREFIX_BYTES;
        if len > self.limits.max_frame_bytes {
            return Err(ClientError::RequestTooLarge { len, max: self.limits.max_frame_bytes });
        }
        let permit = Arc::clone(&self.permits).acquire_owned().await.map_err(|_| self.closed_error())?;
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.shared.lock();
            if let Some(reason) = &p.closed {
                return Err(ClientError::ConnectionClosed { addr: self.addr, reason: reason.clone() });
            }
            p.waiting.insert(id, tx);
        }
        let guard = PendingGuard { shared: &self.shared, id };
        self.outbox.send(frame).await.map_err(|_| self.closed_error())?;
        Ok(InFlight { connection: self, _guard: guard, _permit: permit, reply: rx })
    }

    /// Sends `request` and waits for its reply.
    pub(crate) async fn call(&self, request: &Request) -> Result<Reply, ClientError> {
        self.send(request).await?.reply().await
    }
}

impl InFlight<'_> {
    /// Waits for the reply.
    pub(crate) async fn reply(mut self) -> Result<Reply, ClientError> {
        match (&mut self.reply).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(source)) => Err(ClientError::BadReply { source }),
            Err(_) => Err(self.connection.closed_error()),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close(Disconnect::ClosedByClient);
        // The writer ends by itself once `outbox` (the only sender) is gone, shutting the write
        // half down; the reader would wait for the server, so stop it.
        self.reader.abort();
    }
}

async fn write_loop(mut frames: mpsc::Receiver<Vec<u8>>, half: OwnedWriteHalf, shared: Arc<Shared>) {
    let mut out = BufWriter::with_capacity(SOCKET_BUFFER_BYTES, half);
    while let Some(frame) = frames.recv().await {
        let mut result = out.write_all(&frame).await;
        // Coalesce whatever else is queued into the same flush.
        let mut written = 1;
        while result.is_ok() && written < MAX_FRAMES_PER_FLUSH {
            let Ok(next) = frames.try_recv() else { break };
            result = out.write_all(&next).await;
            written += 1;
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        if let Err(e) = result {
            shared.close(Disconnect::Io(Arc::new(e)));
            return;
        }
    }
    // Best effort: the client is going away.
    let _ = out.shutdown().await;
}

async fn read_loop(half: OwnedReadHalf, limits: FrameLimits, shared: Arc<Shared>) {
    let mut input = BufReader::with_capacity(SOCKET_BUFFER_BYTES, half);
    let reason = loop {
        let frame = match read_frame(&mut input, &limits).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break Disconnect::ClosedByServer,
            Err(reason) => break reason,
        };
        match decode_response_with(&frame, &limits) {
            Ok((0, Reply::Error(e))) => break Disconnect::Refused(e),
            Ok((id, reply)) => deliver(&shared, id, Ok(reply)),
            // A sound frame whose reply this build cannot read (a newer server's reply kind):
            // only its request fails.
            Err(e @ WireError::Message { request_id, .. }) if request_id != 0 => deliver(&shared, request_id, Err(e)),
            Err(e) => break Disconnect::BadFrame(Arc::new(e)),
        }
    };
    shared.close(reason);
}

/// Hands a reply to its waiter. No waiter means the caller gave up (timed out) already; a reply
/// to an id never sent is indistinguishable from that, and equally harmless.
fn deliver(shared: &Shared, id: u64, reply: Result<Reply, WireError>) {
    let waiter = shared.lock().waiting.remove(&id);
    if let Some(tx) = waiter {
        let _ = tx.send(reply);
    }
}

/// The next whole frame, prefix included; `None` at a clean end of stream. The prefix is
/// checked against the limit before the body is allocated.
async fn read_frame(input: &mut BufReader<OwnedReadHalf>, limits: &FrameLimits) -> Result<Option<Vec<u8>>, Disconnect> {
    let io = |e: std::io::Error| Disconnect::Io(Arc::new(e));
    if input.fill_buf().await.map_err(io)?.is_empty() {
        return Ok(None);
    }
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    input.read_exact(&mut prefix).await.map_err(io)?;
    let len = limits.body_len(prefix).map_err(|e: WireError| Disconnect::BadFrame(Arc::new(e)))?;
    let mut frame = vec![0u8; LENGTH_PREFIX_BYTES + len];
    frame[..LENGTH_PREFIX_BYTES].copy_from_slice(&prefix);
    input.read_exact(&mut frame[LENGTH_PREFIX_BYTES..]).await.map_err(io)?;
    Ok(Some(frame))
}
