//! Every start a new operator can get wrong fails with a non-zero exit and a message that names
//! the cause and the fix, and changes nothing: a data directory that cannot be created, a bad
//! configuration key or value (named), too little locked memory (and the command that raises
//! it), a port in use (and the process holding it), a partition count that differs from the
//! data directory's, a data directory without O_DIRECT.

use nacre_tests::server::{Server, ServerOptions, free_ports, nacred_binary, test_dir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Longest a refused start may take (a port in use waits 5 s for a predecessor to let go).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs nacred with `args` (and `--cores 1` on free ports unless given), expecting it to refuse
/// to start; its stderr.
fn refused(args: &[&str]) -> String {
    refused_with(&mut Command::new(nacred_binary()), args)
}

fn refused_with(command: &mut Command, args: &[&str]) -> String {
    let listen = free_ports(1).to_string();
    let mut all: Vec<&str> = args.to_vec();
    if !args.contains(&"--listen") {
        all.extend(["--listen", &listen]);
    }
    if !args.contains(&"--cores") {
        all.extend(["--cores", "1"]);
    }
    let out = nacre_tests::program::run(command.args(&all).env("NO_COLOR", "1"), b"", START_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "nacred {all:?} started (or exited 0):\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "a refused start exits 1, not by a signal:\n{stderr}");
    stderr
}

fn assert_names(stderr: &str, parts: &[&str]) {
    for part in parts {
        assert!(stderr.contains(part), "the refusal does not say {part:?}:\n{stderr}");
    }
}

#[test]
fn a_data_directory_that_cannot_be_created_is_named_with_the_fix() {
    let dir = test_dir("nacred-start-");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let data = file.join("data");
    let stderr = refused(&["--data-dir", &data.display().to_string()]);
    assert_names(&stderr, &["cannot create the data directory", &data.display().to_string(), "--data-dir"]);
    assert_eq!(std::fs::read(&file).expect("read"), b"not a directory", "nothing changed");
}

#[test]
fn a_bad_configuration_key_or_value_is_named() {
    let dir = test_dir("nacred-start-");
    let data = dir.path().join("data").display().to_string();
    for (text, named) in [
        ("memtable_budget = 5\n", &["unknown field", "memtable_budget"][..]),
        ("[memory]\nmemtable_budget_bytes = \"lots\"\n", &["memory.memtable_budget_bytes", "lots"][..]),
        ("[wal]\nfsync = true\n", &["unknown field", "fsync"][..]),
        ("[memory]\nmemtable_ceiling_bytes = 1\n", &["memory.memtable_ceiling_bytes"][..]),
    ] {
        let path = dir.path().join("nacred.toml");
        std::fs::write(&path, text).expect("write");
        let stderr = refused(&["--data-dir", &data, "--config", &path.display().to_string()]);
        assert_names(&stderr, named);
        assert!(!Path::new(&data).exists(), "a refused configuration created the data directory");
    }
}

#[test]
fn too_little_locked_memory_says_how_to_raise_it() {
    let dir = test_dir("nacred-start-");
    let data = dir.path().join("data").display().to_string();
    let binary = nacred_binary().display().to_string();
    // 64 KiB of locked memory, far below one shard's io_uring rings.
    let mut shell = Command::new("bash");
    shell.args(["-c", "ulimit -l 64 && exec \"$0\" \"$@\"", &binary]);
    let stderr = refused_with(&mut shell, &["--data-dir", &data]);
    assert_names(&stderr, &["locked-memory limit is 64 KiB", "ulimit -l", "LimitMEMLOCK"]);
}

#[test]
fn a_port_in_use_names_the_process_holding_it() {
    let dir = test_dir("nacred-start-");
    let data = dir.path().join("data").display().to_string();
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr").to_string();
    let stderr = refused(&["--data-dir", &data, "--http-listen", &addr]);
    let holder = format!("process {}", std::process::id());
    assert_names(&stderr, &[&format!("port {addr} is in use"), &holder, "--http-listen"]);
}

#[test]
fn a_partition_count_other_than_the_directorys_is_refused() {
    let mut server = Server::start_with(ServerOptions {
        cores: 1,
        config: Some("partitions = 8\n".into()),
        ..ServerOptions::default()
    });
    assert!(server.sigterm_and_wait(Duration::from_secs(30)).success());
    server.set_config(Some("partitions = 16\n".into()));
    server.spawn();
    let status = server.wait_exit(START_TIMEOUT);
    assert!(!status.success(), "nacred started with 16 partitions on a directory of 8");
    assert_names(&server.log_tail(), &["has 8 partitions", "asks for 16", "remove `partitions`"]);
    // Without the setting, the directory's count serves.
    server.set_config(None);
    server.restart();
    let topology = nacre_tests::runtime().block_on(async { server.client().await.topology().await.expect("topology") });
    assert_eq!(topology.partition_count, 8);
}

#[test]
fn a_data_directory_without_direct_io_is_refused_with_the_filesystems_to_use() {
    // ramfs has no O_DIRECT (tmpfs has it since Linux 6.6). Mounting one needs root, as CI runs.
    let dir = test_dir("nacred-no-direct-io-");
    let mount = Ramfs::mount(&dir.path().join("ramfs"));
    let data = mount.path.join("data").display().to_string();
    let stderr = refused(&["--data-dir", &data]);
    assert_names(&stderr, &["does not support direct I/O", "ext4 or xfs", &data]);
}

/// A ramfs mounted for one test, unmounted when dropped.
struct Ramfs {
    path: std::path::PathBuf,
}

impl Ramfs {
    fn mount(path: &Path) -> Ramfs {
        std::fs::create_dir_all(path).expect("mkdir");
        let out = nacre_tests::program::run(
            Command::new("mount").args(["-t", "ramfs", "ramfs"]).arg(path),
            b"",
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "mounting a ramfs at {} (this test needs root): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ramfs { path: path.to_path_buf() }
    }
}

impl Drop for Ramfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}
