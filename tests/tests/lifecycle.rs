//! The daemon's life cycle around its data directory: a second `nacred` on a directory in use
//! refuses to start, clearly, and harms nothing; a SIGTERM that arrives while the daemon is
//! still starting (recovering) stops it promptly and loses nothing; a restart binds its ports
//! while connections of the ports' previous owner linger in TIME_WAIT.

use nacre_tests::server::{Server, free_ports};
use nacre_wire::{Get, Key, MultiGet, Put, TableSettings};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a refused or signalled daemon may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(40);

#[test]
fn a_second_nacred_on_the_same_data_directory_refuses_to_start() {
    let server = Server::start();
    let runtime = nacre_tests::runtime();
    let written = runtime.block_on(async {
        let client = server.client().await;
        client.create_table("t", TableSettings::default()).await.expect("create_table");
        client.put(Put::new("t", Key::new("k", ""), "before")).await.expect("put")
    });

    // The same command line (ports included), then other ports, then another shard count.
    let same = server.args();
    let mut other_ports = same.clone();
    let listen = other_ports.iter().position(|a| a == "--listen").expect("--listen") + 1;
    other_ports[listen] = free_ports(server.cores()).to_string();
    let mut other_cores = other_ports.clone();
    let cores = other_cores.iter().position(|a| a == "--cores").expect("--cores") + 1;
    other_cores[cores] = "1".to_owned();
    for args in [same, other_ports, other_cores] {
        let mut second = Command::new(server.binary())
            .args(&args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning a second nacred");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let status = loop {
            if let Some(status) = second.try_wait().expect("polling") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = second.kill();
                let _ = second.wait();
                panic!("a second nacred with {args:?} was still running after {EXIT_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let output = second.wait_with_output().expect("its output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(status.code(), Some(1), "a second nacred with {args:?} exits 1: {status}\n{stderr}");
        let dir = server.data_dir().display().to_string();
        assert!(
            stderr.contains(&format!("data directory {dir} is in use by another nacred process")),
            "the refusal names the directory and why:\n{stderr}"
        );
    }

    // The first one was not disturbed.
    runtime.block_on(async {
        let client = server.client().await;
        let row = client.get(Get::new("t", Key::new("k", ""))).await.expect("get").expect("present");
        assert_eq!((row.value.as_slice(), row.version), (&b"before"[..], written));
        client.put(Put::new("t", Key::new("k2", ""), "after")).await.expect("put after");
    });
}

#[test]
fn sigterm_while_starting_stops_promptly_and_loses_nothing() {
    let seed = nacre_tests::seed::seed("sigterm_while_starting_stops_promptly_and_loses_nothing");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut server = Server::start();
    let runtime = nacre_tests::runtime();
    runtime.block_on(async {
        server.client().await.create_table("t", TableSettings::default()).await.expect("create_table");
    });
    let mut written = Vec::new();
    for attempt in 0..6 {
        // Writes left unflushed by a SIGKILL, so the start below has a WAL to recover.
        runtime.block_on(async {
            let client = server.client().await;
            for i in 0..50 {
                let key = Key::new(format!("k{attempt}-{i}"), "");
                let version = client.put(Put::new("t", key.clone(), key.partition_key.clone())).await.expect("put");
                written.push((key, version));
            }
        });
        server.sigkill();
        server.spawn();
        std::thread::sleep(Duration::from_millis(rng.u64(..400)));
        let status = server.sigterm_and_wait(EXIT_TIMEOUT);
        // Before its handler is installed the signal's default action ends the process; after,
        // the daemon stops cleanly. Either is prompt; nothing else is right.
        let killed = status.signal() == Some(nix::sys::signal::Signal::SIGTERM as i32);
        assert!(
            status.success() || killed,
            "attempt {attempt}: SIGTERM while starting gave {status}\n{}",
            server.log_tail()
        );
        eprintln!("attempt {attempt}: {}", if killed { "ended by the signal" } else { "stopped cleanly" });
        server.restart();
    }
    runtime.block_on(async {
        let client = server.client().await;
        let keys: Vec<Key> = written.iter().map(|(k, _)| k.clone()).collect();
        let rows = client.multi_get(MultiGet::new("t", keys)).await.expect("multi_get");
        for ((key, version), row) in written.iter().zip(rows) {
            let row = row.unwrap_or_else(|| panic!("{key:?} lost"));
            assert_eq!((&row.value, &row.version), (&key.partition_key, version));
        }
    });
}

/// README's first command runs nacred with a relative `--data-dir`; glommio 0.9 fails on
/// relative paths (EBADF), so the daemon must resolve it.
#[test]
fn a_relative_data_directory_serves_and_stops_cleanly() {
    let base = std::env::var_os("NACRE_TEST_DIR").map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    std::fs::create_dir_all(&base).expect("test dir");
    let cwd = tempfile::Builder::new().prefix("nacred-relative-").tempdir_in(&base).expect("tempdir");
    let listen = free_ports(2);
    let mut child = Command::new(nacre_tests::server::nacred_binary())
        .args(["--data-dir", "nacre-data", "--listen", &listen.to_string(), "--cores", "2"])
        .current_dir(cwd.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning nacred");
    let runtime = nacre_tests::runtime();
    let served = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match nacre_wire::Client::connect(listen, nacre_tests::server::client_options()).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("nacred never answered on {listen}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        client.create_table("t", TableSettings::default()).await.expect("create_table");
        client.put(Put::new("t", Key::new("k", ""), "v")).await.expect("put");
        client.get(Get::new("t", Key::new("k", ""))).await.expect("get").map(|row| row.value)
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    let status = child.wait().expect("waiting for nacred");
    let mut log = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut log);
    }
    assert_eq!(served, Some(b"v".to_vec()), "{log}");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(cwd.path().join("nacre-data").join("cluster.toml").exists(), "the data directory is where it was asked");
}

/// Leaves a connection in TIME_WAIT on `addr`'s port, on the listening side, the way a
/// previous owner of the port (a killed broker, an earlier server) does: a plain listener
/// (SO_REUSEADDR, no SO_REUSEPORT) accepts a connection and closes it first.
fn leave_time_wait_on(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("binding {addr}: {e}"));
    let client = TcpStream::connect(addr).expect("connecting");
    let (accepted, _) = listener.accept().expect("accepting");
    drop(accepted);
    // The client sees the close, then closes: the accepted side ends in TIME_WAIT.
    let mut byte = [0u8; 1];
    let read = (&client).read(&mut byte).expect("reading the close");
    assert_eq!(read, 0, "the accepted side closed");
    drop(client);
    drop(listener);
}

#[test]
fn a_restart_binds_its_ports_while_their_previous_connections_linger_in_time_wait() {
    let mut server = Server::start_with(nacre_tests::server::ServerOptions { resp: true, ..Default::default() });
    assert!(server.sigterm_and_wait(EXIT_TIMEOUT).success(), "{}", server.log_tail());
    let mut ports = server.ports();
    ports.push(server.resp_addr());
    for addr in &ports {
        leave_time_wait_on(*addr);
    }
    // Every port still has a TIME_WAIT connection; the daemon binds them all regardless.
    server.restart();
    let runtime = nacre_tests::runtime();
    runtime.block_on(async {
        let client = server.client().await;
        client.create_table("t", TableSettings::default()).await.expect("create_table after the restart");
    });
}
