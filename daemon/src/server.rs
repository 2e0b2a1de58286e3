//! The native door: a shard's listeners (its own port and the shared SO_REUSEPORT port), and one
//! task per connection reading frames and one writing replies. A connection reads what the
//! socket holds into one buffer (`frame_reader`), so a pipelined client's frames cost one `recv`
//! together, and decodes each frame in place. It takes a frame's bytes from its own share and the
//! shard's budget before it reads more of the frame. A connection remembers the protocol version
//! its handshake negotiated and hands every request to `compat` under it.

use crate::budget::ByteBudget;
use crate::compat::{self, ProtocolVersion};
use crate::config::Config;
use crate::frame_reader::{FrameReader, LENGTH_BYTES};
use crate::reply_queue::ReplyQueue;
use crate::shard::Shard;
use anyhow::Result;
use futures_lite::{AsyncWriteExt, FutureExt};
use glommio::net::TcpStream;
use nacre_wire::{self as wire, ErrorCode, FrameLimits, InPlace, Reply};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Reply bytes a connection queues before its next reply waits for the writer.
const REPLY_QUEUE_BYTES: usize = 256 << 10;

/// The native door's per-shard state: the request bytes in flight across its connections, and
/// the encoder every reply of the shard is made with.
pub struct NativeDoor {
    /// Native request bytes in flight on this shard, all connections together.
    pub request_bytes: Rc<ByteBudget>,
    encoder: RefCell<wire::ResponseEncoder>,
}

impl NativeDoor {
    /// The door as the configuration bounds it.
    pub fn new(config: &Config) -> NativeDoor {
        NativeDoor {
            request_bytes: ByteBudget::new(config.limits.max_in_flight_bytes_per_shard),
            encoder: RefCell::default(),
        }
    }
}

/// Binds the shard's two native listeners (the shared SO_REUSEPORT port and its own) and starts
/// accepting on them in `queue`; the tasks end when the shard stops.
pub fn open_native_door(shard: &Rc<Shard>, queue: glommio::TaskQueueHandle) -> Result<Vec<glommio::Task<()>>> {
    let config = &shard.process.config;
    let own: SocketAddr = SocketAddr::new(config.listen.ip(), config.shard_port(shard.id));
    let listeners = [
        crate::listener::bind(config.listen).map_err(|e| anyhow::anyhow!("binding {}: {e}", config.listen))?,
        crate::listener::bind(own).map_err(|e| anyhow::anyhow!("binding {own}: {e}"))?,
    ];
    let partitions = shard.partitions.engines.len();
    tracing::info!(shard = shard.id, shared = %config.listen, own = %own, partitions, "serving");
    let mut accepting = Vec::new();
    for listener in listeners {
        let task = crate::listener::accept_loop(
            shard.clone(),
            listener,
            crate::listener::Door::Native,
            |s, stream| async move { serve_connection(&s, stream).await },
        );
        accepting.push(glommio::spawn_local_into(task, queue).map_err(|e| anyhow::anyhow!("spawning accept: {e}"))?);
    }
    Ok(accepting)
}

/// Reads frames until the peer closes, the shard stops, or the peer breaks the protocol.
async fn serve_connection(shard: &Rc<Shard>, stream: TcpStream) -> Result<()> {
    stream.set_nodelay(true).ok();
    let (mut reader, writer) = futures_lite::io::split(stream);
    let limits = &shard.process.config.limits;
    let frame_limits = FrameLimits { max_frame_bytes: limits.max_frame_bytes, ..FrameLimits::default() };
    let replies = Rc::new(ReplyQueue::new(REPLY_QUEUE_BYTES));
    let writing = glommio::spawn_local(write_replies(writer, replies.clone()));
    let in_flight = Arc::new(async_lock::Semaphore::new(limits.max_in_flight_per_connection));
    let connection_bytes = ByteBudget::new(limits.max_in_flight_bytes_per_connection);
    let pending = Rc::new(std::cell::Cell::new(0usize));
    // The version this connection speaks, once a handshake is accepted; every request after it
    // is served through `compat` under that version.
    let mut version: Option<ProtocolVersion> = None;
    let mut input = FrameReader::default();
    // The next frame's bytes, once taken from the budgets.
    let mut held = None;
    let outcome: Result<()> = async {
        loop {
            // Checked before every frame, not only raced with the read below: `or` prefers a
            // ready read, so a client that keeps sending would otherwise never let a stopping
            // shard drain.
            if shard.life.is_stopping() {
                return Ok(());
            }
            // The next frame, once its length is buffered and its bytes are held.
            let Some(size) = input.next_frame_body() else {
                match fill(shard, &mut input, &mut reader, LENGTH_BYTES).await? {
                    Filled::More => continue,
                    Filled::Closed => return Ok(()),
                }
            };
            if size > frame_limits.max_frame_bytes {
                send(
                    shard,
                    &replies,
                    0,
                    Reply::Error(wire::ErrorReply {
                        code: ErrorCode::FrameTooLarge,
                        message: format!("frame of {size} bytes is over the limit of {}", frame_limits.max_frame_bytes),
                    }),
                )
                .await;
                anyhow::bail!("frame too large");
            }
            let whole = LENGTH_BYTES + size;
            // Bytes are taken before more of the frame is read: a connection over its share, or
            // a shard over its budget, stops reading here until earlier requests complete (what
            // one read took beyond this frame, at most a chunk, waits in the buffer).
            if held.is_none() {
                held = Some((connection_bytes.take(whole).await, shard.native.request_bytes.take(whole).await));
            }
            if input.buffered().len() < whole {
                match fill(shard, &mut input, &mut reader, whole).await? {
                    Filled::More => continue,
                    Filled::Closed => return Ok(()),
                }
            }
            let frame = &input.buffered()[..whole];
            // A get is answered here, in place, with no task and no copy of the request, when
            // this shard owns its key and has the answer without I/O; anything else goes the
            // usual way below. Either way a request starts when it is read, as a task's first
            // poll runs at once (glommio's `spawn_local`): an earlier write that did not have to
            // wait is applied before a later get of the connection runs.
            let decoded = match wire::decode_request_in_place(frame, &frame_limits) {
                Ok((id, InPlace::Get(get))) => {
                    match (version.is_some() && id != 0).then(|| shard.get_in_place(&get)).flatten() {
                        Some(reply) => {
                            input.consume(whole);
                            drop(held.take());
                            send(shard, &replies, id, reply).await;
                            continue;
                        }
                        None => Ok((id, wire::Request::Get(get.to_owned()))),
                    }
                }
                Ok((id, InPlace::Other(request))) => Ok((id, request)),
                Err(e) => Err(e),
            };
            let held = held.take().expect("taken above");
            input.consume(whole);
            let (id, request) = match decoded {
                Ok(decoded) => decoded,
                Err(e) => {
                    let reply = Reply::Error(wire::ErrorReply { code: e.error_code(), message: e.to_string() });
                    match e.request_id() {
                        // A verified frame whose message is invalid: answer it, keep the connection.
                        Some(id) if version.is_some() && id != 0 => {
                            send(shard, &replies, id, reply).await;
                            continue;
                        }
                        // Bytes that are not a frame: the stream can no longer be trusted.
                        _ => {
                            send(shard, &replies, 0, reply).await;
                            anyhow::bail!("undecodable frame: {e}");
                        }
                    }
                }
            };
            if id == 0 {
                // Id 0 is reserved for errors about the connection; a reply under it would read
                // as one, so the request is refused like a frame whose id cannot be trusted.
                let message = "request id 0 is reserved for errors about the connection".to_owned();
                send(shard, &replies, 0, Reply::Error(wire::ErrorReply { code: ErrorCode::BadRequest, message })).await;
                anyhow::bail!("request id 0");
            }
            // Handshakes are answered here, in order, not in a task: a connection's version
            // applies to exactly the requests read after the handshake that set it.
            if let wire::Request::Handshake(h) = &request {
                version = Some(answer_handshake(shard, &replies, id, h, version).await?);
                continue;
            }
            let Some(negotiated) = version else {
                let message = "the first request must be a handshake".to_owned();
                send(shard, &replies, id, Reply::Error(wire::ErrorReply { code: ErrorCode::ProtocolVersion, message }))
                    .await;
                anyhow::bail!("no handshake");
            };
            let request = match compat::upgrade_request(negotiated, request) {
                Ok(request) => request,
                Err(refused) => {
                    send(shard, &replies, id, Reply::Error(refused)).await;
                    continue;
                }
            };
            let permit = in_flight.acquire_arc().await;
            let s = shard.clone();
            let replies = replies.clone();
            let pending = pending.clone();
            pending.set(pending.get() + 1);
            let task = async move {
                let serving = s.life.serving();
                let reply = s.handle(request).await;
                send(&s, &replies, id, reply).await;
                drop(serving);
                pending.set(pending.get() - 1);
                drop((permit, held));
            };
            // glommio boxes a future of 2 KiB or more before it allocates the task (two
            // allocations and copies a request): this one is about 1.9 KiB in a release build.
            glommio::spawn_local(task).detach();
        }
    }
    .await;
    // Let in-flight replies go out before the writer stops.
    while pending.get() > 0 {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    replies.close();
    writing.await;
    outcome
}

/// What a read into a connection's buffer found.
enum Filled {
    /// Bytes, or nothing yet: look at the buffer again.
    More,
    /// The client closed the connection between frames, or the shard is stopping.
    Closed,
}

/// Reads once into `input`, wanting `want` bytes buffered, unless the shard stops first. A
/// stream that ends inside a frame is an error; between frames it is the client leaving.
async fn fill(
    shard: &Shard,
    input: &mut FrameReader,
    reader: &mut futures_lite::io::ReadHalf<TcpStream>,
    want: usize,
) -> Result<Filled> {
    let read = async { Some(input.fill(reader, want).await) }.or(async {
        shard.life.until_stopping().await;
        None
    });
    match read.await {
        None => Ok(Filled::Closed),
        Some(Ok(0)) if input.buffered().is_empty() => Ok(Filled::Closed),
        Some(Ok(0)) => anyhow::bail!("the client closed the connection inside a frame"),
        Some(Ok(_)) => Ok(Filled::More),
        Some(Err(e)) => Err(e.into()),
    }
}

/// Answers handshake `h` (request `id`) and returns the connection's version after it: the one
/// negotiated, or, if it is refused, the one the connection already had. A refused first
/// handshake is an error: the connection closes like one that never sent a handshake.
async fn answer_handshake(
    shard: &Shard,
    replies: &ReplyQueue,
    id: u64,
    h: &wire::Handshake,
    current: Option<ProtocolVersion>,
) -> Result<ProtocolVersion> {
    match shard.handshake(h) {
        Ok((negotiated, ok)) => {
            tracing::debug!(shard = shard.id, version = negotiated.get(), client = %h.client_name, "handshake");
            send(shard, replies, id, Reply::Handshake(ok)).await;
            Ok(negotiated)
        }
        Err(refused) => {
            send(shard, replies, id, Reply::Error(refused)).await;
            current.ok_or_else(|| anyhow::anyhow!("no accepted handshake"))
        }
    }
}

async fn send(shard: &Shard, replies: &ReplyQueue, id: u64, reply: Reply) {
    replies.push(|out| shard.native.encoder.borrow_mut().encode_into(id, &reply, out)).await;
}

/// Writes the connection's replies as they come, each write carrying everything queued.
async fn write_replies(mut writer: futures_lite::io::WriteHalf<TcpStream>, replies: Rc<ReplyQueue>) {
    let mut batch = Vec::new();
    while replies.take(&mut batch).await {
        if writer.write_all(&batch).await.is_err() || writer.flush().await.is_err() {
            replies.abandon();
            return;
        }
        batch.clear();
        if batch.capacity() > REPLY_QUEUE_BYTES {
            batch = Vec::new();
        }
    }
    let _ = writer.flush().await;
}
