//! The RESP target: one session is one connection to a Redis-speaking server (Nacre's RESP
//! door or `redis-server`), driven by one task with no lock or channel per request, as
//! `redis-benchmark` does. Up to `--pipeline` commands are in flight; replies come back in
//! order, so the oldest pending request owns the next reply. Every command a turn produces goes
//! out in one write.
//!
//! Reads are `GET`, updates and inserts `SET`; a read-modify-write is a `GET` whose reply sends
//! the `SET`, timed from the `GET`'s send time to the `SET`'s reply. Scans are refused before a
//! run starts (Redis has no ordered range read of plain keys).

use crate::keys::{REDIS_KEY_LEN, write_redis_key};
use crate::plan::{Clock, Plan};
use crate::resp_reply::{self, Reply};
use crate::tally::Tally;
use crate::workload::{Op, Operation};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A request sent and not yet answered.
#[derive(Debug, Clone, Copy)]
struct Pending {
    operation: Operation,
    /// When it was sent or, in open loop, due; its latency counts from here.
    start: Instant,
    /// For a read-modify-write, true once its write is the command in flight.
    writing: bool,
}

/// One session's connection and its state.
struct Session {
    stream: TcpStream,
    plan: Plan,
    pipeline: usize,
    timeout: Duration,
    value: Vec<u8>,
    key: Vec<u8>,
    out: Vec<u8>,
    input: Vec<u8>,
    pending: VecDeque<Pending>,
    tally: Tally,
}

/// Runs one session against `addr` until `plan` ends; a connection that cannot be made or is
/// lost ends it, counting what was in flight as errors.
pub async fn run_session(addr: SocketAddr, plan: Plan, pipeline: usize, timeout: Duration) -> Tally {
    let mut tally = Tally::new();
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tally.error(&format!("connecting to {addr}: {e}"));
            return tally;
        }
        Err(_) => {
            tally.error(&format!("connecting to {addr}: no answer within {timeout:?}"));
            return tally;
        }
    };
    if let Err(e) = stream.set_nodelay(true) {
        tally.error(&format!("setting TCP_NODELAY: {e}"));
        return tally;
    }
    let mut plan = plan;
    let value = plan.value();
    let mut session = Session {
        stream,
        plan,
        pipeline,
        timeout,
        value,
        key: Vec::with_capacity(REDIS_KEY_LEN),
        out: Vec::new(),
        input: Vec::with_capacity(READ_CHUNK),
        pending: VecDeque::with_capacity(pipeline),
        tally,
    };
    if let Err(e) = session.drive().await {
        let lost = session.pending.iter().filter(|p| p.start >= session.plan.measure_from).count();
        session.tally.error(&e);
        session.tally.errors += lost as u64;
    }
    session.tally
}

impl Session {
    async fn drive(&mut self) -> Result<(), String> {
        let mut clock = Clock::new(self.plan.schedule);
        let pacer = self.plan.pacer.clone();
        let mut sending = true;
        // Armed once and moved on only when it fires, so a busy turn touches no timer.
        let mut last_reply = Instant::now();
        let silence = tokio::time::sleep(self.timeout);
        tokio::pin!(silence);
        loop {
            if sending {
                sending = self.send_due(&mut clock);
            }
            if !sending && self.pending.is_empty() && self.out.is_empty() {
                return Ok(());
            }
            if self.pending.is_empty() {
                // Nothing awaited: silence is not the server's fault.
                last_reply = Instant::now();
            }
            let wake_to_send = if sending && self.pending.len() < self.pipeline { clock.next_due() } else { None };
            let (mut reader, mut writer) = self.stream.split();
            tokio::select! {
                written = writer.write(&self.out), if !self.out.is_empty() => {
                    let n = written.map_err(|e| format!("writing: {e}"))?;
                    self.out.drain(..n);
                }
                read = reader.read_buf(&mut self.input), if !self.pending.is_empty() => {
                    if read.map_err(|e| format!("reading: {e}"))? == 0 {
                        return Err("the server closed the connection".to_owned());
                    }
                    last_reply = Instant::now();
                    self.take_replies()?;
                }
                () = crate::pacer::sleep_until_or_forever(pacer.as_ref(), wake_to_send) => {}
                () = &mut silence => {
                    let quiet_until = last_reply + self.timeout;
                    if !self.pending.is_empty() && Instant::now() >= quiet_until {
                        return Err(format!("no reply within {:?}", self.timeout));
                    }
                    silence.as_mut().reset(quiet_until.max(Instant::now() + self.timeout / 2).into());
                }
            }
        }
    }

    /// Queues every request that may go now; false once the plan has ended.
    fn send_due(&mut self, clock: &mut Clock) -> bool {
        while self.pending.len() < self.pipeline {
            let now = Instant::now();
            let Some(start) = clock.take(now) else { return true };
            if start >= self.plan.until {
                return false;
            }
            let Some(operation) = self.plan.next_operation() else { return false };
            if self.plan.schedule.is_some() && start >= self.plan.measure_from {
                self.tally.sent_late(u64::try_from(now.duration_since(start).as_nanos()).unwrap_or(u64::MAX));
            }
            let command: &[u8] = if matches!(operation.op, Op::Read | Op::ReadModifyWrite) { b"GET" } else { b"SET" };
            self.encode(command, operation.record);
            self.pending.push_back(Pending { operation, start, writing: false });
        }
        true
    }

    fn encode(&mut self, command: &[u8], record: u64) {
        self.key.clear();
        write_redis_key(&mut self.key, record);
        if command == b"GET" {
            resp_reply::encode_command(&mut self.out, &[command, &self.key]);
        } else {
            resp_reply::encode_command(&mut self.out, &[command, &self.key, &self.value]);
        }
    }

    /// Matches every complete reply read so far to its request.
    fn take_replies(&mut self) -> Result<(), String> {
        let mut at = 0;
        while let Some((reply, used)) = resp_reply::parse(&self.input[at..])? {
            at += used;
            let pending = self.pending.pop_front().ok_or("a reply to no request")?;
            self.answer(pending, reply);
        }
        self.input.drain(..at);
        if self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
            self.input.reserve(READ_CHUNK);
        }
        Ok(())
    }

    fn answer(&mut self, pending: Pending, reply: Reply) {
        let measured = pending.start >= self.plan.measure_from;
        let op = pending.operation.op;
        if let Reply::Error(message) = &reply {
            self.plan.completed_one();
            if measured {
                self.tally.error(message);
            }
            return;
        }
        if measured && matches!(op, Op::Read | Op::ReadModifyWrite) && !pending.writing {
            if reply == Reply::Nil {
                self.tally.misses += 1;
            } else {
                self.tally.hits += 1;
            }
        }
        if op == Op::ReadModifyWrite && !pending.writing {
            // The write half goes out now, behind whatever is in flight.
            self.encode(b"SET", pending.operation.record);
            self.pending.push_back(Pending { writing: true, ..pending });
            return;
        }
        self.plan.completed_one();
        if measured {
            let latency = Instant::now().duration_since(pending.start);
            self.tally.record(op, u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        }
    }
}
