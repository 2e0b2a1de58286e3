//! The `nacred` harness: starts the real binary on free loopback ports and a fresh data
//! directory, waits until every port answers a handshake, signals it (SIGTERM, SIGKILL),
//! restarts it on the same directory and ports, and hands out clients.
//!
//! - **The binary.** [`nacred_binary`] finds it next to the test executable; the harness builds
//!   nothing.
//! - **Ports.** The shared port and one port per shard, consecutive, from a random base below the
//!   kernel's ephemeral range (so no client socket of this or another test takes them between
//!   runs), each checked free by binding it.
//! - **Data.** A fresh directory under `$NACRE_TEST_DIR` (default: the system temp dir; it must
//!   support O_DIRECT, so not tmpfs). Removed when the test passes, kept and named when it
//!   fails. nacred's stderr (its log) is appended to `nacred-stderr.log` inside it, one block per
//!   start, and its tail is printed when a start or a test fails.
//! - **One at a time.** A server holds a process-wide lock for its life, so the tests of one file
//!   run their daemons one after another: on a 2-core machine, two daemons pinned to the same
//!   cores only slow each other down.
//!
//! Every wait is bounded; a daemon that does not come up or go down in time fails the test with
//! its log, and a `Server` dropped with the daemon still running SIGKILLs it.

use nacre_wire::{Client, ClientOptions, Reply};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::raw::RawConnection;

/// Longest a start waits for every port to answer a handshake.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The request timeout of [`Server::client`]: far above any honest reply time, so only a hung
/// request fails on it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Shards the harness starts by default: the CI machine has 2 cores, and 2 is the smallest count
/// where forwarding between shards happens.
pub const DEFAULT_CORES: usize = 2;

/// Ports are drawn from here: above the well-known and registered services people run locally
/// (7070 included), below Linux's default ephemeral range (32768 up).
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

static SERIAL: Mutex<()> = Mutex::new(());

/// The `nacred` to test: `$NACRED` if set, else `nacred` in the directory above the test
/// executable's (`target/<profile>/deps/<test>-<hash>` → `target/<profile>/nacred`), which is
/// where cargo puts it under any `CARGO_TARGET_DIR`.
///
/// Cargo builds a package's binaries for a test run only when that package has integration
/// tests; `nacre-daemon` has (`daemon/tests/`), so `cargo test --workspace` builds `nacred`
/// before it runs any test. A lone `cargo test -p nacre-tests` does not build it: run
/// `cargo build -p nacre-daemon --bin nacred` first. Either way, a binary older than the
/// daemon's, wire's or storage's sources fails the test rather than testing old code.
///
/// # Panics
///
/// If the binary is missing, or older than a source file it is built from.
pub fn nacred_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NACRED") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("test executables live in target/<profile>/deps");
    let binary = profile_dir.join("nacred");
    let built = match std::fs::metadata(&binary).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) => panic!(
            "{} is missing ({e}): run `cargo build -p nacre-daemon --bin nacred` (cargo test --workspace builds it)",
            binary.display()
        ),
    };
    if let Some((source, _)) = newest_source(NACRED_CRATES).filter(|(_, modified)| *modified > built) {
        panic!(
            "{} is older than {}: run `cargo build -p nacre-daemon --bin nacred` (or set NACRED=path)",
            binary.display(),
            source.display()
        );
    }
    binary
}

/// A fresh directory named `prefix...` under `$NACRE_TEST_DIR` (default: the system temp dir),
/// removed when dropped. Every test's files go there: the daemons' data directories need
/// O_DIRECT, and a bulk link hard-links load files into them, which needs one filesystem.
///
/// # Panics
///
/// If the directory cannot be created.
pub fn test_dir(prefix: &str) -> tempfile::TempDir {
    let base = std::env::var_os("NACRE_TEST_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&base).unwrap_or_else(|e| panic!("creating {}: {e}", base.display()));
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("creating a directory in {}: {e}", base.display()))
}

/// The `nacre` CLI built with the `nacred` under test: `$NACRE` if set, else `nacre` next to
/// [`nacred_binary`].
///
/// # Panics
///
/// If it is missing, or older than a source file it is built from.
pub fn nacre_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NACRE") {
        return PathBuf::from(path);
    }
    let nacre = nacred_binary().with_file_name("nacre");
    let built = match std::fs::metadata(&nacre).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) => panic!("{} is missing ({e}): run `cargo build -p nacre-cli --bin nacre`", nacre.display()),
    };
    if let Some((source, _)) = newest_source(NACRE_CRATES).filter(|(_, modified)| *modified > built) {
        panic!("{} is older than {}: run `cargo build -p nacre-cli --bin nacre`", nacre.display(), source.display());
    }
    nacre
}

/// The workspace crates `nacred` is built from.
const NACRED_CRATES: &[&str] = &["daemon", "wire", "storage"];
/// The workspace crates `nacre` is built from.
const NACRE_CRATES: &[&str] = &["cli", "wire", "storage"];

/// The most recently modified source file of `crates`, with its time.
fn newest_source(crates: &[&str]) -> Option<(PathBuf, SystemTime)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let mut newest = None;
    for krate in crates {
        newest_in(&root.join(krate).join("src"), &mut newest);
    }
    newest
}

fn newest_in(dir: &Path, newest: &mut Option<(PathBuf, SystemTime)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            newest_in(&path, newest);
        } else if let Ok(modified) = meta.modified()
            && newest.as_ref().is_none_or(|(_, t)| modified > *t)
        {
            *newest = Some((path, modified));
        }
    }
}

/// How to start a daemon.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `--cores`. Default [`DEFAULT_CORES`].
    pub cores: usize,
    /// A configuration file's text (`--config`), for limits a test wants to change; `None`
    /// runs on the defaults.
    pub config: Option<String>,
    /// Open the RESP (Redis protocol) door on a free loopback port (`--resp-listen`); a start
    /// then also waits until it answers PING. See [`Server::resp_addr`].
    pub resp: bool,
    /// Extra environment variables for the daemon (a failpoint, say).
    pub env: Vec<(String, String)>,
    /// Open the HTTP endpoint (/metrics, /health, /ready) on a free loopback port
    /// (`--http-listen`). See [`Server::http_addr`].
    pub http: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { cores: DEFAULT_CORES, config: None, resp: false, env: Vec::new(), http: false }
    }
}

/// A running (or stopped, between restarts) `nacred`.
pub struct Server {
    binary: PathBuf,
    /// Holds the data directory; `None` once it was kept or removed.
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    listen: SocketAddr,
    /// The RESP door's address, when [`ServerOptions::resp`] asked for one.
    resp_listen: Option<SocketAddr>,
    /// The HTTP endpoint's address, when [`ServerOptions::http`] asked for one.
    http_listen: Option<SocketAddr>,
    options: ServerOptions,
    /// Shard ports reserved after the shared one, at the first start.
    reserved_cores: usize,
    child: Option<Child>,
    starts: usize,
    _serial: MutexGuard<'static, ()>,
}

impl Server {
    /// Starts a daemon with the default options; see [`Server::start_with`].
    pub fn start() -> Server {
        Server::start_with(ServerOptions::default())
    }

    /// Starts a daemon on a fresh data directory and free ports, and waits until every port
    /// answers a handshake.
    ///
    /// # Panics
    ///
    /// If it does not come up within [`START_TIMEOUT`] (the panic carries its log).
    pub fn start_with(options: ServerOptions) -> Server {
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let binary = nacred_binary();
        let dir = test_dir("nacred-e2e-");
        let data_dir = dir.path().join("data");
        let listen = free_ports(options.cores);
        let resp_listen = options.resp.then(|| free_port_outside(listen, options.cores));
        let http_listen = options.http.then(|| free_port_outside(listen, options.cores));
        let reserved_cores = options.cores;
        let mut server = Server {
            binary,
            dir: Some(dir),
            data_dir,
            listen,
            resp_listen,
            http_listen,
            options,
            reserved_cores,
            child: None,
            starts: 0,
            _serial: serial,
        };
        server.restart();
        server
    }

    /// Starts the daemon again on the same data directory and ports, and waits until every port
    /// answers a handshake.
    ///
    /// # Panics
    ///
    /// If the daemon is still running, or does not come up within [`START_TIMEOUT`].
    pub fn restart(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    /// Starts the daemon again without waiting for it to be ready, so a test can kill it in the
    /// middle of recovery.
    ///
    /// # Panics
    ///
    /// If the daemon is still running, or cannot be spawned.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "nacred is still running; stop it before starting it again");
        self.starts += 1;
        let log = self.log_path();
        std::fs::create_dir_all(&self.data_dir).unwrap_or_else(|e| panic!("creating {}: {e}", self.data_dir.display()));
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        writeln!(file, "===== nacre-tests: start {} =====", self.starts).expect("writing the log marker");
        let mut command = Command::new(&self.binary);
        command.args(self.args()).env("NO_COLOR", "1").stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        command.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("spawning {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// The command line a start uses; writes the configuration file, if any, next to the data
    /// directory.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_owned(),
            self.data_dir.display().to_string(),
            "--listen".to_owned(),
            self.listen.to_string(),
            "--cores".to_owned(),
            self.options.cores.to_string(),
        ];
        if let Some(resp) = self.resp_listen {
            args.push("--resp-listen".to_owned());
            args.push(resp.to_string());
        }
        if let Some(http) = self.http_listen {
            args.push("--http-listen".to_owned());
            args.push(http.to_string());
        }
        if let Some(text) = &self.options.config {
            let path = self.dir_path().join("nacred.toml");
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            args.push("--config".to_owned());
            args.push(path.display().to_string());
        }
        args
    }

    /// Waits until the shared port and every shard port answer a handshake.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut pending: Vec<SocketAddr> = self.ports();
        while !pending.is_empty() {
            if let Some(status) = self.child_mut().try_wait().expect("polling nacred") {
                self.child = None;
                panic!("nacred exited during start with {status}\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "nacred did not answer on {pending:?} within {START_TIMEOUT:?}\n{}",
                self.log_tail()
            );
            pending.retain(|addr| !answers_handshake(*addr));
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(resp) = self.resp_listen {
            let left = deadline.saturating_duration_since(Instant::now());
            let waited = crate::redis::wait_for_pong(resp, left, || {
                let status = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                status.map(|s| format!("nacred exited during start with {s}"))
            });
            if let Err(e) = waited {
                panic!("nacred's RESP door on {resp}: {e}\n{}", self.log_tail());
            }
        }
    }

    /// Sends SIGTERM and waits for the daemon to exit, at most `timeout`.
    ///
    /// # Panics
    ///
    /// If it is not running, or still runs after `timeout` (it is then SIGKILLed).
    pub fn sigterm_and_wait(&mut self, timeout: Duration) -> ExitStatus {
        self.signal_and_wait(Signal::SIGTERM, timeout)
    }

    /// Sends `signal` and waits for the daemon to exit, at most `timeout`.
    ///
    /// # Panics
    ///
    /// If it is not running, or still runs after `timeout` (it is then SIGKILLed).
    pub fn signal_and_wait(&mut self, signal: Signal, timeout: Duration) -> ExitStatus {
        let pid = self.pid();
        kill(pid, signal).unwrap_or_else(|e| panic!("sending {signal}: {e}"));
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("polling nacred") {
                self.child = None;
                return status;
            }
            if Instant::now() >= deadline {
                self.sigkill();
                panic!("nacred did not exit within {timeout:?} of {signal}\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILLs the daemon and reaps it.
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn sigkill(&mut self) {
        let mut child = self.child.take().expect("nacred is not running");
        // Fails only if it already exited, which `wait` then reports.
        let _ = child.kill();
        child.wait().expect("reaping nacred");
    }

    /// True while the daemon process is alive.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("polling nacred").is_none(),
            None => false,
        }
    }

    /// The daemon's process id.
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("nacred is not running");
        Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"))
    }

    /// The shared port's address.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// Shard `shard`'s own address.
    pub fn shard_addr(&self, shard: usize) -> SocketAddr {
        assert!(shard < self.options.cores, "shard {shard} of {}", self.options.cores);
        let port = self.listen.port() + 1 + u16::try_from(shard).expect("few shards");
        SocketAddr::new(self.listen.ip(), port)
    }

    /// The RESP door's address.
    ///
    /// # Panics
    ///
    /// If the server was started without [`ServerOptions::resp`].
    pub fn resp_addr(&self) -> SocketAddr {
        self.resp_listen.expect("started without ServerOptions::resp")
    }

    /// The shared address then every shard's.
    pub fn ports(&self) -> Vec<SocketAddr> {
        std::iter::once(self.addr()).chain((0..self.options.cores).map(|s| self.shard_addr(s))).collect()
    }

    /// The HTTP endpoint's address.
    ///
    /// # Panics
    ///
    /// If the server was started without [`ServerOptions::http`].
    pub fn http_addr(&self) -> SocketAddr {
        self.http_listen.expect("started without ServerOptions::http")
    }

    /// Shards.
    pub fn cores(&self) -> usize {
        self.options.cores
    }

    /// Runs the next start with `cores` shards, on the same ports (a subset of the block chosen
    /// at the first start).
    ///
    /// # Panics
    ///
    /// If `cores` is 0 or more than the first start's.
    pub fn set_cores(&mut self, cores: usize) {
        assert!(
            (1..=self.reserved_cores).contains(&cores),
            "{cores} shards; ports are reserved for {}",
            self.reserved_cores
        );
        self.options.cores = cores;
    }

    /// Runs the next start with `config` as its configuration file's text (`None`: the
    /// defaults), on the same data directory: how a test configures something that needs the
    /// daemon's help first, such as a Kafka source feeding a table the test creates.
    pub fn set_config(&mut self, config: Option<String>) {
        self.options.config = config;
    }

    /// Sets the extra environment of later starts (a failpoint, say, or none).
    pub fn set_env(&mut self, env: Vec<(String, String)>) {
        self.options.env = env;
    }

    /// Waits for the daemon to exit on its own (a failpoint killing it), at most `timeout`;
    /// returns its status.
    ///
    /// # Panics
    ///
    /// If it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("polling nacred") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "nacred still runs after {timeout:?}\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The binary under test.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// A shard-aware client connected to the shared port.
    pub async fn client(&self) -> Client {
        self.client_with(client_options()).await
    }

    /// A client with `options`, connected to the shared port.
    pub async fn client_with(&self, options: ClientOptions) -> Client {
        match Client::connect(self.addr(), options).await {
            Ok(client) => client,
            Err(e) => panic!("connecting to nacred at {}: {e}\n{}", self.addr(), self.log_tail()),
        }
    }

    /// The last lines of the daemon's log, headed by where the whole log is.
    pub fn log_tail(&self) -> String {
        let path = self.log_path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- last lines of {} ---\n{tail}\n---", path.display())
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.join("nacred-stderr.log")
    }

    fn dir_path(&self) -> &Path {
        self.data_dir.parent().expect("the data directory sits in the test's directory")
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("nacred is not running")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.sigkill();
        }
        let Some(dir) = self.dir.take() else { return };
        if std::thread::panicking() {
            let kept = dir.keep();
            eprintln!("nacre-tests: keeping {} for inspection\n{}", kept.display(), self.log_tail());
        }
    }
}

/// The client options tests use: the defaults with a long timeout and a name.
pub fn client_options() -> ClientOptions {
    ClientOptions {
        client_name: "nacre-tests".to_owned(),
        timeout: CLIENT_TIMEOUT,
        connect_timeout: CLIENT_TIMEOUT,
        ..ClientOptions::default()
    }
}

/// A base port on 127.0.0.1 whose `cores + 1` consecutive ports are all free: a daemon's
/// `--listen` address. No port is handed out twice in one test process: a test whose server is
/// stopped between two starts (a restart) keeps its ports, free as they look meanwhile, from
/// the tests running beside it.
pub fn free_ports(cores: usize) -> SocketAddr {
    static HANDED_OUT: Mutex<std::collections::BTreeSet<u16>> = Mutex::new(std::collections::BTreeSet::new());
    let span = u16::try_from(cores + 1).expect("few shards");
    for _ in 0..1000 {
        let base = fastrand::u16(PORT_RANGE.start..PORT_RANGE.end - span);
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        let all_free = (base..base + span).all(|port| {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            !handed_out.contains(&port) && TcpListener::bind(addr).is_ok()
        });
        if all_free {
            handed_out.extend(base..base + span);
            return SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), base);
        }
    }
    panic!("found no {span} consecutive free ports in {PORT_RANGE:?}")
}

/// A free loopback port outside `listen`'s block of `cores + 1` ports: the RESP door's.
fn free_port_outside(listen: SocketAddr, cores: usize) -> SocketAddr {
    let block = listen.port()..=listen.port() + u16::try_from(cores).expect("few shards");
    loop {
        let addr = free_ports(0);
        if !block.contains(&addr.port()) {
            return addr;
        }
    }
}

/// True if `addr` accepts a connection and answers a handshake with a handshake.
fn answers_handshake(addr: SocketAddr) -> bool {
    // A short wait: a port that is bound but silent is retried until the start deadline.
    let Ok(mut connection) = RawConnection::connect_with_timeout(addr, Duration::from_secs(2)) else { return false };
    matches!(connection.handshake(), Ok(Reply::Handshake(_)))
}
