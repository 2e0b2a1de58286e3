//! What the door says about itself: `INFO`, `HELLO`'s map and `COMMAND`'s table of commands.

use super::reply::Reply;

/// The Redis version whose commands the door follows; clients use it to pick features.
pub const REDIS_COMPAT_VERSION: &str = "7.0.0";

/// One command the door serves: name, Redis arity (negative: at least that many), flags, first
/// key, last key, key step, group, summary.
struct Spec(&'static str, i64, &'static [&'static str], i64, i64, i64, &'static str, &'static str);

const COMMANDS: &[Spec] = &[
    Spec("get", 2, &["readonly", "fast"], 1, 1, 1, "string", "Returns the string value of a key."),
    Spec("set", -3, &["write", "denyoom"], 1, 1, 1, "string", "Sets the string value of a key."),
    Spec("setex", 4, &["write", "denyoom"], 1, 1, 1, "string", "Sets a value and its expiry in seconds."),
    Spec("getdel", 2, &["write", "fast"], 1, 1, 1, "string", "Returns the value of a key and deletes it."),
    Spec("mget", -2, &["readonly", "fast"], 1, -1, 1, "string", "Returns the values of several keys."),
    Spec("mset", -3, &["write", "denyoom"], 1, -1, 2, "string", "Sets several keys (atomic per key)."),
    Spec("incr", 2, &["write", "denyoom", "fast"], 1, 1, 1, "string", "Adds one to an integer value."),
    Spec("decr", 2, &["write", "denyoom", "fast"], 1, 1, 1, "string", "Subtracts one from an integer value."),
    Spec("incrby", 3, &["write", "denyoom", "fast"], 1, 1, 1, "string", "Adds to an integer value."),
    Spec("decrby", 3, &["write", "denyoom", "fast"], 1, 1, 1, "string", "Subtracts from an integer value."),
    Spec("del", -2, &["write"], 1, -1, 1, "generic", "Deletes keys."),
    Spec("exists", -2, &["readonly", "fast"], 1, -1, 1, "generic", "Counts the keys that exist."),
    Spec("expire", -3, &["write", "fast"], 1, 1, 1, "generic", "Sets a key's time to live in seconds."),
    Spec("pexpire", -3, &["write", "fast"], 1, 1, 1, "generic", "Sets a key's time to live in milliseconds."),
    Spec("ttl", 2, &["readonly", "fast"], 1, 1, 1, "generic", "Returns a key's time to live in seconds."),
    Spec("pttl", 2, &["readonly", "fast"], 1, 1, 1, "generic", "Returns a key's time to live in milliseconds."),
    Spec("persist", 2, &["write", "fast"], 1, 1, 1, "generic", "Removes a key's expiry."),
    Spec("scan", -2, &["readonly"], 0, 0, 0, "generic", "Iterates over the keys."),
    Spec("hset", -4, &["write", "denyoom", "fast"], 1, 1, 1, "hash", "Sets hash fields."),
    Spec("hget", 3, &["readonly", "fast"], 1, 1, 1, "hash", "Returns a hash field's value."),
    Spec("hmget", -3, &["readonly", "fast"], 1, 1, 1, "hash", "Returns several hash fields' values."),
    Spec("hgetall", 2, &["readonly"], 1, 1, 1, "hash", "Returns every field and value of a hash."),
    Spec("hdel", -3, &["write", "fast"], 1, 1, 1, "hash", "Deletes hash fields."),
    Spec("hexists", 3, &["readonly", "fast"], 1, 1, 1, "hash", "Tells whether a hash field exists."),
    Spec("hlen", 2, &["readonly", "fast"], 1, 1, 1, "hash", "Counts a hash's fields."),
    Spec("hkeys", 2, &["readonly"], 1, 1, 1, "hash", "Returns a hash's fields."),
    Spec("hvals", 2, &["readonly"], 1, 1, 1, "hash", "Returns a hash's values."),
    Spec("ping", -1, &["fast"], 0, 0, 0, "connection", "Returns PONG, or the argument."),
    Spec("echo", 2, &["fast"], 0, 0, 0, "connection", "Returns the argument."),
    Spec("select", 2, &["loading", "stale", "fast"], 0, 0, 0, "connection", "Selects database 0."),
    Spec("hello", -1, &["noscript", "loading", "stale", "fast"], 0, 0, 0, "connection", "Picks RESP2 or RESP3."),
    Spec("auth", -2, &["noscript", "loading", "stale", "fast"], 0, 0, 0, "connection", "Authenticates."),
    Spec("client", -2, &[], 0, 0, 0, "connection", "SETNAME, GETNAME, ID, INFO, SETINFO."),
    Spec("quit", -1, &["fast"], 0, 0, 0, "connection", "Closes the connection."),
    Spec("info", -1, &["loading", "stale"], 0, 0, 0, "server", "Returns information about the server."),
    Spec("command", -1, &["loading", "stale"], 0, 0, 0, "server", "Describes the commands."),
    Spec("config", -2, &[], 0, 0, 0, "server", "CONFIG GET: no parameters are exposed."),
];

fn describe(s: &Spec) -> Reply {
    let flags = s.2.iter().map(|f| Reply::Simple(f)).collect();
    Reply::Array(vec![
        Reply::text(s.0),
        Reply::Integer(s.1),
        Reply::Set(flags),
        Reply::Integer(s.3),
        Reply::Integer(s.4),
        Reply::Integer(s.5),
        Reply::Set(vec![Reply::Simple(category(s.6))]),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

fn category(group: &str) -> &'static str {
    match group {
        "string" => "@string",
        "hash" => "@hash",
        "generic" => "@keyspace",
        "connection" => "@connection",
        _ => "@admin",
    }
}

fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.0 == name)
}

/// `COMMAND`.
pub fn command_all() -> Reply {
    Reply::Array(COMMANDS.iter().map(describe).collect())
}

/// `COMMAND COUNT`.
pub fn command_count() -> Reply {
    Reply::Integer(i64::try_from(COMMANDS.len()).unwrap_or(i64::MAX))
}

/// `COMMAND LIST`.
pub fn command_list() -> Reply {
    Reply::Array(COMMANDS.iter().map(|s| Reply::text(s.0)).collect())
}

/// `COMMAND INFO name...`: each named command's description, nil for one not served.
pub fn command_info(names: &[String]) -> Reply {
    if names.is_empty() {
        return command_all();
    }
    Reply::Array(names.iter().map(|n| find(n).map_or(Reply::Nil, describe)).collect())
}

/// `COMMAND DOCS name...`: a summary and group per command (every command when none is named).
pub fn command_docs(names: &[String]) -> Reply {
    let specs: Vec<&Spec> =
        if names.is_empty() { COMMANDS.iter().collect() } else { names.iter().filter_map(|n| find(n)).collect() };
    Reply::Map(
        specs
            .into_iter()
            .map(|s| {
                let doc = Reply::Map(vec![
                    (Reply::text("summary"), Reply::text(s.7)),
                    (Reply::text("since"), Reply::text("1.0.0")),
                    (Reply::text("group"), Reply::text(s.6)),
                ]);
                (Reply::text(s.0), doc)
            })
            .collect(),
    )
}

/// `HELLO`'s map.
pub fn hello(client_id: u64, protocol: i64) -> Reply {
    Reply::Map(vec![
        (Reply::text("server"), Reply::text("redis")),
        (Reply::text("version"), Reply::text(REDIS_COMPAT_VERSION)),
        (Reply::text("proto"), Reply::Integer(protocol)),
        (Reply::text("id"), Reply::Integer(i64::try_from(client_id).unwrap_or(i64::MAX))),
        (Reply::text("mode"), Reply::text("standalone")),
        (Reply::text("role"), Reply::text("master")),
        (Reply::text("modules"), Reply::Array(Vec::new())),
    ])
}

/// What `INFO` reports.
pub struct InfoFacts {
    /// The door's TCP port.
    pub port: u16,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// Open RESP connections on the shard answering.
    pub clients: usize,
    /// Shards and partitions.
    pub shards: usize,
    /// Logical partitions.
    pub partitions: u32,
    /// The default table.
    pub table: String,
}

/// `INFO [section...]`: the Server, Clients and Nacre sections (all of them for `all`,
/// `everything`, `default` or none named).
pub fn info(sections: &[String], facts: &InfoFacts) -> Reply {
    let all = sections.is_empty() || sections.iter().any(|s| matches!(s.as_str(), "all" | "everything" | "default"));
    let wants = |name: &str| all || sections.iter().any(|s| s == name);
    let mut text = String::new();
    if wants("server") {
        text.push_str(&format!(
            "# Server\r\nredis_version:{REDIS_COMPAT_VERSION}\r\nnacre_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            facts.port,
            facts.uptime_s,
        ));
    }
    if wants("clients") {
        text.push_str(&format!("# Clients\r\nconnected_clients:{}\r\n\r\n", facts.clients));
    }
    if wants("nacre") {
        text.push_str(&format!(
            "# Nacre\r\nshards:{}\r\npartitions:{}\r\ndefault_table:{}\r\n\r\n",
            facts.shards, facts.partitions, facts.table
        ));
    }
    Reply::Bulk(text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_command_is_described_once() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|s| s.0).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a command is listed twice");
        for name in ["get", "set", "hset", "scan", "command", "hello"] {
            assert!(find(name).is_some(), "{name} is described");
        }
        assert_eq!(command_info(&["nope".into()]), Reply::Array(vec![Reply::Nil]));
    }
}
