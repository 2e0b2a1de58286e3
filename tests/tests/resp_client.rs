//! A Redis client library nobody here wrote (the `redis` crate) drives the RESP door through a
//! small application's scenario: a connection manager and pipelines, strings, hashes, expiry,
//! a full SCAN, counters incremented from many threads at once (the final count and every
//! value handed out must be exact: INCR is atomic), errors, and the same over RESP3.
//!
//! The scenario also runs against a real redis-server, which proves it is Redis's behaviour.

use nacre_tests::redis::RedisServer;
use nacre_tests::server::{Server, ServerOptions};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;

/// Threads incrementing one counter at once, and INCRs each sends (half one by one, half in a
/// pipeline).
const INCR_THREADS: usize = 8;
const INCRS_PER_THREAD: usize = 500;

async fn manager(url: &str) -> ConnectionManager {
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    client.get_connection_manager().await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// Strings, MSET/MGET, a pipeline, hashes, expiry, SCAN and errors through the manager; `tag`
/// keeps the RESP2 and RESP3 runs' keys apart.
async fn scenario(con: &mut ConnectionManager, tag: &str) -> redis::RedisResult<()> {
    let key = |name: &str| format!("client:{tag}:{name}");

    let () = con.set(key("s"), "hello").await?;
    assert_eq!(con.get::<_, Option<String>>(key("s")).await?, Some("hello".to_owned()));
    assert_eq!(con.get::<_, Option<String>>(key("missing")).await?, None);
    let binary: Vec<u8> = (0..=255).collect();
    let () = con.set(key("bin"), &binary).await?;
    assert_eq!(con.get::<_, Vec<u8>>(key("bin")).await?, binary);

    let () = con.mset(&[(key("m1"), "one"), (key("m2"), "two")]).await?;
    let got: Vec<Option<String>> = con.mget(&[key("m1"), key("missing"), key("m2")]).await?;
    assert_eq!(got, [Some("one".to_owned()), None, Some("two".to_owned())]);

    let mut pipe = redis::pipe();
    for i in 0..100 {
        pipe.cmd("SET").arg(key(&format!("p{i}"))).arg(i).ignore();
    }
    for i in 0..100 {
        pipe.cmd("GET").arg(key(&format!("p{i}")));
    }
    let values: Vec<i64> = pipe.query_async(con).await?;
    assert_eq!(values, (0..100).collect::<Vec<i64>>(), "a 200-command pipeline");
    let deleted: i64 = redis::cmd("DEL").arg(key("p0")).arg(key("p1")).arg(key("missing")).query_async(con).await?;
    assert_eq!(deleted, 2);
    assert_eq!(con.exists::<_, i64>(&[key("p0"), key("p2")]).await?, 1);

    let added: i64 =
        redis::cmd("HSET").arg(key("h")).arg(&[("a", "1"), ("b", "2"), ("c", "3")]).query_async(con).await?;
    assert_eq!(added, 3);
    assert_eq!(con.hset::<_, _, _, i64>(key("h"), "a", "uno").await?, 0);
    let all: HashMap<String, String> = con.hgetall(key("h")).await?;
    let expected: HashMap<String, String> =
        [("a", "uno"), ("b", "2"), ("c", "3")].into_iter().map(|(f, v)| (f.to_owned(), v.to_owned())).collect();
    assert_eq!(all, expected);
    assert_eq!(con.hget::<_, _, Option<String>>(key("h"), "zz").await?, None);
    assert_eq!(con.hdel::<_, _, i64>(key("h"), &["a", "zz"]).await?, 1);
    assert_eq!(con.hlen::<_, i64>(key("h")).await?, 2);
    assert!(con.hgetall::<_, HashMap<String, String>>(key("missing")).await?.is_empty());

    assert!(con.expire::<_, bool>(key("h"), 100_000).await?);
    let ttl: i64 = con.ttl(key("h")).await?;
    assert!((99_990..=100_000).contains(&ttl), "TTL {ttl}");
    assert_eq!(con.ttl::<_, i64>(key("s")).await?, -1);
    assert_eq!(con.ttl::<_, i64>(key("missing")).await?, -2);
    assert!(con.persist::<_, bool>(key("h")).await?);
    let () = con.set_ex(key("ex"), "v", 100_000).await?;
    let pttl: i64 = con.pttl(key("ex")).await?;
    assert!((99_990_000..=100_000_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!(con.get_del::<_, Option<String>>(key("ex")).await?, Some("v".to_owned()));

    // Expiry that passes: a string and a whole hash (fields written before and after the
    // PEXPIRE) are gone once their time is up. Only waits longer than the expiry, so a slow
    // machine cannot make it fail.
    let () = redis::cmd("SET").arg(key("short")).arg("v").arg("PX").arg(100).query_async(con).await?;
    let () = con.hset(key("shorthash"), "a", "1").await?;
    assert!(con.pexpire::<_, bool>(key("shorthash"), 100).await?);
    let () = con.hset(key("shorthash"), "b", "2").await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(con.get::<_, Option<String>>(key("short")).await?, None, "an expired string");
    assert!(con.hgetall::<_, HashMap<String, String>>(key("shorthash")).await?.is_empty(), "an expired hash");
    assert_eq!(con.exists::<_, i64>(&[key("short"), key("shorthash")]).await?, 0);
    assert_eq!(con.ttl::<_, i64>(key("shorthash")).await?, -2);

    let large: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    let () = con.set(key("large"), &large).await?;
    assert_eq!(con.get::<_, Vec<u8>>(key("large")).await?, large, "a 512 KiB value");

    let mut expected = BTreeSet::new();
    for i in 0..30 {
        let () = con.set(key(&format!("scan:{i}")), i).await?;
        expected.insert(key(&format!("scan:{i}")));
    }
    let () = con.hset(key("scan:hash"), "f", "v").await?;
    expected.insert(key("scan:hash"));
    let mut found = BTreeSet::new();
    {
        let mut iter = con.scan_match::<_, String>(key("scan:*")).await?;
        while let Some(k) = iter.next_item().await {
            let k = k?;
            assert!(found.insert(k.clone()), "SCAN returned {k} twice");
        }
    }
    assert_eq!(found, expected, "a full SCAN MATCH");

    let err = redis::cmd("NOSUCHCOMMAND").arg("x").query_async::<()>(con).await.expect_err("an unknown command");
    assert!(err.to_string().contains("unknown command"), "{err}");
    let err = redis::cmd("INCR").arg(key("s")).query_async::<i64>(con).await.expect_err("INCR of a string");
    assert!(err.to_string().contains("not an integer"), "{err}");
    assert_eq!(con.get::<_, String>(key("s")).await?, "hello", "the connection lives on after errors");
    Ok(())
}

/// RESP3-only shapes the crate decodes: HGETALL as a map, nulls, a pipeline.
async fn resp3_shapes(con: &mut ConnectionManager) -> redis::RedisResult<()> {
    let () = con.hset("client:r3:h", "f", "v").await?;
    let raw: redis::Value = redis::cmd("HGETALL").arg("client:r3:h").query_async(con).await?;
    assert!(matches!(&raw, redis::Value::Map(entries) if entries.len() == 1), "HGETALL over RESP3: {raw:?}");
    let raw: redis::Value = redis::cmd("GET").arg("client:r3:missing").query_async(con).await?;
    assert_eq!(raw, redis::Value::Nil);
    let (a, b): (Option<String>, i64) =
        redis::pipe().cmd("GET").arg("client:r3:missing").cmd("HLEN").arg("client:r3:h").query_async(con).await?;
    assert_eq!((a, b), (None, 1));
    Ok(())
}

/// `INCR_THREADS` threads, each on its own connection, increment one counter; every value
/// INCR hands out is distinct and the final count is exact.
fn concurrent_incr(url: &str) {
    let client = redis::Client::open(url).expect("a client");
    let threads: Vec<_> = (0..INCR_THREADS)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                let mut con = client.get_connection().expect("a connection");
                let mut seen: Vec<i64> = (0..INCRS_PER_THREAD / 2)
                    .map(|_| redis::cmd("INCR").arg("client:counter").query(&mut con).expect("INCR"))
                    .collect();
                let mut pipe = redis::pipe();
                for _ in 0..INCRS_PER_THREAD - INCRS_PER_THREAD / 2 {
                    pipe.cmd("INCR").arg("client:counter");
                }
                seen.extend(pipe.query::<Vec<i64>>(&mut con).expect("pipelined INCRs"));
                assert!(seen.windows(2).all(|w| w[0] < w[1]), "one connection's INCRs increase: {seen:?}");
                seen
            })
        })
        .collect();
    let mut all: Vec<i64> = threads.into_iter().flat_map(|t| t.join().expect("an INCR thread")).collect();
    all.sort_unstable();
    let total = i64::try_from(INCR_THREADS * INCRS_PER_THREAD).expect("small");
    assert_eq!(all, (1..=total).collect::<Vec<i64>>(), "every INCR got a distinct value");
    let mut con = client.get_connection().expect("a connection");
    let final_count: i64 = redis::cmd("GET").arg("client:counter").query(&mut con).expect("GET");
    assert_eq!(final_count, total, "the final count");
}

fn drive(addr: SocketAddr) {
    let url = format!("redis://{addr}/");
    let runtime = nacre_tests::runtime();
    runtime.block_on(async {
        let mut con = manager(&url).await;
        scenario(&mut con, "resp2").await.unwrap_or_else(|e| panic!("the RESP2 scenario on {addr}: {e}"));
        let mut con3 = manager(&format!("{url}?protocol=resp3")).await;
        scenario(&mut con3, "resp3").await.unwrap_or_else(|e| panic!("the RESP3 scenario on {addr}: {e}"));
        resp3_shapes(&mut con3).await.unwrap_or_else(|e| panic!("RESP3 shapes on {addr}: {e}"));
    });
    concurrent_incr(&url);
}

#[test]
fn redis_crate_drives_nacred() {
    let server = Server::start_with(ServerOptions { resp: true, ..ServerOptions::default() });
    drive(server.resp_addr());
}

#[test]
fn redis_crate_drives_redis_server() {
    let redis = RedisServer::start();
    drive(redis.addr());
}
