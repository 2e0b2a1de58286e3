//! One RESP connection: read what the client sent, parse every whole command, plan each (a
//! reply ready at once, key operations for the shards that own the keys, or a SCAN step), run
//! the key operations of the whole pipeline with one message per owning shard, and write every
//! reply, in order, with one write.
//!
//! Commands of one pipeline run in order per shard, and one key always maps to one shard, so a
//! pipeline sees its own writes. A SCAN waits for the commands before it.

use super::command::{self, ClientCall, Command, CommandQuery};
use super::info;
use super::keyspace::{self, Action, KeyOp};
use super::parser::{self, Args};
use super::reply::{Protocol, Reply};
use super::scan::{self, ScanCall};
use crate::shard::Shard;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use glommio::net::TcpStream;
use smallvec::SmallVec;
use std::rc::Rc;
use std::time::Instant;

/// Commands taken from the input buffer before their replies are written.
const MAX_PIPELINE_COMMANDS: usize = 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// What a connection remembers between commands.
struct Session {
    protocol: Protocol,
    name: Option<Vec<u8>>,
    id: u64,
}

/// How the replies of a command's key operations make its reply.
enum Combine {
    /// The one operation's reply.
    One,
    /// An array of the replies (`MGET`).
    Array,
    /// The sum of integer replies (`DEL`, `EXISTS`).
    Sum,
    /// `OK` unless one failed (`MSET`).
    AllOk,
}

/// A planned command.
enum Step {
    Ready(Reply),
    Keys { ops: Vec<(usize, KeyOp)>, combine: Combine },
    Scan(ScanCall),
}

/// Serves `stream` until the client leaves, sends `QUIT`, breaks the protocol or the shard
/// stops.
pub async fn serve(shard: &Rc<Shard>, stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true).ok();
    let limits = shard.process.config.resp.limits();
    let mut session = Session { protocol: Protocol::Resp2, name: None, id: shard.next_resp_client_id() };
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    let mut out: Vec<u8> = Vec::new();
    let reply_limit = shard.process.config.resp.max_pending_reply_bytes_per_connection;
    let mut pipeline = PipelineSize::default();
    loop {
        let mut commands: Vec<Args> = Vec::new();
        let mut used = 0;
        let mut broken = None;
        while commands.len() < pipeline.commands {
            match parser::parse(&input[used..], &limits) {
                Ok(Some((args, n))) => {
                    used += n;
                    if !args.is_empty() {
                        commands.push(args);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        input.drain(..used);
        let pipelined = commands.len();
        if pipelined > 0 {
            // A shard whose connections hold their whole reply budget starts no new pipeline.
            shard.resp.reply_bytes.wait_for_room().await;
            let serving = shard.life.serving();
            let quit = run(shard, &mut session, commands, &mut out).await;
            drop(serving);
            let held = shard.resp.reply_bytes.take_now(out.len());
            pipeline.adapt(out.len(), reply_limit);
            writer.write_all(&out).await?;
            drop(held);
            out.clear();
            if out.capacity() > reply_limit {
                out = Vec::new();
            }
            if quit {
                writer.flush().await?;
                return Ok(());
            }
        }
        if let Some(e) = broken {
            Reply::err(&e).encode(session.protocol, &mut out);
            writer.write_all(&out).await?;
            writer.flush().await?;
            anyhow::bail!("RESP protocol error: {e}");
        }
        if pipelined == pipeline.commands {
            continue;
        }
        if shard.life.is_stopping() {
            return Ok(());
        }
        let read = async { Some(reader.read(&mut chunk).await) }.or(async {
            shard.life.until_stopping().await;
            None
        });
        match read.await {
            None | Some(Ok(0)) => return Ok(()),
            Some(Ok(n)) => input.extend_from_slice(&chunk[..n]),
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// How many commands a connection takes into one pipeline: up to [`MAX_PIPELINE_COMMANDS`],
/// halved while a pipeline's replies come to more than the connection's reply limit and grown
/// back while they stay well under it. So a connection's computed replies stay within about
/// twice its limit, or one command's replies when a single command is larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PipelineSize {
    commands: usize,
}

impl Default for PipelineSize {
    fn default() -> Self {
        Self { commands: MAX_PIPELINE_COMMANDS }
    }
}

impl PipelineSize {
    fn adapt(&mut self, reply_bytes: usize, limit_bytes: usize) {
        if reply_bytes > limit_bytes {
            self.commands = (self.commands / 2).max(1);
        } else if reply_bytes < limit_bytes / 4 {
            self.commands = (self.commands * 2).min(MAX_PIPELINE_COMMANDS);
        }
    }
}

/// Plans and runs one pipeline's commands and encodes their replies into `out`; true once the
/// client said `QUIT`.
async fn run(shard: &Rc<Shard>, session: &mut Session, commands: Vec<Args>, out: &mut Vec<u8>) -> bool {
    let mut pending: Vec<Pending> = Vec::new();
    let mut quit = false;
    let metrics = &shard.resp.metrics;
    for args in commands {
        let started = Instant::now();
        let (step, command) = match command::parse(args) {
            Err(reply) => {
                metrics.count_refused();
                (Step::Ready(reply), None)
            }
            Ok(Command::Quit) => {
                metrics.count(&Command::Quit);
                quit = true;
                (Step::Ready(Reply::OK), Some(Command::Quit.index()))
            }
            Ok(c) => {
                metrics.count(&c);
                let index = c.index();
                (plan(shard, session, c), Some(index))
            }
        };
        let ran = command.map(|command| Ran { command, started });
        if let Step::Scan(call) = step {
            flush(shard, std::mem::take(&mut pending), out).await;
            let reply = scan_call(shard, call).await;
            if let Some(ran) = ran {
                metrics.record(ran.command, &reply, ran.started.elapsed());
            }
            reply.encode(session.protocol, out);
        } else {
            pending.push(Pending { step, protocol: session.protocol, ran });
        }
        if quit {
            break;
        }
    }
    flush(shard, pending, out).await;
    quit
}

/// A command that ran (was not refused): its [`Command::index`] and when it was parsed.
#[derive(Debug, Clone, Copy)]
struct Ran {
    command: usize,
    started: Instant,
}

/// A planned step waiting for its pipeline's flush.
struct Pending {
    step: Step,
    protocol: Protocol,
    ran: Option<Ran>,
}

/// Runs the key operations of `steps`, one message per owning shard, and encodes the replies;
/// records each command's outcome and latency as its reply is ready.
async fn flush(shard: &Rc<Shard>, steps: Vec<Pending>, out: &mut Vec<u8>) {
    let shards = shard.process.shard_count;
    // On the stack for a few shards and a short pipeline: at `-P 1` these are per command.
    let mut groups: SmallVec<[Vec<KeyOp>; 4]> = (0..shards).map(|_| Vec::new()).collect();
    // The owner of every step's operations, all steps' in one list in order: a shard answers
    // its group in order, so an owner's next reply is its next operation's.
    let mut owners: SmallVec<[usize; 16]> = SmallVec::new();
    let mut planned: SmallVec<[(Planned, Protocol, Option<Ran>); 4]> = SmallVec::with_capacity(steps.len());
    for Pending { step, protocol, ran } in steps {
        let step = match step {
            Step::Keys { ops, combine } => {
                let count = ops.len();
                for (owner, op) in ops {
                    owners.push(owner);
                    groups[owner].push(op);
                }
                Planned::Keys { count, combine }
            }
            Step::Ready(r) => Planned::Ready(r),
            Step::Scan(_) => Planned::Ready(Reply::err("SCAN was planned out of order")),
        };
        planned.push((step, protocol, ran));
    }
    let mut asked: SmallVec<[_; 4]> = SmallVec::new();
    let mut local = Vec::new();
    for (owner, ops) in groups.into_iter().enumerate() {
        if ops.is_empty() {
            continue;
        }
        if owner == shard.id {
            local = ops;
        } else {
            let s = shard.clone();
            let count = ops.len();
            asked.push((owner, glommio::spawn_local(async move { ask(&s, owner, ops, count).await })));
        }
    }
    let mut replies: SmallVec<[Vec<Reply>; 4]> = (0..shards).map(|_| Vec::new()).collect();
    if !local.is_empty() {
        replies[shard.id] = keyspace::execute(shard, local).await;
    }
    for (owner, task) in asked {
        replies[owner] = task.await;
    }
    let mut taken: SmallVec<[std::vec::IntoIter<Reply>; 4]> = replies.into_iter().map(Vec::into_iter).collect();
    let mut owners = owners.into_iter();
    for (step, protocol, ran) in planned {
        let reply = match step {
            Planned::Ready(r) => r,
            Planned::Keys { count, combine } => {
                let parts = (&mut owners)
                    .take(count)
                    .map(|owner| taken[owner].next().unwrap_or_else(|| Reply::err("a shard lost a reply")));
                combined(combine, parts)
            }
        };
        if let Some(ran) = ran {
            shard.resp.metrics.record(ran.command, &reply, ran.started.elapsed());
        }
        reply.encode(protocol, out);
    }
}

/// A step once its key operations are handed to their shards.
enum Planned {
    Ready(Reply),
    Keys { count: usize, combine: Combine },
}

async fn ask(shard: &Rc<Shard>, owner: usize, ops: Vec<KeyOp>, count: usize) -> Vec<Reply> {
    match shard.mesh.invoke_on(owner, move |s| async move { keyspace::execute(&s, ops).await }).await {
        Ok(replies) => {
            assert_eq!(replies.len(), count, "keyspace::execute answers every operation");
            replies
        }
        Err(e) => vec![Reply::err(e.to_string()); count],
    }
}

/// The reply of a command from the replies of its key operations, every one of which it takes
/// from `parts` (the next command's follow).
fn combined(combine: Combine, mut parts: impl Iterator<Item = Reply>) -> Reply {
    match combine {
        Combine::One => {
            let first = parts.next().unwrap_or_else(|| Reply::err("no reply"));
            parts.for_each(drop);
            first
        }
        Combine::Array => Reply::Array(parts.collect()),
        Combine::Sum => {
            // The first reply that is not an integer stands for the command.
            let (mut total, mut failed) = (0i64, None);
            for p in parts {
                match p {
                    Reply::Integer(n) => total = total.saturating_add(n),
                    other => {
                        failed.get_or_insert(other);
                    }
                }
            }
            failed.unwrap_or(Reply::Integer(total))
        }
        Combine::AllOk => {
            // The first error stands for the command.
            let mut failed = None;
            for p in parts.filter(Reply::is_error) {
                failed.get_or_insert(p);
            }
            failed.unwrap_or(Reply::OK)
        }
    }
}

/// Runs a SCAN call where its cursor lives.
async fn scan_call(shard: &Rc<Shard>, call: ScanCall) -> Reply {
    let home = if call.cursor == 0 { shard.id } else { scan::home_of(call.cursor) };
    if home >= shard.process.shard_count {
        return Reply::err("invalid or expired SCAN cursor");
    }
    let run = move |s: Rc<Shard>| async move { scan::step(&s, call, |key| s.resp_table_of(key).ok()).await };
    shard.mesh.invoke_on(home, run).await.unwrap_or_else(|e| Reply::err(e.to_string()))
}

/// A key operation on `key`, for its owner; or the reply when the key's table does not exist.
fn key_op(shard: &Shard, key: Vec<u8>, action: Action) -> Result<(usize, KeyOp), Reply> {
    let table = shard.resp_table_of(&key)?;
    Ok((shard.owner_of(&key), KeyOp { table, key, action }))
}

fn keys_step(ops: Result<Vec<(usize, KeyOp)>, Reply>, combine: Combine) -> Step {
    match ops {
        Ok(ops) => Step::Keys { ops, combine },
        Err(reply) => Step::Ready(reply),
    }
}

fn one(shard: &Shard, key: Vec<u8>, action: Action) -> Step {
    keys_step(key_op(shard, key, action).map(|op| vec![op]), Combine::One)
}

/// The error MSET gets when one of its pairs is over a storage limit, found before any pair is
/// written: MSET sets every key or none, as in Redis. (The message is the one the storage limit
/// would give for that pair.)
fn mset_refusal(shard: &Shard, pairs: &[(Vec<u8>, Vec<u8>)]) -> Option<Reply> {
    let limits = &shard.process.config.limits;
    let over = |what: &str, size: usize, max: usize| (size > max).then(|| keyspace::over_limit(what, size, max));
    pairs.iter().find_map(|(key, value)| {
        over("key", key.len(), limits.max_partition_key_bytes)
            .or_else(|| over("value", value.len(), limits.max_value_bytes))
    })
}

fn plan(shard: &Shard, session: &mut Session, c: Command) -> Step {
    match c {
        Command::Get(k) => one(shard, k, Action::Get),
        Command::Set { key, value, expiry, presence, get } => {
            one(shard, key, Action::Set { value, expiry, presence, get })
        }
        Command::GetDel(k) => one(shard, k, Action::GetDel),
        Command::IncrBy(k, by) => one(shard, k, Action::IncrBy(by)),
        Command::MGet(keys) => {
            keys_step(keys.into_iter().map(|k| key_op(shard, k, Action::Get)).collect(), Combine::Array)
        }
        Command::MSet(pairs) if let Some(refused) = mset_refusal(shard, &pairs) => Step::Ready(refused),
        Command::MSet(pairs) => keys_step(
            pairs
                .into_iter()
                .map(|(k, value)| {
                    let set = Action::Set {
                        value,
                        expiry: command::Expiry::Never,
                        presence: command::Presence::Any,
                        get: false,
                    };
                    key_op(shard, k, set)
                })
                .collect(),
            Combine::AllOk,
        ),
        Command::Del(keys) => {
            keys_step(keys.into_iter().map(|k| key_op(shard, k, Action::Del)).collect(), Combine::Sum)
        }
        Command::Exists(keys) => {
            keys_step(keys.into_iter().map(|k| key_op(shard, k, Action::Exists)).collect(), Combine::Sum)
        }
        Command::Expire { key, at, only } => one(shard, key, Action::Expire { in_ms: at.in_ms, only }),
        Command::Ttl { key, millis } => one(shard, key, Action::Ttl { millis }),
        Command::Persist(k) => one(shard, k, Action::Persist),
        Command::HSet(k, pairs) => one(shard, k, Action::HSet(pairs)),
        Command::HGet(k, f) => one(shard, k, Action::HGet(f)),
        Command::HMGet(k, fields) => one(shard, k, Action::HMGet(fields)),
        Command::HGetAll(k) => one(shard, k, Action::HGetAll),
        Command::HDel(k, fields) => one(shard, k, Action::HDel(fields)),
        Command::HExists(k, f) => one(shard, k, Action::HExists(f)),
        Command::HLen(k) => one(shard, k, Action::HLen),
        Command::HKeys(k) => one(shard, k, Action::HKeys),
        Command::HVals(k) => one(shard, k, Action::HVals),
        Command::Scan { cursor, pattern, count } => match shard.resp_tables() {
            Ok(tables) => Step::Scan(ScanCall { cursor, tables, pattern, count }),
            Err(reply) => Step::Ready(reply),
        },
        other => Step::Ready(answer(shard, session, other)),
    }
}

/// Commands about the connection or the server, answered here.
fn answer(shard: &Shard, session: &mut Session, c: Command) -> Reply {
    match c {
        Command::Ping(None) => Reply::Simple("PONG"),
        Command::Ping(Some(message)) | Command::Echo(message) => Reply::Bulk(message),
        Command::Select(0) => Reply::OK,
        Command::Select(_) => Reply::err("DB index is out of range"),
        Command::Auth { user, password: _ } => auth(user.as_deref()),
        Command::Hello { protocol, auth: credentials, name } => {
            let version = match protocol {
                None => 2,
                Some(v @ (2 | 3)) => v,
                Some(_) => return Reply::Error("NOPROTO unsupported protocol version".into()),
            };
            if let Some((user, _)) = &credentials
                && let err @ Reply::Error(_) = auth(Some(user))
            {
                return err;
            }
            if protocol.is_some() {
                session.protocol = if version == 3 { Protocol::Resp3 } else { Protocol::Resp2 };
            }
            if name.is_some() {
                session.name = name;
            }
            info::hello(session.id, if session.protocol == Protocol::Resp3 { 3 } else { 2 })
        }
        Command::Info(sections) => info::info(&sections, &shard.resp_info_facts()),
        Command::Describe(q) => match q {
            CommandQuery::All => info::command_all(),
            CommandQuery::Count => info::command_count(),
            CommandQuery::List => info::command_list(),
            CommandQuery::Info(names) => info::command_info(&names),
            CommandQuery::Docs(names) => info::command_docs(&names),
        },
        Command::Client(call) => match call {
            ClientCall::SetName(name) => {
                session.name = if name.is_empty() { None } else { Some(name) };
                Reply::OK
            }
            ClientCall::GetName => Reply::bulk_or_nil(session.name.clone()),
            ClientCall::Id => Reply::Integer(i64::try_from(session.id).unwrap_or(i64::MAX)),
            ClientCall::SetInfo => Reply::OK,
            ClientCall::Info => Reply::text(format!(
                "id={} name={} db=0 resp={}\n",
                session.id,
                String::from_utf8_lossy(session.name.as_deref().unwrap_or_default()),
                if session.protocol == Protocol::Resp3 { 3 } else { 2 }
            )),
        },
        Command::ConfigGet(_) => Reply::Map(Vec::new()),
        other => Reply::err(format!("{other:?} cannot be answered here")),
    }
}

/// `AUTH`: the door has no users or passwords, like a Redis whose default user has `nopass`:
/// `default` with any password is accepted, a password alone is the error Redis gives then.
fn auth(user: Option<&[u8]>) -> Reply {
    match user {
        None => Reply::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ),
        Some(b"default") => Reply::OK,
        Some(_) => Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_shrinks_while_its_replies_are_over_the_limit_and_grows_back() {
        let mut p = PipelineSize::default();
        p.adapt(10 << 20, 1 << 20);
        assert_eq!(p.commands, MAX_PIPELINE_COMMANDS / 2);
        for _ in 0..20 {
            p.adapt(10 << 20, 1 << 20);
        }
        assert_eq!(p.commands, 1, "never below one command");
        p.adapt(600 << 10, 1 << 20);
        assert_eq!(p.commands, 1, "between a quarter and the limit it stays");
        for _ in 0..20 {
            p.adapt(10, 1 << 20);
        }
        assert_eq!(p.commands, MAX_PIPELINE_COMMANDS, "never above the maximum");
    }
}
