//! The `nacre` binary's behaviour that needs no server: help, usage errors and their exit
//! status, and a connection failure. The commands against a running `nacred` are tested in
//! `tests/tests/cli.rs`. (Being an integration test of this package, this file also makes
//! `cargo test` build `nacre` and `nacred` before any test runs.)

use std::process::{Command, Output};

fn nacre(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nacre")).args(args).output().expect("running nacre")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_lists_every_command_and_the_exit_statuses() {
    let output = nacre(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("UTF-8 help");
    for command in ["table", "put", "get", "del", "scan", "versions", "stats"] {
        assert!(help.contains(command), "{command} missing from\n{help}");
    }
    assert!(help.contains("1 not found"), "{help}");
    let output = nacre(&["table", "--help"]);
    let help = String::from_utf8(output.stdout).expect("UTF-8 help");
    for command in ["create", "alter", "list", "drop"] {
        assert!(help.contains(command), "{command} missing from\n{help}");
    }
}

#[test]
fn bad_arguments_exit_2_naming_what_was_wrong() {
    for (args, names) in [
        (&["put", "t", "k", "v", "--ts", "tomorrow"][..], "RFC 3339"),
        (&["get", "t", "k", "--as-of", "2026-13-01T00:00:00Z"], "2026-13-01"),
        (&["table", "create", "t", "--ttl", "0s"], "positive whole number of milliseconds"),
        (&["table", "create", "t", "--ttl", "7"], "30s, 15m, 7d"),
        (&["scan", "t"], "PK"),
        (&["frobnicate"], "frobnicate"),
    ] {
        let output = nacre(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(names), "{args:?}: {}", stderr(&output));
    }
}

#[test]
fn an_unreachable_server_exits_2() {
    // Port 1 on loopback: nothing listens there, so the connect is refused at once.
    let output = nacre(&["--addr", "127.0.0.1:1", "--timeout", "2s", "get", "t", "k"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).starts_with("nacre: could not connect to 127.0.0.1:1"), "{}", stderr(&output));
}
