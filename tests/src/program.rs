//! Runs a program (redis-cli, redis-benchmark, kcat, the `nacre` CLI) with given standard input
//! and a bounded time: a program that hangs is killed and fails the test with what it printed.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to completion with `input` on its standard input, collecting its standard
/// output and error; kills it after `timeout`.
///
/// # Panics
///
/// If it cannot be spawned, or runs longer than `timeout` (the panic shows its output).
pub fn run(command: &mut Command, input: &[u8], timeout: Duration) -> Output {
    let name = format!("{:?}", command.get_program());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {name}: {e} (Debian: apt-get install redis-tools kcat)"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    // Written from a thread so a program that answers before reading everything cannot
    // deadlock against a full pipe. A program that exits early makes the write fail: fine.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("waiting for {name}: {e}")) {
            break status;
        }
        if Instant::now() >= deadline {
            // Fails only if it exited just now, which `wait` reports.
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&stdout.join().expect("the reader thread")).into_owned();
            let err = String::from_utf8_lossy(&stderr.join().expect("the reader thread")).into_owned();
            panic!("{name} did not finish within {timeout:?}\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().expect("the writer thread");
    Output {
        status,
        stdout: stdout.join().expect("the reader thread"),
        stderr: stderr.join().expect("the reader thread"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the output early; what was read is still shown.
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}
