//! Accepting connections on a listener until the shard stops, each served in a task of its own,
//! and refusing those past `max_connections_per_shard` at the door. Both doors use it; it knows
//! nothing of what they speak.

use crate::shard::Shard;
use anyhow::Result;
use futures_lite::FutureExt;
use glommio::net::{TcpListener, TcpStream};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;

/// Binds a listening socket on `addr` the way a restartable server must: SO_REUSEPORT, so every
/// shard binds the shared port and the kernel spreads connections over them, and SO_REUSEADDR, so
/// a restart binds while connections of the port's previous owner linger in TIME_WAIT (glommio's
/// own `bind` sets only the first, and then fails for a minute after any non-REUSEPORT socket
/// closed on that port).
#[allow(unsafe_code)]
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    // SAFETY: the descriptor is a bound, listening TCP socket this function owns and hands over.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// A door clients connect through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    /// The native protocol.
    Native,
    /// RESP, the Redis protocol.
    Resp,
}

impl Door {
    const ALL: [Door; 2] = [Door::Native, Door::Resp];

    fn name(self) -> &'static str {
        match self {
            Door::Native => "native",
            Door::Resp => "resp",
        }
    }
}

/// A shard's connections by door: open now, and refused at the door since start.
#[derive(Debug, Default)]
pub(crate) struct DoorCounts {
    open: [std::cell::Cell<u64>; 2],
    refused: [std::cell::Cell<u64>; 2],
}

impl DoorCounts {
    /// Appends `door_connections{door}` and `connections_refused_total{door}`.
    pub(crate) fn push_stats(&self, shard: Option<u32>, out: &mut Vec<nacre_wire::Stat>) {
        for door in Door::ALL {
            let labels = [("door", door.name())];
            for (name, value) in [
                ("door_connections", self.open[door as usize].get()),
                ("connections_refused_total", self.refused[door as usize].get()),
            ] {
                out.push(nacre_wire::Stat { name: nacre_wire::labelled(name, &labels), shard, partition: None, value });
            }
        }
    }
}

/// Accepts connections on `listener` until the shard stops, each served by `serve` in a task of
/// its own, refusing those past `max_connections_per_shard` at the door.
pub(crate) async fn accept_loop<F, Fut>(shard: Rc<Shard>, listener: TcpListener, door: Door, serve: F)
where
    F: Fn(Rc<Shard>, TcpStream) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + 'static,
{
    let max = shard.process.config.limits.max_connections_per_shard;
    loop {
        let accepted = async { Some(listener.accept().await) }.or(async {
            shard.life.until_stopping().await;
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
        if shard.life.connections() >= max {
            // Refused at the door: closing is the backpressure a client sees.
            drop(stream);
            let refused = &shard.doors.refused[door as usize];
            refused.set(refused.get() + 1);
            continue;
        }
        let s = shard.clone();
        let serving = serve(shard.clone(), stream);
        glommio::spawn_local(async move {
            let _open = s.life.connected();
            let open = &s.doors.open[door as usize];
            open.set(open.get() + 1);
            if let Err(e) = serving.await {
                tracing::debug!(shard = s.id, error = %e, door = door.name(), "connection closed");
            }
            open.set(open.get() - 1);
        })
        .detach();
    }
}
