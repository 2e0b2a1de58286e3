//! The protocol over a plain blocking socket: send any bytes to any port and read back whatever
//! frames the server answers with. Tests use it where the real client would not go: another
//! shard's port chosen on purpose, malformed and hostile frames, a peer that vanishes mid-frame.
//!
//! Every read is bounded by [`READ_TIMEOUT`], so a server that never answers fails the test
//! instead of hanging it. Replies are always decoded with the verifying decoder: a server that
//! sends bytes that are not a valid response frame fails the test too.

use nacre_wire::frame::LENGTH_PREFIX_BYTES;
use nacre_wire::{FrameLimits, Handshake, PROTOCOL_VERSION, Reply, Request, decode_response, encode_request};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Longest a read waits for the server. Generous: a loaded 2-core CI machine can stall a debug
/// build for seconds, and only a server that never answers should fail on it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One blocking connection.
pub struct RawConnection {
    stream: TcpStream,
    addr: SocketAddr,
    next_id: u64,
    buffer: Vec<u8>,
}

/// What reading the next frame found.
#[derive(Debug)]
pub enum Received {
    /// A reply frame, with its request id.
    Reply(u64, Reply),
    /// The server closed the connection (a clean end or a reset).
    Closed,
}

impl RawConnection {
    /// Connects, without a handshake.
    pub fn connect(addr: SocketAddr) -> std::io::Result<RawConnection> {
        RawConnection::connect_with_timeout(addr, READ_TIMEOUT)
    }

    /// Connects, without a handshake; connecting and each read and write wait at most
    /// `timeout`.
    pub fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> std::io::Result<RawConnection> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(RawConnection { stream, addr, next_id: 1, buffer: Vec::new() })
    }

    /// Connects and performs the handshake; panics if the server does not accept it.
    pub fn open(addr: SocketAddr) -> RawConnection {
        let mut c = RawConnection::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        match c.handshake() {
            Ok(Reply::Handshake(_)) => c,
            other => panic!("handshake with {addr}: {other:?}"),
        }
    }

    /// Sends the handshake and returns the reply; an error if the connection failed.
    pub fn handshake(&mut self) -> std::io::Result<Reply> {
        let hello = Request::Handshake(Handshake {
            protocol_version: PROTOCOL_VERSION,
            client_name: "nacre-tests-raw".to_owned(),
        });
        let id = self.send(&hello)?;
        match self.receive()? {
            Received::Reply(got, reply) if got == id => Ok(reply),
            Received::Reply(got, reply) => Err(std::io::Error::other(format!("reply to {got}, not {id}: {reply:?}"))),
            Received::Closed => Err(std::io::Error::new(ErrorKind::UnexpectedEof, "closed during handshake")),
        }
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `request` under the next request id and returns that id.
    pub fn send(&mut self, request: &Request) -> std::io::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.send_bytes(&encode_request(id, request))?;
        Ok(id)
    }

    /// Sends `request` and waits for its reply, panicking on anything else (another id, a
    /// closed connection). For a connection with nothing else in flight.
    pub fn call(&mut self, request: &Request) -> Reply {
        let id = self.send(request).unwrap_or_else(|e| panic!("sending {} to {}: {e}", request.kind(), self.addr));
        match self.receive() {
            Ok(Received::Reply(got, reply)) if got == id => reply,
            other => panic!("{} to {}: expected the reply to request {id}, got {other:?}", request.kind(), self.addr),
        }
    }

    /// Writes bytes as they are.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Closes the sending half: the server sees end of stream after what was sent.
    pub fn finish_sending(&mut self) {
        // Fails only if the connection is already gone, which the next read reports.
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// The next reply frame, or [`Received::Closed`]. An error if no frame came within
    /// [`READ_TIMEOUT`], or if the server sent bytes that are not a valid response frame: a
    /// server never does that, whatever it was sent.
    pub fn receive(&mut self) -> std::io::Result<Received> {
        let limits = FrameLimits::default();
        loop {
            match limits.complete_frame_len(&self.buffer) {
                Ok(Some(len)) => {
                    let frame: Vec<u8> = self.buffer.drain(..len).collect();
                    return match decode_response(&frame) {
                        Ok((id, reply)) => Ok(Received::Reply(id, reply)),
                        Err(e) => Err(std::io::Error::other(format!("the server sent an invalid frame: {e}"))),
                    };
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(format!("the server sent a bad length prefix: {e}"))),
            }
            let mut chunk = [0u8; 64 << 10];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    if self.buffer.is_empty() {
                        return Ok(Received::Closed);
                    }
                    let left = self.buffer.len();
                    return Err(std::io::Error::other(format!("the server closed mid-frame ({left} bytes left)")));
                }
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                    return Ok(Received::Closed);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(std::io::Error::new(
                        ErrorKind::TimedOut,
                        format!("no frame from {} in time", self.addr),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every reply until the server closes the connection. An error as [`Self::receive`].
    pub fn receive_until_closed(&mut self) -> std::io::Result<Vec<(u64, Reply)>> {
        let mut replies = Vec::new();
        loop {
            match self.receive()? {
                Received::Reply(id, reply) => replies.push((id, reply)),
                Received::Closed => return Ok(replies),
            }
        }
    }
}

/// A length prefix announcing `len` bytes of flatbuffer.
pub fn length_prefix(len: u32) -> [u8; LENGTH_PREFIX_BYTES] {
    len.to_le_bytes()
}
