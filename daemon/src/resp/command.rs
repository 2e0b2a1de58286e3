//! Turning a request's arguments into a typed [`Command`], with the errors Redis gives for a
//! wrong argument count, a bad option or a number that is not one. Pure: no I/O, no state.

use super::parser::Args;
use super::reply::Reply;

/// How `SET` (and friends) set the expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No expiry: the value lives until overwritten or deleted.
    Never,
    /// Expires this many milliseconds after the write.
    In(u64),
    /// Expires at this Unix time, milliseconds.
    At(u64),
    /// Keeps the key's current expiry (`KEEPTTL`).
    Keep,
}

/// `NX` / `XX` on `SET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Write whatever is there.
    Any,
    /// Only if the key does not exist (`NX`).
    Absent,
    /// Only if it exists (`XX`).
    Present,
}

/// `NX | XX | GT | LT` on `EXPIRE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireIf {
    /// Always.
    Always,
    /// Only if the key has no expiry.
    NoExpiry,
    /// Only if it has one.
    HasExpiry,
    /// Only if the new expiry is later (no expiry counts as infinitely late).
    Later,
    /// Only if the new expiry is earlier.
    Earlier,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "each variant is the Redis command of the same name")]
pub enum Command {
    Ping(Option<Vec<u8>>),
    Echo(Vec<u8>),
    Select(i64),
    Quit,
    Hello { protocol: Option<i64>, auth: Option<(Vec<u8>, Vec<u8>)>, name: Option<Vec<u8>> },
    Auth { user: Option<Vec<u8>>, password: Vec<u8> },
    Info(Vec<String>),
    Describe(CommandQuery),
    Client(ClientCall),
    ConfigGet(Vec<Vec<u8>>),
    Get(Vec<u8>),
    Set { key: Vec<u8>, value: Vec<u8>, expiry: Expiry, presence: Presence, get: bool },
    GetDel(Vec<u8>),
    IncrBy(Vec<u8>, i64),
    MGet(Vec<Vec<u8>>),
    MSet(Vec<(Vec<u8>, Vec<u8>)>),
    Del(Vec<Vec<u8>>),
    Exists(Vec<Vec<u8>>),
    Expire { key: Vec<u8>, at: ExpireAt, only: ExpireIf },
    Ttl { key: Vec<u8>, millis: bool },
    Persist(Vec<u8>),
    HSet(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>),
    HGet(Vec<u8>, Vec<u8>),
    HMGet(Vec<u8>, Vec<Vec<u8>>),
    HGetAll(Vec<u8>),
    HDel(Vec<u8>, Vec<Vec<u8>>),
    HExists(Vec<u8>, Vec<u8>),
    HLen(Vec<u8>),
    HKeys(Vec<u8>),
    HVals(Vec<u8>),
    Scan { cursor: u64, pattern: Option<Vec<u8>>, count: usize },
}

impl Command {
    /// Every command's name, indexed by [`Command::index`], for per-command counters (a name
    /// stands for its variants: `ttl` also counts `PTTL`, `expire` the other `EXPIRE`s).
    pub const NAMES: [&'static str; 31] = [
        "ping", "echo", "select", "quit", "hello", "auth", "info", "command", "client", "config", "get", "set",
        "getdel", "incrby", "mget", "mset", "del", "exists", "expire", "ttl", "persist", "hset", "hget", "hmget",
        "hgetall", "hdel", "hexists", "hlen", "hkeys", "hvals", "scan",
    ];

    /// The command's index into [`Command::NAMES`].
    pub fn index(&self) -> usize {
        match self {
            Command::Ping(..) => 0,
            Command::Echo(..) => 1,
            Command::Select(..) => 2,
            Command::Quit => 3,
            Command::Hello { .. } => 4,
            Command::Auth { .. } => 5,
            Command::Info(..) => 6,
            Command::Describe(..) => 7,
            Command::Client(..) => 8,
            Command::ConfigGet(..) => 9,
            Command::Get(..) => 10,
            Command::Set { .. } => 11,
            Command::GetDel(..) => 12,
            Command::IncrBy(..) => 13,
            Command::MGet(..) => 14,
            Command::MSet(..) => 15,
            Command::Del(..) => 16,
            Command::Exists(..) => 17,
            Command::Expire { .. } => 18,
            Command::Ttl { .. } => 19,
            Command::Persist(..) => 20,
            Command::HSet(..) => 21,
            Command::HGet(..) => 22,
            Command::HMGet(..) => 23,
            Command::HGetAll(..) => 24,
            Command::HDel(..) => 25,
            Command::HExists(..) => 26,
            Command::HLen(..) => 27,
            Command::HKeys(..) => 28,
            Command::HVals(..) => 29,
            Command::Scan { .. } => 30,
        }
    }
}

/// When `EXPIRE`/`PEXPIRE` sets the key to expire: relative to now, in milliseconds (zero or
/// negative deletes the key, as in Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpireAt {
    /// Milliseconds from now.
    pub in_ms: i64,
}

/// `COMMAND` and its subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandQuery {
    /// `COMMAND`: every command's description.
    All,
    /// `COMMAND COUNT`.
    Count,
    /// `COMMAND INFO name...` (every command when none is named).
    Info(Vec<String>),
    /// `COMMAND DOCS name...`.
    Docs(Vec<String>),
    /// `COMMAND LIST`.
    List,
}

/// `CLIENT` subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCall {
    /// `CLIENT SETNAME name`.
    SetName(Vec<u8>),
    /// `CLIENT GETNAME`.
    GetName,
    /// `CLIENT ID`.
    Id,
    /// `CLIENT SETINFO attr value` (library name and version; accepted and ignored).
    SetInfo,
    /// `CLIENT INFO`.
    Info,
}

/// Redis's message for a wrong argument count.
pub fn arity_error(name: &str) -> Reply {
    Reply::err(format!("wrong number of arguments for '{name}' command"))
}

fn not_an_integer() -> Reply {
    Reply::err("value is not an integer or out of range")
}

fn syntax() -> Reply {
    Reply::err("syntax error")
}

/// A whole number argument, as Redis reads one.
pub fn integer(arg: &[u8]) -> Result<i64, Reply> {
    std::str::from_utf8(arg).ok().and_then(|s| s.parse::<i64>().ok()).ok_or_else(not_an_integer)
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}

/// The unknown-command error, naming up to a few arguments as Redis does.
fn unknown(args: &Args) -> Reply {
    let name = String::from_utf8_lossy(&args[0]);
    let mut shown = String::new();
    for a in args.iter().skip(1).take(16) {
        let text = String::from_utf8_lossy(a);
        let cut: String = text.chars().take(128).collect();
        shown.push_str(&format!("'{cut}' "));
    }
    Reply::err(format!("unknown command '{name}', with args beginning with: {shown}"))
}

/// Parses one command; `Err` holds the reply for a command that cannot run.
pub fn parse(args: Args) -> Result<Command, Reply> {
    let Some(first) = args.first() else { return Err(Reply::err("empty command")) };
    // Lowercased on the stack: every known name is shorter than the buffer, and a longer or
    // non-UTF-8 one is unknown.
    let mut lowered = [0u8; 16];
    let name = match lowered.get_mut(..first.len()) {
        Some(name) => {
            name.copy_from_slice(first);
            name.make_ascii_lowercase();
            std::str::from_utf8(name).unwrap_or("")
        }
        None => "",
    };
    let n = args.len();
    // (least, most) arguments including the name; `usize::MAX` for variadic.
    let (least, most) = match name {
        "ping" => (1, 2),
        "quit" | "command" | "hello" | "info" => (1, usize::MAX),
        "echo" | "select" | "get" | "getdel" | "incr" | "decr" | "ttl" | "pttl" | "persist" | "hgetall" | "hlen"
        | "hkeys" | "hvals" => (2, 2),
        "incrby" | "decrby" | "hget" | "hexists" => (3, 3),
        "setex" => (4, 4),
        "auth" => (2, 3),
        "mget" | "del" | "exists" | "scan" | "client" | "config" => (2, usize::MAX),
        "set" | "mset" | "expire" | "pexpire" | "hmget" | "hdel" => (3, usize::MAX),
        "hset" => (4, usize::MAX),
        _ => return Err(unknown(&args)),
    };
    if n < least || n > most {
        return Err(arity_error(name));
    }
    let mut it = args.into_iter();
    it.next();
    let mut rest: Vec<Vec<u8>> = it.collect();
    // The arguments move into the command: no copies.
    let take = |rest: &mut Vec<Vec<u8>>, i: usize| std::mem::take(&mut rest[i]);
    Ok(match name {
        "ping" => Command::Ping(rest.into_iter().next()),
        "echo" => Command::Echo(take(&mut rest, 0)),
        "quit" => Command::Quit,
        "select" => Command::Select(integer(&rest[0])?),
        "hello" => hello(rest)?,
        "auth" => match <[Vec<u8>; 2]>::try_from(rest) {
            Ok([user, password]) => Command::Auth { user: Some(user), password },
            Err(rest) => Command::Auth { user: None, password: rest.into_iter().next().unwrap_or_default() },
        },
        "info" => Command::Info(rest.iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect()),
        "command" => Command::Describe(command_query(&rest)?),
        "client" => Command::Client(client(&rest)?),
        "config" => config(rest)?,
        "get" => Command::Get(take(&mut rest, 0)),
        "getdel" => Command::GetDel(take(&mut rest, 0)),
        "set" => set(rest)?,
        "setex" => {
            let seconds = integer(&rest[1])?;
            let ms = positive_ms(seconds, 1000, "setex")?;
            let [key, _, value] = <[Vec<u8>; 3]>::try_from(rest).map_err(|_| arity_error("setex"))?;
            Command::Set { key, value, expiry: Expiry::In(ms), presence: Presence::Any, get: false }
        }
        "incr" => Command::IncrBy(take(&mut rest, 0), 1),
        "decr" => Command::IncrBy(take(&mut rest, 0), -1),
        "incrby" => Command::IncrBy(take(&mut rest, 0), integer(&rest[1])?),
        "decrby" => {
            let by = integer(&rest[1])?;
            Command::IncrBy(take(&mut rest, 0), by.checked_neg().ok_or_else(|| Reply::err("decrement would overflow"))?)
        }
        "mget" => Command::MGet(rest),
        "mset" => Command::MSet(pairs(rest).ok_or_else(|| arity_error("mset"))?),
        "del" => Command::Del(rest),
        "exists" => Command::Exists(rest),
        "expire" | "pexpire" => expire(name, rest)?,
        "ttl" => Command::Ttl { key: take(&mut rest, 0), millis: false },
        "pttl" => Command::Ttl { key: take(&mut rest, 0), millis: true },
        "persist" => Command::Persist(take(&mut rest, 0)),
        "hset" => {
            let k = rest.remove(0);
            Command::HSet(k, pairs(rest).ok_or_else(|| arity_error("hset"))?)
        }
        "hget" => Command::HGet(take(&mut rest, 0), take(&mut rest, 1)),
        "hmget" => {
            let k = rest.remove(0);
            Command::HMGet(k, rest)
        }
        "hgetall" => Command::HGetAll(take(&mut rest, 0)),
        "hdel" => {
            let k = rest.remove(0);
            Command::HDel(k, rest)
        }
        "hexists" => Command::HExists(take(&mut rest, 0), take(&mut rest, 1)),
        "hlen" => Command::HLen(take(&mut rest, 0)),
        "hkeys" => Command::HKeys(take(&mut rest, 0)),
        "hvals" => Command::HVals(take(&mut rest, 0)),
        "scan" => scan(&rest)?,
        _ => return Err(Reply::err(format!("unknown command '{name}'"))),
    })
}

fn pairs(flat: Vec<Vec<u8>>) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if flat.is_empty() || !flat.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Some(out)
}

/// `amount` units of `unit_ms` as a positive millisecond count, or Redis's invalid-expire error.
fn positive_ms(amount: i64, unit_ms: i64, command: &str) -> Result<u64, Reply> {
    amount
        .checked_mul(unit_ms)
        .filter(|ms| *ms > 0)
        .and_then(|ms| u64::try_from(ms).ok())
        .ok_or_else(|| Reply::err(format!("invalid expire time in '{command}' command")))
}

fn set(rest: Vec<Vec<u8>>) -> Result<Command, Reply> {
    let mut it = rest.into_iter();
    let (Some(key), Some(value)) = (it.next(), it.next()) else { return Err(arity_error("set")) };
    let options: Vec<Vec<u8>> = it.collect();
    let mut expiry = Expiry::Never;
    let mut presence = Presence::Any;
    let mut get = false;
    let mut i = 0;
    while i < options.len() {
        let option = upper(&options[i]);
        match option.as_str() {
            "NX" | "XX" if presence == Presence::Any => {
                presence = if option == "NX" { Presence::Absent } else { Presence::Present };
            }
            "GET" if !get => get = true,
            "KEEPTTL" if expiry == Expiry::Never => expiry = Expiry::Keep,
            "EX" | "PX" | "EXAT" | "PXAT" if expiry == Expiry::Never => {
                let Some(arg) = options.get(i + 1) else { return Err(syntax()) };
                let amount = integer(arg)?;
                let unit = if option == "EX" || option == "EXAT" { 1000 } else { 1 };
                let ms = positive_ms(amount, unit, "set")?;
                expiry = if option.ends_with("AT") { Expiry::At(ms) } else { Expiry::In(ms) };
                i += 1;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    Ok(Command::Set { key, value, expiry, presence, get })
}

fn expire(name: &str, rest: Vec<Vec<u8>>) -> Result<Command, Reply> {
    let amount = integer(&rest[1])?;
    let unit = if name == "expire" { 1000 } else { 1 };
    let in_ms =
        amount.checked_mul(unit).ok_or_else(|| Reply::err(format!("invalid expire time in '{name}' command")))?;
    let mut only = ExpireIf::Always;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &rest[2..] {
        match upper(option).as_str() {
            "NX" => nx = true,
            "XX" => xx = true,
            "GT" => gt = true,
            "LT" => lt = true,
            other => return Err(Reply::err(format!("Unsupported option {other}"))),
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(Reply::err("GT and LT options at the same time are not compatible"));
    }
    if nx {
        only = ExpireIf::NoExpiry;
    } else if gt {
        only = ExpireIf::Later;
    } else if lt {
        only = ExpireIf::Earlier;
    }
    if xx && only == ExpireIf::Always {
        only = ExpireIf::HasExpiry;
    }
    let key = rest.into_iter().next().unwrap_or_default();
    Ok(Command::Expire { key, at: ExpireAt { in_ms }, only })
}

fn scan(rest: &[Vec<u8>]) -> Result<Command, Reply> {
    let cursor = std::str::from_utf8(&rest[0])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Reply::err("invalid cursor"))?;
    let mut pattern = None;
    let mut count = 10usize;
    let mut i = 1;
    while i < rest.len() {
        let Some(arg) = rest.get(i + 1) else { return Err(syntax()) };
        match upper(&rest[i]).as_str() {
            "MATCH" => pattern = Some(arg.clone()),
            "COUNT" => {
                let n = integer(arg)?;
                if n < 1 {
                    return Err(syntax());
                }
                count = usize::try_from(n).unwrap_or(usize::MAX);
            }
            _ => return Err(syntax()),
        }
        i += 2;
    }
    Ok(Command::Scan { cursor, pattern, count })
}

fn hello(rest: Vec<Vec<u8>>) -> Result<Command, Reply> {
    let mut it = rest.into_iter();
    let protocol = match it.next() {
        None => None,
        Some(p) => Some(
            std::str::from_utf8(&p)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| Reply::err("Protocol version is not an integer or out of range"))?,
        ),
    };
    let (mut auth, mut name) = (None, None);
    while let Some(option) = it.next() {
        match upper(&option).as_str() {
            "AUTH" => match (it.next(), it.next()) {
                (Some(u), Some(p)) => auth = Some((u, p)),
                _ => return Err(syntax_in("HELLO", &option)),
            },
            "SETNAME" => match it.next() {
                Some(n) => name = Some(n),
                None => return Err(syntax_in("HELLO", &option)),
            },
            _ => return Err(syntax_in("HELLO", &option)),
        }
    }
    Ok(Command::Hello { protocol, auth, name })
}

fn syntax_in(command: &str, option: &[u8]) -> Reply {
    Reply::err(format!("Syntax error in {command} option '{}'", String::from_utf8_lossy(option)))
}

fn names(rest: &[Vec<u8>]) -> Vec<String> {
    rest.iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect()
}

fn command_query(rest: &[Vec<u8>]) -> Result<CommandQuery, Reply> {
    let Some(sub) = rest.first() else { return Ok(CommandQuery::All) };
    match upper(sub).as_str() {
        "COUNT" if rest.len() == 1 => Ok(CommandQuery::Count),
        "LIST" => Ok(CommandQuery::List),
        "INFO" => Ok(CommandQuery::Info(names(&rest[1..]))),
        "DOCS" => Ok(CommandQuery::Docs(names(&rest[1..]))),
        _ => Err(unknown_subcommand("COMMAND", sub)),
    }
}

fn unknown_subcommand(command: &str, sub: &[u8]) -> Reply {
    Reply::err(format!("unknown subcommand '{}'. Try {command} HELP.", String::from_utf8_lossy(sub)))
}

fn client(rest: &[Vec<u8>]) -> Result<ClientCall, Reply> {
    let sub = upper(&rest[0]);
    let arity = || Reply::err(format!("wrong number of arguments for 'client|{}' command", sub.to_lowercase()));
    match (sub.as_str(), rest.len()) {
        ("SETNAME", 2) => {
            let name = &rest[1];
            if name.iter().any(|b| *b <= b' ' || *b > b'~') {
                return Err(Reply::err("Client names cannot contain spaces, newlines or special characters."));
            }
            Ok(ClientCall::SetName(name.clone()))
        }
        ("GETNAME", 1) => Ok(ClientCall::GetName),
        ("ID", 1) => Ok(ClientCall::Id),
        ("INFO", 1) => Ok(ClientCall::Info),
        ("SETINFO", 3) => Ok(ClientCall::SetInfo),
        ("SETNAME" | "GETNAME" | "ID" | "INFO" | "SETINFO", _) => Err(arity()),
        _ => Err(unknown_subcommand("CLIENT", &rest[0])),
    }
}

fn config(rest: Vec<Vec<u8>>) -> Result<Command, Reply> {
    match upper(&rest[0]).as_str() {
        "GET" if rest.len() >= 2 => Ok(Command::ConfigGet(rest[1..].to_vec())),
        "GET" => Err(arity_error("config|get")),
        _ => Err(unknown_subcommand("CONFIG", &rest[0])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Result<Command, Reply> {
        parse(line.split(' ').map(|w| w.as_bytes().to_vec()).collect())
    }

    fn err(line: &str) -> String {
        match cmd(line) {
            Err(Reply::Error(e)) => e,
            other => panic!("{line}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn set_options_parse_and_conflicts_are_syntax_errors() {
        assert_eq!(
            cmd("SET k v EX 10 NX GET"),
            Ok(Command::Set {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                expiry: Expiry::In(10_000),
                presence: Presence::Absent,
                get: true
            })
        );
        assert!(matches!(cmd("set k v pxat 5"), Ok(Command::Set { expiry: Expiry::At(5), .. })));
        assert!(matches!(cmd("set k v keepttl"), Ok(Command::Set { expiry: Expiry::Keep, .. })));
        assert_eq!(err("SET k v NX XX"), "ERR syntax error");
        assert_eq!(err("SET k v EX 1 PX 1"), "ERR syntax error");
        assert_eq!(err("SET k v EX"), "ERR syntax error");
        assert_eq!(err("SET k v EX x"), "ERR value is not an integer or out of range");
        assert_eq!(err("SET k v EX 0"), "ERR invalid expire time in 'set' command");
        assert_eq!(err("SETEX k -1 v"), "ERR invalid expire time in 'setex' command");
        assert_eq!(err("SET k"), "ERR wrong number of arguments for 'set' command");
    }

    #[test]
    fn arity_and_unknown_commands_read_like_redis() {
        assert_eq!(err("GET"), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err("PING a b"), "ERR wrong number of arguments for 'ping' command");
        assert_eq!(err("MSET a b c"), "ERR wrong number of arguments for 'mset' command");
        assert_eq!(err("HSET h f"), "ERR wrong number of arguments for 'hset' command");
        assert_eq!(err("HSET h f v g"), "ERR wrong number of arguments for 'hset' command");
        assert_eq!(err("FLUSHALL"), "ERR unknown command 'FLUSHALL', with args beginning with: ");
        assert_eq!(err("foo a b"), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
        assert_eq!(err("CLIENT KILL x"), "ERR unknown subcommand 'KILL'. Try CLIENT HELP.");
    }

    #[test]
    fn expire_options_and_scan_arguments_are_checked() {
        assert!(matches!(cmd("EXPIRE k 10 GT"), Ok(Command::Expire { only: ExpireIf::Later, .. })));
        assert!(matches!(cmd("PEXPIRE k -5"), Ok(Command::Expire { at: ExpireAt { in_ms: -5 }, .. })));
        assert_eq!(err("EXPIRE k 1 NX XX"), "ERR NX and XX, GT or LT options at the same time are not compatible");
        assert_eq!(err("EXPIRE k 1 GT LT"), "ERR GT and LT options at the same time are not compatible");
        assert_eq!(err("EXPIRE k 1 FOO"), "ERR Unsupported option FOO");
        assert_eq!(
            cmd("SCAN 0 MATCH a* COUNT 5"),
            Ok(Command::Scan { cursor: 0, pattern: Some(b"a*".to_vec()), count: 5 })
        );
        assert_eq!(err("SCAN x"), "ERR invalid cursor");
        assert_eq!(err("SCAN 0 COUNT 0"), "ERR syntax error");
        assert_eq!(err("SCAN 0 MATCH"), "ERR syntax error");
        assert_eq!(err("DECRBY k -9223372036854775808"), "ERR decrement would overflow");
    }
}
